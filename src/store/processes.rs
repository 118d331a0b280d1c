//! What an app's process types are told beyond the droplet: `PATCH /v3/processes/:guid`
//! (command, health check) and the manifest's `processes` (those and instances, memory, disk).
//! One row per (app, type); `None` where nothing was said (the droplet's command, the app's
//! scale, `port` for web and `process` for the others). The `web` process's scale stays in
//! the app's row (`set_app_scale`); a row names a type even before a droplet declares it.

use super::{now, StoreError};
use super::{params, Connection, Row};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessRow {
    pub app_guid: String,
    pub kind: String,
    pub command: Option<String>,
    /// `port`, `process`, `http` (the endpoint apart).
    pub health_check: Option<String>,
    pub endpoint: Option<String>,
    pub timeout_s: Option<u32>,
    pub invocation_timeout_s: Option<u32>,
    pub instances: Option<u32>,
    pub memory_mb: Option<u32>,
    pub disk_mb: Option<u32>,
}

fn row(r: &Row) -> super::sql::Result<ProcessRow> {
    Ok(ProcessRow {
        app_guid: r.get("app_guid")?,
        kind: r.get("type")?,
        command: r.get("command")?,
        health_check: r.get("health_check")?,
        endpoint: r.get("endpoint")?,
        timeout_s: r.get("timeout_s")?,
        invocation_timeout_s: r.get("invocation_timeout_s")?,
        instances: r.get("instances")?,
        memory_mb: r.get("memory_mb")?,
        disk_mb: r.get("disk_mb")?,
    })
}

/// The app's rows, by type.
pub fn processes_of(c: &Connection, app: &str) -> Result<Vec<ProcessRow>, StoreError> {
    let mut stmt = c.prepare("SELECT * FROM processes WHERE app_guid = ?1 ORDER BY type")?;
    let rows = stmt.query_map(params![app], row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Writes the row (replacing the type's row, if any) and touches the app.
pub fn put_process(c: &Connection, p: &ProcessRow) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO processes (app_guid, type, command, health_check, endpoint,
         timeout_s, invocation_timeout_s, instances, memory_mb, disk_mb)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (app_guid, type) DO UPDATE SET command = excluded.command,
         health_check = excluded.health_check, endpoint = excluded.endpoint,
         timeout_s = excluded.timeout_s, invocation_timeout_s = excluded.invocation_timeout_s,
         instances = excluded.instances, memory_mb = excluded.memory_mb,
         disk_mb = excluded.disk_mb",
        params![
            p.app_guid,
            p.kind,
            p.command,
            p.health_check,
            p.endpoint,
            p.timeout_s,
            p.invocation_timeout_s,
            p.instances,
            p.memory_mb,
            p.disk_mb
        ],
    )?;
    c.execute(
        "UPDATE apps SET updated_at = ?2 WHERE guid = ?1",
        params![p.app_guid, now()],
    )?;
    Ok(())
}

/// 5 (run by `migrate.rs`): the table.
pub fn create_table(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE processes (
            app_guid TEXT NOT NULL, type TEXT NOT NULL, command TEXT, health_check TEXT,
            endpoint TEXT, timeout_s INTEGER, invocation_timeout_s INTEGER, instances INTEGER,
            memory_mb INTEGER, disk_mb INTEGER, PRIMARY KEY (app_guid, type))",
    )?;
    Ok(())
}
