//! The bits' files, hashed for the content store a batch at a time.

use crate::service::content::{self, Incoming};

/// Files hashed per batch sent by [`hash_tree`].
const HASH_BATCH: usize = 1000;

/// The regular files of the extracted bits worth keeping (see `content::MIN_SIZE`), hashed
/// and sent in batches; stops when the receiver is gone.
pub(super) fn hash_tree(
    tree: &std::path::Path,
    max: u64,
    tx: &tokio::sync::mpsc::Sender<Vec<Incoming>>,
) {
    let mut out = Vec::with_capacity(HASH_BATCH);
    for entry in walkdir::WalkDir::new(tree).follow_links(false).min_depth(1) {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let len = meta.len();
        if len < content::MIN_SIZE || len > max {
            continue;
        }
        match content::hash_file(entry.path()) {
            Ok((sha1, size)) if size == len => out.push(Incoming {
                path: entry.path().to_path_buf(),
                sha1,
                size,
            }),
            Ok(_) => {}
            Err(e) => tracing::warn!("content store: hashing {}: {e}", entry.path().display()),
        }
        if out.len() == HASH_BATCH {
            let full = std::mem::replace(&mut out, Vec::with_capacity(HASH_BATCH));
            if tx.blocking_send(full).is_err() {
                return;
            }
        }
    }
    if !out.is_empty() {
        let _ = tx.blocking_send(out);
    }
}
