//! The build queue on PostgreSQL: every replica's workers claim jobs with `FOR UPDATE SKIP
//! LOCKED` (no two claim one job), hold them by a lease they renew while staging, and complete
//! or fail them. A job whose lease ran out (its replica died) is claimed again by another
//! worker, up to its `max_attempts`; then `reap` fails it with a reason that says so. A replica
//! that stops releases what it has not started.

use super::PgError;
use deadpool_postgres::Pool;
use std::time::Duration;

/// A job a worker holds: the build, and which attempt this is (1 = the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub build_guid: String,
    pub attempt: u32,
}

/// A job given up: its build and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    pub build_guid: String,
    pub reason: String,
}

#[derive(Clone)]
pub struct PgQueue {
    pool: Pool,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl PgQueue {
    pub fn new(pool: Pool) -> PgQueue {
        PgQueue { pool }
    }

    /// Queues `build_guid` (once: queuing it again changes nothing).
    pub async fn push(&self, build_guid: &str, max_attempts: u32) -> Result<(), PgError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO build_queue (build_guid, state, max_attempts) VALUES ($1, 'QUEUED', $2)
             ON CONFLICT (build_guid) DO NOTHING",
            &[&build_guid, &(max_attempts.max(1) as i32)],
        )
        .await?;
        Ok(())
    }

    /// The oldest waiting job (queued, or running on a lease that ran out with attempts
    /// left), now held by `holder` for `lease`; None when there is none.
    pub async fn claim(&self, holder: &str, lease: Duration) -> Result<Option<Lease>, PgError> {
        let c = self.pool.get().await?;
        let row = c
            .query_opt(
                "UPDATE build_queue SET state = 'RUNNING', holder = $1,
                        lease_until = now() + make_interval(secs => $2),
                        attempts = attempts + 1, updated_at = now()
                 WHERE id = (
                    SELECT id FROM build_queue
                    WHERE state = 'QUEUED'
                       OR (state = 'RUNNING' AND lease_until < now() AND attempts < max_attempts)
                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, build_guid, attempts",
                &[&holder, &secs(lease)],
            )
            .await?;
        Ok(row.map(|r| Lease {
            id: r.get(0),
            build_guid: r.get(1),
            attempt: r.get::<_, i32>(2) as u32,
        }))
    }

    /// Extends `lease`; false when `holder` no longer holds it (it ran out and another worker
    /// took the job: this worker must stop working on it).
    pub async fn renew(&self, lease: &Lease, holder: &str, by: Duration) -> Result<bool, PgError> {
        let c = self.pool.get().await?;
        let n = c
            .execute(
                "UPDATE build_queue SET lease_until = now() + make_interval(secs => $3),
                        updated_at = now()
                 WHERE id = $1 AND holder = $2 AND state = 'RUNNING' AND attempts = $4",
                &[&lease.id, &holder, &secs(by), &(lease.attempt as i32)],
            )
            .await?;
        Ok(n == 1)
    }

    /// Ends the job: done, or failed with `error`. False when `holder` had lost it.
    pub async fn finish(
        &self,
        lease: &Lease,
        holder: &str,
        error: Option<&str>,
    ) -> Result<bool, PgError> {
        let state = if error.is_some() { "FAILED" } else { "DONE" };
        let c = self.pool.get().await?;
        let n = c
            .execute(
                "UPDATE build_queue SET state = $3, last_error = $4, holder = NULL,
                        lease_until = NULL, updated_at = now()
                 WHERE id = $1 AND holder = $2 AND state = 'RUNNING' AND attempts = $5",
                &[&lease.id, &holder, &state, &error, &(lease.attempt as i32)],
            )
            .await?;
        Ok(n == 1)
    }

    /// Gives the job back to the queue (a replica stopping before it started it); the attempt
    /// does not count.
    pub async fn release(&self, lease: &Lease, holder: &str) -> Result<bool, PgError> {
        let c = self.pool.get().await?;
        let n = c
            .execute(
                "UPDATE build_queue SET state = 'QUEUED', holder = NULL, lease_until = NULL,
                        attempts = attempts - 1, updated_at = now()
                 WHERE id = $1 AND holder = $2 AND state = 'RUNNING' AND attempts = $3",
                &[&lease.id, &holder, &(lease.attempt as i32)],
            )
            .await?;
        Ok(n == 1)
    }

    /// Fails the jobs whose last lease ran out with no attempt left; returns them, so that
    /// their builds are failed with the reason.
    pub async fn reap(&self) -> Result<Vec<GaveUp>, PgError> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "UPDATE build_queue SET state = 'FAILED', holder = NULL, lease_until = NULL,
                        last_error = 'staging was interrupted ' || attempts ||
                            ' times (the replica staging it stopped answering); not retried',
                        updated_at = now()
                 WHERE state = 'RUNNING' AND lease_until < now() AND attempts >= max_attempts
                 RETURNING build_guid, last_error",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| GaveUp {
                build_guid: r.get(0),
                reason: r.get(1),
            })
            .collect())
    }

    /// Jobs waiting (not running), for metrics and for workers deciding to poll.
    pub async fn depth(&self) -> Result<u64, PgError> {
        let c = self.pool.get().await?;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM build_queue WHERE state = 'QUEUED'
                    OR (state = 'RUNNING' AND lease_until < now())",
                &[],
            )
            .await?
            .get(0);
        Ok(n as u64)
    }

    /// Leases `holder` holds now.
    pub async fn held(&self, holder: &str) -> Result<u64, PgError> {
        let c = self.pool.get().await?;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM build_queue WHERE state = 'RUNNING' AND holder = $1
                    AND lease_until >= now()",
                &[&holder],
            )
            .await?
            .get(0);
        Ok(n as u64)
    }
}
