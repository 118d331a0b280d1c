//! The service's blob store, `state.blobs`: what replicas share besides the database (packages,
//! droplets, build logs, resource-matching content, the embedded registry's blobs and indexes).
//!
//! Every key is also a path under the data dir (`packages/<guid>.zip`, `droplets/<guid>.tgz`,
//! `logs/<guid>.log`, `resources/<aa>/<sha1>`, `registry-blobs/sha256/<hex>`,
//! `registry/<repo>/index.json`): the service writes a file there first, then [`Blobs::publish`]
//! copies it into the store; a replica that needs a file it does not have fetches it
//! ([`Blobs::localize`], atomically) or streams it from the store (`read`, through `Deref`).
//!
//! With no `--blob-store` (or one naming the data dir) the store IS the data dir: publishing is
//! nothing, localizing finds the file or nothing, and no byte is copied. Otherwise the local
//! files are read-through caches any replica may lose (the store has them all).
//!
//! For the other parts of the service: after writing a blob's file call `publish(&key)` (a
//! finished build log: `state.blobs.publish(&Key::build_log(guid))`); to read one a replica may
//! not have, `localize(&key)` (a local path) or `read(&key, range)` (a stream).

use crate::blob::{BlobError, BlobStore, Key, Location};
use crate::store::Paths;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Blobs {
    store: BlobStore,
    /// The data dir: a key's local file is `root/<key>`.
    root: PathBuf,
    /// The store is the data dir itself: nothing to copy either way.
    in_place: bool,
}

impl std::ops::Deref for Blobs {
    type Target = BlobStore;
    fn deref(&self) -> &BlobStore {
        &self.store
    }
}

impl Blobs {
    /// The store `config` names (none: the data dir).
    pub fn open(config: &super::blob_config::BlobConfig, paths: &Paths) -> anyhow::Result<Blobs> {
        let (location, in_place) = match &config.location {
            None => (Location::Local(paths.root.clone()), true),
            Some(Location::Local(dir)) => {
                let same = same_dir(dir, &paths.root);
                (Location::Local(dir.clone()), same)
            }
            Some(other) => (other.clone(), false),
        };
        let store = BlobStore::open(&location, &config.s3)?;
        Ok(Blobs {
            store,
            root: paths.root.clone(),
            in_place,
        })
    }

    /// Whether the store is apart from the data dir (shared by replicas): local files are
    /// then caches, and readers must ask the store for what is mutable (registry indexes).
    pub fn is_shared(&self) -> bool {
        !self.in_place
    }

    /// Where `key`'s local copy is (or would be).
    pub fn local(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// Copies `key`'s local file into the store (streamed; multipart when large).
    pub async fn publish(&self, key: &Key) -> Result<(), BlobError> {
        if self.in_place {
            return Ok(());
        }
        self.store.put_file(key, &self.local(key)).await.map(drop)
    }

    /// `key`'s local file, fetched from the store first when it is not there (temp file and
    /// rename: a reader never sees half of it). `None`: the store does not have it either.
    pub async fn localize(&self, key: &Key) -> Result<Option<PathBuf>, BlobError> {
        let path = self.local(key);
        if is_file(&path).await {
            return Ok(Some(path));
        }
        if self.in_place {
            return Ok(None);
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| BlobError::Io {
                    store: self.name().to_string(),
                    what: format!("creating {}", dir.display()),
                    source,
                })?;
        }
        Ok(self.store.fetch_to(key, &path).await?.map(|_| path))
    }

    /// Removes `key` from the store and its local copy (neither there is fine).
    pub async fn remove(&self, key: &Key) -> Result<(), BlobError> {
        let _ = tokio::fs::remove_file(self.local(key)).await;
        if self.in_place {
            return Ok(());
        }
        self.store.delete(key).await
    }
}

async fn is_file(path: &Path) -> bool {
    tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file())
}

/// Whether `a` and `b` are one directory (`b` exists; `a` may not yet).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
