//! A log-cache-compatible reader of staging logs, where the cf CLI looks for them:
//! `GET /api/v1/info` and `GET /api/v1/read/:source_id` (`source_id` an app GUID), answering
//! log envelopes (`source_type` STG, base64 payloads) of the app's builds' staging lines.
//!
//! The lines and their times come from the build logs' chunks in the database (any replica
//! answers), or, for logs from before the chunks, from the stamps `logs.rs` writes beside
//! every log file (one record per line); logs older than the stamps give nothing. Query: `start_time` (ns, inclusive, default
//! 0), `end_time` (ns, exclusive, default now), `envelope_types` (only `LOG` is kept: any other
//! list gives an empty batch), `limit` (1–1000, default 100, as log-cache), `descending`.
//! Reading streams the stamps and keeps the best `limit` lines only (`log_lines.rs`); a
//! payload is at most [`MAX_PAYLOAD`] bytes.

use super::error::{ApiError, ApiResult};
use super::log_lines::{self, Best, Line, Window};
use super::Shared;
use crate::store;
use axum::extract::{Path, Query, State};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};
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

    pub fn from_letter(c: &str) -> Option<Stream> {
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
    w: Window,
    logs: bool,
}

fn parse(pairs: &[(String, String)]) -> ApiResult<ReadQuery> {
    let mut q = ReadQuery {
        w: Window {
            start: 0,
            end: u64::MAX,
            limit: DEFAULT_LIMIT,
            descending: false,
        },
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
            "start_time" => q.w.start = ns(k, v)?,
            "end_time" => q.w.end = ns(k, v)?,
            "limit" => {
                q.w.limit = match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(ApiError::bad_query(format!(
                            "limit must be between 1 and {MAX_LIMIT}"
                        )))
                    }
                }
            }
            "descending" => q.w.descending = v == "true",
            "envelope_types" => types.extend(v.split(',').map(str::to_string)),
            // log-cache ignores what it does not know (name_filter and the like).
            _ => {}
        }
    }
    q.logs = types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case("LOG"));
    Ok(q)
}

/// The envelopes of the lines of app `source`'s builds in window `w`.
async fn read(state: &Shared, source: &str, w: Window) -> ApiResult<Vec<Value>> {
    let app = source.to_string();
    let builds: Vec<String> = state
        .db
        .call(move |c| store::list_builds(c))
        .await?
        .into_iter()
        .filter(|b| b.app_guid == app)
        .map(|b| b.guid)
        .collect();
    // The chunks' stamps (in the database), then the files of builds that have no chunk.
    let ids = builds.clone();
    let (best, from_file) = state
        .db
        .call(move |c| {
            let mut best = Best::new(w);
            let mut from_file = Vec::with_capacity(ids.len());
            for (i, g) in ids.iter().enumerate() {
                let n = store::visit_log_stamps(c, g, |seq, stamps| {
                    log_lines::scan_chunk(stamps, i, seq, &mut best)
                })?;
                from_file.push(n == 0);
            }
            Ok((best, from_file))
        })
        .await?;
    let logs: Vec<PathBuf> = builds.iter().map(|g| state.paths.build_log(g)).collect();
    let ff = from_file.clone();
    let (lines, file_payloads) = tokio::task::spawn_blocking(move || files(best, &logs, &ff))
        .await
        .map_err(ApiError::internal)?;
    let wanted = lines.clone();
    let mut payloads = state
        .db
        .call(move |c| log_lines::chunk_payloads(c, &builds, &from_file, &wanted))
        .await?;
    for (i, p) in file_payloads {
        payloads[i] = p;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(lines
        .iter()
        .zip(payloads)
        .map(|(line, payload)| envelope(line, source, &b64.encode(payload)))
        .collect())
}

/// The lines in the log files of the builds `from_file`, with the rest in `best`: the best
/// lines, and the payloads of those in files (by index in the lines).
fn files(
    mut best: Best,
    logs: &[PathBuf],
    from_file: &[bool],
) -> (Vec<Line>, Vec<(usize, Vec<u8>)>) {
    for (i, log) in logs.iter().enumerate().filter(|(i, _)| from_file[*i]) {
        let len = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        log_lines::scan_file(&stamps_path(log), len, i, &mut best);
    }
    let lines = best.sorted();
    let payloads = (lines.iter().enumerate())
        .filter(|(_, l)| from_file[l.build])
        .map(|(i, l)| (i, log_lines::file_payload(&logs[l.build], l)))
        .collect();
    (lines, payloads)
}

fn envelope(line: &Line, source: &str, payload: &str) -> Value {
    json!({
        "timestamp": line.ns.to_string(),
        "source_id": source,
        "instance_id": "0",
        "tags": {"source_type": "STG"},
        "log": {"payload": payload, "type": line.stream.name()},
    })
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
        read(&state, &source, q.w).await?
    } else {
        Vec::new()
    };
    Ok(Json(json!({"envelopes": {"batch": batch}})))
}
