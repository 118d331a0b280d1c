//! Discovery (`GET /`, `/v3`, `/v3/info`, `/v2/info` beside the registry's `/v2/`), the lists
//! of `dropship serve` as Cloud Foundry clients page them (`page`, `per_page`, `order_by`,
//! filters kept in the `pagination` links, CF's 400 for a bad parameter), and every
//! `links.*.href` of every resource the API returns resolves.

use crate::support::api::*;
use crate::support::client::Client;
use crate::support::{project_dir, InProcess};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Follows `next` from `path` to the end; the resources of every page, in order.
async fn walk_pages(api: &Api, path: &str) -> Vec<Value> {
    let (mut all, mut next) = (Vec::new(), Some(path.to_string()));
    while let Some(p) = next {
        let (s, v) = api.get(&p).await;
        assert_eq!(s, 200, "{p}: {v}");
        all.extend(v["resources"].as_array().unwrap().iter().cloned());
        next = v["pagination"]["next"]["href"]
            .as_str()
            .map(|h| h.strip_prefix(&api.svc.base()).unwrap().to_string());
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_page_order_and_filter_as_cf_does() {
    let api = Api::start(&[]);
    for name in ["cherry", "apple", "banana", "damson", "elder"] {
        api.app(name).await;
    }
    let (s, v) = api.get("/v3/apps?per_page=2&order_by=name").await;
    assert_eq!(s, 200, "{v}");
    let p = &v["pagination"];
    assert_eq!(
        (&p["total_results"], &p["total_pages"]),
        (&json!(5), &json!(3)),
        "{v}"
    );
    assert!(p["previous"].is_null(), "{v}");
    let names: Vec<String> = walk_pages(&api, "/v3/apps?per_page=2&order_by=-name")
        .await
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["elder", "damson", "cherry", "banana", "apple"]);
    let (_, v) = api.get("/v3/apps?names=apple,elder,nope&per_page=1").await;
    assert_eq!(v["pagination"]["total_results"], 2, "{v}");
    let next = v["pagination"]["next"]["href"].as_str().unwrap();
    assert!(
        next.contains("names=apple%2Celder%2Cnope"),
        "filters kept: {next}"
    );

    for (query, words) in [
        (
            "/v3/apps?per_page=5001",
            "Per page must be between 1 and 5000",
        ),
        ("/v3/builds?page=0", "Page must be a positive integer"),
        ("/v3/packages?order_by=size", "Order by can only be"),
        (
            "/v3/droplets?colour=red",
            "Unknown query parameter(s): 'colour'",
        ),
    ] {
        let (s, e) = api.get(query).await;
        assert_eq!(
            (s, e["errors"][0]["code"].as_u64()),
            (400, Some(10005)),
            "{query}: {e}"
        );
        assert_eq!(e["errors"][0]["title"], "CF-BadQueryParameter");
        assert!(
            e["errors"][0]["detail"].as_str().unwrap().contains(words),
            "{e}"
        );
    }
}

/// GETs every `href` under a `links` object of `v` (the ones a client GETs: no `method`, or
/// GET) that was not seen yet; returns them.
async fn resolve_links(api: &Api, v: &Value, seen: &mut BTreeSet<String>) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    collect_links(v, &mut found);
    let mut fetched = Vec::new();
    for href in found {
        if !seen.insert(href.clone()) {
            continue;
        }
        let path = href
            .strip_prefix(&api.svc.base())
            .unwrap_or_else(|| panic!("{href}"));
        let (s, _, body) = api.text(path, Some("application/json")).await;
        assert_eq!(s, 200, "{href} (linked) answers {s}: {body}");
        fetched.push((href, serde_json::from_str(&body).unwrap_or(Value::Null)));
    }
    fetched
}

fn collect_links(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(links)) = m.get("links") {
                for l in links.values() {
                    let get = l["method"].as_str().is_none_or(|m| m == "GET");
                    if let (Some(h), true) = (l["href"].as_str(), get) {
                        out.push(h.to_string());
                    }
                }
            }
            m.values().for_each(|x| collect_links(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_links(x, out)),
        _ => {}
    }
}

/// After a staged build: the app's packages, builds and droplets lists (filtered by state),
/// and every link of every resource, followed transitively, answers 200.
#[tokio::test(flavor = "multi_thread")]
async fn every_link_resolves_and_app_lists_hold_its_resources() {
    let api = Api::start(&[]);
    let (app, pkg) = api
        .ready_package("linked", &[("index.html", b"<h1>links</h1>\n", 0o644)])
        .await;
    let (_, b) = api.build(&pkg, None).await;
    let b = api
        .wait_build(b["guid"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(b.state, BuildState::Staged, "{b:?}");
    for (list, guid) in [("packages", &pkg), ("builds", &b.guid)] {
        let (s, v) = api.get(&format!("/v3/apps/{app}/{list}")).await;
        assert_eq!(
            (s, &v["resources"][0]["guid"]),
            (200, &json!(guid)),
            "{list}: {v}"
        );
    }
    let (_, v) = api
        .get(&format!("/v3/builds?app_guids={app}&states=FAILED"))
        .await;
    assert_eq!(v["pagination"]["total_results"], 0, "{v}");
    let (_, v) = api.get(&format!("/v3/droplets?app_guids={app}")).await;
    assert_eq!(v["pagination"]["total_results"], 1, "{v}");

    let mut seen = BTreeSet::new();
    let mut todo = vec![];
    // A space of its own with an app in it: walked too.
    let (_, org) = api
        .post_json("/v3/organizations", &json!({"name": "walked"}))
        .await;
    let rel = json!({"organization": {"data": {"guid": org["guid"]}}});
    let body = json!({"name": "walked-space", "relationships": rel});
    let (_, space) = api.post_json("/v3/spaces", &body).await;
    let rel = json!({"space": {"data": {"guid": space["guid"]}}});
    let (s, v) = api
        .post_json(
            "/v3/apps",
            &json!({"name": "elsewhere", "relationships": rel}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let starts = [
        "/v3/apps?include=space.organization",
        "/v3/packages",
        "/v3/builds",
        "/v3/droplets",
        "/v3/organizations",
        "/v3/spaces",
    ];
    for start in starts {
        let (_, v) = api.get(start).await;
        todo.push(v);
    }
    while let Some(v) = todo.pop() {
        for (_, body) in resolve_links(&api, &v, &mut seen).await {
            todo.push(body);
        }
    }
    for must in [
        "/processes",
        "/packages",
        "/builds",
        "/droplets",
        "/environment_variables",
    ] {
        assert!(
            seen.iter()
                .any(|h| h.ends_with(&format!("/v3/apps/{app}{must}"))),
            "the app links {must}: {seen:?}"
        );
    }
    let space_link = format!("/v3/spaces/{}", space["guid"].as_str().unwrap());
    assert!(seen.iter().any(|h| h.ends_with(&space_link)), "{seen:?}");
    assert!(seen.len() >= 12, "{seen:?}");
}

/// In process: the root links (v3 with its version, null for what is not offered), `/v3`'s
/// links all answer, `/v3/info`, and `/v2/info` in CF's shape on the listener whose `/v2/` is
/// the registry.
#[tokio::test(flavor = "multi_thread")]
async fn discovery_from_the_root_and_v2_is_the_registry() {
    let api = InProcess::start("").await;
    let (s, root) = api.get("/").await;
    assert_eq!(s, 200, "{root}");
    let v3 = &root["links"]["cloud_controller_v3"];
    let version = v3["meta"]["version"].as_str().unwrap();
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
    assert!(parts[0] == 3 && parts[1] >= 160, "{version}");
    for absent in ["cloud_controller_v2", "routing"] {
        assert!(root["links"][absent].is_null(), "{absent}: {root}");
    }
    let path = |href: &Value| {
        let h = href["href"].as_str().unwrap();
        let rest = h.splitn(4, '/').nth(3).unwrap_or("");
        format!("/{rest}")
    };
    assert_eq!(path(v3), "/v3");
    let (s, v) = api.get("/v3").await;
    assert_eq!(s, 200, "{v}");
    for (name, link) in v["links"].as_object().unwrap() {
        if name == "resource_matches" {
            continue; // POST only
        }
        let (s, body) = api.get(&path(link)).await;
        assert_eq!(s, 200, "/v3 links {name}: {body}");
    }
    let (s, info) = api.get("/v3/info").await;
    assert_eq!(
        (s, info["name"].as_str()),
        (200, Some("dropship")),
        "{info}"
    );
    let (s, e) = api.get("/v2/info").await;
    assert_eq!(
        (s, e["errors"][0]["title"].as_str()),
        (404, Some("CF-NotFound")),
        "{e}"
    );
    assert!(
        e["errors"][0]["detail"].as_str().unwrap().contains("v3"),
        "{e}"
    );
    let (s, _) = api.get("/v2/").await;
    assert_eq!(s, 200, "the registry's base endpoint");
}

/// In process: the admin buildpacks in the `order` file's order, as positions; by name; by GUID.
#[tokio::test(flavor = "multi_thread")]
async fn buildpacks_are_listed_in_detection_order() {
    let api = InProcess::start("").await;
    let order = std::fs::read_to_string(project_dir().join("buildpacks/order")).unwrap();
    let want: Vec<&str> = order
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect();
    let (s, v) = api.get("/v3/buildpacks?order_by=position").await;
    assert_eq!(s, 200, "{v}");
    let got: Vec<(&str, u64)> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["position"].as_u64().unwrap()))
        .collect();
    let expected: Vec<(&str, u64)> = want.iter().zip(1..).map(|(n, p)| (*n, p)).collect();
    assert_eq!(got, expected, "{v}");
    let (_, one) = api.get("/v3/buildpacks?names=binary").await;
    assert_eq!(one["pagination"]["total_results"], 1, "{one}");
    let guid = one["resources"][0]["guid"].as_str().unwrap();
    let (s, b) = api.get(&format!("/v3/buildpacks/{guid}")).await;
    assert_eq!((s, &b["name"]), (200, &json!("binary")), "{b}");
    assert_eq!(api.get("/v3/buildpacks/nope").await.0, 404);
}

/// In process: the one org and space, found by name as a client targets them, and linked from
/// each other and from the apps.
#[tokio::test(flavor = "multi_thread")]
async fn one_org_and_one_space_hold_every_app() {
    let api = InProcess::start("").await;
    let app = api.app("spaced").await;
    let (_, orgs) = api.get("/v3/organizations?names=dropship").await;
    assert_eq!(orgs["pagination"]["total_results"], 1, "{orgs}");
    let org = orgs["resources"][0]["guid"].as_str().unwrap().to_string();
    let (_, spaces) = api
        .get(&format!(
            "/v3/spaces?names=dropship&organization_guids={org}"
        ))
        .await;
    assert_eq!(spaces["pagination"]["total_results"], 1, "{spaces}");
    let space = spaces["resources"][0]["guid"].as_str().unwrap().to_string();
    let (_, none) = api.get("/v3/spaces?names=other").await;
    assert_eq!(none["pagination"]["total_results"], 0, "{none}");
    let (_, a) = api.get(&format!("/v3/apps/{app}")).await;
    assert_eq!(a["relationships"]["space"]["data"]["guid"], json!(space));
    let (_, listed) = api.get(&format!("/v3/apps?space_guids={space}")).await;
    assert_eq!(listed["pagination"]["total_results"], 1, "{listed}");
    let (_, elsewhere) = api.get("/v3/apps?space_guids=another-space").await;
    assert_eq!(elsewhere["pagination"]["total_results"], 0, "{elsewhere}");
    assert_eq!(api.get(&format!("/v3/spaces/{space}")).await.0, 200);
    assert_eq!(api.get(&format!("/v3/organizations/{org}")).await.0, 200);
    assert_eq!(api.get("/v3/spaces/nope").await.0, 404);
    let (s, v) = api.get("/v3/apps?include=space.organization").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["included"]["spaces"][0]["guid"], json!(space), "{v}");
    assert_eq!(v["included"]["organizations"][0]["guid"], json!(org), "{v}");
    let (s, e) = api.get("/v3/apps?include=routes").await;
    assert_eq!(
        (s, e["errors"][0]["code"].as_u64()),
        (400, Some(10005)),
        "{e}"
    );
}

/// In process: the configured stacks (the default one marked), by name and GUID.
#[tokio::test(flavor = "multi_thread")]
async fn stacks_are_listed_with_the_default_marked() {
    let api = InProcess::start("").await;
    let (s, v) = api.get("/v3/stacks").await;
    assert_eq!(s, 200, "{v}");
    let stacks = v["resources"].as_array().unwrap();
    assert_eq!(stacks.len(), 1, "the zero-configuration stack: {v}");
    let st = &stacks[0];
    assert_eq!(
        (&st["name"], &st["default"]),
        (&json!("busybox"), &json!(true)),
        "{v}"
    );
    let (_, by_name) = api.get("/v3/stacks?names=busybox&default=true").await;
    assert_eq!(by_name["pagination"]["total_results"], 1, "{by_name}");
    let (s, one) = api
        .get(&format!("/v3/stacks/{}", st["guid"].as_str().unwrap()))
        .await;
    assert_eq!((s, &one["name"]), (200, &json!("busybox")), "{one}");
    assert_eq!(api.get("/v3/stacks/nope").await.0, 404);
}

/// In process: `GET /v3/apps/:guid/env` holds the app's variables and CF's VCAP_APPLICATION.
#[tokio::test(flavor = "multi_thread")]
async fn the_env_endpoint_holds_vcap_application() {
    let api = InProcess::start("").await;
    let body = json!({"name": "envy", "environment_variables": {"GREETING": "hi"}});
    let (s, app) = api.post_json("/v3/apps", &body).await;
    assert_eq!(s, 201, "{app}");
    let guid = app["guid"].as_str().unwrap();
    let (s, env) = api.get(&format!("/v3/apps/{guid}/env")).await;
    assert_eq!(s, 200, "{env}");
    assert_eq!(env["environment_variables"]["GREETING"], "hi");
    let vcap = &env["application_env_json"]["VCAP_APPLICATION"];
    assert_eq!(
        (&vcap["application_id"], &vcap["name"]),
        (&json!(guid), &json!("envy"))
    );
    assert_eq!(vcap["limits"]["mem"], 1024, "{env}");
    assert_eq!(api.get("/v3/apps/nope/env").await.0, 404);
}
