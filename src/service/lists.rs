//! The lists of packages, builds and droplets (`GET /v3/packages`, `/v3/builds`,
//! `/v3/droplets`, and the same under `/v3/apps/:guid/`): CF's paging, order and filters
//! (`paging.rs`), the resources in the shapes of `json.rs`.

use super::apps::base;
use super::error::ApiResult;
use super::paging::{self, Accepts, ListQuery};
use super::{json, Shared};
use crate::cfapi::{self as cf, Paginated};
use crate::store::{self, Build, Droplet, Package};
use axum::extract::{Path, Query, State};
use axum::Json;

type Pairs = Query<Vec<(String, String)>>;

/// The list's path: under the app when the route names one.
fn path(app: &Option<Path<String>>, resources: &str) -> String {
    match app {
        Some(Path(guid)) => format!("/v3/apps/{guid}/{resources}"),
        None => format!("/v3/{resources}"),
    }
}

fn of_app(app: &Option<Path<String>>, guid: &str) -> bool {
    app.as_ref().is_none_or(|Path(a)| a == guid)
}

const PACKAGES: Accepts = Accepts {
    filters: &["guids", "app_guids", "states", "types"],
    order_by: paging::TIMES,
};

pub async fn packages(
    State(state): State<Shared>,
    app: Option<Path<String>>,
    Query(pairs): Pairs,
) -> ApiResult<Json<Paginated<cf::Package>>> {
    let q = ListQuery::parse(&pairs, &PACKAGES)?;
    let all = state.db.call(|c| store::list_packages(c)).await?;
    let rows: Vec<Package> = all
        .into_iter()
        .filter(|p| of_app(&app, &p.app_guid))
        .filter(|p| q.allows("guids", &p.guid) && q.allows("app_guids", &p.app_guid))
        .filter(|p| q.allows("states", p.state.as_str()) && q.allows("types", "bits"))
        .collect();
    let b = base(&state);
    let key = |p: &Package, f: &str| paging::by_time(&p.created_at, &p.updated_at, f);
    let (page, pagination) = q.page(rows, key, &b, &path(&app, "packages"));
    let resources = page.iter().map(|p| json::package(p, &b)).collect();
    Ok(Json(paging::list(pagination, resources)))
}

const BUILDS: Accepts = Accepts {
    filters: &["guids", "app_guids", "package_guids", "states"],
    order_by: paging::TIMES,
};

pub async fn builds(
    State(state): State<Shared>,
    app: Option<Path<String>>,
    Query(pairs): Pairs,
) -> ApiResult<Json<Paginated<cf::Build>>> {
    let q = ListQuery::parse(&pairs, &BUILDS)?;
    let all = state.db.call(|c| store::list_builds(c)).await?;
    let rows: Vec<Build> = all
        .into_iter()
        .filter(|b| of_app(&app, &b.app_guid))
        .filter(|b| q.allows("guids", &b.guid) && q.allows("app_guids", &b.app_guid))
        .filter(|b| q.allows("package_guids", &b.package_guid))
        .filter(|b| q.allows("states", b.state.as_str()))
        .collect();
    let base = base(&state);
    let key = |b: &Build, f: &str| paging::by_time(&b.created_at, &b.updated_at, f);
    let (page, pagination) = q.page(rows, key, &base, &path(&app, "builds"));
    let resources = page.iter().map(|b| json::build(b, &base)).collect();
    Ok(Json(paging::list(pagination, resources)))
}

const DROPLETS: Accepts = Accepts {
    filters: &["guids", "app_guids", "states"],
    order_by: paging::TIMES,
};

pub async fn droplets(
    State(state): State<Shared>,
    app: Option<Path<String>>,
    Query(pairs): Pairs,
) -> ApiResult<Json<Paginated<cf::Droplet>>> {
    let q = ListQuery::parse(&pairs, &DROPLETS)?;
    let all = state.db.call(|c| store::list_droplets(c)).await?;
    let rows: Vec<Droplet> = all
        .into_iter()
        .filter(|d| of_app(&app, &d.app_guid))
        .filter(|d| q.allows("guids", &d.guid) && q.allows("app_guids", &d.app_guid))
        // A droplet exists once staged: dropship keeps no other state.
        .filter(|_| q.allows("states", "STAGED"))
        .collect();
    let b = base(&state);
    let key = |d: &Droplet, f: &str| paging::by_time(&d.created_at, &d.updated_at, f);
    let (page, pagination) = q.page(rows, key, &b, &path(&app, "droplets"));
    let resources = page.iter().map(|d| json::droplet(d, &b)).collect();
    Ok(Json(paging::list(pagination, resources)))
}
