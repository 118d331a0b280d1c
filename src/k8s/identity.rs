//! The identity of one process's objects: GUIDs, names, labels, selector and annotations,
//! derived from an [`AppSpec`] and the process type. Pure.

use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

/// Names and GUIDs derived from an [`AppSpec`], shared by the three objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub app_guid: String,
    /// The process's GUID, Eirini's LRP GUID (`cloudfoundry.org/guid`): the app GUID for
    /// `web` (as Cloud Controller's web process), derived from it and the type for others.
    pub guid: String,
    pub process_type: String,
    /// Stable across rebuilds of the same app ON PURPOSE: the StatefulSet selector includes
    /// the version and selectors are immutable, so a rebuilt app must keep its version for
    /// `kubectl apply` to update the same StatefulSet in place; the new image digest in the
    /// pod template is what rolls the pods. (In CF a new version means a new LRP; here it
    /// would mean a second StatefulSet next to the old one.)
    pub version: String,
    /// `<guid>-<version>`, Eirini's `cloudfoundry.org/process_guid` annotation.
    pub process_guid: String,
    /// StatefulSet and PDB name: Eirini's `<app>-<space>-<hash>` for `web` (unchanged, so
    /// existing StatefulSets keep their names), `<app>-<type>-<space>-<hash>` for others.
    pub name: String,
    /// Service name, also the `app.kubernetes.io/name` label.
    pub service_name: String,
    pub namespace: Option<String>,
    pub app_name: String,
    pub space_name: String,
    pub org_name: String,
}

impl Identity {
    pub fn new(spec: &AppSpec) -> Identity {
        let app_guid = app_guid(spec.namespace().unwrap_or(""), &spec.name);
        let version = version(&app_guid);
        Identity {
            guid: app_guid.clone(),
            process_type: PROCESS_TYPE_WEB.to_string(),
            process_guid: format!("{app_guid}-{version}"),
            name: stateful_set_name(&spec.name, spec.space_name(), &app_guid, &version),
            service_name: service_name(&spec.name, &app_guid),
            namespace: spec.namespace().map(str::to_string),
            app_name: spec.name.clone(),
            space_name: spec.space_name().to_string(),
            org_name: spec.org_name().to_string(),
            app_guid,
            version,
        }
    }

    /// The identity of the process type `kind`'s StatefulSet ([`Identity::new`] for `web`).
    pub fn for_process(spec: &AppSpec, kind: &str) -> Identity {
        let mut id = Identity::new(spec);
        if kind == PROCESS_TYPE_WEB {
            return id;
        }
        let guid = process_guid(&id.app_guid, kind);
        id.name = stateful_set_name(
            &format!("{}-{kind}", spec.name),
            spec.space_name(),
            &guid,
            &id.version,
        );
        id.process_guid = format!("{guid}-{}", id.version);
        id.guid = guid;
        id.process_type = kind.to_string();
        id
    }

    pub fn is_web(&self) -> bool {
        self.process_type == PROCESS_TYPE_WEB
    }

    /// The StatefulSet selector: Eirini's guid, version and source type.
    ///
    /// `cloudfoundry.org/guid` holds the app GUID, not the process GUID: in Eirini it is the
    /// LRP's GUID, i.e. Cloud Controller's process GUID, which for the web process is the app
    /// GUID; `<guid>-<version>` (73 characters) would not fit a label value anyway.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        string_map([
            (LABEL_GUID, self.guid.as_str()),
            (LABEL_VERSION, &self.version),
            (LABEL_SOURCE_TYPE, SOURCE_TYPE_APP),
        ])
    }

    pub fn selector(&self) -> LabelSelector {
        LabelSelector {
            match_labels: Some(self.selector_labels()),
            ..LabelSelector::default()
        }
    }

    /// Labels of the StatefulSet, its pod template and the Service.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.extend(string_map([
            (LABEL_APP_GUID, self.app_guid.as_str()),
            (LABEL_PROCESS_TYPE, &self.process_type),
            (LABEL_ORG_NAME, &label_value(&self.org_name)),
            (LABEL_SPACE_NAME, &label_value(&self.space_name)),
            (LABEL_K8S_NAME, &self.service_name),
            (LABEL_K8S_MANAGED_BY, "dropship"),
        ]));
        labels
    }

    /// Annotations of the StatefulSet and its pod template (raw, unsanitized names). No
    /// `last_updated` timestamp, unlike Eirini: the output must be deterministic.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        string_map([
            (ANNOTATION_APP_NAME, self.app_name.as_str()),
            (ANNOTATION_APP_ID, &self.app_guid),
            (ANNOTATION_PROCESS_GUID, &self.process_guid),
            (ANNOTATION_VERSION, &self.version),
            (ANNOTATION_SPACE_NAME, &self.space_name),
            (ANNOTATION_ORG_NAME, &self.org_name),
        ])
    }

    /// Top-level metadata: `name`, the namespace if any, and the given labels.
    pub(crate) fn metadata(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        annotations: Option<BTreeMap<String, String>>,
    ) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: self.namespace.clone(),
            labels: Some(labels),
            annotations,
            ..ObjectMeta::default()
        }
    }
}

fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
