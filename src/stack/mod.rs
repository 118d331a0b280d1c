//! Stacks: the base image an app is layered onto, and the root filesystem its buildpacks run
//! in. Blobs and unpacked root filesystems are cached by digest under the stack cache.

mod beneath;
pub(crate) mod import;
pub(crate) mod record;
pub mod rootfs;
pub(crate) mod unpack;

use crate::image::stack::{build_stack, STACK_LABEL};
use crate::image::{rfc3339, ImageError};
use crate::layer::fixed_mtime;
use crate::refs::ImageRef;
use crate::registry::push::{self, PushBlob, PushInput, PushReport};
use crate::registry::source::{BlobCache, Resolved, Source};
use crate::registry::{Registry, RegistryError};
use crate::report::{info, Meter, Reporter, SharedReporter};
use crate::units::format_size;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Unpack(#[from] unpack::UnpackError),
    #[error("importing rootfs {rootfs}: {source}")]
    Import {
        rootfs: String,
        source: import::ImportError,
    },
    #[error("stack {stack} is {platform}; dropship builds linux images")]
    Platform { stack: String, platform: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
    let what = what.into();
    move |source| StackError::Io { what, source }
}

/// Where stack blobs and unpacked root filesystems live.
#[derive(Debug, Clone)]
pub struct StackCache {
    pub dir: PathBuf,
}

impl StackCache {
    /// `$DROPSHIP_STACK_CACHE`; for root `/var/cache/dropship` (the unprivileged staging user
    /// must be able to reach the unpacked stacks, and root's home is closed to it); else
    /// `$XDG_CACHE_HOME/dropship` or `~/.cache/dropship`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("DROPSHIP_STACK_CACHE") {
            return PathBuf::from(d);
        }
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return PathBuf::from("/var/cache/dropship");
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(d).join("dropship");
        }
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cache/dropship"),
            None => std::env::temp_dir().join("dropship-cache"),
        }
    }

    pub fn blobs(&self) -> BlobCache {
        BlobCache::new(&self.dir.join("blobs"))
    }

    fn rootfs_dir(&self, manifest_digest: &str) -> PathBuf {
        let hex = manifest_digest.trim_start_matches("sha256:");
        self.dir.join("rootfs").join(hex)
    }
}

/// A resolved stack.
pub struct Stack {
    pub reference: ImageRef,
    /// The stack's name, given to buildpacks as CF_STACK.
    pub name: String,
    pub source: Source,
    pub resolved: Resolved,
    /// Where pulling and unpacking say what they are doing (the registry client's reporter).
    reporter: SharedReporter,
}

fn default_name(r: &ImageRef) -> String {
    match r {
        ImageRef::Registry(reg) => reg
            .repository
            .rsplit('/')
            .next()
            .unwrap_or("stack")
            .to_string(),
        ImageRef::Layout(l) => l.tag.clone().unwrap_or_else(|| {
            l.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "stack".into())
        }),
    }
}

impl Stack {
    /// Resolves the stack's manifest and config (downloading the config once).
    pub async fn open(
        r: &ImageRef,
        registry: &Registry,
        cache: &StackCache,
    ) -> Result<Stack, StackError> {
        let source = Source::new(r, registry)?;
        let resolved = source.resolve(&cache.blobs()).await?;
        let config = &resolved.base.config;
        if config.os().to_string() != "linux" {
            return Err(StackError::Platform {
                stack: r.to_string(),
                platform: resolved.base.platform(),
            });
        }
        let name = config
            .config()
            .as_ref()
            .and_then(|c| c.labels().as_ref())
            .and_then(|l| l.get(STACK_LABEL).cloned())
            .unwrap_or_else(|| default_name(r));
        let stack = Stack {
            reference: r.clone(),
            name,
            source,
            resolved,
            reporter: registry.reporter(),
        };
        if let Err(e) = cache.record(&stack) {
            tracing::debug!("recording stack {r} in {}: {e}", cache.dir.display());
        }
        Ok(stack)
    }

    pub fn digest(&self) -> &str {
        &self.resolved.manifest.digest
    }

    /// Compressed bytes of the layers.
    pub fn layers_size(&self) -> u64 {
        let layers = self.resolved.base.manifest.layers();
        layers.iter().map(|l| l.size()).sum()
    }

    /// The stack's root filesystem, unpacked once per manifest digest.
    pub async fn rootfs(&self, cache: &StackCache) -> Result<PathBuf, StackError> {
        let dest = cache.rootfs_dir(self.digest());
        if dest.is_dir() {
            return Ok(dest);
        }
        let mut layers = Vec::new();
        for l in self.resolved.base.manifest.layers() {
            let digest = l.digest().to_string();
            let path = self.pull(&digest, l.size(), cache).await?;
            layers.push((digest, path));
        }
        let d = dest.clone();
        let total = self.layers_size();
        let plural = if layers.len() == 1 { "" } else { "s" };
        let what = format!(
            "stack {} ({} layer{plural}, {})",
            self.name,
            layers.len(),
            format_size(total)
        );
        info(self.reporter.as_ref(), format!("unpacking {what}"));
        let started = std::time::Instant::now();
        let mut meter = Meter::new(
            self.reporter.clone(),
            format!("unpacking {}", self.name),
            total,
        );
        tokio::task::spawn_blocking(move || rootfs::unpack(&layers, &d, &mut |n| meter.set(n)))
            .await
            .map_err(|e| StackError::Io {
                what: "unpacking stack".into(),
                source: std::io::Error::other(e.to_string()),
            })??;
        let took = started.elapsed().as_secs_f64();
        info(
            self.reporter.as_ref(),
            format!("unpacked {what} in {took:.1}s"),
        );
        Ok(dest)
    }

    /// A layer's local file; a download (one not in the cache yet) is announced and timed.
    async fn pull(
        &self,
        digest: &str,
        size: u64,
        cache: &StackCache,
    ) -> Result<PathBuf, StackError> {
        let cached = cache.blobs().path(digest);
        if self.source.registry_ref().is_none() || cached.is_file() {
            return Ok(self.source.blob_path(digest, &cache.blobs()).await?);
        }
        let hex = digest.trim_start_matches("sha256:");
        let short = &hex[..hex.len().min(12)];
        let what = format!("stack layer {short} ({})", format_size(size));
        info(self.reporter.as_ref(), format!("pulling {what}"));
        let started = std::time::Instant::now();
        let path = self.source.pull(digest, size, &cache.blobs()).await?;
        let took = started.elapsed().as_secs_f64();
        info(
            self.reporter.as_ref(),
            format!("pulled {what} in {took:.1}s"),
        );
        Ok(path)
    }
}

/// What `dropship stack import` made.
pub struct ImportReport {
    pub digest: String,
    pub layer_digest: String,
    pub layer_size: u64,
    pub fixes: Vec<String>,
    pub push: PushReport,
}

/// The rootfs packed into one layer (off the runtime), announced, metered and timed.
async fn pack(
    rootfs: &Path,
    work_dir: &Path,
    reporter: Arc<dyn Reporter>,
) -> Result<import::Imported, StackError> {
    let (src, blobs) = (rootfs.to_path_buf(), work_dir.join("blobs"));
    info(
        reporter.as_ref(),
        format!("packing {} into a layer", rootfs.display()),
    );
    let started = std::time::Instant::now();
    let (task, r) = ("packing the stack layer", reporter.clone());
    let imported = tokio::task::spawn_blocking(move || {
        let mut meter = Meter::new(r, task, import::import_size(&src));
        import::rootfs_layer(&src, &blobs, Box::new(move |n| meter.set(n)))
    })
    .await
    .map_err(|e| StackError::Io {
        what: "importing rootfs".into(),
        source: std::io::Error::other(e.to_string()),
    })?
    .map_err(|source| StackError::Import {
        rootfs: rootfs.display().to_string(),
        source,
    })?;
    info(
        reporter.as_ref(),
        format!(
            "packed the stack layer ({}) in {:.1}s",
            format_size(imported.layer.size),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(imported)
}

/// Imports a root filesystem as a one-layer stack image at `target`.
pub async fn import(
    rootfs: &Path,
    target: &ImageRef,
    name: Option<&str>,
    registry: &Registry,
    work_dir: &Path,
    reporter: Arc<dyn Reporter>,
) -> Result<ImportReport, StackError> {
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| default_name(target));
    let imported = pack(rootfs, work_dir, reporter.clone()).await?;
    let source_name = rootfs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let image = build_stack(
        &imported.layer,
        &name,
        &source_name,
        &rfc3339(fixed_mtime()),
    )?;
    let config_path = work_dir.join("stack-config.json");
    std::fs::write(&config_path, &image.config).map_err(io_err("writing stack config"))?;
    let input = PushInput {
        image: &image,
        blobs: vec![
            PushBlob {
                digest: image.config_digest.clone(),
                size: image.config.len() as u64,
                file: Some(config_path),
            },
            PushBlob {
                digest: imported.layer.digest.clone(),
                size: imported.layer.size,
                file: Some(imported.layer.path.clone()),
            },
        ],
        base: None,
        cache: &BlobCache::new(&work_dir.join("cache")),
        reporter,
    };
    let (digest, report) = match target {
        ImageRef::Registry(r) => push::to_registry(registry, r, &input).await?,
        ImageRef::Layout(l) => push::to_layout(l, &input).await?,
    };
    Ok(ImportReport {
        digest,
        layer_digest: imported.layer.digest,
        layer_size: imported.layer.size,
        fixes: imported.fixes,
        push: report,
    })
}
