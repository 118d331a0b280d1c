//! Publishing: the registries connected (targets checked before any work), the image written
//! to its target and to every other place it goes, all with the same digest.

use super::error::{blocking, other, BuildError};
use super::options::{BuildOptions, Targets};
use crate::image::BuiltImage;
use crate::refs::ImageRef;
use crate::registry::push::{self, PushBlob, PushInput, PushReport};
use crate::registry::Registry;
use crate::report::Reporter;
use crate::stack::Stack;
use crate::stack::StackCache;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the image went.
pub struct Published {
    pub digest: String,
    /// `REPO@sha256:...` (registry) or `oci:DIR@sha256:...` (layout), of the target.
    pub image: String,
    pub report: PushReport,
}

/// How the image gets there: the registries, the base layers' source and cache.
pub struct Via<'a> {
    pub registry: &'a Registry,
    pub stack: &'a Stack,
    pub stack_cache: &'a StackCache,
    pub reporter: Arc<dyn Reporter>,
}

/// A client for the registries of the build, its targets checked (credentials, reachable).
pub async fn connect(
    opts: &BuildOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Registry, BuildError> {
    let registry = Registry::new(opts.runtime.registry.clone(), &opts.registries(), reporter)?;
    for target in opts.outputs.targets.all() {
        if let ImageRef::Registry(r) = target {
            registry.preflight(r).await?;
        }
    }
    Ok(registry)
}

/// Writes the image's config to `config` (blocking), then pushes to every target.
pub async fn publish(
    built: &BuiltImage,
    blobs: Vec<PushBlob>,
    config: PathBuf,
    targets: &Targets,
    via: &Via<'_>,
) -> Result<Published, BuildError> {
    let bytes = built.config.clone();
    blocking(move || std::fs::write(&config, bytes).map_err(other("writing the image config")))
        .await?;
    let input = PushInput {
        image: built,
        blobs,
        base: Some(&via.stack.source),
        cache: &via.stack_cache.blobs(),
        reporter: via.reporter.clone(),
    };
    let published = push_to(via.registry, &targets.target, &input).await?;
    for extra in &targets.also {
        let again = push_to(via.registry, extra, &input).await?;
        if again.digest != published.digest {
            let (d, expected) = (again.digest, &published.digest);
            return Err(BuildError::Other(format!(
                "{extra} stored digest {d}, expected {expected}"
            )));
        }
    }
    Ok(published)
}

/// Writes the image to one target.
async fn push_to(
    registry: &Registry,
    target: &ImageRef,
    input: &PushInput<'_>,
) -> Result<Published, BuildError> {
    let (digest, report, image) = match target {
        ImageRef::Registry(r) => {
            let (d, rep) = push::to_registry(registry, r, input).await?;
            let by_digest = format!("{}@{d}", r.repo_name());
            (d, rep, by_digest)
        }
        ImageRef::Layout(l) => {
            let (d, rep) = push::to_layout(l, input).await?;
            let by_digest = format!("oci:{}@{d}", l.dir.display());
            (d, rep, by_digest)
        }
    };
    Ok(Published {
        digest,
        image,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{fixture, staged};
    use super::super::{image, package::package};
    use super::*;
    use crate::report::Silent;

    #[tokio::test]
    async fn every_target_gets_the_same_image() {
        let mut f = fixture().await;
        let also = format!("oci:{}:copy", f.dir.path().join("copy").display());
        f.opts.outputs.targets.also = vec![also.parse().unwrap()];
        let (stack, s) = staged(&f).await;
        let d = package(&s, None, None, Arc::new(Silent)).await.unwrap();
        let built = image::assemble(&f.opts.app, &stack.stack, &s, &d).unwrap();
        let config = s.ws.blobs.join("config.json");
        let blobs = image::blobs(&built, &stack.stack, &d, config.clone());
        let registry = connect(&f.opts, Arc::new(Silent)).await.unwrap();
        let via = Via {
            registry: &registry,
            stack: &stack.stack,
            stack_cache: &f.opts.runtime.stack_cache,
            reporter: Arc::new(Silent),
        };
        let p = publish(&built, blobs, config.clone(), &f.opts.outputs.targets, &via)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&config).unwrap(), built.config);
        let out = f.dir.path().join("out");
        assert_eq!(p.image, format!("oci:{}@{}", out.display(), p.digest));
        for dir in [out, f.dir.path().join("copy")] {
            let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
            assert!(index.contains(&p.digest), "{index}");
        }
    }
}
