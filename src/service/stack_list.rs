//! `GET /v3/stacks[/:guid]`: the configured stacks by name (the default one marked), with the
//! image each stands for as `build_rootfs_image` and `run_rootfs_image` (staging and running
//! use the same root filesystem here).

use super::apps::base;
use super::error::{ApiError, ApiResult};
use super::paging::{self, Accepts, ListQuery};
use super::Shared;
use crate::app::name_uuid;
use crate::cfapi::stack::SelfLink;
use crate::cfapi::{self as cf, Link, Metadata, Paginated};
use axum::extract::{Path, Query, State};
use axum::Json;

fn guid(name: &str) -> String {
    name_uuid(&format!("dropship-stack:{name}"))
}

fn stack_json(name: &str, image: &str, default: bool, base: &str) -> cf::Stack {
    let guid = guid(name);
    cf::Stack {
        name: name.to_string(),
        description: Some(format!("the root filesystem of {image}")),
        build_rootfs_image: Some(image.to_string()),
        run_rootfs_image: Some(image.to_string()),
        default,
        created_at: "1970-01-01T00:00:01Z".into(),
        updated_at: "1970-01-01T00:00:01Z".into(),
        metadata: Metadata::default(),
        links: SelfLink {
            this: Link::to(base, &format!("/v3/stacks/{guid}")),
        },
        guid,
    }
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
) -> ApiResult<Json<Paginated<cf::Stack>>> {
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
    Ok(Json(paging::list(pagination, resources)))
}

pub async fn show(
    State(state): State<Shared>,
    Path(g): Path<String>,
) -> ApiResult<Json<cf::Stack>> {
    let (n, i, d) = all(&state)
        .into_iter()
        .find(|(n, _, _)| guid(n) == g)
        .ok_or_else(|| ApiError::not_found("Stack"))?;
    Ok(Json(stack_json(&n, &i, d, &base(&state))))
}
