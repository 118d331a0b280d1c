//! `GET /v3/apps/:guid/manifest`: the app as a cf manifest (YAML), what `cf create-app-manifest`
//! writes: name, instances, memory, disk, health check, env, and the buildpacks and stack of
//! the current droplet.
//! `GET /v3/apps/:guid/relationships/current_droplet`: the current droplet's GUID.

use super::apps::base;
use super::error::{ApiError, ApiResult};
use super::Shared;
use crate::cfapi::{self as cf, Link};
use crate::store::{self, App, Droplet};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

async fn app_and_droplet(state: &Shared, guid: String) -> ApiResult<(App, Option<Droplet>)> {
    state
        .db
        .call(move |c| {
            let Some(a) = store::get_app(c, &guid)? else {
                return Ok(None);
            };
            let d = match &a.current_droplet {
                Some(d) => store::get_droplet(c, d)?,
                None => None,
            };
            Ok(Some((a, d)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("App"))
}

fn manifest(app: &App, droplet: Option<&Droplet>) -> Value {
    // At the application's level, which dropship applies to every process type (and reads
    // back: `dropship push` of this manifest gives the same app).
    let mut a = json!({
        "name": app.name,
        "instances": app.instances,
        "memory": format!("{}M", app.memory_mb),
        "disk_quota": format!("{}M", app.disk_mb),
        "health-check-type": app.health_check.to_string(),
    });
    if !app.env.is_empty() {
        a["env"] = json!(app.env);
    }
    if let Some(d) = droplet {
        let bps = d.buildpacks.as_array().into_iter().flatten();
        a["buildpacks"] = json!(bps.map(|b| &b["key"]).collect::<Vec<_>>());
        a["stack"] = json!(d.stack);
    }
    json!({ "applications": [a] })
}

pub async fn show(State(state): State<Shared>, Path(guid): Path<String>) -> ApiResult<Response> {
    let (app, droplet) = app_and_droplet(&state, guid).await?;
    let yaml =
        serde_norway::to_string(&manifest(&app, droplet.as_ref())).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/x-yaml")], yaml).into_response())
}

pub async fn current_droplet(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::CurrentDroplet>> {
    let (app, droplet) = app_and_droplet(&state, guid).await?;
    let b = base(&state);
    let g = &app.guid;
    let related = droplet
        .is_some()
        .then(|| Link::to(&b, &format!("/v3/apps/{g}/droplets/current")));
    Ok(Json(cf::CurrentDroplet {
        data: droplet.map(|d| cf::GuidRef::new(d.guid)),
        links: cf::app::CurrentDropletLinks {
            this: Link::to(&b, &format!("/v3/apps/{g}/relationships/current_droplet")),
            related,
        },
    }))
}
