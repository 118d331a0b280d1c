//! `POST /v3/spaces/:guid/manifest_diff`: what applying a manifest would change, as CF's
//! `{"diff": [{"op": "add"|"replace"|"remove", "path": "/applications/0/...", "was", "value"}]}`.
//! Both sides are put in one shape first (sizes in `M`, health checks as CF names them, the
//! processes by type), so `1G` against `1024M` is no change. Only what the manifest gives is
//! compared (applying it changes nothing else, so no `remove` is ever given); an app not in
//! the space is one `add`.

use super::error::ApiResult;
use super::process_state::{self, Proc};
use super::Shared;
use crate::intake::manifest::{AppManifest, ProcessManifest};
use crate::k8s::HealthCheck;
use crate::store::{self, App};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

fn check_json(hc: &HealthCheck, out: &mut Map<String, Value>) {
    let kind = match hc {
        HealthCheck::Port => "port",
        HealthCheck::Process => "process",
        HealthCheck::Http { endpoint } => {
            out.insert("health-check-http-endpoint".into(), json!(endpoint));
            "http"
        }
    };
    out.insert("health-check-type".into(), json!(kind));
}

/// A process entry of a manifest, only what it gives.
fn wanted_process(p: &ProcessManifest) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!(p.kind));
    if let Some(i) = p.instances {
        o.insert("instances".into(), json!(i));
    }
    if let Some(m) = p.memory_mb {
        o.insert("memory".into(), json!(format!("{m}M")));
    }
    if let Some(d) = p.disk_mb {
        o.insert("disk_quota".into(), json!(format!("{d}M")));
    }
    if let Some(c) = &p.command {
        o.insert("command".into(), json!(c));
    }
    if let Some(hc) = &p.health_check {
        check_json(hc, &mut o);
    }
    if let Some(t) = p.timeout_s {
        o.insert("timeout".into(), json!(t));
    }
    Value::Object(o)
}

/// An application of a manifest, only what it gives.
fn wanted(m: &AppManifest) -> Map<String, Value> {
    let web = m.web_process();
    let Value::Object(mut o) = wanted_process(&web) else {
        unreachable!("an object")
    };
    o.remove("type");
    o.insert("name".into(), json!(m.name));
    if !m.env.is_empty() {
        let env: Map<String, Value> = m.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        o.insert("env".into(), Value::Object(env));
    }
    if let Some(b) = &m.buildpacks {
        o.insert("buildpacks".into(), json!(b));
    }
    if let Some(s) = &m.stack {
        o.insert("stack".into(), json!(s));
    }
    if !m.processes.is_empty() {
        let procs = m.processes.iter().map(wanted_process).collect();
        o.insert("processes".into(), Value::Array(procs));
    }
    o
}

fn current_process(p: &Proc) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("type".into(), json!(p.kind));
    o.insert("instances".into(), json!(p.instances));
    o.insert("memory".into(), json!(format!("{}M", p.memory_mb)));
    o.insert("disk_quota".into(), json!(format!("{}M", p.disk_mb)));
    if let Some(c) = &p.command {
        o.insert("command".into(), json!(c));
    }
    check_json(&p.health_check, &mut o);
    if let Some(t) = p.timeout_s {
        o.insert("timeout".into(), json!(t));
    }
    o
}

/// The app as a manifest application (the same shape as [`wanted`]).
fn current(app: &App, procs: &[Proc]) -> Map<String, Value> {
    let web = procs
        .iter()
        .find(|p| p.kind == "web")
        .expect("web is always listed");
    let mut o = current_process(web);
    o.remove("type");
    o.insert("name".into(), json!(app.name));
    o.insert("env".into(), json!(app.env));
    o.insert("buildpacks".into(), json!(app.buildpacks));
    if let Some(s) = &app.stack {
        o.insert("stack".into(), json!(s));
    }
    let procs = procs
        .iter()
        .map(|p| Value::Object(current_process(p)))
        .collect();
    o.insert("processes".into(), Value::Array(procs));
    o
}

/// The ops turning `was` into what `want` gives, under `path`.
fn diff(path: &str, was: &Map<String, Value>, want: &Map<String, Value>, out: &mut Vec<Value>) {
    for (k, v) in want {
        let here = format!("{path}/{k}");
        match (was.get(k), v) {
            (None, _) => out.push(json!({"op": "add", "path": here, "value": v})),
            (Some(Value::Object(w)), Value::Object(n)) if k == "env" => diff(&here, w, n, out),
            (Some(Value::Array(w)), Value::Array(n)) if k == "processes" => {
                for (i, p) in n.iter().enumerate() {
                    let at = format!("{here}/{i}");
                    let old = w.iter().find(|o| o["type"] == p["type"]);
                    match (old, p) {
                        (Some(Value::Object(o)), Value::Object(p)) => diff(&at, o, p, out),
                        _ => out.push(json!({"op": "add", "path": at, "value": p})),
                    }
                }
            }
            (Some(w), v) if w != v => {
                out.push(json!({"op": "replace", "path": here, "was": w, "value": v}))
            }
            _ => {}
        }
    }
}

pub async fn manifest_diff(
    State(state): State<Shared>,
    Path(space): Path<String>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<Json<Value>> {
    let space = super::spaces::find(&state, space).await?;
    let apps = super::manifest_apply::parse(&state, &body)?;
    let mut out = Vec::new();
    for (i, m) in apps.iter().enumerate() {
        let path = format!("/applications/{i}");
        let name = m.name.clone().unwrap_or_default();
        let app = state.db.call(move |c| store::app_by_name(c, &name)).await?;
        let want = wanted(m);
        match app.filter(|a| a.space_guid == space.guid) {
            None => out.push(json!({"op": "add", "path": path, "value": want})),
            Some(a) => {
                let procs = process_state::load(&state, &a).await?;
                diff(&path, &current(&a, &procs), &want, &mut out);
            }
        }
    }
    Ok(Json(json!({ "diff": out })))
}
