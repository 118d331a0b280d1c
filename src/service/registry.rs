//! The embedded registry: the read-only part of the OCI distribution API over the images the
//! service built. Each repository is an OCI layout whose `blobs` is a link to one shared blob
//! store, so a stack layer used by a hundred apps is stored once. Images are stored when they
//! are built and never rebuilt on a pull.

use super::Shared;
use crate::image::media;
use crate::registry::layout::Layout;
use crate::store::Paths;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::path::PathBuf;

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

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

/// Repository names as the distribution spec has them (no `..`, no empty components).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .next()
                    .is_some_and(|f| f.is_ascii_lowercase() || f.is_ascii_digit())
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        })
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    let body = json!({"errors": [{"code": code, "message": message, "detail": null}]});
    (status, [(API_VERSION, "registry/2.0")], axum::Json(body)).into_response()
}

pub async fn base() -> Response {
    ([(API_VERSION, "registry/2.0")], axum::Json(json!({}))).into_response()
}

fn index(dir: &std::path::Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).ok()?).ok()
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

async fn manifest(paths: &Paths, name: &str, reference: &str) -> Response {
    let dir = paths.repository(name);
    let Some(index) = index(&dir) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {name} is not known"),
        );
    };
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let found = if valid_digest(reference) {
        let listed = entries.iter().find(|m| m["digest"] == reference);
        Some((
            reference.to_string(),
            listed
                .and_then(|m| m["mediaType"].as_str())
                .map(str::to_string),
        ))
    } else {
        entries
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
            .and_then(|m| {
                Some((
                    m["digest"].as_str()?.to_string(),
                    m["mediaType"].as_str().map(str::to_string),
                ))
            })
    };
    let Some((digest, media_type)) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest {reference} is not in {name}"),
        );
    };
    let path = paths
        .registry_blobs()
        .join("sha256")
        .join(digest.trim_start_matches("sha256:"));
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest {reference} is not in {name}"),
        );
    };
    let media_type =
        media_type.unwrap_or_else(|| crate::registry::client::manifest_media_type(&bytes));
    if !(media_type.contains("manifest") || media::is_index(&media_type)) {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("{digest} is not a manifest"),
        );
    }
    (
        [
            (header::CONTENT_TYPE, media_type),
            (CONTENT_DIGEST, digest),
            (API_VERSION, "registry/2.0".to_string()),
        ],
        bytes,
    )
        .into_response()
}

async fn blob(paths: &Paths, name: &str, digest: &str) -> Response {
    if index(&paths.repository(name)).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {name} is not known"),
        );
    }
    if !valid_digest(digest) {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("{digest:?} is not a sha256 digest"),
        );
    }
    let path = paths
        .registry_blobs()
        .join("sha256")
        .join(digest.trim_start_matches("sha256:"));
    let Ok(file) = tokio::fs::File::open(&path).await else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {digest} is not in {name}"),
        );
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()),
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        256 * 1024,
    ));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (CONTENT_DIGEST, digest.to_string()),
            (API_VERSION, "registry/2.0".to_string()),
        ],
        body,
    )
        .into_response()
}

fn tags(paths: &Paths, name: &str) -> Response {
    let Some(index) = index(&paths.repository(name)) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {name} is not known"),
        );
    };
    let mut tags: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    tags.sort();
    (
        [(API_VERSION, "registry/2.0")],
        axum::Json(json!({"name": name, "tags": tags})),
    )
        .into_response()
}

/// `/v2/<name>/manifests/<ref>`, `/v2/<name>/blobs/<digest>`, `/v2/<name>/tags/list`.
pub async fn dispatch(State(state): State<Shared>, Path(path): Path<String>) -> Response {
    let paths = &state.paths;
    let path = path.trim_start_matches('/');
    if let Some(name) = path.strip_suffix("/tags/list") {
        if valid_name(name) {
            return tags(paths, name);
        }
    } else if let Some((name, reference)) = path.rsplit_once("/manifests/") {
        if valid_name(name) {
            return manifest(paths, name, reference).await;
        }
    } else if let Some((name, digest)) = path.rsplit_once("/blobs/") {
        if valid_name(name) {
            return blob(paths, name, digest).await;
        }
    }
    error(
        StatusCode::NOT_FOUND,
        "NAME_INVALID",
        format!("no such registry path /v2/{path}"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn repository_names() {
        for ok in ["apps/shop", "stacks/busybox", "a", "apps/my-app_2.0"] {
            assert!(super::valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "apps/../etc",
            "/apps",
            "apps//x",
            "Apps/x",
            "apps/.hidden",
            "apps/x/",
        ] {
            assert!(!super::valid_name(bad), "{bad}");
        }
    }
}
