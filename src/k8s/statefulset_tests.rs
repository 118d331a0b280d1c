//! Process types other than `web`, and the startup timeout.

use crate::k8s::tests::spec;
use crate::k8s::{manifests, AppSpec, Identity, LABEL_GUID, LABEL_PROCESS_TYPE};

fn with_worker() -> AppSpec {
    let mut s = spec();
    s.processes.insert("web".into(), "./web".into());
    s.processes.insert("worker".into(), "./work --hard".into());
    s
}

#[test]
fn every_process_type_has_its_own_stateful_set() {
    let mut s = with_worker();
    s.instances = 2;
    let m = manifests(&s).unwrap();
    let web = Identity::new(&s);
    assert_eq!(
        m.stateful_set.metadata.name.as_deref(),
        Some(web.name.as_str())
    );
    assert_eq!(m.processes.len(), 1);
    let w = &m.processes[0];
    assert_eq!(w.process_type, "worker");
    let name = w.stateful_set.metadata.name.clone().unwrap();
    assert!(name.starts_with("my-app-worker-dropship-"), "{name}");
    assert_ne!(name, web.name);
    // Its own selector: the web Service does not select its pods.
    let sel = w.stateful_set.spec.as_ref().unwrap().selector.clone();
    let labels = sel.match_labels.unwrap();
    let svc_sel = m.service.spec.as_ref().unwrap().selector.clone().unwrap();
    assert_ne!(labels[LABEL_GUID], svc_sel[LABEL_GUID]);
    let spec = w.stateful_set.spec.as_ref().unwrap();
    assert_eq!(spec.service_name, None);
    assert_eq!(spec.replicas, Some(2));
    let template = spec.template.metadata.as_ref().unwrap();
    assert_eq!(
        template.labels.as_ref().unwrap()[LABEL_PROCESS_TYPE],
        "worker"
    );
    let c = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.args, Some(vec!["./work --hard".to_string()]));
    assert!(c.liveness_probe.is_none() && c.startup_probe.is_none());
    let vcap = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "VCAP_APPLICATION")
        .unwrap();
    assert!(vcap
        .value
        .as_ref()
        .unwrap()
        .contains(r#""process_type":"worker""#));
    // PDB as for web, with the worker's name and selector.
    let pdb = w.pdb.as_ref().unwrap();
    assert_eq!(pdb.metadata.name.as_deref(), Some(name.as_str()));
    // The web one is unchanged: no args, its probes, the Service.
    let web_c = &m
        .stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert!(web_c.args.is_none() && web_c.startup_probe.is_some());
    let yaml = m.to_yaml().unwrap();
    assert_eq!(yaml.matches("kind: StatefulSet").count(), 2, "{yaml}");
    assert_eq!(yaml.matches("kind: PodDisruptionBudget").count(), 2);
    assert_eq!(yaml.matches("kind: Service\n").count(), 1);
}

#[test]
fn web_identity_is_unchanged_by_other_processes() {
    let a = manifests(&spec()).unwrap();
    let b = manifests(&with_worker()).unwrap();
    assert_eq!(a.stateful_set, b.stateful_set);
    assert_eq!(a.service, b.service);
    assert!(a.processes.is_empty());
}

#[test]
fn odd_process_types_are_refused() {
    let mut s = spec();
    s.processes.insert("my worker".into(), "x".into());
    let e = manifests(&s).unwrap_err().to_string();
    assert!(e.contains("\"my worker\""), "{e}");
    let mut s = spec();
    s.processes.insert("worker".into(), " ".into());
    let e = manifests(&s).unwrap_err().to_string();
    assert!(e.contains("no command"), "{e}");
}

#[test]
fn startup_timeout_sets_the_startup_probe() {
    let mut s = spec();
    s.startup_timeout_s = 121;
    let m = manifests(&s).unwrap();
    let c = &m
        .stateful_set
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0];
    let p = c.startup_probe.as_ref().unwrap();
    assert_eq!((p.period_seconds, p.failure_threshold), (Some(2), Some(61)));
    s.startup_timeout_s = 0;
    assert!(manifests(&s).is_err());
}
