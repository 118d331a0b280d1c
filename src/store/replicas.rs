//! Which replicas are alive, and the work in flight each one owns besides builds (uploads being
//! processed, jobs running): every replica writes its heartbeat every second; an upload or job
//! whose owner has not been seen for a lease (it died, or was an earlier process of this one)
//! is failed by whichever replica looks next, so a replica starting never fails the work of
//! the others, and no work waits forever for a replica that is gone.

use super::sql::ToSql;
use super::{now, params, Connection, JobState, PackageState, StoreError};

/// 13: `replicas` (id, last seen in ms since the epoch) and the owner of uploads and jobs.
pub fn create_table(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE replicas (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL);
         ALTER TABLE packages ADD COLUMN owner TEXT;
         ALTER TABLE jobs ADD COLUMN owner TEXT;",
    )?;
    Ok(())
}

/// Replica `id` is alive at `now_ms`.
pub fn heartbeat(c: &Connection, id: &str, now_ms: i64) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO replicas (id, seen_at) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        params![id, now_ms],
    )?;
    Ok(())
}

/// Replica `id` stops (a clean shutdown): what it still owns is failed at the next look.
pub fn leave(c: &Connection, id: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM replicas WHERE id = ?1", params![id])?;
    Ok(())
}

/// What [`fail_orphans`] failed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Orphans {
    pub uploads: usize,
    pub jobs: usize,
}

/// Fails the uploads and jobs in flight whose owner was last seen before `cutoff_ms` (or is
/// unknown: work of a dropship older than owners); forgets replicas gone for a day.
pub fn fail_orphans(c: &Connection, cutoff_ms: i64) -> Result<Orphans, StoreError> {
    let gone = "(owner IS NULL OR owner NOT IN (SELECT id FROM replicas WHERE seen_at >= ?4))";
    let failed = fail_where(c, gone, &cutoff_ms)?;
    let day = 24 * 3600 * 1000;
    c.execute(
        "DELETE FROM replicas WHERE seen_at < ?1",
        params![cutoff_ms - day],
    )?;
    Ok(failed)
}

/// Fails the uploads and jobs in flight that replica `id` owns (its previous process died).
pub fn fail_owned_by(c: &Connection, id: &str) -> Result<Orphans, StoreError> {
    fail_where(c, "owner = ?4", &id)
}

/// Fails the uploads and jobs in flight that match `owned` (SQL over `owner`, with `?4`).
fn fail_where(c: &Connection, owned: &str, p4: &dyn ToSql) -> Result<Orphans, StoreError> {
    let uploads = c.execute(
        &format!(
            "UPDATE packages SET state = ?2, error = 'the upload was interrupted: the dropship \
             processing it stopped', updated_at = ?1 WHERE state = ?3 AND {owned}"
        ),
        params![
            now(),
            PackageState::Failed,
            PackageState::ProcessingUpload,
            p4
        ],
    )?;
    let jobs = c.execute(
        &format!(
            "UPDATE jobs SET state = ?2, error = 'interrupted: the dropship running this job \
             stopped', updated_at = ?1 WHERE state = ?3 AND {owned}"
        ),
        params![now(), JobState::Failed, JobState::Processing, p4],
    )?;
    Ok(Orphans { uploads, jobs })
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as i64)
}

/// 14: `locks`, named and held for a while (a holder that dies frees it when `until` passes).
pub fn create_locks(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL)",
    )?;
    Ok(())
}

/// Takes lock `name` for `owner` until `until_ms` unless another holder's has not run out;
/// true when taken.
pub fn try_lock(
    c: &Connection,
    name: &str,
    owner: &str,
    until_ms: i64,
) -> Result<bool, StoreError> {
    let n = c.execute(
        "INSERT INTO locks (name, owner, until) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
         WHERE locks.until < ?4 OR locks.owner = excluded.owner",
        params![name, owner, until_ms, now_ms()],
    )?;
    Ok(n == 1)
}

/// Frees lock `name` if `owner` holds it.
pub fn unlock(c: &Connection, name: &str, owner: &str) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM locks WHERE name = ?1 AND owner = ?2",
        params![name, owner],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{insert_job, insert_package, Db, Job, Package};

    fn package(c: &Connection, guid: &str, owner: &str) {
        let p = Package {
            guid: guid.into(),
            app_guid: "a".into(),
            state: PackageState::AwaitingUpload,
            error: None,
            checksum: None,
            created_at: now(),
            updated_at: now(),
        };
        insert_package(c, &p).unwrap();
        assert!(crate::store::claim_package_upload(c, guid, owner).unwrap());
    }

    #[test]
    fn only_the_work_of_replicas_gone_for_a_lease_is_failed() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("t.db")).unwrap();
        let guard = db.sqlite_guard();
        let c = Connection::sqlite(&guard);
        heartbeat(&c, "alive", 10_000).unwrap();
        heartbeat(&c, "dead", 1_000).unwrap();
        package(&c, "p-alive", "alive");
        package(&c, "p-dead", "dead");
        insert_job(&c, &Job::start("app.delete", vec![]).owned_by("alive")).unwrap();
        insert_job(&c, &Job::start("app.delete", vec![]).owned_by("dead")).unwrap();
        let failed = fail_orphans(&c, 5_000).unwrap();
        assert_eq!(
            failed,
            Orphans {
                uploads: 1,
                jobs: 1
            }
        );
        let state = |g| crate::store::get_package(&c, g).unwrap().unwrap().state;
        assert_eq!(state("p-alive"), PackageState::ProcessingUpload);
        assert_eq!(state("p-dead"), PackageState::Failed);
        // The living one stops beating: its work goes at the next look past its lease.
        assert_eq!(fail_orphans(&c, 20_000).unwrap().uploads, 1);
    }

    #[test]
    fn a_lock_is_held_by_one_until_freed_or_run_out() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("t.db")).unwrap();
        let guard = db.sqlite_guard();
        let c = Connection::sqlite(&guard);
        let later = now_ms() + 60_000;
        assert!(try_lock(&c, "index", "r1", later).unwrap());
        assert!(!try_lock(&c, "index", "r2", later).unwrap(), "held by r1");
        assert!(
            try_lock(&c, "index", "r1", later + 1).unwrap(),
            "renewed by r1"
        );
        unlock(&c, "index", "r2").unwrap();
        assert!(
            !try_lock(&c, "index", "r2", later).unwrap(),
            "only its holder frees it"
        );
        unlock(&c, "index", "r1").unwrap();
        assert!(try_lock(&c, "index", "r2", now_ms() - 1).unwrap());
        assert!(try_lock(&c, "index", "r3", later).unwrap(), "r2's ran out");
    }
}
