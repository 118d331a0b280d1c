//! `GET /v3/buildpacks[/:guid]`: the admin buildpacks of the buildpacks directory in detection
//! order (`position` from 1: those its `order` file names, then the others by name), as Cloud
//! Foundry lists them. Read-only: buildpacks are files the operator installs, not uploads.

use super::apps::base;
use super::error::{ApiError, ApiResult};
use super::paging::{self, Accepts, ListQuery};
use super::Shared;
use crate::app::name_uuid;
use crate::cfapi::stack::SelfLink;
use crate::cfapi::{self as cf, Link, Metadata, Paginated};
use crate::image::rfc3339;
use crate::staging::buildpacks::{detection_order, Buildpack};
use axum::extract::{Path, Query, State};
use axum::Json;

/// A buildpack with what its resource shows.
struct Listed {
    position: usize,
    name: String,
    guid: String,
    version: Option<String>,
    /// The directory's modification time, as RFC 3339.
    updated_at: String,
}

fn listed(position: usize, bp: &Buildpack) -> Listed {
    let mtime = std::fs::metadata(&bp.dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let version = std::fs::read_to_string(bp.dir.join("VERSION"))
        .ok()
        .map(|v| v.trim().chars().take(64).collect());
    Listed {
        position,
        name: bp.name.clone(),
        guid: name_uuid(&format!("dropship-buildpack:{}", bp.name)),
        version,
        updated_at: rfc3339(mtime),
    }
}

/// The directory's buildpacks, read off the runtime.
async fn all(state: &Shared) -> ApiResult<Vec<Listed>> {
    let dir = state.config.buildpacks_dir.clone();
    let order = tokio::task::spawn_blocking(move || {
        detection_order(&dir).map(|o| {
            let bps = o.buildpacks.iter().enumerate();
            bps.map(|(i, bp)| listed(i + 1, bp)).collect::<Vec<_>>()
        })
    });
    order
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

fn to_json(b: &Listed, base: &str) -> cf::Buildpack {
    cf::Buildpack {
        guid: b.guid.clone(),
        name: b.name.clone(),
        state: "READY".into(),
        filename: None,
        stack: None,
        position: b.position,
        lifecycle: Some("buildpack".into()),
        enabled: true,
        locked: true,
        version: b.version.clone(),
        created_at: b.updated_at.clone(),
        updated_at: b.updated_at.clone(),
        metadata: Metadata::default(),
        links: SelfLink {
            this: Link::to(base, &format!("/v3/buildpacks/{}", b.guid)),
        },
    }
}

const LIST: Accepts = Accepts {
    filters: &["names", "stacks", "lifecycle"],
    order_by: &["position", "created_at", "updated_at"],
};

pub async fn list(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Paginated<cf::Buildpack>>> {
    let q = ListQuery::parse(&pairs, &LIST)?;
    let rows: Vec<Listed> = all(&state)
        .await?
        .into_iter()
        .filter(|b| q.allows("names", &b.name) && q.allows("lifecycle", "buildpack"))
        .collect();
    let b = base(&state);
    let key = |l: &Listed, f: &str| match f {
        "position" => format!("{:09}", l.position),
        _ => l.updated_at.clone(),
    };
    let (page, pagination) = q.page(rows, key, &b, "/v3/buildpacks");
    let resources = page.iter().map(|l| to_json(l, &b)).collect();
    Ok(Json(paging::list(pagination, resources)))
}

pub async fn show(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::Buildpack>> {
    let found = all(&state).await?.into_iter().find(|b| b.guid == guid);
    let b = found.ok_or_else(|| ApiError::not_found("Buildpack"))?;
    Ok(Json(to_json(&b, &base(&state))))
}
