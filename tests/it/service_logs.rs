//! What dropship says about itself: `serve --log-format json` writes one JSON object per line
//! (a line per request, the build's events in a span with its guid) and never a token or a
//! password; API errors made by the router (404, 405, rejections) have CF's shape; `serve` on a
//! taken port names the address and writes nothing; `build -q` prints only the result.

use crate::support::api::*;
use crate::support::*;
use axum::http::Method;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "secret-token-XYZ";
const PASSWORD: &str = "pa55-w0rd-in-the-logs-test";

/// Every line of the service's output, each parsed as a JSON object.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

fn events_of<'a>(lines: &'a [Value], build: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| l["span"]["name"] == "build" && l["span"]["guid"] == build)
        .filter_map(|l| l["message"].as_str())
        .collect()
}

fn request<'a>(lines: &'a [Value], method: &str, path: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l["message"] == "request" && l["method"] == method && l["path"] == path)
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_have_requests_and_build_events_and_no_secrets() {
    let reg = Registry::start();
    let conf = tempdir();
    let file = conf.path().join("dropship.toml");
    let toml = format!(
        "log_level = \"debug\"\n[registry]\nprefix = \"{}/pushed\"\n\
         username = \"builder\"\npassword = \"{PASSWORD}\"\n",
        reg.host()
    );
    std::fs::write(&file, toml).unwrap();
    let mut api = Api::start(&[
        "--log-format",
        "json",
        "--token",
        TOKEN,
        "--config",
        file.to_str().unwrap(),
    ]);
    api.token = Some(TOKEN.into());

    let (_, pkg) = api
        .ready_package("logged-site", &[("index.html", b"<p>logged</p>\n", 0o644)])
        .await;
    let (s, b) = api.build(&pkg, None).await;
    assert_eq!(s, 201, "{b}");
    let staged = b["guid"].as_str().unwrap().to_string();
    let b = api.wait_build(&staged, Duration::from_secs(120)).await;
    assert_eq!(b.state, BuildState::Staged, "{b:?}\n{}", api.svc.log());

    let (_, pkg) = api
        .ready_package(
            "logged-mystery",
            &[("README.txt", b"nothing to run\n", 0o644)],
        )
        .await;
    let (_, b) = api.build(&pkg, None).await;
    let failed = b["guid"].as_str().unwrap().to_string();
    let b = api.wait_build(&failed, Duration::from_secs(120)).await;
    assert_eq!(b.state, BuildState::Failed, "{b:?}");

    // A query string is never logged, a Basic password neither.
    let (s, _) = api.get("/v3/apps?names=query-value-kept-out").await;
    assert_eq!(s, 200);
    let r = api
        .http
        .get(api.svc.url("/v2/"))
        .basic_auth("u", Some(TOKEN));
    assert_eq!(r.send().await.unwrap().status().as_u16(), 200);
    assert_eq!(api.get("/v3/nowhere").await.0, 404);

    let log = api.svc.log();
    let lines = json_lines(&log);
    for secret in [TOKEN, PASSWORD, "query-value-kept-out"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    let start = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("listening on")
        })
        .unwrap_or_else(|| panic!("no start-up line:\n{log}"));
    for field in ["listen", "data_dir", "stacks", "sandbox", "concurrency"] {
        assert!(!start[field].is_null(), "{field} missing: {start}");
    }

    let post = request(&lines, "POST", "/v3/builds").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(post["status"], 201, "{post}");
    assert!(post["duration_ms"].is_u64(), "{post}");
    assert_eq!(request(&lines, "GET", "/v3/apps").unwrap()["status"], 200);
    assert_eq!(request(&lines, "GET", "/v2/").unwrap()["status"], 200);
    assert_eq!(
        request(&lines, "GET", "/v3/nowhere").unwrap()["status"],
        404
    );
    assert!(
        lines
            .iter()
            .all(|l| !l["path"].as_str().unwrap_or("").contains('?')),
        "{log}"
    );

    let events = events_of(&lines, &staged);
    for e in [
        "build queued",
        "staging started",
        "image pushed",
        "build staged",
    ] {
        assert!(
            events.contains(&e),
            "{e} missing for {staged}: {events:?}\n{log}"
        );
    }
    let pushed = lines
        .iter()
        .find(|l| l["span"]["guid"] == staged.as_str() && l["message"] == "image pushed")
        .unwrap();
    assert!(
        pushed["digest"].as_str().unwrap().starts_with("sha256:"),
        "{pushed}"
    );
    let events = events_of(&lines, &failed);
    assert!(
        events.contains(&"build queued") && events.contains(&"build failed"),
        "{events:?}"
    );
    let failure = lines
        .iter()
        .find(|l| l["span"]["guid"] == failed.as_str() && l["message"] == "build failed")
        .unwrap();
    assert!(
        failure["error"]
            .as_str()
            .unwrap()
            .starts_with("NoAppDetectedError"),
        "{failure}"
    );
}

/// In process: the router's answers need no socket.
#[tokio::test(flavor = "multi_thread")]
async fn router_errors_have_cf_shape() {
    let api = InProcess::start("").await;
    let cf = |v: &Value, code: u64, title: &str| {
        let e = &v["errors"][0];
        assert_eq!(
            (e["code"].as_u64(), e["title"].as_str()),
            (Some(code), Some(title)),
            "{v}"
        );
        assert!(!e["detail"].as_str().unwrap().is_empty(), "{v}");
    };
    for path in ["/v3/builds/some-guid", "/v3/packages/some-guid"] {
        let r = api.call(Method::DELETE, path, None, []).await;
        assert_eq!(r.status, 405, "{path}");
        cf(&r.json(), 10000, "CF-MethodNotAllowed");
    }
    let r = api.call(Method::PUT, "/v3/apps/some-guid", None, []).await;
    assert_eq!(r.status, 405);
    assert!(r.headers.contains_key("allow"));
    cf(&r.json(), 10000, "CF-MethodNotAllowed");

    let (s, v) = api.get("/v3/no-such-thing").await;
    assert_eq!(s, 404);
    cf(&v, 10000, "CF-NotFound");
    assert_eq!(v["errors"][0]["detail"], "Unknown request");
    // A query the extractor rejects.
    let (s, v) = api.get("/v3/builds/x/logs?follow=maybe").await;
    assert_eq!(s, 400, "{v}");
    cf(&v, 1001, "CF-MessageParseError");
    // A body that is not JSON.
    let r = api
        .call(
            Method::POST,
            "/v3/apps",
            Some("application/json"),
            "{not json",
        )
        .await;
    assert_eq!(r.status / 100, 4);
    let v = r.json();
    assert!(
        v["errors"][0]["title"].as_str().unwrap().starts_with("CF-"),
        "{v}"
    );
    // The registry endpoint answers in the distribution spec's shape.
    let r = api
        .call(
            Method::PUT,
            "/v2/apps/x/manifests/latest",
            Some("application/json"),
            json!({}).to_string(),
        )
        .await;
    assert_eq!(r.status, 405);
    let v = r.json();
    assert_eq!(v["errors"][0]["code"], "UNSUPPORTED", "{v}");
}

#[test]
fn serve_on_a_taken_port_names_it_and_writes_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let tmp = tempdir();
    let data = tmp.path().join("data");
    let o = std::process::Command::new(bin())
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr}: Address already in use")),
        "{err}"
    );
    assert!(!data.exists(), "the data dir was touched");
    // With a JSON log, the error is a JSON line too.
    let o = std::process::Command::new(bin())
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            &addr,
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let last: Value = serde_json::from_str(err.lines().last().unwrap()).expect("a JSON line");
    assert_eq!(last["level"], "ERROR", "{err}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("cannot listen on"),
        "{err}"
    );
    assert!(!data.exists(), "the data dir was touched");
}

#[test]
fn quiet_builds_print_only_the_result_or_the_error() {
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("oci:{}:busybox", tmp.path().join("stack").display()),
    );
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "hi\n").unwrap();
    let target = format!("oci:{}:app", tmp.path().join("out").display());
    let args = [
        "-q",
        "build",
        site.to_str().unwrap(),
        "--stack",
        &stack,
        "--image",
        &target,
    ];
    let o = dropship(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stderr.is_empty(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("@sha256:"), "{out}");

    std::fs::remove_file(site.join("index.html")).unwrap();
    std::fs::write(site.join("README.txt"), "nothing to run\n").unwrap();
    let o = dropship(&[&args[1..], &["--quiet"]].concat());
    assert_eq!(o.status.code(), Some(222), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("dropship: build failed: "), "{err}");
}
