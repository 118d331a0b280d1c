//! `/v3/processes` and `/v3/apps/:guid/processes`: the app's processes (`process_state.rs`;
//! `web` always, its GUID the app's, as in Cloud Foundry), `actions/scale` (`cf push -i/-m/-k`
//! and `dropship push`: web's scale is the app's, which staging runs with too, so scales are
//! capped by the server's `[limits]`) and `PATCH` (command, health check).

use super::apps::find as app;
use super::apps::{base, parse_body};
use super::config::AppMax;
use super::error::{ApiError, ApiResult};
use super::paging::{self, Accepts, ListQuery};
use super::process_state::{self, Proc};
use super::process_update;
use super::Shared;
use crate::cfapi::process::{
    HealthCheckData, InstanceState, ProcessLinks, ProcessRelationships, Usage,
};
use crate::cfapi::{self as cf, Link, Metadata, Paginated, Relationship};
use crate::k8s::{process_guid, HealthCheck};
use crate::store::{self, App};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

fn guid_of(app: &App, kind: &str) -> String {
    if kind == "web" {
        app.guid.clone()
    } else {
        process_guid(&app.guid, kind)
    }
}

/// CF's `health_check` object of a process.
fn health_json(p: &Proc) -> cf::process::HealthCheck {
    let mut data = HealthCheckData {
        timeout: p.timeout_s,
        invocation_timeout: p.invocation_timeout_s,
        endpoint: None,
    };
    let kind = match &p.health_check {
        HealthCheck::Port => "port",
        HealthCheck::Process => "process",
        HealthCheck::Http { endpoint } => {
            data.endpoint = Some(endpoint.clone());
            "http"
        }
    };
    cf::process::HealthCheck {
        kind: kind.into(),
        data,
    }
}

pub fn process_json(app: &App, p: &Proc, base: &str) -> cf::Process {
    let guid = guid_of(app, &p.kind);
    let path = format!("/v3/processes/{guid}");
    cf::Process {
        guid: guid.clone(),
        kind: p.kind.clone(),
        command: p.command.clone(),
        instances: p.instances,
        memory_in_mb: p.memory_mb,
        disk_in_mb: p.disk_mb,
        log_rate_limit_in_bytes_per_second: -1,
        health_check: health_json(p),
        relationships: ProcessRelationships {
            app: Relationship::to(&app.guid),
            revision: None,
        },
        metadata: Metadata::default(),
        created_at: app.created_at.clone(),
        updated_at: app.updated_at.clone(),
        links: ProcessLinks {
            this: Link::to(base, &path),
            stats: Link::to(base, &format!("{path}/stats")),
            scale: Link::with_method(base, &format!("{path}/actions/scale"), "POST"),
            app: Link::to(base, &format!("/v3/apps/{}", app.guid)),
        },
    }
}

/// The app and process a process GUID names: the app's own GUID is its `web` process; the
/// others are looked up among the apps' processes.
async fn find(state: &Shared, guid: String) -> ApiResult<(App, Proc)> {
    let g = guid.clone();
    if let Some(a) = state.db.call(move |c| store::get_app(c, &g)).await? {
        let web = process_state::load(state, &a)
            .await?
            .into_iter()
            .find(|p| p.kind == "web");
        return Ok((a, web.ok_or_else(|| ApiError::not_found("Process"))?));
    }
    let apps = state.db.call(|c| store::list_apps(c, None)).await?;
    for a in apps {
        let procs = process_state::load(state, &a).await?;
        if let Some(p) = procs.into_iter().find(|p| guid_of(&a, &p.kind) == guid) {
            return Ok((a, p));
        }
    }
    Err(ApiError::not_found("Process"))
}

/// The app `guid`'s process of type `kind`, or CF's 404.
async fn find_for_app(state: &Shared, guid: String, kind: &str) -> ApiResult<(App, Proc)> {
    let app = app(state, guid).await?;
    let procs = process_state::load(state, &app).await?;
    let p = procs.into_iter().find(|p| p.kind == kind);
    Ok((app, p.ok_or_else(|| ApiError::not_found("Process"))?))
}

const LIST: Accepts = Accepts {
    filters: &["types"],
    order_by: &["created_at", "updated_at"],
};

pub async fn list_for_app(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Paginated<cf::Process>>> {
    let q = ListQuery::parse(&pairs, &LIST)?;
    let app = app(&state, guid).await?;
    let b = base(&state);
    let procs: Vec<Proc> = (process_state::load(&state, &app).await?.into_iter())
        .filter(|p| q.allows("types", &p.kind))
        .collect();
    let path = format!("/v3/apps/{}/processes", app.guid);
    // Every process has the app's timestamps: the order stays by type.
    let (page, pagination) = q.page(procs, |p, _| p.kind.clone(), &b, &path);
    let resources = page.iter().map(|p| process_json(&app, p, &b)).collect();
    Ok(Json(paging::list(pagination, resources)))
}

const ALL: Accepts = Accepts {
    filters: &["guids", "types", "app_guids", "space_guids"],
    order_by: paging::TIMES,
};

/// `GET /v3/processes`: every app's processes (`app_guids`, `types`, `guids`, `space_guids`
/// filters), by the apps' times, then type.
pub async fn list(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Paginated<cf::Process>>> {
    let q = ListQuery::parse(&pairs, &ALL)?;
    let apps = state.db.call(|c| store::list_apps(c, None)).await?;
    let mut rows = Vec::new();
    for a in apps.into_iter().filter(|a| q.allows("app_guids", &a.guid)) {
        if !q.allows("space_guids", &a.space_guid) {
            continue;
        }
        for p in process_state::load(&state, &a).await? {
            if q.allows("types", &p.kind) && q.allows("guids", &guid_of(&a, &p.kind)) {
                rows.push((a.clone(), p));
            }
        }
    }
    let b = base(&state);
    let key = |(a, p): &(App, Proc), f: &str| {
        format!(
            "{} {}",
            paging::by_time(&a.created_at, &a.updated_at, f),
            p.kind
        )
    };
    let (page, pagination) = q.page(rows, key, &b, "/v3/processes");
    let resources = page.iter().map(|(a, p)| process_json(a, p, &b)).collect();
    Ok(Json(paging::list(pagination, resources)))
}

pub async fn show_for_app(
    State(state): State<Shared>,
    Path((guid, kind)): Path<(String, String)>,
) -> ApiResult<Json<cf::Process>> {
    let (app, p) = find_for_app(&state, guid, &kind).await?;
    Ok(Json(process_json(&app, &p, &base(&state))))
}

/// `GET /v3/processes/:guid/stats`: one entry per desired instance. dropship emits the
/// Kubernetes objects and does not watch the cluster, so the state is the desired one: STARTING
/// with a current droplet, DOWN without; `details` says so.
pub async fn stats(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::ProcessStats>> {
    let (app, p) = find(&state, guid).await?;
    let up = app.current_droplet.is_some();
    let details = "the desired state: dropship emits the Kubernetes objects; the cluster runs them";
    let resources = (0..p.instances)
        .map(|index| cf::InstanceStats {
            kind: p.kind.clone(),
            index,
            state: if up {
                InstanceState::Starting
            } else {
                InstanceState::Down
            },
            usage: Usage::default(),
            host: None,
            instance_ports: vec![],
            uptime: 0,
            mem_quota: Some(u64::from(p.memory_mb) << 20),
            disk_quota: Some(u64::from(p.disk_mb) << 20),
            fds_quota: Some(16384),
            isolation_segment: None,
            details: Some(details.to_string()),
        })
        .collect();
    Ok(Json(cf::ProcessStats { resources }))
}

pub async fn show(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::Process>> {
    let (app, p) = find(&state, guid).await?;
    Ok(Json(process_json(&app, &p, &base(&state))))
}

/// The scale's numbers checked against the server's `[limits]`, with CF's wording for what is
/// out of range.
fn checked(s: &cf::Scale, p: &Proc, max: AppMax) -> ApiResult<(u32, u32, u32)> {
    let range = |v: Option<i64>, now: u32, min: i64, max: u32, what: &str| -> ApiResult<u32> {
        match v {
            None => Ok(now),
            Some(v) if v < min => Err(ApiError::unprocessable(format!(
                "{what} must be greater than or equal to {min}"
            ))),
            Some(v) if v > max as i64 => Err(ApiError::unprocessable(format!(
                "{what} must be less than or equal to {max}"
            ))),
            Some(v) => Ok(v as u32),
        }
    };
    Ok((
        range(s.instances, p.instances, 0, max.instances, "Instances")?,
        range(
            s.memory_in_mb,
            p.memory_mb,
            1,
            max.memory_mb,
            "Memory in mb",
        )?,
        range(s.disk_in_mb, p.disk_mb, 1, max.disk_mb, "Disk in mb")?,
    ))
}

async fn scale_process(
    state: &Shared,
    app: App,
    p: Proc,
    body: &[u8],
) -> ApiResult<(StatusCode, Json<cf::Process>)> {
    let req: cf::Scale = parse_body(body)?;
    let (instances, memory, disk) = checked(&req, &p, state.config.app_max)?;
    let guid = app.guid.clone();
    let mut row = p.row.clone();
    let app = state
        .db
        .call(move |c| {
            if row.kind == "web" {
                store::set_app_scale(c, &guid, instances, memory, disk)?;
            } else {
                (row.instances, row.memory_mb, row.disk_mb) =
                    (Some(instances), Some(memory), Some(disk));
                store::put_process(c, &row)?;
            }
            store::get_app(c, &guid)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("App"))?;
    let (_, p) = find_for_app(state, app.guid.clone(), &p.kind).await?;
    let json = process_json(&app, &p, &base(state));
    Ok((StatusCode::ACCEPTED, Json(json)))
}

pub async fn scale(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<(StatusCode, Json<cf::Process>)> {
    let (app, p) = find(&state, guid).await?;
    scale_process(&state, app, p, &body).await
}

pub async fn scale_for_app(
    State(state): State<Shared>,
    Path((guid, kind)): Path<(String, String)>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<(StatusCode, Json<cf::Process>)> {
    let (app, p) = find_for_app(&state, guid, &kind).await?;
    scale_process(&state, app, p, &body).await
}

pub async fn update(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<Json<cf::Process>> {
    let (app, p) = find(&state, guid).await?;
    update_process(&state, app, p, &body).await
}

pub async fn update_for_app(
    State(state): State<Shared>,
    Path((guid, kind)): Path<(String, String)>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<Json<cf::Process>> {
    let (app, p) = find_for_app(&state, guid, &kind).await?;
    update_process(&state, app, p, &body).await
}

/// `PATCH`: the process's command and health check, checked (`process_update.rs`), stored.
async fn update_process(
    state: &Shared,
    app: App,
    p: Proc,
    body: &[u8],
) -> ApiResult<Json<cf::Process>> {
    let req: process_update::ProcessUpdate = parse_body(body)?;
    let row = process_update::apply(req, &p)?;
    let kind = row.kind.clone();
    state.db.call(move |c| store::put_process(c, &row)).await?;
    let (app, p) = find_for_app(state, app.guid, &kind).await?;
    Ok(Json(process_json(&app, &p, &base(state))))
}
