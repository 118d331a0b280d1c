//! The build queue is the `builds` table: a STAGING build without a live lease waits; a
//! replica's worker claims the oldest one (one UPDATE, so two workers never claim the same
//! build), holds it by a lease it renews while staging, and records its end only while the
//! lease is still its own. A lease that runs out (its replica died) lets another worker claim
//! the build again, up to `STAGING_ATTEMPTS`; then `reap` fails it, saying why. A replica that
//! stops hands what it still stages back (`release`: the attempt does not count).

use super::sql::Dialect;
use super::{now, BuildState, StoreError, STAGING_ATTEMPTS};
use super::{params, Connection, Row};
use crate::failure::{BuildFailure, FailureKind};
use std::time::Duration;

/// Milliseconds since the epoch: lease times and the queue's order.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// A build a worker holds: which attempt this is (1 = the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub guid: String,
    pub attempt: u32,
}

/// A lease held by `owner` on attempt `attempt` of build `guid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease<'a> {
    pub guid: &'a str,
    pub owner: &'a str,
    pub attempt: u32,
}

fn claim_row(r: &Row) -> super::sql::Result<Claim> {
    Ok(Claim {
        guid: r.get("guid")?,
        attempt: r.get("attempts")?,
    })
}

/// 10: the queue's columns: `lease_owner` (the replica that holds, or last held, the build),
/// `lease_until` (ms since the epoch; NULL: not held) and `queued_at` (ms, the queue's order).
pub fn create_columns(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE builds ADD COLUMN lease_owner TEXT;
         ALTER TABLE builds ADD COLUMN lease_until INTEGER;
         ALTER TABLE builds ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
         CREATE INDEX builds_queue ON builds (state, queued_at)",
    )?;
    Ok(())
}

/// The oldest waiting build (STAGING, not held or its lease run out, attempts left), now held
/// by `owner` for `lease`; None when nothing waits.
pub fn claim(c: &Connection, owner: &str, lease: Duration) -> Result<Option<Claim>, StoreError> {
    let t = now_ms();
    // PostgreSQL: other replicas' workers skip the row being claimed instead of waiting for it
    // (and then finding it taken). SQLite has one writer at a time: the UPDATE is atomic.
    let skip = match c.dialect() {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    super::one(
        c,
        &format!(
            "UPDATE builds SET lease_owner = ?1, lease_until = ?2, attempts = attempts + 1
             WHERE guid = (
                SELECT guid FROM builds
                WHERE state = ?3 AND (lease_until IS NULL OR lease_until < ?4) AND attempts < ?5
                ORDER BY queued_at, guid LIMIT 1{skip})
               AND state = ?3 AND (lease_until IS NULL OR lease_until < ?4) AND attempts < ?5
             RETURNING guid, attempts"
        ),
        params![
            owner,
            t + ms(lease),
            BuildState::Staging,
            t,
            STAGING_ATTEMPTS
        ],
        claim_row,
    )
}

/// The lease extended to now + `by`; false when it is no longer `l.owner`'s (it ran out and
/// another worker claimed the build, or the build ended): that worker must stop.
pub fn renew(c: &Connection, l: &Lease<'_>, by: Duration) -> Result<bool, StoreError> {
    let n = c.execute(
        "UPDATE builds SET lease_until = ?4
         WHERE guid = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = ?5",
        params![
            l.guid,
            l.owner,
            l.attempt,
            now_ms() + ms(by),
            BuildState::Staging
        ],
    )?;
    Ok(n == 1)
}

/// Hands the build back to the queue at once (a replica stopping): the attempt does not count.
pub fn release(c: &Connection, l: &Lease<'_>) -> Result<bool, StoreError> {
    let n = c.execute(
        "UPDATE builds SET lease_until = NULL, attempts = attempts - 1
         WHERE guid = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = ?4",
        params![l.guid, l.owner, l.attempt, BuildState::Staging],
    )?;
    Ok(n == 1)
}

/// The held build ends STAGED with `droplet` (the caller inserts the droplet in the same
/// transaction); false, and nothing changed, when the lease is no longer `l.owner`'s.
pub fn staged(tx: &Connection, l: &Lease<'_>, droplet: &str) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE builds SET state = ?4, droplet_guid = ?5, lease_until = NULL, updated_at = ?6
         WHERE guid = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = ?7",
        params![
            l.guid,
            l.owner,
            l.attempt,
            BuildState::Staged,
            droplet,
            now(),
            BuildState::Staging
        ],
    )?;
    Ok(n == 1)
}

/// The held build ends FAILED with `f`; false when the lease is no longer `l.owner`'s.
pub fn failed(c: &Connection, l: &Lease<'_>, f: &BuildFailure) -> Result<bool, StoreError> {
    let n = c.execute(
        "UPDATE builds SET state = ?4, error_kind = ?5, error = ?6, lease_until = NULL,
                updated_at = ?7
         WHERE guid = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = ?8",
        params![
            l.guid,
            l.owner,
            l.attempt,
            BuildState::Failed,
            f.kind,
            f.message,
            now(),
            BuildState::Staging
        ],
    )?;
    Ok(n == 1)
}

/// The leases `owner` holds end now (its previous process died): the builds are claimable at
/// once, their attempts counted. How many.
pub fn abandon(c: &Connection, owner: &str) -> Result<usize, StoreError> {
    Ok(c.execute(
        "UPDATE builds SET lease_until = NULL
         WHERE lease_owner = ?1 AND state = ?2 AND lease_until IS NOT NULL",
        params![owner, BuildState::Staging],
    )?)
}

/// Fails the builds whose last lease ran out with no attempt left, saying so; returns them
/// (each failed by exactly one caller, whichever replica reaps first).
pub fn reap(c: &Connection) -> Result<Vec<(String, BuildFailure)>, StoreError> {
    let t = now_ms();
    let expired: Vec<Claim> = c
        .prepare(
            "SELECT guid, attempts FROM builds
             WHERE state = ?1 AND (lease_until IS NULL OR lease_until < ?2) AND attempts >= ?3
             ORDER BY queued_at, guid",
        )?
        .query_map(params![BuildState::Staging, t, STAGING_ATTEMPTS], claim_row)?
        .collect::<Result<_, _>>()?;
    let mut failed = Vec::new();
    for Claim { guid, attempt } in expired {
        let why = BuildFailure::new(
            FailureKind::Interrupted,
            format!(
                "staging was interrupted {attempt} times (the replica staging it stopped \
                 answering): not staged again"
            ),
        );
        let n = c.execute(
            "UPDATE builds SET state = ?3, error_kind = ?4, error = ?5, lease_until = NULL,
                    updated_at = ?6
             WHERE guid = ?1 AND attempts = ?2 AND state = ?7
               AND (lease_until IS NULL OR lease_until < ?8)",
            params![
                guid,
                attempt,
                BuildState::Failed,
                why.kind,
                why.message,
                now(),
                BuildState::Staging,
                t
            ],
        )?;
        if n == 1 {
            failed.push((guid, why));
        }
    }
    Ok(failed)
}

fn count(r: &Row) -> super::sql::Result<u64> {
    Ok(r.get::<_, i64>("n")?.max(0) as u64)
}

/// Builds waiting: STAGING without a live lease, attempts left.
pub fn depth(c: &Connection) -> Result<u64, StoreError> {
    let n = super::one(
        c,
        "SELECT COUNT(*) AS n FROM builds
         WHERE state = ?1 AND (lease_until IS NULL OR lease_until < ?2) AND attempts < ?3",
        params![BuildState::Staging, now_ms(), STAGING_ATTEMPTS],
        count,
    )?;
    Ok(n.unwrap_or(0))
}

/// Live leases `owner` holds.
pub fn held(c: &Connection, owner: &str) -> Result<u64, StoreError> {
    let n = super::one(
        c,
        "SELECT COUNT(*) AS n FROM builds
         WHERE state = ?1 AND lease_owner = ?2 AND lease_until >= ?3",
        params![BuildState::Staging, owner, now_ms()],
        count,
    )?;
    Ok(n.unwrap_or(0))
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
