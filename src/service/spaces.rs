//! The one organization and the one space every app lives in (`dropship` both, as the
//! Kubernetes objects' annotations name them): `GET /v3/organizations[/:guid]` and
//! `GET /v3/spaces[/:guid]`, for clients that look for a space to target before they push.
//! Creating more is not offered.

use super::apps::base;
use super::error::{ApiError, ApiResult};
use super::json::{ORG_GUID, SPACE_GUID};
use super::paging::{self, Accepts, ListQuery};
use super::Shared;
use crate::app::DEFAULT_SPACE_ORG;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

/// When the org and space came to be: as old as dropship's data, for the clients' ordering.
const CREATED: &str = "1970-01-01T00:00:01Z";

pub fn org(base: &str) -> Value {
    json!({
        "guid": ORG_GUID,
        "name": DEFAULT_SPACE_ORG,
        "suspended": false,
        "created_at": CREATED,
        "updated_at": CREATED,
        "relationships": {"quota": {"data": null}},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": format!("{base}/v3/organizations/{ORG_GUID}")},
            "spaces": {"href": format!("{base}/v3/spaces?organization_guids={ORG_GUID}")},
        },
    })
}

pub fn space(base: &str) -> Value {
    json!({
        "guid": SPACE_GUID,
        "name": DEFAULT_SPACE_ORG,
        "created_at": CREATED,
        "updated_at": CREATED,
        "relationships": {
            "organization": {"data": {"guid": ORG_GUID}},
            "quota": {"data": null},
        },
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": format!("{base}/v3/spaces/{SPACE_GUID}")},
            "organization": {"href": format!("{base}/v3/organizations/{ORG_GUID}")},
            "apps": {"href": format!("{base}/v3/apps?space_guids={SPACE_GUID}")},
        },
    })
}

/// CF's `included` for `include=space` / `include=space.organization` (a list of apps), or
/// None when nothing is asked; another value is CF's 400.
pub fn included(include: Option<&Vec<String>>, base: &str) -> ApiResult<Option<Value>> {
    let Some(asked) = include else {
        return Ok(None);
    };
    let mut out = serde_json::Map::new();
    for what in asked {
        match what.as_str() {
            "space" => {}
            "space.organization" => drop(out.insert("organizations".into(), json!([org(base)]))),
            other => {
                return Err(ApiError::bad_query(format!(
                    "The query parameter is invalid: Invalid included resource: '{other}'. \
                     Valid included resources are: 'space', 'space.organization'"
                )))
            }
        }
        out.insert("spaces".into(), json!([space(base)]));
    }
    Ok(Some(Value::Object(out)))
}

/// A list of the one resource, when the query's filters let it through.
fn one(
    state: &Shared,
    pairs: &[(String, String)],
    accepts: &Accepts,
    path: &str,
    pass: impl Fn(&ListQuery) -> bool,
    resource: fn(&str) -> Value,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(pairs, accepts)?;
    let b = base(state);
    let rows = if pass(&q) { vec![resource(&b)] } else { vec![] };
    let (page, pagination) = q.page(rows, |_, _| String::new(), &b, path);
    Ok(Json(paging::body(pagination, page)))
}

const ORGS: Accepts = Accepts {
    filters: &["names", "guids"],
    order_by: &["created_at", "updated_at", "name"],
};

pub async fn orgs(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let pass = |q: &ListQuery| q.allows("names", DEFAULT_SPACE_ORG) && q.allows("guids", ORG_GUID);
    one(&state, &pairs, &ORGS, "/v3/organizations", pass, org)
}

const SPACES: Accepts = Accepts {
    filters: &["names", "guids", "organization_guids"],
    order_by: &["created_at", "updated_at", "name"],
};

pub async fn spaces(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let pass = |q: &ListQuery| {
        q.allows("names", DEFAULT_SPACE_ORG)
            && q.allows("guids", SPACE_GUID)
            && q.allows("organization_guids", ORG_GUID)
    };
    one(&state, &pairs, &SPACES, "/v3/spaces", pass, space)
}

pub async fn show_org(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    if guid != ORG_GUID {
        return Err(ApiError::not_found("Organization"));
    }
    Ok(Json(org(&base(&state))))
}

pub async fn show_space(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    if guid != SPACE_GUID {
        return Err(ApiError::not_found("Space"));
    }
    Ok(Json(space(&base(&state))))
}
