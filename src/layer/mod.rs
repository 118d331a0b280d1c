//! Deterministic layers: tar -> gzip (or zstd) -> file, with the diff_id (sha256 of the tar)
//! and the digest (sha256 of the compressed blob) computed in the same single streaming pass.

pub mod codec;
pub mod gzip;
pub mod hash;
pub mod tee;
pub mod tree;

pub use codec::Codec;
use codec::Compressor;
use hash::HashWriter;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Modification time written into every tar entry and image timestamp: `SOURCE_DATE_EPOCH`
/// when set, else one second after the epoch (some tools treat 0 as "unknown").
pub fn fixed_mtime() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1)
}

/// Packs the tree at `src` as an app layer (under `home/vcap/`, as the droplet layer is
/// packed) compressed with `codec`: what `bench` times against `tar | pigz` on the same tree.
pub fn pack_dir(src: &Path, blob_dir: &Path, codec: Codec) -> io::Result<LayerBlob> {
    let mut w = LayerWriter::with_codec(blob_dir, codec)?;
    tree::append_tree(w.tar(), src, &tree::TreeOptions::app("home/vcap/"))?;
    w.finish()
}

/// A finished, compressed blob on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:<hex>` of the compressed bytes (the blob digest).
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar (the diff_id).
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub tar_size: u64,
    pub path: PathBuf,
    /// How the blob is compressed (its media type follows).
    pub codec: Codec,
}

type Sink = HashWriter<Compressor<HashWriter<tee::Tee<BufWriter<File>>>>>;

/// Writes a tar stream that is gzipped and hashed on both sides while it is produced.
pub struct LayerWriter {
    builder: tar::Builder<Sink>,
    tmp: tempfile::TempPath,
    dir: PathBuf,
    codec: Codec,
    /// Where a copy of the compressed bytes goes, if set.
    copy: tee::Slot,
}

impl LayerWriter {
    /// Starts a gzip layer whose blob will land in `dir` as `<hex digest>`.
    pub fn create(dir: &Path) -> io::Result<Self> {
        Self::with_codec(dir, Codec::Gzip)
    }

    /// Starts a layer compressed with `codec` whose blob will land in `dir` as `<hex digest>`.
    pub fn with_codec(dir: &Path, codec: Codec) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(".layer-")
            .tempfile_in(dir)?;
        let (file, tmp) = tmp.into_parts();
        let file = BufWriter::with_capacity(256 * 1024, file);
        let (file, copy) = tee::Tee::new(file);
        let compressed = HashWriter::new(file);
        let gz = Compressor::new(compressed, codec)?;
        let mut builder = tar::Builder::new(HashWriter::new(gz));
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Deterministic);
        Ok(LayerWriter {
            builder,
            tmp,
            dir: dir.to_path_buf(),
            codec,
            copy,
        })
    }

    /// `progress` is told how many bytes of tar were written so far, as they are.
    pub fn on_progress(&mut self, progress: Box<dyn FnMut(u64) + Send>) {
        self.builder.get_mut().on_progress(progress);
    }

    /// `copy` gets the compressed bytes as they are written (after those written so far).
    pub fn tee_compressed(&mut self, copy: tee::Copy) {
        *self.copy.lock().unwrap_or_else(|p| p.into_inner()) = Some(copy);
    }

    pub fn tar(&mut self) -> &mut tar::Builder<impl Write> {
        &mut self.builder
    }

    /// Ends the archive, flushes, and moves the blob to `<dir>/<hex>`.
    pub fn finish(self) -> io::Result<LayerBlob> {
        let tar_hashed = self.builder.into_inner()?;
        let (gz, diff_id, tar_size) = tar_hashed.finish();
        let compressed = gz.finish()?;
        let (tee, digest, size) = compressed.finish();
        let buf = tee.into_inner();
        // No fsync: work-dir blobs live as long as the build; whoever keeps a blob (an OCI
        // layout, a stack cache) syncs its own copy.
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        drop(file);
        let path = self.dir.join(digest.trim_start_matches("sha256:"));
        self.tmp.persist(&path).map_err(|e| e.error)?;
        Ok(LayerBlob {
            digest,
            diff_id,
            size,
            tar_size,
            path,
            codec: self.codec,
        })
    }
}
