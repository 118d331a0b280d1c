//! Discovery, as Cloud Foundry clients start: `GET /` (the root links: where the v3 API is,
//! null for what dropship does not offer), `GET /v3` (the resources there) and `GET /v3/info`.
//! The v2 API is not offered: `GET /v2/info` says so in CF's error shape, while the rest of
//! `/v2/` is the OCI registry (the paths do not overlap: a registry path names a repository).

use super::apps::base;
use super::error::ApiError;
use super::Shared;
use crate::cfapi::common::LinkMeta;
use crate::cfapi::root::{CliVersion, InfoLinks, RootLinks};
use crate::cfapi::{self as cf, Link};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// The v3 API version dropship speaks (the cf CLI v8 wants 3.85 or later, v9 3.160 or later).
pub const V3_VERSION: &str = "3.181.0";

/// Where clients log in: dropship itself (built-in login), the external issuer, or nowhere.
fn login_link(state: &Shared, b: &str) -> Option<Link> {
    let auth = &state.config.auth;
    match &auth.external {
        Some(_) => state.keys.as_ref().map(|keys| Link::to(&keys.issuer, "")),
        None if auth.built_in_login() => Some(Link::to(b, "")),
        None => None,
    }
}

pub async fn root(State(state): State<Shared>) -> Json<cf::Root> {
    let b = base(&state);
    let login = login_link(&state, &b);
    let v3 = Link {
        meta: Some(LinkMeta {
            version: Some(V3_VERSION.into()),
            ..LinkMeta::default()
        }),
        ..Link::to(&b, "/v3")
    };
    Json(cf::Root {
        links: RootLinks {
            this: Some(Link::to(&b, "")),
            cloud_controller_v3: Some(v3),
            login: login.clone(),
            uaa: login,
            log_cache: Some(Link::to(&b, "")),
            ..RootLinks::default()
        },
    })
}

pub async fn v3(State(state): State<Shared>) -> Json<cf::V3Root> {
    let b = base(&state);
    let links = [
        ("self", ""),
        ("apps", "/apps"),
        ("builds", "/builds"),
        ("buildpacks", "/buildpacks"),
        ("droplets", "/droplets"),
        ("packages", "/packages"),
        ("processes", "/processes"),
        ("resource_matches", "/resource_matches"),
        ("info", "/info"),
        ("organizations", "/organizations"),
        ("spaces", "/spaces"),
        ("stacks", "/stacks"),
    ]
    .into_iter()
    .map(|(k, p)| (k.to_string(), Link::to(&b, &format!("/v3{p}"))))
    .collect();
    Json(cf::V3Root { links })
}

pub async fn info(State(state): State<Shared>) -> Json<cf::Info> {
    let b = base(&state);
    Json(cf::Info {
        build: env!("CARGO_PKG_VERSION").into(),
        cli_version: CliVersion::default(),
        custom: Default::default(),
        description: "dropship: Cloud Foundry buildpack staging to OCI images and Kubernetes \
                      objects"
            .into(),
        name: "dropship".into(),
        version: 0,
        osbapi_version: String::new(),
        links: InfoLinks {
            this: Link::to(&b, "/v3/info"),
            support: None,
        },
    })
}

/// `GET /v2/info`: CF's shape, saying the v2 API is not offered.
pub async fn v2_info() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: 10000,
        title: "CF-NotFound",
        detail: "The v2 API is not offered: dropship speaks Cloud Foundry's v3 API only (GET / \
                 lists it); /v2/ is its OCI registry"
            .into(),
    }
}
