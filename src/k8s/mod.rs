//! Kubernetes manifests for an app image, shaped like the ones Eirini (Cloud Foundry on
//! Kubernetes) produced: a StatefulSet, a PodDisruptionBudget when there is more than one
//! instance, and a ClusterIP Service for the web process; a StatefulSet (and PDB) for each other
//! process type. Pure: typed objects in, YAML or JSON text out, no IO,
//! no clock, no randomness, so the same [`AppSpec`] always gives byte-identical output.
//!
//! Sources followed (cloudfoundry/eirini): k8s/stset/lrp_to_statefulset.go (StatefulSet),
//! k8s/utils/names.go (names), k8s/probe.go (probes), k8s/pdb/update.go (PDB).
//!
//! Layout: this file holds the input ([`AppSpec`], [`HealthCheck`]) and the output
//! ([`Manifests`]); the derived identities ([`Identity`]) are in `identity.rs`; names, GUIDs
//! and label values are derived in `names.rs`; the objects are built in `statefulset.rs`,
//! `pdb.rs` and `service.rs`.

mod identity;
mod names;
pub mod pdb;
pub mod process;
pub mod service;
pub mod statefulset;

pub use identity::Identity;
pub use names::*;
pub use process::ProcessSettings;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::app::App;
pub use crate::app::{app_guid, version, HealthCheck, DEFAULT_SPACE_ORG};

pub const LABEL_APP_GUID: &str = "cloudfoundry.org/app_guid";
pub const LABEL_GUID: &str = "cloudfoundry.org/guid";
pub const LABEL_VERSION: &str = "cloudfoundry.org/version";
pub const LABEL_PROCESS_TYPE: &str = "cloudfoundry.org/process_type";
pub const LABEL_SOURCE_TYPE: &str = "cloudfoundry.org/source_type";
pub const LABEL_ORG_NAME: &str = "cloudfoundry.org/org_name";
pub const LABEL_SPACE_NAME: &str = "cloudfoundry.org/space_name";
pub const LABEL_K8S_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_K8S_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

pub const ANNOTATION_APP_NAME: &str = "cloudfoundry.org/application_name";
pub const ANNOTATION_APP_ID: &str = "cloudfoundry.org/application_id";
pub const ANNOTATION_PROCESS_GUID: &str = "cloudfoundry.org/process_guid";
pub const ANNOTATION_VERSION: &str = "cloudfoundry.org/version";
pub const ANNOTATION_SPACE_NAME: &str = "cloudfoundry.org/space_name";
pub const ANNOTATION_ORG_NAME: &str = "cloudfoundry.org/org_name";

pub const SOURCE_TYPE_APP: &str = "APP";
pub const PROCESS_TYPE_WEB: &str = "web";

/// Eirini's limit for the sanitized `<app>-<space>` prefix of the StatefulSet name.
const NAME_PREFIX_MAX: usize = 40;
/// Hex characters of sha256(`<guid>-<version>`) appended to the StatefulSet name.
const NAME_SUFFIX_LEN: usize = 10;
/// 40 + "-" + 10. Leaves room for the `controller-revision-hash` label
/// (`<name>-<10 chars>`, itself limited to 63) that the StatefulSet controller adds to pods.
#[cfg(test)]
const STATEFUL_SET_NAME_MAX: usize = NAME_PREFIX_MAX + 1 + NAME_SUFFIX_LEN;
/// DNS label length limit (Service names, label values, namespaces).
const DNS_LABEL_MAX: usize = 63;

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("image {0:?} is not referenced by digest (expected HOST/REPO@sha256:<64 hex>)")]
    ImageNotByDigest(String),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("serializing manifests to YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("serializing manifests to JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> K8sError {
    K8sError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// What to run: everything the manifests are derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// CF app name, any string (spaces, uppercase, punctuation): sanitized where Kubernetes
    /// needs a name, kept verbatim in annotations and `VCAP_APPLICATION`.
    pub name: String,
    /// Set on every object when given. `None` (or `Some("")`) leaves it out, so
    /// `kubectl apply -n NS` decides.
    pub namespace: Option<String>,
    /// Always by digest: `host/repo@sha256:<64 hex>`; anything else is rejected.
    pub image: String,
    pub instances: u32,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub health_check: HealthCheck,
    /// User environment (`--env K=V`). Wins over every default variable except `PORT` and
    /// the downward-API ones (`POD_NAME`, `CF_INSTANCE_GUID|IP|INTERNAL_IP|INDEX`).
    pub env: BTreeMap<String, String>,
    pub port: u16,
    /// The droplet's process types and their commands. `web` runs the image's Cmd and has the
    /// Service; every other type gets its own StatefulSet running its command (no Service,
    /// health check `process`).
    pub processes: BTreeMap<String, String>,
    /// How long an instance may take to start, in seconds (Cloud Foundry's
    /// `health_check_timeout`, the manifest's `timeout`): the startup probe's budget.
    pub startup_timeout_s: u32,
    /// Empty means [`DEFAULT_SPACE_ORG`].
    pub space_name: String,
    /// Empty means [`DEFAULT_SPACE_ORG`].
    pub org_name: String,
    /// Per process type: what it is told beyond the app's settings (`process.rs`).
    pub overrides: BTreeMap<String, ProcessSettings>,
}

impl Default for AppSpec {
    /// CF's defaults; `name` and `image` are empty and must be filled in.
    fn default() -> Self {
        AppSpec {
            name: String::new(),
            namespace: None,
            image: String::new(),
            instances: 1,
            memory_mb: 1024,
            disk_mb: 1024,
            health_check: HealthCheck::Port,
            env: BTreeMap::new(),
            port: 8080,
            processes: BTreeMap::new(),
            startup_timeout_s: statefulset::STARTUP_TIMEOUT_S as u32,
            space_name: String::new(),
            org_name: String::new(),
            overrides: BTreeMap::new(),
        }
    }
}

impl AppSpec {
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        AppSpec {
            name: name.into(),
            image: image.into(),
            ..AppSpec::default()
        }
    }

    /// The one mapping of an app's settings to its spec, for the CLI, the build pipeline
    /// and the service alike: `image` by digest, `processes` the droplet's process types.
    pub fn for_app(app: &App, image: &str, processes: &BTreeMap<String, String>) -> Self {
        let mut spec = AppSpec::new(app.name.clone(), image);
        spec.namespace = app.namespace.clone();
        spec.instances = app.instances;
        spec.memory_mb = app.memory_mb;
        spec.disk_mb = app.disk_mb;
        spec.health_check = app.health_check.clone();
        spec.env = app.env.iter().cloned().collect();
        spec.processes = processes.clone();
        if let Some(t) = app.health_check_timeout {
            spec.startup_timeout_s = t;
        }
        spec
    }

    /// The namespace, with `Some("")` read as `None`.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|ns| !ns.is_empty())
    }

    pub fn space_name(&self) -> &str {
        or_default(&self.space_name)
    }

    pub fn org_name(&self) -> &str {
        or_default(&self.org_name)
    }

    /// Checks everything Kubernetes (1.33) would reject later, with a clearer message.
    pub fn validate(&self) -> Result<(), K8sError> {
        if self.name.is_empty() {
            return Err(invalid("app name", "must not be empty"));
        }
        if !image_by_digest(&self.image) {
            return Err(K8sError::ImageNotByDigest(self.image.clone()));
        }
        if let Some(ns) = self.namespace() {
            if !is_dns_label(ns) {
                return Err(invalid(
                    "namespace",
                    format!(
                        "{ns:?} is not a DNS label (lowercase alphanumerics and '-', at most 63)"
                    ),
                ));
            }
        }
        if i32::try_from(self.instances).is_err() {
            return Err(invalid(
                "instances",
                format!("{} is too large", self.instances),
            ));
        }
        if self.memory_mb == 0 || self.disk_mb == 0 {
            return Err(invalid("memory/disk", "must be at least 1 MB"));
        }
        if self.port == 0 {
            return Err(invalid("port", "must not be 0"));
        }
        if !(1..=3600).contains(&self.startup_timeout_s) {
            return Err(invalid(
                "health check timeout",
                format!("{} s: expected 1 to 3600", self.startup_timeout_s),
            ));
        }
        self.validate_processes()?;
        self.validate_overrides()?;
        if let HealthCheck::Http { endpoint } = &self.health_check {
            if !crate::app::valid_endpoint(endpoint) {
                return Err(invalid(
                    "health check endpoint",
                    format!("{endpoint:?} must start with '/' and contain no whitespace"),
                ));
            }
        }
        if let Some(key) = self.env.keys().find(|k| !is_env_var_name(k)) {
            return Err(invalid(
                "environment variable name",
                format!("{key:?} must match [-._a-zA-Z][-._a-zA-Z0-9]*"),
            ));
        }
        Ok(())
    }

    /// Process types must be label values as they are (they name objects and label pods);
    /// the ones with a StatefulSet of their own need a command.
    fn validate_processes(&self) -> Result<(), K8sError> {
        for (kind, command) in &self.processes {
            if label_value(kind) != *kind || kind.is_empty() {
                return Err(invalid(
                    "process type",
                    format!(
                        "{kind:?} must be a label value ([A-Za-z0-9] with -_. inside, at most 63)"
                    ),
                ));
            }
            if kind != PROCESS_TYPE_WEB && command.trim().is_empty() {
                return Err(invalid("process type", format!("{kind:?} has no command")));
            }
        }
        Ok(())
    }

    /// The process types other than `web`, sorted, with their commands.
    pub fn other_processes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.processes
            .iter()
            .filter(|(k, _)| k.as_str() != PROCESS_TYPE_WEB)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn or_default(s: &str) -> &str {
    if s.is_empty() {
        DEFAULT_SPACE_ORG
    } else {
        s
    }
}

/// `host/repo@sha256:<64 lowercase hex>`.
fn image_by_digest(image: &str) -> bool {
    match image.split_once("@sha256:") {
        Some((repo, hex)) => {
            !repo.is_empty()
                && !repo.chars().any(|c| c.is_whitespace() || c == '@')
                && hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

/// Kubernetes 1.33's rule for environment variable names (relaxed only from 1.34 on).
fn is_env_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    matches!(bytes.next(), Some(b) if ok(b) && !b.is_ascii_digit()) && bytes.all(ok)
}

/// The objects for one app: the web process's StatefulSet, PDB and Service, then one
/// StatefulSet (and PDB) per other process type. PDBs only with more than one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    pub stateful_set: StatefulSet,
    pub pdb: Option<PodDisruptionBudget>,
    pub service: Service,
    /// Sorted by process type.
    pub processes: Vec<ProcessSet>,
}

/// A process type other than `web`: its StatefulSet, and its PDB as for `web`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSet {
    pub process_type: String,
    pub stateful_set: StatefulSet,
    pub pdb: Option<PodDisruptionBudget>,
}

/// Builds the manifests after [`AppSpec::validate`].
pub fn manifests(spec: &AppSpec) -> Result<Manifests, K8sError> {
    spec.validate()?;
    let id = Identity::new(spec);
    let processes = spec
        .other_processes()
        .map(|(kind, _)| {
            let pid = Identity::for_process(spec, kind);
            let own = spec.for_process(kind);
            ProcessSet {
                process_type: kind.to_string(),
                stateful_set: statefulset::stateful_set(&own, &pid),
                pdb: pdb::pod_disruption_budget(&own, &pid),
            }
        })
        .collect();
    let web = spec.for_process(PROCESS_TYPE_WEB);
    Ok(Manifests {
        stateful_set: statefulset::stateful_set(&web, &id),
        pdb: pdb::pod_disruption_budget(&web, &id),
        service: service::service(&web, &id),
        processes,
    })
}

/// One object of any of the three kinds; serializes as itself (with apiVersion and kind).
#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    StatefulSet(&'a StatefulSet),
    Pdb(&'a PodDisruptionBudget),
    Service(&'a Service),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<Item<'a>>,
}

impl Manifests {
    /// StatefulSet, PodDisruptionBudget (if any), Service, in that order; then each other
    /// process's StatefulSet and PodDisruptionBudget (if any).
    fn items(&self) -> Vec<Item<'_>> {
        let mut items = vec![Item::StatefulSet(&self.stateful_set)];
        items.extend(self.pdb.as_ref().map(Item::Pdb));
        items.push(Item::Service(&self.service));
        for p in &self.processes {
            items.push(Item::StatefulSet(&p.stateful_set));
            items.extend(p.pdb.as_ref().map(Item::Pdb));
        }
        items
    }

    /// Multi-document YAML, documents separated by `---`, each with apiVersion and kind.
    pub fn to_yaml(&self) -> Result<String, K8sError> {
        let docs = self
            .items()
            .iter()
            .map(serde_norway::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(docs.join("---\n"))
    }

    /// A `v1` `List` holding the objects, pretty-printed, ending with a newline.
    pub fn to_json(&self) -> Result<String, K8sError> {
        let list = List {
            api_version: "v1",
            kind: "List",
            items: self.items(),
        };
        Ok(serde_json::to_string_pretty(&list)? + "\n")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    pub(crate) const IMAGE: &str = "registry.example:5000/apps/my-app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    pub(crate) fn spec() -> AppSpec {
        AppSpec {
            namespace: Some("apps".to_string()),
            ..AppSpec::new("My_App!!", IMAGE)
        }
    }

    #[test]
    fn an_app_maps_to_its_spec_field_by_field() {
        let app = App {
            namespace: Some("apps".into()),
            instances: 3,
            memory_mb: 256,
            disk_mb: 2048,
            health_check: HealthCheck::Process,
            env: vec![("A".into(), "1".into())],
            command: Some("ignored: the image's Cmd".into()),
            health_check_timeout: Some(120),
            ..App::named("My_App!!")
        };
        let processes = BTreeMap::from([("web".to_string(), "run".to_string())]);
        let spec = AppSpec::for_app(&app, IMAGE, &processes);
        assert_eq!(spec.namespace(), Some("apps"));
        assert_eq!(
            (spec.instances, spec.memory_mb, spec.disk_mb),
            (3, 256, 2048)
        );
        assert_eq!(spec.health_check, HealthCheck::Process);
        assert_eq!(spec.env, BTreeMap::from([("A".into(), "1".into())]));
        assert_eq!((spec.startup_timeout_s, &spec.processes), (120, &processes));
        let default = AppSpec::for_app(&App::named("a"), IMAGE, &BTreeMap::new());
        assert_eq!(
            default.startup_timeout_s,
            AppSpec::default().startup_timeout_s
        );
        // The identity is the app's, whoever derives it.
        assert_eq!(Identity::new(&spec).app_guid, app.identity().guid);
    }

    #[test]
    fn identities_are_uuids_and_stable() {
        let id = Identity::new(&spec());
        for u in [&id.app_guid, &id.version] {
            assert_eq!(u.len(), 36);
            assert_eq!(u.as_bytes()[14], b'5', "{u}");
            assert!(matches!(u.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{u}");
        }
        assert_eq!(id.process_guid, format!("{}-{}", id.app_guid, id.version));
        assert_eq!(id.version, version(&id.app_guid));
        // A rebuild (new digest, new env) keeps every identity.
        let mut rebuilt = spec();
        rebuilt.image = IMAGE.replace("0123", "4567");
        rebuilt.env.insert("A".into(), "B".into());
        assert_eq!(Identity::new(&rebuilt), id);
        // Another namespace is another app.
        rebuilt.namespace = None;
        assert_ne!(Identity::new(&rebuilt).app_guid, id.app_guid);
    }

    #[test]
    fn stateful_set_names() {
        let guid = app_guid("", "x");
        let ver = version(&guid);
        let suffix = &hex::encode(Sha256::digest(format!("{guid}-{ver}")))[..10];
        let name = |app: &str, space: &str| stateful_set_name(app, space, &guid, &ver);
        assert_eq!(name("My_App!!", "dev"), format!("my-app-dev-{suffix}"));
        assert_eq!(
            name("my_app", "Dev_Space"),
            format!("my-app-dev-space-{suffix}")
        );
        assert_eq!(name("My App", "dev"), format!("my-app-dev-{suffix}"));
        assert_eq!(name("a--b", "c"), format!("a--b-c-{suffix}"));
        assert_eq!(name("my.app", "dev"), format!("my-app-dev-{suffix}"));
        assert_eq!(name("!!!", "***"), format!("{guid}-{suffix}"));
        // 40-byte truncation that lands on a '-' is trimmed.
        let long = format!("{}-b", "a".repeat(39));
        let n = name(&long, "dev");
        assert_eq!(n, format!("{}-{suffix}", "a".repeat(39)));
        let n = name(&"Very Long Application Name ".repeat(5), "space");
        assert!(n.len() <= STATEFUL_SET_NAME_MAX, "{n}");
        assert!(!n.contains("--"), "{n}");
        assert!(is_dns_label(&n), "{n}");
    }

    #[test]
    fn service_names() {
        let g = "0a1b2c3d-0000-5000-8000-000000000000";
        assert_eq!(service_name("My_App!!", g), "my-app");
        assert_eq!(service_name("99 Luftballons", g), "app-99-luftballons");
        assert_eq!(service_name("-_-", g), format!("app-{g}"));
        let long = service_name(&format!("{}-x", "a".repeat(62)), g);
        assert_eq!(long, "a".repeat(62));
        let long = service_name(&"x1-".repeat(30), g);
        assert!(long.len() <= 63 && long.ends_with('1'), "{long}");
    }

    #[test]
    fn label_values() {
        assert_eq!(label_value("My Org!"), "My-Org");
        assert_eq!(label_value("_space.1_"), "space.1");
        assert_eq!(label_value("***"), "");
        assert_eq!(
            label_value(&format!("{}.x", "a".repeat(62))),
            "a".repeat(62)
        );
    }

    #[test]
    fn rejects_bad_specs() {
        let bad = |f: fn(&mut AppSpec)| {
            let mut s = spec();
            f(&mut s);
            manifests(&s).unwrap_err()
        };
        let e = bad(|s| s.image = "registry.example/apps/my-app:latest".into());
        assert!(matches!(e, K8sError::ImageNotByDigest(_)), "{e}");
        let e = bad(|s| s.image = "registry.example/apps/my-app@sha256:abc".into());
        assert!(matches!(e, K8sError::ImageNotByDigest(_)), "{e}");
        assert!(matches!(bad(|s| s.name.clear()), K8sError::Invalid { .. }));
        assert!(matches!(bad(|s| s.memory_mb = 0), K8sError::Invalid { .. }));
        let e = bad(|s| s.namespace = Some("Apps".into()));
        assert!(e.to_string().contains("namespace"), "{e}");
        let e = bad(|s| {
            s.env.insert("1BAD".into(), "x".into());
        });
        assert!(e.to_string().contains("1BAD"), "{e}");
    }

    #[test]
    fn yaml_is_multi_document_and_parses_back() {
        let mut s = spec();
        s.instances = 3;
        let yaml = manifests(&s).unwrap().to_yaml().unwrap();
        assert_eq!(yaml.matches("\n---\n").count(), 2, "{yaml}");
        for kind in ["StatefulSet", "PodDisruptionBudget", "Service"] {
            assert!(yaml.contains(&format!("\nkind: {kind}\n")), "{kind}");
        }
        let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["StatefulSet", "PodDisruptionBudget", "Service"]);
        assert_eq!(docs[0]["apiVersion"], "apps/v1");
        assert_eq!(docs[1]["apiVersion"], "policy/v1");
        assert_eq!(docs[2]["apiVersion"], "v1");
        assert_eq!(docs[0]["metadata"]["namespace"], "apps");
        assert_eq!(docs[2]["metadata"]["name"], "my-app");
        // Parses back into the typed objects, equal to what was written.
        let m = manifests(&s).unwrap();
        let sts: StatefulSet = serde_json::from_value(docs[0].clone()).unwrap();
        assert_eq!(sts, m.stateful_set);
    }

    #[test]
    fn single_instance_yaml_has_two_documents() {
        let yaml = manifests(&spec()).unwrap().to_yaml().unwrap();
        assert_eq!(yaml.matches("\n---\n").count(), 1);
        assert!(!yaml.contains("PodDisruptionBudget"));
    }

    #[test]
    fn json_is_a_v1_list() {
        let json = manifests(&spec()).unwrap().to_json().unwrap();
        assert!(
            json.starts_with("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\""),
            "{json}"
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let kinds: Vec<_> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["StatefulSet", "Service"]);
    }

    #[test]
    fn output_is_deterministic() {
        let mut s = spec();
        s.instances = 2;
        s.env.insert("Z".into(), "1".into());
        s.env.insert("A".into(), "2".into());
        let a = manifests(&s).unwrap();
        let b = manifests(&s.clone()).unwrap();
        assert_eq!(a.to_yaml().unwrap(), b.to_yaml().unwrap());
        assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
    }
}
