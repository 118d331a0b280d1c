//! Manifests through the API: `apply_manifest` of two apps (one with a `worker` process) ends
//! in a COMPLETE job whose processes carry the manifest's settings, even before a droplet, and
//! the Kubernetes objects follow once there is one; invalid manifests are CF's 422, an app of
//! that name in another space fails the job; `manifest_diff` shows a changed instances value.
//! `PATCH` of a process's command and health check shows in GET and in the objects.

use crate::support::api::*;
use crate::support::client::Client;
use serde_json::{json, Value};
use std::time::Duration;

const SPACE: &str = "00000000-0000-4000-8000-000000000001";

const MANIFEST: &str = "---
applications:
- name: front
  instances: 2
  memory: 256M
  env: {GREETING: hello}
  processes:
  - type: worker
    instances: 3
    memory: 128M
    command: sleep 1000
- name: back
  health-check-type: http
  health-check-http-endpoint: /up
  routes: [{route: back.example.com}]
";

async fn post_yaml(api: &Api, path: &str, yaml: &str) -> (u16, Option<String>, Value) {
    let r = api
        .http
        .post(api.svc.url(path))
        .header("content-type", "application/x-yaml")
        .body(yaml.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = (r.headers().get("location")).map(|l| l.to_str().unwrap().to_string());
    (status, location, r.json().await.unwrap_or(Value::Null))
}

async fn patch(api: &Api, path: &str, body: &Value) -> (u16, Value) {
    let r = api
        .http
        .patch(api.svc.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Applies `yaml` to the default space; the job as it ended.
async fn apply(api: &Api, yaml: &str) -> Value {
    apply_in(api, SPACE, yaml).await
}

async fn apply_in(api: &Api, space: &str, yaml: &str) -> Value {
    // Where the space says to apply manifests.
    let (_, sp) = api.get(&format!("/v3/spaces/{space}")).await;
    let link = &sp["links"]["apply_manifest"];
    assert_eq!(link["method"], "POST", "{sp}");
    let path = link["href"]
        .as_str()
        .unwrap()
        .strip_prefix(&api.svc.base())
        .unwrap()
        .to_string();
    let (s, location, body) = post_yaml(api, &path, yaml).await;
    assert_eq!(s, 202, "{body}");
    let location = location.expect("a Location");
    let (s, job) = api
        .get(location.strip_prefix(&api.svc.base()).unwrap())
        .await;
    assert_eq!(
        (s, &job["operation"]),
        (200, &json!("space.apply_manifest")),
        "{job}"
    );
    job
}

async fn app_named(api: &Api, name: &str) -> Value {
    let (_, v) = api.get(&format!("/v3/apps?names={name}")).await;
    assert_eq!(v["pagination"]["total_results"], 1, "{name}: {v}");
    v["resources"][0].clone()
}

async fn processes(api: &Api, app: &str) -> Vec<Value> {
    let (_, v) = api.get(&format!("/v3/apps/{app}/processes")).await;
    v["resources"].as_array().unwrap().clone()
}

/// The StatefulSets of the app's objects, web first.
async fn stateful_sets(api: &Api, app: &str) -> Vec<Value> {
    let path = format!("/v3/apps/{app}/kubernetes");
    let (s, _, body) = api.text(&path, Some("application/json")).await;
    assert_eq!(s, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let items = list["items"].as_array().unwrap().iter();
    items
        .filter(|o| o["kind"] == "StatefulSet")
        .cloned()
        .collect()
}

fn container(set: &Value) -> &Value {
    &set["spec"]["template"]["spec"]["containers"][0]
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_manifest_makes_apps_and_processes_and_diff_compares() {
    let api = Api::start(&[]);
    let job = apply(&api, MANIFEST).await;
    assert_eq!(job["state"], "COMPLETE", "{job}");
    let warnings = job["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{job}");
    let w = warnings[0]["detail"].as_str().unwrap();
    assert!(
        w.starts_with("back: routes: ignored"),
        "named, not dropped: {w}"
    );
    let front = app_named(&api, "front").await;
    let front_guid = front["guid"].as_str().unwrap().to_string();
    let procs = processes(&api, &front_guid).await;
    let summary: Vec<(&str, u64, u64, Option<&str>)> = procs
        .iter()
        .map(|p| {
            (
                p["type"].as_str().unwrap(),
                p["instances"].as_u64().unwrap(),
                p["memory_in_mb"].as_u64().unwrap(),
                p["command"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("web", 2, 256, None),
            ("worker", 3, 128, Some("sleep 1000"))
        ],
        "the worker is listed before any droplet: {procs:?}"
    );
    let (_, env) = api
        .get(&format!("/v3/apps/{front_guid}/environment_variables"))
        .await;
    assert_eq!(env["var"]["GREETING"], "hello", "{env}");
    let back = app_named(&api, "back").await;
    let back_procs = processes(&api, back["guid"].as_str().unwrap()).await;
    let hc = &back_procs[0]["health_check"];
    assert_eq!(
        (&hc["type"], &hc["data"]["endpoint"]),
        (&json!("http"), &json!("/up")),
        "{hc}"
    );

    // Applying again changes what it names and keeps the rest.
    let job = apply(&api, "applications: [{name: front, instances: 4}]").await;
    assert_eq!(job["state"], "COMPLETE", "{job}");
    let procs = processes(&api, &front_guid).await;
    assert_eq!(
        (&procs[0]["instances"], &procs[0]["memory_in_mb"]),
        (&json!(4), &json!(256))
    );
    assert_eq!(procs[1]["instances"], 3);

    // The diff: a changed instances value, the same memory (1024M against 1G: none), a new app.
    let diff_path = format!("/v3/spaces/{SPACE}/manifest_diff");
    let changed =
        "applications:\n- name: front\n  instances: 5\n  memory: 256M\n- name: newcomer\n";
    let (s, _, d) = post_yaml(&api, &diff_path, changed).await;
    assert_eq!(s, 200, "{d}");
    let ops = d["diff"].as_array().unwrap();
    assert!(
        ops.contains(
            &json!({"op": "replace", "path": "/applications/0/instances", "was": 4, "value": 5})
        ),
        "{d}"
    );
    assert!(
        !ops.iter().any(|o| o["path"] == "/applications/0/memory"),
        "{d}"
    );
    assert!(
        ops.iter()
            .any(|o| o["op"] == "add" && o["path"] == "/applications/1"),
        "{d}"
    );
    let (_, _, same) = post_yaml(
        &api,
        &diff_path,
        "applications: [{name: front, memory: 0.25G}]",
    )
    .await;
    assert_eq!(same["diff"], json!([]), "{same}");

    // Invalid manifests: CF's 422, nothing made.
    let apply_path = format!("/v3/spaces/{SPACE}/actions/apply_manifest");
    for bad in [
        "applications: [{name: x, instances: lots}]",
        "applications: [{instances: 1}]",
        "applications: [{name: x, processes: [{type: w}, {type: w}]}]",
        "{not yaml",
        "applications: [{name: x, memory: 1T}]",
    ] {
        let (s, _, e) = post_yaml(&api, &apply_path, bad).await;
        assert_eq!(
            (s, &e["errors"][0]["title"]),
            (422, &json!("CF-UnprocessableEntity")),
            "{bad}: {e}"
        );
    }
    let (_, v) = api.get("/v3/apps?names=x").await;
    assert_eq!(v["pagination"]["total_results"], 0, "{v}");
    let many: String = (0..1001).map(|i| format!("- name: a{i}\n")).collect();
    let (s, _, e) = post_yaml(&api, &apply_path, &format!("applications:\n{many}")).await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("at most 1000"),
        "{e}"
    );
    let big = format!(
        "applications:\n- name: big\n  env: {{A: \"{}\"}}\n",
        "x".repeat(2 << 20)
    );
    let (s, _, e) = post_yaml(&api, &apply_path, &big).await;
    assert_eq!(s, 413, "a manifest over 1 MiB: {e}");
    // The 413 closed its connection (the rest of the body unread): the same client's next
    // request gets an answer, not a broken pipe on a pooled connection.
    let (s, _, _) = post_yaml(&api, "/v3/spaces/nope/actions/apply_manifest", MANIFEST).await;
    assert_eq!(s, 404);

    // An app of that name in another space: the job fails, nothing of it applied.
    let (_, org) = api
        .post_json("/v3/organizations", &json!({"name": "o"}))
        .await;
    let rel = json!({"organization": {"data": {"guid": org["guid"]}}});
    let (_, space) = api
        .post_json("/v3/spaces", &json!({"name": "s", "relationships": rel}))
        .await;
    let rel = json!({"space": {"data": {"guid": space["guid"]}}});
    api.post_json(
        "/v3/apps",
        &json!({"name": "elsewhere", "relationships": rel}),
    )
    .await;
    let job = apply(
        &api,
        "applications: [{name: front, instances: 1}, {name: elsewhere}]",
    )
    .await;
    assert_eq!(job["state"], "FAILED", "{job}");
    assert_eq!(job["errors"][0]["title"], "CF-UnprocessableEntity", "{job}");
    assert!(
        job["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("elsewhere"),
        "{job}"
    );
    assert_eq!(
        processes(&api, &front_guid).await[0]["instances"],
        4,
        "one transaction"
    );
}

/// After a build: the manifest's worker runs with its own settings, and `PATCH` of the web
/// process's command and health check and of the worker's health check shows in the objects.
#[tokio::test(flavor = "multi_thread")]
async fn process_settings_reach_the_kubernetes_objects() {
    let api = Api::start(&[]);
    let (_, org) = api
        .post_json("/v3/organizations", &json!({"name": "acme"}))
        .await;
    let rel = json!({"organization": {"data": {"guid": org["guid"]}}});
    let (_, space) = api
        .post_json("/v3/spaces", &json!({"name": "prod", "relationships": rel}))
        .await;
    let space = space["guid"].as_str().unwrap();
    assert_eq!(apply_in(&api, space, MANIFEST).await["state"], "COMPLETE");
    let app = app_named(&api, "front").await["guid"]
        .as_str()
        .unwrap()
        .to_string();
    let pkg = api.package(&app).await;
    let files: &[F] = &[("index.html", b"<p>front</p>\n", 0o644)];
    let (s, v) = api.upload(&pkg, Some(zip_of(files)), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        api.wait_package(&pkg).await.state,
        dropship::cfapi::PackageState::Ready
    );
    let (_, b) = api.build(&pkg, None).await;
    let b = api
        .wait_build(b["guid"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(b.state, dropship::cfapi::BuildState::Staged, "{b:?}");
    let current = json!({"data": {"guid": b.droplet.as_ref().unwrap().guid}});
    let (s, _) = patch(
        &api,
        &format!("/v3/apps/{app}/relationships/current_droplet"),
        &current,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = api
        .post_json(&format!("/v3/apps/{app}/actions/start"), &json!({}))
        .await;
    assert_eq!(s, 200, "{v}");

    let sets = stateful_sets(&api, &app).await;
    assert_eq!(sets.len(), 2, "web and the manifest's worker: {sets:?}");
    let (web, worker) = (&sets[0], &sets[1]);
    assert_eq!(
        (&web["spec"]["replicas"], &worker["spec"]["replicas"]),
        (&json!(2), &json!(3))
    );
    assert_eq!(container(worker)["args"], json!(["sleep 1000"]), "{worker}");
    assert_eq!(container(worker)["resources"]["limits"]["memory"], "128M");
    assert!(
        container(worker)["livenessProbe"].is_null(),
        "process: no probes"
    );
    assert!(container(web)["args"].is_null(), "web runs the image's Cmd");
    let labels = &web["metadata"]["labels"];
    assert_eq!(
        (
            &labels["cloudfoundry.org/space_name"],
            &labels["cloudfoundry.org/org_name"]
        ),
        (&json!("prod"), &json!("acme")),
        "the app's space and org: {web}"
    );

    let web_patch = json!({
        "command": "./serve --fast",
        "health_check": {"type": "http", "data": {"endpoint": "/health", "timeout": 30, "invocation_timeout": 5}},
    });
    let (s, p) = patch(&api, &format!("/v3/processes/{app}"), &web_patch).await;
    assert_eq!(s, 200, "{p}");
    let (_, got) = api.get(&format!("/v3/processes/{app}")).await;
    assert_eq!(got["command"], "./serve --fast", "{got}");
    assert_eq!(
        got["health_check"],
        json!({"type": "http", "data": {"timeout": 30, "invocation_timeout": 5, "endpoint": "/health"}})
    );
    let (s, w) = patch(
        &api,
        &format!("/v3/apps/{app}/processes/worker"),
        &json!({"health_check": {"type": "port"}}),
    )
    .await;
    assert_eq!(
        (s, &w["health_check"]["type"]),
        (200, &json!("port")),
        "{w}"
    );

    let sets = stateful_sets(&api, &app).await;
    let (web, worker) = (container(&sets[0]), container(&sets[1]));
    assert_eq!(web["args"], json!(["./serve --fast"]), "{web}");
    let live = &web["livenessProbe"];
    assert_eq!(
        (&live["httpGet"]["path"], &live["timeoutSeconds"]),
        (&json!("/health"), &json!(5)),
        "{web}"
    );
    assert_eq!(
        web["startupProbe"]["failureThreshold"], 15,
        "30 s at 2 s a probe: {web}"
    );
    assert!(worker["livenessProbe"]["tcpSocket"].is_object(), "{worker}");

    // The app as a manifest: web's settings at the top, the worker in `processes`.
    let (s, _, yaml) = api.text(&format!("/v3/apps/{app}/manifest"), None).await;
    assert_eq!(s, 200, "{yaml}");
    let m: Value = serde_norway::from_str(&yaml).unwrap();
    let a = &m["applications"][0];
    assert_eq!(
        (
            &a["command"],
            &a["health-check-type"],
            &a["health-check-http-endpoint"],
            &a["timeout"]
        ),
        (
            &json!("./serve --fast"),
            &json!("http"),
            &json!("/health"),
            &json!(30)
        ),
        "{yaml}"
    );
    let w = &a["processes"][0];
    assert_eq!(
        (
            &w["type"],
            &w["instances"],
            &w["memory"],
            &w["command"],
            &w["health-check-type"]
        ),
        (
            &json!("worker"),
            &json!(3),
            &json!("128M"),
            &json!("sleep 1000"),
            &json!("port")
        ),
        "{yaml}"
    );

    for (bad, words) in [
        (
            json!({"health_check": {"type": "tcp"}}),
            "Health check type must be",
        ),
        (
            json!({"health_check": {"type": "port", "data": {"endpoint": "/x"}}}),
            "must be \"http\"",
        ),
        (
            json!({"health_check": {"data": {"timeout": 0}}}),
            "Timeout must be greater than or equal to 1",
        ),
        (
            json!({"health_check": {"type": "http", "data": {"endpoint": "no slash"}}}),
            "valid URI path",
        ),
        (json!({"command": ""}), "Command must be between 1 and"),
        (json!({"colour": "blue"}), "invalid request body"),
    ] {
        let (s, e) = patch(&api, &format!("/v3/processes/{app}"), &bad).await;
        assert_eq!(s, 422, "{bad}: {e}");
        assert!(
            e["errors"][0]["detail"].as_str().unwrap().contains(words),
            "{bad}: {e}"
        );
    }
    // null resets the command to the droplet's.
    let (_, p) = patch(
        &api,
        &format!("/v3/processes/{app}"),
        &json!({"command": null}),
    )
    .await;
    assert_ne!(p["command"], "./serve --fast", "{p}");
    assert!(container(&stateful_sets(&api, &app).await[0])["args"].is_null());
}
