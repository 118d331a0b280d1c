//! Packages (`/v3/packages`): an app's bits, uploaded then assembled.

use super::app::AppRelationships;
use super::common::{Link, Metadata, Relationship};
use super::PackageState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub guid: String,
    /// `bits` (dropship takes no `docker` packages).
    #[serde(rename = "type")]
    pub kind: String,
    pub data: PackageData,
    pub state: PackageState,
    pub created_at: String,
    pub updated_at: String,
    pub relationships: AppRelationships,
    pub metadata: Metadata,
    pub links: PackageLinks,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageData {
    pub checksum: Checksum,
    /// Why the package FAILED.
    pub error: Option<String>,
}

/// `{"type": "sha256", "value": ...}` (null until the bits are assembled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageLinks {
    #[serde(rename = "self")]
    pub this: Link,
    /// POST, multipart.
    pub upload: Link,
    pub app: Link,
}

/// `POST /v3/packages`: `{"type": "bits", "relationships": {"app": {"data": {"guid": ...}}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePackage {
    #[serde(rename = "type")]
    pub kind: String,
    pub relationships: AppRelationships,
}

impl CreatePackage {
    /// A bits package for `app`.
    pub fn bits(app: &str) -> CreatePackage {
        CreatePackage {
            kind: "bits".into(),
            relationships: AppRelationships {
                app: Relationship::to(app),
            },
        }
    }
}
