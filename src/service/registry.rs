//! The embedded registry: the read-only part of the OCI distribution API over the images the
//! service built. Each repository is an OCI layout whose `blobs` is a link to one shared blob
//! store, so a stack layer used by a hundred apps is stored once. Images are stored when they
//! are built and never rebuilt on a pull. A manifest is served only if the repository's
//! index.json lists it with a manifest media type (a layer asked as a manifest is unknown);
//! blobs stream from their files, with `Range` support. With a shared blob store (replicas)
//! indexes come from the store and blobs this replica lacks too (`registry/shared.rs`).

use super::Shared;
use crate::image::media;
use crate::registry::layout::Layout;
use crate::store::Paths;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::path::PathBuf;

mod blobs;
mod names;
mod shared;

pub use names::{component, valid_digest, valid_name, valid_tag};
pub use shared::{localize, publish};

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Manifests the service stores are a few KiB; a larger index entry is not one of them.
const MAX_MANIFEST: u64 = 4 << 20;

/// Creates repository `name` (an OCI layout sharing the blob store) if it does not exist.
pub fn ensure_repository(paths: &Paths, name: &str) -> std::io::Result<PathBuf> {
    if !valid_name(name) {
        return Err(std::io::Error::other(format!(
            "invalid repository name {name:?}"
        )));
    }
    let dir = paths.repository(name);
    std::fs::create_dir_all(&dir)?;
    let blobs = dir.join("blobs");
    if std::fs::symlink_metadata(&blobs).is_err() {
        std::os::unix::fs::symlink(paths.registry_blobs(), &blobs)?;
    }
    Layout::create(&dir).map_err(std::io::Error::other)?;
    Ok(dir)
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    let body = json!({"errors": [{"code": code, "message": message, "detail": null}]});
    (status, [(API_VERSION, "registry/2.0")], axum::Json(body)).into_response()
}

fn name_unknown(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        format!("repository {name} is not known"),
    )
}

pub async fn base() -> Response {
    ([(API_VERSION, "registry/2.0")], axum::Json(json!({}))).into_response()
}

/// A manifest as the repository's index.json lists it.
struct Stored {
    digest: String,
    media_type: String,
    size: u64,
}

/// The manifest `reference` (tag or digest) names in `index`: only what was stored as a
/// manifest (an image manifest or index, by its recorded media type), never any other blob.
fn stored_manifest(index: &Value, reference: &str, by_digest: bool) -> Option<Stored> {
    let entries = index["manifests"].as_array()?;
    let entry = entries.iter().find(|m| {
        if by_digest {
            m["digest"] == reference
        } else {
            m["annotations"][REF_NAME] == reference
        }
    })?;
    let media_type = entry["mediaType"].as_str()?;
    if !(media_type == media::OCI_MANIFEST
        || media_type == media::DOCKER_MANIFEST
        || media::is_index(media_type))
    {
        return None;
    }
    Some(Stored {
        digest: entry["digest"]
            .as_str()
            .filter(|d| valid_digest(d))?
            .to_string(),
        media_type: media_type.to_string(),
        size: entry["size"].as_u64().filter(|s| *s <= MAX_MANIFEST)?,
    })
}

fn blob_path(paths: &Paths, digest: &str) -> PathBuf {
    paths
        .registry_blobs()
        .join("sha256")
        .join(digest.trim_start_matches("sha256:"))
}

async fn manifest(state: &Shared, name: &str, reference: &str) -> Response {
    let by_digest = reference.contains(':');
    if by_digest && !valid_digest(reference) {
        let msg = format!("{reference:?} is not a sha256 digest");
        return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", msg);
    }
    if !by_digest && !valid_tag(reference) {
        let msg = format!("{reference:?} is not a valid tag");
        return error(StatusCode::BAD_REQUEST, "TAG_INVALID", msg);
    }
    let Some(index) = shared::index(&state.blobs, name).await else {
        return name_unknown(name);
    };
    let unknown = || {
        let msg = format!("manifest {reference} is not in {name}");
        error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", msg)
    };
    let Some(m) = stored_manifest(&index, reference, by_digest) else {
        return unknown();
    };
    let Ok(key) = crate::blob::Key::registry_blob(&m.digest) else {
        return unknown();
    };
    let bytes = match shared::read_small(&state.blobs, &key, MAX_MANIFEST).await {
        Ok(Some(b)) => b,
        Ok(None) => return unknown(),
        Err(e) => {
            tracing::warn!("registry: {e}");
            let msg = "the blob store did not answer".to_string();
            return error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", msg);
        }
    };
    if bytes.len() as u64 != m.size {
        let msg = format!("manifest {} is damaged in the store", m.digest);
        return error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", msg);
    }
    (
        [
            (header::CONTENT_TYPE, m.media_type),
            (CONTENT_DIGEST, m.digest),
            (API_VERSION, "registry/2.0".to_string()),
        ],
        bytes,
    )
        .into_response()
}

async fn blob(
    state: &Shared,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Response {
    if !valid_digest(digest) {
        let msg = format!("{digest:?} is not a sha256 digest");
        return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", msg);
    }
    if shared::index(&state.blobs, name).await.is_none() {
        return name_unknown(name);
    }
    let mut served = blobs::serve(&blob_path(&state.paths, digest), digest, headers).await;
    if served.is_none() && state.blobs.is_shared() {
        served = shared::serve(&state.blobs, digest, headers, head).await;
    }
    match served {
        Some(mut r) => {
            let v = HeaderValue::from_static("registry/2.0");
            r.headers_mut().insert(API_VERSION, v);
            r
        }
        None => error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {digest} is not in {name}"),
        ),
    }
}

async fn tags(state: &Shared, name: &str) -> Response {
    let Some(index) = shared::index(&state.blobs, name).await else {
        return name_unknown(name);
    };
    let mut tags: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["annotations"][REF_NAME].as_str().map(str::to_string))
        .collect();
    tags.sort();
    (
        [(API_VERSION, "registry/2.0")],
        axum::Json(json!({"name": name, "tags": tags})),
    )
        .into_response()
}

/// `/v2/<name>/manifests/<ref>`, `/v2/<name>/blobs/<digest>`, `/v2/<name>/tags/list` (GET and
/// HEAD). Names, tags and digests are checked before the store is touched.
pub async fn dispatch(
    State(state): State<Shared>,
    Path(path): Path<String>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let path = path.trim_start_matches('/');
    let (name, route) = if let Some(name) = path.strip_suffix("/tags/list") {
        (name, Route::Tags)
    } else if let Some((name, reference)) = path.rsplit_once("/manifests/") {
        (name, Route::Manifest(reference))
    } else if let Some((name, digest)) = path.rsplit_once("/blobs/") {
        (name, Route::Blob(digest))
    } else {
        let msg = format!("no such registry endpoint /v2/{path}");
        return error(StatusCode::NOT_FOUND, "UNSUPPORTED", msg);
    };
    if !valid_name(name) {
        let msg = format!("{name:?} is not a valid repository name");
        return error(StatusCode::BAD_REQUEST, "NAME_INVALID", msg);
    }
    match route {
        Route::Tags => tags(&state, name).await,
        Route::Manifest(reference) => manifest(&state, name, reference).await,
        Route::Blob(digest) => {
            let head = method == axum::http::Method::HEAD;
            blob(&state, name, digest, &headers, head).await
        }
    }
}

enum Route<'a> {
    Tags,
    Manifest(&'a str),
    Blob(&'a str),
}
