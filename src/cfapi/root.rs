//! Discovery: `GET /` (where the v3 API and login are), `GET /v3` and `GET /v3/info`.

use super::common::Link;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /`: every link CF's root has, null for what is not offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    pub links: RootLinks,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootLinks {
    #[serde(rename = "self")]
    pub this: Option<Link>,
    #[serde(default)]
    pub cloud_controller_v2: Option<Link>,
    /// With `meta.version`.
    #[serde(default)]
    pub cloud_controller_v3: Option<Link>,
    #[serde(default)]
    pub login: Option<Link>,
    #[serde(default)]
    pub uaa: Option<Link>,
    #[serde(default)]
    pub credhub: Option<Link>,
    #[serde(default)]
    pub routing: Option<Link>,
    #[serde(default)]
    pub logging: Option<Link>,
    #[serde(default)]
    pub log_cache: Option<Link>,
    #[serde(default)]
    pub log_stream: Option<Link>,
    #[serde(default)]
    pub app_ssh: Option<Link>,
    #[serde(default)]
    pub network_policy_v0: Option<Link>,
    #[serde(default)]
    pub network_policy_v1: Option<Link>,
    #[serde(default)]
    pub bits_service: Option<Link>,
}

/// `GET /v3`: the resources there, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V3Root {
    pub links: BTreeMap<String, Link>,
}

/// `GET /v3/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub build: String,
    pub cli_version: CliVersion,
    #[serde(default)]
    pub custom: BTreeMap<String, serde_json::Value>,
    pub description: String,
    pub name: String,
    pub version: i64,
    #[serde(default)]
    pub osbapi_version: String,
    pub links: InfoLinks,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CliVersion {
    pub minimum: Option<String>,
    pub recommended: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoLinks {
    #[serde(rename = "self")]
    pub this: Link,
    pub support: Option<Link>,
}
