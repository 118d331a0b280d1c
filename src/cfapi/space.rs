//! Organizations and spaces (`/v3/organizations`, `/v3/spaces`), and what a list of apps
//! includes of them (`include=space,space.organization`).

use super::common::{Link, Metadata, OptionalRelationship, Relationship};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub guid: String,
    pub name: String,
    pub suspended: bool,
    pub created_at: String,
    pub updated_at: String,
    pub relationships: QuotaRelationships,
    pub metadata: Metadata,
    pub links: OrganizationLinks,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRelationships {
    pub quota: OptionalRelationship,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationLinks {
    #[serde(rename = "self")]
    pub this: Link,
    /// A dropship extension: the org's spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spaces: Option<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Space {
    pub guid: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    pub relationships: SpaceRelationships,
    pub metadata: Metadata,
    pub links: SpaceLinks,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRelationships {
    pub organization: Relationship,
    pub quota: OptionalRelationship,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceLinks {
    #[serde(rename = "self")]
    pub this: Link,
    pub organization: Link,
    /// A dropship extension: the space's apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<Link>,
    /// POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_manifest: Option<Link>,
}

/// A list's `included`: the spaces (and organizations) of its resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Included {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizations: Option<Vec<Organization>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spaces: Option<Vec<Space>>,
}
