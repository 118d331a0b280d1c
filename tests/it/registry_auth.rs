//! Registry credentials through the `dropship` binary, against a real registry with htpasswd
//! (HTTP Basic) authentication: `--creds`, the DROPSHIP_REGISTRY_USER/PASSWORD pair, and the
//! docker config.json; a missing credential fails with a hint; the password is never printed.
//! Credential helpers (`credHelpers`) and podman's auth.json; the stack's registry never sees the
//! target's credentials; registry errors that name what is wrong and come at once.

use crate::support::tap;

use crate::support::*;
use base64::Engine;

pub(crate) const USER: &str = "alice";
pub(crate) const PASSWORD: &str = "s3cret-Pa55";

/// bcrypt of PASSWORD (cost 5, fixed salt), as `htpasswd -B` would write it, for `user`.
fn htpasswd_line(user: &str) -> String {
    format!("{user}:$2b$05$abcdefghijklmnopqrstuuaa.ADHinTr43GDnwh7WUO1YHHk1hS02\n")
}

pub(crate) fn auth_registry() -> Registry {
    auth_registry_for(USER)
}

/// A registry that knows `user` with PASSWORD.
fn auth_registry_for(user: &str) -> Registry {
    let dir = tempdir();
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, htpasswd_line(user)).unwrap();
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

/// A temp dir with a site to build, a busybox stack as an OCI layout, and an environment where
/// no credential file of the machine is read (HOME, XDG dirs and DOCKER_CONFIG point inside).
struct Fixture {
    tmp: tempfile::TempDir,
    site: String,
    stack: String,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempdir();
        let stack = busybox_stack(
            tmp.path(),
            &format!("oci:{}:busybox", tmp.path().join("stack").display()),
        );
        std::fs::create_dir_all(tmp.path().join("site")).unwrap();
        std::fs::write(tmp.path().join("site/index.html"), "hi\n").unwrap();
        let site = tmp.path().join("site").display().to_string();
        Fixture { tmp, site, stack }
    }

    fn path(&self, p: &str) -> std::path::PathBuf {
        self.tmp.path().join(p)
    }

    /// Runs dropship with the isolated environment plus `extra`.
    fn run(&self, args: &[&str], extra: &[(&str, String)]) -> (std::process::Output, f64) {
        let dir = |p: &str| self.path(p).display().to_string();
        let path = format!("{}:{}", dir("bin"), std::env::var("PATH").unwrap());
        let mut env = vec![
            ("HOME", dir("home")),
            ("XDG_RUNTIME_DIR", dir("run")),
            ("XDG_CONFIG_HOME", dir("config")),
            ("DOCKER_CONFIG", dir("docker")),
            ("PATH", path),
        ];
        env.extend(extra.iter().cloned());
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let started = std::time::Instant::now();
        let o = dropship_env(args, &env);
        (o, started.elapsed().as_secs_f64())
    }

    /// Writes an executable `bin/docker-credential-<name>` running `body`.
    fn helper(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.path("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let p = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn docker_config(&self, json: &str) {
        std::fs::create_dir_all(self.path("docker")).unwrap();
        std::fs::write(self.path("docker/config.json"), json).unwrap();
    }
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_credential_helper_on_path_is_asked_and_a_failing_one_is_named() {
    let reg = auth_registry();
    let f = Fixture::new();
    let asked = f.path("asked");
    f.helper(
        "test",
        &format!(
            r#"[ "$1" = get ] || exit 2
read server
echo "$server" >> {}
printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}' "$server""#,
            asked.display()
        ),
    );
    f.helper("broken", "echo 'the keychain is locked' >&2\nexit 1");
    f.docker_config(&format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, reg.host()));
    let t = format!("docker://{}/apps/site:helper", reg.host());
    let (o, _) = f.run(&["build", &f.site, "--stack", &f.stack, "--image", &t], &[]);
    assert!(o.status.success(), "{}", text(&o));
    never_shows_password(&o);
    let asked = std::fs::read_to_string(asked).unwrap();
    assert_eq!(asked.lines().next(), Some(reg.host().as_str()), "{asked}");

    f.docker_config(&format!(
        r#"{{"credHelpers":{{"{}":"broken"}}}}"#,
        reg.host()
    ));
    let (o, _) = f.run(&["build", &f.site, "--stack", &f.stack, "--image", &t], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("docker-credential-broken")
            && err.contains(&reg.host())
            && err.contains("the keychain is locked"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_podman_auth_json_is_read_before_the_docker_config() {
    let reg = auth_registry();
    let f = Fixture::new();
    let good = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let bad = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:wrong"));
    // A repository-prefix key, as podman allows; the docker config's wrong password is not used.
    let auth_file = f.path("auth.json");
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths":{{"{}/apps":{{"auth":"{good}"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    f.docker_config(&format!(
        r#"{{"auths":{{"{}":{{"auth":"{bad}"}}}}}}"#,
        reg.host()
    ));
    let t = format!("docker://{}/apps/site:podman", reg.host());
    let env = [("REGISTRY_AUTH_FILE", auth_file.display().to_string())];
    let (o, _) = f.run(
        &["build", &f.site, "--stack", &f.stack, "--image", &t],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    never_shows_password(&o);
    // The same file in $XDG_RUNTIME_DIR/containers/auth.json.
    std::fs::create_dir_all(f.path("run/containers")).unwrap();
    std::fs::copy(&auth_file, f.path("run/containers/auth.json")).unwrap();
    let t = format!("docker://{}/apps/site:xdg", reg.host());
    let (o, _) = f.run(&["build", &f.site, "--stack", &f.stack, "--image", &t], &[]);
    assert!(o.status.success(), "{}", text(&o));
}

/// The stack's registry (user bob, behind a tap) and the target's (user alice): alice's
/// credentials never reach the stack's registry, from the environment or from --creds.
#[test]
fn the_stack_registry_never_sees_the_target_credentials() {
    let target_reg = auth_registry();
    let stack_reg = auth_registry_for("bob");
    let tap = tap::Tap::start(stack_reg.port);
    let f = Fixture::new();
    std::fs::create_dir_all(f.path("import")).unwrap();
    let root = busybox_rootfs(&f.path("import"));
    let stack = format!("docker://{}/stacks/busybox:latest", tap.host());
    let bob = format!("bob:{PASSWORD}");
    let alice = format!("{USER}:{PASSWORD}");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let (root, import) = (root.to_str().unwrap(), ["--creds", bob.as_str()]);
    let (o, _) = f.run(
        &[
            "stack", "import", root, "--image", &stack, import[0], import[1],
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let t = format!("docker://{}/apps/site:1", target_reg.host());
    let cache = (
        "DROPSHIP_STACK_CACHE",
        f.path("stack-cache").display().to_string(),
    );
    let args = ["build", &f.site, "--stack", &stack, "--image", &t];

    // The target's credentials from the environment, none for the stack: its 401.
    let env = [
        cache.clone(),
        ("DROPSHIP_REGISTRY_USER", USER.to_string()),
        ("DROPSHIP_REGISTRY_PASSWORD", PASSWORD.to_string()),
    ];
    let (o, _) = f.run(&args, &env);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("stack:") && stderr(&o).contains("401"),
        "{}",
        text(&o)
    );

    // --creds for the target, --stack-creds for the stack.
    let mut with_flags = args.to_vec();
    with_flags.extend(["--creds", &alice, "--stack-creds", &bob]);
    let (o, _) = f.run(&with_flags, &[cache]);
    assert!(o.status.success(), "{}", text(&o));
    let sent = tap.sent();
    assert!(
        sent.contains("GET /v2/stacks/busybox/manifests/latest") && sent.contains(&b64(&bob)),
        "the stack was not read through the tap with bob's credentials:\n{sent}"
    );
    assert!(
        !sent.contains(&b64(&alice)),
        "the stack registry was sent the target's credentials:\n{sent}"
    );
}

#[test]
fn registry_errors_name_what_is_wrong_and_come_at_once() {
    let reg = Registry::start();
    let f = Fixture::new();
    let free = format!("127.0.0.1:{}", free_port());
    let one_line_within = |args: &[&str], needles: &[&str]| {
        let (o, took) = f.run(args, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(needles.iter().all(|n| err.contains(n)), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line:\n{err}");
        assert!(took < 3.0, "took {took:.2}s:\n{err}");
        eprintln!("{took:.2}s: {}", err.trim());
    };
    let missing = format!("docker://{}/stacks/nope:latest", reg.host());
    let nope = format!("{}/stacks/nope:latest: not found", reg.host());
    let out = "oci:/nonexistent/out:1";
    one_line_within(
        &["build", &f.site, "--stack", &missing, "--image", out],
        &[&nope],
    );
    for host in ["nonexistent.invalid:5000", free.as_str()] {
        let why = if host == free {
            "connection refused"
        } else {
            "cannot resolve"
        };
        let remote = format!("docker://{host}/stacks/x:1");
        one_line_within(
            &["build", &f.site, "--stack", &remote, "--image", out],
            &[why, host],
        );
        // As a target: refused before any staging happens.
        let args = ["build", &f.site, "--stack", &f.stack, "--image", &remote];
        one_line_within(&args, &[why, host]);
    }
    let args = ["build", &f.site, "--stack", "dockr://x/y", "--image", out];
    one_line_within(&args, &["unknown transport dockr (use docker:// or oci:)"]);
}
