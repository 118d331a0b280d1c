//! Reading a base image (a stack) from a registry or an OCI layout, with its blobs cached on
//! disk by digest so that a stack is downloaded once.

use super::client::{RawManifest, Registry};
use super::layout::Layout;
use super::RegistryError;
use crate::image::BaseImage;
use crate::refs::{ImageRef, RegistryRef};
use std::path::{Path, PathBuf};

/// A content-addressed directory of blobs (`<dir>/sha256/<hex>`).
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    pub fn new(dir: &Path) -> BlobCache {
        BlobCache {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        self.dir.join(alg).join(hex)
    }
}

/// Where a base image comes from.
pub enum Source {
    Registry {
        registry: Registry,
        reference: RegistryRef,
    },
    Layout {
        layout: Layout,
        tag: Option<String>,
    },
}

/// A base image, resolved: its manifest (linux/amd64) and parsed config.
pub struct Resolved {
    pub manifest: RawManifest,
    pub base: BaseImage,
}

impl Source {
    pub fn new(r: &ImageRef, registry: &Registry) -> Result<Source, RegistryError> {
        Ok(match r {
            ImageRef::Registry(reference) => Source::Registry {
                registry: registry.clone(),
                reference: reference.clone(),
            },
            ImageRef::Layout(l) => Source::Layout {
                layout: Layout::open(&l.dir)?,
                tag: l.tag.clone(),
            },
        })
    }

    /// The registry reference when the image lives in a registry.
    pub fn registry_ref(&self) -> Option<&RegistryRef> {
        match self {
            Source::Registry { reference, .. } => Some(reference),
            Source::Layout { .. } => None,
        }
    }

    /// Fetches the manifest and config.
    pub async fn resolve(&self, cache: &BlobCache) -> Result<Resolved, RegistryError> {
        let manifest = match self {
            Source::Registry {
                registry,
                reference,
            } => registry.manifest(reference).await?,
            Source::Layout { layout, tag } => layout.resolve(tag.as_deref())?,
        };
        let parsed: oci_spec::image::ImageManifest = serde_json::from_slice(&manifest.bytes)
            .map_err(|e| RegistryError::Other(format!("manifest {}: {e}", manifest.digest)))?;
        let config_digest = parsed.config().digest().to_string();
        let config_path = self.blob_path(&config_digest, cache).await?;
        let config = std::fs::read(&config_path).map_err(|e| RegistryError::io(&config_path, e))?;
        let base = BaseImage::parse(&manifest.bytes, Some(&manifest.media_type), &config)
            .map_err(|e| RegistryError::Other(format!("base image {}: {e}", manifest.digest)))?;
        Ok(Resolved { manifest, base })
    }

    /// A local file holding the blob: in the layout itself, or downloaded into the cache.
    pub async fn blob_path(
        &self,
        digest: &str,
        cache: &BlobCache,
    ) -> Result<PathBuf, RegistryError> {
        self.fetch(digest, None, cache).await
    }

    /// [`Source::blob_path`] for a blob of known size: a download reports its progress.
    pub async fn pull(
        &self,
        digest: &str,
        size: u64,
        cache: &BlobCache,
    ) -> Result<PathBuf, RegistryError> {
        self.fetch(digest, Some(size), cache).await
    }

    async fn fetch(
        &self,
        digest: &str,
        size: Option<u64>,
        cache: &BlobCache,
    ) -> Result<PathBuf, RegistryError> {
        match self {
            Source::Layout { layout, .. } => {
                let p = layout.blob_path(digest);
                if !p.is_file() {
                    return Err(RegistryError::Other(format!(
                        "blob {digest} is missing from {}",
                        p.display()
                    )));
                }
                Ok(p)
            }
            Source::Registry {
                registry,
                reference,
            } => {
                let p = cache.path(digest);
                if !p.is_file() {
                    registry.blob_to_file(reference, digest, &p, size).await?;
                }
                Ok(p)
            }
        }
    }
}
