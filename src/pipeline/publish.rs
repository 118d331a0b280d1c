//! Publishing: the registries connected (targets checked before any work), the image written
//! to its target and to every other place it goes, all with the same digest.

use super::error::{blocking, other, BuildError};
use super::options::{BuildOptions, Targets};
use super::stream::Streamer;
use crate::droplet::layers::RemoteLayers;
use crate::image::BuiltImage;
use crate::refs::ImageRef;
use crate::registry::push::{self, PushBlob, PushInput, PushReport, PARALLEL_BLOBS};
use crate::registry::source::{BlobCache, Source};
use crate::registry::Registry;
use crate::registry::RegistryError;
use crate::report::{BlobOutcome, Event, Reporter};
use crate::stack::Stack;
use crate::stack::StackCache;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

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

/// What the target's tag held when the build started.
#[derive(Default)]
pub struct TargetNow {
    /// A registry repository with no tag yet: a first push, every layer is new there.
    pub new: bool,
    /// The layers of the image it named (a registry target, one target only).
    pub layers: Option<RemoteLayers>,
}

/// Looks at the target's tag: the layers of its image (manifest and config read, the config
/// kept in `cache`), or none and whether its repository is new. Any doubt (a layout, extra
/// targets, an error) answers neither.
pub async fn look_at_target(
    registry: &Registry,
    targets: &Targets,
    cache: &BlobCache,
) -> TargetNow {
    let target = &targets.target;
    let ImageRef::Registry(r) = target else {
        return TargetNow::default();
    };
    let Ok(source) = Source::new(target, registry) else {
        return TargetNow::default();
    };
    match source.resolve(cache).await {
        // A new tag: in a new repository (nothing of it can be there), or beside others
        // (`:<commit>` tags: their layers may be there, found by `HEAD`).
        Err(RegistryError::NotFound { .. }) => TargetNow {
            new: matches!(registry.has_tags(r).await, Ok(false)),
            layers: None,
        },
        // Blobs found only in the target: other targets would need files.
        Ok(found) if targets.also.is_empty() => TargetNow {
            new: false,
            layers: Some(remote_layers(&found.base)),
        },
        _ => TargetNow::default(),
    }
}

/// diff_id → (digest, size, codec) of `image`'s layers.
fn remote_layers(image: &crate::image::BaseImage) -> RemoteLayers {
    let diff_ids = image.config.rootfs().diff_ids();
    let layers = image.manifest.layers().iter().zip(diff_ids);
    layers
        .map(|(d, diff)| {
            let codec = crate::image::rebase::codec_of(d.media_type());
            (diff.clone(), (d.digest().to_string(), d.size(), codec))
        })
        .collect()
}

/// Sends the droplet's layers that `rx` brings to the target registry while the droplet is
/// still being packed, a few at a time (those `stream` committed while they were packed are
/// not sent again). Returns digest → size of those uploaded. The first failure (already
/// retried as the push would) stops it: the build fails with it, as the push would have.
pub async fn send_ahead(
    registry: &Registry,
    targets: &Targets,
    mut rx: UnboundedReceiver<PushBlob>,
    stream: Option<&Streamer>,
    reporter: Arc<dyn Reporter>,
) -> Result<HashMap<String, u64>, BuildError> {
    let mut sent = HashMap::new();
    let ImageRef::Registry(target) = &targets.target else {
        while rx.recv().await.is_some() {}
        return Ok(sent);
    };
    let mut running = FuturesUnordered::new();
    let mut open = true;
    while open || !running.is_empty() {
        tokio::select! {
            b = rx.recv(), if open && running.len() < PARALLEL_BLOBS => match b {
                Some(b) => running.push(ahead_one(registry, target, b, stream, reporter.clone())),
                None => open = false,
            },
            Some(done) = running.next(), if !running.is_empty() => {
                if let Some((digest, size)) = done? {
                    sent.insert(digest, size);
                }
            }
        }
    }
    Ok(sent)
}

async fn ahead_one(
    registry: &Registry,
    target: &crate::refs::RegistryRef,
    blob: PushBlob,
    stream: Option<&Streamer>,
    reporter: Arc<dyn Reporter>,
) -> Result<Option<(String, u64)>, BuildError> {
    if let Some(s) = stream {
        if s.committed(&blob.digest).await {
            let (digest, size) = (blob.digest, blob.size);
            reporter.event(Event::BlobStart {
                digest: digest.clone(),
                size,
            });
            let outcome = BlobOutcome::Uploaded;
            let (d, done) = (
                digest.clone(),
                Event::BlobDone {
                    digest,
                    size,
                    outcome,
                },
            );
            reporter.event(done);
            return Ok(Some((d, size)));
        }
    }
    Ok(
        match push::ahead(registry, target, &blob, &reporter).await? {
            BlobOutcome::Uploaded => Some((blob.digest, blob.size)),
            _ => None,
        },
    )
}

/// Writes the image's config to `config` (blocking), then pushes to every target; `ahead`:
/// the layers [`send_ahead`] uploaded, reported as uploaded by this push.
pub async fn publish(
    built: &BuiltImage,
    blobs: Vec<PushBlob>,
    config: PathBuf,
    targets: &Targets,
    via: &Via<'_>,
    ahead: &HashMap<String, u64>,
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
    let mut published = push_to(via.registry, &targets.target, &input).await?;
    push::count_ahead(&mut published.report, ahead);
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
        let targets = &f.opts.outputs.targets;
        let p = publish(
            &built,
            blobs,
            config.clone(),
            targets,
            &via,
            &HashMap::new(),
        )
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
