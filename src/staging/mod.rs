//! Staging: an app directory goes through buildpacks, in a sandbox built from the stack's root
//! filesystem, and comes out as the contents of a droplet.

pub(crate) mod buildpacks;
pub(crate) mod cache;
pub(crate) mod cgroup;
pub mod env;
pub(crate) mod lifecycle;
pub mod limits;
pub mod release;
pub mod run;
pub mod sandbox;
pub(crate) mod workspace;

use crate::failure::FailureKind;
use std::collections::BTreeMap;
use std::time::Duration;

/// A buildpack as the droplet's metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildpackMeta {
    /// The buildpack as named to dropship (directory name).
    pub key: String,
    /// Its own name (`deps/<idx>/config.yml`), else the key.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What staging produced besides the files.
#[derive(Debug, Clone)]
pub struct StagingResult {
    pub detected_buildpack: String,
    pub start_command: String,
    pub process_types: BTreeMap<String, String>,
    pub buildpacks: Vec<BuildpackMeta>,
}

/// Why staging failed; exit codes and error names are Cloud Foundry's.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("None of the buildpacks detected a compatible application (tried: {})", tried.join(", "))]
    NoAppDetected { tried: Vec<String> },
    #[error("Failed to compile droplet: buildpack {buildpack}: {reason}")]
    CompileFailed { buildpack: String, reason: String },
    #[error("Failed to build droplet release: buildpack {buildpack}: {reason}")]
    ReleaseFailed { buildpack: String, reason: String },
    #[error("Failed to run all supply scripts: buildpack {buildpack}: {reason}")]
    SupplyFailed { buildpack: String, reason: String },
    #[error("Failed to run finalize script: buildpack {buildpack}: {reason}")]
    FinalizeFailed { buildpack: String, reason: String },
    #[error("Staging time expired: bin/{phase} of buildpack {buildpack} was still running after {}; it was killed (raise --staging-timeout)", humantime::format_duration(*timeout))]
    TimedOut {
        phase: String,
        buildpack: String,
        timeout: Duration,
    },
    #[error("{limit}: bin/{phase} of buildpack {buildpack} was stopped")]
    LimitExceeded {
        limit: limits::Breach,
        phase: String,
        buildpack: String,
    },
    #[error("buildpack output refused: {0}")]
    Unsafe(String),
    #[error("interrupted: the staging processes were stopped")]
    Interrupted,
    #[error("Failed to read command from Procfile: {0}")]
    Procfile(String),
    #[error("{0}")]
    Sandbox(String),
    #[error("staging: {0}")]
    Io(String),
}

impl StagingError {
    /// What failed, as a type: it carries CF's error name and the builder's exit code.
    pub fn kind(&self) -> FailureKind {
        match self {
            StagingError::NoAppDetected { .. } => FailureKind::NoAppDetected,
            StagingError::CompileFailed { .. } => FailureKind::CompileFailed,
            StagingError::ReleaseFailed { .. } => FailureKind::ReleaseFailed,
            StagingError::SupplyFailed { .. } => FailureKind::SupplyFailed,
            StagingError::FinalizeFailed { .. } => FailureKind::FinalizeFailed,
            StagingError::TimedOut { .. } => FailureKind::TimeExpired,
            StagingError::Interrupted => FailureKind::Interrupted,
            StagingError::LimitExceeded { phase, .. } => match phase.parse() {
                Ok(p) => FailureKind::LimitExceeded(p),
                Err(_) => FailureKind::Staging,
            },
            _ => FailureKind::Staging,
        }
    }

    /// The exit code of Cloud Foundry's builder for this failure.
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }

    /// Cloud Controller's name for this failure (`NoAppDetectedError`, ...).
    pub fn cf_name(&self) -> &'static str {
        self.kind().cf_name()
    }
}
