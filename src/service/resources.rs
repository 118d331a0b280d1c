//! `POST /v3/resource_matches`: which of these files does the service already have? `cf push`
//! sends the SHA-1 and size of every non-empty file of the app, then uploads only the others
//! (the matched ones are named in the upload's `resources` field, see `upload/mod.rs`).
//!
//! Body: `{"resources":[{"checksum":{"value":SHA1},"size_in_bytes":N,"path":..,"mode":..},..]}`
//! (the v2 shape `{"sha1":..,"size":..,"fn":..,"mode":..}` is accepted too). Answer: 201 with
//! `{"resources":[..]}`, the input objects the content store has, same SHA-1 and same size,
//! in the order given (written from the parsed descriptors, in the shape each came in). The
//! body streams into a typed parser (`resource_list.rs`), never whole in memory, and entries
//! are looked up a batch at a time (one database transaction per 1000), so that only the
//! matched ones are kept.

use super::body::parse_streaming;
use super::content::Store;
use super::error::{ApiError, ApiResult};
use super::resource_list::{parse_request, Descriptor, ListError};
use super::Shared;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// Most entries in one request (the cf CLI sends 1000 at a time; Cloud Controller takes 5000).
pub const MAX_RESOURCES: usize = 100_000;

/// Bytes of request body allowed per entry: a v3 entry with a 500-byte path fits.
pub const BYTES_PER_ENTRY: u64 = 640;

/// Largest request body: proportional to the entry limit (about 61 MiB).
pub const MAX_BODY: u64 = MAX_RESOURCES as u64 * BYTES_PER_ENTRY;

/// CF's answer to a refused list: the exact detail, or the parser's words.
pub fn list_error(e: ListError, syntax_prefix: &str) -> ApiError {
    match e {
        ListError::Shape(detail) => ApiError::unprocessable(detail),
        ListError::Syntax(e) => ApiError::unprocessable(format!("{syntax_prefix}: {e}")),
        ListError::Sink(e) => ApiError::internal(e),
    }
}

#[derive(serde::Serialize)]
struct Answer {
    resources: Vec<Descriptor>,
}

pub async fn matches(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // Looked up a batch at a time as the body streams in: only the matched entries are kept.
    let store = Store::of(&state);
    let rt = tokio::runtime::Handle::current();
    let matched = parse_streaming(&headers, body, MAX_BODY, move |r| {
        let mut matched = Vec::new();
        let mut sink = |batch: Vec<Descriptor>| {
            let wanted = batch.iter().map(|d| (d.sha1_hex(), d.size)).collect();
            let found = rt
                .block_on(store.known(wanted))
                .map_err(|e| e.to_string())?;
            matched.extend(
                batch
                    .into_iter()
                    .zip(found)
                    .filter_map(|(d, hit)| hit.then_some(d)),
            );
            Ok(())
        };
        parse_request(r, MAX_RESOURCES, &mut sink).map(|()| matched)
    })
    .await?
    .map_err(|e| list_error(e, "invalid request body"))?;
    let body = serde_json::to_vec(&Answer { resources: matched }).map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
