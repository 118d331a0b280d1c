//! The embedded registry over a shared blob store (`--blob-store`), so that any replica serves
//! any image:
//!
//! - after a build writes an image into its repository's local layout, [`publish`] puts the
//!   blobs the store lacks (manifests, configs, layers: the stack's too), then the repository's
//!   index, merged with the store's (tags other replicas added stay), last: a reader never finds
//!   a tag whose blobs are missing;
//! - an index is read from the store on every request, never cached (tags are mutable: a
//!   replica must not answer with a stale one);
//! - a blob or manifest is read from the local file when this replica has it (blobs are
//!   content-addressed: a local copy is never stale), else from the store, streamed, with
//!   `Range` (two requests: its size, then the bytes) and HEAD answered from its size.
//!
//! With the data dir as the store (the default) none of this runs: the files are the store.

use super::REF_NAME;
use crate::blob::Key;
use crate::service::blobs::Blobs;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt;
use serde_json::Value;
use std::path::Path;

/// The largest index read (an entry per droplet, a few hundred bytes each).
const MAX_INDEX: u64 = 16 << 20;
/// The largest manifest or config walked when publishing.
const MAX_MANIFEST: u64 = 4 << 20;

/// The blob under `key` if it is at most `max` bytes (None: no such blob, or larger). A
/// registry blob is content-addressed: this replica's copy is as good as the store's; an index
/// is mutable: the store's when it is shared.
pub async fn read_small(blobs: &Blobs, key: &Key, max: u64) -> Result<Option<Vec<u8>>, String> {
    if !blobs.is_shared() || key.as_str().starts_with("registry-blobs/") {
        let local = blobs.local(key);
        if let Ok(m) = tokio::fs::metadata(&local).await {
            let small = m.is_file() && m.len() <= max;
            return Ok(if small {
                tokio::fs::read(&local).await.ok()
            } else {
                None
            });
        }
        if !blobs.is_shared() {
            return Ok(None);
        }
    }
    let Some(read) = blobs.read(key, None).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    if read.size > max {
        return Ok(None);
    }
    let bytes = read
        .chunks
        .try_fold(Vec::new(), |mut all, c| async move {
            all.extend_from_slice(&c);
            Ok(all)
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(bytes))
}

/// Repository `name`'s index: the local file, or the store's when it is shared.
pub async fn index(blobs: &Blobs, name: &str) -> Option<Value> {
    let key = Key::registry_index(name).ok()?;
    let bytes = match read_small(blobs, &key, MAX_INDEX).await {
        Ok(b) => b?,
        Err(e) => {
            tracing::warn!("registry: reading {key}: {e}");
            return None;
        }
    };
    serde_json::from_slice(&bytes).ok()
}

/// The blob `digest` from the shared store (this replica has no file of it), whole or the
/// `Range` asked; `None`: the store has none either.
pub async fn serve(
    blobs: &Blobs,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Option<Response> {
    let key = Key::registry_blob(digest).ok()?;
    let len = match blobs.size(&key).await {
        Ok(s) => s?,
        Err(e) => return Some(unavailable(e)),
    };
    let Some(wanted) = super::blobs::part(headers, len) else {
        return Some(super::blobs::unsatisfiable(len));
    };
    let (status, first, count) = wanted;
    let body = if head || count == 0 {
        Body::empty()
    } else {
        let part = (status == StatusCode::PARTIAL_CONTENT).then_some(first..first + count);
        match blobs.read(&key, part).await {
            Ok(Some(read)) => Body::from_stream(read.chunks),
            Ok(None) => return None,
            Err(e) => return Some(unavailable(e)),
        }
    };
    Some(super::blobs::respond(wanted, body, len, digest))
}

fn unavailable(e: crate::blob::BlobError) -> Response {
    tracing::warn!("registry: {e}");
    super::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "the blob store did not answer".into(),
    )
}

/// Puts repository `name`'s blobs the store lacks, then its index merged with the store's.
pub async fn publish(blobs: &Blobs, layout: &Path, name: &str) -> Result<(), String> {
    if !blobs.is_shared() {
        return Ok(());
    }
    let path = layout.join("index.json");
    let local: Value = tokio::fs::read(&path)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| format!("{} is not an OCI index", path.display()))?;
    for digest in referenced(blobs, &local).await? {
        let key = Key::registry_blob(&digest).map_err(|e| e.to_string())?;
        if blobs.size(&key).await.map_err(|e| e.to_string())?.is_none() {
            blobs.publish(&key).await.map_err(|e| e.to_string())?;
        }
    }
    let key = Key::registry_index(name).map_err(|e| e.to_string())?;
    // Not `index()`: a store that fails to answer must not pass for one without tags.
    let stored = read_small(blobs, &key, MAX_INDEX)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let merged = serde_json::to_vec(&merge(stored, local)).expect("json");
    blobs
        .put_reader(&key, &mut merged.as_slice())
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Makes the image tagged `tag` of repository `name` local (a rebase reads it from the local
/// layout at `layout`): the blobs this replica lacks are fetched, then the tag is added to the
/// local index. Nothing when the store is the data dir or does not know the tag.
pub async fn localize(blobs: &Blobs, layout: &Path, name: &str, tag: &str) -> Result<(), String> {
    if !blobs.is_shared() {
        return Ok(());
    }
    let Some(stored) = index(blobs, name).await else {
        return Ok(());
    };
    let tagged = |m: &&Value| m["annotations"][REF_NAME] == tag;
    let Some(entry) = (stored["manifests"].as_array().into_iter().flatten()).find(tagged) else {
        return Ok(());
    };
    let mut todo = digests(&Value::Array(vec![entry.clone()]));
    while let Some(d) = todo.pop() {
        let key = Key::registry_blob(&d).map_err(|e| e.to_string())?;
        let path = (blobs.localize(&key).await.map_err(|e| e.to_string())?)
            .ok_or_else(|| format!("{key} is not in the blob store"))?;
        let small = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len() <= MAX_MANIFEST);
        if small.unwrap_or(false) {
            let bytes = tokio::fs::read(&path).await.map_err(|e| e.to_string())?;
            if let Ok(m) = serde_json::from_slice::<Value>(&bytes) {
                todo.extend(digests(&m["manifests"]));
                todo.extend(digests(&Value::Array(vec![m["config"].clone()])));
                todo.extend(digests(&m["layers"]));
            }
        }
    }
    let path = layout.join("index.json");
    let mut local: Value = tokio::fs::read(&path)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| format!("{} is not an OCI index", path.display()))?;
    let Some(entries) = local["manifests"].as_array_mut() else {
        return Err(format!("{} lists no manifests", path.display()));
    };
    if entries.iter().any(|m| tagged(&m)) {
        return Ok(());
    }
    entries.push(entry.clone());
    let bytes = serde_json::to_vec(&local).expect("json");
    let written = tokio::task::spawn_blocking(move || {
        crate::registry::layout::write_atomic(&path, &bytes).map_err(|e| e.to_string())
    });
    written.await.map_err(|e| e.to_string())?
}

/// Every blob `index` needs, manifests first read from this replica's files: each manifest,
/// and its config and layers (or, for an image index, its manifests' in turn).
async fn referenced(blobs: &Blobs, index: &Value) -> Result<Vec<String>, String> {
    let mut todo: Vec<String> = digests(&index["manifests"]);
    let mut all = Vec::new();
    while let Some(d) = todo.pop() {
        if all.contains(&d) {
            continue;
        }
        let key = Key::registry_blob(&d).map_err(|e| e.to_string())?;
        let bytes = tokio::fs::read(blobs.local(&key))
            .await
            .map_err(|e| format!("{key}: {e}"))?;
        if (bytes.len() as u64) <= MAX_MANIFEST {
            if let Ok(m) = serde_json::from_slice::<Value>(&bytes) {
                todo.extend(digests(&m["manifests"]));
                all.extend(digests(&Value::Array(vec![m["config"].clone()])));
                all.extend(digests(&m["layers"]));
            }
        }
        all.push(d);
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// The valid digests of a descriptor list.
fn digests(list: &Value) -> Vec<String> {
    (list.as_array().into_iter().flatten())
        .filter_map(|d| d["digest"].as_str())
        .filter(|d| super::valid_digest(d))
        .map(str::to_string)
        .collect()
}

/// `local`'s entries win (this build's tags); the store's others stay (other replicas' tags).
fn merge(stored: Option<Value>, mut local: Value) -> Value {
    let key = |m: &Value| match m["annotations"][REF_NAME].as_str() {
        Some(tag) => format!("tag {tag}"),
        None => format!("digest {}", m["digest"]),
    };
    let ours: Vec<String> = (local["manifests"].as_array().into_iter().flatten())
        .map(key)
        .collect();
    let theirs = stored
        .as_ref()
        .and_then(|s| s["manifests"].as_array())
        .into_iter()
        .flatten()
        .filter(|m| !ours.contains(&key(m)))
        .cloned();
    let mut all: Vec<Value> = theirs.collect();
    all.extend(local["manifests"].as_array().cloned().unwrap_or_default());
    local["manifests"] = Value::Array(all);
    local
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merging_keeps_other_replicas_tags_and_ours_win() {
        let entry = |tag: &str, d: &str| json!({"digest": d, "annotations": {REF_NAME: tag}});
        let stored = json!({"manifests": [entry("a", "sha256:1"), entry("b", "sha256:2")]});
        let local = json!({"schemaVersion": 2, "manifests": [entry("b", "sha256:3")]});
        let m = merge(Some(stored), local);
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(
            m["manifests"],
            json!([entry("a", "sha256:1"), entry("b", "sha256:3")])
        );
        let alone = merge(None, json!({"manifests": [entry("c", "sha256:4")]}));
        assert_eq!(alone["manifests"], json!([entry("c", "sha256:4")]));
    }
}
