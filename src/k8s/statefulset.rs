//! The StatefulSet, after Eirini's k8s/stset/lrp_to_statefulset.go and k8s/probe.go, minus
//! what needs a cluster-side component (service account, registry secret, instance-index
//! webhook) and with a restricted-profile security context.

use super::{AppSpec, HealthCheck, Identity};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext, TCPSocketAction,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use std::collections::BTreeMap;

/// Eirini's name for the app container.
pub const CONTAINER_NAME: &str = "opi";
/// The `vcap` user and group of the CF stacks, which the droplet files belong to.
pub const RUN_AS_ID: i64 = 2000;
/// CF's default `health_check_timeout`, in seconds: how long an instance may take to start.
pub const STARTUP_TIMEOUT_S: i32 = 60;
const STARTUP_PERIOD_S: i32 = 2;
const LIVENESS_FAILURE_THRESHOLD: i32 = 4;
const READINESS_FAILURE_THRESHOLD: i32 = 1;
const POD_ANTI_AFFINITY_WEIGHT: i32 = 100;
/// The file descriptor limit CF reports in `VCAP_APPLICATION.limits.fds`.
const FDS_LIMIT: u32 = 16384;

pub fn stateful_set(spec: &AppSpec, id: &Identity) -> StatefulSet {
    let selector = id.selector();
    let pod_meta = ObjectMeta {
        labels: Some(id.labels()),
        annotations: Some(id.annotations()),
        ..ObjectMeta::default()
    };
    StatefulSet {
        metadata: id.metadata(&id.name, id.labels(), Some(id.annotations())),
        spec: Some(StatefulSetSpec {
            // Checked by AppSpec::validate.
            replicas: Some(i32::try_from(spec.instances).unwrap_or(i32::MAX)),
            pod_management_policy: Some("Parallel".to_string()),
            // Our Service is a ClusterIP one, not headless, so no per-pod DNS records come
            // of this; it only names the Service that goes with the set (web's only: other
            // process types have none).
            service_name: id.is_web().then(|| id.service_name.clone()),
            template: PodTemplateSpec {
                metadata: Some(pod_meta),
                spec: Some(pod_spec(spec, id, &selector)),
            },
            selector,
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

fn pod_spec(spec: &AppSpec, id: &Identity, selector: &LabelSelector) -> PodSpec {
    let (liveness_probe, readiness_probe, startup_probe) = probes(spec, id);
    let container = Container {
        name: CONTAINER_NAME.to_string(),
        image: Some(spec.image.clone()),
        // The image is named by digest, so `Always` would only re-check a digest that
        // cannot change.
        image_pull_policy: Some("IfNotPresent".to_string()),
        // No command: the image's Entrypoint (`/lifecycle/launch`) runs the process. Its Cmd
        // is the web start command; other process types replace it with theirs.
        args: process_args(spec, id),
        env: Some(env(spec, id)),
        ports: Some(vec![ContainerPort {
            container_port: i32::from(spec.port),
            protocol: Some("TCP".to_string()),
            ..ContainerPort::default()
        }]),
        resources: Some(resources(spec)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        liveness_probe,
        readiness_probe,
        startup_probe,
        ..Container::default()
    };
    PodSpec {
        containers: vec![container],
        automount_service_account_token: Some(false),
        // CF apps see no `<SERVICE>_PORT`-style variables for other Services.
        enable_service_links: Some(false),
        // No fsGroup: there are no volumes for it to apply to.
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_ID),
            run_as_group: Some(RUN_AS_ID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        affinity: Some(anti_affinity(selector)),
        ..PodSpec::default()
    }
}

/// The container's args: none for `web` (the image's Cmd) unless its command was set,
/// `[command]` for other types.
fn process_args(spec: &AppSpec, id: &Identity) -> Option<Vec<String>> {
    spec.command_of(&id.process_type).map(|c| vec![c])
}

/// Prefer spreading instances over nodes: one `In` expression per selector label.
fn anti_affinity(selector: &LabelSelector) -> Affinity {
    let match_expressions = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(key, value)| LabelSelectorRequirement {
            key: key.clone(),
            operator: "In".to_string(),
            values: Some(vec![value.clone()]),
        })
        .collect();
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: POD_ANTI_AFFINITY_WEIGHT,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: "kubernetes.io/hostname".to_string(),
                        label_selector: Some(LabelSelector {
                            match_expressions: Some(match_expressions),
                            match_labels: None,
                        }),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// Plain variables sorted by name (defaults, then the user's on top, then `PORT`), followed
/// by the downward-API ones. User variables with a downward-API name are dropped.
pub fn env(spec: &AppSpec, id: &Identity) -> Vec<EnvVar> {
    let port = spec.port.to_string();
    let mut plain: BTreeMap<String, String> = [
        ("VCAP_APP_PORT", port.clone()),
        ("VCAP_APP_HOST", "0.0.0.0".to_string()),
        ("MEMORY_LIMIT", format!("{}m", spec.memory_mb)),
        ("LANG", "en_US.UTF-8".to_string()),
        ("CF_INSTANCE_ADDR", format!("0.0.0.0:{port}")),
        ("CF_INSTANCE_PORT", port.clone()),
        (
            "CF_INSTANCE_PORTS",
            format!(r#"[{{"external":{port},"internal":{port}}}]"#),
        ),
        ("VCAP_APPLICATION", vcap_application(spec, id)),
        ("VCAP_SERVICES", "{}".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    plain.extend(spec.env.clone());
    plain.insert("PORT".to_string(), port);

    let field = |name: &str, path: &str| EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_string(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
    };
    let downward = [
        field("POD_NAME", "metadata.name"),
        field("CF_INSTANCE_GUID", "metadata.uid"),
        field("CF_INSTANCE_IP", "status.hostIP"),
        field("CF_INSTANCE_INTERNAL_IP", "status.podIP"),
        // Eirini set CF_INSTANCE_INDEX from the pod ordinal with a mutating webhook. Without
        // one, the pod-index label that the StatefulSet controller puts on its pods
        // (Kubernetes >= 1.28, GA in 1.32) carries the same number; on older clusters the
        // variable is empty.
        field(
            "CF_INSTANCE_INDEX",
            "metadata.labels['apps.kubernetes.io/pod-index']",
        ),
    ];
    for var in &downward {
        plain.remove(&var.name);
    }
    plain
        .into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            value_from: None,
        })
        .chain(downward)
        .collect()
}

#[derive(Serialize)]
struct VcapApplication<'a> {
    application_id: &'a str,
    application_name: &'a str,
    application_uris: [&'a str; 0],
    application_version: &'a str,
    limits: Limits,
    name: &'a str,
    process_id: &'a str,
    process_type: &'a str,
    space_name: &'a str,
    organization_name: &'a str,
    uris: [&'a str; 0],
    version: &'a str,
}

#[derive(Serialize)]
struct Limits {
    disk: u64,
    fds: u32,
    mem: u64,
}

/// Compact JSON, keys in a fixed order.
fn vcap_application(spec: &AppSpec, id: &Identity) -> String {
    let v = VcapApplication {
        application_id: &id.app_guid,
        application_name: &spec.name,
        application_uris: [],
        application_version: &id.version,
        limits: Limits {
            disk: spec.disk_mb,
            fds: FDS_LIMIT,
            mem: spec.memory_mb,
        },
        name: &spec.name,
        process_id: &id.process_guid,
        process_type: &id.process_type,
        space_name: &id.space_name,
        organization_name: &id.org_name,
        uris: [],
        version: &id.version,
    };
    serde_json::to_string(&v).expect("plain struct serializes")
}

/// Cloud Controller's TaskCpuWeightCalculator as Eirini used it: a weight in 1..=100 from
/// the memory limit, requested as that many millicores.
pub fn cpu_millis(memory_mb: u64) -> u64 {
    const MIN_CPU_PROXY: u64 = 128;
    const MAX_CPU_PROXY: u64 = 8192;
    if memory_mb > MAX_CPU_PROXY {
        100
    } else {
        100 * memory_mb.max(MIN_CPU_PROXY) / MAX_CPU_PROXY
    }
}

/// Memory in decimal megabytes as Eirini (`resource.NewScaledQuantity(MB, Mega)`); no CPU
/// limit.
fn resources(spec: &AppSpec) -> ResourceRequirements {
    let memory = Quantity(format!("{}M", spec.memory_mb));
    let quantities = |pairs: [(&str, Quantity); 2]| {
        Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    };
    ResourceRequirements {
        limits: quantities([
            ("memory", memory.clone()),
            ("ephemeral-storage", Quantity(format!("{}M", spec.disk_mb))),
        ]),
        requests: quantities([
            ("memory", memory),
            ("cpu", Quantity(format!("{}m", cpu_millis(spec.memory_mb)))),
        ]),
        claims: None,
    }
}

/// (liveness, readiness, startup). Eirini's liveness probe waited `health_check_timeout`
/// seconds (initialDelaySeconds) before its first check; a startup probe with the same check
/// instead allows up to `startup_timeout_s` (default [`STARTUP_TIMEOUT_S`]) for the app to
/// come up and lets a fast one become ready at once, while a slow one is not killed. Process
/// types other than `web` have CF's default for them, `process`: no probes.
fn probes(spec: &AppSpec, id: &Identity) -> (Option<Probe>, Option<Probe>, Option<Probe>) {
    let port = IntOrString::Int(i32::from(spec.port));
    let check = spec.check_of(&id.process_type);
    let timeout_seconds = (spec.overrides.get(&id.process_type))
        .and_then(|o| o.invocation_timeout_s)
        .map(|t| i32::try_from(t).unwrap_or(i32::MAX));
    let handler = match check {
        HealthCheck::Process => return (None, None, None),
        HealthCheck::Port => Probe {
            tcp_socket: Some(TCPSocketAction { port, host: None }),
            ..Probe::default()
        },
        HealthCheck::Http { endpoint } => Probe {
            http_get: Some(HTTPGetAction {
                path: Some(endpoint),
                port,
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        },
    };
    let with = |failure_threshold: i32, period_seconds: Option<i32>| Probe {
        failure_threshold: Some(failure_threshold),
        period_seconds,
        timeout_seconds,
        ..handler.clone()
    };
    (
        Some(with(LIVENESS_FAILURE_THRESHOLD, None)),
        Some(with(READINESS_FAILURE_THRESHOLD, None)),
        Some(with(
            startup_failures(spec.startup_timeout_s),
            Some(STARTUP_PERIOD_S),
        )),
    )
}

/// Checks every [`STARTUP_PERIOD_S`] for `timeout_s` seconds (rounded up).
fn startup_failures(timeout_s: u32) -> i32 {
    let period = STARTUP_PERIOD_S as u32;
    i32::try_from(timeout_s.div_ceil(period).max(1)).unwrap_or(i32::MAX)
}

#[cfg(test)]
#[path = "statefulset_tests.rs"]
mod process_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::tests::spec;
    use crate::k8s::{manifests, LABEL_GUID, LABEL_SOURCE_TYPE, LABEL_VERSION};

    fn pod(spec: &AppSpec) -> PodSpec {
        let sts = manifests(spec).unwrap().stateful_set;
        sts.spec.unwrap().template.spec.unwrap()
    }

    fn value<'a>(env: &'a [EnvVar], name: &str) -> Option<&'a str> {
        env.iter()
            .find(|v| v.name == name)
            .and_then(|v| v.value.as_deref())
    }

    fn field_path<'a>(env: &'a [EnvVar], name: &str) -> &'a str {
        let var = env.iter().find(|v| v.name == name).unwrap();
        &var.value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path
    }

    #[test]
    fn stateful_set_shape() {
        let mut s = spec();
        s.instances = 3;
        let id = Identity::new(&s);
        let sts = manifests(&s).unwrap().stateful_set;
        assert_eq!(sts.metadata.name.as_deref(), Some(id.name.as_str()));
        assert!(id.name.starts_with("my-app-dropship-"), "{}", id.name);
        assert_eq!(sts.metadata.namespace.as_deref(), Some("apps"));
        let labels = sts.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["cloudfoundry.org/guid"], id.app_guid);
        assert_eq!(labels["cloudfoundry.org/source_type"], "APP");
        assert_eq!(labels["cloudfoundry.org/process_type"], "web");
        assert_eq!(labels["app.kubernetes.io/name"], "my-app");
        let annotations = sts.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations["cloudfoundry.org/application_name"], "My_App!!");
        assert_eq!(
            annotations["cloudfoundry.org/process_guid"],
            id.process_guid
        );
        let st = sts.spec.unwrap();
        assert_eq!(st.replicas, Some(3));
        assert_eq!(st.pod_management_policy.as_deref(), Some("Parallel"));
        assert_eq!(st.service_name.as_deref(), Some("my-app"));
        let keys: Vec<_> = st.selector.match_labels.as_ref().unwrap().keys().collect();
        assert_eq!(keys, [LABEL_GUID, LABEL_SOURCE_TYPE, LABEL_VERSION]);
        let template = st.template.metadata.unwrap();
        assert_eq!(template.labels.as_ref(), Some(labels));
        assert_eq!(template.annotations.as_ref(), Some(annotations));
    }

    #[test]
    fn pod_security_and_affinity() {
        let p = pod(&spec());
        assert_eq!(p.automount_service_account_token, Some(false));
        let sc = p.security_context.unwrap();
        assert_eq!(
            (sc.run_as_non_root, sc.run_as_user),
            (Some(true), Some(2000))
        );
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let c = &p.containers[0];
        assert_eq!(c.name, "opi");
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert!(c.command.is_none() && c.args.is_none());
        let csc = c.security_context.as_ref().unwrap();
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        assert_eq!(
            csc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        let anti = p.affinity.unwrap().pod_anti_affinity.unwrap();
        let term = &anti
            .preferred_during_scheduling_ignored_during_execution
            .unwrap()[0];
        assert_eq!(term.weight, 100);
        assert_eq!(
            term.pod_affinity_term.topology_key,
            "kubernetes.io/hostname"
        );
        let exprs = term.pod_affinity_term.label_selector.as_ref().unwrap();
        let exprs = exprs.match_expressions.as_ref().unwrap();
        assert_eq!(exprs.len(), 3);
        assert!(exprs.iter().all(|e| e.operator == "In"));
        assert_eq!(exprs[1].key, LABEL_SOURCE_TYPE);
        assert_eq!(exprs[1].values.as_deref(), Some(&["APP".to_string()][..]));
    }

    #[test]
    fn env_defaults_user_and_downward_api() {
        let mut s = spec();
        s.env.insert("PORT".into(), "9999".into());
        s.env.insert("VCAP_SERVICES".into(), r#"{"db":[]}"#.into());
        s.env.insert("LANG".into(), "C.UTF-8".into());
        s.env.insert("POD_NAME".into(), "mine".into());
        let env = pod(&s).containers.remove(0).env.unwrap();
        assert_eq!(value(&env, "PORT"), Some("8080"));
        assert_eq!(value(&env, "VCAP_APP_PORT"), Some("8080"));
        assert_eq!(value(&env, "VCAP_SERVICES"), Some(r#"{"db":[]}"#));
        assert_eq!(value(&env, "LANG"), Some("C.UTF-8"));
        assert_eq!(value(&env, "MEMORY_LIMIT"), Some("1024m"));
        assert_eq!(value(&env, "CF_INSTANCE_ADDR"), Some("0.0.0.0:8080"));
        assert_eq!(
            value(&env, "CF_INSTANCE_PORTS"),
            Some(r#"[{"external":8080,"internal":8080}]"#)
        );
        assert_eq!(field_path(&env, "POD_NAME"), "metadata.name");
        assert_eq!(env.iter().filter(|v| v.name == "POD_NAME").count(), 1);
        assert_eq!(field_path(&env, "CF_INSTANCE_INTERNAL_IP"), "status.podIP");
        assert_eq!(
            field_path(&env, "CF_INSTANCE_INDEX"),
            "metadata.labels['apps.kubernetes.io/pod-index']"
        );
        // Plain values first, sorted; downward API last.
        let plain: Vec<_> = env.iter().take_while(|v| v.value.is_some()).collect();
        assert!(plain.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(plain.len() + 5, env.len());
    }

    #[test]
    fn vcap_application_json() {
        let s = spec();
        let id = Identity::new(&s);
        let v: serde_json::Value = serde_json::from_str(&vcap_application(&s, &id)).unwrap();
        assert_eq!(v["application_name"], "My_App!!");
        assert_eq!(v["application_id"], id.app_guid.as_str());
        assert_eq!(v["process_id"], id.process_guid.as_str());
        assert_eq!(v["version"], id.version.as_str());
        assert_eq!(v["space_name"], "dropship");
        assert_eq!(
            v["limits"],
            serde_json::json!({"disk": 1024, "fds": 16384, "mem": 1024})
        );
        assert_eq!(v["uris"], serde_json::json!([]));
        assert!(vcap_application(&s, &id).starts_with(r#"{"application_id":""#));
    }

    #[test]
    fn cpu_request_from_memory() {
        assert_eq!(cpu_millis(64), 1);
        assert_eq!(cpu_millis(128), 1);
        assert_eq!(cpu_millis(1024), 12);
        assert_eq!(cpu_millis(8192), 100);
        assert_eq!(cpu_millis(16384), 100);
        let mut s = spec();
        s.memory_mb = 16384;
        s.disk_mb = 2048;
        let r = pod(&s).containers.remove(0).resources.unwrap();
        let (limits, requests) = (r.limits.unwrap(), r.requests.unwrap());
        assert_eq!(requests["cpu"].0, "100m");
        assert_eq!(requests["memory"].0, "16384M");
        assert_eq!(limits["memory"].0, "16384M");
        assert_eq!(limits["ephemeral-storage"].0, "2048M");
        assert!(!limits.contains_key("cpu"));
    }

    #[test]
    fn probes_per_health_check() {
        let mut s = spec();
        let c = pod(&s).containers.remove(0);
        let live = c.liveness_probe.unwrap();
        assert_eq!(live.tcp_socket.unwrap().port, IntOrString::Int(8080));
        assert_eq!(live.failure_threshold, Some(4));
        assert_eq!(c.readiness_probe.unwrap().failure_threshold, Some(1));
        let start = c.startup_probe.unwrap();
        assert_eq!(
            (start.period_seconds, start.failure_threshold),
            (Some(2), Some(30))
        );
        assert!(start.tcp_socket.is_some());

        s.health_check = "http:/health".parse().unwrap();
        let c = pod(&s).containers.remove(0);
        let get = c.readiness_probe.unwrap().http_get.unwrap();
        assert_eq!(
            (get.path.as_deref(), get.port),
            (Some("/health"), IntOrString::Int(8080))
        );
        assert!(c.liveness_probe.unwrap().tcp_socket.is_none());
        assert!(c.startup_probe.unwrap().http_get.is_some());

        s.health_check = HealthCheck::Process;
        let c = pod(&s).containers.remove(0);
        assert!(c.liveness_probe.is_none() && c.readiness_probe.is_none());
        assert!(c.startup_probe.is_none());
    }
}
