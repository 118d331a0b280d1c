//! `/v3/apps`: create, show, list (`?names=`), and the current droplet relationship.

use super::error::{ApiError, ApiResult};
use super::paging::{self, Accepts, ListQuery};
use super::{json, Shared};
use crate::cfapi::app::{CurrentDropletLinks, EnvLinks};
use crate::cfapi::{self as cf, Link, Paginated};
use crate::k8s::HealthCheck;
use crate::store::{self, App, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use std::collections::BTreeMap;

pub fn base(state: &Shared) -> String {
    format!("http://{}", state.config.public_address)
}

/// The app's settings as its record holds them: the one source of its staging limits and
/// of its Kubernetes spec.
pub fn settings(app: &App) -> crate::app::App {
    crate::app::App {
        instances: app.instances,
        memory_mb: app.memory_mb as u64,
        disk_mb: app.disk_mb as u64,
        health_check: app.health_check.clone(),
        env: app
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..crate::app::App::named(app.name.clone())
    }
}

/// The app `guid`, or CF's 404.
pub async fn find(state: &Shared, guid: String) -> ApiResult<App> {
    state
        .db
        .call(move |c| store::get_app(c, &guid))
        .await?
        .ok_or_else(|| ApiError::not_found("App"))
}

pub fn default_stack(state: &Shared) -> String {
    state.config.default_stack.clone().unwrap_or_default()
}

/// Parses a JSON body into `T`, answering CF's 422 with the parser's words when it does not fit.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::unprocessable(format!("invalid request body: {e}")))
}

pub async fn create(
    State(state): State<Shared>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<(StatusCode, Json<cf::App>)> {
    let req: cf::CreateApp = parse_body(&body)?;
    let name = req.name.trim().to_string();
    checked_name(&state, &name)?;
    let env = super::validate::env_vars(req.environment_variables)?;
    let space = req.relationships.map(|r| r.space.data.guid);
    let space = space.unwrap_or_else(|| store::DEFAULT_SPACE_GUID.to_string());
    let t = store::now();
    let app = App {
        guid: store::new_guid(),
        name: name.clone(),
        env,
        current_droplet: None,
        instances: 1,
        memory_mb: 1024,
        disk_mb: 1024,
        health_check: HealthCheck::Port,
        state: AppState::Stopped,
        space_guid: space,
        buildpacks: Vec::new(),
        stack: None,
        created_at: t.clone(),
        updated_at: t,
    };
    let row = app.clone();
    state
        .db
        .call(move |c| {
            if store::get_space(c, &row.space_guid)?.is_none() {
                return Ok(Err(ApiError::unprocessable(
                    "Invalid space. Ensure that the space exists and you have access to it.",
                )));
            }
            if store::app_by_name(c, &row.name)?.is_some() {
                return Ok(Err(taken(&row.name)));
            }
            store::insert_app(c, &row)?;
            Ok(Ok(()))
        })
        .await??;
    Ok((
        StatusCode::CREATED,
        Json(json::app(&app, &base(&state), &default_stack(&state))),
    ))
}

pub async fn show(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::App>> {
    let app = state
        .db
        .call(move |c| store::get_app(c, &guid))
        .await?
        .ok_or_else(|| ApiError::not_found("App"))?;
    Ok(Json(json::app(&app, &base(&state), &default_stack(&state))))
}

const LIST: Accepts = Accepts {
    filters: &[
        "names",
        "guids",
        "space_guids",
        "organization_guids",
        "include",
    ],
    order_by: &["created_at", "updated_at", "name"],
};

/// `GET /v3/apps`: CF's paging, order and filters (every app is in the one space and org).
pub async fn list(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Paginated<cf::App>>> {
    let q = ListQuery::parse(&pairs, &LIST)?;
    let (apps, spaces) = state
        .db
        .call(|c| Ok((store::list_apps(c, None)?, store::list_spaces(c)?)))
        .await?;
    let org_of = |a: &App| {
        let s = spaces.iter().find(|s| s.guid == a.space_guid);
        s.map(|s| s.org_guid.clone()).unwrap_or_default()
    };
    let apps: Vec<App> = apps
        .into_iter()
        .filter(|a| q.allows("names", &a.name) && q.allows("guids", &a.guid))
        .filter(|a| q.allows("space_guids", &a.space_guid))
        .filter(|a| q.allows("organization_guids", &org_of(a)))
        .collect();
    let b = base(&state);
    let key = |a: &App, field: &str| match field {
        "name" => a.name.clone(),
        "updated_at" => a.updated_at.clone(),
        _ => a.created_at.clone(),
    };
    let (page, pagination) = q.page(apps, key, &b, "/v3/apps");
    let stack = default_stack(&state);
    let resources = page.iter().map(|a| json::app(a, &b, &stack)).collect();
    let mut body = paging::list(pagination, resources);
    let in_spaces = page.iter().map(|a| a.space_guid.clone()).collect();
    let include = q.filters.get("include");
    body.included = super::spaces::included(&state, include, in_spaces).await?;
    Ok(Json(body))
}

pub async fn set_current_droplet(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<Json<cf::CurrentDroplet>> {
    let req: cf::SetCurrentDroplet = parse_body(&body)?;
    let droplet = req
        .data
        .ok_or_else(|| ApiError::unprocessable("Current droplet cannot be removed"))?
        .guid;
    let (app_guid, d) = (guid.clone(), droplet.clone());
    state
        .db
        .call(move |c| {
            let Some(app) = store::get_app(c, &app_guid)? else {
                return Ok(Err(ApiError::not_found("App")));
            };
            match store::get_droplet(c, &d)? {
                Some(dr) if dr.app_guid == app.guid => {
                    store::set_current_droplet(c, &app.guid, &d)?;
                    Ok(Ok(()))
                }
                _ => Ok(Err(ApiError::unprocessable("Unable to assign current droplet. Ensure the droplet exists and belongs to this app."))),
            }
        })
        .await??;
    let path = format!("/v3/apps/{guid}/relationships/current_droplet");
    Ok(Json(cf::CurrentDroplet {
        data: Some(cf::GuidRef::new(droplet)),
        links: CurrentDropletLinks {
            this: Link::to(&base(&state), &path),
            related: None,
        },
    }))
}

/// `PATCH /v3/apps/:guid`: a new name (checked as at creation, unique).
pub async fn update(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<Json<cf::App>> {
    let req: cf::UpdateApp = parse_body(&body)?;
    if let Some(l) = &req.lifecycle {
        if l.get("type").is_some_and(|t| t != "buildpack") {
            return Err(ApiError::unprocessable("Lifecycle type cannot be changed"));
        }
    }
    if let Some(name) = req.name.map(|n| n.trim().to_string()) {
        checked_name(&state, &name)?;
        let (g, n) = (guid.clone(), name.clone());
        let exists = state.db.call(move |c| Ok(store::get_app(c, &g)?.is_some()));
        if !exists.await? {
            return Err(ApiError::not_found("App"));
        }
        let (g, n2) = (guid.clone(), name.clone());
        if !state
            .db
            .call(move |c| store::rename_app(c, &g, &n2))
            .await?
        {
            return Err(taken(&n));
        }
    }
    show(State(state), Path(guid)).await
}

pub fn taken(name: &str) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: 10016,
        title: "CF-UniquenessError",
        detail: format!("App with the name '{name}' already exists."),
    }
}

/// A name as creation and renaming take it.
pub fn checked_name(state: &Shared, name: &str) -> ApiResult<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::unprocessable(
            "Name must be between 1 and 255 characters",
        ));
    }
    super::validate::app_name(&state.config, name)
}

fn env_json(state: &Shared, guid: &str, env: &BTreeMap<String, String>) -> cf::EnvVars {
    let b = base(state);
    cf::EnvVars {
        var: env.clone(),
        links: EnvLinks {
            this: Link::to(&b, &format!("/v3/apps/{guid}/environment_variables")),
            app: Link::to(&b, &format!("/v3/apps/{guid}")),
        },
    }
}

/// `GET /v3/apps/:guid/environment_variables`.
pub async fn show_env(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::EnvVars>> {
    let g = guid.clone();
    let app = state
        .db
        .call(move |c| store::get_app(c, &g))
        .await?
        .ok_or_else(|| ApiError::not_found("App"))?;
    Ok(Json(env_json(&state, &guid, &app.env)))
}

/// `GET /v3/apps/:guid/env`: the app's variables and what Cloud Foundry adds to them
/// (`VCAP_APPLICATION`; no service bindings, so `VCAP_SERVICES` is empty).
pub async fn show_full_env(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::AppEnv>> {
    let (app, space, org) = state
        .db
        .call(move |c| {
            let Some(app) = store::get_app(c, &guid)? else {
                return Ok(None);
            };
            let space = store::get_space(c, &app.space_guid)?.unwrap_or_default();
            let org = store::get_org(c, &space.org_guid)?.unwrap_or_default();
            Ok(Some((app, space, org)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("App"))?;
    let vcap = serde_json::json!({
        "application_id": app.guid, "application_name": app.name, "name": app.name,
        "space_id": space.guid, "space_name": space.name,
        "organization_id": org.guid, "organization_name": org.name,
        "limits": {"mem": app.memory_mb, "disk": app.disk_mb, "fds": 16384},
        "application_uris": [], "uris": [],
    });
    Ok(Json(cf::AppEnv {
        environment_variables: app.env,
        system_env_json: BTreeMap::from([("VCAP_SERVICES".into(), serde_json::json!({}))]),
        application_env_json: BTreeMap::from([("VCAP_APPLICATION".into(), vcap)]),
        ..cf::AppEnv::default()
    }))
}

/// `PATCH /v3/apps/:guid/environment_variables`: `{"var": {NAME: value}}` sets (checked as at
/// creation), `{"var": {NAME: null}}` removes; the others are kept (as Cloud Controller).
pub async fn update_env(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<Json<cf::EnvVars>> {
    let req: cf::SetEnv = parse_body(&body)?;
    let (removed, set): (Vec<_>, Vec<_>) = req.var.into_iter().partition(|(_, v)| v.is_null());
    let set = super::validate::env_vars(set.into_iter().collect())?;
    let g = guid.clone();
    let env = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let Some(app) = store::get_app(&tx, &g)? else {
                return Ok(None);
            };
            let mut env = app.env;
            for (k, _) in removed {
                env.remove(&k);
            }
            env.extend(set);
            store::set_app_env(&tx, &g, &env)?;
            tx.commit()?;
            Ok(Some(env))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("App"))?;
    Ok(Json(env_json(&state, &guid, &env)))
}

/// `DELETE /v3/apps/:guid/cache`: forgets the app's buildpack cache (the next build starts cold).
pub async fn delete_cache(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<StatusCode> {
    let g = guid.clone();
    state
        .db
        .call(move |c| store::get_app(c, &g))
        .await?
        .ok_or_else(|| ApiError::not_found("App"))?;
    let dir = state.paths.caches().join(&guid);
    if dir.exists() {
        tokio::fs::remove_dir_all(&dir)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(StatusCode::NO_CONTENT)
}
