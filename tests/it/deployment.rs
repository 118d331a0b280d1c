//! The Kubernetes deployments in `deploy/kubernetes/`: one replica (`dropship.yaml`, SQLite on a
//! volume) and three (`dropship-replicas.yaml`, PostgreSQL and object storage). Each is valid
//! for Kubernetes 1.33 (kubernetes-validate --strict); its probes are routes the service answers
//! without a token while tokens guard the rest; the variables it sets are ones `dropship serve`
//! reads; the secrets it refers to hold the keys it names; SIGTERM gets more time than
//! `shutdown_grace`.

use crate::support::client::Client;
use crate::support::*;
use serde_norway::Value;
use std::process::Command;

/// Variables of `dropship-replicas.yaml` that issue 12's other parts add to `dropship serve`.
/// While one is listed it must be missing from `serve --help`: once it is there, remove it.
const AWAITING: &[&str] = &[];

fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(project_dir().join("deploy/kubernetes").join(file)).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn validate(file: &str) {
    require(
        "kubernetes-validate",
        "python3-pip && pip install kubernetes-validate",
    );
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .arg(project_dir().join("deploy/kubernetes").join(file))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kubernetes-validate {file}: {}",
        text(&o)
    );
}

/// The workload of kind `kind` in `docs`, with `replicas` replicas.
fn workload<'a>(docs: &'a [Value], kind: &str, replicas: u64) -> &'a Value {
    let w = docs
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind}"));
    assert_eq!(w["spec"]["replicas"].as_u64(), Some(replicas), "{kind}");
    w
}

/// Probes answer without a token while tokens guard the API.
async fn probes_answer(container: &Value) {
    let api = InProcess::start("tokens = [\"deploy-token\"]\n").await;
    assert_eq!(api.get("/v3/apps").await.0, 401, "tokens guard the API");
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        assert_eq!(api.get(path).await.0, 200, "{probe} {path}");
    }
}

/// Every variable is read by `dropship serve` (DROPSHIP_USERS by the login configuration,
/// AWS_* by the object storage client, AWAITING ones soon).
fn variables_are_read(container: &Value, awaiting: &[&str]) {
    let help = dropship_ok(&["serve", "--help"]);
    for var in container["env"].as_sequence().unwrap() {
        let name = var["name"].as_str().unwrap();
        let read = help.contains(&format!("env: {name}"));
        if awaiting.contains(&name) {
            assert!(
                !read,
                "dropship serve reads {name} now: remove it from AWAITING in deployment.rs"
            );
            continue;
        }
        assert!(
            read || name == "DROPSHIP_USERS" || name.starts_with("AWS_"),
            "dropship serve does not read {name}"
        );
    }
}

/// The keys of Secret `name` in `docs`.
fn secret_keys(docs: &[Value], name: &str) -> Vec<String> {
    let s = docs
        .iter()
        .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Secret {name}"));
    let data = s["stringData"].as_mapping().unwrap();
    data.keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

/// Every `secretKeyRef` and secret volume item names a key of a Secret of the file, and a
/// variable naming a file under a secret volume's mount names one of its items.
fn secrets_hold_what_is_asked(docs: &[Value], pod: &Value) {
    let container = &pod["containers"][0];
    for var in container["env"].as_sequence().unwrap() {
        let r = &var["valueFrom"]["secretKeyRef"];
        if let (Some(name), Some(key)) = (r["name"].as_str(), r["key"].as_str()) {
            assert!(secret_keys(docs, name).iter().any(|k| k == key), "{key}");
        }
    }
    let volumes = pod["volumes"].as_sequence().cloned().unwrap_or_default();
    for v in volumes.iter().filter(|v| v["secret"].is_mapping()) {
        let keys = secret_keys(docs, v["secret"]["secretName"].as_str().unwrap());
        let items = v["secret"]["items"].as_sequence().unwrap();
        for item in items {
            assert!(keys.iter().any(|k| item["key"] == k.as_str()), "{item:?}");
        }
        let mounts = container["volumeMounts"].as_sequence().unwrap();
        let mount = mounts.iter().find(|m| m["name"] == v["name"]).unwrap();
        let dir = format!("{}/", mount["mountPath"].as_str().unwrap());
        for var in container["env"].as_sequence().unwrap() {
            let Some(file) = var["value"].as_str().and_then(|p| p.strip_prefix(&dir)) else {
                continue;
            };
            assert!(items.iter().any(|i| i["path"] == file), "{file} in {dir}");
        }
    }
}

/// SIGTERM waits longer than the service's default `shutdown_grace`.
fn grace_outlasts_shutdown(pod: &Value) {
    use dropship::service::config::{Config, FileConfig, Overrides};
    let buildpacks = project_dir().join("buildpacks");
    let config = Config::resolve(FileConfig::default(), Overrides::default(), || {
        Some(buildpacks)
    })
    .unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > config.shutdown_grace.as_secs(),
        "{grace} s for {:?}",
        config.shutdown_grace
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_single_replica_deployment_is_valid_and_its_probes_answer() {
    validate("dropship.yaml");
    let docs = documents("dropship.yaml");
    let set = workload(&docs, "StatefulSet", 1);
    let pod = &set["spec"]["template"]["spec"];
    probes_answer(&pod["containers"][0]).await;
    variables_are_read(&pod["containers"][0], &[]);
    secrets_hold_what_is_asked(&docs, pod);
    grace_outlasts_shutdown(pod);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_three_replica_deployment_is_valid_and_shares_what_replicas_must() {
    validate("dropship-replicas.yaml");
    let docs = documents("dropship-replicas.yaml");
    let deployment = workload(&docs, "Deployment", 3);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    probes_answer(container).await;
    variables_are_read(container, AWAITING);
    secrets_hold_what_is_asked(&docs, pod);
    grace_outlasts_shutdown(pod);
    // What every replica must share: the store, the public address, the signing key.
    let names: Vec<&str> = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for shared in [
        "DROPSHIP_DATABASE",
        "DROPSHIP_BLOB_STORE",
        "DROPSHIP_PUBLIC_ADDRESS",
        "DROPSHIP_SIGNING_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(names.contains(&shared), "{shared} is not set");
    }
}
