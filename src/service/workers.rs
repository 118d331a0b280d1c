//! This replica's build workers: `concurrency` of them claim the oldest waiting build from the
//! database (the queue is the `builds` table, `store::queue`), woken by this replica's
//! `POST /v3/builds` and polling every second for builds queued or freed by other replicas.
//! While a build stages its lease is renewed every third of `[limits] build_lease`; a renewal
//! that finds the lease gone stops the build (another replica has it now). A reaper fails the
//! builds whose last attempt's replica stopped answering. On SIGTERM ([`drain`]) no build is
//! claimed any more, running ones get `shutdown_grace`, and the rest are handed back.

use super::{attempt, Shared};
use crate::store::queue::{self, Claim};
use crate::store::replicas;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often idle workers look for builds queued or freed elsewhere, and the reaper runs.
const POLL: Duration = Duration::from_secs(1);
/// How long a stopping replica waits, after the grace, for handed-over builds to let go.
const HANDOVER: Duration = Duration::from_secs(5);

/// What this replica's workers share.
pub struct Queue {
    /// This replica's id (`hostname-slot`): the owner of its leases, uploads and jobs.
    pub replica: String,
    /// The data dir's slot whose id this process holds (locked while it runs).
    _slot: Option<std::fs::File>,
    wake: Notify,
    /// The builds this replica stages now, by guid.
    running: Mutex<HashMap<String, Arc<Running>>>,
    /// Claims that were retries (attempt > 1): builds whose replica stopped answering.
    pub retries: AtomicU64,
}

/// One build being staged here.
#[derive(Default)]
pub struct Running {
    /// Stops the build's scripts (the pipeline's `Runtime::stop`).
    pub stop: Arc<AtomicBool>,
    /// A renewal found the lease taken: the build is another replica's now.
    pub lost: AtomicBool,
    /// This replica is stopping and the grace is over: the build is handed back.
    pub handover: AtomicBool,
}

impl Default for Queue {
    fn default() -> Self {
        Queue::new()
    }
}

impl Queue {
    /// A queue with an id of its own, used once (no data dir to keep it in).
    pub fn new() -> Queue {
        let random = uuid::Uuid::new_v4().simple().to_string();
        Queue::with_id(format!("{}-{}", hostname(), &random[..8]), None)
    }

    /// The queue of a process on data dir `dir`: its id is the first free slot's there (see
    /// [`super::replica_slot`]), the same across restarts, so that what its previous process
    /// left (leases, uploads, jobs) is known for a dead one's at once.
    pub fn for_data_dir(dir: &std::path::Path) -> Queue {
        match super::replica_slot::take(dir) {
            Ok((id, file)) => Queue::with_id(format!("{}-{id}", hostname()), Some(file)),
            Err(e) => {
                tracing::warn!("no replica slot in {}: {e}; a fresh id", dir.display());
                Queue::new()
            }
        }
    }

    fn with_id(replica: String, slot: Option<std::fs::File>) -> Queue {
        Queue {
            replica,
            _slot: slot,
            wake: Notify::new(),
            running: Mutex::default(),
            retries: AtomicU64::new(0),
        }
    }

    /// A build was queued here: one idle worker claims it now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Running>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Builds staging here now.
    pub fn running(&self) -> usize {
        self.map().len()
    }

    /// Registers `guid` as staging here until the guard drops.
    pub(super) fn enter(&self, guid: &str) -> Entered<'_> {
        let running = Arc::new(Running::default());
        self.map().insert(guid.to_string(), running.clone());
        Entered {
            queue: self,
            guid: guid.to_string(),
            running,
        }
    }
}

/// A build registered as staging here (see [`Queue::enter`]).
pub(super) struct Entered<'a> {
    queue: &'a Queue,
    guid: String,
    pub running: Arc<Running>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.queue.map().remove(&self.guid);
    }
}

/// The host's name (`unknown` if it has none).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match String::from_utf8_lossy(&buf[..end]).trim() {
        name if ok && !name.is_empty() => name.to_string(),
        _ => "unknown".to_string(),
    }
}

/// Starts this replica's workers and its reaper.
pub fn start(state: &Shared) {
    for _ in 0..state.config.concurrency {
        tokio::spawn(worker(state.clone()));
    }
    tokio::spawn(reaper(state.clone()));
}

fn draining(state: &Shared) -> bool {
    state.draining.load(Ordering::SeqCst)
}

/// Claims and stages builds until the replica stops.
async fn worker(state: Shared) {
    while !draining(&state) {
        let (owner, lease) = (state.queue.replica.clone(), state.config.build_lease);
        match state.db.call(move |c| queue::claim(c, &owner, lease)).await {
            Ok(Some(claim)) => staged(&state, claim).await,
            Ok(None) => idle(&state).await,
            Err(e) => {
                tracing::error!("claiming a build: {e}");
                idle(&state).await;
            }
        }
    }
}

/// Waits for a wake-up or the next poll.
async fn idle(state: &Shared) {
    let _ = tokio::time::timeout(POLL, state.queue.wake.notified()).await;
}

async fn staged(state: &Shared, claim: Claim) {
    if claim.attempt > 1 {
        state.queue.retries.fetch_add(1, Ordering::Relaxed);
    }
    // Registered before the check: a drain either sees it running or is seen here.
    let entered = state.queue.enter(&claim.guid);
    if draining(state) {
        // Claimed as the stop began: handed back at once.
        return attempt::release(state, &claim).await;
    }
    attempt::run(state, claim, entered).await;
}

/// Every poll: this replica's heartbeat; the builds whose last attempt's replica stopped
/// answering failed, and the uploads and jobs of replicas not seen for a lease.
async fn reaper(state: Shared) {
    while !draining(&state) {
        liveness(&state).await;
        match state.db.call(|c| queue::reap(c)).await {
            Ok(failed) => {
                for (guid, why) in failed {
                    attempt::reaped(&state, &guid, &why).await;
                }
            }
            Err(e) => tracing::error!("failing builds out of attempts: {e}"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// At start: what this replica's previous process left is taken back at once (it is dead: this
/// one holds its slot): its builds' leases end (staged again now, or failed when out of
/// attempts), its uploads and jobs fail.
pub(super) async fn recover(state: &Shared) {
    let me = state.queue.replica.clone();
    let found = state
        .db
        .call(move |c| {
            let builds = queue::abandon(c, &me)?;
            let orphans = replicas::fail_owned_by(c, &me)?;
            Ok((builds, orphans, queue::reap(c)?))
        })
        .await;
    match found {
        Ok((builds, o, reaped)) => {
            if builds + o.uploads + o.jobs > 0 {
                tracing::warn!(
                    "this replica's previous process left {builds} build(s) staging (staged                      again), {} upload(s) and {} job(s) (failed)",
                    o.uploads,
                    o.jobs
                );
            }
            for (guid, why) in reaped {
                attempt::reaped(state, &guid, &why).await;
            }
        }
        Err(e) => tracing::error!("taking back what the previous process left: {e}"),
    }
}

/// This replica's heartbeat, then the uploads and jobs of replicas gone for a lease failed.
pub(super) async fn liveness(state: &Shared) {
    let me = state.queue.replica.clone();
    let lease = state.config.build_lease.as_millis() as i64;
    let looked = state
        .db
        .call(move |c| {
            let now = replicas::now_ms();
            replicas::heartbeat(c, &me, now)?;
            replicas::fail_orphans(c, now - lease)
        })
        .await;
    match looked {
        Ok(o) if o.uploads + o.jobs > 0 => tracing::warn!(
            "marked {} upload(s) and {} job(s) FAILED: the replica processing them stopped",
            o.uploads,
            o.jobs
        ),
        Ok(_) => {}
        Err(e) => tracing::error!("heartbeat: {e}"),
    }
}

/// Renews the lease every third of it until the build ends; a renewal that finds it gone
/// stops the build.
pub(super) async fn keep(state: Shared, claim: Claim, running: Arc<Running>) {
    let lease = state.config.build_lease;
    loop {
        tokio::time::sleep(lease / 3).await;
        let (owner, c) = (state.queue.replica.clone(), claim.clone());
        let renewed = state
            .db
            .call(move |conn| {
                let l = queue::Lease {
                    guid: &c.guid,
                    owner: &owner,
                    attempt: c.attempt,
                };
                queue::renew(conn, &l, lease)
            })
            .await;
        match renewed {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    build = %claim.guid,
                    "the build's lease was taken by another replica: stopping it here"
                );
                running.lost.store(true, Ordering::SeqCst);
                running.stop.store(true, Ordering::SeqCst);
                return;
            }
            // The database did not answer: the next renewal may (the lease lasts 3 of them).
            Err(e) => tracing::warn!(build = %claim.guid, "renewing the build's lease: {e}"),
        }
    }
}

/// Stopping: no build is claimed any more (`State::draining` is set); the running ones get
/// `[limits] shutdown_grace` to finish; those still running then are handed back (their
/// scripts stopped, their leases released for another replica to claim at once).
pub async fn drain(state: &Shared) {
    state.queue.wake.notify_waiters();
    let grace = state.config.shutdown_grace;
    tracing::info!(
        running = state.queue.running(),
        "stopping: running builds get {} to finish; the rest are handed to other replicas",
        humantime::format_duration(grace)
    );
    let deadline = tokio::time::Instant::now() + grace;
    while state.queue.running() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left: Vec<Arc<Running>> = state.queue.map().values().cloned().collect();
    if left.is_empty() {
        return;
    }
    tracing::warn!(
        running = left.len(),
        "the grace period ended with builds staging: handing them back"
    );
    for r in &left {
        r.handover.store(true, Ordering::SeqCst);
        r.stop.store(true, Ordering::SeqCst);
    }
    let deadline = tokio::time::Instant::now() + HANDOVER;
    while state.queue.running() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if state.queue.running() > 0 {
        tracing::warn!(
            running = state.queue.running(),
            "builds did not let go in time: other replicas stage them once their leases lapse"
        );
    }
}
