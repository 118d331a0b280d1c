//! The Service: a stable ClusterIP in front of the app's instances, named after the app
//! (DNS-1035, see [`super::service_name`]) so it can be found as `<app>.<namespace>`.

use super::{AppSpec, Identity};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub fn service(spec: &AppSpec, id: &Identity) -> Service {
    let port = i32::from(spec.port);
    Service {
        metadata: id.metadata(&id.service_name, id.labels(), None),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(id.selector_labels()),
            ports: Some(vec![ServicePort {
                name: Some("http".to_string()),
                port,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use crate::k8s::manifests;
    use crate::k8s::tests::spec;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn service_shape() {
        let mut s = spec();
        s.name = "2048 Game".into();
        let m = manifests(&s).unwrap();
        let svc = m.service;
        assert_eq!(svc.metadata.name.as_deref(), Some("app-2048-game"));
        assert_eq!(svc.metadata.namespace.as_deref(), Some("apps"));
        assert_eq!(svc.metadata.labels, m.stateful_set.metadata.labels);
        let sts = m.stateful_set.spec.unwrap();
        assert_eq!(sts.service_name.as_deref(), Some("app-2048-game"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.selector, sts.selector.match_labels);
        let port = &spec.ports.unwrap()[0];
        assert_eq!(port.name.as_deref(), Some("http"));
        assert_eq!((port.port, port.protocol.as_deref()), (8080, Some("TCP")));
        assert_eq!(port.target_port, Some(IntOrString::Int(8080)));
    }

    #[test]
    fn no_namespace_when_none_given() {
        let mut s = spec();
        s.namespace = None;
        let m = manifests(&s).unwrap();
        assert!(m.service.metadata.namespace.is_none());
        assert!(m.stateful_set.metadata.namespace.is_none());
        assert!(!m.to_yaml().unwrap().contains("namespace:"));
    }
}
