//! Staging logs: each build's output goes to a file as it happens; `GET /v3/builds/:guid/logs`
//! returns it, and with `?follow=true` keeps streaming until the build ends (plain chunked
//! text, or Server-Sent Events when the client accepts `text/event-stream`).

use super::error::{ApiError, ApiResult};
use super::Shared;
use crate::report::{BlobOutcome, Event, Reporter};
use crate::store;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The end-of-log marker line, written when the build finishes.
const END: &str = "==> end of staging log: ";

/// A build's log file, written line by line (each line flushed, so followers see it at once).
pub struct BuildLog {
    file: Mutex<std::fs::File>,
}

impl BuildLog {
    pub fn create(path: &std::path::Path) -> std::io::Result<BuildLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(BuildLog {
            file: Mutex::new(file),
        })
    }

    pub fn line(&self, text: &str) {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(f, "{text}");
    }

    /// Marks the log complete (followers stop after this line).
    pub fn finish(&self, state: &str) {
        self.line(&format!("{END}{state}"));
        let f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = f.sync_all();
    }
}

impl Reporter for BuildLog {
    fn event(&self, event: Event) {
        match event {
            Event::Output(l) => self.line(&l),
            Event::Info(l) => self.line(&format!("==> {l}")),
            Event::Warn(l) => self.line(&format!("warning: {l}")),
            Event::Stage { name, took } => {
                self.line(&format!("==> {name}: {:.2}s", took.as_secs_f64()))
            }
            Event::BlobStart { digest, size } => {
                self.line(&format!("    uploading {digest} ({size} bytes)"))
            }
            Event::BlobProgress { .. } => {}
            Event::BlobDone {
                digest, outcome, ..
            } => {
                let what = match outcome {
                    BlobOutcome::Exists => "already there",
                    BlobOutcome::Mounted => "mounted",
                    BlobOutcome::Uploaded => "uploaded",
                };
                self.line(&format!("    {digest} {what}"));
            }
        }
    }
}

#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    pub follow: bool,
}

fn sse(text: &str) -> String {
    text.lines().map(|l| format!("data: {l}\n\n")).collect()
}

pub async fn show(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let g = guid.clone();
    let build = state
        .db
        .call(move |c| store::get_build(c, &g))
        .await?
        .ok_or_else(|| ApiError::not_found("Build"))?;
    let path = state.paths.build_log(&build.guid);
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let content_type = if wants_sse {
        "text/event-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    if !q.follow {
        let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
        let body = if wants_sse { sse(&text) } else { text };
        return Ok(([(header::CONTENT_TYPE, content_type)], body).into_response());
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    // Tail the file until the end marker: lines are streamed as the build writes them.
    let stream = futures_util::stream::unfold(
        (file, Vec::<u8>::new(), false, 0u32),
        move |(mut file, mut partial, done, idle)| async move {
            if done {
                return None;
            }
            let mut buf = vec![0u8; 64 * 1024];
            let n = file.read(&mut buf).await.ok()?;
            if n == 0 {
                // Nothing new: wait a little (an hour of silence ends the stream regardless).
                if idle > 18_000 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Some((
                    Ok::<Bytes, std::io::Error>(Bytes::new()),
                    (file, partial, false, idle + 1),
                ));
            }
            // Only whole lines go out, so a character split between two reads stays whole.
            partial.extend_from_slice(&buf[..n]);
            let complete: Vec<u8> = match partial.iter().rposition(|&b| b == b'\n') {
                Some(i) => partial.drain(..=i).collect(),
                None => Vec::new(),
            };
            let complete = String::from_utf8_lossy(&complete).into_owned();
            let finished = complete.lines().any(|l| l.starts_with(END));
            let out = if wants_sse {
                let mut s = sse(&complete);
                if finished {
                    s.push_str("event: end\ndata: end\n\n");
                }
                s
            } else {
                complete
            };
            Some((Ok(Bytes::from(out)), (file, partial, finished, 0)))
        },
    );
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().expect("valid"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, "no-cache".parse().expect("valid"));
    Ok(resp)
}
