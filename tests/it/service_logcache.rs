//! The log-cache-compatible API (`/api/v1/info`, `/api/v1/read/:app`): after a build, the
//! app's staging lines come back as STG envelopes with base64 payloads, in order, filtered by
//! `start_time`, bounded by `limit`; the root links to it.

use crate::support::api::*;
use crate::support::client::Client;
use base64::Engine as _;
use serde_json::Value;
use std::time::Duration;

fn lines_of(v: &Value) -> Vec<(u64, String)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    v["envelopes"]["batch"]
        .as_array()
        .unwrap_or_else(|| panic!("no batch: {v}"))
        .iter()
        .map(|e| {
            assert_eq!(e["tags"]["source_type"], "STG", "{e}");
            let payload = b64.decode(e["log"]["payload"].as_str().unwrap()).unwrap();
            let ts = e["timestamp"].as_str().unwrap().parse::<u64>().unwrap();
            (ts, String::from_utf8(payload).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn staging_lines_are_log_cache_envelopes() {
    let api = Api::start(&[]);
    let (s, root) = api.get("/").await;
    assert_eq!(s, 200);
    let lc = root["links"]["log_cache"]["href"].as_str().unwrap();
    assert_eq!(lc, api.svc.base(), "{root}");
    let (s, info) = api.get("/api/v1/info").await;
    assert_eq!(s, 200);
    assert!(
        info["version"].as_str().unwrap().starts_with("2."),
        "{info}"
    );

    let (app, pkg) = api
        .ready_package("logcached", &[("index.html", b"<p>hi</p>\n", 0o644)])
        .await;
    let (empty_s, empty) = api.get(&format!("/api/v1/read/{app}")).await;
    assert_eq!(empty_s, 200);
    assert_eq!(lines_of(&empty).len(), 0, "no build yet: {empty}");
    let (_, b) = api.build(&pkg, None).await;
    let build = b["guid"].as_str().unwrap().to_string();
    let b = api.wait_build(&build, Duration::from_secs(120)).await;
    assert_eq!(b.state, dropship::cfapi::BuildState::Staged, "{b:?}");

    let (log, _, text) = api.text(&format!("/v3/builds/{build}/logs"), None).await;
    assert_eq!(log, 200);
    let want: Vec<&str> = text.lines().collect();
    assert!(want.len() > 3, "{text}");
    let read = format!("/api/v1/read/{app}?envelope_types=LOG&limit=1000");
    let (s, v) = api.get(&read).await;
    assert_eq!(s, 200, "{v}");
    let got = lines_of(&v);
    let texts: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(texts, want, "the staging log, line by line");
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "strictly ascending times: a client asking from the last one + 1 misses nothing"
    );
    assert_eq!(v["envelopes"]["batch"][0]["source_id"], app.as_str());

    // limit bounds, from the oldest; descending gives the newest first.
    let (_, v) = api.get(&format!("/api/v1/read/{app}?limit=2")).await;
    assert_eq!(lines_of(&v), got[..2].to_vec());
    let (_, v) = api
        .get(&format!("/api/v1/read/{app}?limit=2&descending=true"))
        .await;
    let newest: Vec<_> = got.iter().rev().take(2).cloned().collect();
    assert_eq!(lines_of(&v), newest);
    // start_time is inclusive: from the last line's time, only lines that late.
    let last = got.last().unwrap().0;
    let (_, v) = api
        .get(&format!("/api/v1/read/{app}?start_time={last}"))
        .await;
    let later = lines_of(&v);
    assert!(!later.is_empty() && later.len() < got.len(), "{v}");
    assert!(later.iter().all(|(t, _)| *t >= last));
    let (_, v) = api
        .get(&format!("/api/v1/read/{app}?start_time={}", last + 1))
        .await;
    assert!(lines_of(&v).is_empty(), "{v}");
    // Other envelope types: none. Out of bounds limits: 400.
    let (_, v) = api
        .get(&format!("/api/v1/read/{app}?envelope_types=GAUGE"))
        .await;
    assert!(lines_of(&v).is_empty(), "{v}");
    for bad in ["limit=0", "limit=1001", "start_time=soon"] {
        let (s, e) = api.get(&format!("/api/v1/read/{app}?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
    // Another app's source has nothing.
    let other = api.app("quiet").await;
    let (_, v) = api.get(&format!("/api/v1/read/{other}")).await;
    assert!(lines_of(&v).is_empty(), "{v}");
}

/// In process: the log cache is guarded by the tokens as the rest of the API is.
#[tokio::test(flavor = "multi_thread")]
async fn the_log_cache_wants_the_token() {
    let mut api = crate::support::InProcess::start("tokens = [\"lc-token\"]\n").await;
    for path in ["/api/v1/info", "/api/v1/read/some-app"] {
        let (s, e) = api.get(path).await;
        assert_eq!(
            (s, &e["errors"][0]["code"]),
            (401, &serde_json::json!(10002)),
            "{path}: {e}"
        );
    }
    api.token = Some("lc-token".into());
    let (s, v) = api.get("/api/v1/read/some-app").await;
    assert_eq!(
        (s, &v["envelopes"]["batch"]),
        (200, &serde_json::json!([])),
        "{v}"
    );
}
