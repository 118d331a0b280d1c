//! Stacks (`/v3/stacks`) and admin buildpacks (`/v3/buildpacks`).

use super::common::{Link, Metadata};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    pub guid: String,
    pub name: String,
    pub description: Option<String>,
    /// The image staging runs on (dropship: the stack's image).
    #[serde(default)]
    pub build_rootfs_image: Option<String>,
    /// The image apps run on (dropship: the same).
    #[serde(default)]
    pub run_rootfs_image: Option<String>,
    #[serde(default)]
    pub default: bool,
    pub created_at: String,
    pub updated_at: String,
    pub metadata: Metadata,
    pub links: SelfLink,
}

/// `{"self": {"href": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfLink {
    #[serde(rename = "self")]
    pub this: Link,
}

/// An admin buildpack, in detection order (`position` from 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buildpack {
    pub guid: String,
    pub name: String,
    /// `READY` (dropship's are directories the operator installs).
    pub state: String,
    pub filename: Option<String>,
    pub stack: Option<String>,
    pub position: usize,
    #[serde(default)]
    pub lifecycle: Option<String>,
    pub enabled: bool,
    pub locked: bool,
    #[serde(default)]
    pub version: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub metadata: Metadata,
    pub links: SelfLink,
}
