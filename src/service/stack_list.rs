//! `GET /v3/stacks[/:guid]`: the configured stacks by name (the default one marked), with the
//! image each stands for as `build_rootfs_image` and `run_rootfs_image` (staging and running
//! use the same root filesystem here).

use super::apps::base;
use super::error::{ApiError, ApiResult};
use super::paging::{self, Accepts, ListQuery};
use super::Shared;
use crate::app::name_uuid;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

fn guid(name: &str) -> String {
    name_uuid(&format!("dropship-stack:{name}"))
}

fn stack_json(name: &str, image: &str, default: bool, base: &str) -> Value {
    let guid = guid(name);
    json!({
        "guid": guid,
        "name": name,
        "description": format!("the root filesystem of {image}"),
        "build_rootfs_image": image,
        "run_rootfs_image": image,
        "default": default,
        "created_at": "1970-01-01T00:00:01Z",
        "updated_at": "1970-01-01T00:00:01Z",
        "metadata": {"labels": {}, "annotations": {}},
        "links": {"self": {"href": format!("{base}/v3/stacks/{guid}")}},
    })
}

/// Every stack: name, image, whether it is the default.
fn all(state: &Shared) -> Vec<(String, String, bool)> {
    let default = state.config.default_stack.clone().unwrap_or_default();
    let stacks = state.config.stacks.iter();
    stacks
        .map(|(n, image)| (n.clone(), image.clone(), *n == default))
        .collect()
}

const LIST: Accepts = Accepts {
    filters: &["names", "default"],
    order_by: &["name", "created_at", "updated_at"],
};

pub async fn list(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &LIST)?;
    let rows: Vec<_> = all(&state)
        .into_iter()
        .filter(|(n, _, d)| q.allows("names", n) && q.allows("default", &d.to_string()))
        .collect();
    let b = base(&state);
    let (page, pagination) = q.page(rows, |(n, _, _), _| n.clone(), &b, "/v3/stacks");
    let resources = page
        .iter()
        .map(|(n, i, d)| stack_json(n, i, *d, &b))
        .collect();
    Ok(Json(paging::body(pagination, resources)))
}

pub async fn show(State(state): State<Shared>, Path(g): Path<String>) -> ApiResult<Json<Value>> {
    let (n, i, d) = all(&state)
        .into_iter()
        .find(|(n, _, _)| guid(n) == g)
        .ok_or_else(|| ApiError::not_found("Stack"))?;
    Ok(Json(stack_json(&n, &i, d, &base(&state))))
}
