//! `dropship login`, `target`, `logout` and a push with the stored login (and its refresh),
//! through the binaries.

use crate::support::uaa::*;
use crate::support::{bin, tempdir, text, Service};
use std::path::Path;
use std::process::{Command, Output};

/// `dropship ARGS` with DROPSHIP_HOME at `home` and no DROPSHIP_* from outside.
fn dropship(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args)
        .env("DROPSHIP_HOME", home)
        .stdin(std::process::Stdio::null());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DROPSHIP_") && k != "DROPSHIP_HOME" {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().copied());
    c.output().unwrap()
}

fn stored(home: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(home.join("config.toml")).unwrap()).unwrap()
}

#[test]
fn login_then_push_with_the_stored_api_and_token() {
    let svc = Service::start_with(&["--user", "dave:pw-dave-7"]);
    let tmp = tempdir();
    let home = tmp.path().join("home");
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "<h1>logged in</h1>\n").unwrap();
    let site = site.to_str().unwrap();

    let o = dropship(&home, &["push", site], &[]);
    assert!(
        !o.status.success() && text(&o).contains("dropship login"),
        "{}",
        text(&o)
    );
    let o = dropship(
        &home,
        &["login", "-a", &svc.base(), "-u", "dave", "-p", "wrong"],
        &[],
    );
    assert!(
        !o.status.success() && text(&o).contains("Bad credentials"),
        "{}",
        text(&o)
    );
    let o = dropship(
        &home,
        &["login", "-a", &svc.base(), "-u", "dave"],
        &[("DROPSHIP_PASSWORD", "pw-dave-7")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("pw-dave-7"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join("config.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(stored(&home)["api"].as_str(), Some(svc.base().as_str()));
    let o = dropship(&home, &["target", "-o", "org1", "-s", "space1"], &[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("dave") && out.contains("space1") && out.contains(&svc.base()),
        "{out}"
    );

    let o = dropship(&home, &["push", site, "--name", "logged-in"], &[]);
    assert!(o.status.success(), "{}\n{}", text(&o), svc.log());
    let image = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(image.contains("/apps/logged-in@sha256:"), "{image}");

    // A stale access token: the push refreshes it once and writes the new one back.
    let mut conf = stored(&home);
    let bad = tampered(conf["access_token"].as_str().unwrap());
    conf.insert("access_token".into(), bad.clone().into());
    std::fs::write(home.join("config.toml"), toml::to_string(&conf).unwrap()).unwrap();
    let o = dropship(&home, &["push", site, "--name", "logged-in"], &[]);
    assert!(o.status.success(), "{}\n{}", text(&o), svc.log());
    assert!(text(&o).contains("refreshed"), "{}", text(&o));
    let renewed = stored(&home)["access_token"].as_str().unwrap().to_string();
    assert_ne!(renewed, bad);
    assert_eq!(get(&svc, "/v3/apps", &renewed).0, 200);

    let o = dropship(&home, &["logout"], &[]);
    assert!(o.status.success() && stored(&home).get("access_token").is_none());
    let o = dropship(&home, &["push", site, "--name", "logged-in"], &[]);
    assert!(
        !o.status.success() && text(&o).contains("401"),
        "{}",
        text(&o)
    );
}
