//! What `dropship build` prints: progress bars for the push when stderr is a terminal (run under
//! `script`, which gives it one), and the `--json` object's fields.

use crate::support::*;
use std::process::Command;

fn app(dir: &std::path::Path, big: u64) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("index.html"), "hi\n").unwrap();
    if big > 0 {
        random_file(&dir.join("big.bin"), big);
    }
    dir.display().to_string()
}

#[test]
fn a_terminal_gets_progress_bars_for_the_push() {
    require("script", "bsdutils");
    let reg = Registry::start();
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("docker://{}/stacks/busybox:latest", reg.host()),
    );
    let site = app(&tmp.path().join("site"), 24 << 20);
    let cmd = format!(
        "{} build {site} --stack {stack} --image docker://{}/apps/tty:1",
        bin().display(),
        reg.host()
    );
    let o = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("DROPSHIP_STACK_CACHE", stack_cache())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        out.contains("MiB/24.0"),
        "no byte counter for the 24 MiB layer:\n{out}"
    );
    assert!(out.contains("[=="), "no progress bar:\n{out}");
    assert!(
        out.contains("\x1b["),
        "no terminal control sequences: not drawn as bars"
    );
    assert!(out.contains("uploaded in"), "{out}");
}

#[test]
fn json_output_has_the_documented_fields() {
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("oci:{}:busybox", tmp.path().join("stack").display()),
    );
    let site = app(&tmp.path().join("site"), 0);
    let target = format!("oci:{}:app", tmp.path().join("out").display());
    let b = build_json(&[&site, "--stack", &stack, "--image", &target]);
    let digest = b["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{b}");
    assert!(
        b["image"]
            .as_str()
            .unwrap()
            .ends_with(&format!("@{digest}")),
        "{b}"
    );
    // The droplet tgz is made only when asked for (`--droplet`).
    assert!(b["droplet_digest"].is_null(), "{b}");
    assert_eq!(b["detected_buildpack"], "staticfile");
    assert!(!b["start_command"].as_str().unwrap().is_empty());
    assert_eq!(b["buildpacks"][0]["name"], "staticfile");
    let layers = b["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "stack, launcher, droplet: {b}");
    assert_eq!(layers[2]["holds"], "app 1/1", "{b}");
    assert!(layers[2]["reused"].is_boolean(), "{b}");
    assert!(layers[1].get("holds").is_none(), "{b}");
    for l in layers {
        assert!(
            l["digest"].as_str().unwrap().starts_with("sha256:") && l["size"].as_u64().unwrap() > 0,
            "{l}"
        );
        assert_eq!(
            l["media_type"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    let timings = b["timings"].as_object().unwrap();
    let mut stages: Vec<&str> = timings.keys().map(String::as_str).collect();
    stages.sort();
    assert_eq!(
        stages,
        ["droplet", "image", "intake", "push", "stack", "staging"]
    );
    assert!(timings.values().all(|v| v.as_f64().unwrap() >= 0.0), "{b}");
    assert_eq!(b["stack"]["name"], "busybox");
}

#[test]
fn a_failed_build_with_json_says_why_on_stdout() {
    let f = crate::support::staging::Fixture::new();
    f.buildpack("never", &[("detect", "exit 1")]);
    let o = f.build(&["--json"]);
    assert_eq!(o.status.code(), Some(222), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["error"]["code"], 222, "{v}");
    assert_eq!(v["error"]["kind"], "NoAppDetectedError", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("None of the buildpacks"),
        "{v}"
    );
}

#[test]
fn long_phases_say_what_they_do_and_how_long_it_took() {
    let reg = Registry::start();
    let tmp = tempdir();
    let root = busybox_rootfs(tmp.path());
    let stack = format!("docker://{}/stacks/busybox:latest", reg.host());
    let import = ["stack", "import", root.to_str().unwrap(), "--image", &stack];
    let o = dropship(&import);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        err.contains("==> packing ") && err.contains(" into a layer"),
        "{err}"
    );
    assert!(err.contains("==> packed the stack layer ("), "{err}");

    // A cache of its own: the stack is pulled and unpacked by this build.
    let cache = tmp.path().join("cache");
    let site = app(&tmp.path().join("site"), 0);
    let target = format!("oci:{}:app", tmp.path().join("out").display());
    let build = ["build", &site, "--stack", &stack, "--image", &target];
    let o = dropship_env(&build, &[("DROPSHIP_STACK_CACHE", cache.to_str().unwrap())]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{}", text(&o));
    for line in [
        "==> pulling stack layer ",
        "==> pulled stack layer ",
        "==> unpacking stack busybox (1 layer, ",
        "==> unpacked stack busybox (1 layer, ",
        "==> packaging the droplet (",
    ] {
        assert!(err.contains(line), "no {line:?}:\n{err}");
    }
    assert!(
        err.contains(" MiB) in ") || err.contains(" KiB) in "),
        "{err}"
    );
}

#[test]
fn a_terminal_gets_a_progress_bar_for_the_stack_pull() {
    require("script", "bsdutils");
    let reg = Registry::start();
    let tmp = tempdir();
    let root = busybox_rootfs(tmp.path());
    random_file(&root.join("blob.bin"), 32 << 20);
    let stack = format!("docker://{}/stacks/big:latest", reg.host());
    dropship_ok(&["stack", "import", root.to_str().unwrap(), "--image", &stack]);
    let site = app(&tmp.path().join("site"), 0);
    let cmd = format!(
        "{} build {site} --stack {stack} --image oci:{}:app",
        bin().display(),
        tmp.path().join("out").display()
    );
    let o = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("DROPSHIP_STACK_CACHE", tmp.path().join("cache"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    let bar = regex_free_find(&out, "    pulling ", "] ");
    assert!(bar, "no bar for the stack layer:\n{out}");
    let counter = regex_free_find(&out, "    pulling ", " MiB/33.");
    assert!(
        counter,
        "no byte counter (of the 33 MiB gzipped layer):\n{out}"
    );
}

/// Whether some line has `start`, then later `then`.
fn regex_free_find(out: &str, start: &str, then: &str) -> bool {
    out.split(['\n', '\r'])
        .any(|l| l.find(start).is_some_and(|i| l[i..].contains(then)))
}
