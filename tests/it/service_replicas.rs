//! Three `dropship serve` replicas sharing one store (support/replicas.rs): what one replica
//! writes the others answer, tokens one issues the others accept (one signing key, one public
//! address) while a service with another key is refused, a build sent to one is staged once,
//! its image named by the shared public address and served by any replica, and a replica
//! killed with -9 leaves the others answering; 12 builds sent round the replicas are each
//! staged once, by all of them; SIGTERM of a replica staging a build loses nothing. Each on
//! one shared data dir (SQLite and local files) and on PostgreSQL and S3 (a data dir each).

use crate::support::api::*;
use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_one_data_dir_share_apps_tokens_and_builds() {
    replicas_share_apps_tokens_and_builds(Backing::SharedDataDir).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_postgres_and_s3_share_apps_tokens_and_builds() {
    replicas_share_apps_tokens_and_builds(Backing::PostgresS3).await;
}

async fn replicas_share_apps_tokens_and_builds(backing: Backing) {
    let mut r = Replicas::start(3, backing, &["--user", "admin:pw-admin"]);
    assert_eq!(r.replica(2).get("/v3/apps").await.0, 401, "login is on");
    let token = r.login(0, "admin", "pw-admin");
    let issuer = uaa::claims(&token)["iss"].as_str().unwrap().to_string();
    assert_eq!(issuer, format!("http://{PUBLIC_ADDRESS}/oauth/token"));
    r.set_token(&token);

    // App made on A, package uploaded to B, build created on C, followed on A: staged once.
    let (app, pkg) = r.counted_package(0, 1, "shared-app", "shared-run", 0).await;
    for i in [1, 2] {
        let (status, v) = r.replica(i).get(&format!("/v3/apps/{app}")).await;
        assert_eq!(
            (status, v["name"].as_str()),
            (200, Some("shared-app")),
            "{v}"
        );
        let href = v["links"]["self"]["href"].as_str().unwrap();
        assert!(
            href.starts_with(&format!("http://{PUBLIC_ADDRESS}/")),
            "{href}"
        );
    }
    let build = r.replica(2).stage(&pkg).await;
    let done = r
        .replica(0)
        .wait_build(&build.guid, Duration::from_secs(120))
        .await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", r.logs());
    assert_eq!(r.runs(), ["shared-run"], "staged once");
    let by_replica: Vec<usize> = (0..3).map(|i| r.stagings(i)).collect();
    assert_eq!(by_replica.iter().sum::<usize>(), 1, "{by_replica:?}");

    // Its image is named by the shared address; every replica serves it under its own.
    let droplet: cf::Droplet = r
        .replica(1)
        .get_as(&format!("/v3/droplets/{}", done.droplet.unwrap().guid))
        .await;
    let image = droplet.image.expect("an image");
    assert!(image.starts_with(&format!("{PUBLIC_ADDRESS}/")), "{image}");
    for i in 0..3 {
        let local = r.local(i, &image);
        let (repo, digest) = local.split_once('/').unwrap().1.split_once('@').unwrap();
        let manifest = format!("/v2/{repo}/manifests/{digest}");
        let oci = Some("application/vnd.oci.image.manifest.v1+json");
        assert_eq!(r.replica(i).text(&manifest, oci).await.0, 200, "{local}");
    }

    // A service given the same key by DROPSHIP_SIGNING_KEY, with its own data dir, issues
    // tokens the replicas accept; one that made its own key, tokens they refuse.
    for (keyed, accepted) in [(true, 200), (false, 401)] {
        let dir = tempdir();
        let data = dir.path().join("data");
        let env = match keyed {
            true => vec![(
                "DROPSHIP_SIGNING_KEY",
                r.signing_key().display().to_string(),
            )],
            false => vec![],
        };
        let args = [
            "--public-address",
            PUBLIC_ADDRESS,
            "--user",
            "admin:pw-admin",
        ];
        let other = Service::start_env(dir, data, &args, &env);
        let (status, v) = uaa::password_grant(&other, "admin", "pw-admin");
        assert_eq!(status, 200, "{v}");
        let theirs = v["access_token"].as_str().unwrap();
        assert_eq!(uaa::claims(theirs)["iss"].as_str(), Some(issuer.as_str()));
        let seen = uaa::get(&r.replica(2).svc, "/v3/apps", theirs).0;
        assert_eq!(seen, accepted, "keyed: {keyed}");
    }

    // kill -9 of one replica leaves the others answering; it comes back on the same store.
    r.kill9(1);
    assert_eq!(r.replica(2).get(&format!("/v3/apps/{app}")).await.0, 200);
    r.revive(1);
    assert_eq!(r.replica(1).get(&format!("/v3/apps/{app}")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_sent_to_replicas_on_one_data_dir_are_each_staged_once() {
    twelve_builds_are_each_staged_once(Backing::SharedDataDir).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_sent_to_replicas_on_postgres_and_s3_are_each_staged_once() {
    twelve_builds_are_each_staged_once(Backing::PostgresS3).await;
}

/// 12 builds of one-second stagings sent at once, round the replicas (2 builds at a time
/// each): every one STAGED, every run counted once, every replica staged some.
async fn twelve_builds_are_each_staged_once(backing: Backing) {
    let r = Replicas::start(3, backing, &["--concurrency", "2"]);
    let mut packages = Vec::new();
    for n in 0..12 {
        let name = format!("app-{n:02}");
        let (_, pkg) = r.counted_package(n % 3, (n + 1) % 3, &name, &name, 1).await;
        packages.push(pkg);
    }
    let sent = packages
        .iter()
        .enumerate()
        .map(|(n, pkg)| r.replica((n + 2) % 3).stage(pkg));
    let builds = futures_util::future::join_all(sent).await;
    for (n, b) in builds.iter().enumerate() {
        let done = r
            .replica(n % 3)
            .wait_build(&b.guid, Duration::from_secs(180))
            .await;
        assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", r.logs());
    }
    let mut runs = r.runs();
    runs.sort();
    let expected: Vec<String> = (0..12).map(|n| format!("app-{n:02}")).collect();
    assert_eq!(runs, expected, "each staged exactly once");
    let by_replica: Vec<usize> = (0..3).map(|i| r.stagings(i)).collect();
    assert_eq!(by_replica.iter().sum::<usize>(), 12, "{by_replica:?}");
    assert!(by_replica.iter().all(|&n| n > 0), "spread: {by_replica:?}");
}

/// SIGTERM to the replica staging a slow build: it exits within its grace period, and the
/// build, finished there, is STAGED for the others, staged once.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_of_a_replica_on_one_data_dir_loses_no_build() {
    sigterm_of_a_replica_loses_no_build(Backing::SharedDataDir).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_of_a_replica_on_postgres_and_s3_loses_no_build() {
    sigterm_of_a_replica_loses_no_build(Backing::PostgresS3).await;
}

async fn sigterm_of_a_replica_loses_no_build(backing: Backing) {
    let mut r = Replicas::start(3, backing, &[]);
    let (_, pkg) = r.counted_package(0, 0, "slow", "slow-run", 3).await;
    let build = r.replica(1).stage(&pkg).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while r.runs().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "never staged:\n{}",
            r.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(r.staging_on(&build.guid), [1], "{}", r.logs());
    let (status, took) = r.terminate(1);
    assert!(status.success(), "{status}\n{}", r.replica(1).svc.log());
    assert!(took < Duration::from_secs(25), "{took:?}");
    let done = r
        .replica(2)
        .wait_build(&build.guid, Duration::from_secs(120))
        .await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", r.logs());
    assert_eq!(r.runs(), ["slow-run"]);
}
