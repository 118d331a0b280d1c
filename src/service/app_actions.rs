//! An app's desired state: `POST /v3/apps/:guid/actions/start|stop|restart` (CF's; starting
//! needs a current droplet), and `GET /v3/apps/:guid/kubernetes`, the objects of its current
//! droplet with its instances when STARTED and 0 replicas when STOPPED. dropship emits the
//! objects; applying them is the cluster's (or a GitOps tool's) job.

use super::apps::find as app;
use super::apps::{base, default_stack};
use super::error::{ApiError, ApiResult};
use super::{json, Shared};
use crate::cfapi as cf;
use crate::store::{self, App, AppState};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;

async fn set(state: &Shared, app: App, to: AppState) -> ApiResult<Json<cf::App>> {
    if to == AppState::Started && app.current_droplet.is_none() {
        return Err(ApiError::unprocessable(
            "Assign a droplet before starting this app.",
        ));
    }
    let guid = app.guid.clone();
    let app = state
        .db
        .call(move |c| {
            store::set_app_state(c, &guid, to)?;
            store::get_app(c, &guid)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("App"))?;
    Ok(Json(json::app(&app, &base(state), &default_stack(state))))
}

pub async fn start(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::App>> {
    let app = app(&state, guid).await?;
    set(&state, app, AppState::Started).await
}

pub async fn stop(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::App>> {
    let app = app(&state, guid).await?;
    set(&state, app, AppState::Stopped).await
}

/// Stop, then start: the objects are the same, so this only checks it can start.
pub async fn restart(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::App>> {
    let app = app(&state, guid).await?;
    set(&state, app, AppState::Started).await
}

pub async fn kubernetes(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let app = app(&state, guid).await?;
    let d = app.current_droplet.clone();
    let d = d.ok_or_else(|| ApiError::not_found("Current droplet"))?;
    let droplet = state.db.call(move |c| store::get_droplet(c, &d)).await?;
    let droplet = droplet.ok_or_else(|| ApiError::not_found("Current droplet"))?;
    let started = app.state == AppState::Started;
    super::droplets::objects(&state, &droplet, &app, started, &headers).await
}
