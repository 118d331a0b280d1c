//! No silent drops, through the binaries: an app's `manifest.yml` feeds `dropship build` and
//! `dropship push` (flags win; what is not applied is named in a warning; a symlinked manifest
//! and bad env names are refused); every process type of a Procfile gets its own StatefulSet
//! (checked by kubernetes-validate); a buildpack missing from the `order` file is still tried.

use crate::support::staging::Fixture;
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn kubernetes_validate(file: &Path) {
    require(
        "kubernetes-validate",
        "python3-pip && pip install kubernetes-validate",
    );
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "kubernetes-validate: {}", text(&o));
}

/// The documents of a multi-document YAML file.
fn documents(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn container(sts: &Value) -> &Value {
    &sts["spec"]["template"]["spec"]["containers"][0]
}

fn env_value<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .and_then(|v| v["value"].as_str())
}

const PROCFILE: &str = "web: httpd -f -p $PORT -h public\nworker: while true; do sleep 60; done\n";

/// A Procfile app (binary buildpack) with a web and a worker process.
fn procfile_app(dir: &Path) {
    write(&dir.join("Procfile"), PROCFILE);
    write(&dir.join("public/index.html"), "procfile app\n");
}

#[test]
fn manifest_sets_the_build_and_flags_win() {
    let reg = Registry::start();
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("docker://{}/stacks/busybox:latest", reg.host()),
    );
    let app = tmp.path().join("src-dir");
    procfile_app(&app);
    let command = "cd public && exec httpd -f -p $PORT";
    write(
        &app.join("manifest.yml"),
        &format!(
            "---
applications:
- name: from-manifest
  buildpacks: [binary]
  instances: 3
  memory: 256M
  disk_quota: 512M
  command: {command}
  timeout: 90
  env:
    GREETING: hello
    MODE: manifest
  routes: [{{route: app.example.com}}]
  random-route: true
  services: [db]
- name: second-app
"
        ),
    );
    let out = tmp.path().join("k8s");
    let target = format!("docker://{}/apps/from-manifest:1", reg.host());
    let o = dropship(&[
        "build",
        app.to_str().unwrap(),
        "--stack",
        &stack,
        "--image",
        &target,
        "--manifests",
        out.to_str().unwrap(),
        "--memory",
        "128M",
        "--env",
        "MODE=flag",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    for attr in ["routes", "random-route", "services", "applications"] {
        let lines = err
            .lines()
            .filter(|l| l.starts_with(&format!("warning: manifest.yml: {attr}: ")))
            .count();
        assert_eq!(lines, 1, "{attr}:\n{err}");
    }
    let b: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["name"], "from-manifest");
    assert_eq!(b["start_command"], command);
    assert_eq!(b["buildpacks"][0]["key"], "binary");
    assert_eq!(b["process_types"]["web"], command);
    // The image runs the manifest's command.
    let cfg = Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false", &target])
        .output()
        .unwrap();
    assert!(cfg.status.success(), "{}", text(&cfg));
    let cfg: Value = serde_json::from_slice(&cfg.stdout).unwrap();
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!([command]));

    let file = out.join("from-manifest.yaml");
    let docs = documents(&std::fs::read_to_string(&file).unwrap());
    let sets = of_kind(&docs, "StatefulSet");
    assert_eq!(sets.len(), 2, "{docs:?}");
    let web = sets[0];
    assert_eq!(web["spec"]["replicas"], 3);
    let c = container(web);
    assert_eq!(c["resources"]["limits"]["memory"], "128M");
    assert_eq!(c["resources"]["limits"]["ephemeral-storage"], "512M");
    assert_eq!(env_value(c, "GREETING"), Some("hello"));
    assert_eq!(env_value(c, "MODE"), Some("flag"));
    assert!(c.get("args").is_none(), "{c}");
    assert_eq!(c["startupProbe"]["failureThreshold"], 45);
    let worker = sets[1];
    assert_eq!(worker["spec"]["replicas"], 3);
    assert_eq!(
        container(worker)["args"],
        serde_json::json!(["while true; do sleep 60; done"])
    );
    kubernetes_validate(&file);
}

#[test]
fn procfile_web_and_worker_make_two_stateful_sets_and_one_service() {
    let reg = Registry::start();
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("docker://{}/stacks/busybox:latest", reg.host()),
    );
    let app = tmp.path().join("jobs");
    procfile_app(&app);
    let out = tmp.path().join("k8s");
    let target = format!("docker://{}/apps/jobs:1", reg.host());
    let b = build_json(&[
        app.to_str().unwrap(),
        "--stack",
        &stack,
        "--image",
        &target,
        "--buildpack",
        "binary",
        "--instances",
        "2",
        "--manifests",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        b["process_types"]["worker"],
        "while true; do sleep 60; done"
    );
    let file = out.join("jobs.yaml");
    let docs = documents(&std::fs::read_to_string(&file).unwrap());
    let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "StatefulSet",
            "PodDisruptionBudget",
            "Service",
            "StatefulSet",
            "PodDisruptionBudget"
        ]
    );
    let (web, worker) = (&docs[0], &docs[3]);
    let web_name = web["metadata"]["name"].as_str().unwrap();
    let worker_name = worker["metadata"]["name"].as_str().unwrap();
    assert!(web_name.starts_with("jobs-dropship-"), "{web_name}");
    assert!(
        worker_name.starts_with("jobs-worker-dropship-"),
        "{worker_name}"
    );
    let process = |d: &Value| {
        d["spec"]["template"]["metadata"]["labels"]["cloudfoundry.org/process_type"].clone()
    };
    assert_eq!(
        (process(web), process(worker)),
        ("web".into(), "worker".into())
    );
    assert!(worker["spec"].get("serviceName").is_none());
    assert!(container(worker).get("livenessProbe").is_none());
    // The Service selects the web pods only.
    let selector = &docs[2]["spec"]["selector"];
    assert_eq!(selector, &web["spec"]["selector"]["matchLabels"]);
    assert_ne!(selector, &worker["spec"]["selector"]["matchLabels"]);
    assert_eq!(docs[4]["metadata"]["name"], worker_name);
    kubernetes_validate(&file);
}

#[test]
fn hostile_manifests_are_refused() {
    let f = Fixture::new();
    f.buildpack("any", &[("detect", "exit 0"), ("release", "echo ---")]);
    // A symlinked manifest could read any file of the host.
    std::os::unix::fs::symlink("/etc/passwd", f.path("app/manifest.yml")).unwrap();
    let o = f.build(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("manifest.yml: is a symbolic link"),
        "{}",
        text(&o)
    );
    std::fs::remove_file(f.path("app/manifest.yml")).unwrap();
    write(
        &f.path("app/manifest.yml"),
        "applications: [{name: x, env: {1BAD: v}}]\n",
    );
    let o = f.build(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("\"1BAD\" is invalid"), "{}", text(&o));
    write(
        &f.path("app/manifest.yml"),
        "applications: [{name: x, buildpacks: [/usr/lib/evil]}]\n",
    );
    let o = f.build(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("no paths or URLs"), "{}", text(&o));
}

#[test]
fn zip_manifest_names_the_app() {
    use std::io::Write;
    let f = Fixture::new();
    f.buildpack(
        "any",
        &[
            ("detect", "exit 0"),
            ("compile", "exit 0"),
            (
                "release",
                "printf -- '---\\ndefault_process_types:\\n  web: httpd\\n'",
            ),
        ],
    );
    let zip_path = f.path("app.zip");
    let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("index.html", opts).unwrap();
    w.write_all(b"hi\n").unwrap();
    w.start_file("manifest.yml", opts).unwrap();
    w.write_all(b"applications: [{name: zipped, sidecars: []}]\n")
        .unwrap();
    w.finish().unwrap();
    let mut args = f.args(&["--json"]);
    args[1] = zip_path.display().to_string();
    let o = dropship(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));
    let b: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["name"], "zipped");
    assert!(
        stderr(&o).contains("warning: manifest.yml: sidecars: ignored, not supported"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_buildpack_missing_from_order_is_tried_and_logged() {
    let f = Fixture::new();
    f.buildpack("listed", &[("detect", "exit 1")]);
    f.buildpack(
        "unlisted",
        &[
            ("detect", "echo unlisted; exit 0"),
            ("compile", "exit 0"),
            (
                "release",
                "printf -- '---\\ndefault_process_types:\\n  web: httpd\\n'",
            ),
        ],
    );
    write(&f.path("bps/order"), "listed\n");
    let o = f.build(&["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let b: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["buildpacks"][0]["key"], "unlisted");
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("buildpacks not named in"))
        .unwrap_or_else(|| panic!("no line about the unlisted buildpack:\n{err}"));
    assert!(
        line.contains("order: unlisted: tried after the listed ones"),
        "{line}"
    );
}

#[test]
fn push_uses_the_manifest_name_env_and_buildpacks() {
    let svc = Service::start();
    let tmp = tempdir();
    let app = tmp.path().join("dir-name");
    procfile_app(&app);
    write(
        &app.join("manifest.yml"),
        "applications:\n- name: pushed-by-manifest\n  buildpacks: [binary]\n  instances: 2\n  \
         timeout: 30\n  env: {GREETING: hello-push}\n",
    );
    let o = push(&app, &svc.base());
    assert!(o.status.success(), "{}\n{}", text(&o), svc.log());
    let err = stderr(&o);
    assert!(
        !err.contains("ignored by dropship push"),
        "push applies the whole manifest: {err}"
    );
    assert!(
        !err.contains("instances: ignored"),
        "push sends instances: {err}"
    );
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let image = out["image"].as_str().unwrap();
    assert!(
        image.starts_with(&format!(
            "127.0.0.1:{}/apps/pushed-by-manifest@sha256:",
            svc.port
        )),
        "{image}"
    );
    let droplet = out["droplet"].as_str().unwrap();
    let (status, yaml) = http_get(svc.port, &format!("/v3/droplets/{droplet}/kubernetes"))
        .expect("the service answers");
    assert_eq!(status, 200, "{yaml}");
    let docs = documents(&yaml);
    let sets = of_kind(&docs, "StatefulSet");
    assert_eq!(sets.len(), 2, "{yaml}");
    let c = container(sets[0]);
    assert_eq!(env_value(c, "GREETING"), Some("hello-push"));
    assert_eq!(
        c["startupProbe"]["failureThreshold"], 15,
        "timeout: 30 s at 2 s a probe: {yaml}"
    );
    for set in &sets {
        assert_eq!(
            set["spec"]["replicas"], 2,
            "the manifest's instances: {yaml}"
        );
    }
    assert_eq!(
        container(sets[1])["args"],
        serde_json::json!(["while true; do sleep 60; done"])
    );
    assert_eq!(
        sets[0]["metadata"]["annotations"]["cloudfoundry.org/application_name"],
        "pushed-by-manifest"
    );
    let file = tmp.path().join("k8s.yaml");
    std::fs::write(&file, &yaml).unwrap();
    kubernetes_validate(&file);

    // A second push of the existing app sets the manifest's variables, keeps the others.
    write(
        &app.join("manifest.yml"),
        "applications:\n- name: pushed-by-manifest\n  buildpack: binary\n  env: {MORE: yes-more}\n",
    );
    let o = push(&app, &svc.base());
    assert!(o.status.success(), "{}\n{}", text(&o), svc.log());
    let guid = out["app"].as_str().unwrap();
    let (status, body) = http_get(svc.port, &format!("/v3/apps/{guid}/environment_variables"))
        .expect("the service answers");
    assert_eq!(status, 200, "{body}");
    let env: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        env["var"],
        serde_json::json!({"GREETING": "hello-push", "MORE": "yes-more"})
    );
    // The endpoint itself: null removes, names are checked as at creation.
    let path = format!("/v3/apps/{guid}/environment_variables");
    let (status, body) = patch(svc.port, &path, r#"{"var": {"MORE": null}}"#);
    assert_eq!(status, 200, "{body}");
    let env: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(env["var"], serde_json::json!({"GREETING": "hello-push"}));
    let (status, body) = patch(svc.port, &path, r#"{"var": {"CF_X": "y"}}"#);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("CF_X"), "{body}");
}

/// `PATCH path` with a JSON body: status and body.
fn patch(port: u16, path: &str, json: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PATCH {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{json}",
        json.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn push(app: &Path, api: &str) -> Output {
    Command::new(bin())
        .args(["push", app.to_str().unwrap(), "--api", api, "--json"])
        .env_remove("DROPSHIP_API")
        .env_remove("DROPSHIP_TOKEN")
        .output()
        .unwrap()
}
