//! The PodDisruptionBudget, after Eirini's k8s/pdb/update.go (policy/v1 instead of v1beta1):
//! keep at least half the instances up during voluntary disruptions such as node drains.

use super::{AppSpec, Identity, LABEL_GUID, LABEL_VERSION};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const MIN_AVAILABLE: &str = "50%";

/// Only for more than one instance, as in Eirini: a budget over a single pod would block
/// node drains.
pub fn pod_disruption_budget(spec: &AppSpec, id: &Identity) -> Option<PodDisruptionBudget> {
    if spec.instances <= 1 {
        return None;
    }
    let mut labels = id.selector_labels();
    labels.retain(|k, _| k == LABEL_GUID || k == LABEL_VERSION);
    Some(PodDisruptionBudget {
        metadata: id.metadata(&id.name, labels, None),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::String(MIN_AVAILABLE.to_string())),
            selector: Some(id.selector()),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::k8s::tests::spec;
    use crate::k8s::{manifests, Identity};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn only_with_more_than_one_instance() {
        let mut s = spec();
        for n in [0, 1] {
            s.instances = n;
            assert!(manifests(&s).unwrap().pdb.is_none(), "{n} instances");
        }
        s.instances = 2;
        let m = manifests(&s).unwrap();
        let pdb = m.pdb.unwrap();
        let id = Identity::new(&s);
        assert_eq!(pdb.metadata.name.as_deref(), Some(id.name.as_str()));
        assert_eq!(pdb.metadata.name, m.stateful_set.metadata.name);
        assert_eq!(pdb.metadata.namespace.as_deref(), Some("apps"));
        let labels = pdb.metadata.labels.unwrap();
        let keys: Vec<_> = labels.keys().map(String::as_str).collect();
        assert_eq!(keys, ["cloudfoundry.org/guid", "cloudfoundry.org/version"]);
        assert_eq!(labels["cloudfoundry.org/version"], id.version);
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.min_available, Some(IntOrString::String("50%".into())));
        assert_eq!(spec.selector, Some(m.stateful_set.spec.unwrap().selector));
    }
}
