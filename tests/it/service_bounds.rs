//! `dropship serve` under hostile input, over HTTP: bodies that would take memory (a 60 MiB
//! resource match, over-size JSON), logs that would take disk and memory (capped, streamed),
//! a buildpack printing the old end-of-log line, headers sent slowly, invalid names and
//! environment variables, a full disk (507), a zip of 99,000 long names.

use crate::support::api::*;
use crate::support::bounds::*;
use crate::support::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// A service whose only buildpack runs `finalize`, started with `args`.
fn with_buildpack(finalize: &str, args: &[&str]) -> (Api, tempfile::TempDir) {
    let bps = tempdir();
    buildpack(bps.path(), "noisy", finalize);
    let mut all = vec!["--buildpacks-dir", bps.path().to_str().unwrap()];
    all.extend_from_slice(args);
    (Api::start(&all), bps)
}

async fn start_build(api: &Api, name: &str) -> String {
    let (_, pkg) = api.ready_package(name, &[("a.txt", b"a", 0o644)]).await;
    let (s, b) = api.build(&pkg, None).await;
    assert_eq!(s, 201, "{b}");
    b["guid"].as_str().unwrap().to_string()
}

/// GETs `path`, counting the bytes as they come; keeps only the last `keep` of them.
async fn drain(api: &Api, path: &str, accept: Option<&str>, keep: usize) -> (u64, String) {
    let mut req = api.http.get(api.svc.url(path));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let mut r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (mut n, mut tail) = (0u64, Vec::new());
    while let Some(c) = r.chunk().await.unwrap() {
        n += c.len() as u64;
        tail.extend_from_slice(&c);
        if tail.len() > 2 * keep {
            tail.drain(..tail.len() - keep);
        }
    }
    (n, String::from_utf8_lossy(&tail).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_60_mib_resource_match_streams_and_json_bodies_are_capped() {
    let api = Api::start(&[]);
    let pid = api.svc.pid().unwrap();
    // 100,000 entries (the most allowed) with 524-byte paths: 60.5 MiB of JSON.
    let path = "p/".repeat(259);
    let mut body = String::from("{\"resources\":[");
    for i in 0..100_000u32 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"checksum\":{{\"value\":\"{:040x}\"}},\"size_in_bytes\":{},\"path\":\"{path}{i:06}\",\"mode\":\"644\"}}",
            u64::from(i) + 1,
            i % 1000 + 1
        ));
    }
    body.push_str("]}");
    assert!(body.len() as u64 >= 60 * MIB, "{}", body.len());
    let before = peak_rss(pid);
    let started = Instant::now();
    let r = api
        .http
        .post(api.svc.url("/v3/resource_matches"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    let grown = peak_rss(pid).saturating_sub(before);
    println!(
        "resource_matches, 60 MiB body: {status} in {:?}, peak RSS +{} MiB",
        started.elapsed(),
        grown / MIB
    );
    assert_eq!(
        (status, v["resources"].as_array().map(Vec::len)),
        (201, Some(0)),
        "{v}"
    );
    assert!(grown < 100 * MIB, "the service grew by {} MiB", grown / MIB);

    // The same list as an upload's `resources` field: parsed, checked, refused (not stored).
    let list = body["{\"resources\":".len()..body.len() - 1].to_string();
    let app = api.app("resourceful").await;
    let pkg = api.package(&app).await;
    let form = reqwest::multipart::Form::new().text("resources", list);
    let r = api
        .http
        .post(api.svc.url(&format!("/v3/packages/{pkg}/upload")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    let grown = peak_rss(pid).saturating_sub(before);
    println!(
        "upload, 60 MiB resources field: {status} in {:?}, peak RSS +{} MiB since the match",
        started.elapsed(),
        grown / MIB
    );
    let detail = v["errors"][0]["detail"].as_str().unwrap_or_default();
    assert_eq!(status, 422, "{v}");
    assert!(detail.contains("is not in the store"), "{detail}");
    // The package needs every path (53 MB of them here): held once, with ~300 bytes per entry.
    assert!(grown < 128 * MIB, "the service grew by {} MiB", grown / MIB);

    // Past the cap (proportional to the entry limit), or over 1 MiB for JSON endpoints: 413,
    // CF-shaped, on the declared length alone.
    let port = api.svc.port;
    for (path, len) in [("/v3/resource_matches", 70 * MIB), ("/v3/apps", 2 * MIB)] {
        let (s, v) = tokio::task::spawn_blocking(move || raw_declared_post(port, path, len))
            .await
            .unwrap();
        assert_eq!(
            (s, v["errors"][0]["code"].as_u64()),
            (413, Some(10003)),
            "{v}"
        );
        assert_eq!(v["errors"][0]["title"], "CF-RequestEntityTooLarge", "{v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_past_max_log_is_truncated_with_one_marker_and_the_build_goes_on() {
    // About 8 MiB of output against a 1 MiB cap.
    let (api, _bps) = with_buildpack(
        "yes 'a line of buildpack output, again and again' | head -n 180000; echo still-running",
        &["--max-log", "1M"],
    );
    let build = start_build(&api, "chatty").await;
    let (n, log) = drain(
        &api,
        &format!("/v3/builds/{build}/logs?follow=true"),
        None,
        4096,
    )
    .await;
    let b = api.wait_build(&build, Duration::from_secs(120)).await;
    assert_eq!(b.state, BuildState::Staged, "{b:?}");
    assert!(n < MIB + 64 * 1024, "the log is {n} bytes");
    let (_, _, whole) = api.text(&format!("/v3/builds/{build}/logs"), None).await;
    assert_eq!(
        whole
            .matches("==> log truncated at 1 MiB: further output dropped")
            .count(),
        1
    );
    assert!(!whole.contains("still-running"), "dropped after the cap");
    assert!(
        log.trim_end().ends_with("==> end of staging log: STAGED"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_a_300_mib_log_keeps_the_service_small() {
    // 300,000 lines of 1,000 bytes (under a cap raised for the test).
    let (api, _bps) = with_buildpack(
        "yes \"$(printf '%01000d' 0)\" | head -n 300000",
        &["--max-log", "400M"],
    );
    let pid = api.svc.pid().unwrap();
    let idle = peak_rss(pid);
    let build = start_build(&api, "huge").await;
    let b = api.wait_build(&build, Duration::from_secs(600)).await;
    assert_eq!(b.state, BuildState::Staged, "{b:?}");
    let before = peak_rss(pid);
    // Written to the file and shipped to the database in chunks, with a bounded backlog.
    let staging = before.saturating_sub(idle);
    println!(
        "300 MB log: peak RSS +{} MiB while staging it",
        staging / MIB
    );
    assert!(
        staging < 64 * MIB,
        "staging grew the service by {} MiB",
        staging / MIB
    );
    let started = Instant::now();
    let path = format!("/v3/builds/{build}/logs");
    let (plain, _) = drain(&api, &path, None, 0).await;
    let (sse, tail) = drain(
        &api,
        &format!("{path}?follow=true"),
        Some("text/event-stream"),
        4096,
    )
    .await;
    let grown = peak_rss(pid).saturating_sub(before);
    println!(
        "300 MB log: plain {} MiB and SSE {} MiB read in {:?}, peak RSS +{} MiB",
        plain / MIB,
        sse / MIB,
        started.elapsed(),
        grown / MIB
    );
    assert!(plain >= 300_000_000, "{plain}");
    assert!(tail.ends_with("event: end\ndata: end\n\n"), "{tail}");
    assert!(grown < 100 * MIB, "the service grew by {} MiB", grown / MIB);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_buildpack_printing_the_end_marker_does_not_end_followers() {
    let (api, _bps) = with_buildpack(
        "echo '==> end of staging log: STAGED'; sleep 3; echo after-the-fake-end",
        &[],
    );
    let build = start_build(&api, "liar").await;
    let path = format!("/v3/builds/{build}/logs?follow=true");
    let (plain, sse) = tokio::join!(
        drain(&api, &path, None, 1 << 20),
        drain(&api, &path, Some("text/event-stream"), 1 << 20)
    );
    let (_, plain) = plain;
    let (_, sse) = sse;
    assert!(plain.contains("after-the-fake-end"), "{plain}");
    assert!(plain.trim_end().ends_with("==> end of staging log: STAGED"));
    assert!(sse.contains("data: after-the-fake-end"), "{sse}");
    assert_eq!(sse.matches("event: end").count(), 1, "{sse}");
    let (_, b) = api.get(&format!("/v3/builds/{build}")).await;
    assert_eq!(b["state"], "STAGED", "followers end with the build: {b}");

    // `dropship push` shows the whole log too.
    let app = tempdir();
    std::fs::write(app.path().join("a.txt"), "a").unwrap();
    let base = api.svc.base();
    let o = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin())
            .args(["push", app.path().to_str().unwrap(), "--name", "liar2"])
            .args(["--api", &base])
            .env_remove("DROPSHIP_API")
            .env_remove("DROPSHIP_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{}", text(&o));
    assert!(err.contains("after-the-fake-end"), "{err}");
}

/// In process: validation answers need no socket.
#[tokio::test(flavor = "multi_thread")]
async fn env_names_and_app_names_are_checked_at_creation() {
    let api = InProcess::start("").await;
    for env in [
        json!({"A=B": "x"}),
        json!({"1A": "x"}),
        json!({"VCAP_SERVICES": "{}"}),
        json!({"OK": "nul\u{0}inside"}),
    ] {
        let (s, v) = api
            .post_json(
                "/v3/apps",
                &json!({"name": "envy", "environment_variables": env}),
            )
            .await;
        assert_eq!(
            (
                s,
                v["errors"][0]["code"].as_u64(),
                v["errors"][0]["title"].as_str()
            ),
            (422, Some(10008), Some("CF-UnprocessableEntity")),
            "{env}: {v}"
        );
    }
    let (s, v) = api
        .post_json(
            "/v3/apps",
            &json!({"name": "envy", "environment_variables": {"A_1": 2}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // Names without a letter or digit, or too long with the registry's name, cannot make a
    // repository; others are normalised into one (`a..b` -> `a-b`).
    for name in ["!!!", "--", &"long".repeat(60)] {
        let (s, v) = api.post_json("/v3/apps", &json!({ "name": name })).await;
        assert_eq!(s, 422, "{name}: {v}");
        let detail = v["errors"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains("cannot name an image repository"),
            "{detail}"
        );
    }
    for name in ["My App", "my_app.v2", "a..b", "x. y"] {
        let (s, v) = api.post_json("/v3/apps", &json!({ "name": name })).await;
        assert_eq!(s, 201, "{name}: {v}");
    }
}

#[test]
fn slow_headers_are_cut_after_the_header_timeout() {
    let svc = Service::start_with(&["--header-timeout", "2s"]);
    let mut s = TcpStream::connect(("127.0.0.1", svc.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut buf = Vec::new();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(500));
        if s.write_all(b"X-Slow: 1\r\n").is_err() {
            break;
        }
    }
    let _ = s.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the connection stayed open {took:?}"
    );
    // A prompt client is served.
    assert_eq!(http_status(svc.port, "/healthz"), Some(200));
}

fn assert_disk_full(status: u16, v: &Value) {
    assert_eq!(status, 507, "{v}");
    let e = &v["errors"][0];
    assert_eq!(e["title"], "CF-InsufficientStorage", "{v}");
    assert!(
        e["detail"].as_str().unwrap().contains("disk is full"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_answers_507_and_leaves_nothing_behind() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "SKIPPED: a_full_disk_answers_507 mounts a 20 MiB tmpfs as the data dir: run as root"
        );
        return;
    }
    let mnt = tempdir();
    let fs = Tmpfs::mount(&mnt.path().join("data"), "20M");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = Api {
        svc: Service::start_on(tempdir(), fs.0.clone(), &[]),
        http: reqwest::Client::new(),
        token: None,
    };
    let app = api.app("filler").await;
    let free = fs.free();
    println!("free on the data dir after start: {} KiB", free >> 10);

    // Bigger than the disk: the upload itself cannot be stored.
    let pkg = api.package(&app).await;
    let bits = noise(free as usize + (2 << 20), 1);
    let path = format!("/v3/packages/{pkg}/upload");
    let port = api.svc.port;
    let (s, v) = tokio::task::spawn_blocking(move || raw_upload(port, &path, bits))
        .await
        .unwrap();
    assert_disk_full(s, &v);
    assert_eq!(api.show(&pkg).await.state, PackageState::AwaitingUpload);
    api.assert_no_leftovers();

    // Stored, but not extracted: the package FAILS, saying why.
    let pkg = api.package(&app).await;
    let data = noise(free as usize * 6 / 10, 2);
    let (s, v) = api
        .upload(&pkg, Some(zip_of(&[("big.bin", &data, 0o644)])), None)
        .await;
    assert_disk_full(s, &v);
    let p = api.show(&pkg).await;
    assert_eq!(p.state, PackageState::Failed, "{p:?}");
    assert!(
        p.data.error.as_deref().unwrap().contains("disk is full"),
        "{p:?}"
    );
    api.assert_no_leftovers();
    assert!(
        fs.free() >= free - (1 << 20),
        "space given back: {} KiB",
        fs.free() >> 10
    );

    // The service goes on.
    let pkg = api.package(&app).await;
    let (s, v) = api
        .upload(&pkg, Some(zip_of(&[("a.txt", b"a", 0o644)])), None)
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("READY")), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_of_99000_long_names_keeps_memory_bounded() {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mnt = tempdir();
    let data = mnt.path().join("data");
    // Creating 99,000 files takes minutes on this disk, seconds on tmpfs (mounting needs root).
    let _fs = root.then(|| Tmpfs::mount(&data, "2G"));
    let mut cases = vec![(true, "refused after its central directory")];
    if root {
        cases.push((false, "extracted"));
    } else {
        eprintln!("not root: the extraction of 99,000 files is skipped (no tmpfs data dir)");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = Api {
        svc: Service::start_on(tempdir(), data, &[]),
        http: reqwest::Client::new(),
        token: None,
    };
    let pid = api.svc.pid().unwrap();
    let app = api.app("many-names").await;
    let zips = tempdir();
    for (conflict, what) in cases {
        let z = zips.path().join(format!("{conflict}.zip"));
        long_names_zip(&z, 99_000, conflict);
        let bits = std::fs::read(&z).unwrap();
        let pkg = api.package(&app).await;
        let before = peak_rss(pid);
        let started = Instant::now();
        let (s, v) = api.upload(&pkg, Some(bits), None).await;
        let grown = peak_rss(pid).saturating_sub(before);
        println!(
            "99,000 long names, {what}: {s} in {:?}, peak RSS +{} MiB",
            started.elapsed(),
            grown / MIB
        );
        assert_eq!(s, if conflict { 422 } else { 200 }, "{v}");
        // Every name held several times took 113 MiB, then 89 MiB more to extract.
        assert!(grown < 64 * MIB, "the service grew by {} MiB", grown / MIB);
    }
}
