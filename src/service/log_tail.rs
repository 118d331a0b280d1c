//! `GET /v3/builds/:guid/logs`, on any replica: the log's chunks in the database, read a few
//! at a time (never whole). With `?follow=true` the answer goes on until the build is in a
//! final state and every chunk has been sent (plain chunked text, or Server-Sent Events when
//! the client accepts `text/event-stream`). A follower polls the database every
//! [`IDLE`] (and is woken at once on the replica that stages the build). The end is never
//! read from the log's content: a buildpack may print anything.
//!
//! A finished build with no chunk (staged before logs were in the database) is read from its
//! file on this replica, if there is one.

use super::error::{ApiError, ApiResult};
use super::Shared;
use crate::store::{self, LogChunk, StoreError};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    pub follow: bool,
}

/// Wait between two looks at a followed log that has nothing new.
pub const IDLE: Duration = Duration::from_millis(250);
/// An hour of silence ends a follower's answer regardless.
const MAX_IDLE: u32 = 14_400;
/// Chunks read at once (each about 64 KiB at most).
const BATCH: u32 = 8;
/// Longest piece of a file held back waiting for the end of its line (lines are at most
/// 16 KiB).
const MAX_PARTIAL: usize = 64 * 1024;

pub async fn show(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let g = guid.clone();
    let (build, chunked) = state
        .db
        .call(move |c| Ok((store::get_build(c, &g)?, store::has_log_chunks(c, &g)?)))
        .await?;
    let build = build.ok_or_else(|| ApiError::not_found("Build"))?;
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let source = if chunked || !build.state.is_final() {
        Source::Chunks { next: 0 }
    } else {
        match tokio::fs::File::open(state.paths.build_log(&build.guid)).await {
            Ok(f) => Source::File(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Source::Empty,
            Err(e) => return Err(ApiError::internal(e)),
        }
    };
    let tail = Tail {
        source,
        state: state.clone(),
        guid: build.guid,
        sse,
        follow: q.follow,
        partial: Vec::new(),
        idle: 0,
        done: false,
        woken: state.logs_flushed.subscribe(),
        ended: state.builds_ended.subscribe(),
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

/// Where the log is read from.
enum Source {
    /// The database's chunks, from number `next` on.
    Chunks { next: u64 },
    /// A finished build's file (from before the chunks): read to its end.
    File(tokio::fs::File),
    /// A finished build with no log.
    Empty,
}

/// What one look at the database found.
struct Look {
    chunks: Vec<LogChunk>,
    /// The build was final (or gone) before the chunks were read: nothing comes after them.
    last: bool,
}

/// Reads a build's log a piece at a time; following, waits for more until the build is final.
struct Tail {
    source: Source,
    state: Shared,
    guid: String,
    sse: bool,
    follow: bool,
    /// The start of a file's line whose end is not read yet.
    partial: Vec<u8>,
    idle: u32,
    done: bool,
    /// `State::logs_flushed` and `State::builds_ended`: wake a follower on this replica early.
    woken: tokio::sync::watch::Receiver<u64>,
    ended: tokio::sync::watch::Receiver<u64>,
}

impl Tail {
    /// The next piece of the answer, None after its end.
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let piece = match self.source {
            Source::Chunks { .. } => self.next_chunks().await,
            Source::File(_) => self.next_from_file().await,
            Source::Empty => None,
        };
        if piece.is_some() {
            return piece;
        }
        self.done = true;
        let rest = std::mem::take(&mut self.partial);
        let mut out = self.render(&rest).to_vec();
        if self.sse && self.follow {
            out.extend_from_slice(b"event: end\ndata: end\n\n");
        }
        Some(out.into())
    }

    /// The next chunks; None at the end (for a follower: the build is final and all is read).
    async fn next_chunks(&mut self) -> Option<Bytes> {
        loop {
            let Source::Chunks { next } = self.source else {
                return None;
            };
            match self.look(next).await {
                Ok(look) if !look.chunks.is_empty() => {
                    self.idle = 0;
                    let last = look.chunks.last().map_or(next, |c| c.seq + 1);
                    self.source = Source::Chunks { next: last };
                    let text: String = look.chunks.into_iter().map(|c| c.body).collect();
                    if !self.sse {
                        return Some(Bytes::from(text));
                    }
                    return Some(self.render(text.as_bytes()));
                }
                Ok(look) if look.last || !self.follow => return None,
                Ok(_) => {}
                // The database away for a while (a restart): the follower waits for it.
                Err(e) if self.follow => tracing::debug!("following log {}: {e}", self.guid),
                Err(_) => return None,
            }
            self.idle += 1;
            if self.idle > MAX_IDLE {
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep(IDLE) => {}
                _ = self.woken.changed() => {}
                _ = self.ended.changed() => {}
            }
        }
    }

    /// The chunks from `next` on; when there are none, whether the build was final before
    /// they were read (its last chunk is written before its final state).
    async fn look(&self, next: u64) -> Result<Look, StoreError> {
        let (g, follow) = (self.guid.clone(), self.follow);
        self.state
            .db
            .call(move |c| {
                let chunks = store::log_chunks(c, &g, next, BATCH)?;
                if !chunks.is_empty() || !follow {
                    return Ok(Look {
                        chunks,
                        last: false,
                    });
                }
                let last = store::get_build(c, &g)?.is_none_or(|b| b.state.is_final());
                let chunks = store::log_chunks(c, &g, next, BATCH)?;
                Ok(Look { chunks, last })
            })
            .await
    }

    /// The next whole lines of the file; None at its end.
    async fn next_from_file(&mut self) -> Option<Bytes> {
        let Source::File(file) = &mut self.source else {
            return None;
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            self.partial.extend_from_slice(&buf[..n]);
            let cut = match self.partial.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if self.partial.len() > MAX_PARTIAL => self.partial.len(),
                None => continue,
            };
            let lines: Vec<u8> = self.partial.drain(..cut).collect();
            return Some(self.render(&lines));
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
