//! Jobs (CF's `/v3/jobs/:guid`): deleting an app with its packages, builds and droplets, in one
//! transaction, and a stack's refresh (whose report is the job's `result`).

use super::{now, one, BuildState, JobState, StoreError};
use super::{params, Connection, Row};

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub guid: String,
    /// CF's operation name, e.g. `app.delete`.
    pub operation: String,
    pub state: JobState,
    pub error: Option<String>,
    /// What the client should know although the job went on (a manifest's attributes not
    /// applied).
    pub warnings: Vec<String>,
    /// What the finished job reports (JSON text), if anything.
    pub result: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The replica running it (failed if that replica stops answering).
    pub owner: Option<String>,
}

impl Job {
    /// A new PROCESSING job of `operation` (a new guid, now).
    pub fn start(operation: &str, warnings: Vec<String>) -> Job {
        let t = now();
        Job {
            guid: super::new_guid(),
            operation: operation.to_string(),
            state: JobState::Processing,
            error: None,
            warnings,
            result: None,
            created_at: t.clone(),
            updated_at: t,
            owner: None,
        }
    }

    /// The job, run by replica `owner`.
    pub fn owned_by(mut self, owner: &str) -> Job {
        self.owner = Some(owner.to_string());
        self
    }
}

fn job_row(r: &Row) -> super::sql::Result<Job> {
    Ok(Job {
        guid: r.get("guid")?,
        operation: r.get("operation")?,
        state: r.get("state")?,
        error: r.get("error")?,
        warnings: serde_json::from_str(&r.get::<_, String>("warnings")?).unwrap_or_default(),
        result: r.get("result")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        owner: r.get("owner")?,
    })
}

pub fn insert_job(c: &Connection, j: &Job) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO jobs (guid, operation, state, error, result, created_at, updated_at, warnings,
         owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            j.guid,
            j.operation,
            j.state,
            j.error,
            j.result,
            j.created_at,
            j.updated_at,
            serde_json::to_string(&j.warnings).expect("json"),
            j.owner
        ],
    )?;
    Ok(())
}

pub fn get_job(c: &Connection, guid: &str) -> Result<Option<Job>, StoreError> {
    one(
        c,
        "SELECT * FROM jobs WHERE guid = ?1",
        params![guid],
        job_row,
    )
}

/// Ends a job: COMPLETE, or FAILED with `error`.
pub fn finish_job(c: &Connection, guid: &str, error: Option<&str>) -> Result<(), StoreError> {
    finish_job_with(c, guid, error, None)
}

/// Ends a job as [`finish_job`] does, keeping what it reports (`result`, JSON text).
pub fn finish_job_with(
    c: &Connection,
    guid: &str,
    error: Option<&str>,
    result: Option<&str>,
) -> Result<(), StoreError> {
    let state = if error.is_some() {
        JobState::Failed
    } else {
        JobState::Complete
    };
    c.execute(
        "UPDATE jobs SET state = ?2, error = ?3, result = ?4, updated_at = ?5 WHERE guid = ?1",
        params![guid, state, error, result, now()],
    )?;
    Ok(())
}

/// What an app's deletion removed from the database: the files that belong to them go next.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Deleted {
    pub name: String,
    pub packages: Vec<String>,
    pub builds: Vec<String>,
    pub droplets: Vec<String>,
    /// The image references of its droplets.
    pub images: Vec<String>,
}

/// Why an app cannot be deleted now.
#[derive(Debug, Clone, PartialEq)]
pub enum NotDeleted {
    Missing,
    /// A build of the app is staging (its end would write rows of a deleted app).
    Staging(String),
}

fn guids(c: &Connection, table: &str, app: &str) -> Result<Vec<String>, StoreError> {
    column(
        c,
        &format!("SELECT guid FROM {table} WHERE app_guid = ?1"),
        app,
    )
}

fn column(c: &Connection, sql: &str, app: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map(params![app], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<String>, _>>()?)
}

/// The image references of every droplet.
pub fn droplet_images(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare("SELECT image FROM droplets")?;
    let rows = stmt.query_map(params![], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<String>, _>>()?)
}

/// Deletes the app `guid` and its packages, builds and droplets, and records the job `job` as
/// PROCESSING, all in one transaction.
pub fn delete_app(
    c: &mut Connection,
    guid: &str,
    job: &Job,
) -> Result<Result<Deleted, NotDeleted>, StoreError> {
    let tx = c.transaction()?;
    let name: Option<String> = one(
        &tx,
        "SELECT name FROM apps WHERE guid = ?1",
        params![guid],
        |r| r.get(0),
    )?;
    let Some(name) = name else {
        return Ok(Err(NotDeleted::Missing));
    };
    let staging: Option<String> = one(
        &tx,
        "SELECT guid FROM builds WHERE app_guid = ?1 AND state = ?2",
        params![guid, BuildState::Staging],
        |r| r.get(0),
    )?;
    if let Some(build) = staging {
        return Ok(Err(NotDeleted::Staging(build)));
    }
    let deleted = Deleted {
        name,
        packages: guids(&tx, "packages", guid)?,
        builds: guids(&tx, "builds", guid)?,
        droplets: guids(&tx, "droplets", guid)?,
        images: column(&tx, "SELECT image FROM droplets WHERE app_guid = ?1", guid)?,
    };
    super::log_chunks::delete_app_logs(&tx, guid)?;
    for table in ["packages", "builds", "droplets"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE app_guid = ?1"),
            params![guid],
        )?;
    }
    tx.execute("DELETE FROM processes WHERE app_guid = ?1", params![guid])?;
    tx.execute("DELETE FROM apps WHERE guid = ?1", params![guid])?;
    insert_job(&tx, job)?;
    tx.commit()?;
    Ok(Ok(deleted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::HealthCheck;
    use crate::store::{get_app, insert_app, insert_build, App, Build, Db};

    fn job() -> Job {
        Job {
            guid: "j1".into(),
            operation: "app.delete".into(),
            state: JobState::Processing,
            error: None,
            warnings: vec![],
            result: None,
            created_at: now(),
            updated_at: now(),
            owner: Some("r1".into()),
        }
    }

    #[test]
    fn an_app_with_a_staging_build_is_not_deleted_and_a_deletion_is_one_transaction() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("t.db")).unwrap();
        let guard = db.sqlite_guard();
        let mut conn = crate::store::Connection::sqlite(&guard);
        let app = App {
            guid: "a1".into(),
            name: "shop".into(),
            env: Default::default(),
            current_droplet: None,
            instances: 1,
            memory_mb: 64,
            disk_mb: 64,
            health_check: HealthCheck::Port,
            state: crate::store::AppState::Stopped,
            space_guid: crate::store::DEFAULT_SPACE_GUID.into(),
            buildpacks: vec![],
            stack: None,
            created_at: now(),
            updated_at: now(),
        };
        insert_app(&conn, &app).unwrap();
        let mut build = Build {
            guid: "b1".into(),
            app_guid: "a1".into(),
            package_guid: "p1".into(),
            state: BuildState::Staging,
            failure: None,
            droplet_guid: None,
            buildpacks: vec![],
            stack: "busybox".into(),
            created_at: now(),
            updated_at: now(),
        };
        insert_build(&conn, &build).unwrap();
        let refused = delete_app(&mut conn, "a1", &job()).unwrap();
        assert_eq!(refused, Err(NotDeleted::Staging("b1".into())));
        assert!(get_app(&conn, "a1").unwrap().is_some());
        assert!(
            get_job(&conn, "j1").unwrap().is_none(),
            "no job for a refusal"
        );

        build.guid = "b2".into();
        build.state = BuildState::Staged;
        conn.execute("DELETE FROM builds", params![]).unwrap();
        insert_build(&conn, &build).unwrap();
        let line = crate::store::NewChunk {
            body: "a line\n".into(),
            stamps: "7 1 O\n".into(),
        };
        crate::store::append_log_chunk(&conn, "b2", &line).unwrap();
        let done = delete_app(&mut conn, "a1", &job()).unwrap().unwrap();
        assert!(
            !crate::store::has_log_chunks(&conn, "b2").unwrap(),
            "the log went too"
        );
        assert_eq!(
            (done.name.as_str(), done.builds),
            ("shop", vec!["b2".to_string()])
        );
        assert!(get_app(&conn, "a1").unwrap().is_none());
        finish_job(&conn, "j1", None).unwrap();
        assert_eq!(
            get_job(&conn, "j1").unwrap().unwrap().state,
            JobState::Complete
        );
        let mut refresh = job();
        refresh.guid = "j2".into();
        insert_job(&conn, &refresh).unwrap();
        refresh.guid = "j3".into();
        insert_job(&conn, &refresh).unwrap();
        finish_job_with(&conn, "j2", None, Some("{\"apps\":[]}")).unwrap();
        let failed = crate::store::replicas::fail_orphans(&conn, 0).unwrap();
        assert_eq!(failed.jobs, 1, "j3 alone");
        let (j2, j3) = (
            get_job(&conn, "j2").unwrap().unwrap(),
            get_job(&conn, "j3").unwrap().unwrap(),
        );
        assert_eq!(
            (j2.state, j2.result.as_deref()),
            (JobState::Complete, Some("{\"apps\":[]}"))
        );
        assert_eq!(j3.state, JobState::Failed);
        assert!(j3.error.unwrap().contains("running this job stopped"));
        let again = delete_app(&mut conn, "a1", &job()).unwrap();
        assert_eq!(again, Err(NotDeleted::Missing));
    }
}
