//! What every CF v3 resource shares: links, metadata, relationships, timestamps' lifecycle,
//! the paginated list and the error body.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `{"href": ...}`, with `method` when the link is not a GET (`upload`: POST) and `meta` on
/// the root's `cloud_controller_v3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<LinkMeta>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkMeta {
    /// The API's version (`cloud_controller_v2`, `cloud_controller_v3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `app_ssh`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_client: Option<String>,
}

impl Link {
    /// A GET link to `base` + `path`.
    pub fn to(base: &str, path: &str) -> Link {
        Link {
            href: format!("{base}{path}"),
            method: None,
            meta: None,
        }
    }

    /// A link to `base` + `path` taken with `method` (`POST`, `PATCH`).
    pub fn with_method(base: &str, path: &str, method: &str) -> Link {
        Link {
            method: Some(method.to_string()),
            ..Link::to(base, path)
        }
    }
}

/// Labels and annotations (dropship keeps none yet: both empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `{"guid": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuidRef {
    pub guid: String,
}

impl GuidRef {
    pub fn new(guid: impl Into<String>) -> GuidRef {
        GuidRef { guid: guid.into() }
    }
}

/// A to-one relationship that is always set: `{"data": {"guid": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    pub data: GuidRef,
}

impl Relationship {
    pub fn to(guid: impl Into<String>) -> Relationship {
        Relationship {
            data: GuidRef::new(guid),
        }
    }
}

/// A to-one relationship that may be unset: `{"data": null}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionalRelationship {
    pub data: Option<GuidRef>,
}

/// `{"type": "buildpack", "data": {...}}` of apps, builds and droplets (and of a build's
/// request). `type` stays a string: a request naming another lifecycle gets CF's 422 from the
/// server, not a parse error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: LifecycleData,
}

impl Lifecycle {
    pub fn buildpack(data: LifecycleData) -> Lifecycle {
        Lifecycle {
            kind: "buildpack".into(),
            data,
        }
    }
}

/// A buildpack lifecycle's data; a droplet's is empty (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpacks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

/// A list's `pagination`: totals, and links to the first, last, next and previous pages
/// (null at the ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    pub total_results: usize,
    pub total_pages: usize,
    pub first: Link,
    pub last: Link,
    pub next: Option<Link>,
    pub previous: Option<Link>,
}

/// A page of a list: `pagination`, `resources`, and `included` when the request asked
/// (`include=space`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paginated<T> {
    pub pagination: Pagination,
    pub resources: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included: Option<super::space::Included>,
}

/// CF's error body: `{"errors": [{"code": 10010, "title": "CF-ResourceNotFound", ...}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub errors: Vec<CfError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CfError {
    pub code: u32,
    pub title: String,
    pub detail: String,
}
