//! The Kubernetes deployment in `deploy/kubernetes/`: valid for Kubernetes 1.33
//! (kubernetes-validate --strict); its probes are routes the service answers without a token
//! while tokens guard the rest; the variables it sets are ones `dropship serve` reads.

use crate::support::client::Client;
use crate::support::*;
use serde_norway::Value;
use std::process::Command;

fn documents() -> Vec<Value> {
    let text =
        std::fs::read_to_string(project_dir().join("deploy/kubernetes/dropship.yaml")).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kubernetes_deployment_is_valid_and_its_probes_answer() {
    require(
        "kubernetes-validate",
        "python3-pip && pip install kubernetes-validate",
    );
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .arg(project_dir().join("deploy/kubernetes/dropship.yaml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "kubernetes-validate: {}", text(&o));

    let docs = documents();
    let set = docs
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .expect("a StatefulSet");
    assert_eq!(
        set["spec"]["replicas"].as_u64(),
        Some(1),
        "one replica until issue 12"
    );
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let api = InProcess::start("tokens = [\"deploy-token\"]\n").await;
    assert_eq!(api.get("/v3/apps").await.0, 401, "tokens guard the API");
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        assert_eq!(api.get(path).await.0, 200, "{probe} {path}");
    }
    let help = dropship_ok(&["serve", "--help"]);
    for var in container["env"].as_sequence().unwrap() {
        let name = var["name"].as_str().unwrap();
        // DROPSHIP_USERS is read by the login configuration, not by a flag.
        assert!(
            name == "DROPSHIP_USERS" || help.contains(&format!("env: {name}")),
            "dropship serve does not read {name}"
        );
    }
}
