//! Streams the droplet's big new layers to the target registry while they are compressed:
//! the packing thread hands 4 MiB chunks of a layer's compressed bytes over a bounded channel
//! (it waits when the registry is slower) to a task that PATCHes them into an upload session,
//! opened at the first full chunk (smaller layers go the usual way, from their file). When
//! the layer is finished, the session is committed with its digest and the layer is not
//! uploaded again. Any failure of a session warns once, and its layer (and every later one)
//! is uploaded from its file as before. Only layers that cannot be in the target already are
//! streamed (see [`Streamer::copy`]). `DROPSHIP_STREAM_LAYERS=0` turns streaming off.

use super::options::Targets;
use crate::layer::tee::Copy;
use crate::layer::LayerBlob;
use crate::refs::{ImageRef, RegistryRef};
use crate::registry::stream_upload::StreamError;
use crate::registry::Registry;
use crate::report::{warn, Reporter};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Bytes per PATCH.
pub const CHUNK: usize = 4 << 20;
/// Chunks waiting for their PATCH per layer (one more is being sent, one more filled).
const QUEUED: usize = 2;

/// What the packing thread sends a session's task.
enum Piece {
    Chunk(Bytes),
    /// The layer's last bytes and its digest: commit.
    Last(Bytes, String),
}

/// How a session ended: committed, or not (then the file is uploaded).
type Done = oneshot::Receiver<bool>;

/// Streams layers to the build's target registry.
pub struct Streamer {
    registry: Registry,
    target: RegistryRef,
    runtime: tokio::runtime::Handle,
    reporter: Arc<dyn Reporter>,
    /// Layers whose bytes were all handed to their session: digest → its outcome.
    finishing: Mutex<HashMap<String, Done>>,
    /// Layers committed by their session.
    streamed: Mutex<HashSet<String>>,
    /// A session failed: no new ones (warned once).
    failed: AtomicBool,
    /// The target's repository had no tag when the build started.
    new_target: bool,
}

/// A copy of one layer's compressed bytes and what is done once the layer is finished.
pub type LayerCopy = (Copy, Box<dyn FnOnce(&LayerBlob) + Send>);

impl Streamer {
    /// A streamer for `targets`' target when it is a registry (and streaming is not off);
    /// `new_target`: its repository has no tag yet. Call from within the runtime.
    pub fn new(
        registry: &Registry,
        targets: &Targets,
        new_target: bool,
        reporter: Arc<dyn Reporter>,
    ) -> Option<Arc<Streamer>> {
        let ImageRef::Registry(target) = &targets.target else {
            return None;
        };
        if std::env::var("DROPSHIP_STREAM_LAYERS").is_ok_and(|v| v == "0") {
            return None;
        }
        Some(Arc::new(Streamer {
            registry: registry.clone(),
            target: target.clone(),
            runtime: tokio::runtime::Handle::current(),
            reporter,
            finishing: Mutex::default(),
            streamed: Mutex::default(),
            failed: AtomicBool::new(false),
            new_target,
        }))
    }

    /// A copy for a layer about to be compressed; `None` once a session failed, and for a
    /// layer that may be in the target already: the target's repository has tags (earlier
    /// builds: their layers are there, found by a `HEAD` once the layer's digest is known) and
    /// the layer is not known to be new (`changed`: the layer cache kept one of its shape with
    /// other content, or the image the tag names does not have it). So a build on a runner
    /// without a layer cache sends no layer the registry has, and a first push or an edit
    /// streams.
    pub fn copy(self: &Arc<Self>, changed: bool) -> Option<LayerCopy> {
        if self.failed.load(Ordering::Relaxed) || !(self.new_target || changed) {
            return None;
        }
        let chunker = Arc::new(Mutex::new(Chunker {
            streamer: self.clone(),
            buf: Vec::new(),
            session: None,
            dead: false,
        }));
        let finish = chunker.clone();
        let done = Box::new(move |blob: &LayerBlob| lock(&finish).finish(blob));
        Some((Box::new(ChunkWriter(chunker)), done))
    }

    /// Whether `digest`'s session committed it (waits for the commit); `false` when the layer
    /// was not streamed or its session failed: the caller uploads its file.
    pub async fn committed(&self, digest: &str) -> bool {
        let done = lock(&self.finishing).remove(digest);
        let Some(done) = done else { return false };
        let ok = done.await.unwrap_or(false);
        if ok {
            lock(&self.streamed).insert(digest.to_string());
        }
        ok
    }

    /// The layers committed by their session.
    pub fn streamed(&self) -> HashSet<String> {
        lock(&self.streamed).clone()
    }

    fn fail(&self, e: &StreamError) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            let r = &self.target.registry;
            let msg = format!("{r}: streaming a layer while it is packed failed ({e}); uploading layers from their files instead");
            warn(self.reporter.as_ref(), msg);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Cuts one layer's bytes into chunks for its session's task (on the packing thread).
struct Chunker {
    streamer: Arc<Streamer>,
    buf: Vec<u8>,
    /// The task's channel and outcome, once the first chunk was full.
    session: Option<(mpsc::Sender<Piece>, Done)>,
    /// The task stopped (its session failed): the rest is not kept.
    dead: bool,
}

impl Chunker {
    fn take(&mut self, mut data: &[u8]) {
        while !self.dead && !data.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(CHUNK);
            }
            let n = data.len().min(CHUNK - self.buf.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == CHUNK {
                let chunk = Bytes::from(std::mem::take(&mut self.buf));
                self.ship(Piece::Chunk(chunk));
            }
        }
    }

    /// Sends a piece to the task (started with the first one), waiting while the queue is full.
    fn ship(&mut self, piece: Piece) {
        let s = &self.streamer;
        let (tx, _) = self.session.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUED);
            let (done_tx, done) = oneshot::channel();
            s.runtime.spawn(run(s.clone(), rx, done_tx));
            (tx, done)
        });
        if tx.blocking_send(piece).is_err() {
            self.dead = true;
            self.session = None;
            self.buf = Vec::new();
        }
    }

    /// The layer is written: its last bytes and digest go to the task, and the pipeline
    /// learns that this layer's upload is under way.
    fn finish(&mut self, blob: &LayerBlob) {
        if self.dead || self.session.is_none() {
            return;
        }
        let last = Bytes::from(std::mem::take(&mut self.buf));
        self.ship(Piece::Last(last, blob.digest.clone()));
        if let Some((_, done)) = self.session.take() {
            lock(&self.streamer.finishing).insert(blob.digest.clone(), done);
        }
    }
}

/// The packing side's [`Copy`]: never fails (a failed session only stops the copy).
struct ChunkWriter(Arc<Mutex<Chunker>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).take(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A session's task: open it, PATCH each chunk, commit with the last piece.
async fn run(s: Arc<Streamer>, mut rx: mpsc::Receiver<Piece>, done: oneshot::Sender<bool>) {
    let ok = match upload(&s, &mut rx).await {
        Ok(committed) => committed,
        Err(e) => {
            s.fail(&e);
            false
        }
    };
    let _ = done.send(ok);
}

/// `Ok(false)`: the packing stopped before the layer was finished (the session is dropped).
async fn upload(s: &Streamer, rx: &mut mpsc::Receiver<Piece>) -> Result<bool, StreamError> {
    let mut session = s.registry.start_upload(&s.target).await?;
    while let Some(piece) = rx.recv().await {
        let sent = match piece {
            Piece::Chunk(c) => session.append(c).await,
            Piece::Last(last, digest) => return session.finish(last, &digest).await.map(|_| true),
        };
        if let Err(e) = sent {
            session.abort().await;
            return Err(e);
        }
    }
    session.abort().await;
    Ok(false)
}
