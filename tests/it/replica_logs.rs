//! Staging logs on every replica: two `dropship serve` processes on one data dir (SQLite in WAL
//! mode, standing in for the shared PostgreSQL). A slow build staged by replica A is followed
//! on replica B (plain and Server-Sent Events), live, every line once and in order, to its
//! end; B's log cache gives the lines with the times they were written. B reads nothing of A's
//! disk: A's log files are unlinked as soon as the build exists (A goes on writing them
//! through its open handles), as if B ran on another machine. A's kill -9 and restart in the
//! middle: B's follower goes on, through the retry, to the end.

use crate::support::api::*;
use crate::support::*;
use base64::Engine as _;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const FINALIZE: &str = "echo first-line; sleep 2; for i in 1 2 3 4 5; do echo line-$i; done; \
                        sleep 2; echo last-line";

/// Buildpack `slow` in `dir`, its finalize `finalize`.
fn slow_buildpack(dir: &Path, finalize: &str) {
    let bin = dir.join("slow").join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let release = "printf -- '---\\ndefault_process_types:\\n  web: sleep 1000\\n'";
    for (script, body) in [
        ("detect", "echo slow"),
        ("finalize", finalize),
        ("release", release),
    ] {
        let p = bin.join(script);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Follows `path` on `api` to the end of the answer: its text, and whether the build was still
/// STAGING when its first line arrived.
async fn follow(api: &Api, build: &str, path: &str, accept: Option<&str>) -> (String, bool) {
    let mut r = api.http.get(api.svc.url(path));
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    let mut r = r.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut seen = String::new();
    let mut live = None;
    let next = Duration::from_secs(120);
    while let Some(chunk) = tokio::time::timeout(next, r.chunk())
        .await
        .expect("stalled")
        .unwrap()
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if live.is_none() && seen.contains("first-line") {
            let (_, now) = api.get(&format!("/v3/builds/{build}")).await;
            live = Some(now["state"] == "STAGING");
        }
    }
    (seen, live == Some(true))
}

/// The log cache's lines: (time, text).
fn envelopes(v: &Value) -> Vec<(u64, String)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let batch = v["envelopes"]["batch"].as_array();
    batch
        .unwrap_or_else(|| panic!("no batch: {v}"))
        .iter()
        .map(|e| {
            let payload = b64.decode(e["log"]["payload"].as_str().unwrap()).unwrap();
            let ts = e["timestamp"].as_str().unwrap().parse().unwrap();
            (ts, String::from_utf8(payload).unwrap())
        })
        .collect()
}

/// Where `needle` is in `text` (panics if it is not there exactly once).
fn once(text: &str, needle: &str) -> usize {
    assert_eq!(
        text.matches(needle).count(),
        1,
        "{needle:?} once in:\n{text}"
    );
    text.find(needle).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_staged_on_one_replica_is_followed_live_on_another() {
    let bps = tempdir();
    slow_buildpack(bps.path(), FINALIZE);
    let args = ["--buildpacks-dir", bps.path().to_str().unwrap()];
    let a = Api::start(&args);
    // B starts before any build runs: a replica starting takes the STAGING builds it finds
    // for interrupted ones (until builds are claimed through the queue).
    let b = Api::on(Service::start_on(tempdir(), a.svc.data_dir(), &args));
    let (app, pkg) = a
        .ready_package("replicated", &[("a.txt", b"a", 0o644)])
        .await;
    let (s, v) = a.build(&pkg, None).await;
    assert_eq!(s, 201, "{v}");
    let build = v["guid"].as_str().unwrap().to_string();
    let files = a.svc.data_dir().join("logs");

    let path = format!("/v3/builds/{build}/logs?follow=true");
    let sse = Some("text/event-stream");
    let ((plain, plain_live), (events, sse_live)) = tokio::join!(
        follow(&b, &build, &path, None),
        follow(&b, &build, &path, sse)
    );
    assert!(plain_live && sse_live, "lines came after the build ended");
    let order = ["first-line", "line-1", "line-3", "line-5", "last-line"];
    let at: Vec<usize> = order.iter().map(|l| once(&plain, l)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "out of order:\n{plain}");
    assert!(
        plain.trim_end().ends_with("==> end of staging log: STAGED"),
        "{plain}"
    );
    for l in order {
        once(&events, &format!("data: {l}\n\n"));
    }
    assert!(events.ends_with("event: end\ndata: end\n\n"), "{events}");
    once(&events, "event: end");
    let done = b.wait_build(&build, Duration::from_secs(60)).await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", a.svc.log());

    // The staging replica's own files gone: the whole log is the same read on either replica,
    // and the same as followed (nothing is read from a file).
    for ext in ["log", "stamps"] {
        let _ = std::fs::remove_file(files.join(format!("{build}.{ext}")));
    }
    let whole = format!("/v3/builds/{build}/logs");
    let (_, _, on_a) = a.text(&whole, None).await;
    let (_, _, on_b) = b.text(&whole, None).await;
    assert_eq!(on_b, plain);
    assert_eq!(on_a, on_b);

    // B's log cache: the lines, with the times they were written.
    let (s, v) = b.get(&format!("/api/v1/read/{app}?limit=1000")).await;
    assert_eq!(s, 200, "{v}");
    let lines = envelopes(&v);
    let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(texts, plain.lines().collect::<Vec<_>>());
    assert!(lines.windows(2).all(|w| w[0].0 < w[1].0), "times ascend");
    let time = |text: &str| lines.iter().find(|(_, l)| l == text).unwrap().0;
    let apart = time("last-line") - time("first-line");
    assert!(
        apart >= 3_500_000_000,
        "two sleeps of 2 s apart: {apart} ns"
    );
    assert!(!files.join(format!("{build}.log")).exists());
}

/// The whole answer at `url` (a follower that outlives the replica staging the build).
async fn read_all(http: reqwest::Client, url: String) -> String {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = tokio::time::timeout(Duration::from_secs(120), r.text());
    body.await.expect("the follower stalled").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_on_another_replica_goes_on_through_a_restart_and_the_retry() {
    let bps = tempdir();
    slow_buildpack(bps.path(), "echo going-to-sleep; sleep 3.021; echo woke-up");
    let args = ["--buildpacks-dir", bps.path().to_str().unwrap()];
    let mut a = Api::start(&args);
    let b = Api::on(Service::start_on(tempdir(), a.svc.data_dir(), &args));
    let (_, pkg) = a.ready_package("retried", &[("a.txt", b"a", 0o644)]).await;
    let (_, v) = a.build(&pkg, None).await;
    let build = v["guid"].as_str().unwrap().to_string();
    let url = b.svc.url(&format!("/v3/builds/{build}/logs?follow=true"));
    let follower = tokio::spawn(read_all(b.http.clone(), url));
    // Once B has the first attempt's line, A dies mid-staging and starts again.
    let whole = format!("/v3/builds/{build}/logs");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !b.text(&whole, None).await.2.contains("going-to-sleep") {
        assert!(std::time::Instant::now() < deadline, "{}", a.svc.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::task::block_in_place(|| a.svc.kill9_and_restart());

    let log = follower.await.unwrap();
    assert_eq!(log.matches("going-to-sleep").count(), 2, "{log}");
    assert_eq!(log.matches("woke-up").count(), 1, "{log}");
    let retry = once(&log, "staging it (attempt 2 of 3)");
    assert!(retry < log.rfind("going-to-sleep").unwrap(), "{log}");
    assert!(
        log.trim_end().ends_with("==> end of staging log: STAGED"),
        "{log}"
    );
    let done = b.wait_build(&build, Duration::from_secs(60)).await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}");
}
