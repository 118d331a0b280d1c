//! Registry credentials through the `dropship` binary, against a real registry with htpasswd
//! (HTTP Basic) authentication: `--creds`, the DROPSHIP_REGISTRY_USER/PASSWORD pair, and the
//! docker config.json; a missing credential fails with a hint; the password is never printed.

mod common;

use base64::Engine;
use common::*;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pa55";

/// bcrypt of PASSWORD (cost 5, fixed salt), as `htpasswd -B` would write it.
fn htpasswd_line() -> String {
    format!("{USER}:$2b$05$abcdefghijklmnopqrstuuaa.ADHinTr43GDnwh7WUO1YHHk1hS02\n")
}

fn auth_registry() -> Registry {
    let dir = tempdir();
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, htpasswd_line()).unwrap();
    let reg = Registry::start_with(&format!(
        "auth:\n  htpasswd:\n    realm: dropship-test\n    path: {}\n",
        file.display()
    ));
    std::mem::forget(dir); // the registry reads the file for its whole life
    reg
}

fn never_shows_password(o: &std::process::Output) {
    let all = text(o);
    assert!(!all.contains(PASSWORD), "the password was printed:\n{all}");
}

#[test]
fn every_credential_source_works_and_none_fails_clearly() {
    let reg = auth_registry();
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("oci:{}:busybox", tmp.path().join("stack").display()),
    );
    std::fs::create_dir_all(tmp.path().join("site")).unwrap();
    std::fs::write(tmp.path().join("site/index.html"), "hi\n").unwrap();
    let site = tmp.path().join("site").display().to_string();
    let target = |tag: &str| format!("docker://{}/apps/site:{tag}", reg.host());
    let creds = format!("{USER}:{PASSWORD}");

    // No credentials: the registry's 401, named, with where credentials come from.
    let t = target("none");
    let o = dropship(&["build", &site, "--stack", &stack, "--image", &t]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&reg.host()) && err.contains("401") && err.contains("--creds"),
        "{err}"
    );

    // Wrong password: refused the same way.
    let t = target("wrong");
    let o = dropship(&[
        "build",
        &site,
        "--stack",
        &stack,
        "--image",
        &t,
        "--creds",
        "alice:nope",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // --creds.
    let t = target("flag");
    let o = dropship(&[
        "build", &site, "--stack", &stack, "--image", &t, "--creds", &creds, "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    never_shows_password(&o);

    // The environment pair.
    let t = target("env");
    let o = dropship_env(
        &["build", &site, "--stack", &stack, "--image", &t],
        &[
            ("DROPSHIP_REGISTRY_USER", USER),
            ("DROPSHIP_REGISTRY_PASSWORD", PASSWORD),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    never_shows_password(&o);

    // The docker config.json in $DOCKER_CONFIG.
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(&creds);
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let t = target("config");
    let o = dropship_env(
        &["build", &site, "--stack", &stack, "--image", &t],
        &[("DOCKER_CONFIG", docker.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", text(&o));
    never_shows_password(&o);

    // An independent client with the same credentials reads what was pushed.
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds,
            &target("config"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_stack_in_a_private_registry_is_pulled_with_credentials() {
    let reg = auth_registry();
    let tmp = tempdir();
    let creds = format!("{USER}:{PASSWORD}");
    let root = busybox_rootfs(tmp.path());
    let stack = format!("docker://{}/stacks/busybox:latest", reg.host());
    let o = dropship(&[
        "stack",
        "import",
        root.to_str().unwrap(),
        "--image",
        &stack,
        "--creds",
        &creds,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::create_dir_all(tmp.path().join("site")).unwrap();
    std::fs::write(tmp.path().join("site/index.html"), "hi\n").unwrap();
    let site = tmp.path().join("site").display().to_string();
    let cache = tmp.path().join("cache");
    let t = format!("docker://{}/apps/site:1", reg.host());
    let env = [("DROPSHIP_STACK_CACHE", cache.to_str().unwrap())];
    // Without credentials the stack cannot even be read.
    let o = dropship_env(&["build", &site, "--stack", &stack, "--image", &t], &env);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stack:"),
        "{}",
        text(&o)
    );
    let o = dropship_env(
        &[
            "build", &site, "--stack", &stack, "--image", &t, "--creds", &creds, "--json",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Same registry, another repository: the stack layer is mounted, not uploaded.
    assert_eq!(
        b["push"]["mounted"].as_array().map(Vec::len),
        Some(1),
        "{}",
        b["push"]
    );
}
