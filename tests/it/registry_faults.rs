//! Registry failures, injected between the `dropship` binary and a real CNCF registry by an
//! in-process HTTP proxy: transient 5xx and connection resets must be retried, permanent
//! failures must end the build quickly with an error naming the registry's answer, slow
//! registries must not look like hangs.
//!
//! The proxy is `support/fault_proxy/`.

use crate::support::fault_proxy::*;
use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Builds through the proxy
// ---------------------------------------------------------------------------------------------

const REPO: &str = "apps/x";
const UPLOADS: &str = "/v2/apps/x/blobs/uploads";
const BLOBS: &str = "/v2/apps/x/blobs/sha256:";
const MANIFESTS: &str = "/v2/apps/x/manifests/";

struct Setup {
    tmp: tempfile::TempDir,
    reg: Registry,
    /// An OCI-layout stack: all registry traffic is the target push.
    stack: String,
    app: PathBuf,
}

fn setup(big_file: bool) -> Setup {
    let tmp = tempdir();
    let reg = Registry::start();
    let stack = busybox_stack(
        tmp.path(),
        &format!("oci:{}:busybox", tmp.path().join("stack").display()),
    );
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "<h1>fault-tolerant</h1>\n").unwrap();
    if big_file {
        random_file(&app.join("blob.bin"), 20 << 20);
    }
    Setup {
        tmp,
        reg,
        stack,
        app,
    }
}

struct Run {
    out: Output,
    took: Duration,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        let stdout = String::from_utf8_lossy(&self.out.stdout);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("bad JSON ({e}):\n{}", text(&self.out)))
    }
    /// The `warning: ... retry N/M ...` lines.
    fn retries(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("warning:") && l.contains("retry"))
            .collect()
    }
}

/// `dropship build APP --stack STACK --image docker://PROXY/apps/x:TAG --json`, layers
/// uploaded from their files (not streamed while packed: `stream_layers` tests that), so that
/// the faults hit the upload path these tests are about.
fn build_via(s: &Setup, stack: &str, image: &str) -> Run {
    let started = Instant::now();
    let env = [("DROPSHIP_STREAM_LAYERS", "0")];
    let out = dropship_env(
        &[
            "build",
            s.app.to_str().unwrap(),
            "--stack",
            stack,
            "--image",
            image,
            "--json",
        ],
        &env,
    );
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Run { out, took, stderr }
}

fn build(s: &Setup, proxy: &Proxy, tag: &str) -> Run {
    let run = build_via(
        s,
        &s.stack,
        &format!("docker://{}/{REPO}:{tag}", proxy.host()),
    );
    proxy.settle();
    run
}

/// The build's output and the proxy's request log (also printed with DROPSHIP_FAULTS_VERBOSE=1).
fn context(run: &Run, proxy: &Proxy) -> String {
    let ctx = format!(
        "took {:.1}s\n{}\n--- proxy requests\n{}",
        run.took.as_secs_f64(),
        text(&run.out),
        proxy.dump()
    );
    if std::env::var_os("DROPSHIP_FAULTS_VERBOSE").is_some() {
        eprintln!(
            "=== {}\n{ctx}",
            std::thread::current().name().unwrap_or("?")
        );
    }
    ctx
}

fn assert_success(run: &Run, proxy: &Proxy) {
    assert!(
        run.out.status.success(),
        "build failed:\n{}",
        context(run, proxy)
    );
}

/// The digest the registry itself (not via the proxy) serves for `repo:tag`, per skopeo.
fn registry_digest(reg: &Registry, repo: &str, tag: &str) -> serde_json::Value {
    skopeo_inspect(&format!("docker://{}/{repo}:{tag}", reg.host()), false)["Digest"].clone()
}

fn is_upload(s: &Seen) -> bool {
    s.path.starts_with(UPLOADS) && ["POST", "PATCH", "PUT"].contains(&s.method.as_str())
}

/// The last stderr line: `dropship: build failed: ...`.
fn error_line(run: &Run) -> String {
    run.stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The proxy itself: relays answers and points absolute Locations at itself.
#[test]
fn proxy_relays_and_rewrites_locations() {
    let reg = Registry::start();
    let proxy = Proxy::start(
        reg.port,
        vec![Rule::on(&["GET"], "/v2/nothing", Fault::Status(503)).first(1)],
    );
    assert_eq!(http_status(proxy.port, "/v2/"), Some(200));
    assert_eq!(http_status(proxy.port, "/v2/nothing/tags/list"), Some(503));
    assert_eq!(http_status(proxy.port, "/v2/nothing/tags/list"), Some(404));
    // A client that names the registry in Host gets a Location on the registry's port.
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v2/probe/blobs/uploads/ HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
        reg.host()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let location = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"))
        .unwrap_or_else(|| panic!("no Location: {answer}"));
    assert!(
        location.contains(&format!(
            "//127.0.0.1:{}/v2/probe/blobs/uploads/",
            proxy.port
        )),
        "{location}"
    );
    assert_eq!(proxy.shared.location_rewrites.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.count(|s| s.status == Some(503)), 1);
    proxy.assert_clean();
}

/// (1) The first three blob-upload requests get 503: retried, the build succeeds, the registry
/// has the image dropship reported. Then a rebuild of the same app uploads nothing.
#[test]
fn transient_503_on_uploads_is_retried_and_rebuild_uploads_nothing() {
    let s = setup(false);
    let proxy = Proxy::start(
        s.reg.port,
        vec![Rule::on(&["POST", "PATCH", "PUT"], UPLOADS, Fault::Status(503)).first(3)],
    );
    let run = build(&s, &proxy, "1");
    assert_success(&run, &proxy);
    let ctx = context(&run, &proxy);
    proxy.assert_clean();
    assert_eq!(proxy.faults(), 3, "{ctx}");

    let retries = run.retries();
    assert_eq!(retries.len(), 3, "one retry warning per 503:\n{ctx}");
    for w in &retries {
        assert!(
            w.contains(&format!(
                "warning: {}: uploading blob sha256:",
                proxy.host()
            )),
            "{w}\n{ctx}"
        );
        assert!(w.contains("HTTP 503"), "{w}\n{ctx}");
        assert!(w.contains(", retry ") && w.contains("/4 in "), "{w}\n{ctx}");
    }
    let b = run.json();
    assert_eq!(
        b["push"]["uploaded"].as_array().unwrap().len(),
        4,
        "config, base, launcher, droplet:\n{b:#}"
    );
    assert_eq!(registry_digest(&s.reg, REPO, "1"), b["digest"], "{ctx}");
    // Every blob went up exactly once in the end (committing PUTs that the registry answered 201).
    let committed =
        proxy.count(|r| r.method == "PUT" && r.path.starts_with(UPLOADS) && r.status == Some(201));
    assert_eq!(committed, 4, "{ctx}");

    // Rebuild, through a proxy without faults: every blob is already there.
    let clean = Proxy::start(s.reg.port, vec![]);
    let again = build(&s, &clean, "1");
    assert_success(&again, &clean);
    let b2 = again.json();
    let ctx2 = context(&again, &clean);
    assert_eq!(b2["push"]["uploaded"], serde_json::json!([]), "{ctx2}");
    assert_eq!(
        b2["push"]["existing"].as_array().unwrap().len(),
        4,
        "{ctx2}"
    );
    assert_eq!(
        clean.count(is_upload),
        0,
        "no upload request at all:\n{ctx2}"
    );
    assert_eq!(b2["digest"], b["digest"], "same app, same image:\n{ctx2}");
    assert!(again.retries().is_empty(), "{ctx2}");
    clean.assert_clean();
}

/// (2) Connection resets on the first two PATCHes (one mid-body, one after the whole chunk)
/// and on a PATCH in the middle of a 20 MB layer: each upload restarts, the build succeeds.
#[test]
fn connection_resets_on_patch_are_retried() {
    let s = setup(true);
    let proxy = Proxy::start(
        s.reg.port,
        vec![
            Rule::on(&["PATCH"], UPLOADS, Fault::ResetEarly).first(1),
            Rule::on(&["PATCH"], UPLOADS, Fault::Reset).skip(1).first(1),
            Rule::on(&["PATCH"], UPLOADS, Fault::ResetEarly)
                .later_chunks()
                .skip(1)
                .first(1),
        ],
    );
    let run = build(&s, &proxy, "1");
    assert_success(&run, &proxy);
    let ctx = context(&run, &proxy);
    proxy.assert_clean();
    // Under load the "reset after the body" rule is occasionally not reached (seen once in CI
    // among dozens of runs, cause not pinned down): the resets mid-body, the one past a blob's
    // first chunk, and one retry warning per reset that happened are what this test holds to.
    let faults = proxy.faults();
    assert!((2..=3).contains(&faults), "{faults} faults:\n{ctx}");
    let retries = run.retries();
    assert_eq!(retries.len(), faults, "one retry warning per reset:\n{ctx}");
    for w in &retries {
        assert!(
            w.contains(&format!(
                "warning: {}: uploading blob sha256:",
                proxy.host()
            )),
            "{w}\n{ctx}"
        );
    }
    let mid_blob = proxy.count(|r| {
        r.status.is_none()
            && r.content_range
                .as_deref()
                .is_some_and(|c| !c.starts_with("0-"))
    });
    assert_eq!(
        mid_blob, 1,
        "the third reset hits a blob past its first chunk:\n{ctx}"
    );
    let b = run.json();
    assert_eq!(registry_digest(&s.reg, REPO, "1"), b["digest"], "{ctx}");
    let big = b["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        big > 20_000_000,
        "the droplet layer carries the 20 MB file:\n{b:#}"
    );
    // The big layer went up in several PATCHes.
    let patches = proxy.count(|r| r.method == "PATCH" && r.status == Some(202));
    assert!(patches >= 6, "{ctx}");
    eprintln!(
        "connection_resets: {patches} PATCHes answered, largest {} bytes; took {:.1}s",
        proxy
            .log()
            .iter()
            .filter(|r| r.method == "PATCH")
            .map(|r| r.body_len)
            .max()
            .unwrap_or(0),
        run.took.as_secs_f64()
    );
}

/// (3) Every manifest PUT gets 500: the build fails after bounded retries, quickly, naming the
/// registry, the operation and the status; no tag appears in the registry.
#[test]
fn manifest_put_500_fails_after_bounded_retries() {
    let s = setup(false);
    let proxy = Proxy::start(
        s.reg.port,
        vec![Rule::on(&["PUT"], MANIFESTS, Fault::Status(500))],
    );
    let run = build(&s, &proxy, "1");
    let ctx = context(&run, &proxy);
    proxy.assert_clean();
    assert_eq!(run.out.status.code(), Some(1), "{ctx}");
    assert!(run.took < Duration::from_secs(60), "{ctx}");
    assert_eq!(
        proxy.count(|r| r.method == "PUT" && r.path.starts_with(MANIFESTS)),
        5,
        "5 attempts:\n{ctx}"
    );
    assert_eq!(run.retries().len(), 4, "{ctx}");
    // Backoff 0.5 + 1 + 2 + 4 s between the five PUTs.
    let puts: Vec<Instant> = proxy
        .log()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with(MANIFESTS))
        .map(|r| r.at)
        .collect();
    let spread = puts.last().unwrap().duration_since(puts[0]);
    assert!(
        spread >= Duration::from_millis(7000) && spread < Duration::from_secs(20),
        "{spread:?}\n{ctx}"
    );

    let err = error_line(&run);
    assert!(err.starts_with("dropship: build failed:"), "{ctx}");
    for want in [proxy.host().as_str(), "pushing manifest", "HTTP 500"] {
        assert!(
            err.contains(want),
            "error line lacks {want:?}: {err}\n{ctx}"
        );
    }
    // --json: one error object on stdout, with the exit code and what failed.
    let v: serde_json::Value = serde_json::from_slice(&run.out.stdout).expect(&ctx);
    assert_eq!(
        (v["error"]["code"].as_i64(), v["error"]["kind"].as_str()),
        (Some(1), Some("registry")),
        "{ctx}"
    );
    // Not in the registry.
    assert_eq!(
        http_status(s.reg.port, &format!("/v2/{REPO}/manifests/1")),
        Some(404)
    );
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{}/{REPO}:1", s.reg.host()))
        .output()
        .unwrap();
    assert!(!o.status.success(), "the tag must not exist:\n{}", text(&o));
}

/// (4a) 401 on blob HEADs is an answer, not a transient failure: one attempt per blob, no
/// retry, a quick failure naming the status.
#[test]
fn unauthorized_blob_head_fails_fast_without_retry() {
    let s = setup(false);
    let proxy = Proxy::start(
        s.reg.port,
        vec![Rule::on(&["HEAD"], BLOBS, Fault::Status(401))],
    );
    let run = build(&s, &proxy, "1");
    let ctx = context(&run, &proxy);
    proxy.assert_clean();
    assert_eq!(run.out.status.code(), Some(1), "{ctx}");
    assert!(run.retries().is_empty(), "{ctx}");
    let heads: Vec<String> = proxy
        .log()
        .iter()
        .filter(|r| r.method == "HEAD")
        .map(|r| r.path.clone())
        .collect();
    assert!(
        !heads.is_empty() && heads.len() <= 3,
        "at most PARALLEL_BLOBS HEADs:\n{ctx}"
    );
    let mut unique = heads.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), heads.len(), "a HEAD was repeated:\n{ctx}");
    assert_eq!(proxy.count(is_upload), 0, "{ctx}");
    // No manifest is pushed (the build only asked, at its start, what the tag held).
    let put = |r: &Seen| r.method == "PUT" && r.path.starts_with(MANIFESTS);
    assert_eq!(proxy.count(put), 0, "{ctx}");
    let err = error_line(&run);
    assert!(
        err.contains(&proxy.host()) && err.contains("checking blob sha256:"),
        "{err}\n{ctx}"
    );
    assert!(err.contains("401"), "{err}\n{ctx}");
    assert!(err.to_lowercase().contains("unauthorized"), "{err}\n{ctx}");
    assert!(run.took < Duration::from_secs(20), "{ctx}");
}

/// (4b) 401 on opening an upload session: no retry either, and the message has the status.
#[test]
fn unauthorized_upload_fails_fast_without_retry() {
    let s = setup(false);
    let proxy = Proxy::start(
        s.reg.port,
        vec![Rule::on(&["POST"], UPLOADS, Fault::Status(401))],
    );
    let run = build(&s, &proxy, "1");
    let ctx = context(&run, &proxy);
    proxy.assert_clean();
    assert_eq!(run.out.status.code(), Some(1), "{ctx}");
    assert!(run.retries().is_empty(), "{ctx}");
    let posts = proxy.count(|r| r.method == "POST");
    assert!(
        (1..=3).contains(&posts),
        "at most one POST per blob in flight:\n{ctx}"
    );
    assert_eq!(
        proxy.count(|r| r.method == "PATCH" || r.method == "PUT"),
        0,
        "{ctx}"
    );
    let err = error_line(&run);
    for want in [proxy.host().as_str(), "uploading blob sha256:", "HTTP 401"] {
        assert!(
            err.contains(want),
            "error line lacks {want:?}: {err}\n{ctx}"
        );
    }
}

/// (5) A slow registry (1.5 s per upload request): the build succeeds, and without a TTY each
/// blob gets an "uploading" line and an "uploaded in" line with its real duration.
#[test]
fn slow_registry_succeeds_with_progress_lines() {
    let s = setup(false);
    let proxy = Proxy::start(
        s.reg.port,
        vec![Rule::on(
            &["POST", "PATCH", "PUT"],
            UPLOADS,
            Fault::Delay(Duration::from_millis(1500)),
        )],
    );
    let run = build(&s, &proxy, "1");
    assert_success(&run, &proxy);
    let ctx = context(&run, &proxy);
    proxy.assert_clean();
    assert!(run.retries().is_empty(), "{ctx}");
    let b = run.json();
    assert_eq!(registry_digest(&s.reg, REPO, "1"), b["digest"], "{ctx}");
    let uploaded: Vec<&str> = b["push"]["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(uploaded.len(), 4, "{ctx}");
    for d in uploaded {
        let short = &d.trim_start_matches("sha256:")[..12];
        assert!(
            run.stderr
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("uploading {short} ("))),
            "no 'uploading {short} (' line:\n{ctx}"
        );
        let done = run
            .stderr
            .lines()
            .find(|l| l.trim_start().starts_with(short) && l.contains("uploaded in"))
            .unwrap_or_else(|| panic!("no '{short} ... uploaded in' line:\n{ctx}"));
        // POST, PATCH and PUT each waited 1.5 s.
        let secs: f64 = done
            .rsplit("uploaded in ")
            .next()
            .unwrap()
            .trim_end_matches('s')
            .parse()
            .unwrap();
        assert!(secs >= 4.0, "{done}\n{ctx}");
    }
    assert!(run.took < Duration::from_secs(90), "{ctx}");
}

/// Cross-repository mounts: mounted when the registry agrees (201); uploaded when it declines
/// with 202 and an upload session, as the spec allows.
#[test]
fn mount_declined_with_202_falls_back_to_upload() {
    let s = setup(false);
    // The stack in the same registry, another repository; everything goes through the proxy.
    let proxy = Proxy::start(
        s.reg.port,
        vec![Rule::on(
            &["POST"],
            "/v2/apps/y/blobs/uploads",
            Fault::DeclineMount,
        )],
    );
    // (Applied to every POST of apps/y: those without a mount query pass unchanged.)
    let stack = busybox_stack(
        &s.tmp.path().join("rs"),
        &format!("docker://{}/stacks/busybox:latest", proxy.host()),
    );
    let base_layer = {
        let m = skopeo_inspect(
            &format!("docker://{}/stacks/busybox:latest", s.reg.host()),
            true,
        );
        m["layers"][0]["digest"].as_str().unwrap().to_string()
    };

    let run = build_via(&s, &stack, &format!("docker://{}/apps/x:1", proxy.host()));
    assert_success(&run, &proxy);
    let b = run.json();
    assert_eq!(
        b["push"]["mounted"],
        serde_json::json!([base_layer]),
        "{}",
        context(&run, &proxy)
    );

    let run = build_via(&s, &stack, &format!("docker://{}/apps/y:1", proxy.host()));
    assert_success(&run, &proxy);
    let ctx = context(&run, &proxy);
    proxy.assert_clean();
    let b = run.json();
    let declined = proxy.count(|r| {
        matches!(r.fault, Some(Fault::DeclineMount))
            && r.query.contains("mount=")
            && r.status == Some(202)
    });
    assert_eq!(declined, 1, "one mount attempt, declined:\n{ctx}");
    assert_eq!(b["push"]["mounted"], serde_json::json!([]), "{ctx}");
    assert!(
        b["push"]["uploaded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == base_layer.as_str()),
        "{ctx}"
    );
    // A 202 is an answer the spec allows, not a failure: nothing to warn about.
    assert!(!run.stderr.contains("warning:"), "{ctx}");
    assert_eq!(registry_digest(&s.reg, "apps/y", "1"), b["digest"], "{ctx}");
}

/// Answers lost after the registry acted (a blob commit, the manifest PUT) and a 429 on a HEAD:
/// all retried, and the repeated requests are harmless (the registry's operations are idempotent).
#[test]
fn lost_answers_and_429_are_retried_idempotently() {
    let s = setup(false);
    let proxy = Proxy::start(
        s.reg.port,
        vec![
            Rule::on(&["HEAD"], BLOBS, Fault::Status(429)).first(1),
            Rule::on(&["PUT"], UPLOADS, Fault::LoseAnswer).first(1),
            Rule::on(&["PUT"], MANIFESTS, Fault::LoseAnswer).first(1),
        ],
    );
    let run = build(&s, &proxy, "1");
    assert_success(&run, &proxy);
    let ctx = context(&run, &proxy);
    proxy.assert_clean();
    assert_eq!(proxy.faults(), 3, "{ctx}");
    let retries = run.retries();
    assert_eq!(retries.len(), 3, "{ctx}");
    assert!(
        retries
            .iter()
            .any(|w| w.contains("checking blob") && w.contains("429")),
        "{ctx}"
    );
    assert!(
        retries.iter().any(|w| w.contains("uploading blob")),
        "{ctx}"
    );
    assert!(
        retries.iter().any(|w| w.contains("pushing manifest 1")),
        "{ctx}"
    );
    assert_eq!(
        proxy.count(|r| r.method == "PUT" && r.path.starts_with(MANIFESTS)),
        2,
        "{ctx}"
    );
    let b = run.json();
    assert_eq!(registry_digest(&s.reg, REPO, "1"), b["digest"], "{ctx}");
}
