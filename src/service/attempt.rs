//! One attempt at a build a worker claimed: its rows read, its log told which replica stages
//! it (and that a previous attempt's replica stopped), the pipeline run while the lease is
//! kept, and the end recorded (with the droplet, in one transaction) only if the lease is
//! still this replica's. A build handed back by a stopping replica is released instead.

use super::logs::BuildLog;
use super::workers::{self, Entered, Running};
use super::{builds, lifecycle, Shared};
use crate::failure::{BuildFailure, FailureKind};
use crate::store::queue::{self, Claim, Lease};
use crate::store::{self, App, Build, BuildState, Droplet, Package, StoreError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// The lease `claim` is held by, owned by this replica.
fn lease<'a>(state: &'a Shared, claim: &'a Claim) -> Lease<'a> {
    Lease {
        guid: &claim.guid,
        owner: &state.queue.replica,
        attempt: claim.attempt,
    }
}

/// Runs `f` on the database with this replica's lease on `claim`.
async fn with_lease<T: Send + 'static>(
    state: &Shared,
    claim: &Claim,
    f: impl for<'c> FnOnce(&mut crate::store::Connection<'c>, &Lease<'_>) -> Result<T, StoreError>
        + Send
        + 'static,
) -> Result<T, StoreError> {
    let (s, c) = (state.clone(), claim.clone());
    state.db.call(move |conn| f(conn, &lease(&s, &c))).await
}

/// Hands the build back to the queue (the attempt does not count).
pub(super) async fn release(state: &Shared, claim: &Claim) {
    if let Err(e) = with_lease(state, claim, |c, l| queue::release(c, l)).await {
        tracing::error!("build {}: handing it back: {e}", claim.guid);
    }
}

/// Stages the claimed build (registered as running here: `entered`), or fails it when it
/// cannot be.
pub(super) async fn run(state: &Shared, claim: Claim, entered: Entered<'_>) {
    let g = claim.guid.clone();
    let found = state
        .db
        .call(move |c| {
            let Some(b) = store::get_build(c, &g)? else {
                return Ok(None);
            };
            let app = store::get_app(c, &b.app_guid)?;
            let pkg = store::get_package(c, &b.package_guid)?;
            Ok(Some((b, app, pkg)))
        })
        .await;
    let log = BuildLog::open(state, &claim.guid);
    match (found, log) {
        (Ok(Some((build, Some(app), Some(pkg)))), Ok(log)) => {
            let span = lifecycle::span(&build, &app);
            let held = Held { build, app, pkg };
            stage(state, &claim, held, Arc::new(log), entered)
                .instrument(span)
                .await
        }
        (Ok(Some(_)), log) => {
            let why = match log {
                Ok(_) => "the build's app or package was deleted before it was staged".into(),
                Err(e) => format!("the build's log cannot be opened: {e}"),
            };
            let why = BuildFailure::new(FailureKind::Other, why);
            let _ = end(state, &claim, None, Err(why)).await;
        }
        (Ok(None), _) => {} // deleted with its app
        (Err(e), _) => {
            tracing::error!("build {}: reading it: {e}", claim.guid);
            release(state, &claim).await;
        }
    }
}

/// The rows of a claimed build.
struct Held {
    build: Build,
    app: App,
    pkg: Package,
}

async fn stage(
    state: &Shared,
    claim: &Claim,
    held: Held,
    log: Arc<BuildLog>,
    entered: Entered<'_>,
) {
    let running = entered.running.clone();
    let replica = &state.queue.replica;
    let total = store::STAGING_ATTEMPTS;
    log.line(&match claim.attempt {
        1 => format!("==> staging on {replica} (attempt 1 of {total})"),
        n => format!(
            "==> the previous attempt's replica stopped before this build ended: \
             staging it (attempt {n} of {total}) on {replica}"
        ),
    });
    lifecycle::started(replica, claim.attempt);
    log.line(&format!(
        "==> staging {} with stack {}",
        held.app.name, held.build.stack
    ));
    let keeper = tokio::spawn(workers::keep(state.clone(), claim.clone(), running.clone()));
    let started = Instant::now();
    let (build, app, pkg) = (&held.build, &held.app, &held.pkg);
    let outcome = builds::stage(state, build, app, pkg, &log, running.stop.clone()).await;
    keeper.abort();
    if !still_ours(state, claim, &running, outcome.is_ok(), &log).await {
        return;
    }
    match &outcome {
        Ok(d) => {
            log.line(&format!("==> droplet {} image {}", d.guid, d.image));
            lifecycle::staged(&d.guid, started.elapsed());
        }
        Err(f) => {
            log.line(&format!("==> staging failed: {}", f.cf_error()));
            lifecycle::failed(f, started.elapsed());
        }
    }
    let _ = end(state, claim, Some(&log), outcome).await;
    drop(entered);
}

/// Whether this replica still holds the build once staging is over (renewed for the record);
/// else nothing is recorded: the build was taken over, or handed back (`handover` with the
/// staging stopped), which the log says.
async fn still_ours(
    state: &Shared,
    claim: &Claim,
    running: &Running,
    staged: bool,
    log: &BuildLog,
) -> bool {
    if running.handover.load(Ordering::SeqCst) && !staged {
        log.line(&format!(
            "==> {} is stopping: this build is handed over to another replica",
            state.queue.replica
        ));
        release(state, claim).await;
        return false;
    }
    let by = state.config.build_lease;
    let renewed = with_lease(state, claim, move |c, l| queue::renew(c, l, by)).await;
    if running.lost.load(Ordering::SeqCst) || !matches!(renewed, Ok(true)) {
        tracing::warn!(
            build = %claim.guid,
            "the build is no longer this replica's: this attempt's end is not recorded"
        );
        return false;
    }
    true
}

/// The build's end in the store, if the lease is still this replica's: STAGED with its droplet
/// (inserted in the same transaction), or FAILED; its log finished first (followers stop at
/// the final state once they have read the log to its end).
async fn end(
    state: &Shared,
    claim: &Claim,
    log: Option<&BuildLog>,
    outcome: Result<Droplet, BuildFailure>,
) -> Result<bool, StoreError> {
    if let Some(log) = log {
        log.finish(match outcome {
            Ok(_) => BuildState::Staged,
            Err(_) => BuildState::Failed,
        })
        .await;
    }
    let ended = with_lease(state, claim, move |c, l| {
        let tx = c.transaction()?;
        let ended = match &outcome {
            Ok(d) => {
                let ours = queue::staged(&tx, l, &d.guid)?;
                if ours {
                    store::insert_droplet(&tx, d)?;
                }
                ours
            }
            Err(f) => queue::failed(&tx, l, f)?,
        };
        if ended {
            tx.commit()?;
        }
        Ok(ended)
    })
    .await;
    match &ended {
        Ok(true) => {}
        Ok(false) => tracing::warn!(build = %claim.guid, "the build's end is not recorded: \
                                    it is no longer this replica's"),
        Err(e) => tracing::error!(build = %claim.guid, "recording the build's end: {e}"),
    }
    state.builds_ended.send_modify(|n| *n += 1);
    ended
}

/// A build the reaper failed (its last attempt's replica stopped answering): its log says so.
pub(super) async fn reaped(state: &Shared, guid: &str, why: &BuildFailure) {
    tracing::warn!(build = %guid, "{}", why.message);
    if let Ok(log) = BuildLog::open(state, guid) {
        log.line(&format!("==> {}", why.message));
        log.finish(BuildState::Failed).await;
    }
    state.builds_ended.send_modify(|n| *n += 1);
}
