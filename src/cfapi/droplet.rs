//! Droplets (`/v3/droplets`): what a build made, with its image by digest.

use super::app::AppRelationships;
use super::common::{Lifecycle, Link, Metadata};
use super::package::Checksum;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// CF's droplet states; dropship records a droplet only once STAGED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DropletState {
    AwaitingUpload,
    ProcessingUpload,
    Staged,
    Copying,
    Failed,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Droplet {
    pub guid: String,
    pub state: DropletState,
    pub error: Option<String>,
    pub lifecycle: Lifecycle,
    pub execution_metadata: String,
    /// Process type to its start command.
    pub process_types: BTreeMap<String, String>,
    pub checksum: Checksum,
    pub buildpacks: Vec<DropletBuildpack>,
    pub stack: Option<String>,
    /// The image, by digest.
    pub image: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub relationships: AppRelationships,
    pub metadata: Metadata,
    pub links: DropletLinks,
}

/// A buildpack that staged the droplet: its key (`name`), its own name, its version, and what
/// it said when it detected the app (the detecting one only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletBuildpack {
    pub name: String,
    pub buildpack_name: Option<String>,
    pub detect_output: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletLinks {
    #[serde(rename = "self")]
    pub this: Link,
    pub package: Link,
    pub app: Link,
    /// PATCH.
    pub assign_current_droplet: Link,
    /// The tgz (a dropship extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<Link>,
    /// The Kubernetes objects that run it (a dropship extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Link>,
}
