//! Conventions every CLI has: `version`, `completion`, help with examples, cf's short flags on
//! `push`, and `stack list|inspect`.

use crate::support::*;

#[test]
fn version_has_a_commit_and_a_build_date() {
    for args in [&["version"][..], &["--version"][..]] {
        let out = dropship_ok(args);
        assert!(out.starts_with("dropship 0."), "{out}");
        assert!(out.contains("(commit "), "{out}");
        let date = out.split("built ").nth(1).unwrap_or_default();
        assert!(
            date.len() >= 10 && date.as_bytes()[4] == b'-',
            "no date: {out}"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&dropship_ok(&["version", "--json"])).unwrap();
    assert!(v["commit"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
    assert!(
        v["build_date"].as_str().is_some_and(|d| d.len() == 10),
        "{v}"
    );
}

#[test]
fn completion_scripts_for_every_shell() {
    let bash = dropship_ok(&["completion", "bash"]);
    assert!(bash.contains("_dropship()"), "{bash}");
    assert!(bash.contains("complete -F _dropship"), "{bash}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(
            dropship_ok(&["completion", shell]).contains("dropship"),
            "{shell}"
        );
    }
    assert!(!dropship(&["completion", "tcsh"]).status.success());
}

#[test]
fn every_help_has_examples() {
    let commands: &[&[&str]] = &[
        &[],
        &["build"],
        &["push"],
        &["serve"],
        &["login"],
        &["logout"],
        &["target"],
        &["version"],
        &["completion"],
        &["stack"],
        &["stack", "import"],
        &["stack", "list"],
        &["stack", "inspect"],
    ];
    for c in commands {
        let mut args = c.to_vec();
        args.push("--help");
        let out = dropship_ok(&args);
        assert!(out.contains("\nExamples:\n  dropship "), "{args:?}:\n{out}");
    }
}

#[test]
fn push_has_cf_short_flags() {
    let out = dropship_ok(&["push", "--help"]);
    for flag in ["-b, --buildpack", "-s, --stack", "-p, --path"] {
        assert!(out.contains(flag), "{flag}:\n{out}");
    }
}

#[test]
fn stack_inspect_shows_digest_and_layers_and_list_shows_used_stacks() {
    let tmp = tempdir();
    let stack_dir = tmp.path().join("stack");
    let stack = busybox_stack(tmp.path(), &format!("oci:{}:busybox", stack_dir.display()));
    let index = std::fs::read_to_string(stack_dir.join("index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    let out = dropship_ok(&["stack", "inspect", &stack]);
    assert!(out.contains(&format!("digest:    {digest}")), "{out}");
    assert!(out.contains("name:      busybox"), "{out}");
    assert!(out.contains("platform:  linux/"), "{out}");
    assert!(
        out.contains("  sha256:") && out.contains("MiB"),
        "no layer:\n{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&dropship_ok(&["stack", "inspect", &stack, "--json"])).unwrap();
    assert_eq!(json["digest"], digest.as_str());
    assert_eq!(json["layers"].as_array().unwrap().len(), 1, "{json}");

    // A build in a cache of its own records the stack it used.
    let cache = tmp.path().join("cache");
    let cache_env = [("DROPSHIP_STACK_CACHE", cache.to_str().unwrap())];
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "hi\n").unwrap();
    let target = format!("oci:{}:site", tmp.path().join("out").display());
    let build = [
        "build",
        site.to_str().unwrap(),
        "--stack",
        &stack,
        "--image",
        &target,
    ];
    let o = dropship_env(&build, &cache_env);
    assert!(o.status.success(), "{}", text(&o));
    let o = dropship_env(&["stack", "list"], &cache_env);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    let short = &digest["sha256:".len().."sha256:".len() + 12];
    let line = out
        .lines()
        .find(|l| l.starts_with("busybox "))
        .unwrap_or_default();
    assert!(line.contains(short) && line.contains(&stack), "{out}");
    assert!(line.contains("MiB") && line.contains(" yes "), "{out}");
}

#[test]
fn push_takes_the_app_as_p_path_as_cf_does() {
    let api = ["--api", "http://127.0.0.1:1"];
    let o = dropship(&[&["push", "-p", "/nonexistent-app"][..], &api].concat());
    assert!(!o.status.success());
    assert!(text(&o).contains("/nonexistent-app"), "{}", text(&o));
    let o = dropship(&[&["push", "/a", "-p", "/b"][..], &api].concat());
    assert_eq!(
        o.status.code(),
        Some(2),
        "SOURCE and -p together: {}",
        text(&o)
    );
}

#[test]
fn stack_inspect_reads_a_registry_without_pulling_layers() {
    let reg = Registry::start();
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("docker://{}/stacks/busybox:latest", reg.host()),
    );
    let cache = tmp.path().join("cache");
    let env = [("DROPSHIP_STACK_CACHE", cache.to_str().unwrap())];
    let o = dropship_env(&["stack", "inspect", &stack, "--json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["name"], "busybox", "{v}");
    assert!(v["platform"].as_str().unwrap().starts_with("linux/"), "{v}");
    let layer = v["layers"][0]["digest"].as_str().unwrap();
    let hex = layer.trim_start_matches("sha256:");
    assert!(
        !cache.join("blobs/sha256").join(hex).exists(),
        "the layer was pulled"
    );
    assert!(!cache.join("rootfs").exists(), "something was unpacked");
}
