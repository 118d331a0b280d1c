//! `/v3/processes` and `/v3/apps/:guid/processes`: one process per process type of the app's
//! current droplet (`web` always, its GUID the app's, as in Cloud Foundry), and `actions/scale`,
//! which `cf push -i/-m/-k` and `dropship push` use. Every process type runs with the app's
//! instances, memory and disk, so only `web` scales; the others follow it. Staging runs with
//! the app's memory and disk too, so they are capped by the server's `[limits]`.

use super::apps::find as app;
use super::apps::{base, parse_body};
use super::config::AppMax;
use super::error::{ApiError, ApiResult};
use super::paging::{self, Accepts, ListQuery};
use super::Shared;
use crate::cfapi::process::{
    HealthCheck, HealthCheckData, InstanceState, ProcessLinks, ProcessRelationships, Usage,
};
use crate::cfapi::{self as cf, Link, Metadata, Paginated, Relationship};
use crate::k8s::process_guid;
use crate::store::{self, App};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use std::collections::BTreeMap;

/// An app's process types (from its current droplet) with their commands; `web` always.
async fn process_types(state: &Shared, app: &App) -> ApiResult<BTreeMap<String, Option<String>>> {
    let mut types = BTreeMap::from([("web".to_string(), None)]);
    if let Some(d) = app.current_droplet.clone() {
        let droplet = state.db.call(move |c| store::get_droplet(c, &d)).await?;
        for (kind, command) in droplet.map(|d| d.process_types).unwrap_or_default() {
            types.insert(kind, Some(command));
        }
    }
    Ok(types)
}

fn guid_of(app: &App, kind: &str) -> String {
    if kind == "web" {
        app.guid.clone()
    } else {
        process_guid(&app.guid, kind)
    }
}

fn process_json(app: &App, kind: &str, command: Option<&str>, base: &str) -> cf::Process {
    let guid = guid_of(app, kind);
    let path = format!("/v3/processes/{guid}");
    cf::Process {
        guid: guid.clone(),
        kind: kind.to_string(),
        command: command.map(String::from),
        instances: app.instances,
        memory_in_mb: app.memory_mb,
        disk_in_mb: app.disk_mb,
        log_rate_limit_in_bytes_per_second: -1,
        health_check: HealthCheck {
            kind: app.health_check.to_string(),
            data: HealthCheckData::default(),
        },
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

/// The app and process type a process GUID names: the app's own GUID is its `web` process;
/// the others are looked up among the apps' current process types.
async fn find(state: &Shared, guid: String) -> ApiResult<(App, String, Option<String>)> {
    let g = guid.clone();
    if let Some(a) = state.db.call(move |c| store::get_app(c, &g)).await? {
        let command = process_types(state, &a).await?.remove("web").flatten();
        return Ok((a, "web".to_string(), command));
    }
    let apps = state.db.call(|c| store::list_apps(c, None)).await?;
    for a in apps {
        let types = process_types(state, &a).await?;
        if let Some((kind, command)) = types.into_iter().find(|(k, _)| guid_of(&a, k) == guid) {
            return Ok((a, kind, command));
        }
    }
    Err(ApiError::not_found("Process"))
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
    let types: Vec<(String, Option<String>)> = process_types(&state, &app)
        .await?
        .into_iter()
        .filter(|(kind, _)| q.allows("types", kind))
        .collect();
    let path = format!("/v3/apps/{}/processes", app.guid);
    // Every process has the app's timestamps: the order stays by type.
    let (page, pagination) = q.page(types, |(kind, _), _| kind.clone(), &b, &path);
    let resources = page
        .iter()
        .map(|(kind, command)| process_json(&app, kind, command.as_deref(), &b))
        .collect();
    Ok(Json(paging::list(pagination, resources)))
}

const ALL: Accepts = Accepts {
    filters: &["guids", "types", "app_guids", "space_guids"],
    order_by: paging::TIMES,
};

/// `GET /v3/processes`: every app's processes (`app_guids`, `types`, `guids` filters), by
/// the apps' times, then type.
pub async fn list(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Paginated<cf::Process>>> {
    let q = ListQuery::parse(&pairs, &ALL)?;
    let apps = state.db.call(|c| store::list_apps(c, None)).await?;
    let mut rows = Vec::new();
    for a in apps.into_iter().filter(|a| q.allows("app_guids", &a.guid)) {
        for (kind, command) in process_types(&state, &a).await? {
            let wanted = q.allows("types", &kind) && q.allows("guids", &guid_of(&a, &kind));
            if wanted && q.allows("space_guids", super::json::SPACE_GUID) {
                rows.push((a.clone(), kind, command));
            }
        }
    }
    let b = base(&state);
    let key = |(a, kind, _): &(App, String, Option<String>), f: &str| {
        format!(
            "{} {kind}",
            paging::by_time(&a.created_at, &a.updated_at, f)
        )
    };
    let (page, pagination) = q.page(rows, key, &b, "/v3/processes");
    let resources = page
        .iter()
        .map(|(a, kind, command)| process_json(a, kind, command.as_deref(), &b))
        .collect();
    Ok(Json(paging::list(pagination, resources)))
}

pub async fn show_for_app(
    State(state): State<Shared>,
    Path((guid, kind)): Path<(String, String)>,
) -> ApiResult<Json<cf::Process>> {
    let app = app(&state, guid).await?;
    let types = process_types(&state, &app).await?;
    let command = types
        .get(&kind)
        .ok_or_else(|| ApiError::not_found("Process"))?;
    Ok(Json(process_json(
        &app,
        &kind,
        command.as_deref(),
        &base(&state),
    )))
}

/// `GET /v3/processes/:guid/stats`: one entry per desired instance. dropship emits the
/// Kubernetes objects and does not watch the cluster, so the state is the desired one: STARTING
/// with a current droplet, DOWN without; `details` says so.
pub async fn stats(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::ProcessStats>> {
    let (app, kind, _) = find(&state, guid).await?;
    let up = app.current_droplet.is_some();
    let details = "the desired state: dropship emits the Kubernetes objects; the cluster runs them";
    let resources = (0..app.instances)
        .map(|index| cf::InstanceStats {
            kind: kind.clone(),
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
            mem_quota: Some(u64::from(app.memory_mb) << 20),
            disk_quota: Some(u64::from(app.disk_mb) << 20),
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
    let (app, kind, command) = find(&state, guid).await?;
    Ok(Json(process_json(
        &app,
        &kind,
        command.as_deref(),
        &base(&state),
    )))
}

/// The scale's numbers checked against the server's `[limits]`, with CF's wording for what is
/// out of range.
fn checked(s: &cf::Scale, app: &App, max: AppMax) -> ApiResult<(u32, u32, u32)> {
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
        range(s.instances, app.instances, 0, max.instances, "Instances")?,
        range(
            s.memory_in_mb,
            app.memory_mb,
            1,
            max.memory_mb,
            "Memory in mb",
        )?,
        range(s.disk_in_mb, app.disk_mb, 1, max.disk_mb, "Disk in mb")?,
    ))
}

async fn scale_process(
    state: &Shared,
    app: App,
    kind: String,
    command: Option<String>,
    body: &[u8],
) -> ApiResult<(StatusCode, Json<cf::Process>)> {
    let req: cf::Scale = parse_body(body)?;
    if kind != "web" {
        return Err(ApiError::unprocessable(format!(
            "only the web process scales: process type {kind:?} runs with the web process's \
             instances, memory and disk"
        )));
    }
    let (instances, memory, disk) = checked(&req, &app, state.config.app_max)?;
    let guid = app.guid.clone();
    let app = state
        .db
        .call(move |c| {
            store::set_app_scale(c, &guid, instances, memory, disk)?;
            store::get_app(c, &guid)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("App"))?;
    let json = process_json(&app, &kind, command.as_deref(), &base(state));
    Ok((StatusCode::ACCEPTED, Json(json)))
}

pub async fn scale(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<(StatusCode, Json<cf::Process>)> {
    let (app, kind, command) = find(&state, guid).await?;
    scale_process(&state, app, kind, command, &body).await
}

pub async fn scale_for_app(
    State(state): State<Shared>,
    Path((guid, kind)): Path<(String, String)>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<(StatusCode, Json<cf::Process>)> {
    let app = app(&state, guid).await?;
    let types = process_types(&state, &app).await?;
    let command = types
        .get(&kind)
        .ok_or_else(|| ApiError::not_found("Process"))?;
    let command = command.clone();
    scale_process(&state, app, kind, command, &body).await
}
