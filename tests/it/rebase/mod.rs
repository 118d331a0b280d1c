//! `dropship rebase` through the binary: a patched stack under a built app (podman sees the
//! patch, the app layers stay, no app bytes move, the same digest as a rebuild), and the
//! refusals (another CF_STACK, an image that does not record its stack's layers).

use crate::support::*;
use std::path::Path;
use std::time::Duration;

/// A busybox rootfs under `dir` with `/etc/patch-level` saying `level`.
fn rootfs(dir: &Path, level: &str) -> String {
    let root = busybox_rootfs(dir);
    std::fs::write(root.join("etc/patch-level"), format!("{level}\n")).unwrap();
    root.to_str().unwrap().to_string()
}

fn import(rootfs: &str, target: &str, name: &str) {
    dropship_ok(&["stack", "import", rootfs, "--image", target, "--name", name]);
}

/// An app that serves the stack's `/etc/patch-level` (copied at start) and a page of its own.
fn app(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("public")).unwrap();
    std::fs::write(dir.join("public/index.html"), "the app\n").unwrap();
    std::fs::write(
        dir.join("Procfile"),
        "web: cp /etc/patch-level public/patch.txt && httpd -f -p $PORT -h public\n",
    )
    .unwrap();
    dir.to_str().unwrap().to_string()
}

fn rebase_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["rebase"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = dropship_ok(&all);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

fn layer_digests(manifest: &serde_json::Value) -> Vec<String> {
    let layers = manifest["layers"].as_array().unwrap();
    layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn rebase_onto_a_patched_stack_keeps_the_app_and_moves_no_app_bytes() {
    let reg = Registry::start();
    let tmp = tempdir();
    let host = reg.host();
    let (v1, v2) = (
        format!("docker://{host}/stacks/busybox:v1"),
        format!("docker://{host}/stacks/busybox:v2"),
    );
    import(&rootfs(&tmp.path().join("a"), "v1"), &v1, "busybox");
    import(&rootfs(&tmp.path().join("b"), "v2-patched"), &v2, "busybox");
    let src = app(&tmp.path().join("app"));
    let target = format!("docker://{host}/apps/shop:1");
    let flags = ["--buildpack", "binary", "--name", "shop"];
    let built = build_json(
        &[
            &[src.as_str(), "--stack", &v1, "--image", &target],
            &flags[..],
        ]
        .concat(),
    );
    let before = skopeo_inspect(&target, true);
    let uploads = reg.blob_uploads("apps/shop");

    let r = rebase_json(&[&target, "--stack", &v2]);
    assert_eq!(r["previous_digest"], built["digest"], "{r}");
    assert_ne!(r["digest"], built["digest"]);
    let after = skopeo_inspect(&target, true);
    let (old, new) = (layer_digests(&before), layer_digests(&after));
    assert_eq!(old.len(), new.len(), "one stack layer for another");
    assert_ne!(old[0], new[0], "the stack layer is the patched one");
    assert_eq!(old[1..], new[1..], "the app layers stay");
    let kept: Vec<String> = serde_json::from_value(r["app_layers"].clone()).unwrap();
    assert_eq!(kept, old[1..].to_vec());
    // Moved: the config alone (the stack layer is mounted from stacks/busybox).
    assert_eq!(r["app_bytes_moved"], 0, "{r}");
    assert_eq!(reg.blob_uploads("apps/shop") - uploads, 1, "{r}");
    let uploaded = r["push"]["uploaded"].as_array().unwrap();
    assert!(
        uploaded
            .iter()
            .all(|d| !old.contains(&d.as_str().unwrap().to_string())),
        "no layer of the image was uploaded: {r}"
    );
    assert!(r["push"]["mounted"].to_string().contains(&new[0]), "{r}");
    assert!(r["bytes_moved"].as_u64().unwrap() < 10_000, "{r}");

    // Into another repository of the registry: the app layers are mounted, not sent again.
    let copy = format!("docker://{host}/apps/shop-copy:1");
    let c = rebase_json(&[&target, "--stack", &v2, "--image", &copy]);
    assert_eq!(c["digest"], r["digest"], "{c}");
    assert_eq!(
        reg.blob_uploads("apps/shop-copy"),
        1,
        "the config alone: {c}"
    );
    for layer in &old[1..] {
        assert!(c["push"]["mounted"].to_string().contains(layer), "{c}");
    }

    let podman = Podman::new();
    let port = free_port();
    let c = podman.run(&target.replace("docker://", ""), port);
    let patch = wait_for_page(port, "/patch.txt", Duration::from_secs(30));
    assert_eq!(patch.as_deref(), Some("v2-patched\n"), "{}", c.logs());
    let page = wait_for_page(port, "/index.html", Duration::from_secs(5));
    assert_eq!(page.as_deref(), Some("the app\n"));
    drop(c);

    // A fresh build on the patched stack gives the very same image.
    let rebuilt_at = format!("docker://{host}/apps/shop:rebuilt");
    let rebuilt = build_json(
        &[
            &[src.as_str(), "--stack", &v2, "--image", &rebuilt_at],
            &flags[..],
        ]
        .concat(),
    );
    assert_eq!(
        rebuilt["digest"], r["digest"],
        "rebase {r}\nrebuild {rebuilt}"
    );
}

#[test]
fn another_stack_name_is_refused_unless_forced_and_unrecorded_images_are_named() {
    let tmp = tempdir();
    let dir = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let (stacks, out) = (dir("stacks"), dir("out"));
    let busybox = format!("oci:{stacks}:busybox");
    let other = format!("oci:{stacks}:other");
    import(&rootfs(&tmp.path().join("a"), "v1"), &busybox, "busybox");
    import(&rootfs(&tmp.path().join("b"), "v1"), &other, "cflinuxfs4");
    let src = app(&tmp.path().join("app"));
    let image = format!("oci:{out}:app");
    build_json(&[
        &src,
        "--stack",
        &busybox,
        "--image",
        &image,
        "--buildpack",
        "binary",
    ]);

    let o = dropship(&["rebase", &image, "--stack", &other]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("\"busybox\"") && err.contains("\"cflinuxfs4\"") && err.contains("--force"),
        "{err}"
    );
    let forced = rebase_json(&[
        &image,
        "--stack",
        &other,
        "--force",
        "--image",
        &format!("oci:{out}:forced"),
    ]);
    assert_eq!(forced["stack"]["name"], "cflinuxfs4");
    assert_eq!(forced["previous_stack"], "busybox");

    // A stack image records no app part: it is not a dropship build.
    let o = dropship(&[
        "rebase",
        &busybox,
        "--stack",
        &other,
        "--image",
        &format!("oci:{out}:x"),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("not built by a dropship"), "{}", text(&o));
}

mod service;
