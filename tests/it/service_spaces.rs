//! Organizations and spaces through the API: made, listed, filtered and paged; CF's 422 for
//! duplicate names and unknown orgs or spaces; apps made in a space of their own, listed by
//! space and org, with `include`, and `VCAP_APPLICATION` naming their space and org.

use crate::support::client::Client;
use crate::support::InProcess;
use serde_json::json;

/// In process: organizations and spaces made, listed, filtered and paged; CF's 422 for a
/// duplicate name or an unknown org or space; an app made in a new space is listed there.
#[tokio::test(flavor = "multi_thread")]
async fn orgs_and_spaces_are_made_and_hold_apps() {
    let api = InProcess::start("").await;
    let (s, org) = api
        .post_json("/v3/organizations", &json!({"name": "acme"}))
        .await;
    assert_eq!(s, 201, "{org}");
    let org = org["guid"].as_str().unwrap().to_string();
    let (s, e) = api
        .post_json("/v3/organizations", &json!({"name": "acme"}))
        .await;
    assert_eq!(
        (s, &e["errors"][0]["title"]),
        (422, &json!("CF-UnprocessableEntity")),
        "{e}"
    );
    assert_eq!(
        e["errors"][0]["detail"], "Organization 'acme' already exists.",
        "{e}"
    );
    let space_body = |name: &str, org: &str| json!({"name": name, "relationships": {"organization": {"data": {"guid": org}}}});
    let mut spaces = Vec::new();
    for name in ["prod", "staging", "dev"] {
        let (s, v) = api.post_json("/v3/spaces", &space_body(name, &org)).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(
            v["relationships"]["organization"]["data"]["guid"],
            json!(org)
        );
        spaces.push(v["guid"].as_str().unwrap().to_string());
    }
    let (s, e) = api.post_json("/v3/spaces", &space_body("prod", &org)).await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(
        e["errors"][0]["detail"],
        "Name must be unique per organization"
    );
    // The same name in another org is fine; an unknown org is not.
    let (s, _) = api
        .post_json(
            "/v3/spaces",
            &space_body("prod", "00000000-0000-4000-8000-000000000002"),
        )
        .await;
    assert_eq!(s, 201);
    let (s, e) = api
        .post_json("/v3/spaces", &space_body("x", "no-such-org"))
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(e["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .starts_with("Invalid organization"));
    let (s, e) = api
        .post_json("/v3/spaces", &json!({"name": "orphan"}))
        .await;
    assert_eq!(s, 422, "{e}");

    let (_, v) = api
        .get(&format!(
            "/v3/spaces?organization_guids={org}&order_by=name&per_page=2"
        ))
        .await;
    assert_eq!(v["pagination"]["total_results"], 3, "{v}");
    let names: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "prod"], "{v}");
    assert!(v["pagination"]["next"]["href"].as_str().is_some(), "{v}");
    let (_, v) = api.get("/v3/spaces?names=prod").await;
    assert_eq!(v["pagination"]["total_results"], 2, "{v}");
    let (_, v) = api.get("/v3/organizations?names=acme,dropship").await;
    assert_eq!(v["pagination"]["total_results"], 2, "{v}");

    let in_space = |space: &str| json!({"name": "in-prod", "relationships": {"space": {"data": {"guid": space}}}});
    let (s, e) = api.post_json("/v3/apps", &in_space("no-such-space")).await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid space"),
        "{e}"
    );
    let (s, a) = api.post_json("/v3/apps", &in_space(&spaces[0])).await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(
        a["relationships"]["space"]["data"]["guid"],
        json!(spaces[0])
    );
    api.app("in-default").await;
    let (_, v) = api
        .get(&format!("/v3/apps?space_guids={}", spaces[0]))
        .await;
    assert_eq!(v["pagination"]["total_results"], 1, "{v}");
    assert_eq!(v["resources"][0]["name"], "in-prod");
    let (_, v) = api
        .get(&format!(
            "/v3/apps?organization_guids={org}&include=space.organization"
        ))
        .await;
    assert_eq!(v["pagination"]["total_results"], 1, "{v}");
    assert_eq!(v["included"]["spaces"][0]["name"], "prod", "{v}");
    assert_eq!(v["included"]["organizations"][0]["name"], "acme", "{v}");
    let (_, env) = api
        .get(&format!("/v3/apps/{}/env", a["guid"].as_str().unwrap()))
        .await;
    let vcap = &env["application_env_json"]["VCAP_APPLICATION"];
    assert_eq!(
        (&vcap["space_name"], &vcap["organization_name"]),
        (&json!("prod"), &json!("acme")),
        "{env}"
    );
}
