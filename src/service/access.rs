//! The access log: one event per request, `request` with `method`, `path` (never the query
//! string: it could carry anything), `status`, `duration_ms` (until the response's head; a
//! streamed body such as a followed log goes on after) and `bytes` when the body's length is
//! known. No header is logged, so no token or password either. Probes (`/healthz`, `/metrics`)
//! are logged at `debug`, everything else at `info`.

use axum::body::HttpBody;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::{debug, info};

pub async fn log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let duration_ms = started.elapsed().as_millis() as u64;
    let bytes = resp.body().size_hint().exact();
    if path == "/healthz" || path == "/readyz" || path == "/metrics" {
        debug!(%method, %path, status, duration_ms, bytes, "request");
    } else {
        info!(%method, %path, status, duration_ms, bytes, "request");
    }
    resp
}
