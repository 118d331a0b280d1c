//! An app's processes as CF shows them: one per process type of its current droplet, plus
//! `web` always, plus every type given settings of its own (a manifest's `worker` is listed
//! before a droplet declares it, as in CF). Each type's command, scale and health check are
//! its own settings (`store::processes`), else the droplet's command and the app's scale,
//! `port` for `web` (the app's health check) and `process` for the others.

use super::error::ApiResult;
use super::Shared;
use crate::k8s::{HealthCheck, ProcessSettings, PROCESS_TYPE_WEB};
use crate::store::{self, App, ProcessRow};
use std::collections::BTreeMap;

/// One process type of an app, its settings resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    pub kind: String,
    /// What it runs: its own command, else the droplet's; `None` before a droplet says.
    pub command: Option<String>,
    pub instances: u32,
    pub memory_mb: u32,
    pub disk_mb: u32,
    pub health_check: HealthCheck,
    pub timeout_s: Option<u32>,
    pub invocation_timeout_s: Option<u32>,
    /// Its own settings (default: none given).
    pub row: ProcessRow,
}

/// The health check a row sets, if any.
pub fn row_check(row: &ProcessRow) -> Option<HealthCheck> {
    Some(match row.health_check.as_deref()? {
        "process" => HealthCheck::Process,
        "http" => HealthCheck::Http {
            endpoint: row.endpoint.clone().unwrap_or_else(|| "/".into()),
        },
        _ => HealthCheck::Port,
    })
}

/// The app's processes from its droplet's process types and its rows, sorted by type.
pub fn resolve(app: &App, droplet: &BTreeMap<String, String>, rows: &[ProcessRow]) -> Vec<Proc> {
    let mut kinds: Vec<&str> = vec![PROCESS_TYPE_WEB];
    kinds.extend(droplet.keys().map(String::as_str));
    kinds.extend(rows.iter().map(|r| r.kind.as_str()));
    kinds.sort();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            let row =
                (rows.iter().find(|r| r.kind == kind).cloned()).unwrap_or_else(|| ProcessRow {
                    app_guid: app.guid.clone(),
                    kind: kind.to_string(),
                    ..ProcessRow::default()
                });
            let web = kind == PROCESS_TYPE_WEB;
            let default_check = if web {
                app.health_check.clone()
            } else {
                HealthCheck::Process
            };
            Proc {
                kind: kind.to_string(),
                command: row.command.clone().or_else(|| droplet.get(kind).cloned()),
                // web's scale is the app's (`actions/scale` of web writes the app's row).
                instances: row.instances.filter(|_| !web).unwrap_or(app.instances),
                memory_mb: row.memory_mb.filter(|_| !web).unwrap_or(app.memory_mb),
                disk_mb: row.disk_mb.filter(|_| !web).unwrap_or(app.disk_mb),
                health_check: row_check(&row).unwrap_or(default_check),
                timeout_s: row.timeout_s,
                invocation_timeout_s: row.invocation_timeout_s,
                row,
            }
        })
        .collect()
}

/// The app's processes, from the store.
pub async fn load(state: &Shared, app: &App) -> ApiResult<Vec<Proc>> {
    let (a, d) = (app.guid.clone(), app.current_droplet.clone());
    let (droplet, rows) = state
        .db
        .call(move |c| {
            let droplet = match d {
                Some(d) => store::get_droplet(c, &d)?.map(|d| d.process_types),
                None => None,
            };
            Ok((droplet.unwrap_or_default(), store::processes_of(c, &a)?))
        })
        .await?;
    Ok(resolve(app, &droplet, &rows))
}

/// The Kubernetes settings of the processes: the overrides, and the process types (with
/// their commands) to run besides the droplet's.
pub fn for_k8s(procs: &[Proc]) -> (BTreeMap<String, ProcessSettings>, BTreeMap<String, String>) {
    let mut overrides = BTreeMap::new();
    let mut commands = BTreeMap::new();
    for p in procs {
        let r = &p.row;
        overrides.insert(
            p.kind.clone(),
            ProcessSettings {
                command: r.command.clone(),
                instances: Some(p.instances),
                memory_mb: Some(u64::from(p.memory_mb)),
                disk_mb: Some(u64::from(p.disk_mb)),
                health_check: Some(p.health_check.clone()),
                timeout_s: r.timeout_s,
                invocation_timeout_s: r.invocation_timeout_s,
            },
        );
        if let Some(c) = &p.command {
            commands.insert(p.kind.clone(), c.clone());
        }
    }
    (overrides, commands)
}
