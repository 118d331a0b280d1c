//! Compressed layers kept between builds, by diff_id: a layer whose tar is unchanged is not
//! compressed again. `<dir>/<diff hex>.gz` is the blob, `<dir>/<diff hex>.gz.json` what it was
//! (digest, sizes), `<dir>/<shape hex>.gz.shape` says a layer of that shape (its paths, kinds
//! and sizes, see `droplet::layers`) was kept: a layer whose shape was never kept cannot be in
//! the cache, so it is packed in one pass instead of being hashed first.
//!
//! What is trusted: the cache dir is the build's own (root's, or the CLI user's), written only
//! by this file, every file through a temporary name and a rename. A record is read capped at
//! 4 KiB and must match the tar size asked for and the blob's size on disk; the blob is then
//! used as it is, not read: when the registry has its digest nothing is read at all, and where
//! its bytes go they are checked against the digest (a registry hashes what it receives, an
//! OCI layout refuses a blob that does not hash to its name). A blob whose size is off is
//! dropped and the layer packed again. Least recently used entries go once the cache holds more
//! than its limit.

use crate::layer::{Codec, LayerBlob};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Bytes of compressed layers kept when nothing else says (about ten large apps' droplets):
/// `--layer-cache-size`, `DROPSHIP_LAYER_CACHE_SIZE`, the service's `[limits] layer_cache`.
pub const DEFAULT_MAX: u64 = 2 << 30;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct Record {
    digest: String,
    size: u64,
    tar_size: u64,
}

/// The map diff_id → compressed blob.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
    max: u64,
}

fn codec_ext(codec: Codec) -> &'static str {
    match codec {
        Codec::Gzip => "gz",
        Codec::Zstd => "zst",
    }
}

fn hex(digest: &str) -> Option<&str> {
    let h = digest.strip_prefix("sha256:")?;
    (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

impl LayerCache {
    pub fn new(dir: PathBuf, max: u64) -> Self {
        LayerCache { dir, max }
    }

    /// The blob and its record: one pair per diff_id and codec (the same tar compressed
    /// two ways is two blobs).
    fn paths(&self, diff_id: &str, codec: Codec) -> Option<(PathBuf, PathBuf)> {
        let h = hex(diff_id)?;
        let ext = codec_ext(codec);
        Some((
            self.dir.join(format!("{h}.{ext}")),
            self.dir.join(format!("{h}.{ext}.json")),
        ))
    }

    /// The blob of `diff_id` (a tar of `tar_size` bytes compressed with `codec`), linked into
    /// `blob_dir` when it is on the same file system (else used where it is); `None` when there
    /// is none or its record does not check out (then it is dropped).
    pub fn get(
        &self,
        diff_id: &str,
        tar_size: u64,
        codec: Codec,
        blob_dir: &Path,
    ) -> Option<LayerBlob> {
        let (blob, json) = self.paths(diff_id, codec)?;
        let record = read_record(&json)?;
        let len = fs::symlink_metadata(&blob)
            .ok()
            .map(|m| m.is_file().then_some(m.len()));
        let digest = hex(&record.digest);
        if record.tar_size != tar_size || digest.is_none() || len != Some(Some(record.size)) {
            tracing::warn!("cached layer {diff_id} does not match its record: dropped");
            let _ = fs::remove_file(&blob);
            let _ = fs::remove_file(&json);
            return None;
        }
        // Used now: the last to go.
        let _ = File::options()
            .write(true)
            .open(&blob)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        let path = link_into(&blob, blob_dir, digest?).unwrap_or(blob);
        Some(LayerBlob {
            digest: record.digest,
            diff_id: diff_id.to_string(),
            size: record.size,
            tar_size,
            path,
            codec,
        })
    }

    /// Whether a layer of `shape` compressed with `codec` was kept (and may still be).
    pub fn knows_shape(&self, shape: &str, codec: Codec) -> bool {
        self.shape_path(shape, codec)
            .is_some_and(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
    }

    fn shape_path(&self, shape: &str, codec: Codec) -> Option<PathBuf> {
        let h = hex(shape)?;
        Some(self.dir.join(format!("{h}.{}.shape", codec_ext(codec))))
    }

    /// Keeps a copy of `blob` (written to a temporary name, then renamed: a reader never sees
    /// half a blob), then evicts down to the limit, least recently used first (a blob's mtime:
    /// when it was put or last taken). A blob larger than the limit is not kept.
    /// `shape` (the layer's shape, when known) is marked as kept.
    pub fn put(&self, blob: &LayerBlob, shape: Option<&str>) -> io::Result<()> {
        let Some((gz, json)) = self.paths(&blob.diff_id, blob.codec) else {
            return Ok(());
        };
        // A blob the limit cannot hold would evict everything, itself last: not kept (what
        // is over a lowered limit still goes).
        if blob.size > self.max {
            return if self.dir.is_dir() {
                self.evict()
            } else {
                Ok(())
            };
        }
        fs::create_dir_all(&self.dir)?;
        // A hard link when the workspace is on the same file system (blobs are never written
        // in place: a link shares nothing that changes), else a copy.
        let tmp = tempfile::Builder::new()
            .prefix(".put-")
            .tempfile_in(&self.dir)?;
        let linked = self
            .dir
            .join(format!(".link-{}", hex(&blob.digest).unwrap_or("x")));
        let _ = fs::remove_file(&linked);
        if fs::hard_link(&blob.path, &linked).is_ok() {
            fs::rename(&linked, &gz)?;
        } else {
            io::copy(&mut File::open(&blob.path)?, &mut tmp.as_file())?;
            tmp.persist(&gz).map_err(|e| e.error)?;
        }
        let record = Record {
            digest: blob.digest.clone(),
            size: blob.size,
            tar_size: blob.tar_size,
        };
        let bytes = serde_json::to_vec(&record).map_err(io::Error::other)?;
        let tmp = tempfile::Builder::new()
            .prefix(".put-")
            .tempfile_in(&self.dir)?;
        fs::write(tmp.path(), bytes)?;
        tmp.persist(&json).map_err(|e| e.error)?;
        if let Some(p) = shape.and_then(|s| self.shape_path(s, blob.codec)) {
            let tmp = tempfile::Builder::new()
                .prefix(".put-")
                .tempfile_in(&self.dir)?;
            fs::write(tmp.path(), hex(&blob.diff_id).unwrap_or_default())?;
            tmp.persist(&p).map_err(|e| e.error)?;
        }
        self.evict()
    }

    /// Drops the least recently used blobs (and their records) over the limit, then the
    /// shape marks that named them.
    fn evict(&self) -> io::Result<()> {
        let mut blobs: Vec<(std::time::SystemTime, u64, PathBuf)> = fs::read_dir(&self.dir)?
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.ends_with(".gz") || name.ends_with(".zst")
            })
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = blobs.iter().map(|b| b.1).sum();
        blobs.sort();
        let mut gone = std::collections::HashSet::new();
        for (_, len, path) in blobs {
            if total <= self.max {
                break;
            }
            let mut record = path.clone().into_os_string();
            record.push(".json");
            let _ = fs::remove_file(record);
            fs::remove_file(&path)?;
            total -= len;
            if let Some(stem) = path.file_stem() {
                gone.insert(stem.to_string_lossy().into_owned());
            }
        }
        if !gone.is_empty() {
            self.forget_shapes(&gone);
        }
        Ok(())
    }

    /// Removes the shape marks naming a diff_id (hex) in `gone`.
    fn forget_shapes(&self, gone: &std::collections::HashSet<String>) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().ends_with(".shape") {
                continue;
            }
            let mut named = String::new();
            let read = File::open(e.path()).and_then(|f| f.take(64).read_to_string(&mut named));
            if read.is_err() || gone.contains(&named) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// A record: a few dozen bytes, so more than 4 KiB is not one.
fn read_record(json: &Path) -> Option<Record> {
    let mut bytes = Vec::new();
    File::open(json)
        .ok()?
        .take(4096)
        .read_to_end(&mut bytes)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `blob` hard-linked into `dir` as `<hex>` (already there counts); `None` when it cannot be
/// (another file system), and the caller uses it where it is.
fn link_into(blob: &Path, dir: &Path, hex: &str) -> Option<PathBuf> {
    fs::create_dir_all(dir).ok()?;
    let dest = dir.join(hex);
    match fs::hard_link(blob, &dest) {
        Ok(()) => Some(dest),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Some(dest),
        Err(_) => None,
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
