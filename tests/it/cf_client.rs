//! A Cloud Foundry client nobody here wrote: PyPI's `cloudfoundry-client` (pinned in
//! tests/cf_client/requirements.txt, in a virtualenv) logs in to `dropship serve` with a
//! configured user and drives the CF flow through its own classes (tests/cf_client/
//! acceptance.py says what each phase checks); between the phases the staged image is pulled
//! from the embedded registry and run by podman.

use crate::support::api::zip_of;
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";

fn cf_venv() -> PathBuf {
    venv(
        "tests/cf_client/requirements.txt",
        "DROPSHIP_TEST_CF_VENV",
        "cf-venv",
    )
}

/// `acceptance.py PHASE` against `svc`; panics with the script's and the service's output.
fn phase(venv: &Path, svc: &Service, name: &str, env: &[(&str, String)]) {
    let mut c = Command::new(venv.join("bin/python"));
    c.arg(project_dir().join("tests/cf_client/acceptance.py"))
        .arg(name)
        .env("CF_API", svc.base())
        .env("CF_USER", USER)
        .env("CF_PASSWORD", PASSWORD)
        .env_remove("http_proxy")
        .env_remove("https_proxy");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run acceptance.py");
    assert!(
        out.status.success(),
        "phase {name}:\n{}\n--- service log ---\n{}",
        text(&out),
        svc.log()
    );
}

#[test]
fn the_python_cf_client_logs_in_pushes_scales_and_deletes() {
    require("podman", "podman");
    let venv = cf_venv();
    let user = format!("{USER}:{PASSWORD}");
    let svc = Service::start_with(&["--user", &user]);
    let work = tempdir();
    let page = b"<h1>pushed by cloudfoundry-client</h1>\n";
    let zip = work.path().join("app.zip");
    std::fs::write(&zip, zip_of(&[("index.html", page, 0o644)])).unwrap();
    let state = work.path().join("state.json");
    let env = [
        ("CF_APP_ZIP", zip.display().to_string()),
        ("CF_STATE", state.display().to_string()),
    ];
    phase(&venv, &svc, "stage", &env);

    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let image = st["image"].as_str().unwrap();
    assert!(
        image.starts_with(&format!("127.0.0.1:{}/apps/", svc.port)),
        "{image}"
    );
    let podman = Podman::new().login(&format!("127.0.0.1:{}", svc.port), USER, PASSWORD);
    let port = free_port();
    let c = podman.run(image, port);
    let got = wait_for_page(port, "/", Duration::from_secs(60));
    assert_eq!(
        got.as_deref(),
        Some(std::str::from_utf8(page).unwrap()),
        "{}",
        c.logs()
    );
    drop(c);

    phase(&venv, &svc, "delete", &env);
}

#[test]
fn an_expired_token_is_refused_and_the_client_refreshes_it() {
    let venv = cf_venv();
    let user = format!("{USER}:{PASSWORD}");
    let dir = tempdir();
    let config = dir.path().join("dropship.toml");
    std::fs::write(&config, "[auth]\ntoken_ttl = \"2s\"\n").unwrap();
    let svc = Service::start_with(&["--user", &user, "--config", config.to_str().unwrap()]);
    phase(&venv, &svc, "expiry", &[("CF_TOKEN_TTL", "2".to_string())]);
}
