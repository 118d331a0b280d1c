//! The Dockerfile builds an image of the service that runs, stages in its bubblewrap sandbox
//! inside the container, and stops at once on SIGTERM.
//!
//! No image registry beyond Debian's mirrors is reachable here, so the Rust build stage is
//! replaced with this test's own binary (`--build-context build=...`) and the Debian base is
//! made with mmdebstrap; every other instruction of the Dockerfile runs as written.

use crate::support::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A minimal Debian bookworm rootfs tarball, made once and kept beside the Debian stack.
fn base_tarball() -> PathBuf {
    let path = PathBuf::from("/var/tmp/dropship-test/debian-bookworm-minbase.tar");
    if path.is_file() {
        return path;
    }
    require("mmdebstrap", "mmdebstrap");
    progress("making a minimal Debian base with mmdebstrap (once)");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("partial");
    let st = Command::new("mmdebstrap")
        .args(["--quiet", "--format=tar", "--variant=minbase", "bookworm"])
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(st.success(), "mmdebstrap failed");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn run(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?} failed:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes the named container when the test ends, passed or not.
struct Removed<'a>(&'a Podman, &'static str);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd().args(["rm", "-f", "-t", "1", self.1]).output();
    }
}

#[test]
fn the_image_builds_runs_the_service_and_stages_inside() {
    let podman = Podman::new();
    let tmp = tempdir();
    let base = base_tarball();
    run(podman.cmd().args([
        "import",
        base.to_str().unwrap(),
        "localhost/dropship-test-base:bookworm",
    ]));
    let ctx = tmp.path().join("build-stage");
    std::fs::create_dir_all(ctx.join("out")).unwrap();
    std::fs::copy(bin(), ctx.join("out/dropship")).unwrap();
    progress("podman build of the Dockerfile");
    run(podman.cmd().args([
        "build",
        "--network",
        "host",
        "--build-arg",
        "BASE=localhost/dropship-test-base:bookworm",
        "--build-context",
        &format!("build={}", ctx.display()),
        "-t",
        "localhost/dropship:test",
        project_dir().to_str().unwrap(),
    ]));
    let version = run(podman
        .cmd()
        .args(["run", "--rm", "localhost/dropship:test", "--version"]));
    assert!(version.starts_with("dropship "), "{version}");

    let port = free_port();
    let _cleanup = Removed(&podman, "dropship-svc");
    progress("running the image: dropship serve in a container");
    run(podman.cmd().args([
        "run",
        "-d",
        "--name",
        "dropship-svc",
        "--net=host",
        "-e",
        &format!("DROPSHIP_LISTEN=127.0.0.1:{port}"),
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "unmask=ALL",
        "localhost/dropship:test",
    ]));
    let logs = || run(podman.cmd().args(["logs", "dropship-svc"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_status(port, "/healthz") != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the service never answered:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A push from outside is staged by the containerised service, in its sandbox.
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "hi from the container\n").unwrap();
    let api = format!("http://127.0.0.1:{port}");
    progress("dropship push to the containerised service");
    let o = Command::new(bin())
        .args(["push", site.to_str().unwrap(), "--api", &api])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n--- service\n{}", text(&o), logs());
    let image = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        image.starts_with(&format!("127.0.0.1:{port}/apps/site@sha256:")),
        "{image}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("Staticfile buildpack"));
    skopeo_inspect(&format!("docker://{image}"), false);

    // SIGTERM stops it promptly (no waiting for the kill timeout).
    let started = Instant::now();
    run(podman.cmd().args(["stop", "-t", "20", "dropship-svc"]));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        started.elapsed()
    );
    let _ = podman.cmd().args(["rm", "-f", "dropship-svc"]).output();
}
