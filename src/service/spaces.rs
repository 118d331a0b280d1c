//! Organizations and spaces: `GET /v3/organizations[/:guid]`, `GET /v3/spaces[/:guid]` (lists
//! with `names`, `guids`, `organization_guids` and paging) and `POST` of both. The default org
//! and space (`dropship` both) always exist; apps may be made in any space. Org names are
//! unique, space names unique within their org (CF's 422 otherwise). Deleting them is not
//! offered. App names stay unique across spaces: images and Kubernetes names come from them.

use super::apps::{base, parse_body};
use super::error::{ApiError, ApiResult};
use super::paging::{self, Accepts, ListQuery};
use super::Shared;
use crate::cfapi::space::{OrganizationLinks, QuotaRelationships, SpaceLinks, SpaceRelationships};
use crate::cfapi::{self as cf, Link, Metadata, OptionalRelationship, Paginated, Relationship};
use crate::store::{self, Org, Space};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

pub fn org(o: &Org, base: &str) -> cf::Organization {
    cf::Organization {
        guid: o.guid.clone(),
        name: o.name.clone(),
        suspended: false,
        created_at: o.created_at.clone(),
        updated_at: o.updated_at.clone(),
        relationships: QuotaRelationships::default(),
        metadata: Metadata::default(),
        links: OrganizationLinks {
            this: Link::to(base, &format!("/v3/organizations/{}", o.guid)),
            spaces: Some(Link::to(
                base,
                &format!("/v3/spaces?organization_guids={}", o.guid),
            )),
        },
    }
}

pub fn space(s: &Space, base: &str) -> cf::Space {
    cf::Space {
        guid: s.guid.clone(),
        name: s.name.clone(),
        created_at: s.created_at.clone(),
        updated_at: s.updated_at.clone(),
        relationships: SpaceRelationships {
            organization: Relationship::to(&s.org_guid),
            quota: OptionalRelationship::default(),
        },
        metadata: Metadata::default(),
        links: SpaceLinks {
            this: Link::to(base, &format!("/v3/spaces/{}", s.guid)),
            organization: Link::to(base, &format!("/v3/organizations/{}", s.org_guid)),
            apps: Some(Link::to(base, &format!("/v3/apps?space_guids={}", s.guid))),
            apply_manifest: Some(Link::with_method(
                base,
                &format!("/v3/spaces/{}/actions/apply_manifest", s.guid),
                "POST",
            )),
        },
    }
}

/// CF's `included` for `include=space` / `include=space.organization` of a list of apps in
/// `spaces` (GUIDs), or None when nothing is asked; another value is CF's 400.
pub async fn included(
    state: &Shared,
    include: Option<&Vec<String>>,
    mut spaces: Vec<String>,
) -> ApiResult<Option<cf::Included>> {
    let Some(asked) = include else {
        return Ok(None);
    };
    for what in asked {
        if what != "space" && what != "space.organization" {
            return Err(ApiError::bad_query(format!(
                "The query parameter is invalid: Invalid included resource: '{what}'. \
                 Valid included resources are: 'space', 'space.organization'"
            )));
        }
    }
    spaces.sort();
    spaces.dedup();
    let (all_spaces, all_orgs) = state
        .db
        .call(|c| Ok((store::list_spaces(c)?, store::list_orgs(c)?)))
        .await?;
    let spaces: Vec<Space> = (all_spaces.into_iter())
        .filter(|s| spaces.contains(&s.guid))
        .collect();
    let b = base(state);
    let mut out = cf::Included {
        spaces: Some(spaces.iter().map(|s| space(s, &b)).collect()),
        organizations: None,
    };
    if asked.iter().any(|w| w == "space.organization") {
        let orgs = (all_orgs.iter())
            .filter(|o| spaces.iter().any(|s| s.org_guid == o.guid))
            .map(|o| org(o, &b));
        out.organizations = Some(orgs.collect());
    }
    Ok(Some(out))
}

const ORGS: Accepts = Accepts {
    filters: &["names", "guids"],
    order_by: &["created_at", "updated_at", "name"],
};

fn key<'a>(created: &'a str, updated: &'a str, name: &'a str, field: &str) -> String {
    match field {
        "name" => name,
        "updated_at" => updated,
        _ => created,
    }
    .to_string()
}

pub async fn orgs(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Paginated<cf::Organization>>> {
    let q = ListQuery::parse(&pairs, &ORGS)?;
    let rows: Vec<Org> = (state.db.call(|c| store::list_orgs(c)).await?.into_iter())
        .filter(|o| q.allows("names", &o.name) && q.allows("guids", &o.guid))
        .collect();
    let b = base(&state);
    let k = |o: &Org, f: &str| key(&o.created_at, &o.updated_at, &o.name, f);
    let (page, pagination) = q.page(rows, k, &b, "/v3/organizations");
    let resources = page.iter().map(|o| org(o, &b)).collect();
    Ok(Json(paging::list(pagination, resources)))
}

const SPACES: Accepts = Accepts {
    filters: &["names", "guids", "organization_guids"],
    order_by: &["created_at", "updated_at", "name"],
};

pub async fn spaces(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Paginated<cf::Space>>> {
    let q = ListQuery::parse(&pairs, &SPACES)?;
    let rows: Vec<Space> = (state.db.call(|c| store::list_spaces(c)).await?.into_iter())
        .filter(|s| q.allows("names", &s.name) && q.allows("guids", &s.guid))
        .filter(|s| q.allows("organization_guids", &s.org_guid))
        .collect();
    let b = base(&state);
    let k = |s: &Space, f: &str| key(&s.created_at, &s.updated_at, &s.name, f);
    let (page, pagination) = q.page(rows, k, &b, "/v3/spaces");
    let resources = page.iter().map(|s| space(s, &b)).collect();
    Ok(Json(paging::list(pagination, resources)))
}

pub async fn show_org(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::Organization>> {
    let o = state.db.call(move |c| store::get_org(c, &guid)).await?;
    let o = o.ok_or_else(|| ApiError::not_found("Organization"))?;
    Ok(Json(org(&o, &base(&state))))
}

/// The space `guid`, or CF's 404.
pub async fn find(state: &Shared, guid: String) -> ApiResult<Space> {
    let s = state.db.call(move |c| store::get_space(c, &guid)).await?;
    s.ok_or_else(|| ApiError::not_found("Space"))
}

pub async fn show_space(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::Space>> {
    let s = find(&state, guid).await?;
    Ok(Json(space(&s, &base(&state))))
}

/// A name as CF takes one for an org or a space.
fn checked_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "Name must be between 1 and 255 characters, none of them control characters",
        ));
    }
    Ok(name.to_string())
}

#[derive(Deserialize)]
struct CreateOrg {
    name: String,
    /// Accepted as clients send it; labels and annotations are not stored.
    #[allow(dead_code)]
    metadata: Option<Value>,
    /// Accepted; dropship has no suspended orgs.
    #[allow(dead_code)]
    suspended: Option<bool>,
}

pub async fn create_org(
    State(state): State<Shared>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<(StatusCode, Json<cf::Organization>)> {
    let req: CreateOrg = parse_body(&body)?;
    let name = checked_name(&req.name)?;
    let t = store::now();
    let o = Org {
        guid: store::new_guid(),
        name: name.clone(),
        created_at: t.clone(),
        updated_at: t,
    };
    let row = o.clone();
    if !state.db.call(move |c| store::insert_org(c, &row)).await? {
        return Err(ApiError::unprocessable(format!(
            "Organization '{name}' already exists."
        )));
    }
    Ok((StatusCode::CREATED, Json(org(&o, &base(&state)))))
}

#[derive(Deserialize)]
struct CreateSpace {
    name: String,
    relationships: NewSpaceRelationships,
    #[allow(dead_code)]
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct NewSpaceRelationships {
    organization: Relationship,
}

pub async fn create_space(
    State(state): State<Shared>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<(StatusCode, Json<cf::Space>)> {
    let req: CreateSpace = parse_body(&body)?;
    let name = checked_name(&req.name)?;
    let t = store::now();
    let s = Space {
        guid: store::new_guid(),
        name: name.clone(),
        org_guid: req.relationships.organization.data.guid,
        created_at: t.clone(),
        updated_at: t,
    };
    let row = s.clone();
    let inserted = state
        .db
        .call(move |c| match store::get_org(c, &row.org_guid)? {
            None => Ok(None),
            Some(_) => Ok(Some(store::insert_space(c, &row)?)),
        })
        .await?;
    match inserted {
        None => Err(ApiError::unprocessable(
            "Invalid organization. Ensure the organization exists and you have access to it.",
        )),
        Some(false) => Err(ApiError::unprocessable(
            "Name must be unique per organization",
        )),
        Some(true) => Ok((StatusCode::CREATED, Json(space(&s, &base(&state))))),
    }
}
