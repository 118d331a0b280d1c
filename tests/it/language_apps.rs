//! Real Node and Python apps on the Debian stack, through `dropship build`: an Express app with
//! its node_modules vendored and a Flask app with its wheels vendored are detected, staged
//! offline, and answer HTTP under podman; the Flask app also runs with a Procfile through
//! `--buildpack python --buildpack binary`; apps without their dependencies fail saying what
//! to vendor; the build cache is reused on a second build and ignored with `--no-cache`.

use crate::support::*;
use std::path::Path;
use std::time::Duration;

const EXPRESS_SERVER: &str = r#"const express = require('express');
const app = express();
app.get('/', (req, res) => res.send('hello from express, NODE_ENV=' + process.env.NODE_ENV));
app.listen(process.env.PORT, () => console.log('listening on ' + process.env.PORT));
"#;

const FLASK_APP: &str = r#"import os
from flask import Flask

app = Flask(__name__)

@app.route("/")
def hello():
    return "hello from flask " + os.environ.get("GREETING", "")

if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ["PORT"]))
"#;

fn express_app(dir: &Path, vendored: bool) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"express-app","version":"1.0.0","scripts":{"start":"node server.js"},"dependencies":{"express":"^4.0.0"}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("server.js"), EXPRESS_SERVER).unwrap();
    // A public/index.html must not make it a static site.
    std::fs::create_dir_all(dir.join("public")).unwrap();
    std::fs::write(dir.join("public/index.html"), "<p>static part</p>").unwrap();
    if vendored {
        copy_dir(&express_node_modules(), &dir.join("node_modules"));
    }
    dir.display().to_string()
}

fn flask_app(dir: &Path, vendored: bool) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("requirements.txt"), "flask==3.0.3\n").unwrap();
    std::fs::write(dir.join("app.py"), FLASK_APP).unwrap();
    std::fs::create_dir_all(dir.join(".profile.d")).unwrap();
    std::fs::write(
        dir.join(".profile.d/greeting.sh"),
        "export GREETING=from-profile-d\n",
    )
    .unwrap();
    if vendored {
        copy_dir(&flask_wheels(), &dir.join("vendor"));
        let _ = std::fs::remove_file(dir.join("vendor/.complete"));
    }
    dir.display().to_string()
}

struct Env {
    reg: Registry,
    stack: String,
    tmp: tempfile::TempDir,
}

fn debian_env() -> Env {
    let reg = Registry::start();
    let tmp = tempdir();
    let stack = format!("docker://{}/stacks/debian:v2", reg.host());
    let rootfs = debian_rootfs();
    progress(format_args!("importing the Debian stack to {stack}"));
    dropship_ok(&[
        "stack",
        "import",
        rootfs.to_str().unwrap(),
        "--image",
        &stack,
        "--name",
        "debian-bookworm",
    ]);
    Env { reg, stack, tmp }
}

fn run_and_get(podman: &Podman, image: &str, want: &str) {
    let port = free_port();
    let c = podman.run(image, port);
    let page = wait_for_page(port, "/", Duration::from_secs(60)).unwrap_or_default();
    assert!(page.contains(want), "{image}: got {page:?}\n{}", c.logs());
}

#[test]
fn express_and_flask_apps_are_detected_staged_offline_and_answer() {
    let env = debian_env();
    let podman = Podman::new(); // one image store: the stack's layers are pulled once
    let express = express_app(&env.tmp.path().join("express"), true);
    let target = format!("docker://{}/apps/express:1", env.reg.host());
    let b = build_json(&[&express, "--stack", &env.stack, "--image", &target]);
    assert_eq!(b["detected_buildpack"], "nodejs", "{b}");
    assert_eq!(b["buildpacks"][0]["name"], "nodejs");
    run_and_get(
        &podman,
        &target.replace("docker://", ""),
        "hello from express, NODE_ENV=production",
    );

    let flask = flask_app(&env.tmp.path().join("flask"), true);
    let target = format!("docker://{}/apps/flask:1", env.reg.host());
    let b = build_json(&[&flask, "--stack", &env.stack, "--image", &target]);
    assert_eq!(b["detected_buildpack"], "python", "{b}");
    run_and_get(
        &podman,
        &target.replace("docker://", ""),
        "hello from flask from-profile-d",
    );

    // The same Flask app, started from its Procfile: python supplies, binary finalizes.
    std::fs::write(
        Path::new(&flask).join("Procfile"),
        "web: exec python3 app.py\n",
    )
    .unwrap();
    let target = format!("docker://{}/apps/flask-procfile:1", env.reg.host());
    let b = build_json(&[
        &flask,
        "--stack",
        &env.stack,
        "--image",
        &target,
        "--buildpack",
        "python",
        "--buildpack",
        "binary",
    ]);
    let names: Vec<&str> = b["buildpacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["python", "binary"], "{b}");
    assert_eq!(b["start_command"], "exec python3 app.py");
    run_and_get(
        &podman,
        &target.replace("docker://", ""),
        "hello from flask from-profile-d",
    );
}

/// The digests of the droplet's layers (those with `holds`) in a `--json` report.
fn droplet_layers(b: &serde_json::Value) -> Vec<String> {
    b["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l.get("holds").is_some())
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The layers among `layers` holding a path that starts with `prefix`.
fn holding(reg: &Registry, layers: &[String], prefix: &str) -> Vec<String> {
    let holds = |d: &&String| reg.layer_paths(d).iter().any(|p| p.starts_with(prefix));
    layers.iter().filter(holds).cloned().collect()
}

/// The digests of the layers a `--json` report says were taken from the layer cache.
fn reused(b: &serde_json::Value) -> Vec<String> {
    let layers = b["layers"].as_array().unwrap().iter();
    let reused = layers.filter(|l| l["reused"] == true);
    reused
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    let all = v.as_array().unwrap().iter();
    all.map(|d| d.as_str().unwrap().to_string()).collect()
}

#[test]
fn an_edit_uploads_only_small_layers_and_the_same_source_gives_the_same_image() {
    let env = debian_env();
    let express = express_app(&env.tmp.path().join("express"), true);
    let tag = |t: &str| format!("docker://{}/apps/layered:{t}", env.reg.host());
    let build = |t: &str| build_json(&[&express, "--stack", &env.stack, "--image", &tag(t)]);
    let first = build("1");
    let layers = droplet_layers(&first);
    let holding_modules = holding(&env.reg, &layers, "home/vcap/app/node_modules/express/");
    assert!(!holding_modules.is_empty(), "{first:#}");
    let server = holding(&env.reg, &layers, "home/vcap/app/server.js");
    assert_eq!(server.len(), 1, "{first:#}");
    let own = env.reg.layer_paths(&server[0]);
    assert!(
        own.iter().all(|p| !p.contains("node_modules/")),
        "server.js shares its layer with node_modules: {own:?}"
    );

    // One edit: only the layer of server.js (and the config) go up again.
    let edited = EXPRESS_SERVER.replace("hello from express", "hello again from express");
    std::fs::write(Path::new(&express).join("server.js"), edited).unwrap();
    let before = env.reg.blob_uploads("apps/layered");
    let second = build("2");
    let uploaded = strings(&second["push"]["uploaded"]);
    assert!(
        uploaded.iter().all(|d| !holding_modules.contains(d)),
        "a node_modules layer went up again: {second:#}"
    );
    assert_eq!(
        uploaded.len(),
        2,
        "the config and the app's layer: {second:#}"
    );
    assert_eq!(env.reg.blob_uploads("apps/layered") - before, 2);
    let bytes = second["push"]["bytes_uploaded"].as_u64().unwrap();
    assert!(bytes < 32 << 10, "{bytes} bytes uploaded: {second:#}");
    // Nothing unchanged was compressed again (the edited layer may be in the layer cache too,
    // which the tests share: from an earlier run).
    let (mut unchanged, reused2) = (droplet_layers(&second), reused(&second));
    unchanged.retain(|d| !uploaded.contains(d));
    assert!(unchanged.iter().all(|d| reused2.contains(d)), "{second:#}");
    let podman = Podman::new();
    run_and_get(
        &podman,
        &tag("2").replace("docker://", ""),
        "hello again from express",
    );

    // The same source again: the same image, nothing uploaded, nothing compressed.
    let third = build("3");
    assert_eq!(third["digest"], second["digest"]);
    assert_eq!(
        third["push"]["uploaded"],
        serde_json::json!([]),
        "{third:#}"
    );
    assert_eq!(reused(&third), droplet_layers(&third), "{third:#}");

    // A rename elsewhere in the tree changes that one layer.
    let public = Path::new(&express).join("public");
    std::fs::rename(public.join("index.html"), public.join("home.html")).unwrap();
    let fourth = build("4");
    let (a, b) = (droplet_layers(&third), droplet_layers(&fourth));
    assert_eq!(a.len(), b.len(), "{third:#}\n{fourth:#}");
    let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(changed, 1, "{third:#}\n{fourth:#}");
}

#[test]
fn apps_without_their_dependencies_fail_saying_what_to_vendor() {
    let env = debian_env();
    let out = env.tmp.path().join("out");
    for (app, needle) in [
        (
            express_app(&env.tmp.path().join("express"), false),
            "npm install",
        ),
        (
            flask_app(&env.tmp.path().join("flask"), false),
            "pip download",
        ),
    ] {
        let target = format!("oci:{}:x", out.display());
        let o = dropship(&["build", &app, "--stack", &env.stack, "--image", &target]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(225), "{}", text(&o));
        assert!(
            err.contains(needle),
            "the message should say how to vendor ({needle}):\n{err}"
        );
        assert!(!err.contains("Traceback"), "{err}");
    }
}

#[test]
fn a_second_build_reuses_the_cache_and_no_cache_ignores_it() {
    let env = debian_env();
    let flask = flask_app(&env.tmp.path().join("flask"), true);
    let cache = env.tmp.path().join("cache");
    let target = format!("oci:{}:x", env.tmp.path().join("out").display());
    let stage = |extra: &[&str]| {
        let mut args = vec![
            "build",
            &flask,
            "--stack",
            &env.stack,
            "--image",
            &target,
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = dropship(&args);
        assert!(o.status.success(), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let staging = err
            .lines()
            .find_map(|l| l.strip_prefix("==> staging: "))
            .unwrap_or("?")
            .to_string();
        (err, staging)
    };
    let (first, t1) = stage(&[]);
    assert!(!first.contains("Reusing cached"), "{first}");
    let (second, t2) = stage(&[]);
    assert!(
        second.contains("Reusing cached"),
        "the second build should reuse the cache:\n{second}"
    );
    let (third, t3) = stage(&["--no-cache"]);
    assert!(
        !third.contains("Reusing cached"),
        "--no-cache must ignore the cache:\n{third}"
    );
    // ...and the layer cache: every droplet layer packed again.
    assert!(!second.contains(" 0 unchanged"), "{second}");
    assert!(
        third.contains(" 0 unchanged (not compressed again)"),
        "{third}"
    );
    eprintln!(
        "staging times: first {t1}, cached {t2}, --no-cache {t3} (the bench script measures this)"
    );
}
