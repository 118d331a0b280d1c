//! The blob store: where a service keeps what is too big for its database — packages,
//! droplets, staging logs, resource-matching content, the embedded registry's blobs and
//! manifests, build caches. One interface, two backends chosen by configuration, both through
//! the `object_store` crate:
//!
//! - a local directory (the default: one machine, files under the data dir), written to a
//!   temporary file and renamed, so a reader never sees half a blob;
//! - S3-protocol object storage (`s3://bucket/prefix`), for replicas on several machines;
//!   endpoint, region and credentials from the standard `AWS_*` variables (`AWS_ENDPOINT_URL`,
//!   `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`) or the
//!   `[blob_store]` table of the service's configuration.
//!
//! Streaming only: a blob goes in from a file or a reader through a bounded buffer (a multipart
//! upload once it outgrows one part) and comes out as a stream of chunks, a byte range of it,
//! or into a file. Keys are typed (`key.rs`): nothing a client sends becomes a key unchecked.

mod key;
mod location;

pub use key::Key;
pub use location::{Location, S3Settings};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store {store}: {source}")]
    Store {
        store: String,
        source: object_store::Error,
    },
    #[error("blob store {store}: {what}: {source}")]
    Io {
        store: String,
        what: String,
        source: std::io::Error,
    },
    #[error("blob store: {0}")]
    Config(String),
    #[error("blob store: range {start}..{end} of a {size}-byte blob")]
    Range { start: u64, end: u64, size: u64 },
}

/// A blob's bytes as they arrive, with the blob's whole size and the range sent.
pub struct Read {
    pub size: u64,
    pub range: Range<u64>,
    pub chunks: BoxStream<'static, Result<Bytes, BlobError>>,
}

/// Bytes kept in memory per upload before a part goes out (S3's parts are 5 MiB at least).
const PART: usize = 8 << 20;

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// What the store is, for messages (`local /var/lib/dropship/blobs`, `s3://bucket/prefix`).
    name: String,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl BlobStore {
    /// Opens the store at `location` (a local directory is made when missing).
    pub fn open(location: &Location, s3: &S3Settings) -> Result<BlobStore, BlobError> {
        let (store, name) = location.open(s3)?;
        Ok(BlobStore { store, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn err(&self, source: object_store::Error) -> BlobError {
        BlobError::Store {
            store: self.name.clone(),
            source,
        }
    }

    fn io(&self, what: impl Into<String>, source: std::io::Error) -> BlobError {
        BlobError::Io {
            store: self.name.clone(),
            what: what.into(),
            source,
        }
    }

    /// Stores what `reader` gives under `key` (replacing a blob there); returns its size.
    /// Nothing is visible under `key` unless the whole blob arrived.
    pub async fn put_reader(
        &self,
        key: &Key,
        reader: &mut (impl AsyncRead + Unpin),
    ) -> Result<u64, BlobError> {
        let mut out = BufWriter::with_capacity(self.store.clone(), key.path(), PART);
        match tokio::io::copy(reader, &mut out).await {
            Ok(n) => {
                out.shutdown()
                    .await
                    .map_err(|e| self.io(format!("writing {key}"), e))?;
                Ok(n)
            }
            Err(e) => {
                let _ = out.abort().await;
                Err(self.io(format!("writing {key}"), e))
            }
        }
    }

    /// Stores the file at `path` under `key`; returns its size.
    pub async fn put_file(&self, key: &Key, path: &Path) -> Result<u64, BlobError> {
        let mut f = tokio::fs::File::open(path)
            .await
            .map_err(|e| self.io(format!("opening {}", path.display()), e))?;
        self.put_reader(key, &mut f).await
    }

    /// The blob's size, or None when there is no blob under `key`.
    pub async fn size(&self, key: &Key) -> Result<Option<u64>, BlobError> {
        match self.store.head(&key.path()).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The blob (or the bytes `range` of it), or None when there is none. A range beyond the
    /// blob's end is an error (the caller answers 416).
    pub async fn read(
        &self,
        key: &Key,
        range: Option<Range<u64>>,
    ) -> Result<Option<Read>, BlobError> {
        let opts = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = match self.store.get_opts(&key.path(), opts).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(object_store::Error::NotModified { .. }) => return Ok(None),
            Err(e) => {
                let size = self.size(key).await?.unwrap_or(0);
                return match range {
                    Some(r) if r.end > size || r.start >= r.end => Err(BlobError::Range {
                        start: r.start,
                        end: r.end,
                        size,
                    }),
                    _ => Err(self.err(e)),
                };
            }
        };
        let (size, sent) = (got.meta.size, got.range.clone());
        let name = self.name.clone();
        let chunks = got
            .into_stream()
            .map_err(move |source| BlobError::Store {
                store: name.clone(),
                source,
            })
            .boxed();
        Ok(Some(Read {
            size,
            range: sent,
            chunks,
        }))
    }

    /// Copies the blob into a new file at `dest` (written beside it, then renamed); returns
    /// its size, or None when there is no blob under `key`.
    pub async fn fetch_to(&self, key: &Key, dest: &Path) -> Result<Option<u64>, BlobError> {
        let Some(mut read) = self.read(key, None).await? else {
            return Ok(None);
        };
        let tmp = beside(dest);
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| self.io(format!("creating {}", tmp.display()), e))?;
        let mut n = 0u64;
        while let Some(chunk) = read.chunks.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(e);
                }
            };
            n += chunk.len() as u64;
            if let Err(e) = f.write_all(&chunk).await {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(self.io(format!("writing {}", tmp.display()), e));
            }
        }
        let done = async {
            f.sync_all().await?;
            tokio::fs::rename(&tmp, dest).await
        };
        if let Err(e) = done.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(self.io(format!("writing {}", dest.display()), e));
        }
        Ok(Some(n))
    }

    /// Removes the blob under `key`; none there is not an error.
    pub async fn delete(&self, key: &Key) -> Result<(), BlobError> {
        match self.store.delete(&key.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The keys under `prefix` (a key family such as `packages/`), with their sizes.
    pub fn list(&self, prefix: &Key) -> BoxStream<'static, Result<(String, u64), BlobError>> {
        let name = self.name.clone();
        self.store
            .list(Some(&prefix.path()))
            .map(move |m| match m {
                Ok(meta) => Ok((meta.location.to_string(), meta.size)),
                Err(source) => Err(BlobError::Store {
                    store: name.clone(),
                    source,
                }),
            })
            .boxed()
    }

    /// Whether the store answers (for `/readyz`): a listing of one key family, one page.
    pub async fn check(&self) -> Result<(), BlobError> {
        let mut list = self.list(&Key::family("ready"));
        match list.next().await {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

/// A temporary name in `dest`'s directory (the rename into place stays on one file system).
fn beside(dest: &Path) -> std::path::PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{}.part", uuid::Uuid::new_v4()))
}

#[cfg(test)]
mod tests;
