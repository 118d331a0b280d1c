//! `dropship push` against `dropship serve`, through the binaries: a static site staged and
//! served by the embedded registry (read by skopeo), a re-push that uploads only the changed
//! file (checked in the droplet the server built), builder exit codes, API tokens.

use crate::support::client::read;
use crate::support::{bin, free_port, random_file, skopeo_inspect, tempdir, text, Service};
use dropship::cfapi as cf;
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// GET on the service with an optional bearer token: status and body bytes.
fn get(svc: &Service, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", svc.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, buf[end + 4..].to_vec())
}

fn get_json(svc: &Service, path: &str, token: Option<&str>) -> serde_json::Value {
    let (status, body) = get(svc, path, token);
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

/// `dropship push ARGS` with `env` (and no DROPSHIP_API/DROPSHIP_TOKEN from outside).
fn push(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.arg("push")
        .args(args)
        .env_remove("DROPSHIP_API")
        .env_remove("DROPSHIP_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run dropship push")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Checks `image` is `127.0.0.1:PORT/apps/NAME@sha256:<hex>` and that skopeo reads it from
/// the service's registry endpoint with that digest; returns the digest.
fn check_image(svc: &Service, name: &str, image: &str, creds: Option<&str>) -> String {
    let prefix = format!("127.0.0.1:{}/apps/{name}@sha256:", svc.port);
    let hex = image
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("image {image:?} is not {prefix}<digest>"));
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{image}"
    );
    let digest = format!("sha256:{hex}");
    let inspect = match creds {
        None => skopeo_inspect(&format!("docker://{image}"), false),
        Some(c) => {
            let o = Command::new("skopeo")
                .args(["inspect", "--tls-verify=false", "--creds", c])
                .arg(format!("docker://{image}"))
                .output()
                .unwrap();
            assert!(o.status.success(), "skopeo inspect {image}:\n{}", text(&o));
            serde_json::from_slice(&o.stdout).unwrap()
        }
    };
    assert_eq!(inspect["Digest"], digest.as_str(), "{inspect}");
    digest
}

/// What a droplet tgz holds: path -> (mode, content or symlink target).
fn droplet_entries(tgz: &[u8]) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        // (tar normalises away the leading "./")
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mode = e.header().mode().unwrap();
        let content = if e.header().entry_type().is_symlink() {
            e.link_name()
                .unwrap()
                .unwrap()
                .to_string_lossy()
                .into_owned()
                .into_bytes()
        } else {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            v
        };
        out.insert(path, (mode, content));
    }
    out
}

#[test]
fn push_stages_a_site_and_a_repush_uploads_only_the_changed_file() {
    let svc = Service::start();
    let tmp = tempdir();
    let site = tmp.path().join("my-site");
    write(&site.join("index.html"), "<h1>first version</h1>\n");
    write(&site.join("about/index.html"), "about page\n");
    std::fs::create_dir_all(site.join("assets")).unwrap();
    random_file(&site.join("assets/noise.bin"), 1 << 20);
    write(&site.join("bin/tool.sh"), "#!/bin/sh\necho tool\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        site.join("bin/tool.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("index.html", site.join("home.html")).unwrap();
    write(&site.join(".cfignore"), "secret.txt\n");
    write(&site.join("secret.txt"), "not for the server\n");
    write(&site.join("manifest.yml"), "applications: []\n");
    let api = svc.base();
    let site_arg = site.to_str().unwrap();

    // First push: everything goes up; the image is printed by digest and is in the registry.
    let o = push(&[site_arg, "--api", &api], &[]);
    assert!(o.status.success(), "{}\n{}", text(&o), svc.log());
    let err = stderr(&o);
    assert!(err.contains("Staticfile buildpack"), "{err}");
    assert!(
        err.contains("uploading 4 files (") && err.contains("), 0 already on the server"),
        "{err}"
    );
    assert!(
        err.contains("    uploaded ") && err.contains("/s)"),
        "no upload time: {err}"
    );
    let first = stdout(&o);
    assert_eq!(first.lines().count(), 1, "{first}");
    let first_digest = check_image(&svc, "my-site", &first, None);

    // Second push, one file changed: only that file is uploaded, the rest is matched.
    write(&site.join("index.html"), "<h1>second version</h1>\n");
    let o = push(&[site_arg, "--api", &api, "--json"], &[]);
    assert!(o.status.success(), "{}\n{}", text(&o), svc.log());
    let err = stderr(&o);
    assert!(
        err.contains("uploading 1 files (") && err.contains("), 3 already on the server"),
        "{err}"
    );
    assert!(err.contains("Staticfile buildpack"), "{err}");
    let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let image = out["image"].as_str().unwrap();
    let second_digest = check_image(&svc, "my-site", image, None);
    assert_ne!(first_digest, second_digest);

    // Same app both times.
    let apps: cf::Paginated<cf::App> = read(get_json(&svc, "/v3/apps?names=my-site", None));
    assert_eq!(apps.resources.len(), 1, "{apps:?}");
    assert_eq!(apps.resources[0].guid, out["app"].as_str().unwrap());
    let build = format!("/v3/builds/{}", out["build"].as_str().unwrap());
    let build: cf::Build = read(get_json(&svc, &build, None));
    assert_eq!(build.state, cf::BuildState::Staged);
    assert_eq!(build.package.guid, out["package"].as_str().unwrap());
    assert_eq!(
        build.droplet.unwrap().guid,
        out["droplet"].as_str().unwrap()
    );

    // The droplet staged from the second package: the new index.html, the matched files
    // restored intact, modes and the symlink kept, the ignored files absent.
    let (status, tgz) = get(
        &svc,
        &format!("/v3/droplets/{}/download", out["droplet"].as_str().unwrap()),
        None,
    );
    assert_eq!(status, 200);
    let files = droplet_entries(&tgz);
    let entry = |p: &str| {
        files
            .get(p)
            .unwrap_or_else(|| panic!("{p} missing from the droplet: {:?}", files.keys()))
    };
    assert_eq!(entry("app/index.html").1, b"<h1>second version</h1>\n");
    assert_eq!(entry("app/about/index.html").1, b"about page\n");
    assert_eq!(
        entry("app/assets/noise.bin").1,
        std::fs::read(site.join("assets/noise.bin")).unwrap()
    );
    assert_eq!(entry("app/bin/tool.sh").0 & 0o111, 0o111, "executable kept");
    assert_eq!(entry("app/home.html").1, b"index.html", "symlink kept");
    for gone in ["app/secret.txt", "app/.cfignore", "app/manifest.yml"] {
        assert!(!files.contains_key(gone), "{gone} was uploaded");
    }
}

#[test]
fn push_of_an_app_no_buildpack_detects_exits_222() {
    let svc = Service::start();
    let tmp = tempdir();
    let app = tmp.path().join("mystery");
    write(&app.join("README.txt"), "no index.html, no Procfile\n");
    let o = push(&[app.to_str().unwrap(), "--api", &svc.base()], &[]);
    assert_eq!(o.status.code(), Some(222), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("NoAppDetectedError"), "{err}");
    assert!(stdout(&o).is_empty(), "{}", text(&o));
}

#[test]
fn push_with_tokens_and_a_zip_source() {
    const TOKEN: &str = "tok-5f1e9c-do-not-print";
    let svc = Service::start_with(&["--token", TOKEN]);
    let tmp = tempdir();
    // A zip goes up as it is.
    let zip_path = tmp.path().join("site.zip");
    {
        use zip::write::SimpleFileOptions;
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let opts = SimpleFileOptions::default().unix_permissions(0o644);
        w.start_file("index.html", opts).unwrap();
        w.write_all(b"<h1>zipped</h1>\n").unwrap();
        w.start_file("css/site.css", opts).unwrap();
        w.write_all(b"h1 { color: red }\n").unwrap();
        w.finish().unwrap();
    }
    let zip_arg = zip_path.to_str().unwrap();
    let api = svc.base();

    let o = push(&[zip_arg, "--api", &api, "--name", "zipped"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("401") && err.contains("--token"),
        "no clear 401 message: {err}"
    );
    assert!(!err.contains(TOKEN));

    let o = push(
        &[
            zip_arg, "--api", &api, "--name", "zipped", "--token", "wrong",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("401") && stderr(&o).contains("refused the token"),
        "{}",
        text(&o)
    );

    // The token from the environment, the API too.
    let o = push(
        &[zip_arg, "--name", "zipped"],
        &[("DROPSHIP_TOKEN", TOKEN), ("DROPSHIP_API", &api)],
    );
    assert!(o.status.success(), "{}\n{}", text(&o), svc.log());
    assert!(stderr(&o).contains("uploading 2 files ("), "{}", text(&o));
    check_image(&svc, "zipped", &stdout(&o), Some(&format!("x:{TOKEN}")));
    // And as a flag.
    let o = push(
        &[zip_arg, "--api", &api, "--name", "zipped", "--token", TOKEN],
        &[],
    );
    assert!(o.status.success(), "{}\n{}", text(&o), svc.log());
    assert!(
        !text(&o).contains(TOKEN),
        "the token was printed:\n{}",
        text(&o)
    );
}

#[test]
fn push_says_which_url_it_could_not_reach() {
    let tmp = tempdir();
    write(&tmp.path().join("app/index.html"), "hi\n");
    let port = free_port();
    let o = push(
        &[
            tmp.path().join("app").to_str().unwrap(),
            "--api",
            &format!("http://127.0.0.1:{port}"),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("could not reach http://127.0.0.1:{port}/v3/apps")),
        "{err}"
    );
}

/// The staging log reaches the terminal while staging runs, not at the end: a buildpack that
/// prints, sleeps 3 s, then prints again; the first line must arrive well before the second.
#[test]
fn push_streams_the_staging_log_live() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;
    let tmp = tempdir();
    let bp = tmp.path().join("buildpacks/slow/bin");
    let script = |name: &str, body: &str| {
        write(&bp.join(name), &format!("#!/bin/sh\n{body}"));
        std::fs::set_permissions(bp.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script("detect", "echo slow\n");
    script(
        "finalize",
        "echo 'slow: started'\nsleep 3\necho 'slow: finished'\n",
    );
    script(
        "release",
        "printf -- '---\\ndefault_process_types:\\n  web: sleep 1000\\n'\n",
    );
    // Readable by the staging user.
    for d in ["buildpacks", "buildpacks/slow"] {
        std::fs::set_permissions(tmp.path().join(d), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    std::fs::set_permissions(&bp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let svc = Service::start_with(&[
        "--buildpacks-dir",
        tmp.path().join("buildpacks").to_str().unwrap(),
    ]);
    write(&tmp.path().join("app/anything.txt"), "x\n");

    let mut child = Command::new(bin())
        .args(["push", tmp.path().join("app").to_str().unwrap()])
        .args(["--api", &svc.base(), "--buildpack", "slow"])
        .env_remove("DROPSHIP_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push((start.elapsed(), line));
    }
    let status = child.wait().unwrap();
    let when = |needle: &str| {
        seen.iter()
            .find(|(_, l)| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {seen:?}\n{}", svc.log()))
            .0
    };
    assert!(status.success(), "{seen:?}\n{}", svc.log());
    let (started, finished) = (when("slow: started"), when("slow: finished"));
    assert!(
        finished >= started + Duration::from_secs(2),
        "the log came in one piece: started at {started:?}, finished at {finished:?}"
    );
}

/// Writes buildpack `name` into `dir`: `(script, body)` become `bin/script`.
fn write_buildpack(dir: &Path, name: &str, scripts: &[(&str, &str)]) {
    use std::os::unix::fs::PermissionsExt;
    for (script, body) in scripts {
        let p = dir.join(name).join("bin").join(script);
        write(&p, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `dropship push` of `app` (with `extra` flags) and the build it made, as the API shows it.
fn push_build(svc: &Service, app: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let base = svc.base();
    let mut args = vec![app.to_str().unwrap(), "--api", &base];
    args.extend_from_slice(extra);
    let o = push(&args, &[]);
    let err = stderr(&o);
    let guid = err
        .split("(build ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no build guid in the output: {}", text(&o)));
    (o, get_json(svc, &format!("/v3/builds/{guid}"), None))
}

/// The exit code comes from the failure's kind, stored with the build and sent as
/// `failure.kind`: only codes and kinds are asserted here, never the wording of an error, so
/// error messages can be reworded freely. A supply failure proves it: its CF error name is
/// the generic `StagingError`, yet it exits 225.
#[test]
fn push_exit_codes_follow_the_stored_failure_kind() {
    let bps = tempdir();
    let release = "printf -- '---\\ndefault_process_types:\\n  web: httpd -f -p $PORT\\n'";
    let picky = [
        ("detect", "test -f \"$1/compile-me\""),
        ("compile", "echo 'compile: giving up'; exit 1"),
        ("release", release),
    ];
    write_buildpack(bps.path(), "picky", &picky);
    let supplier = [("detect", "exit 1"), ("supply", "exit 3")];
    write_buildpack(bps.path(), "supplier", &supplier);
    let last = [
        ("detect", "exit 1"),
        ("finalize", "exit 0"),
        ("release", release),
    ];
    write_buildpack(bps.path(), "last", &last);
    let svc = Service::start_with(&["--buildpacks-dir", bps.path().to_str().unwrap()]);
    let tmp = tempdir();
    let app = tmp.path().join("app");
    write(&app.join("index.html"), "hi\n");
    let cases: [(&str, &[&str], i32, &str); 3] = [
        ("nothing detects", &[], 222, "no_app_detected"),
        ("compile fails", &[], 223, "compile_failed"),
        (
            "supply fails",
            &["-b", "supplier", "-b", "last"],
            225,
            "supply_failed",
        ),
    ];
    for (what, extra, code, kind) in cases {
        if code == 223 {
            write(&app.join("compile-me"), "");
        }
        let (o, build) = push_build(&svc, &app, extra);
        assert_eq!(o.status.code(), Some(code), "{what}: {}", text(&o));
        let build: cf::Build = read(build);
        assert_eq!(build.state, cf::BuildState::Failed, "{what}: {build:?}");
        let failure = build.failure.expect("a failed build's failure");
        let read_kind = failure.kind.map(|k| k.to_string());
        assert_eq!(read_kind.as_deref(), Some(kind), "{what}");
        assert_eq!(failure.exit_code, Some(code), "{what}");
        assert!(stdout(&o).is_empty(), "{what}: {}", text(&o));
    }
}

/// `-i/-m/-k` and the manifest's instances, memory and disk_quota reach the app's web
/// process (flags win, attribute by attribute); a scale above the server's limits fails the
/// push before anything is uploaded, with the server's words.
#[test]
fn push_scales_the_web_process_from_flags_and_manifest() {
    let svc = Service::start();
    let tmp = tempdir();
    let app = tmp.path().join("scaled");
    write(&app.join("index.html"), "<h1>scaled</h1>\n");
    write(
        &app.join("manifest.yml"),
        "applications:\n- name: scaled\n  instances: 3\n  memory: 128M\n  disk_quota: 256M\n",
    );
    let src = app.to_str().unwrap();
    let o = push(&[src, "--api", &svc.base(), "-m", "192M"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    for attr in ["instances", "memory", "disk_quota"] {
        assert!(!err.contains(&format!("{attr}: ignored")), "{err}");
    }
    let apps: cf::Paginated<cf::App> = read(get_json(&svc, "/v3/apps?names=scaled", None));
    let guid = apps.resources[0].guid.clone();
    // As cf push: the droplet is the app's current one and the app is started.
    assert_eq!(apps.resources[0].state, cf::AppState::Started, "{apps:?}");
    let current = format!("/v3/apps/{guid}/droplets/current");
    let current: cf::Droplet = read(get_json(&svc, &current, None));
    assert_eq!(current.image.as_deref(), Some(stdout(&o).as_str()));
    let web = format!("/v3/apps/{guid}/processes/web");
    let web: cf::Process = read(get_json(&svc, &web, None));
    let scale = (web.instances, web.memory_in_mb, web.disk_in_mb);
    assert_eq!(scale, (3, 192, 256), "{web:?}");

    // The app as a cf manifest: what it was pushed with (a push of it gives the same app).
    let (status, yaml) = get(&svc, &format!("/v3/apps/{guid}/manifest"), None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&yaml));
    let m: serde_json::Value = serde_norway::from_slice(&yaml).unwrap();
    let a = &m["applications"][0];
    assert_eq!(
        (&a["name"], &a["instances"]),
        (&json!("scaled"), &json!(3)),
        "{m}"
    );
    assert_eq!(
        (&a["memory"], &a["disk_quota"]),
        (&json!("192M"), &json!("256M")),
        "{m}"
    );
    assert_eq!(a["buildpacks"], json!(["staticfile"]), "{m}");
    let rel = format!("/v3/apps/{guid}/relationships/current_droplet");
    let rel: cf::CurrentDroplet = read(get_json(&svc, &rel, None));
    assert_eq!(rel.data.unwrap().guid, current.guid);
    let o = push(&[src, "--api", &svc.base(), "-i", "1", "-k", "5G"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("Disk in mb must be less than or equal to 4096"),
        "{err}"
    );
    let web = get_json(&svc, &format!("/v3/apps/{guid}/processes/web"), None);
    assert_eq!(
        web["instances"], 3,
        "a refused scale changes nothing: {web}"
    );
}

/// A cf manifest of two apps pushes both, each from its `path`; flags that set one app's
/// settings are refused for several (cf's rule); `--name` picks one; a `path` leading out of
/// the manifest's directory is refused before anything is sent.
#[test]
fn push_of_a_two_app_manifest_pushes_both() {
    let svc = Service::start();
    let tmp = tempdir();
    let root = tmp.path().join("two");
    write(&root.join("a/index.html"), "<h1>a</h1>\n");
    write(&root.join("b/index.html"), "<h1>b</h1>\n");
    write(
        &root.join("manifest.yml"),
        "applications:\n- name: site-a\n  path: a\n  health-check-type: http\n  \
         health-check-http-endpoint: /index.html\n- name: site-b\n  path: ./b\n  instances: 2\n  \
         processes:\n  - type: worker\n    instances: 3\n    command: sleep 1000\n",
    );
    let src = root.to_str().unwrap();
    let o = push(&[src, "--api", &svc.base(), "-i", "3"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("-i cannot apply when pushing several apps"),
        "{}",
        text(&o)
    );
    assert_eq!(
        get_json(&svc, "/v3/apps", None)["pagination"]["total_results"],
        0
    );

    let o = push(&[src, "--api", &svc.base()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let images: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(images.len(), 2, "{}", text(&o));
    for (app, image, instances) in [("site-a", &images[0], 1), ("site-b", &images[1], 2)] {
        assert!(image.contains(&format!("/apps/{app}@sha256:")), "{image}");
        let apps = get_json(&svc, &format!("/v3/apps?names={app}"), None);
        let guid = apps["resources"][0]["guid"].as_str().unwrap();
        let web = get_json(&svc, &format!("/v3/apps/{guid}/processes/web"), None);
        assert_eq!(web["instances"], instances, "{app}: {web}");
        let current = get_json(&svc, &format!("/v3/apps/{guid}/droplets/current"), None);
        assert_eq!(current["image"].as_str(), Some(image.as_str()));
        // The whole manifest went through apply_manifest: processes and health checks too.
        let procs = get_json(&svc, &format!("/v3/apps/{guid}/processes"), None);
        let procs = procs["resources"].as_array().unwrap();
        if app == "site-a" {
            assert_eq!(web["health_check"]["type"], "http", "{web}");
            assert_eq!(web["health_check"]["data"]["endpoint"], "/index.html");
        } else {
            assert_eq!(procs.len(), 2, "{procs:?}");
            assert_eq!(
                (&procs[1]["type"], &procs[1]["instances"]),
                (&json!("worker"), &json!(3))
            );
            assert_eq!(procs[1]["command"], "sleep 1000");
        }
    }
    let access = svc.log();
    assert!(
        access.contains("apply_manifest"),
        "push applies manifests: {access}"
    );
    assert!(
        !access.contains("actions/scale"),
        "and scales no more on its own"
    );

    let o = push(&[src, "--api", &svc.base(), "--name", "site-b"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "only site-b: {}", text(&o));

    write(
        &root.join("manifest.yml"),
        "applications:\n- name: sneaky\n  path: ../../\n- name: site-a\n  path: a\n",
    );
    let o = push(&[src, "--api", &svc.base()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("leads out of the manifest's directory"),
        "{}",
        text(&o)
    );
    let apps = get_json(&svc, "/v3/apps?names=sneaky", None);
    assert_eq!(
        apps["pagination"]["total_results"], 0,
        "nothing of it reached the server"
    );
}
