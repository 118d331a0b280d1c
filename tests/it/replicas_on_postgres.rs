//! Issue 12's acceptance on real servers: three `dropship serve` replicas on one PostgreSQL
//! (a throw-away cluster) and one S3 bucket (moto), each with its own data dir
//! (support/replicas.rs). The CF flow with every step on another replica, ending in an image
//! pulled by skopeo and run by podman; kill -9 of the replica staging a build (another takes
//! it over when the lease runs out); PostgreSQL restarted under the replicas (CF-shaped 503s
//! while it is down, then recovery without a restart of their own).

use crate::support::api::*;
use crate::support::*;
use std::time::{Duration, Instant};

/// Follows `path` on `api` to the end: the text, and whether the build was still STAGING
/// (asked on `other`) when the buildpack's first line arrived.
async fn follow(api: &Api, other: &Api, build: &str, path: &str) -> (String, bool) {
    let mut r = api.http.get(api.svc.url(path)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (mut seen, mut live) = (String::new(), None);
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(120), r.chunk())
        .await
        .expect("the follower stalled")
        .unwrap()
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if live.is_none() && seen.contains("counted: staging") {
            let (_, now) = other.get(&format!("/v3/builds/{build}")).await;
            live = Some(now["state"] == "STAGING");
        }
    }
    (seen, live == Some(true))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cf_flow_crosses_replicas_and_its_image_runs() {
    let r = Replicas::start(3, Backing::PostgresS3, &[]);
    // App on A, upload on B (both in counted_package), build on C, logs followed on A.
    let (app, pkg) = r.counted_package(0, 1, "flow", "flow-run", 3).await;
    let build = r.replica(2).stage(&pkg).await;
    let path = format!("/v3/builds/{}/logs?follow=true", build.guid);
    let (log, live) = follow(r.replica(0), r.replica(1), &build.guid, &path).await;
    assert!(live, "lines reached A while the build was staging:\n{log}");
    for line in ["counted: staging flow-run", "counted: staged flow-run"] {
        assert_eq!(log.matches(line).count(), 1, "{line}:\n{log}");
    }
    let done = r
        .replica(0)
        .wait_build(&build.guid, Duration::from_secs(60))
        .await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", r.logs());
    assert_eq!(r.runs(), ["flow-run"], "staged once");
    let droplet = done.droplet.expect("a droplet").guid;

    // The droplet downloaded from B (whichever replica made it): its checksum holds.
    let resp = r
        .replica(1)
        .http
        .get(
            r.replica(1)
                .svc
                .url(&format!("/v3/droplets/{droplet}/download")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let tgz = resp.bytes().await.unwrap();
    let d: cf::Droplet = r
        .replica(1)
        .get_as(&format!("/v3/droplets/{droplet}"))
        .await;
    assert_eq!(
        d.checksum.value,
        Some(sha256_hex(&tgz)),
        "the droplet's bytes"
    );

    // The image pulled from B's embedded registry by skopeo and podman, and run: it answers.
    let image = r.local(1, &d.image.expect("an image"));
    let digest = image.split('@').nth(1).unwrap();
    assert_eq!(
        skopeo_inspect(&format!("docker://{image}"), false)["Digest"],
        digest
    );
    let podman = Podman::new();
    let port = free_port();
    let c = podman.run(&image, port);
    let page = wait_for_page(port, "/", Duration::from_secs(30));
    assert_eq!(page.as_deref(), Some("flow-run\n"), "{}", c.logs());
    drop(c);

    // Any replica tells the app's current state.
    r.replica(2).set_current_droplet(&app, &droplet).await;
    let (_, a) = r
        .replica(0)
        .get(&format!("/v3/apps/{app}/droplets/current"))
        .await;
    assert_eq!(a["guid"], droplet.as_str(), "{a}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_staging_replica_hands_its_build_over_after_the_lease() {
    let mut r = Replicas::start(3, Backing::PostgresS3, &["--build-lease", "3s"]);
    let (_, pkg) = r.counted_package(0, 1, "slow", "slow-run", 8).await;
    let build = r.replica(2).stage(&pkg).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Killed while its buildpack runs (the run counted).
    let first = loop {
        if let ([one], 1) = (&r.staging_on(&build.guid)[..], r.runs().len()) {
            break *one;
        }
        assert!(Instant::now() < deadline, "never staged:\n{}", r.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    r.kill9(first);
    let other = (first + 1) % 3;
    let done = r
        .replica(other)
        .wait_build(&build.guid, Duration::from_secs(120))
        .await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", r.logs());
    let took_over: Vec<usize> = r.staging_on(&build.guid);
    assert_eq!(took_over.len(), 2, "staged by two replicas: {took_over:?}");
    assert!(took_over.contains(&first));
    let (_, _, log) = r
        .replica(other)
        .text(&format!("/v3/builds/{}/logs", build.guid), None)
        .await;
    assert!(
        log.contains("previous attempt's replica stopped") && log.contains("(attempt 2 of 3)"),
        "the retry is in the log:\n{log}"
    );
    assert_eq!(r.runs(), ["slow-run", "slow-run"], "one run cut, one whole");
    // Nothing is left STAGING.
    let (_, builds) = r.replica(other).get("/v3/builds?states=STAGING").await;
    assert_eq!(builds["pagination"]["total_results"], 0, "{builds}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_restart_answers_503_then_the_replicas_recover_by_themselves() {
    let mut r = Replicas::start(3, Backing::PostgresS3, &[]);
    let app = r.replica(0).app("steady").await;
    r.stop_database();
    for i in 0..3 {
        let (status, v) = r.replica(i).get(&format!("/v3/apps/{app}")).await;
        assert_eq!(
            (status, v["errors"][0]["code"].as_u64()),
            (503, Some(10015)),
            "replica {i} while the database is down: {v}"
        );
        assert_eq!(v["errors"][0]["title"], "CF-ServiceUnavailable", "{v}");
        let (status, ready) = r.replica(i).get("/readyz").await;
        assert_eq!(status, 503, "{ready}");
        assert_eq!(r.replica(i).get("/healthz").await.0, 200, "alive all along");
    }
    r.start_database();
    for i in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, v) = r.replica(i).get(&format!("/v3/apps/{app}")).await;
            if status == 200 {
                assert_eq!(v["name"], "steady");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {i} stuck at {status}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // And they stage again.
    let (_, pkg) = r.counted_package(1, 2, "after", "after-run", 0).await;
    let build = r.replica(0).stage(&pkg).await;
    let done = r
        .replica(1)
        .wait_build(&build.guid, Duration::from_secs(60))
        .await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", r.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_builds_of_one_app_on_two_replicas_keep_both_tags() {
    let r = Replicas::start(2, Backing::PostgresS3, &["--concurrency", "1"]);
    let (_, pkg) = r.counted_package(0, 1, "twice", "twice-run", 1).await;
    let (a, b) = tokio::join!(r.replica(0).stage(&pkg), r.replica(1).stage(&pkg));
    let mut tags = Vec::new();
    for build in [a, b] {
        let done = r
            .replica(0)
            .wait_build(&build.guid, Duration::from_secs(60))
            .await;
        assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", r.logs());
        tags.push(done.droplet.expect("a droplet").guid);
    }
    // Each droplet's tag is in the repository's index, read by either replica.
    let oci = Some("application/vnd.oci.image.manifest.v1+json");
    for tag in &tags {
        for i in 0..2 {
            let path = format!("/v2/apps/twice/manifests/{tag}");
            let (status, _, body) = r.replica(i).text(&path, oci).await;
            assert_eq!(
                status,
                200,
                "tag {tag} on replica {i}: {body}\n{}",
                r.logs()
            );
        }
    }
}
