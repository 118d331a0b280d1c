//! `--compression zstd` through the binary: the image's new layers are `tar+zstd`, skopeo reads
//! it and podman pulls and runs it; a stack whose layers are zstd unpacks for the sandbox; a
//! Docker-flavoured stack (no zstd type) is refused before staging, naming the way out.

use crate::support::*;
use std::process::Command;
use std::time::Duration;

const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

fn site(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>zstd site</h1>\n").unwrap();
    // Incompressible bytes in the middle of the layer.
    random_file(&dir.join("assets/noise.bin"), 2 << 20);
    std::fs::create_dir_all(dir.join("zz")).unwrap();
    std::fs::write(dir.join("zz/index.html"), "after the noise\n").unwrap();
    dir.to_str().unwrap().to_string()
}

/// `skopeo copy` between two references of the test registry, with extra flags.
fn skopeo_copy(from: &str, to: &str, flags: &[&str]) {
    require("skopeo", "skopeo");
    let o = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(flags)
        .args([from, to])
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo copy {from} {to}: {}", text(&o));
}

fn layer_types(reference: &str) -> Vec<String> {
    let raw = skopeo_inspect(reference, true);
    raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_zstd_image_on_a_zstd_stack_is_pulled_and_run_by_podman() {
    let reg = Registry::start();
    let tmp = tempdir();
    let gzip_stack = busybox_stack(
        tmp.path(),
        &format!("docker://{}/stacks/busybox:latest", reg.host()),
    );
    // The same stack with its layers recompressed as zstd: the sandbox's rootfs is unpacked
    // from them (a new manifest digest: not in the stack cache).
    let stack = format!("docker://{}/stacks/busybox-zstd:latest", reg.host());
    skopeo_copy(&gzip_stack, &stack, &["--dest-compress-format", "zstd"]);
    assert!(layer_types(&stack).iter().all(|t| t == ZSTD_LAYER));

    let target = format!("docker://{}/apps/zsite:v1", reg.host());
    let app = site(&tmp.path().join("zsite"));
    // A stack cache of its own: the shared one may hold this rootfs unpacked from the gzip
    // layers already (the same content).
    let cache = tmp.path().join("stack-cache");
    let b = build_json(&[
        &app,
        "--stack",
        &stack,
        "--stack-cache",
        cache.to_str().unwrap(),
        "--image",
        &target,
        "--compression",
        "zstd",
    ]);
    assert_eq!(b["detected_buildpack"], "staticfile");
    let types = layer_types(&target);
    assert!(types.len() >= 3, "{types:?}");
    assert!(types.iter().all(|t| t == ZSTD_LAYER), "{types:?}");
    let reported: Vec<_> = b["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["media_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reported, types, "--json names the layers as pushed");
    assert_eq!(skopeo_inspect(&target, false)["Digest"], b["digest"]);

    let podman = Podman::new();
    let port = free_port();
    let c = podman.run(&target.replace("docker://", ""), port);
    let page = wait_for_page(port, "/", Duration::from_secs(30)).unwrap_or_default();
    assert!(page.contains("zstd site"), "{page:?}\n{}", c.logs());
    let after = wait_for_page(port, "/zz/", Duration::from_secs(5)).unwrap_or_default();
    assert!(after.contains("after the noise"), "{after}\n{}", c.logs());
}

#[test]
fn gzip_is_the_default_and_zstd_on_a_docker_stack_is_refused_before_staging() {
    let reg = Registry::start();
    let tmp = tempdir();
    let oci_stack = busybox_stack(
        tmp.path(),
        &format!("docker://{}/stacks/busybox:latest", reg.host()),
    );
    let app = site(&tmp.path().join("site"));
    let target = format!("docker://{}/apps/site:v1", reg.host());
    build_json(&[&app, "--stack", &oci_stack, "--image", &target]);
    let types = layer_types(&target);
    assert!(
        types.iter().all(|t| t.ends_with("tar+gzip")),
        "gzip by default: {types:?}"
    );

    let docker_stack = format!("docker://{}/stacks/busybox-v2s2:latest", reg.host());
    skopeo_copy(&oci_stack, &docker_stack, &["--format", "v2s2"]);
    let o = dropship(&[
        "build",
        &app,
        "--stack",
        &docker_stack,
        "--image",
        &target,
        "--compression",
        "zstd",
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Docker schema 2") && err.contains("--compression gzip"),
        "{err}"
    );
    assert!(
        !err.contains("==> staging") && !err.contains("Staticfile buildpack"),
        "refused before staging: {err}"
    );
}

#[test]
fn the_service_compresses_with_zstd_when_its_config_says_so() {
    let tmp = tempdir();
    let config = tmp.path().join("dropship.toml");
    std::fs::write(&config, "compression = \"zstd\"\n").unwrap();
    let svc = Service::start_with(&["--config", config.to_str().unwrap()]);
    let app = site(&tmp.path().join("zsvc"));
    let o = Command::new(bin())
        .args(["push", &app, "--api", &svc.base()])
        .env_remove("DROPSHIP_API")
        .env_remove("DROPSHIP_TOKEN")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{}", text(&o), svc.log());
    let image = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let types = layer_types(&format!("docker://{image}"));
    // The zero-config stack's layers, then the launcher and the droplet: ours are zstd.
    assert!(types.len() >= 3, "{types:?}");
    assert!(
        types[types.len() - 2..].iter().all(|t| t == ZSTD_LAYER),
        "{types:?}"
    );
}
