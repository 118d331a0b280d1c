//! Discovery, as Cloud Foundry clients start: `GET /` (the root links: where the v3 API is,
//! null for what dropship does not offer), `GET /v3` (the resources there) and `GET /v3/info`.
//! The v2 API is not offered: `GET /v2/info` says so in CF's error shape, while the rest of
//! `/v2/` is the OCI registry (the paths do not overlap: a registry path names a repository).

use super::apps::base;
use super::error::ApiError;
use super::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// The v3 API version dropship speaks (the cf CLI v8 wants 3.85 or later, v9 3.160 or later).
pub const V3_VERSION: &str = "3.181.0";

fn href(base: &str, path: &str) -> Value {
    json!({ "href": format!("{base}{path}") })
}

pub async fn root(State(state): State<Shared>) -> Json<Value> {
    let b = base(&state);
    Json(json!({
        "links": {
            "self": href(&b, ""),
            "cloud_controller_v2": null,
            "cloud_controller_v3": {"href": format!("{b}/v3"), "meta": {"version": V3_VERSION}},
            "login": null,
            "uaa": null,
            "credhub": null,
            "routing": null,
            "logging": null,
            "log_cache": href(&b, ""),
            "log_stream": null,
            "app_ssh": null,
            "network_policy_v0": null,
            "network_policy_v1": null,
            "bits_service": null,
        }
    }))
}

pub async fn v3(State(state): State<Shared>) -> Json<Value> {
    let b = base(&state);
    let links: serde_json::Map<String, Value> = [
        ("self", ""),
        ("apps", "/apps"),
        ("builds", "/builds"),
        ("buildpacks", "/buildpacks"),
        ("droplets", "/droplets"),
        ("packages", "/packages"),
        ("resource_matches", "/resource_matches"),
        ("info", "/info"),
        ("organizations", "/organizations"),
        ("spaces", "/spaces"),
        ("stacks", "/stacks"),
    ]
    .into_iter()
    .map(|(k, p)| (k.to_string(), href(&b, &format!("/v3{p}"))))
    .collect();
    Json(json!({ "links": links }))
}

pub async fn info(State(state): State<Shared>) -> Json<Value> {
    let b = base(&state);
    Json(json!({
        "build": env!("CARGO_PKG_VERSION"),
        "cli_version": {"minimum": null, "recommended": null},
        "custom": {},
        "description": "dropship: Cloud Foundry buildpack staging to OCI images and Kubernetes objects",
        "name": "dropship",
        "version": 0,
        "osbapi_version": "",
        "links": {"self": href(&b, "/v3/info"), "support": null},
    }))
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
