//! A named lock shared by the replicas (`store::replicas::try_lock`): taken for [`HOLD`] at a
//! time and renewed while its work runs, so that a replica dying with it held frees it soon.

use super::Shared;
use crate::store::replicas;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a lock is held before its holder must renew it.
const HOLD: Duration = Duration::from_secs(30);
/// How long a taker waits for a lock someone else holds.
const WAIT: Duration = Duration::from_secs(60);

/// Runs `work` holding lock `name`; an error when the lock could not be had within [`WAIT`]
/// or the database did not answer.
pub async fn hold<T>(
    state: &Shared,
    name: &str,
    work: impl Future<Output = T>,
) -> Result<T, String> {
    let started = Instant::now();
    while !take(state, name).await? {
        if started.elapsed() > WAIT {
            return Err(format!(
                "{name} stayed locked by another replica for {WAIT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let renew = async {
        loop {
            tokio::time::sleep(HOLD / 3).await;
            let _ = take(state, name).await;
        }
    };
    let out = tokio::select! {
        out = work => out,
        _ = renew => unreachable!("renews until the work ends"),
    };
    let (n, me) = (name.to_string(), state.queue.replica.clone());
    if let Err(e) = state.db.call(move |c| replicas::unlock(c, &n, &me)).await {
        tracing::warn!("unlocking {name}: {e} (it frees itself in {HOLD:?})");
    }
    Ok(out)
}

async fn take(state: &Shared, name: &str) -> Result<bool, String> {
    let (n, me) = (name.to_string(), state.queue.replica.clone());
    let until = replicas::now_ms() + HOLD.as_millis() as i64;
    (state
        .db
        .call(move |c| replicas::try_lock(c, &n, &me, until))
        .await)
        .map_err(|e| e.to_string())
}
