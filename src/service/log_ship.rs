//! Ships a build's log to the database as it is written, so that every replica can read and
//! follow it (`store::log_chunks`): lines gather in chunks of at most [`CHUNK`] bytes, written
//! every [`FLUSH_EVERY`] or as soon as a chunk is full, a few chunks per transaction. A write
//! that fails keeps its chunks for the next one (nothing is lost while the database is away,
//! up to the log's own bound, `max_log`). [`Shipper::close`] writes the rest and waits for it:
//! the build's final state is recorded after, so a follower that sees the final state and then
//! no new chunk has read everything.

use super::log_cache::Stream;
use crate::store::{self, Db, NewChunk, StoreError};
use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Largest chunk (a chunk holds whole lines: one longer line makes a chunk of its own).
pub const CHUNK: usize = 64 * 1024;
/// How often what was written is shipped.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Buildpack output waits (a second at most) while this much is not shipped yet.
const BACKLOG: usize = 1 << 20;
/// Most chunks written in one transaction (a flush writes batches until none is left).
const BATCH: usize = 16;
/// How long `close` keeps trying to ship the rest.
const CLOSE_TRIES: u32 = 40;

/// The sending end: one per build log, its flusher a task of the runtime.
pub struct Shipper {
    ship: Arc<Ship>,
}

struct Ship {
    guid: String,
    db: Db,
    pending: Mutex<Pending>,
    /// Signalled when a flush made room (buildpack output waiting on a backlog).
    room: Condvar,
    /// Wakes the flusher early: a chunk is full, or the log is closed.
    wake: Notify,
    /// One flush at a time, in order.
    flushing: tokio::sync::Mutex<()>,
    /// Bumped after each flush: wakes this replica's followers at once.
    flushed: Arc<watch::Sender<u64>>,
}

#[derive(Default)]
struct Pending {
    chunks: Vec<NewChunk>,
    bytes: usize,
    closed: bool,
    /// The last flush failed: writers do not wait for room.
    failing: bool,
}

impl Shipper {
    /// Starts shipping build `guid`'s log (to be called within the runtime).
    pub fn start(db: Db, guid: &str, flushed: Arc<watch::Sender<u64>>) -> Shipper {
        let ship = Arc::new(Ship {
            guid: guid.to_string(),
            db,
            pending: Mutex::new(Pending::default()),
            room: Condvar::new(),
            wake: Notify::new(),
            flushing: tokio::sync::Mutex::new(()),
            flushed,
        });
        tokio::spawn(flusher(ship.clone()));
        Shipper { ship }
    }

    /// Appends one line (without its newline) written at `ns`.
    pub fn push(&self, text: &str, ns: u64, stream: Stream) {
        let mut p = self.ship.lock();
        let len = text.len() + 1;
        let full = p.chunks.last().is_none_or(|c| c.body.len() + len > CHUNK);
        if full {
            if !p.chunks.is_empty() {
                self.ship.wake.notify_one();
            }
            p.chunks.push(NewChunk::default());
        }
        let chunk = p.chunks.last_mut().expect("a chunk");
        chunk.body.push_str(text);
        chunk.body.push('\n');
        let _ = writeln!(chunk.stamps, "{len} {ns} {}", stream.letter());
        p.bytes += len;
    }

    /// Waits (a second at most, on a blocking thread only) while the backlog is large and
    /// the database answers: a buildpack printing fast cannot grow the service's memory.
    pub fn wait_for_room(&self) {
        let p = self.ship.lock();
        if p.bytes < BACKLOG || p.failing || p.closed {
            return;
        }
        self.ship.wake.notify_one();
        let _ = self
            .ship
            .room
            .wait_timeout_while(p, Duration::from_secs(1), |p| {
                p.bytes >= BACKLOG && !p.failing
            });
    }

    /// Ships what is left and stops; true when everything is in the database.
    pub async fn close(&self) -> bool {
        self.ship.lock().closed = true;
        self.ship.wake.notify_one();
        for _ in 0..CLOSE_TRIES {
            match self.ship.flush().await {
                Ok(()) => return true,
                Err(e) => tracing::warn!(build = %self.ship.guid, "shipping the log: {e}"),
            }
            tokio::time::sleep(FLUSH_EVERY).await;
        }
        false
    }
}

impl Drop for Shipper {
    /// A log dropped without `close` (the service stopping): the flusher ships the rest.
    fn drop(&mut self) {
        self.ship.lock().closed = true;
        self.ship.wake.notify_one();
    }
}

impl Ship {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes every pending chunk, [`BATCH`] in each transaction; on failure what is left
    /// stays pending, in order.
    async fn flush(&self) -> Result<(), StoreError> {
        let _one = self.flushing.lock().await;
        loop {
            let batch: Vec<NewChunk> = {
                let mut p = self.lock();
                let n = p.chunks.len().min(BATCH);
                p.chunks.drain(..n).collect()
            };
            if batch.is_empty() {
                return Ok(());
            }
            self.write(batch).await?;
        }
    }

    /// One batch in one transaction.
    async fn write(&self, batch: Vec<NewChunk>) -> Result<(), StoreError> {
        let guid = self.guid.clone();
        let (result, batch) = self
            .db
            .call(move |c| {
                let result = store::append_log_chunks(c, &guid, &batch);
                Ok((result, batch))
            })
            .await?;
        let mut p = self.lock();
        match result {
            Ok(()) => {
                p.bytes -= batch.iter().map(|c| c.body.len()).sum::<usize>();
                p.failing = false;
            }
            Err(_) => {
                let newer = std::mem::replace(&mut p.chunks, batch);
                p.chunks.extend(newer);
                p.failing = true;
            }
        }
        drop(p);
        self.room.notify_all();
        if result.is_ok() {
            self.flushed.send_modify(|n| *n += 1);
        }
        result
    }
}

/// Flushes every [`FLUSH_EVERY`] (sooner when woken) until the log is closed and shipped.
async fn flusher(ship: Arc<Ship>) {
    let mut warned = false;
    let mut tries_left = CLOSE_TRIES;
    loop {
        let _ = tokio::time::timeout(FLUSH_EVERY, ship.wake.notified()).await;
        let closed = ship.lock().closed;
        match ship.flush().await {
            Ok(()) if closed => return,
            Ok(()) => warned = false,
            Err(e) => {
                if !warned {
                    tracing::warn!(build = %ship.guid, "shipping the log (trying again): {e}");
                    warned = true;
                }
                if closed {
                    tries_left -= 1;
                    if tries_left == 0 {
                        tracing::error!(build = %ship.guid, "the log's end is not in the database");
                        return;
                    }
                }
            }
        }
    }
}
