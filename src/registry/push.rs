//! Writing a built image to its target: a registry (HEAD first, mount across repositories,
//! upload what is missing from files, several blobs at once, manifest last) or an OCI layout.

use super::client::{RawManifest, Registry};
use super::layout::Layout;
use super::source::{BlobCache, Source};
use super::RegistryError;
use crate::image::BuiltImage;
use crate::refs::{LayoutRef, RegistryRef};
use crate::report::{BlobOutcome, Event, Reporter};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// How many blobs travel at once.
pub const PARALLEL_BLOBS: usize = 3;

/// A blob of the image and where its bytes are.
#[derive(Debug, Clone)]
pub struct PushBlob {
    pub digest: String,
    pub size: u64,
    /// A local file (new layers, the config); `None`: a base layer, read from the base source.
    pub file: Option<PathBuf>,
}

/// What a push did, blob by blob.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushReport {
    pub uploaded: Vec<String>,
    pub mounted: Vec<String>,
    pub existing: Vec<String>,
    pub bytes_uploaded: u64,
}

impl PushReport {
    fn add(&mut self, digest: String, size: u64, outcome: BlobOutcome) {
        match outcome {
            BlobOutcome::Exists => self.existing.push(digest),
            BlobOutcome::Mounted => self.mounted.push(digest),
            BlobOutcome::Uploaded => {
                self.bytes_uploaded += size;
                self.uploaded.push(digest)
            }
        }
    }
}

/// Everything the push needs besides the target.
pub struct PushInput<'a> {
    pub image: &'a BuiltImage,
    /// The image's blobs: the config and every layer.
    pub blobs: Vec<PushBlob>,
    /// Where base layers come from (`None`: every blob has a file).
    pub base: Option<&'a Source>,
    pub cache: &'a BlobCache,
    pub reporter: Arc<dyn Reporter>,
}

fn missing_file(digest: &str) -> RegistryError {
    RegistryError::Other(format!(
        "blob {digest} has no file and there is no base image"
    ))
}

async fn push_one(
    registry: &Registry,
    target: &RegistryRef,
    input: &PushInput<'_>,
    blob: &PushBlob,
) -> Result<BlobOutcome, RegistryError> {
    if registry.blob_exists(target, &blob.digest).await? {
        return Ok(BlobOutcome::Exists);
    }
    let path = match &blob.file {
        Some(p) => p.clone(),
        None => {
            let base = input.base.ok_or_else(|| missing_file(&blob.digest))?;
            if let Some(from) = base.registry_ref() {
                if from.registry == target.registry
                    && from.repository != target.repository
                    && registry.mount(target, from, &blob.digest).await?
                {
                    return Ok(BlobOutcome::Mounted);
                }
            }
            base.pull(&blob.digest, blob.size, input.cache).await?
        }
    };
    send(
        registry,
        target,
        &blob.digest,
        blob.size,
        &path,
        &input.reporter,
    )
    .await?;
    Ok(BlobOutcome::Uploaded)
}

/// Uploads the file at `path` as blob `digest`, its progress reported.
async fn send(
    registry: &Registry,
    target: &RegistryRef,
    digest: &str,
    size: u64,
    path: &std::path::Path,
    reporter: &Arc<dyn Reporter>,
) -> Result<(), RegistryError> {
    reporter.event(Event::BlobStart {
        digest: digest.to_string(),
        size,
    });
    let (reporter, d) = (reporter.clone(), digest.to_string());
    let progress = Arc::new(move |sent| {
        reporter.event(Event::BlobProgress {
            digest: d.clone(),
            sent,
        })
    });
    registry.upload(target, digest, path, progress).await
}

/// Sends one finished layer ahead of the image (while others are still being packed): HEAD,
/// then upload when missing. The push that follows finds it there.
pub async fn ahead(
    registry: &Registry,
    target: &RegistryRef,
    blob: &PushBlob,
    reporter: &Arc<dyn Reporter>,
) -> Result<BlobOutcome, RegistryError> {
    let path = blob
        .file
        .as_ref()
        .ok_or_else(|| missing_file(&blob.digest))?;
    if registry.blob_exists(target, &blob.digest).await? {
        return Ok(BlobOutcome::Exists);
    }
    send(registry, target, &blob.digest, blob.size, path, reporter).await?;
    reporter.event(Event::BlobDone {
        digest: blob.digest.clone(),
        size: blob.size,
        outcome: BlobOutcome::Uploaded,
    });
    Ok(BlobOutcome::Uploaded)
}

/// Counts as uploaded the blobs of `early` (sent ahead by [`ahead`]) that the push found
/// already there.
pub fn count_ahead(report: &mut PushReport, early: &HashMap<String, u64>) {
    let (ahead, existing): (Vec<String>, Vec<String>) = std::mem::take(&mut report.existing)
        .into_iter()
        .partition(|d| early.contains_key(d));
    report.existing = existing;
    for d in ahead {
        let size = early[&d];
        report.add(d, size, BlobOutcome::Uploaded);
    }
}

/// Pushes to a registry; returns the manifest digest the registry stores.
pub async fn to_registry(
    registry: &Registry,
    target: &RegistryRef,
    input: &PushInput<'_>,
) -> Result<(String, PushReport), RegistryError> {
    let mut unique: HashMap<&str, &PushBlob> = HashMap::new();
    for b in &input.blobs {
        unique.entry(b.digest.as_str()).or_insert(b);
    }
    // Futures are made up front (not by a closure inside the stream): the stream then holds
    // concrete types, which keeps the whole build future Send for the service's tasks.
    let uploads: Vec<_> = unique
        .into_values()
        .map(|blob| async move {
            let outcome = push_one(registry, target, input, blob).await?;
            input.reporter.event(Event::BlobDone {
                digest: blob.digest.clone(),
                size: blob.size,
                outcome,
            });
            Ok::<_, RegistryError>((blob.digest.clone(), blob.size, outcome))
        })
        .collect();
    let outcomes: Vec<(String, u64, BlobOutcome)> = stream::iter(uploads)
        .buffer_unordered(PARALLEL_BLOBS)
        .try_collect()
        .await?;
    let mut report = PushReport::default();
    for (d, size, o) in outcomes {
        report.add(d, size, o);
    }
    // A registry may garbage-collect between upload and manifest: check, then commit.
    let mut digests: Vec<String> = input.blobs.iter().map(|b| b.digest.clone()).collect();
    digests.sort_unstable();
    digests.dedup();
    let checks: Vec<_> = digests
        .into_iter()
        .map(|digest| async move {
            if registry.blob_exists(target, &digest).await? {
                Ok(())
            } else {
                Err(RegistryError::Remote {
                    registry: target.registry.clone(),
                    what: format!("checking blob {digest} before the manifest"),
                    detail: "the blob is gone although it was just pushed".to_string(),
                })
            }
        })
        .collect();
    stream::iter(checks)
        .buffer_unordered(PARALLEL_BLOBS * 2)
        .try_collect::<Vec<()>>()
        .await?;
    let tagged = RegistryRef {
        digest: None,
        tag: Some(target.tag.clone().unwrap_or_else(|| "latest".to_string())),
        ..target.clone()
    };
    let digest = registry
        .put_manifest(
            &tagged,
            &input.image.manifest,
            &input.image.manifest_media_type,
        )
        .await?;
    Ok((digest, report))
}

/// Writes to an OCI layout (created when missing); blobs already there are not copied.
pub async fn to_layout(
    target: &LayoutRef,
    input: &PushInput<'_>,
) -> Result<(String, PushReport), RegistryError> {
    let layout = Layout::create(&target.dir)?;
    let mut report = PushReport::default();
    for blob in &input.blobs {
        if layout.has_blob(&blob.digest) {
            report.add(blob.digest.clone(), blob.size, BlobOutcome::Exists);
            continue;
        }
        let path = match &blob.file {
            Some(p) => p.clone(),
            None => {
                let base = input.base.ok_or_else(|| missing_file(&blob.digest))?;
                base.pull(&blob.digest, blob.size, input.cache).await?
            }
        };
        let (layout_dir, digest) = (target.dir.clone(), blob.digest.clone());
        tokio::task::spawn_blocking(move || {
            Layout::open(&layout_dir)?.put_blob_file(&digest, &path)
        })
        .await
        .map_err(|e| RegistryError::Other(e.to_string()))??;
        report.add(blob.digest.clone(), blob.size, BlobOutcome::Uploaded);
    }
    let digest = layout.put_blob_bytes(&input.image.manifest)?;
    let raw = RawManifest {
        bytes: input.image.manifest.clone(),
        digest: digest.clone(),
        media_type: input.image.manifest_media_type.clone(),
    };
    layout.tag(&raw, target.tag.as_deref())?;
    Ok((digest, report))
}
