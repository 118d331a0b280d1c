//! The droplet as image layers under `/home/vcap`, cut by [`super::plan`]: each layer holds
//! its entries and their parent directories (the same headers wherever they appear), so each
//! is valid alone and their union is the droplet. When the [`LayerCache`] kept a layer of the
//! same shape (paths, kinds, sizes), the layer's tar is hashed first (its diff_id, cheap next
//! to deflate) and the blob taken from the cache when it has that diff_id; else the tar is
//! written through the compressor once. Layers are packed by a worker per core.

use super::cache::LayerCache;
use super::plan::{self, Chunk, Group, Item};
use super::PackOptions;
use crate::layer::hash::HashWriter;
use crate::layer::tree::{append_entry, append_parent_dir, walk, Owner, Root, TreeOptions};
use crate::layer::tree::{TreeStats, Walked};
use crate::layer::{fixed_mtime, Codec, LayerBlob, LayerWriter};
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A layer of the droplet.
#[derive(Debug, Clone)]
pub struct AppLayer {
    pub blob: LayerBlob,
    /// What it holds, e.g. `app dependencies 2/5`.
    pub holds: String,
    /// Its blob came from the layer cache (nothing was compressed).
    pub reused: bool,
}

type Progress = Box<dyn FnMut(u64) + Send>;
/// Told of each layer as soon as it is packed (to upload it while others are packed).
pub type OnLayer<'a> = &'a (dyn Fn(&LayerBlob) + Sync);
/// Asked for a copy of each new layer's compressed bytes as they are written (to stream it
/// out), whose second part is told the layer once it is finished. Its argument says whether
/// the layer is known to be new (the cache kept one of its shape with other content, or the
/// image the target's tag names does not have it).
pub type OnCompress<'a> = &'a (dyn Fn(bool) -> Option<LayerCopy> + Sync);
pub type LayerCopy = (crate::layer::tee::Copy, Finished);
/// Told the layer once it is finished (its copy's end).
pub type Finished = Box<dyn FnOnce(&LayerBlob) + Send>;
/// A chunk's blob and whether it came from the cache.
type Packed = io::Result<(LayerBlob, bool)>;

/// What every layer's packing shares.
struct Ctx<'a> {
    root: Root,
    walked: &'a [Walked],
    index: HashMap<&'a Path, usize>,
    opts: TreeOptions,
    blob_dir: &'a Path,
    codec: Codec,
    cache: Option<&'a LayerCache>,
    remote: Option<&'a RemoteLayers>,
    /// Tar bytes packed or found so far, and who is told.
    done: Arc<AtomicU64>,
    progress: Option<Arc<Mutex<Progress>>>,
    on_layer: Option<OnLayer<'a>>,
    on_compress: Option<OnCompress<'a>>,
}

/// Layers the target registry holds (the image its tag named when the build started), by
/// diff_id: the blob's digest, size and compression. A layer found there is neither
/// compressed nor sent: the push finds it by `HEAD`.
pub type RemoteLayers = HashMap<String, (String, u64, Codec)>;

/// The droplet at `droplet` as layers written to `blob_dir` (see [`PackOptions`]).
pub fn app_layers(droplet: &Path, blob_dir: &Path, o: PackOptions) -> io::Result<Vec<AppLayer>> {
    let PackOptions {
        codec,
        cache,
        remote,
        progress,
        on_layer,
        on_compress,
        ..
    } = o;
    let mut walked = Vec::new();
    walk(droplet, |w| {
        walked.push(w);
        Ok(())
    })?;
    let items: Vec<Item> = walked
        .iter()
        .map(|w| Item {
            rel: &w.rel,
            file: w.meta.is_file().then_some(w.meta.len()),
        })
        .collect();
    let chunks = plan::plan(&items);
    let ctx = Ctx {
        root: Root::open(droplet)?,
        index: walked
            .iter()
            .enumerate()
            .map(|(i, w)| (w.rel.as_path(), i))
            .collect(),
        walked: &walked,
        opts: TreeOptions::app("home/vcap/"),
        blob_dir,
        codec,
        cache,
        remote: remote.filter(|r| !r.is_empty()),
        done: Arc::new(AtomicU64::new(0)),
        progress: progress.map(|p| Arc::new(Mutex::new(p))),
        on_layer,
        on_compress,
    };
    let blobs = pack_all(&ctx, &chunks)?;
    Ok(describe(&chunks, blobs))
}

/// Packs every chunk, a worker per core taking the next one; results in chunk order.
fn pack_all(ctx: &Ctx, chunks: &[Chunk]) -> io::Result<Vec<(LayerBlob, bool)>> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Packed>>> = chunks.iter().map(|_| Mutex::new(None)).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(chunks.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else { break };
                let r = pack(ctx, chunk);
                if let (Ok((blob, _)), Some(tell)) = (&r, ctx.on_layer) {
                    tell(blob);
                }
                let failed = r.is_err();
                *results[i].lock().expect("not poisoned") = Some(r);
                if failed {
                    // The others stop at their next chunk.
                    next.store(chunks.len(), Ordering::Relaxed);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("not poisoned")
                .unwrap_or_else(|| Err(io::Error::other("droplet packing stopped")))
        })
        .collect()
}

/// `app dependencies 2/5` and so on, from the chunks' groups.
fn describe(chunks: &[Chunk], blobs: Vec<(LayerBlob, bool)>) -> Vec<AppLayer> {
    let count = |g: &Group| chunks.iter().filter(|c| c.group == *g).count();
    let mut seen: HashMap<&Group, usize> = HashMap::new();
    chunks
        .iter()
        .zip(blobs)
        .map(|(c, (blob, reused))| {
            let n = seen.entry(&c.group).or_default();
            *n += 1;
            AppLayer {
                blob,
                holds: format!("{} {}/{}", c.group.describe(), n, count(&c.group)),
                reused,
            }
        })
        .collect()
}

/// One layer. When the cache has kept a layer of its shape, or the target registry holds
/// layers, its tar is hashed first and the blob taken from the cache, or from the registry,
/// if either has that diff_id; otherwise (no cache, a shape never kept: the cache cannot have
/// it) it is packed in one pass, and kept in the cache.
fn pack(ctx: &Ctx, chunk: &Chunk) -> Packed {
    let shape = ctx.cache.map(|_| shape(ctx, chunk));
    let known = match (ctx.cache, &shape) {
        (Some(c), Some(s)) => c.knows_shape(s, ctx.codec),
        _ => false,
    };
    let mut expect = None;
    if known || ctx.remote.is_some() {
        let (diff_id, tar_size) = hash(ctx, chunk)?;
        let cached = ctx
            .cache
            .filter(|_| known)
            .and_then(|c| c.get(&diff_id, tar_size, ctx.codec, ctx.blob_dir));
        if let Some(blob) = cached.or_else(|| in_registry(ctx, &diff_id, tar_size)) {
            tell(ctx, tar_size);
            return Ok((blob, true));
        }
        expect = Some(diff_id);
    }
    // Known to be new: the cache kept this shape with other content, or the registry's image
    // does not have it.
    let (blob, finished) = compress(ctx, chunk, expect.is_some())?;
    if let Some(d) = expect.filter(|d| *d != blob.diff_id) {
        return Err(io::Error::other(format!(
            "the droplet changed while it was packed (layer {d} then {})",
            blob.diff_id
        )));
    }
    if let Some(f) = finished {
        f(&blob);
    }
    if let Some(c) = ctx.cache {
        if let Err(e) = c.put(&blob, shape.as_deref()) {
            tracing::warn!("keeping layer {} in the layer cache: {e}", blob.diff_id);
        }
    }
    Ok((blob, false))
}

/// The target registry's blob of `diff_id` in the codec asked for: no file (the push finds the
/// blob there and reads nothing).
fn in_registry(ctx: &Ctx, diff_id: &str, tar_size: u64) -> Option<LayerBlob> {
    let (digest, size, codec) = ctx.remote?.get(diff_id)?;
    let hex = digest.strip_prefix("sha256:")?;
    (*codec == ctx.codec).then(|| LayerBlob {
        digest: digest.clone(),
        diff_id: diff_id.to_string(),
        size: *size,
        tar_size,
        path: ctx.blob_dir.join(hex),
        codec: *codec,
    })
}

/// The chunk's tar hashed: its diff_id and size.
fn hash(ctx: &Ctx, chunk: &Chunk) -> io::Result<(String, u64)> {
    let mut hashed = tar::Builder::new(HashWriter::new(io::sink()));
    hashed.mode(tar::HeaderMode::Deterministic);
    hashed.follow_symlinks(false);
    write_chunk(&mut hashed, ctx, chunk)?;
    let (_, diff_id, tar_size) = hashed.into_inner()?.finish();
    Ok((diff_id, tar_size))
}

/// The chunk's tar compressed into a blob, progress told as it goes, its compressed bytes
/// copied out as they are written when `on_compress` asks (then told the finished blob).
fn compress(ctx: &Ctx, chunk: &Chunk, changed: bool) -> io::Result<(LayerBlob, Option<Finished>)> {
    let mut w = LayerWriter::with_codec(ctx.blob_dir, ctx.codec)?;
    let copy = ctx.on_compress.and_then(|c| c(changed));
    let finished = copy.map(|(sink, finished)| {
        w.tee_compressed(sink);
        finished
    });
    let mut last = 0;
    let (done, progress) = (ctx.done.clone(), ctx.progress.clone());
    w.on_progress(Box::new(move |n| {
        let total = done.fetch_add(n - last, Ordering::Relaxed) + n - last;
        last = n;
        if let Some(p) = &progress {
            (p.lock().expect("not poisoned"))(total);
        }
    }));
    write_chunk(w.tar(), ctx, chunk)?;
    Ok((w.finish()?, finished))
}

/// `sha256:` of what the chunk's tar says of each entry apart from content and modes: path,
/// kind, and size (files, links). Two equal tars have equal shapes, so a shape the cache never
/// kept means a tar it does not have; equal shapes say nothing of content.
fn shape(ctx: &Ctx, chunk: &Chunk) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for &i in &chunk.entries {
        let w = &ctx.walked[i];
        let (kind, size) = if w.meta.is_dir() {
            (b'd', 0)
        } else if w.meta.is_symlink() {
            (b'l', w.meta.len())
        } else {
            (b'f', w.meta.len())
        };
        h.update(w.rel.as_os_str().as_encoded_bytes());
        h.update([0, kind]);
        h.update(size.to_le_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn tell(ctx: &Ctx, bytes: u64) {
    let total = ctx.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
    if let Some(p) = &ctx.progress {
        (p.lock().expect("not poisoned"))(total);
    }
}

/// The chunk's tar: `home/`, the droplet's root as `home/vcap/`, then each entry after
/// whichever of its parent directories this layer has not yet written.
fn write_chunk<W: Write>(tar: &mut tar::Builder<W>, ctx: &Ctx, chunk: &Chunk) -> io::Result<()> {
    let mut stats = TreeStats::default();
    append_parent_dir(tar, "home/", 0o755, Owner::ROOT, fixed_mtime())?;
    let mut written: HashSet<&Path> = HashSet::new();
    for &i in &chunk.entries {
        let rel = ctx.walked[i].rel.as_path();
        let mut parents: Vec<&Path> = rel
            .ancestors()
            .skip(1)
            .take_while(|a| !written.contains(a))
            .collect();
        parents.reverse();
        for p in parents {
            let at = *ctx
                .index
                .get(p)
                .ok_or_else(|| io::Error::other(format!("{} left the walk", p.display())))?;
            append_entry(tar, &ctx.root, &ctx.walked[at], &ctx.opts, &mut stats)?;
            written.insert(p);
        }
        if ctx.walked[i].meta.is_dir() && !written.insert(rel) {
            continue;
        }
        append_entry(tar, &ctx.root, &ctx.walked[i], &ctx.opts, &mut stats)?;
    }
    Ok(())
}
