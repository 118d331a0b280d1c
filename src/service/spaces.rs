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
use crate::cfapi::space::{OrganizationLinks, QuotaRelationships, SpaceLinks, SpaceRelationships};
use crate::cfapi::{self as cf, Link, Metadata, OptionalRelationship, Paginated, Relationship};
use axum::extract::{Path, Query, State};
use axum::Json;

/// When the org and space came to be: as old as dropship's data, for the clients' ordering.
const CREATED: &str = "1970-01-01T00:00:01Z";

pub fn org(base: &str) -> cf::Organization {
    cf::Organization {
        guid: ORG_GUID.into(),
        name: DEFAULT_SPACE_ORG.into(),
        suspended: false,
        created_at: CREATED.into(),
        updated_at: CREATED.into(),
        relationships: QuotaRelationships::default(),
        metadata: Metadata::default(),
        links: OrganizationLinks {
            this: Link::to(base, &format!("/v3/organizations/{ORG_GUID}")),
            spaces: Some(Link::to(
                base,
                &format!("/v3/spaces?organization_guids={ORG_GUID}"),
            )),
        },
    }
}

pub fn space(base: &str) -> cf::Space {
    cf::Space {
        guid: SPACE_GUID.into(),
        name: DEFAULT_SPACE_ORG.into(),
        created_at: CREATED.into(),
        updated_at: CREATED.into(),
        relationships: SpaceRelationships {
            organization: Relationship::to(ORG_GUID),
            quota: OptionalRelationship::default(),
        },
        metadata: Metadata::default(),
        links: SpaceLinks {
            this: Link::to(base, &format!("/v3/spaces/{SPACE_GUID}")),
            organization: Link::to(base, &format!("/v3/organizations/{ORG_GUID}")),
            apps: Some(Link::to(
                base,
                &format!("/v3/apps?space_guids={SPACE_GUID}"),
            )),
            apply_manifest: None,
        },
    }
}

/// CF's `included` for `include=space` / `include=space.organization` (a list of apps), or
/// None when nothing is asked; another value is CF's 400.
pub fn included(include: Option<&Vec<String>>, base: &str) -> ApiResult<Option<cf::Included>> {
    let Some(asked) = include else {
        return Ok(None);
    };
    let mut out = cf::Included::default();
    for what in asked {
        match what.as_str() {
            "space" => {}
            "space.organization" => out.organizations = Some(vec![org(base)]),
            other => {
                return Err(ApiError::bad_query(format!(
                    "The query parameter is invalid: Invalid included resource: '{other}'. \
                     Valid included resources are: 'space', 'space.organization'"
                )))
            }
        }
        out.spaces = Some(vec![space(base)]);
    }
    Ok(Some(out))
}

/// A list of the one resource, when the query's filters let it through.
fn one<T>(
    state: &Shared,
    pairs: &[(String, String)],
    accepts: &Accepts,
    path: &str,
    pass: impl Fn(&ListQuery) -> bool,
    resource: fn(&str) -> T,
) -> ApiResult<Json<Paginated<T>>> {
    let q = ListQuery::parse(pairs, accepts)?;
    let b = base(state);
    let rows = if pass(&q) { vec![resource(&b)] } else { vec![] };
    let (page, pagination) = q.page(rows, |_, _| String::new(), &b, path);
    Ok(Json(paging::list(pagination, page)))
}

const ORGS: Accepts = Accepts {
    filters: &["names", "guids"],
    order_by: &["created_at", "updated_at", "name"],
};

pub async fn orgs(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Paginated<cf::Organization>>> {
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
) -> ApiResult<Json<Paginated<cf::Space>>> {
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
) -> ApiResult<Json<cf::Organization>> {
    if guid != ORG_GUID {
        return Err(ApiError::not_found("Organization"));
    }
    Ok(Json(org(&base(&state))))
}

pub async fn show_space(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::Space>> {
    if guid != SPACE_GUID {
        return Err(ApiError::not_found("Space"));
    }
    Ok(Json(space(&base(&state))))
}
