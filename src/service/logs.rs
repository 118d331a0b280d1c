//! Staging logs: each build's output goes to a file as it happens, at most `limits.max_log`
//! bytes of it (then one marker line; the build goes on). `GET /v3/builds/:guid/logs` streams
//! the file (never read whole), and with `?follow=true` keeps streaming until the build is in a
//! final state in the store and everything in the file has been sent (plain chunked text, or
//! Server-Sent Events when the client accepts `text/event-stream`). The end is never read from
//! the log's content: a buildpack may print anything.
//!
//! Beside each log, `<guid>.stamps` holds one text record per line, `OFFSET NANOS STREAM`
//! (the line's byte offset in the log, when it was written, `O` for output and service lines,
//! `E` for warnings): the log cache (`log_cache.rs`) reads the lines with their times from it.
//! Logs written before the stamps existed have none and give no envelopes.

use super::error::{ApiError, ApiResult};
use super::log_cache::{now_ns, stamps_path, Stream};
use super::Shared;
use crate::report::{BlobOutcome, Event, Reporter};
use crate::store::{self, BuildState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The last line of every log (for people reading it; followers do not look for it).
pub const END: &str = "==> end of staging log: ";

/// A build's log file, written line by line (each line flushed, so followers see it at once).
/// Buildpack output counts against the cap; the service's own lines (stages, the end) do not.
pub struct BuildLog {
    inner: Mutex<Inner>,
    cap: u64,
}

struct Inner {
    file: std::fs::File,
    /// The stamps beside the log (`None` if it could not be opened: lines are still logged).
    stamps: Option<std::fs::File>,
    /// The log's length: where the next line starts.
    offset: u64,
    /// The last line's time: each line is later than the one before (clients of the log
    /// cache ask for what follows a time).
    last_ns: u64,
    /// Bytes of buildpack output written so far.
    output: u64,
    /// Past the cap (the marker is written): buildpack output is dropped.
    truncated: bool,
}

/// `33554432` -> `32 MiB`.
fn mib(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

impl BuildLog {
    pub fn create(path: &std::path::Path, cap: u64) -> std::io::Result<BuildLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let offset = file.metadata()?.len();
        let stamps = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stamps_path(path))
            .ok();
        Ok(BuildLog {
            inner: Mutex::new(Inner {
                file,
                stamps,
                offset,
                last_ns: 0,
                output: 0,
                truncated: false,
            }),
            cap,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A line of the service's own.
    pub fn line(&self, text: &str) {
        self.lock().write(text, Stream::Out);
    }

    /// A warning of the service's own (the log cache's `ERR` stream).
    fn warning(&self, text: &str) {
        self.lock().write(text, Stream::Err);
    }

    /// A line of buildpack output: dropped past the cap, where one marker line says so.
    pub fn output(&self, text: &str) {
        let mut inner = self.lock();
        if inner.truncated {
            return;
        }
        let len = text.len() as u64 + 1;
        if inner.output + len > self.cap {
            inner.truncated = true;
            let marker = format!(
                "==> log truncated at {}: further output dropped",
                mib(self.cap)
            );
            inner.write(&marker, Stream::Out);
            return;
        }
        inner.output += len;
        inner.write(text, Stream::Out);
    }

    /// Writes the last line and syncs the file. Call before the build's final state is
    /// recorded: followers stop once they see that state and have read the file to its end.
    pub fn finish(&self, state: BuildState) {
        self.line(&format!("{END}{state}"));
        let inner = self.lock();
        let _ = inner.file.sync_all();
        if let Some(stamps) = &inner.stamps {
            let _ = stamps.sync_all();
        }
    }
}

impl Inner {
    /// One line and its stamp. A full disk loses log lines, never the build.
    fn write(&mut self, text: &str, stream: Stream) {
        let start = self.offset;
        if writeln!(self.file, "{text}").is_err() {
            return;
        }
        self.offset += text.len() as u64 + 1;
        self.last_ns = now_ns().max(self.last_ns + 1);
        if let Some(stamps) = &mut self.stamps {
            let _ = writeln!(stamps, "{start} {} {}", self.last_ns, stream.letter());
        }
    }
}

impl Reporter for BuildLog {
    fn event(&self, event: Event) {
        match event {
            Event::Output(l) => self.output(&l),
            Event::Info(l) => self.line(&format!("==> {l}")),
            Event::Warn(l) => self.warning(&format!("warning: {l}")),
            Event::Stage { stage, took } => {
                self.line(&format!("==> {stage}: {:.2}s", took.as_secs_f64()))
            }
            Event::BlobStart { digest, size } => self.line(&format!(
                "    uploading {digest} ({})",
                crate::units::format_size(size)
            )),
            Event::BlobProgress { .. } | Event::Progress { .. } => {}
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
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !q.follow => None,
        Err(e) => return Err(ApiError::internal(e)),
    };
    let tail = Tail {
        file,
        state: state.clone(),
        guid: build.guid,
        sse,
        follow: q.follow,
        partial: Vec::new(),
        closing: false,
        idle: 0,
        done: false,
        ended: state.builds_ended.subscribe(),
        seen_ended: u64::MAX,
    };
    let stream = futures_util::stream::unfold(tail, |mut t| async move {
        let chunk = t.next().await?;
        Some((Ok::<Bytes, std::io::Error>(chunk), t))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let content_type = if sse {
        "text/event-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type.parse().expect("valid"));
    h.insert(header::CACHE_CONTROL, "no-cache".parse().expect("valid"));
    Ok(resp)
}

/// Wait between two looks at a followed log that has nothing new.
const IDLE: Duration = Duration::from_millis(200);

/// Longest piece held back waiting for the end of its line (lines are at most 16 KiB).
const MAX_PARTIAL: usize = 64 * 1024;

/// Reads a log file a chunk at a time; following, waits for more until the build is final.
struct Tail {
    file: Option<tokio::fs::File>,
    state: Shared,
    guid: String,
    sse: bool,
    follow: bool,
    /// The start of a line whose end is not written yet.
    partial: Vec<u8>,
    /// The build is final: read to the end of the file once more, then stop.
    closing: bool,
    idle: u32,
    done: bool,
    /// `State::builds_ended`, and its value when the store was last asked.
    ended: tokio::sync::watch::Receiver<u64>,
    seen_ended: u64,
}

impl Tail {
    /// The next piece of the answer, None at its end.
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match &mut self.file {
                Some(f) => f.read(&mut buf).await.ok()?,
                None => 0,
            };
            if n > 0 {
                self.idle = 0;
                self.partial.extend_from_slice(&buf[..n]);
                let cut = match self.partial.iter().rposition(|&b| b == b'\n') {
                    Some(i) => i + 1,
                    None if self.partial.len() > MAX_PARTIAL => self.partial.len(),
                    None => continue,
                };
                let lines: Vec<u8> = self.partial.drain(..cut).collect();
                return Some(self.render(&lines));
            }
            if self.follow && !self.closing && !self.finished().await {
                // Nothing new: wait a little, or until a build ends (an hour of silence ends
                // the stream regardless).
                self.idle += 1;
                if self.idle > 18_000 {
                    return None;
                }
                let _ = tokio::time::timeout(IDLE, self.ended.changed()).await;
                continue;
            }
            if self.follow && !self.closing {
                self.closing = true; // what was written before the final state was recorded
                continue;
            }
            self.done = true;
            let rest = std::mem::take(&mut self.partial);
            let mut out = self.render(&rest).to_vec();
            if self.sse && self.follow {
                out.extend_from_slice(b"event: end\ndata: end\n\n");
            }
            return Some(out.into());
        }
    }

    /// Whether the build is in a final state (or gone). The store is asked when a build has
    /// ended since the last time, and once a second regardless.
    async fn finished(&mut self) -> bool {
        let ended = *self.ended.borrow_and_update();
        if ended == self.seen_ended && !self.idle.is_multiple_of(5) {
            return false;
        }
        self.seen_ended = ended;
        let g = self.guid.clone();
        match self.state.db.call(move |c| store::get_build(c, &g)).await {
            Ok(Some(b)) => b.state.is_final(),
            Ok(None) => true,
            Err(_) => false,
        }
    }

    fn render(&self, lines: &[u8]) -> Bytes {
        if !self.sse {
            return Bytes::copy_from_slice(lines);
        }
        let text = String::from_utf8_lossy(lines);
        text.lines()
            .map(|l| format!("data: {l}\n\n"))
            .collect::<String>()
            .into()
    }
}
