//! The image: the stack's layers, then the launcher and the droplet's layers, with labels
//! naming what went in. Pure: values in, the manifest and config bytes out.

use super::error::BuildError;
use super::package::DropletBlobs;
use super::stage::Staged;
use crate::app::App;
use crate::image::{self, BaseLabels, BuiltImage, ImageSpec, NewLayer};
use crate::layer::fixed_mtime;
use crate::refs::ImageRef;
use crate::registry::push::PushBlob;
use crate::stack::Stack;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The image of `staged` (its start command possibly the app's) on `stack`.
pub fn assemble(
    app: &App,
    stack: &Stack,
    staged: &Staged,
    droplet: &DropletBlobs,
) -> Result<BuiltImage, BuildError> {
    let spec = image_spec(app, stack, staged);
    let launcher = NewLayer {
        blob: droplet.launcher.clone(),
        created_by: "dropship: /lifecycle/launch".into(),
    };
    let ours = droplet.layers.iter().map(|l| NewLayer {
        blob: l.blob.clone(),
        created_by: format!(
            "dropship: droplet of {} ({}): {}",
            app.name, droplet.info.detected_buildpack, l.holds
        ),
    });
    let new_layers: Vec<NewLayer> = std::iter::once(launcher).chain(ours).collect();
    Ok(image::build(&stack.resolved.base, &new_layers, &spec)?)
}

/// The blobs a push sends: the config (written at `config`), the stack's layers (from the
/// stack's source), the launcher and the droplet's layers.
pub fn blobs(
    built: &BuiltImage,
    stack: &Stack,
    droplet: &DropletBlobs,
    config: PathBuf,
) -> Vec<PushBlob> {
    let layers = droplet.layers.iter().map(|l| &l.blob);
    let ours = std::iter::once(&droplet.launcher)
        .chain(layers)
        .map(|l| PushBlob {
            digest: l.digest.clone(),
            size: l.size,
            file: Some(l.path.clone()),
        });
    image_blobs(built, stack, config, ours)
}

/// An image's blobs in push order: its config (written at `config`), the stack's layers (from
/// the stack's source, as builds and rebases both push them), then `app`'s.
pub fn image_blobs(
    built: &BuiltImage,
    stack: &Stack,
    config: PathBuf,
    app: impl IntoIterator<Item = PushBlob>,
) -> Vec<PushBlob> {
    let config = PushBlob {
        digest: built.config_digest.clone(),
        size: built.config.len() as u64,
        file: Some(config),
    };
    let base = stack
        .resolved
        .base
        .manifest
        .layers()
        .iter()
        .map(|l| PushBlob {
            digest: l.digest().to_string(),
            size: l.size(),
            file: None,
        });
    std::iter::once(config).chain(base).chain(app).collect()
}

/// Labels and annotations naming the app, the base and the buildpacks; the start command.
/// (Not the droplet tgz's digest: the tgz is made only when asked, and the image must not
/// depend on that.)
fn image_spec(app: &App, stack: &Stack, staged: &Staged) -> ImageSpec {
    let r = &staged.result;
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    for m in [&mut labels, &mut annotations] {
        m.insert(image::TITLE_LABEL.into(), app.name.clone());
    }
    let metas = serde_json::to_string(&r.buildpacks).unwrap_or_default();
    for (k, v) in [
        ("io.dropship.start-command", &r.start_command),
        ("io.dropship.detected-buildpack", &r.detected_buildpack),
        ("io.dropship.buildpacks", &metas),
    ] {
        labels.insert(k.to_string(), v.to_string());
    }
    let mut spec = ImageSpec {
        start_command: r.start_command.clone(),
        labels,
        annotations,
        port: image::DEFAULT_PORT,
        created: image::rfc3339(fixed_mtime()),
    };
    spec.set_base(&base_labels(stack));
    spec
}

/// How an image names `stack`. Only a pullable reference names the base: an OCI layout is a
/// path on this machine, and would make the same build differ from one host to another.
pub fn base_labels(stack: &Stack) -> BaseLabels {
    BaseLabels {
        stack: stack.name.clone(),
        name: match &stack.reference {
            ImageRef::Registry(r) => Some(r.to_string()),
            ImageRef::Layout(_) => None,
        },
        digest: stack.digest().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::package::package;
    use super::super::testkit::{fixture, staged};
    use super::*;
    use crate::report::Silent;
    use std::sync::Arc;

    #[tokio::test]
    async fn the_stack_then_the_launcher_then_the_droplet() {
        let f = fixture().await;
        let (stack, mut s) = staged(&f).await;
        let d = package(
            &s,
            None,
            crate::layer::Codec::Gzip,
            Default::default(),
            None,
            None,
            Arc::new(Silent),
        )
        .await
        .unwrap();
        let mut app = f.opts.app.clone();
        app.command = Some("run-it".into());
        s.apply_command(&app, &Silent);
        let built = assemble(&app, &stack.stack, &s, &d).unwrap();
        let base = stack.stack.resolved.base.manifest.layers().len();
        assert_eq!(built.layers.len(), base + 1 + d.layers.len());
        let last = built.layers.last().unwrap().digest().to_string();
        assert_eq!(last, d.layers.last().unwrap().blob.digest);
        let config: serde_json::Value = serde_json::from_slice(&built.config).unwrap();
        let labels = &config["config"]["Labels"];
        assert_eq!(labels["io.dropship.start-command"], "run-it");
        assert_eq!(labels["org.opencontainers.image.title"], "shop");
        assert_eq!(labels["io.dropship.stack"], "tiny");
        assert!(
            labels.get("org.opencontainers.image.base.name").is_none(),
            "a layout is a path"
        );
        let again = assemble(&app, &stack.stack, &s, &d).unwrap();
        assert_eq!(
            (again.config, again.manifest),
            (built.config.clone(), built.manifest.clone())
        );
        let pushed = blobs(&built, &stack.stack, &d, PathBuf::from("config.json"));
        assert_eq!(
            pushed.len(),
            base + 2 + d.layers.len(),
            "config, base layers, launcher, droplet"
        );
        assert_eq!(pushed[0].digest, built.config_digest);
    }
}
