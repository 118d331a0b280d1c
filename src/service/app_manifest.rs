//! `GET /v3/apps/:guid/manifest`: the app as a cf manifest (YAML), what `cf create-app-manifest`
//! writes: name, the web process's instances, memory, disk, health check (and command and
//! timeout when set), env, the buildpacks and stack of the current droplet, and a `processes`
//! entry for every other process type.
//! `GET /v3/apps/:guid/relationships/current_droplet`: the current droplet's GUID.

use super::apps::base;
use super::error::{ApiError, ApiResult};
use super::process_state::Proc;
use super::Shared;
use crate::cfapi::{self as cf, Link};
use crate::k8s::HealthCheck;
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

/// The health check's attributes of a manifest entry.
fn check(o: &mut Value, hc: &HealthCheck) {
    let kind = match hc {
        HealthCheck::Port => "port",
        HealthCheck::Process => "process",
        HealthCheck::Http { endpoint } => {
            o["health-check-http-endpoint"] = json!(endpoint);
            "http"
        }
    };
    o["health-check-type"] = json!(kind);
}

fn manifest(app: &App, droplet: Option<&Droplet>, procs: &[Proc]) -> Value {
    // The app's own attributes are its web process's (and `dropship push` of this manifest
    // gives the same app); every other type is a `processes` entry.
    let mut a = json!({"name": app.name});
    let mut others = Vec::new();
    for p in procs {
        let mut o = json!({
            "instances": p.instances,
            "memory": format!("{}M", p.memory_mb),
            "disk_quota": format!("{}M", p.disk_mb),
        });
        check(&mut o, &p.health_check);
        if let Some(t) = p.timeout_s {
            o["timeout"] = json!(t);
        }
        if p.kind == "web" {
            // web's command is the droplet's unless one was set.
            if let Some(c) = &p.row.command {
                o["command"] = json!(c);
            }
            a.as_object_mut()
                .expect("object")
                .extend(o.as_object().cloned().unwrap_or_default());
        } else {
            o["type"] = json!(p.kind);
            if let Some(c) = &p.command {
                o["command"] = json!(c);
            }
            others.push(o);
        }
    }
    if !app.env.is_empty() {
        a["env"] = json!(app.env);
    }
    if let Some(d) = droplet {
        let bps = d.buildpacks.as_array().into_iter().flatten();
        a["buildpacks"] = json!(bps.map(|b| &b["key"]).collect::<Vec<_>>());
        a["stack"] = json!(d.stack);
    }
    if !others.is_empty() {
        a["processes"] = json!(others);
    }
    json!({ "applications": [a] })
}

pub async fn show(State(state): State<Shared>, Path(guid): Path<String>) -> ApiResult<Response> {
    let (app, droplet) = app_and_droplet(&state, guid).await?;
    let procs = super::process_state::load(&state, &app).await?;
    let m = manifest(&app, droplet.as_ref(), &procs);
    let yaml = serde_norway::to_string(&m).map_err(ApiError::internal)?;
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
