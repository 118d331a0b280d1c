//! `dropship serve` end to end over raw HTTP: apps -> packages -> upload -> builds -> logs ->
//! droplet -> kubernetes, the image pulled from the embedded registry by skopeo and run by
//! podman; logs followed live; kill -9 in the middle of staging; tokens.

use crate::support::api::*;
use crate::support::*;
use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

fn buildpack(dir: &Path, name: &str, finalize: &str, web: &str) {
    let bin = dir.join(name).join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (script, body) in [
        ("detect", format!("echo {name}")),
        ("finalize", finalize.to_string()),
        (
            "release",
            format!("printf -- '---\\ndefault_process_types:\\n  web: {web}\\n'"),
        ),
    ] {
        let p = bin.join(script);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_flow_over_http_ends_in_a_running_image() {
    let api = Api::start(&[]);
    let page = b"<h1>built by dropship serve</h1>\n";
    let (app, pkg) = api
        .ready_package("flow-site", &[("index.html", page, 0o644)])
        .await;
    let (s, b) = api.build(&pkg, None).await;
    assert_eq!((s, b["state"].as_str()), (201, Some("STAGING")), "{b}");
    let build = b["guid"].as_str().unwrap().to_string();

    // The followed log ends when the build does, with the buildpack's output in it.
    let (s, _, log) = api
        .text(&format!("/v3/builds/{build}/logs?follow=true"), None)
        .await;
    assert_eq!(s, 200);
    assert!(
        log.contains("Staticfile buildpack") && log.contains("end of staging log: STAGED"),
        "{log}"
    );
    let b = api.wait_build(&build, Duration::from_secs(120)).await;
    assert_eq!(b.state, BuildState::Staged, "{b:?}");
    assert!(b.error.is_none());
    let droplet = b.droplet.as_ref().unwrap().guid.clone();

    let d = api.droplet(&droplet).await;
    let image = d.image.clone().unwrap();
    let prefix = format!("127.0.0.1:{}/apps/flow-site@sha256:", api.svc.port);
    assert!(image.starts_with(&prefix), "{image}");
    assert_eq!(d.buildpacks[0].name, "staticfile");
    assert_eq!(d.stack.as_deref(), Some("busybox"));
    assert!(d.process_types["web"].contains("serve"), "{d:?}");

    // The droplet tgz is what the checksum says, in CF's layout.
    let r = api
        .http
        .get(api.svc.url(&format!("/v3/droplets/{droplet}/download")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let tgz = r.bytes().await.unwrap();
    assert_eq!(d.checksum.value, Some(sha256_hex(&tgz)));
    let mut names = Vec::new();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]));
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "app/index.html" {
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            assert_eq!(body, page);
        }
        names.push(name);
    }
    for want in ["app/index.html", "staging_info.yml", "deps/", "profile.d/"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from the droplet: {names:?}"
        );
    }

    // Kubernetes objects: valid, naming the image by digest; JSON on request.
    let (s, ct, yaml) = api
        .text(&format!("/v3/droplets/{droplet}/kubernetes"), None)
        .await;
    assert_eq!((s, ct.as_str()), (200, "application/yaml"));
    assert!(yaml.contains(&format!("image: {image}")), "{yaml}");
    let file = api.svc.dir.path().join("k8s.yaml");
    std::fs::write(&file, &yaml).unwrap();
    require(
        "kubernetes-validate",
        "python3-pip && pip install kubernetes-validate",
    );
    let o = std::process::Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (_, ct, list) = api
        .text(
            &format!("/v3/droplets/{droplet}/kubernetes"),
            Some("application/json"),
        )
        .await;
    assert_eq!(ct, "application/json");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["items"][0]["kind"], "StatefulSet");

    // The current droplet.
    let r = api
        .http
        .patch(
            api.svc
                .url(&format!("/v3/apps/{app}/relationships/current_droplet")),
        )
        .json(&json!({"data": {"guid": droplet}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Started and stopped as CF does: the app's objects follow (0 replicas when stopped).
    let a: cf::App = api.get_as(&format!("/v3/apps/{app}")).await;
    assert_eq!(
        a.state,
        cf::AppState::Stopped,
        "a droplet alone does not start it"
    );
    let replicas = |list: &str| -> Value {
        let list: Value = serde_json::from_str(list).unwrap();
        list["items"][0]["spec"]["replicas"].clone()
    };
    let objects = format!("/v3/apps/{app}/kubernetes");
    let (_, _, stopped) = api.text(&objects, Some("application/json")).await;
    assert_eq!(replicas(&stopped), 0, "{stopped}");
    let action = |a: &str| format!("/v3/apps/{app}/actions/{a}");
    let a: cf::App = api.post_as(&action("start"), &json!({}), 200).await;
    assert_eq!(a.state, cf::AppState::Started);
    let (_, _, started) = api.text(&objects, Some("application/json")).await;
    assert_eq!(replicas(&started), 1, "{started}");
    let a: cf::App = api.post_as(&action("stop"), &json!({}), 200).await;
    assert_eq!(a.state, cf::AppState::Stopped);
    let a: cf::App = api.post_as(&action("restart"), &json!({}), 200).await;
    assert_eq!(a.state, cf::AppState::Started);
    let other = api.app("never-staged").await;
    let (s, e) = api
        .post_json(&format!("/v3/apps/{other}/actions/start"), &json!({}))
        .await;
    assert_eq!(s, 422, "no droplet to start: {e}");
    assert_eq!(
        api.text(&format!("/v3/apps/{other}/kubernetes"), None)
            .await
            .0,
        404
    );

    // Pulled from the embedded registry by independent tools, and run.
    let by_digest = format!("docker://{image}");
    assert_eq!(
        skopeo_inspect(&by_digest, false)["Digest"],
        image.split('@').nth(1).unwrap()
    );
    let podman = Podman::new();
    let port = free_port();
    let c = podman.run(&image, port);
    let got = wait_for_page(port, "/", Duration::from_secs(30));
    assert_eq!(
        got.as_deref(),
        Some(std::str::from_utf8(page).unwrap()),
        "{}",
        c.logs()
    );
    drop(c);

    let (_, _, metrics) = api.text("/metrics", None).await;
    assert!(
        metrics.contains("dropship_builds{state=\"STAGED\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dropship_build_queue_length 0"),
        "{metrics}"
    );
    for path in [
        "/v3/apps/nope",
        "/v3/builds/nope",
        "/v3/droplets/nope",
        "/v3/packages/nope",
    ] {
        let (s, v) = api.get(path).await;
        assert_eq!(
            (s, v["errors"][0]["code"].as_u64()),
            (404, Some(10010)),
            "{path}: {v}"
        );
        assert_eq!(v["errors"][0]["title"], "CF-ResourceNotFound");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn staging_output_is_streamed_while_the_build_runs() {
    let bps = tempdir();
    buildpack(
        bps.path(),
        "slow",
        "echo first-line; sleep 3; echo second-line",
        "sleep 1000",
    );
    let api = Api::start(&["--buildpacks-dir", bps.path().to_str().unwrap()]);
    let (_, pkg) = api
        .ready_package("slow-app", &[("a.txt", b"a", 0o644)])
        .await;
    let (_, b) = api.build(&pkg, None).await;
    let build = b["guid"].as_str().unwrap().to_string();
    let mut r = api
        .http
        .get(api.svc.url(&format!("/v3/builds/{build}/logs?follow=true")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let mut first_at = None;
    while let Some(chunk) = r.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if first_at.is_none() && seen.contains("data: first-line") {
            first_at = Some(Instant::now());
            // The build is still running when its first line arrives.
            let (_, now) = api.get(&format!("/v3/builds/{build}")).await;
            assert_eq!(now["state"], "STAGING", "{now}");
        }
    }
    let first_at = first_at.expect("first line never arrived");
    assert!(
        seen.contains("data: second-line") && seen.contains("event: end"),
        "{seen}"
    );
    assert!(first_at.elapsed() < Duration::from_secs(60));
    assert_eq!(
        api.wait_build(&build, Duration::from_secs(60)).await.state,
        BuildState::Staged
    );
}

/// The processes whose command line holds `tag`.
fn sleepers(tag: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(tag)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Waits until the build's log holds `needle` `times` times; returns the log.
async fn wait_log(api: &Api, build: &str, needle: &str, times: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, log) = api.text(&format!("/v3/builds/{build}/logs"), None).await;
        if log.matches(needle).count() >= times {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} x{times} never came: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_staging_stages_that_build_again_and_keeps_the_others() {
    let bps = tempdir();
    buildpack(bps.path(), "a-fast", "echo fast", "sleep 1000");
    buildpack(
        bps.path(),
        "b-slow",
        "echo going to sleep; sleep 3.011; echo woke up",
        "sleep 1000",
    );
    let mut api = Api::start(&["--buildpacks-dir", bps.path().to_str().unwrap()]);
    let (_, pkg) = api.ready_package("keeper", &[("a.txt", b"a", 0o644)]).await;
    let (_, b) = api
        .build(
            &pkg,
            Some(json!({"type": "buildpack", "data": {"buildpacks": ["a-fast"]}})),
        )
        .await;
    let done = api
        .wait_build(b["guid"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}");
    let droplet = done.droplet.as_ref().unwrap().guid.clone();

    let (_, pkg2) = api.ready_package("victim", &[("b.txt", b"b", 0o644)]).await;
    let (_, b2) = api
        .build(
            &pkg2,
            Some(json!({"type": "buildpack", "data": {"buildpacks": ["b-slow"]}})),
        )
        .await;
    let victim = b2["guid"].as_str().unwrap().to_string();
    wait_log(&api, &victim, "going to sleep", 1).await;
    let first = sleepers("sleep 3.011");
    assert_eq!(first.len(), 1);

    api.svc.kill9_and_restart();

    // The sandbox died with its parent; the build is staged again, and its log says so.
    std::thread::sleep(Duration::from_millis(300));
    let now = sleepers("sleep 3.011");
    assert!(!now.contains(&first[0]), "the buildpack outlived dropship");
    let log = wait_log(&api, &victim, "going to sleep", 2).await;
    assert!(log.contains("staging it (attempt 2 of 3)"), "{log}");
    let v = api.wait_build(&victim, Duration::from_secs(60)).await;
    assert_eq!(v.state, BuildState::Staged, "{v:?}\n{}", api.svc.log());
    let (_, _, log) = api
        .text(&format!("/v3/builds/{victim}/logs?follow=true"), None)
        .await;
    assert!(
        log.contains("woke up") && log.contains("end of staging log: STAGED"),
        "{log}"
    );
    // Earlier work is intact.
    let (_, d) = api.get(&format!("/v3/droplets/{droplet}")).await;
    assert_eq!(d["state"], "STAGED", "{d}");
    let (_, b1) = api
        .get(&format!("/v3/builds/{}", b["guid"].as_str().unwrap()))
        .await;
    assert_eq!(b1["state"], "STAGED");
    let r = api
        .http
        .get(api.svc.url(&format!("/v3/droplets/{droplet}/download")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sha256_hex(&r.bytes().await.unwrap()),
        d["checksum"]["value"]
    );
    // And the service builds again.
    let (_, b3) = api
        .build(
            &pkg2,
            Some(json!({"type": "buildpack", "data": {"buildpacks": ["a-fast"]}})),
        )
        .await;
    assert_eq!(
        api.wait_build(b3["guid"].as_str().unwrap(), Duration::from_secs(60))
            .await
            .state,
        BuildState::Staged
    );
}

/// In process: the router decides who may call what.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_guard_everything_but_health_and_discovery() {
    let mut api = InProcess::start("tokens = [\"s3cr3t-token\"]\n").await;
    let (s, v) = api.get("/v3/apps").await;
    assert_eq!(
        (s, v["errors"][0]["code"].as_u64()),
        (401, Some(10002)),
        "{v}"
    );
    assert_eq!(v["errors"][0]["title"], "CF-NotAuthenticated");
    for public in ["/healthz", "/readyz", "/", "/v3", "/v3/info"] {
        assert_eq!(api.get(public).await.0, 200, "{public}");
    }
    api.token = Some("wrong".into());
    assert_eq!(api.get("/v3/apps").await.0, 401);
    api.token = Some("s3cr3t-token".into());
    assert_eq!(api.get("/v3/apps").await.0, 200);
    // The registry endpoint challenges, and takes the token as a Basic password.
    let anonymous = |path: &str| Request::get(path);
    let r = api
        .send(anonymous("/v2/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, 401);
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let basic = base64::engine::general_purpose::STANDARD.encode("anyone:s3cr3t-token");
    let r = anonymous("/v2/").header("authorization", format!("Basic {basic}"));
    let r = api.send(r.body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 200);
}

/// `/readyz`: ready while the database answers and the data dir takes a file; 503 naming the
/// check that failed otherwise, and ready again once it is fixed.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_says_which_check_fails() {
    let api = InProcess::start("").await;
    let (s, v) = api.get("/readyz").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["checks"],
        json!({"database": "ok", "storage": "ok"}),
        "{v}"
    );
    let uploads = api.dir.path().join("data/uploads");
    std::fs::remove_dir_all(&uploads).unwrap();
    let (s, v) = api.get("/readyz").await;
    assert_eq!((s, &v["status"]), (503, &json!("not ready")), "{v}");
    assert_eq!(v["checks"]["database"], "ok", "{v}");
    assert!(
        v["checks"]["storage"].as_str().unwrap().contains("uploads"),
        "{v}"
    );
    assert_eq!(api.get("/healthz").await.0, 200, "alive all along");
    std::fs::create_dir(&uploads).unwrap();
    assert_eq!(api.get("/readyz").await.0, 200);
}

/// The process: what it logs, and what it refuses to start with.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_never_reach_the_log_and_are_required_beyond_loopback() {
    let mut api = Api::start(&["--token", "s3cr3t-token"]);
    api.token = Some("s3cr3t-token".into());
    assert_eq!(api.get("/v3/apps").await.0, 200);
    let r = api
        .http
        .get(api.svc.url("/v2/"))
        .basic_auth("anyone", Some("s3cr3t-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        !api.svc.log().contains("s3cr3t-token"),
        "the token reached the log"
    );

    // Listening beyond loopback without tokens is refused, saying why.
    let o = std::process::Command::new(bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(api.svc.dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("without API tokens"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_concurrent_pushes_all_succeed_through_the_queue() {
    let api = Api::start(&["--concurrency", "2"]);
    let apps = tempdir();
    let mut children = Vec::new();
    for i in 0..8 {
        let dir = apps.path().join(format!("app{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), format!("<p>app {i}</p>\n")).unwrap();
        random_file(&dir.join("payload.bin"), 2 << 20);
        let child = std::process::Command::new(bin())
            .args(["push", dir.to_str().unwrap(), "--api", &api.svc.base()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    let mut max_queue = 0;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        let (_, _, m) = api.text("/metrics", None).await;
        if let Some(q) = m
            .lines()
            .find_map(|l| l.strip_prefix("dropship_build_queue_length "))
        {
            max_queue = max_queue.max(q.trim().parse::<u32>().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut images = std::collections::BTreeSet::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        images.insert(String::from_utf8(o.stdout).unwrap().trim().to_string());
    }
    assert_eq!(images.len(), 8, "{images:?}");
    let (_, _, m) = api.text("/metrics", None).await;
    assert!(m.contains("dropship_builds{state=\"STAGED\"} 8"), "{m}");
    eprintln!("eight pushes: at most {max_queue} builds waited for a slot");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_push_registry_images_go_there_and_stay_served_here() {
    let reg = Registry::start();
    let conf = tempdir();
    let file = conf.path().join("dropship.toml");
    std::fs::write(
        &file,
        format!(
            "[registry]\nprefix = \"{}/pushed\"\nusername = \"builder\"\npassword = \"pa55-w0rd-xyz\"\n",
            reg.host()
        ),
    )
    .unwrap();
    let api = Api::start(&["--config", file.to_str().unwrap()]);
    let (_, pkg) = api
        .ready_package("remote-site", &[("index.html", b"<p>remote</p>\n", 0o644)])
        .await;
    let (_, b) = api.build(&pkg, None).await;
    let b = api
        .wait_build(b["guid"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(b.state, BuildState::Staged, "{b:?}\n{}", api.svc.log());
    let droplet = b.droplet.as_ref().unwrap().guid.as_str();
    let (_, d) = api.get(&format!("/v3/droplets/{droplet}")).await;
    let image = d["image"].as_str().unwrap();
    assert!(
        image.starts_with(&format!("{}/pushed/remote-site@sha256:", reg.host())),
        "{image}"
    );
    let digest = image.split('@').nth(1).unwrap();
    assert_eq!(
        skopeo_inspect(&format!("docker://{image}"), false)["Digest"],
        digest
    );
    // The embedded registry keeps its own copy, tagged with the droplet's guid.
    let (s, _, tags) = api.text("/v2/apps/remote-site/tags/list", None).await;
    assert_eq!(s, 200);
    assert!(tags.contains(droplet), "{tags}");
    let local = format!(
        "docker://127.0.0.1:{}/apps/remote-site:{droplet}",
        api.svc.port
    );
    assert_eq!(skopeo_inspect(&local, false)["Digest"], digest);
    let r = api
        .http
        .head(
            api.svc
                .url(&format!("/v2/apps/remote-site/manifests/{digest}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["docker-content-digest"], digest);
    let (s, _, _) = api
        .text("/v2/apps/remote-site/manifests/no-such-tag", None)
        .await;
    assert_eq!(s, 404);
    // The registry password is configuration, not output.
    let (_, _, log) = api.text(&format!("/v3/builds/{}/logs", b.guid), None).await;
    for text in [api.svc.log(), log, d.to_string()] {
        assert!(
            !text.contains("pa55-w0rd-xyz"),
            "the password leaked: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn build_caches_persist_per_app_and_can_be_deleted() {
    let bps = tempdir();
    let probe = "if [ -f \"$2/seen\" ]; then echo \"CACHE WARM $(cat \"$2/seen\")\"; else echo CACHE COLD; fi\n\
                 head -c 60000 /dev/zero > \"$2/blob\"; basename \"$1\" > \"$2/seen\"";
    buildpack(bps.path(), "cachey", probe, "sleep 1000");
    let conf = tempdir();
    let file = conf.path().join("dropship.toml");
    // Room for one app's cache (~60 kB), not two.
    std::fs::write(&file, "[limits]\nbuild_cache = \"100K\"\n").unwrap();
    let api = Api::start(&[
        "--buildpacks-dir",
        bps.path().to_str().unwrap(),
        "--config",
        file.to_str().unwrap(),
    ]);
    let log_of = |b: Value| b["guid"].as_str().unwrap().to_string();
    let stage = |pkg: String| {
        let api = &api;
        async move {
            let (_, b) = api.build(&pkg, None).await;
            let guid = log_of(b);
            assert_eq!(
                api.wait_build(&guid, Duration::from_secs(60)).await.state,
                BuildState::Staged
            );
            api.text(&format!("/v3/builds/{guid}/logs"), None).await.2
        }
    };
    let (app, pkg) = api
        .ready_package("cached-app", &[("a.txt", b"a", 0o644)])
        .await;
    assert!(stage(pkg.clone()).await.contains("CACHE COLD"));
    assert!(
        stage(pkg.clone()).await.contains("CACHE WARM"),
        "the second build of an app reuses its cache"
    );
    // Deleting it makes the next build cold again.
    let r = api
        .http
        .delete(api.svc.url(&format!("/v3/apps/{app}/cache")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert!(stage(pkg.clone()).await.contains("CACHE COLD"));
    let r = api
        .http
        .delete(api.svc.url("/v3/apps/nope/cache"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Another app's cache pushes this one out (least recently used first).
    let (_, other) = api
        .ready_package("other-app", &[("b.txt", b"b", 0o644)])
        .await;
    stage(other.clone()).await;
    assert!(stage(other).await.contains("CACHE WARM"));
    let log = stage(pkg).await;
    assert!(
        log.contains("CACHE COLD"),
        "the least recently used cache was evicted:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_buildpacks_run_as_multi_buildpack() {
    let bps = tempdir();
    // A supply-only buildpack that provides a command, then the shipped binary buildpack.
    let bin = bps.path().join("supplier/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let supply = "#!/bin/sh\nmkdir -p \"$3/$4/bin\"\nprintf '#!/bin/sh\\necho supplied tool\\n' > \"$3/$4/bin/greet\"\n\
                  chmod 755 \"$3/$4/bin/greet\"\nprintf 'name: supplier\\nversion: 9.9\\n' > \"$3/$4/config.yml\"\necho supplied\n";
    for (name, body) in [("detect", "#!/bin/sh\nexit 1\n"), ("supply", supply)] {
        std::fs::write(bin.join(name), body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    copy_dir(
        &project_dir().join("buildpacks/binary"),
        &bps.path().join("binary"),
    );
    let api = Api::start(&["--buildpacks-dir", bps.path().to_str().unwrap()]);
    let (_, pkg) = api
        .ready_package(
            "multi",
            &[("Procfile", b"web: greet && sleep 1000\n", 0o644)],
        )
        .await;
    let lifecycle = json!({"type": "buildpack", "data": {"buildpacks": ["supplier", "binary"]}});
    let (s, b) = api.build(&pkg, Some(lifecycle)).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["lifecycle"]["data"]["buildpacks"],
        json!(["supplier", "binary"])
    );
    let b = api
        .wait_build(b["guid"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(b.state, BuildState::Staged, "{b:?}");
    let (_, d) = api
        .get(&format!(
            "/v3/droplets/{}",
            b.droplet.as_ref().unwrap().guid.as_str()
        ))
        .await;
    let names: Vec<&str> = d["buildpacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["buildpack_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["supplier", "binary"], "{d}");
    assert_eq!(d["buildpacks"][0]["version"], "9.9");
    assert_eq!(d["process_types"]["web"], "greet && sleep 1000");
    // An unknown buildpack is refused up front.
    let (s, v) = api
        .build(
            &pkg,
            Some(json!({"type": "buildpack", "data": {"buildpacks": ["nope"]}})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
}

/// The same app on the same stack gives the same image on two services with their own data
/// dirs and ports: nothing of the host (paths, addresses) is in the image.
#[tokio::test(flavor = "multi_thread")]
async fn two_services_build_the_same_image_digest() {
    let page = b"<h1>same everywhere</h1>\n";
    let mut digests = Vec::new();
    for _ in 0..2 {
        let api = Api::start(&[]);
        let (_, pkg) = api
            .ready_package("twin", &[("index.html", page, 0o644)])
            .await;
        let (s, b) = api.build(&pkg, None).await;
        assert_eq!(s, 201, "{b}");
        let b = api
            .wait_build(b["guid"].as_str().unwrap(), Duration::from_secs(120))
            .await;
        assert_eq!(b.state, BuildState::Staged, "{b:?}");
        let (_, d) = api
            .get(&format!(
                "/v3/droplets/{}",
                b.droplet.as_ref().unwrap().guid.as_str()
            ))
            .await;
        let image = d["image"].as_str().unwrap().to_string();
        let config = skopeo_inspect(&format!("docker://{image}"), false);
        let labels = config["Labels"].to_string();
        assert!(
            !labels.contains(api.svc.data_dir().to_str().unwrap()) && !labels.contains("oci:"),
            "a local path in the labels: {labels}"
        );
        digests.push(image.rsplit('@').next().unwrap().to_string());
    }
    assert_eq!(digests[0], digests[1]);
}

/// The app's processes (web and a Procfile's worker, CF's shapes and links), `actions/scale`
/// with CF's range errors, and the Kubernetes objects following the scale.
#[tokio::test(flavor = "multi_thread")]
async fn processes_list_and_scale_and_kubernetes_follows() {
    let api = Api::start(&[]);
    let files: &[F] = &[
        ("index.html", b"<h1>hi</h1>\n", 0o644),
        ("Procfile", b"worker: sleep 1000\n", 0o644),
    ];
    let (app, pkg) = api.ready_package("scaled", files).await;
    let (s, v) = api.get(&format!("/v3/apps/{app}/processes")).await;
    assert_eq!(
        (s, v["resources"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{v}"
    );
    assert_eq!(v["resources"][0]["type"], "web", "before any droplet: {v}");

    let (_, b) = api.build(&pkg, None).await;
    let b = api
        .wait_build(b["guid"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(b.state, BuildState::Staged, "{b:?}");
    let droplet = b.droplet.as_ref().unwrap().guid.clone();
    api.set_current_droplet(&app, &droplet).await;

    let (_, v) = api.get(&format!("/v3/apps/{app}/processes")).await;
    let types: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["web", "worker"], "{v}");
    let worker = &v["resources"][1];
    assert_eq!(worker["command"], "sleep 1000", "{v}");
    // Every link resolves; the web process is the app's GUID, as in CF.
    let (s, web) = api.get(&format!("/v3/apps/{app}/processes/web")).await;
    assert_eq!(
        (s, web["guid"].as_str()),
        (200, Some(app.as_str())),
        "{web}"
    );
    for p in [&web, worker] {
        let href = p["links"]["self"]["href"].as_str().unwrap();
        let (s, got) = api.get(href.strip_prefix(&api.svc.base()).unwrap()).await;
        assert_eq!((s, &got["type"]), (200, &p["type"]), "{href}: {got}");
        let app_href = p["links"]["app"]["href"].as_str().unwrap();
        assert!(app_href.ends_with(&format!("/v3/apps/{app}")), "{p:?}");
    }

    let scale = |guid: &str| format!("/v3/processes/{guid}/actions/scale");
    for (bad, words) in [
        (
            json!({"instances": -1}),
            "Instances must be greater than or equal to 0",
        ),
        (
            json!({"memory_in_mb": 0}),
            "Memory in mb must be greater than or equal to 1",
        ),
        (
            json!({"disk_in_mb": 1u64 << 40}),
            "Disk in mb must be less than or equal to",
        ),
        (json!({"instances": "three"}), "invalid request body"),
    ] {
        let (s, e) = api.post_json(&scale(&app), &bad).await;
        assert_eq!(s, 422, "{bad}: {e}");
        assert!(
            e["errors"][0]["detail"].as_str().unwrap().contains(words),
            "{bad}: {e}"
        );
    }
    let worker_guid = worker["guid"].as_str().unwrap();
    let (s, w) = api
        .post_json(&scale(worker_guid), &json!({"instances": 2}))
        .await;
    assert_eq!(
        (s, &w["instances"]),
        (202, &json!(2)),
        "each process scales: {w}"
    );

    let body = cf::Scale {
        instances: Some(3),
        memory_in_mb: Some(256),
        disk_in_mb: Some(512),
        ..Default::default()
    };
    let p: cf::Process = api.post_as(&scale(&app), &body, 202).await;
    assert_eq!((p.instances, p.memory_in_mb, p.disk_in_mb), (3, 256, 512));
    let worker: cf::Process = api.get_as(&format!("/v3/processes/{worker_guid}")).await;
    assert_eq!(
        (worker.instances, worker.memory_in_mb),
        (2, 1024),
        "the worker keeps its own scale"
    );
    let stats: cf::ProcessStats = api.get_as(&format!("/v3/processes/{app}/stats")).await;
    let instances = &stats.resources;
    assert_eq!(instances.len(), 3, "one per desired instance: {stats:?}");
    assert_eq!(instances[2].index, 2);
    assert_eq!(
        instances[0].state,
        cf::InstanceState::Starting,
        "a current droplet"
    );
    assert_eq!(instances[0].mem_quota, Some(256u64 << 20));

    let (_, _, list) = api
        .text(
            &format!("/v3/droplets/{droplet}/kubernetes"),
            Some("application/json"),
        )
        .await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let sets: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "StatefulSet")
        .collect();
    assert_eq!(sets.len(), 2, "{list}");
    for (set, (replicas, memory)) in sets.iter().zip([(3, "256M"), (2, "1024M")]) {
        assert_eq!(set["spec"]["replicas"], replicas, "{set}");
        let limits = &set["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"];
        assert_eq!(limits["memory"], memory, "{set}");
    }
    let (s, _) = api
        .get("/v3/processes/00000000-0000-4000-8000-00000000dead")
        .await;
    assert_eq!(s, 404);
}

/// `PATCH /v3/apps/:guid` renames (unique names, CF's 422); `DELETE /v3/apps/:guid`: 202 and a
/// job that is COMPLETE; the app, its package, build and droplet answer 404; their files, its
/// cache and its images in the embedded registry (under its old name too) are gone; another app
/// is untouched.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_an_app_removes_its_resources_files_and_images() {
    let api = Api::start(&[]);
    let files: &[F] = &[("index.html", b"<h1>doomed</h1>\n", 0o644)];
    let (app, pkg) = api.ready_package("doomed", files).await;
    let (keep, _) = api.ready_package("kept", files).await;
    let (_, b) = api.build(&pkg, None).await;
    let build = b["guid"].as_str().unwrap().to_string();
    let b = api.wait_build(&build, Duration::from_secs(120)).await;
    assert_eq!(b.state, BuildState::Staged, "{b:?}");
    let droplet = b.droplet.as_ref().unwrap().guid.clone();
    let (_, d) = api.get(&format!("/v3/droplets/{droplet}")).await;
    let image = d["image"].as_str().unwrap().to_string();
    let digest = image.split('@').nth(1).unwrap().to_string();
    let manifest = format!("/v2/apps/doomed/manifests/{digest}");
    assert_eq!(http_status(api.svc.port, &manifest), Some(200));
    let data = api.svc.data_dir();
    let owned = [
        data.join("packages").join(format!("{pkg}.zip")),
        data.join("droplets").join(format!("{droplet}.tgz")),
        data.join("logs").join(format!("{build}.log")),
        data.join("logs").join(format!("{build}.stamps")),
        data.join("caches").join(&app),
        data.join("registry/apps/doomed"),
    ];
    for f in &owned {
        assert!(f.exists(), "{} before the deletion", f.display());
    }
    let rename = |name: &str| json!({ "name": name });
    let path = format!("/v3/apps/{app}");
    let (s, _) = api.patch_json(&path, &rename("kept")).await;
    assert_eq!(s, 422, "the name is taken");
    let (s, renamed) = api.patch_json(&path, &rename("renamed")).await;
    assert_eq!(s, 200);
    assert_eq!(renamed["name"], "renamed");
    let bad = json!({"lifecycle": {"type": "docker"}});
    let (s, _) = api.patch_json(&path, &bad).await;
    assert_eq!(s, 422);

    let r = api
        .http
        .delete(api.svc.url(&format!("/v3/apps/{app}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let job: cf::Job = api
        .get_as(location.strip_prefix(&api.svc.base()).unwrap())
        .await;
    assert_eq!(
        (job.state, job.operation.as_str()),
        (cf::JobState::Complete, "app.delete"),
        "{job:?}"
    );
    for gone in [
        format!("/v3/apps/{app}"),
        format!("/v3/packages/{pkg}"),
        format!("/v3/builds/{build}"),
        format!("/v3/droplets/{droplet}"),
    ] {
        assert_eq!(api.get(&gone).await.0, 404, "{gone}");
    }
    for f in &owned {
        assert!(!f.exists(), "{} after the deletion", f.display());
    }
    assert_eq!(http_status(api.svc.port, &manifest), Some(404));
    assert_eq!(api.get(&format!("/v3/apps/{keep}")).await.0, 200);
    let (s, e) = api.get(&format!("/v3/apps/{app}")).await;
    assert_eq!(
        (s, e["errors"][0]["title"].as_str()),
        (404, Some("CF-ResourceNotFound"))
    );
    let r = api
        .http
        .delete(api.svc.url(&format!("/v3/apps/{app}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "a second deletion");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_interrupted_three_times_fails_saying_so() {
    let bps = tempdir();
    buildpack(
        bps.path(),
        "stuck",
        "echo going to sleep; exec sleep 3013",
        "sleep 1000",
    );
    let mut api = Api::start(&["--buildpacks-dir", bps.path().to_str().unwrap()]);
    let (_, pkg) = api
        .ready_package("unlucky", &[("a.txt", b"a", 0o644)])
        .await;
    let (_, b) = api.build(&pkg, None).await;
    let build = b["guid"].as_str().unwrap().to_string();
    for attempt in 1..=3 {
        wait_log(&api, &build, "going to sleep", attempt).await;
        api.svc.kill9_and_restart();
    }
    let v: dropship::cfapi::Build = api.get_as(&format!("/v3/builds/{build}")).await;
    assert_eq!(v.state, BuildState::Failed, "{v:?}");
    let failure = v.failure.expect("a failure");
    assert_eq!(
        failure.kind,
        Some(dropship::failure::FailureKind::Interrupted)
    );
    assert!(
        v.error
            .as_deref()
            .unwrap_or("")
            .contains("interrupted 3 times"),
        "{:?}",
        v.error
    );
    let (_, _, log) = api
        .text(&format!("/v3/builds/{build}/logs?follow=true"), None)
        .await;
    assert_eq!(log.matches("going to sleep").count(), 3, "{log}");
    assert!(log.contains("end of staging log: FAILED"), "{log}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sleepers("sleep 3013").is_empty(),
        "a buildpack outlived dropship"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_running_build_finish_and_leaves_the_queued_one_for_the_next_start() {
    let bps = tempdir();
    buildpack(
        bps.path(),
        "slowish",
        "echo going to sleep; sleep 2.017; echo woke up",
        "sleep 1000",
    );
    let args = [
        "--buildpacks-dir",
        bps.path().to_str().unwrap(),
        "--concurrency",
        "1",
    ];
    let mut api = Api::start(&args);
    let (_, p1) = api.ready_package("first", &[("a.txt", b"a", 0o644)]).await;
    let (_, p2) = api.ready_package("second", &[("b.txt", b"b", 0o644)]).await;
    let (_, b1) = api.build(&p1, None).await;
    let running = b1["guid"].as_str().unwrap().to_string();
    wait_log(&api, &running, "going to sleep", 1).await;
    let (_, b2) = api.build(&p2, None).await;
    let queued = b2["guid"].as_str().unwrap().to_string();

    let (status, took) = api.svc.terminate();
    assert!(status.success(), "{status}\n{}", api.svc.log());
    assert!(
        took >= Duration::from_millis(500),
        "it waited for the build: {took:?}"
    );
    api.svc.restart();

    let done = api.wait_build(&running, Duration::from_secs(10)).await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}");
    let (_, _, log) = api.text(&format!("/v3/builds/{running}/logs"), None).await;
    assert!(
        log.contains("woke up") && !log.contains("staging it ("),
        "staged once, before the stop: {log}"
    );
    let later = api.wait_build(&queued, Duration::from_secs(60)).await;
    assert_eq!(later.state, BuildState::Staged, "{later:?}");
    let (_, _, log) = api.text(&format!("/v3/builds/{queued}/logs"), None).await;
    // Never claimed by the stopping replica: the new process's claim is its first attempt.
    assert!(log.contains("(attempt 1 of 3)"), "{log}");
    assert_eq!(log.matches("going to sleep").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_within_the_grace_period_and_the_cut_build_is_staged_again() {
    let bps = tempdir();
    buildpack(
        bps.path(),
        "stuck",
        "echo going to sleep; exec sleep 3014",
        "sleep 1000",
    );
    let dir = tempdir();
    let config = dir.path().join("dropship.toml");
    std::fs::write(&config, "[limits]\nshutdown_grace = \"1s\"\n").unwrap();
    let args = [
        "--buildpacks-dir",
        bps.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let mut api = Api::start(&args);
    let (_, pkg) = api.ready_package("cut", &[("a.txt", b"a", 0o644)]).await;
    let (_, b) = api.build(&pkg, None).await;
    let build = b["guid"].as_str().unwrap().to_string();
    wait_log(&api, &build, "going to sleep", 1).await;

    let (status, took) = api.svc.terminate();
    assert!(status.success(), "{status}\n{}", api.svc.log());
    assert!(took < Duration::from_secs(8), "the grace is 1 s: {took:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sleepers("sleep 3014").is_empty(),
        "a buildpack outlived dropship"
    );
    api.svc.restart();
    let log = wait_log(&api, &build, "going to sleep", 2).await;
    // Handed back at the end of the grace: staged again at once, the attempt not counted.
    assert!(log.contains("handed over to another replica"), "{log}");
    assert_eq!(log.matches("(attempt 1 of 3)").count(), 2, "{log}");
}
