//! The one model of the API (`dropship::cfapi`) against the server: every resource and list
//! the service answers reads as its cfapi type and writes back to the very same JSON (no field
//! the server sends is lost, none is invented), and a failed build carries its typed kind.

use crate::support::api::*;
use dropship::failure::FailureKind;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

/// `raw` read as a `T`, which writes back to `raw` exactly.
fn lossless<T: DeserializeOwned + Serialize>(what: &str, raw: Value) -> T {
    let t: T = crate::support::client::read(raw.clone());
    let again = serde_json::to_value(&t).unwrap();
    assert_eq!(
        again, raw,
        "{what}: the cfapi type does not hold what the server sent"
    );
    t
}

/// `GET path` answered 200 and read losslessly as a `T`.
async fn got<T: DeserializeOwned + Serialize>(api: &Api, path: &str) -> T {
    let (s, raw) = api.get(path).await;
    assert_eq!(s, 200, "GET {path}: {raw}");
    lossless(path, raw)
}

/// A staged build of a static site; the app's and the droplet's guids.
async fn staged(api: &Api) -> (String, String) {
    let (app, pkg) = api
        .ready_package("modelled", &[("index.html", b"<p>model</p>\n", 0o644)])
        .await;
    let b = api.stage(&pkg).await;
    let b = api.wait_build(&b.guid, Duration::from_secs(120)).await;
    assert_eq!((b.state, &b.failure), (BuildState::Staged, &None), "{b:?}");
    (
        app,
        b.droplet.expect("a staged build names its droplet").guid,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_resource_reads_as_its_cfapi_type_without_loss() {
    let api = Api::start(&[]);
    let (app, droplet) = staged(&api).await;
    let a: cf::App = got(&api, &format!("/v3/apps/{app}")).await;
    assert_eq!(
        (a.name.as_str(), a.state),
        ("modelled", cf::AppState::Stopped)
    );
    let d: cf::Droplet = got(&api, &format!("/v3/droplets/{droplet}")).await;
    assert_eq!(d.state, cf::DropletState::Staged);
    assert!(d.image.unwrap().contains("@sha256:"));
    assert_eq!(d.relationships.app.data.guid, app);

    let body = json!({"data": {"guid": droplet}});
    let path = format!("/v3/apps/{app}/relationships/current_droplet");
    let r = api
        .http
        .patch(api.svc.url(&path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let set: cf::CurrentDroplet = lossless(&path, r.json().await.unwrap());
    assert_eq!(set.data.unwrap().guid, droplet);
    let current: cf::CurrentDroplet = got(&api, &path).await;
    assert!(current.links.related.is_some());

    let apps: cf::Paginated<cf::App> = got(&api, "/v3/apps?include=space.organization").await;
    assert_eq!(
        (apps.pagination.total_results, &apps.resources[0].guid),
        (1, &app)
    );
    let included = apps.included.expect("asked for");
    assert_eq!(
        included.spaces.unwrap()[0].guid,
        a.relationships.space.data.guid
    );
    assert_eq!(included.organizations.unwrap().len(), 1);
    let builds: cf::Paginated<cf::Build> = got(&api, "/v3/builds").await;
    assert_eq!(builds.resources[0].droplet.as_ref().unwrap().guid, droplet);
    let _: cf::Paginated<cf::Package> = got(&api, "/v3/packages").await;
    let _: cf::Paginated<cf::Droplet> = got(&api, &format!("/v3/apps/{app}/droplets")).await;

    let procs: cf::Paginated<cf::Process> = got(&api, &format!("/v3/apps/{app}/processes")).await;
    let web = &procs.resources[0];
    assert_eq!(
        (web.kind.as_str(), web.guid.as_str()),
        ("web", app.as_str())
    );
    let scale = cf::Scale {
        instances: Some(2),
        ..Default::default()
    };
    let scaled: Value = api
        .post_as(&format!("/v3/processes/{app}/actions/scale"), &scale, 202)
        .await;
    let scaled: cf::Process = lossless("scale", scaled);
    assert_eq!(scaled.instances, 2);
    let stats: cf::ProcessStats = got(&api, &format!("/v3/processes/{app}/stats")).await;
    assert_eq!(stats.resources.len(), 2);
    assert_eq!(stats.resources[1].state, cf::InstanceState::Starting);

    let env: cf::EnvVars = got(&api, &format!("/v3/apps/{app}/environment_variables")).await;
    assert!(env.var.is_empty());
    let env: cf::AppEnv = got(&api, &format!("/v3/apps/{app}/env")).await;
    assert_eq!(
        env.application_env_json["VCAP_APPLICATION"]["application_id"],
        app.as_str()
    );
    let stacks: cf::Paginated<cf::Stack> = got(&api, "/v3/stacks").await;
    assert!(stacks.resources.iter().any(|s| s.default));
    let _: cf::Stack = got(&api, &format!("/v3/stacks/{}", stacks.resources[0].guid)).await;
    let bps: cf::Paginated<cf::Buildpack> = got(&api, "/v3/buildpacks").await;
    assert_eq!(bps.resources[0].position, 1);
    let _: cf::Buildpack = got(&api, &format!("/v3/buildpacks/{}", bps.resources[0].guid)).await;
    let _: cf::Paginated<cf::Organization> = got(&api, "/v3/organizations").await;
    let spaces: cf::Paginated<cf::Space> = got(&api, "/v3/spaces").await;
    let _: cf::Space = got(&api, &format!("/v3/spaces/{}", spaces.resources[0].guid)).await;
    let root: cf::Root = got(&api, "/").await;
    let v3 = root.links.cloud_controller_v3.unwrap();
    assert!(v3.meta.unwrap().version.unwrap().starts_with("3."));
    let _: cf::V3Root = got(&api, "/v3").await;
    let _: cf::Info = got(&api, "/v3/info").await;

    let r = api
        .http
        .delete(api.svc.url(&format!("/v3/apps/{app}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let job = r.headers()["location"].to_str().unwrap().to_string();
    let job: cf::Job = got(&api, job.trim_start_matches(&api.svc.url(""))).await;
    assert_eq!(
        (job.operation.as_str(), job.state),
        ("app.delete", cf::JobState::Complete)
    );
    let (s, gone) = api.get(&format!("/v3/apps/{app}")).await;
    let gone: cf::ErrorBody = lossless("404", gone);
    assert_eq!((s, gone.errors[0].code), (404, 10010));
}

/// A build no buildpack detects: FAILED with CF's error text for people and the typed kind
/// (name and builder exit code) that clients decide on.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_build_carries_its_typed_kind() {
    let api = Api::start(&[]);
    let files = [("README.txt", &b"nothing to run\n"[..], 0o644)];
    let (_, pkg) = api.ready_package("undetected", &files).await;
    let b = api.stage(&pkg).await;
    let b = api.wait_build(&b.guid, Duration::from_secs(120)).await;
    assert_eq!((b.state, &b.droplet), (BuildState::Failed, &None), "{b:?}");
    let failure = b.failure.clone().expect("a FAILED build has its failure");
    assert_eq!(failure, cf::Failure::of(FailureKind::NoAppDetected));
    assert_eq!(failure.exit_code, Some(222));
    assert_eq!(failure.name.as_deref(), Some("NoAppDetectedError"));
    assert!(b.error.unwrap().starts_with("NoAppDetectedError - "));
    let raw = serde_json::to_value(got::<cf::Build>(&api, &format!("/v3/builds/{}", b.guid)).await);
    assert_eq!(raw.unwrap()["failure"]["kind"], "no_app_detected");
}
