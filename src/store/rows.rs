//! The rows: apps, packages, builds, droplets; reads, inserts and the state changes they go
//! through.

use super::{now, one, AppState, BuildState, PackageState, StoreError};
use super::{params, Connection, Row};
use crate::failure::{BuildFailure, FailureKind};
use crate::k8s::HealthCheck;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub guid: String,
    pub name: String,
    pub env: BTreeMap<String, String>,
    pub current_droplet: Option<String>,
    pub instances: u32,
    pub memory_mb: u32,
    pub disk_mb: u32,
    pub health_check: HealthCheck,
    pub state: AppState,
    /// The space it is in (the default one for apps made before spaces existed).
    pub space_guid: String,
    /// The buildpacks and stack its builds use unless a build names its own (a manifest's).
    pub buildpacks: Vec<String>,
    pub stack: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub guid: String,
    pub app_guid: String,
    pub state: PackageState,
    pub error: Option<String>,
    pub checksum: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub guid: String,
    pub app_guid: String,
    pub package_guid: String,
    pub state: BuildState,
    /// Why it failed: set when (and only when) the state is FAILED.
    pub failure: Option<BuildFailure>,
    pub droplet_guid: Option<String>,
    /// Buildpacks requested (names), empty for detection.
    pub buildpacks: Vec<String>,
    pub stack: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Droplet {
    pub guid: String,
    pub app_guid: String,
    pub build_guid: String,
    pub package_guid: String,
    pub checksum: String,
    pub image: String,
    pub process_types: BTreeMap<String, String>,
    /// JSON list of `{key, name, version}`.
    pub buildpacks: serde_json::Value,
    pub stack: String,
    pub detected_buildpack: String,
    pub start_command: String,
    pub created_at: String,
    pub updated_at: String,
}

fn json<T: serde::de::DeserializeOwned + Default>(s: String) -> T {
    serde_json::from_str(&s).unwrap_or_default()
}

fn app_row(r: &Row) -> super::sql::Result<App> {
    Ok(App {
        guid: r.get("guid")?,
        name: r.get("name")?,
        env: json(r.get("env")?),
        current_droplet: r.get("current_droplet")?,
        instances: r.get("instances")?,
        memory_mb: r.get("memory_mb")?,
        disk_mb: r.get("disk_mb")?,
        health_check: r.get("health_check")?,
        state: r.get("state")?,
        space_guid: r.get("space_guid")?,
        buildpacks: json(r.get("buildpacks")?),
        stack: r.get("stack")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn package_row(r: &Row) -> super::sql::Result<Package> {
    Ok(Package {
        guid: r.get("guid")?,
        app_guid: r.get("app_guid")?,
        state: r.get("state")?,
        error: r.get("error")?,
        checksum: r.get("checksum")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn build_row(r: &Row) -> super::sql::Result<Build> {
    Ok(Build {
        guid: r.get("guid")?,
        app_guid: r.get("app_guid")?,
        package_guid: r.get("package_guid")?,
        state: r.get("state")?,
        failure: failure_cols(r)?,
        droplet_guid: r.get("droplet_guid")?,
        buildpacks: json(r.get("buildpacks")?),
        stack: r.get("stack")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// `error_kind` and `error` (the message), both or neither.
fn failure_cols(r: &Row) -> super::sql::Result<Option<BuildFailure>> {
    let kind: Option<FailureKind> = r.get("error_kind")?;
    let message: Option<String> = r.get("error")?;
    Ok(kind.map(|k| BuildFailure::new(k, message.unwrap_or_default())))
}

fn droplet_row(r: &Row) -> super::sql::Result<Droplet> {
    Ok(Droplet {
        guid: r.get("guid")?,
        app_guid: r.get("app_guid")?,
        build_guid: r.get("build_guid")?,
        package_guid: r.get("package_guid")?,
        checksum: r.get("checksum")?,
        image: r.get("image")?,
        process_types: json(r.get("process_types")?),
        buildpacks: serde_json::from_str(&r.get::<_, String>("buildpacks")?).unwrap_or_default(),
        stack: r.get("stack")?,
        detected_buildpack: r.get("detected_buildpack")?,
        start_command: r.get("start_command")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

// --- apps -------------------------------------------------------------------------------------

pub fn insert_app(c: &Connection, a: &App) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO apps (guid, name, env, current_droplet, instances, memory_mb, disk_mb,
         health_check, state, created_at, updated_at, space_guid, buildpacks, stack)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
        params![
            a.guid,
            a.name,
            serde_json::to_string(&a.env).expect("json"),
            a.current_droplet,
            a.instances,
            a.memory_mb,
            a.disk_mb,
            a.health_check,
            a.state,
            a.created_at,
            a.updated_at,
            a.space_guid,
            serde_json::to_string(&a.buildpacks).expect("json"),
            a.stack
        ],
    )?;
    Ok(())
}

pub fn get_app(c: &Connection, guid: &str) -> Result<Option<App>, StoreError> {
    one(
        c,
        "SELECT * FROM apps WHERE guid = ?1",
        params![guid],
        app_row,
    )
}

pub fn app_by_name(c: &Connection, name: &str) -> Result<Option<App>, StoreError> {
    one(
        c,
        "SELECT * FROM apps WHERE name = ?1",
        params![name],
        app_row,
    )
}

/// Apps, optionally only those named in `names`, oldest first.
pub fn list_apps(c: &Connection, names: Option<&[String]>) -> Result<Vec<App>, StoreError> {
    let all = all(c, "SELECT * FROM apps ORDER BY created_at, guid", app_row)?;
    Ok(match names {
        Some(n) => all.into_iter().filter(|a| n.contains(&a.name)).collect(),
        None => all,
    })
}

/// Renames an app; false when another app has that name.
pub fn rename_app(c: &Connection, guid: &str, name: &str) -> Result<bool, StoreError> {
    let n = c.execute(
        "UPDATE apps SET name = ?2, updated_at = ?3
         WHERE guid = ?1 AND NOT EXISTS (SELECT 1 FROM apps WHERE name = ?2 AND guid != ?1)",
        params![guid, name, now()],
    )?;
    Ok(n == 1)
}

/// Replaces the app's environment variables.
pub fn set_app_env(
    c: &Connection,
    guid: &str,
    env: &BTreeMap<String, String>,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE apps SET env = ?2, updated_at = ?3 WHERE guid = ?1",
        params![
            guid,
            serde_json::to_string(env).expect("json"),
            super::now()
        ],
    )?;
    Ok(())
}

/// Sets the buildpacks and stack the app's builds use by default.
pub fn set_app_lifecycle(
    c: &Connection,
    guid: &str,
    buildpacks: &[String],
    stack: Option<&str>,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE apps SET buildpacks = ?2, stack = ?3, updated_at = ?4 WHERE guid = ?1",
        params![
            guid,
            serde_json::to_string(buildpacks).expect("json"),
            stack,
            now()
        ],
    )?;
    Ok(())
}

/// Sets the app's desired state.
pub fn set_app_state(c: &Connection, guid: &str, state: AppState) -> Result<(), StoreError> {
    c.execute(
        "UPDATE apps SET state = ?2, updated_at = ?3 WHERE guid = ?1",
        params![guid, state, now()],
    )?;
    Ok(())
}

/// The web process's scale, which every process type of the app runs with.
pub fn set_app_scale(
    c: &Connection,
    guid: &str,
    instances: u32,
    memory_mb: u32,
    disk_mb: u32,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE apps SET instances = ?2, memory_mb = ?3, disk_mb = ?4, updated_at = ?5
         WHERE guid = ?1",
        params![guid, instances, memory_mb, disk_mb, now()],
    )?;
    Ok(())
}

pub fn set_current_droplet(c: &Connection, app: &str, droplet: &str) -> Result<(), StoreError> {
    c.execute(
        "UPDATE apps SET current_droplet = ?2, updated_at = ?3 WHERE guid = ?1",
        params![app, droplet, now()],
    )?;
    Ok(())
}

// --- packages ---------------------------------------------------------------------------------

pub fn insert_package(c: &Connection, p: &Package) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO packages (guid, app_guid, state, error, checksum, created_at, updated_at)
         VALUES (?1,?2,?3,?4,?5,?6,?7)",
        params![
            p.guid,
            p.app_guid,
            p.state,
            p.error,
            p.checksum,
            p.created_at,
            p.updated_at
        ],
    )?;
    Ok(())
}

pub fn get_package(c: &Connection, guid: &str) -> Result<Option<Package>, StoreError> {
    one(
        c,
        "SELECT * FROM packages WHERE guid = ?1",
        params![guid],
        package_row,
    )
}

/// Moves a package to `state` (with an error or a checksum).
pub fn set_package_state(
    c: &Connection,
    guid: &str,
    state: PackageState,
    error: Option<&str>,
    checksum: Option<&str>,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE packages SET state = ?2, error = ?3, checksum = COALESCE(?4, checksum),
         updated_at = ?5 WHERE guid = ?1",
        params![guid, state, error, checksum, now()],
    )?;
    Ok(())
}

// --- builds -----------------------------------------------------------------------------------

pub fn insert_build(c: &Connection, b: &Build) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO builds (guid, app_guid, package_guid, state, error, error_kind, droplet_guid,
         buildpacks, stack, created_at, updated_at, queued_at)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
        params![
            b.guid,
            b.app_guid,
            b.package_guid,
            b.state,
            b.failure.as_ref().map(|f| &f.message),
            b.failure.as_ref().map(|f| f.kind),
            b.droplet_guid,
            serde_json::to_string(&b.buildpacks).expect("json"),
            b.stack,
            b.created_at,
            b.updated_at,
            super::queue::now_ms()
        ],
    )?;
    Ok(())
}

pub fn get_build(c: &Connection, guid: &str) -> Result<Option<Build>, StoreError> {
    one(
        c,
        "SELECT * FROM builds WHERE guid = ?1",
        params![guid],
        build_row,
    )
}

/// How many times a build's staging may start: one whose replica stopped answering (it died,
/// `kill -9`, a node lost: its lease ran out) is staged again until then, and failed after.
pub const STAGING_ATTEMPTS: u32 = 3;

/// Builds by state, for metrics.
pub fn count_builds(c: &Connection) -> Result<BTreeMap<BuildState, u64>, StoreError> {
    let mut stmt = c.prepare("SELECT state, COUNT(*) FROM builds GROUP BY state")?;
    let rows = stmt.query_map(params![], |r| {
        Ok((r.get::<_, BuildState>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// --- droplets ---------------------------------------------------------------------------------

pub fn insert_droplet(c: &Connection, d: &Droplet) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO droplets (guid, app_guid, build_guid, package_guid, checksum, image,
         process_types, buildpacks, stack, detected_buildpack, start_command, created_at,
         updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
        params![
            d.guid,
            d.app_guid,
            d.build_guid,
            d.package_guid,
            d.checksum,
            d.image,
            serde_json::to_string(&d.process_types).expect("json"),
            d.buildpacks.to_string(),
            d.stack,
            d.detected_buildpack,
            d.start_command,
            d.created_at,
            d.updated_at
        ],
    )?;
    Ok(())
}

pub fn get_droplet(c: &Connection, guid: &str) -> Result<Option<Droplet>, StoreError> {
    one(
        c,
        "SELECT * FROM droplets WHERE guid = ?1",
        params![guid],
        droplet_row,
    )
}

/// Every package, oldest first (the lists filter and page them).
pub fn list_packages(c: &Connection) -> Result<Vec<Package>, StoreError> {
    all(
        c,
        "SELECT * FROM packages ORDER BY created_at, guid",
        package_row,
    )
}

/// Every build, oldest first.
pub fn list_builds(c: &Connection) -> Result<Vec<Build>, StoreError> {
    all(
        c,
        "SELECT * FROM builds ORDER BY created_at, guid",
        build_row,
    )
}

/// Every droplet, oldest first.
pub fn list_droplets(c: &Connection) -> Result<Vec<Droplet>, StoreError> {
    all(
        c,
        "SELECT * FROM droplets ORDER BY created_at, guid",
        droplet_row,
    )
}

fn all<T>(
    c: &Connection,
    sql: &str,
    row: fn(&Row) -> super::sql::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt
        .query_map(params![], row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

// --- package uploads (used by service/upload.rs) ------------------------------------------------

/// Moves a package from AWAITING_UPLOAD to PROCESSING_UPLOAD; false when it was not awaiting an
/// upload (gone, or another upload claimed it first). One statement, so two uploads racing for
/// the same package cannot both win.
pub fn claim_package_upload(c: &Connection, guid: &str, owner: &str) -> Result<bool, StoreError> {
    let n = c.execute(
        "UPDATE packages SET state = ?3, error = NULL, updated_at = ?2, owner = ?5
         WHERE guid = ?1 AND state = ?4",
        params![
            guid,
            now(),
            PackageState::ProcessingUpload,
            PackageState::AwaitingUpload,
            owner
        ],
    )?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let db = super::super::Db::open(&d.path().join("t.db")).unwrap();
        let guard = db.sqlite_guard();
        let conn = crate::store::Connection::sqlite(&guard);
        let t = now();
        let app = App {
            guid: "a1".into(),
            name: "shop".into(),
            env: [("K".to_string(), "V".to_string())].into(),
            current_droplet: None,
            instances: 2,
            memory_mb: 512,
            disk_mb: 1024,
            health_check: HealthCheck::Port,
            state: AppState::Stopped,
            space_guid: crate::store::DEFAULT_SPACE_GUID.into(),
            buildpacks: vec!["binary".into()],
            stack: None,
            created_at: t.clone(),
            updated_at: t.clone(),
        };
        insert_app(&conn, &app).unwrap();
        assert_eq!(get_app(&conn, "a1").unwrap(), Some(app.clone()));
        assert!(
            insert_app(
                &conn,
                &App {
                    guid: "a2".into(),
                    ..app.clone()
                }
            )
            .is_err(),
            "names are unique"
        );
        let b = Build {
            guid: "b1".into(),
            app_guid: "a1".into(),
            package_guid: "p1".into(),
            state: BuildState::Staging,
            failure: None,
            droplet_guid: None,
            buildpacks: vec!["binary".into()],
            stack: "busybox".into(),
            created_at: t.clone(),
            updated_at: t,
        };
        insert_build(&conn, &b).unwrap();
        let after = get_build(&conn, "b1").unwrap().unwrap();
        assert_eq!(after.state, BuildState::Staging);
        assert_eq!(after.buildpacks, vec!["binary".to_string()]);
    }
}
