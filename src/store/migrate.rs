//! Schema changes after the first schema, in order, counted by SQLite's `user_version`: a
//! database is brought to the newest version when it is opened, each step in one transaction.
//! A database written by an older dropship keeps working; an older dropship reading a newer
//! database ignores the added columns.

use super::StoreError;
use crate::failure::FailureKind;
use rusqlite::{params, Connection, Transaction};

/// One schema change, run inside its transaction.
type Step = fn(&Transaction<'_>) -> Result<(), StoreError>;

/// The steps; `user_version` is the number of steps applied.
pub(crate) const STEPS: &[Step] = &[
    failure_kind,
    jobs,
    app_state,
    super::spaces::create_tables,
    super::processes::create_table,
    app_lifecycle,
    job_warnings,
    job_result,
    build_attempts,
    super::queue::create_columns,
    super::log_chunks::create_chunks_table,
    resources_lru,
    super::replicas::create_table,
    super::replicas::create_locks,
];

pub fn migrate(c: &mut Connection) -> Result<(), StoreError> {
    let done: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, step) in (0i64..).zip(STEPS).skip(done.max(0) as usize) {
        let tx = c.transaction()?;
        step(&tx)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// 1: `builds.error_kind`; `builds.error` keeps only the message. Failed builds of older
/// versions stored `"<CF name> - <message>"`: the kind is read back from that text, here and
/// only here.
fn failure_kind(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("ALTER TABLE builds ADD COLUMN error_kind TEXT")?;
    let mut stmt = tx.prepare("SELECT guid, error FROM builds WHERE state = 'FAILED'")?;
    let failed = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (guid, error) in failed {
        let (kind, message) = legacy_failure(error.as_deref().unwrap_or(""));
        tx.execute(
            "UPDATE builds SET error_kind = ?2, error = ?3 WHERE guid = ?1",
            params![guid, kind.to_string(), message],
        )?;
    }
    Ok(())
}

/// 2: `jobs`, the asynchronous work of a request (CF's `/v3/jobs`), e.g. an app's deletion.
fn jobs(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE jobs (
            guid TEXT PRIMARY KEY, operation TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    )?;
    Ok(())
}

/// 3: `apps.state`, the desired state (STARTED or STOPPED). Before, an app with a current
/// droplet counted as started: it stays so.
fn app_state(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE apps ADD COLUMN state TEXT NOT NULL DEFAULT 'STOPPED';
         UPDATE apps SET state = 'STARTED' WHERE current_droplet IS NOT NULL",
    )?;
    Ok(())
}

/// 6: `apps.buildpacks` (JSON list) and `apps.stack`: what the app's builds use unless a
/// build names its own (set by a manifest).
fn app_lifecycle(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE apps ADD COLUMN buildpacks TEXT NOT NULL DEFAULT '[]';
         ALTER TABLE apps ADD COLUMN stack TEXT",
    )?;
    Ok(())
}

/// 7: `jobs.warnings` (JSON list): what a job tells although it went on.
fn job_warnings(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("ALTER TABLE jobs ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]'")?;
    Ok(())
}

/// 8: `jobs.result`, what a finished job reports (JSON), e.g. a stack refresh's apps.
fn job_result(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("ALTER TABLE jobs ADD COLUMN result TEXT")?;
    Ok(())
}

/// The kind and message of a failure stored as CF's error text by dropship before version 1.
pub fn legacy_failure(error: &str) -> (FailureKind, String) {
    let (name, message) = error.split_once(" - ").unwrap_or(("", error));
    let kind = match name {
        "NoAppDetectedError" => FailureKind::NoAppDetected,
        "BuildpackCompileFailed" => FailureKind::CompileFailed,
        "BuildpackReleaseFailed" => FailureKind::ReleaseFailed,
        "StagingTimeExpired" => FailureKind::TimeExpired,
        _ if message.starts_with("Failed to run all supply scripts") => FailureKind::SupplyFailed,
        _ if message.starts_with("Failed to run finalize script") => FailureKind::FinalizeFailed,
        _ if message.starts_with("staging was interrupted")
            || message.starts_with("interrupted: ") =>
        {
            FailureKind::Interrupted
        }
        _ => FailureKind::Staging,
    };
    (kind, message.to_string())
}

/// 9: `builds.attempts`: how many times staging started (a build interrupted by a restart is
/// staged again, up to `rows::STAGING_ATTEMPTS`).
fn build_attempts(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("ALTER TABLE builds ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")?;
    Ok(())
}

/// 12: an index for the content store's eviction, least recently used first.
fn resources_lru(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("CREATE INDEX IF NOT EXISTS resources_lru ON resources (last_used, sha1)")?;
    Ok(())
}
