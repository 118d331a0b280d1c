//! Apps (`/v3/apps`), their environment variables and their current droplet, with the
//! requests that create and change them.

use super::common::{GuidRef, Lifecycle, Link, Metadata, OptionalRelationship, Relationship};
use super::AppState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub guid: String,
    pub name: String,
    pub state: AppState,
    pub created_at: String,
    pub updated_at: String,
    pub lifecycle: Lifecycle,
    pub relationships: SpaceRelationships,
    pub metadata: Metadata,
    pub links: AppLinks,
}

/// `{"space": {"data": {"guid": ...}}}`: an app's space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRelationships {
    pub space: Relationship,
}

/// `{"app": {"data": {"guid": ...}}}`: the app a package, build, droplet or process is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRelationships {
    pub app: Relationship,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLinks {
    #[serde(rename = "self")]
    pub this: Link,
    pub space: Link,
    pub processes: Link,
    pub packages: Link,
    pub droplets: Link,
    /// A dropship extension (CF lists an app's builds at the same path but links none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builds: Option<Link>,
    pub environment_variables: Link,
    /// CF's; dropship's apps link none of these yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_droplet: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Link>,
}

/// `POST /v3/apps`. Variables are JSON values: the server refuses those that are not strings
/// (or numbers and booleans, as CF) with its own words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateApp {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, Value>,
    /// The space (the cf CLI sends it; dropship has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationships: Option<SpaceRelationships>,
}

/// `PATCH /v3/apps/:guid`: only what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Accepted as the cf CLI sends it; dropship stores no labels or annotations yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Accepted when it says what the app has (buildpack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Value>,
}

/// `GET|PATCH /v3/apps/:guid/environment_variables`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVars {
    pub var: BTreeMap<String, String>,
    pub links: EnvLinks,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvLinks {
    #[serde(rename = "self")]
    pub this: Link,
    pub app: Link,
}

/// `PATCH /v3/apps/:guid/environment_variables`: a value sets, `null` removes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetEnv {
    pub var: BTreeMap<String, Value>,
}

/// `PATCH /v3/apps/:guid/relationships/current_droplet`: `{"data": {"guid": ...}}`.
pub type SetCurrentDroplet = OptionalRelationship;

/// `GET|PATCH /v3/apps/:guid/relationships/current_droplet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentDroplet {
    pub data: Option<GuidRef>,
    pub links: CurrentDropletLinks,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentDropletLinks {
    #[serde(rename = "self")]
    pub this: Link,
    /// The droplet itself, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<Link>,
}

/// `GET /v3/apps/:guid/env`: the app's variables and what the platform adds to them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppEnv {
    #[serde(default)]
    pub staging_env_json: BTreeMap<String, Value>,
    #[serde(default)]
    pub running_env_json: BTreeMap<String, Value>,
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
    /// `VCAP_SERVICES`.
    #[serde(default)]
    pub system_env_json: BTreeMap<String, Value>,
    /// `VCAP_APPLICATION` (free-form: the platform's names, limits and URIs for the app).
    #[serde(default)]
    pub application_env_json: BTreeMap<String, Value>,
}
