//! `POST /v3/spaces/:guid/actions/apply_manifest`: a cf manifest (YAML, at most
//! [`MAX_MANIFEST_BYTES`]), parsed by the one manifest parser (`intake::manifest`) and checked
//! whole before anything changes (CF's 422 `CF-UnprocessableEntity` for what does not parse or
//! fit the server's limits). Then, in a `space.apply_manifest` job, every app named is made in
//! the space or updated: env (given variables set, the others kept), buildpacks and stack
//! (what its builds use), the web process's scale, command and health check from the app's
//! attributes, and each `processes` entry's settings (a type is listed before a droplet
//! declares it). The job ends COMPLETE, or FAILED naming the app it stopped at (an app of that
//! name in another space, say), before the 202 answer, as `app.delete` does.

use super::apps::{base, checked_name};
use super::error::{ApiError, ApiResult};
use super::validate::settings_max;
use super::Shared;
use crate::intake::manifest::{parse_all, AppManifest, ProcessManifest, MAX_MANIFEST_BYTES};
use crate::k8s::HealthCheck;
use crate::store::{self, App, AppState, Job, ProcessRow};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use store::Connection;

/// Most applications one manifest may name (each is a transaction's worth of rows).
pub const MAX_APPS: usize = 1000;

/// The manifest's applications, parsed and checked: CF's 422 for anything wrong.
pub fn parse(state: &Shared, body: &[u8]) -> ApiResult<Vec<AppManifest>> {
    if body.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ApiError::unprocessable(format!(
            "The manifest is larger than {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::unprocessable("The manifest is not UTF-8 text"))?;
    let apps =
        parse_all(text).map_err(|e| ApiError::unprocessable(format!("Invalid manifest: {e}")))?;
    if apps.len() > MAX_APPS {
        return Err(ApiError::unprocessable(format!(
            "A manifest may name at most {MAX_APPS} applications"
        )));
    }
    for app in &apps {
        let Some(name) = &app.name else {
            return Err(ApiError::unprocessable(
                "Found an application with no name specified",
            ));
        };
        checked_name(state, name)?;
        let fail = |e: ApiError| {
            ApiError::unprocessable(format!("For application '{name}': {}", e.detail))
        };
        check(state, app).map_err(fail)?;
    }
    Ok(apps)
}

/// The app's values against the server's limits and configuration.
fn check(state: &Shared, m: &AppManifest) -> ApiResult<()> {
    let env = m.env.iter().map(|(k, v)| (k.clone(), v.clone().into()));
    super::validate::env_vars(env.collect())?;
    let web = std::iter::once((m.instances, m.memory_mb, m.disk_mb));
    let procs = m
        .processes
        .iter()
        .map(|p| (p.instances, p.memory_mb, p.disk_mb));
    for (instances, memory, disk) in web.chain(procs) {
        settings_max(state, instances, memory, disk)?;
    }
    if let Some(s) = &m.stack {
        if !state.config.stacks.contains_key(s) {
            return Err(ApiError::unprocessable(format!(
                "Stack '{s}' does not exist"
            )));
        }
    }
    for bp in m.buildpacks.iter().flatten() {
        if !state.config.buildpacks_dir.join(bp).join("bin").is_dir() {
            return Err(ApiError::unprocessable(format!(
                "Buildpack \"{bp}\" must be an existing admin buildpack"
            )));
        }
    }
    Ok(())
}

pub async fn apply_manifest(
    State(state): State<Shared>,
    Path(space): Path<String>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<Response> {
    let space = super::spaces::find(&state, space).await?;
    let apps = parse(&state, &body)?;
    // The attributes not applied, named per app (the job's warnings, as CF's).
    let warnings = (apps.iter())
        .flat_map(|m| {
            let name = m.name.clone().unwrap_or_default();
            m.warnings.iter().map(move |w| format!("{name}: {w}"))
        })
        .collect();
    let job = Job::start("space.apply_manifest", warnings).owned_by(&state.queue.replica);
    let (j, g) = (job.clone(), job.guid.clone());
    state.db.call(move |c| store::insert_job(c, &j)).await?;
    let error = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            for m in &apps {
                if let Err(e) = apply_app(&tx, &space.guid, m)? {
                    return Ok(Some(e)); // the transaction is dropped: nothing applied
                }
            }
            tx.commit()?;
            Ok(None)
        })
        .await?;
    state
        .db
        .call(move |c| store::finish_job(c, &g, error.as_deref()))
        .await?;
    let location = format!("{}/v3/jobs/{}", base(&state), job.guid);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)]).into_response())
}

/// One application of the manifest, made or updated; `Err` says why it cannot be.
fn apply_app(
    c: &Connection,
    space: &str,
    m: &AppManifest,
) -> Result<Result<(), String>, store::StoreError> {
    let name = m.name.clone().unwrap_or_default();
    let app = match store::app_by_name(c, &name)? {
        Some(a) if a.space_guid != space => {
            return Ok(Err(format!(
                "For application '{name}': an app of that name exists in another space"
            )))
        }
        Some(a) => a,
        None => {
            let t = store::now();
            let a = App {
                guid: store::new_guid(),
                name: name.clone(),
                env: Default::default(),
                current_droplet: None,
                instances: 1,
                memory_mb: 1024,
                disk_mb: 1024,
                health_check: HealthCheck::Port,
                state: AppState::Stopped,
                space_guid: space.to_string(),
                buildpacks: Vec::new(),
                stack: None,
                created_at: t.clone(),
                updated_at: t,
            };
            store::insert_app(c, &a)?;
            a
        }
    };
    if !m.env.is_empty() {
        let mut env = app.env.clone();
        env.extend(m.env.iter().cloned());
        store::set_app_env(c, &app.guid, &env)?;
    }
    if m.buildpacks.is_some() || m.stack.is_some() {
        let bps = m.buildpacks.clone().unwrap_or(app.buildpacks.clone());
        let stack = m.stack.clone().or(app.stack.clone());
        store::set_app_lifecycle(c, &app.guid, &bps, stack.as_deref())?;
    }
    // The app's own attributes are the web process's; a `processes` entry of type web wins.
    let web = m.web_process();
    let mut procs = vec![web];
    procs.extend(m.processes.iter().cloned());
    let rows = store::processes_of(c, &app.guid)?;
    for p in procs {
        let row = rows.iter().find(|r| r.kind == p.kind).cloned();
        let row = merged(row, &app, p);
        if row.kind == "web" {
            let scale = (row.instances, row.memory_mb, row.disk_mb);
            let (i, mem, disk) = (
                scale.0.unwrap_or(app.instances),
                scale.1.unwrap_or(app.memory_mb),
                scale.2.unwrap_or(app.disk_mb),
            );
            store::set_app_scale(c, &app.guid, i, mem, disk)?;
            // web's scale lives in the app's row only.
            let row = ProcessRow {
                instances: None,
                memory_mb: None,
                disk_mb: None,
                ..row
            };
            store::put_process(c, &row)?;
        } else {
            store::put_process(c, &row)?;
        }
    }
    Ok(Ok(()))
}

/// A process's settings after what the manifest says of it.
fn merged(row: Option<ProcessRow>, app: &App, p: ProcessManifest) -> ProcessRow {
    let mut row = row.unwrap_or_else(|| ProcessRow {
        app_guid: app.guid.clone(),
        kind: p.kind.clone(),
        ..ProcessRow::default()
    });
    let mb = |v: Option<u64>| v.map(|m| m.min(u64::from(u32::MAX)) as u32);
    row.instances = p.instances.or(row.instances);
    row.memory_mb = mb(p.memory_mb).or(row.memory_mb);
    row.disk_mb = mb(p.disk_mb).or(row.disk_mb);
    row.command = p.command.or(row.command);
    if let Some(hc) = p.health_check {
        let (kind, endpoint) = match hc {
            HealthCheck::Port => ("port", None),
            HealthCheck::Process => ("process", None),
            HealthCheck::Http { endpoint } => ("http", Some(endpoint)),
        };
        row.health_check = Some(kind.into());
        row.endpoint = endpoint;
    }
    row.timeout_s = p.timeout_s.or(row.timeout_s);
    row.invocation_timeout_s = p.invocation_timeout_s.or(row.invocation_timeout_s);
    row
}
