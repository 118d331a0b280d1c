//! Each resource read from a sample as Cloud Foundry's v3 documentation shows it (written
//! here from the docs' field lists: the fields dropship does not model are ignored), checked
//! field by field, then written and read back unchanged.

use super::*;
use crate::failure::{FailureKind, Phase};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use std::fmt::Debug;

/// `sample` read as `T`, and `T` written and read back to the same value.
pub(super) fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    sample: serde_json::Value,
) -> T {
    let t: T = serde_json::from_value(sample).expect("the sample reads");
    let again: T = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
    assert_eq!(t, again);
    t
}

pub(super) fn link(path: &str) -> serde_json::Value {
    json!({ "href": format!("https://api.example.org{path}") })
}

const APP: &str = "1cb006ee-fb05-47e1-b541-c34179ddc446";

#[test]
fn an_app_as_cf_documents_it() {
    let a: App = round_trip(json!({
        "guid": APP, "name": "my_app", "state": "STOPPED",
        "created_at": "2016-03-17T21:41:30Z", "updated_at": "2016-06-08T16:41:26Z",
        "lifecycle": {"type": "buildpack",
                      "data": {"buildpacks": ["java_buildpack"], "stack": "cflinuxfs4"}},
        "relationships": {"space": {"data": {"guid": "2f35885d-0c9d-4423-83ad-fd05066f8576"}}},
        "links": {
            "self": link("/v3/apps/1"), "space": link("/v3/spaces/2"),
            "processes": link("/v3/apps/1/processes"), "packages": link("/v3/apps/1/packages"),
            "environment_variables": link("/v3/apps/1/environment_variables"),
            "current_droplet": link("/v3/apps/1/droplets/current"),
            "droplets": link("/v3/apps/1/droplets"), "tasks": link("/v3/apps/1/tasks"),
            "start": {"href": "https://api.example.org/v3/apps/1/actions/start", "method": "POST"},
            "stop": {"href": "https://api.example.org/v3/apps/1/actions/stop", "method": "POST"},
        },
        "metadata": {"labels": {}, "annotations": {}},
    }));
    assert_eq!((a.name.as_str(), a.state), ("my_app", AppState::Stopped));
    assert_eq!(a.lifecycle.data.stack.as_deref(), Some("cflinuxfs4"));
    assert_eq!(
        a.relationships.space.data.guid,
        "2f35885d-0c9d-4423-83ad-fd05066f8576"
    );
    assert_eq!(a.links.start.unwrap().method.as_deref(), Some("POST"));
    assert_eq!(a.links.builds, None);
}

#[test]
fn a_package_as_cf_documents_it() {
    let p: Package = round_trip(json!({
        "guid": "44f7c078-0934-470f-9883-4fcddc5b8f13", "type": "bits",
        "data": {"checksum": {"type": "sha256", "value": null}, "error": null},
        "state": "PROCESSING_UPLOAD",
        "created_at": "2015-11-13T17:02:56Z", "updated_at": "2016-06-08T16:41:26Z",
        "relationships": {"app": {"data": {"guid": APP}}},
        "links": {
            "self": link("/v3/packages/4"),
            "upload": {"href": "https://api.example.org/v3/packages/4/upload", "method": "POST"},
            "download": {"href": "https://api.example.org/v3/packages/4/download", "method": "GET"},
            "app": link("/v3/apps/1"),
        },
        "metadata": {"labels": {"a": "b"}, "annotations": {}},
    }));
    assert_eq!(p.state, PackageState::ProcessingUpload);
    assert_eq!((p.kind.as_str(), p.data.checksum.value), ("bits", None));
    assert_eq!(p.relationships.app.data.guid, APP);
    assert_eq!(p.metadata.labels["a"], "b");
    assert_eq!(p.links.upload.method.as_deref(), Some("POST"));
}

fn build_sample(state: &str, failure: serde_json::Value) -> serde_json::Value {
    json!({
        "guid": "585bc3c1-3743-497d-88b0-403ad6b56d16",
        "created_at": "2016-03-28T23:39:34Z", "updated_at": "2016-06-08T16:41:26Z",
        "created_by": {"guid": "3cb4e243", "name": "bill", "email": "bill@example.com"},
        "state": state, "staging_memory_in_mb": 1024, "staging_disk_in_mb": 1024,
        "error": null, "failure": failure,
        "lifecycle": {"type": "buildpack",
                      "data": {"buildpacks": ["ruby_buildpack"], "stack": "cflinuxfs4"}},
        "package": {"guid": "8e4da443-f255-499c-8b47-b3729b5b7432"},
        "droplet": null,
        "relationships": {"app": {"data": {"guid": APP}}},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {"self": link("/v3/builds/5"), "app": link("/v3/apps/1")},
    })
}

#[test]
fn a_build_as_cf_documents_it_and_its_failure_as_dropship_adds_it() {
    let b: Build = round_trip(build_sample("STAGING", serde_json::Value::Null));
    assert_eq!(
        (b.state, b.droplet, b.failure),
        (BuildState::Staging, None, None)
    );
    assert_eq!(b.package.guid, "8e4da443-f255-499c-8b47-b3729b5b7432");
    assert_eq!(b.lifecycle.data.buildpacks.unwrap(), ["ruby_buildpack"]);
    let failure =
        json!({"kind": "limit_exceeded:supply", "name": "StagingError", "exit_code": 225});
    let b: Build = round_trip(build_sample("FAILED", failure));
    let f = b.failure.unwrap();
    assert_eq!(f, Failure::of(FailureKind::LimitExceeded(Phase::Supply)));
    assert_eq!(
        (f.exit_code, f.name.as_deref()),
        (Some(225), Some("StagingError"))
    );
}

#[test]
fn a_failure_kind_from_a_newer_server_reads_as_unknown_not_as_an_error() {
    let b: Build = serde_json::from_value(build_sample("FAILED", json!({"kind": "quantum"})))
        .expect("the build still reads");
    assert_eq!(b.failure.unwrap().kind, None);
}

#[test]
fn a_droplet_as_cf_documents_it() {
    let d: Droplet = round_trip(json!({
        "guid": "585bc3c1-3743-497d-88b0-403ad6b56d16", "state": "STAGED", "error": null,
        "lifecycle": {"type": "buildpack", "data": {}},
        "execution_metadata": "",
        "process_types": {"rake": "bundle exec rake", "web": "bundle exec rackup config.ru -p $PORT"},
        "checksum": {"type": "sha256", "value": "3b2ac5d8e2a8f2e2"},
        "buildpacks": [{"name": "ruby_buildpack", "detect_output": "ruby 1.6.14",
                        "version": "1.1.1.", "buildpack_name": "ruby"}],
        "stack": "cflinuxfs4", "image": null,
        "created_at": "2016-03-28T23:39:34Z", "updated_at": "2016-06-08T16:41:26Z",
        "relationships": {"app": {"data": {"guid": APP}}},
        "links": {
            "self": link("/v3/droplets/5"), "package": link("/v3/packages/4"),
            "app": link("/v3/apps/1"),
            "assign_current_droplet": {"href": "https://api.example.org/v3/apps/1/relationships/current_droplet", "method": "PATCH"},
            "download": link("/v3/droplets/5/download"),
        },
        "metadata": {"labels": {}, "annotations": {}},
    }));
    assert_eq!((d.state, d.image), (DropletState::Staged, None));
    assert_eq!(
        d.process_types["web"],
        "bundle exec rackup config.ru -p $PORT"
    );
    assert_eq!(d.buildpacks[0].buildpack_name.as_deref(), Some("ruby"));
    assert_eq!(
        d.links.assign_current_droplet.method.as_deref(),
        Some("PATCH")
    );
    assert_eq!(d.lifecycle.data, LifecycleData::default());
}

#[test]
fn a_process_and_its_stats_as_cf_documents_them() {
    let p: Process = round_trip(json!({
        "guid": "6a901b7c-9417-4dc1-8189-d3234aa0ab82", "type": "web", "command": "rackup",
        "instances": 5, "memory_in_mb": 256, "disk_in_mb": 1024,
        "log_rate_limit_in_bytes_per_second": 1024,
        "health_check": {"type": "http", "data": {"timeout": 60, "invocation_timeout": null,
                                                    "endpoint": "/healthy"}},
        "relationships": {"app": {"data": {"guid": APP}},
                          "revision": {"data": {"guid": "885735b5"}}},
        "metadata": {"labels": {}, "annotations": {}},
        "created_at": "2016-03-23T18:48:22Z", "updated_at": "2016-03-23T18:48:42Z",
        "links": {
            "self": link("/v3/processes/6"),
            "scale": {"href": "https://api.example.org/v3/processes/6/actions/scale", "method": "POST"},
            "app": link("/v3/apps/1"), "space": link("/v3/spaces/2"),
            "stats": link("/v3/processes/6/stats"),
        },
    }));
    assert_eq!(
        (p.kind.as_str(), p.instances, p.memory_in_mb),
        ("web", 5, 256)
    );
    assert_eq!(p.health_check.data.endpoint.as_deref(), Some("/healthy"));
    assert_eq!(
        p.relationships.revision.unwrap().data.unwrap().guid,
        "885735b5"
    );
    let s: ProcessStats = round_trip(json!({"resources": [{
        "type": "web", "index": 0, "state": "RUNNING",
        "usage": {"time": "2016-03-23T23:17:30.476314154Z", "cpu": 0.00038711029163348665,
                  "mem": 19177472, "disk": 69705728, "log_rate": 0},
        "host": "10.244.16.10", "instance_ports": [{"external": 64546, "internal": 8080}],
        "uptime": 9042, "mem_quota": 268435456, "disk_quota": 1073741824, "fds_quota": 16384,
        "isolation_segment": "example_iso_segment", "details": null,
    }]}));
    let i = &s.resources[0];
    assert_eq!(
        (i.state, i.usage.mem, i.mem_quota),
        (InstanceState::Running, Some(19177472), Some(268435456))
    );
}

#[test]
fn requests_are_written_as_cf_reads_them() {
    let scale = Scale {
        instances: Some(3),
        memory_in_mb: Some(64),
        ..Scale::default()
    };
    assert_eq!(
        serde_json::to_value(&scale).unwrap(),
        json!({"instances": 3, "memory_in_mb": 64})
    );
    assert!(serde_json::from_value::<Scale>(json!({"instance": 3})).is_err());
    let pkg = serde_json::to_value(CreatePackage::bits(APP)).unwrap();
    assert_eq!(
        pkg,
        json!({"type": "bits", "relationships": {"app": {"data": {"guid": APP}}}})
    );
    let build = CreateBuild {
        package: GuidRef::new("p"),
        lifecycle: None,
    };
    assert_eq!(
        serde_json::to_value(build).unwrap(),
        json!({"package": {"guid": "p"}})
    );
    let app = CreateApp {
        name: "a".into(),
        ..CreateApp::default()
    };
    assert_eq!(serde_json::to_value(app).unwrap(), json!({"name": "a"}));
    let set: SetCurrentDroplet = round_trip(json!({"data": {"guid": "d"}}));
    assert_eq!(set.data.unwrap().guid, "d");
    let env: SetEnv = round_trip(json!({"var": {"A": "1", "B": null}}));
    assert!(env.var["B"].is_null());
}

#[test]
fn resource_matches_as_cf_documents_them() {
    let m: ResourceMatches = round_trip(json!({"resources": [
        {"checksum": {"value": "002d760bea1be268e27077412e11a320d0f164d3"},
         "size_in_bytes": 36, "path": "C:\\path\\to\\file", "mode": "645"},
        {"checksum": {"value": "a9993e364706816aba3e25717850c26c9cd0d89d"},
         "size_in_bytes": 1, "path": "path/to/file", "mode": "644"},
    ]}));
    assert_eq!(m.resources.len(), 2);
    assert_eq!(m.resources[0].size_in_bytes, 36);
    assert_eq!(m.resources[1].mode.as_deref(), Some("644"));
    assert_eq!(
        m.resources[1].checksum.value,
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
}

#[test]
fn an_apps_env_as_cf_documents_it() {
    let e: AppEnv = round_trip(json!({
        "staging_env_json": {"GEM_CACHE": "http://gem-cache.example.org"},
        "running_env_json": {"HTTP_PROXY": "http://proxy.example.org"},
        "environment_variables": {"RAILS_ENV": "production"},
        "system_env_json": {"VCAP_SERVICES": {"mysql": [{"name": "db", "credentials": {}}]}},
        "application_env_json": {"VCAP_APPLICATION": {
            "limits": {"fds": 16384}, "application_name": "my_app",
            "application_uris": ["my_app.example.org"], "name": "my_app",
            "space_name": "my_space", "space_id": "2f35885d", "uris": ["my_app.example.org"],
            "users": null}},
    }));
    assert_eq!(e.environment_variables["RAILS_ENV"], "production");
    assert_eq!(e.application_env_json["VCAP_APPLICATION"]["name"], "my_app");
    assert_eq!(e.system_env_json["VCAP_SERVICES"]["mysql"][0]["name"], "db");
}
