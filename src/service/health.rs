//! Probes: `GET /healthz` (the process answers) and `GET /readyz` (it can serve: its database
//! answers a query, its data dir takes a new file and its blob store answers a listing). Both are public, as probes are. A
//! failed check is 503 with what failed, for the operator reading the probe's event.

use super::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub async fn alive() -> &'static str {
    "ok\n"
}

pub async fn ready(State(state): State<Shared>) -> (StatusCode, Json<Value>) {
    let database = state
        .db
        .call(|c| Ok(c.query_row("SELECT 1", crate::store::params![], |r| r.get::<_, i64>(0))?))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let dir = state.paths.uploads();
    let storage = tokio::task::spawn_blocking(move || {
        tempfile::tempfile_in(&dir)
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", dir.display()))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let mut checks = vec![("database", database), ("storage", storage)];
    // A store apart from the data dir (the data dir's own is the storage check already).
    if state.blobs.is_shared() {
        let blobs = state.blobs.check().await.map_err(|e| e.to_string());
        checks.push(("blob_store", blobs));
    }
    let ok = checks.iter().all(|(_, r)| r.is_ok());
    let body: serde_json::Map<String, Value> = checks
        .into_iter()
        .map(|(name, r)| {
            let v = match r {
                Ok(()) => json!("ok"),
                Err(e) => json!(e),
            };
            (name.to_string(), v)
        })
        .collect();
    let status = if ok {
        StatusCode::OK
    } else {
        let failed = serde_json::Value::Object(body.clone()).to_string();
        tracing::warn!(checks = %failed, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if ok { "ready" } else { "not ready" };
    (status, Json(json!({"status": word, "checks": body})))
}
