//! Builds (`/v3/builds`): a package staged into a droplet, or a failure with a typed kind.

use super::app::AppRelationships;
use super::common::{GuidRef, Lifecycle, Link, Metadata};
use super::BuildState;
use crate::failure::FailureKind;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    pub guid: String,
    pub created_at: String,
    pub updated_at: String,
    pub state: BuildState,
    /// CF's error text (`"BuildpackCompileFailed - ..."`): for people, never compared.
    pub error: Option<String>,
    /// Why a FAILED build failed, as a type (a dropship extension; null otherwise).
    #[serde(default)]
    pub failure: Option<Failure>,
    pub lifecycle: Lifecycle,
    pub package: GuidRef,
    pub droplet: Option<GuidRef>,
    pub relationships: AppRelationships,
    pub metadata: Metadata,
    pub links: BuildLinks,
}

/// A failed build's reason: its kind (`compile_failed`, `limit_exceeded:supply`, ...), Cloud
/// Controller's error name for it and the exit code of CF's builder. Clients decide on the
/// kind; a kind this build of dropship does not know (a newer server's) reads as `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(deserialize_with = "known_kind")]
    pub kind: Option<FailureKind>,
    /// `NoAppDetectedError`, `BuildpackCompileFailed`, ... (`StagingError` for the rest).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
}

impl Failure {
    pub fn of(kind: FailureKind) -> Failure {
        Failure {
            kind: Some(kind),
            name: Some(kind.cf_name().to_string()),
            exit_code: Some(kind.exit_code()),
        }
    }
}

/// A kind's string, `None` when it names no kind known here (or is null).
fn known_kind<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FailureKind>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.and_then(|s| s.parse().ok()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildLinks {
    #[serde(rename = "self")]
    pub this: Link,
    pub app: Link,
    /// The staging log (a dropship extension; `?follow=true` streams it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Link>,
    /// Once STAGED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub droplet: Option<Link>,
}

/// `POST /v3/builds`: the package, and optionally the lifecycle (buildpacks, stack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBuild {
    pub package: GuidRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}
