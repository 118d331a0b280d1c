//! Compressed layers kept between builds, by diff_id: a layer whose tar is unchanged is not
//! compressed again. `<dir>/<diff hex>.gz` is the blob, `<dir>/<diff hex>.json` what it was
//! (digest, sizes). Nothing read back is trusted: a blob is used only once its bytes, copied
//! into the build's blob dir, hash to the recorded digest and size *and* decompress to the
//! diff_id and tar size asked for; otherwise the entry is dropped and the layer is packed again.
//! Least recently used entries go once the cache holds more than its limit.

use crate::layer::hash::HashWriter;
use crate::layer::{Codec, LayerBlob};
use flate2::read::GzDecoder;
use std::fs::{self, File};
use std::io::{self, Read, Write};
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

/// Reads through to a hasher (the compressed side) while a decoder reads the same bytes.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// What a cached blob must decode to.
struct Want<'a> {
    diff_id: &'a str,
    tar_size: u64,
    codec: Codec,
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

    /// The blob of `diff_id` (a tar of `tar_size` bytes) copied into `blob_dir` and verified;
    /// `None` when there is none or it does not check out (then it is dropped).
    pub fn get(
        &self,
        diff_id: &str,
        tar_size: u64,
        codec: Codec,
        blob_dir: &Path,
    ) -> Option<LayerBlob> {
        let (gz, json) = self.paths(diff_id, codec)?;
        // A record is a few dozen bytes: more is not one.
        let mut bytes = Vec::new();
        File::open(&json)
            .ok()?
            .take(4096)
            .read_to_end(&mut bytes)
            .ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        let want = Want {
            diff_id,
            tar_size,
            codec,
        };
        match self.verified_copy(&gz, &record, &want, blob_dir) {
            Ok(Some(blob)) => {
                let now = std::time::SystemTime::now();
                let _ = File::options()
                    .write(true)
                    .open(&gz)
                    .and_then(|f| f.set_modified(now));
                Some(blob)
            }
            Ok(None) => {
                tracing::warn!("cached layer {diff_id} does not match its record: dropped");
                let _ = fs::remove_file(&gz);
                let _ = fs::remove_file(&json);
                None
            }
            Err(e) => {
                tracing::debug!("cached layer {diff_id}: {e}");
                None
            }
        }
    }

    fn verified_copy(
        &self,
        gz: &Path,
        record: &Record,
        want: &Want,
        blob_dir: &Path,
    ) -> io::Result<Option<LayerBlob>> {
        let (diff_id, tar_size) = (want.diff_id, want.tar_size);
        let src = File::open(gz)?;
        if src.metadata()?.len() != record.size {
            return Ok(None);
        }
        fs::create_dir_all(blob_dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(".cached-")
            .tempfile_in(blob_dir)?;
        let (file, tmp) = tmp.into_parts();
        let copy = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, file));
        let mut tee = Tee {
            inner: src.take(record.size + 1),
            copy,
        };
        let mut tar = HashWriter::new(io::sink());
        // Decoded at most one byte past the tar it must be: a blob that inflates further is
        // not the layer, and is not inflated to the end.
        let limit = tar_size + 1;
        let decoded = match want.codec {
            Codec::Gzip => io::copy(&mut GzDecoder::new(&mut tee).take(limit), &mut tar),
            Codec::Zstd => zstd::stream::read::Decoder::new(&mut tee)
                .and_then(|d| io::copy(&mut d.take(limit), &mut tar)),
        };
        if decoded.is_err() {
            return Ok(None);
        }
        // Whatever follows the compressed stream is read too, so that it counts in the digest.
        io::copy(&mut tee, &mut io::sink())?;
        let (_, got_diff, got_tar) = tar.finish();
        let (buf, digest, size) = tee.copy.finish();
        buf.into_inner().map_err(|e| e.into_error())?;
        let ok = (got_diff.as_str(), got_tar, digest.as_str(), size)
            == (diff_id, tar_size, record.digest.as_str(), record.size);
        if !ok {
            return Ok(None);
        }
        let path = blob_dir.join(hex(&digest).expect("a sha256 digest"));
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(Some(LayerBlob {
            digest,
            diff_id: got_diff,
            size,
            tar_size,
            path,
            codec: want.codec,
        }))
    }

    /// Keeps a copy of `blob` (written to a temporary name, then renamed: a reader never sees
    /// half a blob), then evicts down to the limit, least recently used first (a blob's mtime:
    /// when it was put or last taken). A blob larger than the limit is not kept.
    pub fn put(&self, blob: &LayerBlob) -> io::Result<()> {
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
        self.evict()
    }

    /// Drops the least recently used blobs (and their records) over the limit.
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
        for (_, len, path) in blobs {
            if total <= self.max {
                break;
            }
            let mut record = path.clone().into_os_string();
            record.push(".json");
            let _ = fs::remove_file(record);
            fs::remove_file(&path)?;
            total -= len;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
