//! The content store (`content.rs`) over a shared blob store: each file goes to the store under
//! `resources/<aa>/<sha1>` before its row is written (so every replica that finds the row can
//! fetch it), a match fetches the files this replica does not have, and what is evicted or
//! forgotten leaves the store too. The index stays in the database; local files are caches.

use super::blobs::Blobs;
use super::content::Incoming;
use crate::blob::Key;
use futures_util::StreamExt;

/// Requests to the store at once.
const AT_ONCE: usize = 8;

/// Puts `files` into the store; returns those stored (a failure is logged and the file is left
/// out: a row without its blob would be matched and then not found).
pub async fn upload(blobs: &Blobs, files: Vec<Incoming>) -> Vec<Incoming> {
    futures_util::stream::iter(files)
        .map(|f| async move {
            let key = Key::resource(&f.sha1).ok()?;
            match blobs.put_file(&key, &f.path).await {
                Ok(_) => Some(f),
                Err(e) => {
                    tracing::warn!("content store: {e}");
                    None
                }
            }
        })
        .buffer_unordered(AT_ONCE)
        .filter_map(|f| async move { f })
        .collect()
        .await
}

/// Fetches the files of `sha1s` this replica does not have (those the store lacks stay
/// missing: the caller finds them so).
pub async fn fetch_missing(blobs: &Blobs, sha1s: Vec<String>) {
    futures_util::stream::iter(sha1s)
        .for_each_concurrent(AT_ONCE, |sha1| async move {
            let Ok(key) = Key::resource(&sha1) else {
                return;
            };
            if let Err(e) = blobs.localize(&key).await {
                tracing::warn!("content store: {e}");
            }
        })
        .await
}

/// Removes the files of `sha1s` from the store.
pub async fn delete(blobs: &Blobs, sha1s: Vec<String>) {
    futures_util::stream::iter(sha1s)
        .for_each_concurrent(AT_ONCE, |sha1| async move {
            let Ok(key) = Key::resource(&sha1) else {
                return;
            };
            if let Err(e) = blobs.delete(&key).await {
                tracing::warn!("content store: {e}");
            }
        })
        .await
}
