//! Replicas: two `dropship serve` processes on one data dir (SQLite in WAL mode, the stand-in
//! for a shared PostgreSQL) share one build queue. Builds sent to either are each staged once,
//! by both; kill -9 of the replica staging a build hands it to the other once its lease lapses;
//! SIGTERM hands a running build over at once and the stopping replica exits within its grace.

use crate::support::api::*;
use crate::support::bounds::buildpack;
use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// The replica id a service reports in its metrics.
async fn replica_id(api: &Api) -> String {
    let (_, _, m) = api.text("/metrics", None).await;
    let line = m
        .lines()
        .find(|l| l.starts_with("dropship_build_leases_held{"))
        .unwrap_or_else(|| panic!("no leases metric: {m}"));
    line.split('"').nth(1).unwrap().to_string()
}

/// A metric's value on `api` (the first line starting with `name`).
async fn metric(api: &Api, name: &str) -> u64 {
    let (_, _, m) = api.text("/metrics", None).await;
    m.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name}: {m}"))
}

/// Waits until the build's log holds `needle`; returns the log.
async fn wait_log(api: &Api, build: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, log) = api.text(&format!("/v3/builds/{build}/logs"), None).await;
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "{needle:?} never came: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Which of `ids` the log says staged the build last (`staging on ID` / `... on ID`).
fn staged_by<'a>(log: &str, ids: &[&'a str]) -> Option<&'a str> {
    let line = log.lines().rfind(|l| l.contains("(attempt "))?;
    ids.iter()
        .copied()
        .find(|id| line.ends_with(id) || line.contains(&format!("on {id} ")))
}

fn bp_lifecycle(name: &str) -> Option<serde_json::Value> {
    Some(json!({"type": "buildpack", "data": {"buildpacks": [name]}}))
}

/// A buildpacks dir with buildpack `name`, which logs `going to sleep`, sleeps `secs`, and logs
/// `woke up`.
fn sleepy_buildpack(name: &str, secs: &str) -> tempfile::TempDir {
    let bps = tempdir();
    let script = format!("echo going to sleep; sleep {secs}; echo woke up");
    buildpack(bps.path(), name, &script);
    bps
}

/// Two replicas on one data dir started with `args`; app `name` built through replica `via`
/// with buildpack `bp` until its log says `going to sleep`: the replicas, their ids, the app,
/// the build and which replica stages it.
async fn staging_on_one_of_two(
    args: &[&str],
    name: &str,
    bp: &str,
    via: usize,
) -> ([Api; 2], [String; 2], String, String, usize) {
    let first = Api::start(args);
    let second = Api::on(first.svc.replica(args));
    let apis = [first, second];
    let ids = [replica_id(&apis[0]).await, replica_id(&apis[1]).await];
    let (app, pkg) = apis[via]
        .ready_package(name, &[("a.txt", b"a", 0o644)])
        .await;
    let (_, v) = apis[via].build(&pkg, bp_lifecycle(bp)).await;
    let build = v["guid"].as_str().unwrap().to_string();
    let log = wait_log(&apis[via], &build, "going to sleep").await;
    let id_refs = [ids[0].as_str(), ids[1].as_str()];
    let staging = staged_by(&log, &id_refs).expect("a replica");
    let at = usize::from(staging != ids[0]);
    (apis, ids, app, build, at)
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_sent_to_two_replicas_are_each_staged_once_by_both() {
    let bps = tempdir();
    let runs = tempdir();
    let count = runs.path().join("runs");
    std::fs::write(&count, "").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(runs.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&count, std::fs::Permissions::from_mode(0o666)).unwrap();
    let finalize = format!("cat name.txt >> {}; sleep 1; echo done", count.display());
    buildpack(bps.path(), "counted", &finalize);
    let args = [
        "--buildpacks-dir",
        bps.path().to_str().unwrap(),
        "--sandbox",
        "none",
        "--i-know-the-host-is-a-container",
        "--concurrency",
        "2",
    ];
    let a = Api::start(&args);
    let b = Api::on(a.svc.replica(&args));
    let ids = [replica_id(&a).await, replica_id(&b).await];
    assert_ne!(ids[0], ids[1]);
    let mut builds = Vec::new();
    for i in 0..8 {
        let name = format!("app-{i}\n");
        let (to, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (_, pkg) = to
            .ready_package(
                &format!("replicated-{i}"),
                &[("name.txt", name.as_bytes(), 0o644)],
            )
            .await;
        // Packages made on one replica are staged through the other.
        let (s, v) = other.build(&pkg, bp_lifecycle("counted")).await;
        assert_eq!(s, 201, "{v}");
        builds.push(v["guid"].as_str().unwrap().to_string());
    }
    let mut by = std::collections::BTreeMap::<String, usize>::new();
    let id_refs = [ids[0].as_str(), ids[1].as_str()];
    for build in &builds {
        let done = a.wait_build(build, Duration::from_secs(120)).await;
        assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", b.svc.log());
        let (_, _, log) = b.text(&format!("/v3/builds/{build}/logs"), None).await;
        assert_eq!(log.matches("(attempt ").count(), 1, "claimed once: {log}");
        let who = staged_by(&log, &id_refs).unwrap_or_else(|| panic!("which replica? {log}"));
        *by.entry(who.to_string()).or_default() += 1;
    }
    let mut ran: Vec<String> = std::fs::read_to_string(&count)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    ran.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("app-{i}")).collect();
    assert_eq!(ran, expected, "each build's buildpack ran exactly once");
    assert_eq!(by.len(), 2, "both replicas staged builds: {by:?}");
    for api in [&a, &b] {
        assert_eq!(metric(api, "dropship_build_queue_length").await, 0);
        assert_eq!(metric(api, "dropship_build_retries_total").await, 0);
    }
    eprintln!("builds staged per replica: {by:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_staging_replica_hands_its_build_to_the_other_after_the_lease() {
    let bps = sleepy_buildpack("slow", "4.021");
    let args = [
        "--buildpacks-dir",
        bps.path().to_str().unwrap(),
        "--build-lease",
        "3s",
    ];
    let (mut apis, ids, _, build, victim) = staging_on_one_of_two(&args, "orphan", "slow", 0).await;
    let survivor = 1 - victim;

    let killed = Instant::now();
    apis[victim].svc.kill9();
    let api = &apis[survivor];
    let done = api.wait_build(&build, Duration::from_secs(60)).await;
    assert_eq!(
        done.state,
        BuildState::Staged,
        "{done:?}\n{}",
        api.svc.log()
    );
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "the lease had to lapse first: {took:?}"
    );
    eprintln!("kill -9: staged by the other replica {took:?} later (lease 3 s, staging 4 s)");
    let (_, _, log) = api.text(&format!("/v3/builds/{build}/logs"), None).await;
    let retry = format!("staging it (attempt 2 of 3) on {}", ids[survivor]);
    assert!(log.contains(&retry), "{log}");
    assert!(log.contains("woke up"), "{log}");
    assert_eq!(log.matches("going to sleep").count(), 2, "{log}");
    assert_eq!(metric(api, "dropship_build_retries_total").await, 1);
    assert_eq!(metric(api, "dropship_builds{state=\"STAGING\"}").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_froze_past_its_lease_stops_the_build_and_records_nothing() {
    let bps = sleepy_buildpack("slow", "5.023");
    let args = [
        "--buildpacks-dir",
        bps.path().to_str().unwrap(),
        "--build-lease",
        "3s",
    ];
    let (apis, _, app, build, frozen) = staging_on_one_of_two(&args, "frozen", "slow", 0).await;
    let other = 1 - frozen;

    // Frozen past its lease: the other replica takes the build over; then it wakes up.
    apis[frozen].svc.signal(libc::SIGSTOP);
    let api = &apis[other];
    wait_log(api, &build, "(attempt 2 of 3)").await;
    apis[frozen].svc.signal(libc::SIGCONT);
    let done = api.wait_build(&build, Duration::from_secs(60)).await;
    assert_eq!(
        done.state,
        BuildState::Staged,
        "{done:?}\n{}",
        api.svc.log()
    );
    let (_, _, log) = api.text(&format!("/v3/builds/{build}/logs"), None).await;
    assert_eq!(log.matches("==> droplet ").count(), 1, "{log}");
    assert_eq!(log.matches("end of staging log").count(), 1, "{log}");
    let (_, droplets) = api.get(&format!("/v3/apps/{app}/droplets")).await;
    assert_eq!(
        droplets["resources"].as_array().unwrap().len(),
        1,
        "{droplets}"
    );
    // The woken replica learns the build is no longer its own when it next renews (or ends
    // its staging, whichever comes first).
    let deadline = Instant::now() + Duration::from_secs(10);
    let knows = |log: String| {
        log.contains("taken by another replica") || log.contains("no longer this replica's")
    };
    while !knows(apis[frozen].svc.log()) {
        assert!(Instant::now() < deadline, "{}", apis[frozen].svc.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&apis[frozen], "dropship_build_leases_held").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_hands_a_running_build_to_the_other_replica_at_once() {
    let bps = sleepy_buildpack("slowish", "4.022");
    let conf = tempdir();
    let file = conf.path().join("dropship.toml");
    std::fs::write(&file, "[limits]\nshutdown_grace = \"1s\"\n").unwrap();
    // The default lease (30 s): the hand-over does not wait for it.
    let args = [
        "--buildpacks-dir",
        bps.path().to_str().unwrap(),
        "--config",
        file.to_str().unwrap(),
    ];
    let (mut apis, ids, _, build, stopped) =
        staging_on_one_of_two(&args, "handed", "slowish", 1).await;
    let other = 1 - stopped;

    let (status, took) = apis[stopped].svc.terminate();
    assert!(status.success(), "{status}\n{}", apis[stopped].svc.log());
    assert!(took < Duration::from_secs(5), "the grace is 1 s: {took:?}");
    let api = &apis[other];
    let done = api.wait_build(&build, Duration::from_secs(20)).await;
    eprintln!("SIGTERM: exited after {took:?}");
    assert_eq!(
        done.state,
        BuildState::Staged,
        "{done:?}\n{}",
        api.svc.log()
    );
    let (_, _, log) = api.text(&format!("/v3/builds/{build}/logs"), None).await;
    assert!(log.contains("handed over to another replica"), "{log}");
    let again = format!("staging on {} (attempt 1 of 3)", ids[other]);
    assert!(log.contains(&again), "the hand-over used no attempt: {log}");
    assert_eq!(log.matches("going to sleep").count(), 2, "{log}");
    assert_eq!(
        log.matches("woke up").count(),
        1,
        "the first run was stopped: {log}"
    );
}
