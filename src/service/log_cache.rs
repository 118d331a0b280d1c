//! A log-cache-compatible reader of staging logs, where the cf CLI looks for them:
//! `GET /api/v1/info` and `GET /api/v1/read/:source_id` (`source_id` an app GUID), answering
//! log envelopes (`source_type` STG, base64 payloads) of the app's builds' staging lines.
//!
//! The lines' times come from the stamps `logs.rs` writes beside every log (one record per
//! line); logs older than the stamps give nothing. Query: `start_time` (ns, inclusive, default
//! 0), `end_time` (ns, exclusive, default now), `envelope_types` (only `LOG` is kept: any other
//! list gives an empty batch), `limit` (1–1000, default 100, as log-cache), `descending`.
//! Reading streams the stamps and keeps the best `limit` lines only; a payload is at most
//! [`MAX_PAYLOAD`] bytes.

use super::error::{ApiError, ApiResult};
use super::Shared;
use crate::store;
use axum::extract::{Path, Query, State};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BinaryHeap;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::PathBuf;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Longest payload sent (log lines are at most 16 KiB; a longer record is cut).
pub const MAX_PAYLOAD: u64 = 64 * 1024;
/// When this service started answering, for `vm_uptime`.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Which stream a line counts as in the log cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    pub fn letter(self) -> char {
        match self {
            Stream::Out => 'O',
            Stream::Err => 'E',
        }
    }

    fn from_letter(c: &str) -> Option<Stream> {
        match c {
            "O" => Some(Stream::Out),
            "E" => Some(Stream::Err),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stream::Out => "OUT",
            Stream::Err => "ERR",
        }
    }
}

/// The stamps file beside the log at `log`.
pub fn stamps_path(log: &std::path::Path) -> PathBuf {
    log.with_extension("stamps")
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `GET /api/v1/info`, as log-cache answers it.
pub async fn info() -> Json<Value> {
    let up = STARTED.get_or_init(std::time::Instant::now).elapsed();
    Json(json!({"version": "2.11.4", "vm_uptime": up.as_secs().to_string()}))
}

/// A read request, checked.
#[derive(Debug, Clone)]
struct ReadQuery {
    start: u64,
    end: u64,
    limit: usize,
    descending: bool,
    logs: bool,
}

fn parse(pairs: &[(String, String)]) -> ApiResult<ReadQuery> {
    let mut q = ReadQuery {
        start: 0,
        end: u64::MAX,
        limit: DEFAULT_LIMIT,
        descending: false,
        logs: true,
    };
    let mut types = Vec::new();
    let ns = |k: &str, v: &str| {
        v.parse::<i64>()
            .map(|n| n.max(0) as u64)
            .map_err(|_| ApiError::bad_query(format!("{k} must be an integer (nanoseconds)")))
    };
    for (k, v) in pairs {
        match k.as_str() {
            "start_time" => q.start = ns(k, v)?,
            "end_time" => q.end = ns(k, v)?,
            "limit" => {
                q.limit = match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(ApiError::bad_query(format!(
                            "limit must be between 1 and {MAX_LIMIT}"
                        )))
                    }
                }
            }
            "descending" => q.descending = v == "true",
            "envelope_types" => types.extend(v.split(',').map(str::to_string)),
            // log-cache ignores what it does not know (name_filter and the like).
            _ => {}
        }
    }
    q.logs = types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case("LOG"));
    Ok(q)
}

/// One line found in a stamps file: ordered by time (then where it is, for ties).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    ns: u64,
    build: usize,
    offset: u64,
    len: u64,
    stream: Stream,
}

/// Keeps the first (or last, descending) `limit` lines seen.
struct Best {
    heap: BinaryHeap<std::cmp::Reverse<Line>>,
    heap_max: BinaryHeap<Line>,
    q: ReadQuery,
}

impl Best {
    fn offer(&mut self, line: Line) {
        if line.ns < self.q.start || line.ns >= self.q.end {
            return;
        }
        if self.q.descending {
            self.heap.push(std::cmp::Reverse(line));
            if self.heap.len() > self.q.limit {
                self.heap.pop(); // the oldest
            }
        } else {
            self.heap_max.push(line);
            if self.heap_max.len() > self.q.limit {
                self.heap_max.pop(); // the newest
            }
        }
    }

    fn sorted(self) -> Vec<Line> {
        let mut out: Vec<Line> = if self.q.descending {
            self.heap.into_iter().map(|r| r.0).collect()
        } else {
            self.heap_max.into_vec()
        };
        out.sort();
        if self.q.descending {
            out.reverse();
        }
        out
    }
}

/// The stamps of one build's log, offered to `best`.
fn scan(stamps: &std::path::Path, log_len: u64, build: usize, best: &mut Best) {
    let Ok(file) = std::fs::File::open(stamps) else {
        return;
    };
    let mut prev: Option<(u64, u64, Stream)> = None;
    let emit = |p: (u64, u64, Stream), end: u64, best: &mut Best| {
        best.offer(Line {
            ns: p.1,
            build,
            offset: p.0,
            len: end.saturating_sub(p.0),
            stream: p.2,
        })
    };
    // Records are short: a longer one is not ours, reading stops there.
    for record in std::io::BufReader::new(file).split(b'\n') {
        let Ok(record) = record else { break };
        let text = String::from_utf8_lossy(&record);
        let mut f = text.split(' ');
        let (Some(Ok(off)), Some(Ok(ns)), Some(Some(stream))) = (
            f.next().map(str::parse::<u64>),
            f.next().map(str::parse::<u64>),
            f.next().map(Stream::from_letter),
        ) else {
            break;
        };
        if let Some(p) = prev.replace((off, ns, stream)) {
            emit(p, off, best);
        }
    }
    if let Some(p) = prev {
        emit(p, log_len, best);
    }
}

/// The payload of `line` in `log` (without its newline), at most [`MAX_PAYLOAD`] bytes.
fn payload(log: &std::path::Path, line: &Line) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        if f.seek(SeekFrom::Start(line.offset)).is_ok() {
            let _ = f.take(line.len.min(MAX_PAYLOAD)).read_to_end(&mut buf);
        }
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    buf
}

/// The envelopes of the logs `logs` (in build order) for `source`.
fn read(logs: &[PathBuf], source: &str, q: ReadQuery) -> Vec<Value> {
    let mut best = Best {
        heap: BinaryHeap::new(),
        heap_max: BinaryHeap::new(),
        q,
    };
    for (i, log) in logs.iter().enumerate() {
        let len = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        scan(&stamps_path(log), len, i, &mut best);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    best.sorted()
        .into_iter()
        .map(|line| {
            json!({
                "timestamp": line.ns.to_string(),
                "source_id": source,
                "instance_id": "0",
                "tags": {"source_type": "STG"},
                "log": {
                    "payload": b64.encode(payload(&logs[line.build], &line)),
                    "type": line.stream.name(),
                },
            })
        })
        .collect()
}

/// `GET /api/v1/read/:source_id`: see the module docs. An unknown source has no envelopes
/// (as in log-cache, which does not know apps).
pub async fn read_source(
    State(state): State<Shared>,
    Path(source): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = parse(&pairs)?;
    let batch = if q.logs {
        let app = source.clone();
        let builds = state.db.call(|c| store::list_builds(c)).await?;
        let logs: Vec<PathBuf> = builds
            .iter()
            .filter(|b| b.app_guid == app)
            .map(|b| state.paths.build_log(&b.guid))
            .collect();
        let s = source.clone();
        tokio::task::spawn_blocking(move || read(&logs, &s, q))
            .await
            .map_err(ApiError::internal)?
    } else {
        Vec::new()
    };
    Ok(Json(json!({"envelopes": {"batch": batch}})))
}
