//! Cloud Foundry v3 JSON shapes of apps, packages, builds and droplets. Links name only
//! routes the service has (CF's others, such as an app's packages or current droplet, wait
//! for the fuller CF API of issue 11).

use crate::store::{App, Build, Droplet, Package};
use serde_json::{json, Value};

fn href(base: &str, path: &str) -> Value {
    json!({ "href": format!("{base}{path}") })
}

fn metadata() -> Value {
    json!({"labels": {}, "annotations": {}})
}

pub fn app(a: &App, base: &str, stack: &str) -> Value {
    json!({
        "guid": a.guid,
        "name": a.name,
        "state": a.state,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "lifecycle": {"type": "buildpack", "data": {
            "buildpacks": a.buildpacks, "stack": a.stack.as_deref().unwrap_or(stack),
        }},
        "relationships": {"space": {"data": {"guid": a.space_guid}}},
        "metadata": metadata(),
        "links": {
            "self": href(base, &format!("/v3/apps/{}", a.guid)),
            "space": href(base, &format!("/v3/spaces/{}", a.space_guid)),
            "processes": href(base, &format!("/v3/apps/{}/processes", a.guid)),
            "packages": href(base, &format!("/v3/apps/{}/packages", a.guid)),
            "droplets": href(base, &format!("/v3/apps/{}/droplets", a.guid)),
            "builds": href(base, &format!("/v3/apps/{}/builds", a.guid)),
            "environment_variables": href(base, &format!("/v3/apps/{}/environment_variables", a.guid)),
        },
    })
}

pub fn package(p: &Package, base: &str) -> Value {
    json!({
        "guid": p.guid,
        "type": "bits",
        "data": {
            "checksum": {"type": "sha256", "value": p.checksum},
            "error": p.error,
        },
        "state": p.state,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "relationships": {"app": {"data": {"guid": p.app_guid}}},
        "metadata": metadata(),
        "links": {
            "self": href(base, &format!("/v3/packages/{}", p.guid)),
            "upload": {"href": format!("{base}/v3/packages/{}/upload", p.guid), "method": "POST"},
            "app": href(base, &format!("/v3/apps/{}", p.app_guid)),
        },
    })
}

/// A build as CF's v3 resource, plus `failure` (a dropship extension, null unless FAILED):
/// `{"kind": "compile_failed", "exit_code": 223}`. Clients read the kind, never `error`'s text.
pub fn build(b: &Build, base: &str) -> Value {
    let mut links = json!({
        "self": href(base, &format!("/v3/builds/{}", b.guid)),
        "app": href(base, &format!("/v3/apps/{}", b.app_guid)),
        "logs": href(base, &format!("/v3/builds/{}/logs", b.guid)),
    });
    if let Some(d) = &b.droplet_guid {
        links["droplet"] = href(base, &format!("/v3/droplets/{d}"));
    }
    json!({
        "guid": b.guid,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
        "state": b.state,
        "error": b.failure.as_ref().map(|f| f.cf_error()),
        "failure": b.failure.as_ref().map(|f| json!({"kind": f.kind, "exit_code": f.kind.exit_code()})),
        "lifecycle": {"type": "buildpack", "data": {"buildpacks": b.buildpacks, "stack": b.stack}},
        "package": {"guid": b.package_guid},
        "droplet": b.droplet_guid.as_ref().map(|g| json!({"guid": g})),
        "relationships": {"app": {"data": {"guid": b.app_guid}}},
        "metadata": metadata(),
        "links": links,
    })
}

pub fn droplet(d: &Droplet, base: &str) -> Value {
    let buildpacks: Vec<Value> = d
        .buildpacks
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|b| {
            json!({
                "name": b["key"],
                "buildpack_name": b["name"],
                "detect_output": if b["name"] == d.detected_buildpack.as_str() { json!(d.detected_buildpack) } else { Value::Null },
                "version": b.get("version").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    json!({
        "guid": d.guid,
        "state": "STAGED",
        "error": null,
        "lifecycle": {"type": "buildpack", "data": {}},
        "execution_metadata": "",
        "process_types": d.process_types,
        "checksum": {"type": "sha256", "value": d.checksum.trim_start_matches("sha256:")},
        "buildpacks": buildpacks,
        "stack": d.stack,
        "image": d.image,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "relationships": {"app": {"data": {"guid": d.app_guid}}},
        "metadata": metadata(),
        "links": {
            "self": href(base, &format!("/v3/droplets/{}", d.guid)),
            "package": href(base, &format!("/v3/packages/{}", d.package_guid)),
            "app": href(base, &format!("/v3/apps/{}", d.app_guid)),
            "assign_current_droplet": {"href": format!("{base}/v3/apps/{}/relationships/current_droplet", d.app_guid), "method": "PATCH"},
            "download": href(base, &format!("/v3/droplets/{}/download", d.guid)),
            "kubernetes": href(base, &format!("/v3/droplets/{}/kubernetes", d.guid)),
        },
    })
}
