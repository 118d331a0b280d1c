//! `dropship rebase`: an image's app layers put onto a new stack. The image and the stack
//! are read (manifests and configs only), [`crate::image::rebase`] assembles the new image
//! (purely, with the build's own function), and the push sends the manifest and config: the
//! stack's layers are mounted (same registry) or copied from the stack, the app's are already
//! in the target's repository, mounted from the image's, or copied only across registries.

use super::image::{base_labels, image_blobs};
use super::outcome::StackInfo;
use crate::image::rebase::{rebase as assemble, RebaseError, Rebased};
use crate::refs::{ImageRef, RegistryRef};
use crate::registry::layout::Layout;
use crate::registry::push::{self, PushBlob, PushInput, PushReport};
use crate::registry::source::{BlobCache, Source};
use crate::registry::{Registry, RegistryError, RegistryOptions};
use crate::report::{info, Reporter};
use crate::stack::{Stack, StackCache, StackError};
use oci_spec::image::Descriptor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What a rebase is asked.
#[derive(Debug, Clone)]
pub struct RebaseOptions {
    /// The app image (one a dropship build made).
    pub image: ImageRef,
    /// The new stack.
    pub stack: ImageRef,
    /// Where the rebased image goes (the CLI's default: `image` itself).
    pub target: ImageRef,
    /// Rebase onto a stack of another name, OS or architecture.
    pub force: bool,
    pub registry: RegistryOptions,
    pub stack_cache: StackCache,
    /// Where the config is written before its upload.
    pub work_dir: PathBuf,
}

/// What a rebase did (the `--json` output).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RebaseOutcome {
    /// `REPO@sha256:...` (registry) or `oci:DIR@sha256:...` (layout).
    pub image: String,
    pub digest: String,
    /// The digest of the image rebased.
    pub previous_digest: String,
    pub stack: StackInfo,
    /// The stack the image was on.
    pub previous_stack: String,
    /// The app's layers, kept (blob digests, in order).
    pub app_layers: Vec<String>,
    pub push: PushReport,
    /// Bytes sent: blobs uploaded and the manifest.
    pub bytes_moved: u64,
    /// Of which app layers (copied across registries only).
    pub app_bytes_moved: u64,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RebaseFailure {
    #[error("rebase: {0}")]
    Refused(#[from] RebaseError),
    #[error("stack: {0}")]
    Stack(#[from] StackError),
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Other(String),
}

impl RebaseFailure {
    /// 3: the new stack refused (another name, OS or architecture; `--force` overrides);
    /// 4: the image does not record its stack's layers; 1: anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            RebaseFailure::Refused(RebaseError::NotRecorded) => 4,
            RebaseFailure::Refused(e) if e.is_refusal() => 3,
            _ => 1,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RebaseFailure::Refused(RebaseError::NotRecorded) => "not-rebasable",
            RebaseFailure::Refused(e) if e.is_refusal() => "incompatible-stack",
            RebaseFailure::Refused(_) => "image",
            RebaseFailure::Stack(_) => "stack",
            RebaseFailure::Registry(_) => "registry",
            RebaseFailure::Other(_) => "rebase",
        }
    }
}

fn in_registry(r: &ImageRef) -> Option<&RegistryRef> {
    match r {
        ImageRef::Registry(r) => Some(r),
        ImageRef::Layout(_) => None,
    }
}

/// The image and the stack read, the rebased image assembled; nothing pushed yet.
pub struct Prepared {
    registry: Registry,
    source: Source,
    stack: Stack,
    rebased: Rebased,
    cache: BlobCache,
    /// The digest of the image rebased.
    pub previous_digest: String,
    started: Instant,
}

impl Prepared {
    /// Whether the rebased image is the image itself (the stack has not changed).
    pub fn unchanged(&self) -> bool {
        self.rebased.image.manifest_digest == self.previous_digest
    }
}

/// Reads the image and the new stack (manifests and configs) and assembles the rebased image.
pub async fn prepare(
    opts: &RebaseOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Prepared, RebaseFailure> {
    let started = Instant::now();
    let refs = [&opts.image, &opts.stack, &opts.target];
    let in_use: Vec<&RegistryRef> = refs.into_iter().filter_map(in_registry).collect();
    let registry = Registry::new(opts.registry.clone(), &in_use, reporter.clone())?;
    if let ImageRef::Registry(t) = &opts.target {
        registry.preflight(t).await?;
    }
    let cache = opts.stack_cache.blobs();
    let source = Source::new(&opts.image, &registry)?;
    let app = source.resolve(&cache).await?;
    let stack = Stack::open(&opts.stack, &registry, &opts.stack_cache).await?;
    let r = reporter.as_ref();
    info(
        r,
        format!(
            "rebasing {} onto {} ({})",
            opts.image,
            stack.name,
            stack.digest()
        ),
    );
    let rebased = assemble(
        &app.base,
        &stack.resolved.base,
        &base_labels(&stack),
        opts.force,
    )?;
    Ok(Prepared {
        registry,
        source,
        stack,
        rebased,
        cache,
        previous_digest: app.manifest.digest,
        started,
    })
}

/// Rebases `opts.image` onto `opts.stack` and pushes the result to `opts.target`.
pub async fn rebase(
    opts: &RebaseOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<RebaseOutcome, RebaseFailure> {
    let prepared = prepare(opts, reporter.clone()).await?;
    push_to(&prepared, &opts.target, opts, reporter).await
}

/// Pushes the rebased image to `target` (the options' or another one).
pub async fn push_to(
    p: &Prepared,
    target: &ImageRef,
    opts: &RebaseOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<RebaseOutcome, RebaseFailure> {
    let (rebased, stack) = (&p.rebased, &p.stack);
    let (blobs, app_moved, mounted) = app_blobs(
        &p.registry,
        &p.source,
        target,
        &rebased.app_layers,
        &p.cache,
    )
    .await?;
    let dir = tempfile::Builder::new()
        .prefix("dropship-rebase-")
        .tempdir_in(&opts.work_dir)
        .map_err(|e| RebaseFailure::Other(format!("{}: {e}", opts.work_dir.display())))?;
    let config = dir.path().join("config.json");
    tokio::fs::write(&config, &rebased.image.config)
        .await
        .map_err(|e| RebaseFailure::Other(format!("writing the image config: {e}")))?;
    let input = PushInput {
        image: &rebased.image,
        blobs: image_blobs(&rebased.image, stack, config, blobs),
        base: Some(&stack.source),
        cache: &p.cache,
        reporter,
    };
    let (digest, mut report) = match target {
        ImageRef::Registry(t) => push::to_registry(&p.registry, t, &input).await?,
        ImageRef::Layout(l) => push::to_layout(l, &input).await?,
    };
    report.existing.retain(|d| !mounted.contains(d));
    report.mounted.extend(mounted);
    Ok(RebaseOutcome {
        image: by_digest(target, &digest),
        digest,
        previous_digest: p.previous_digest.clone(),
        stack: StackInfo {
            reference: opts.stack.to_string(),
            name: stack.name.clone(),
            digest: stack.digest().to_string(),
        },
        previous_stack: rebased.old_stack.clone(),
        app_layers: rebased
            .app_layers
            .iter()
            .map(|d| d.digest().to_string())
            .collect(),
        bytes_moved: report.bytes_uploaded + rebased.image.manifest.len() as u64,
        app_bytes_moved: app_moved,
        push: report,
        seconds: p.started.elapsed().as_secs_f64(),
    })
}

fn by_digest(target: &ImageRef, digest: &str) -> String {
    match target {
        ImageRef::Registry(r) => format!("{}@{digest}", r.repo_name()),
        ImageRef::Layout(l) => format!("oci:{}@{digest}", l.dir.display()),
    }
}

/// Where an app layer's bytes come from for a target.
enum Placement {
    /// The target has it.
    There,
    /// Just mounted into the target from the image's repository (same registry).
    Mounted,
    /// Copied from the image (another registry, or a layout without it).
    Copied,
}

async fn place(
    registry: &Registry,
    source: &Source,
    target: &ImageRef,
    layout: Option<&Layout>,
    digest: &str,
) -> Result<Placement, RegistryError> {
    match target {
        ImageRef::Registry(t) => {
            if registry.blob_exists(t, digest).await? {
                return Ok(Placement::There);
            }
            match source.registry_ref() {
                Some(from)
                    if from.registry == t.registry && registry.mount(t, from, digest).await? =>
                {
                    Ok(Placement::Mounted)
                }
                _ => Ok(Placement::Copied),
            }
        }
        ImageRef::Layout(_) if layout.is_some_and(|l| l.has_blob(digest)) => Ok(Placement::There),
        ImageRef::Layout(_) => Ok(Placement::Copied),
    }
}

/// The app's layers as blobs to push: without a file when the target has them (or they were
/// just mounted there), else with one pulled from the image. Also returns the bytes to copy
/// and the digests mounted.
async fn app_blobs(
    registry: &Registry,
    source: &Source,
    target: &ImageRef,
    layers: &[Descriptor],
    cache: &BlobCache,
) -> Result<(Vec<PushBlob>, u64, Vec<String>), RegistryError> {
    let (mut blobs, mut copied, mut mounted) = (Vec::new(), 0, Vec::new());
    let layout = match target {
        ImageRef::Layout(l) if l.dir.join("oci-layout").is_file() => Some(Layout::open(&l.dir)?),
        _ => None,
    };
    for l in layers {
        let digest = l.digest().to_string();
        let file = match place(registry, source, target, layout.as_ref(), &digest).await? {
            Placement::There => None,
            Placement::Mounted => {
                mounted.push(digest.clone());
                None
            }
            Placement::Copied => {
                copied += l.size();
                Some(source.pull(&digest, l.size(), cache).await?)
            }
        };
        blobs.push(PushBlob {
            digest,
            size: l.size(),
            file,
        });
    }
    Ok((blobs, copied, mounted))
}
