//! `/v3/droplets/:guid`: the droplet (with its image by digest), its tgz, and the Kubernetes
//! objects that run it.

use super::apps::base;
use super::error::{ApiError, ApiResult};
use super::{json, Shared};
use crate::cfapi as cf;
use crate::k8s::{self, AppSpec};
use crate::store::{self, App, Droplet};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;

async fn get(state: &Shared, guid: String) -> ApiResult<(Droplet, App)> {
    state
        .db
        .call(move |c| {
            let Some(d) = store::get_droplet(c, &guid)? else {
                return Ok(None);
            };
            Ok(store::get_app(c, &d.app_guid)?.map(|a| (d, a)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Droplet"))
}

pub async fn show(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::Droplet>> {
    let (d, _) = get(&state, guid).await?;
    Ok(Json(json::droplet(&d, &base(&state))))
}

/// `GET /v3/apps/:guid/droplets/current`: the app's current droplet (CF v3).
pub async fn current(
    State(state): State<Shared>,
    Path(app): Path<String>,
) -> ApiResult<Json<cf::Droplet>> {
    let droplet = state
        .db
        .call(move |c| {
            let Some(a) = store::get_app(c, &app)? else {
                return Ok(Err(ApiError::not_found("App")));
            };
            let Some(guid) = a.current_droplet else {
                return Ok(Err(ApiError::not_found("Droplet")));
            };
            Ok(store::get_droplet(c, &guid)?.ok_or_else(|| ApiError::not_found("Droplet")))
        })
        .await??;
    Ok(Json(json::droplet(&droplet, &base(&state))))
}

pub async fn download(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (d, _) = get(&state, guid).await?;
    let path = state.paths.droplet(&d.guid);
    let (len, body) = match tokio::fs::File::open(&path).await {
        Ok(file) => {
            let len = file.metadata().await.map_err(ApiError::internal)?.len();
            let chunks = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
            (len, Body::from_stream(chunks))
        }
        // Staged on another replica: streamed from the blob store.
        Err(_) if state.blobs.is_shared() => {
            let key = crate::blob::Key::droplet(&d.guid).map_err(ApiError::internal)?;
            let read = (state.blobs.read(&key, None).await)
                .map_err(ApiError::blobs_unavailable)?
                .ok_or_else(|| ApiError::not_found("Droplet bits"))?;
            (read.size, Body::from_stream(read.chunks))
        }
        Err(_) => return Err(ApiError::not_found("Droplet bits")),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"droplet-{}.tgz\"", d.guid),
            ),
        ],
        body,
    )
        .into_response())
}

/// The StatefulSet, PodDisruptionBudget and Service for the droplet, from the app's settings,
/// and a StatefulSet per process type other than `web`: multi-document YAML, or a JSON `List` with `Accept: application/json`.
pub async fn kubernetes(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (d, app) = get(&state, guid).await?;
    objects(&state, &d, &app, true, &headers).await
}

/// The Kubernetes objects of `app` running droplet `d` (every process type with its own
/// settings; 0 replicas unless `started`; named for the app's space and org), as YAML or,
/// when `headers` accept it, JSON.
pub async fn objects(
    state: &Shared,
    d: &Droplet,
    app: &App,
    started: bool,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let (a, s) = (app.guid.clone(), app.space_guid.clone());
    let (rows, space, org) = state
        .db
        .call(move |c| {
            let space = store::get_space(c, &s)?.unwrap_or_default();
            let org = store::get_org(c, &space.org_guid)?.unwrap_or_default();
            Ok((store::processes_of(c, &a)?, space.name, org.name))
        })
        .await?;
    let procs = super::process_state::resolve(app, &d.process_types, &rows);
    let (mut overrides, processes) = super::process_state::for_k8s(&procs);
    if !started {
        overrides.values_mut().for_each(|o| o.instances = Some(0));
    }
    let mut spec = AppSpec::for_app(&super::apps::settings(app), &d.image, &processes);
    spec.overrides = overrides;
    (spec.space_name, spec.org_name) = (space, org);
    let manifests = k8s::manifests(&spec).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if json {
        let body = manifests.to_json().map_err(ApiError::internal)?;
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    let body = manifests.to_yaml().map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/yaml")], body).into_response())
}
