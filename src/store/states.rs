//! The states a package and a build go through, and their columns: each type is stored as its
//! one string form (`ToSql`/`FromSql`), so no state is compared as a string outside the
//! store. A string in the database that names no state is an error that names it, not a panic.

use super::sql::{text_value, FromSql, ToSql, Value};
use crate::failure::FailureKind;
use crate::k8s::HealthCheck;

/// A build: STAGING until it ends STAGED (with a droplet) or FAILED (with a failure).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildState {
    Staging,
    Staged,
    Failed,
}

impl BuildState {
    pub const ALL: [BuildState; 3] = [BuildState::Staging, BuildState::Staged, BuildState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::Staging => "STAGING",
            BuildState::Staged => "STAGED",
            BuildState::Failed => "FAILED",
        }
    }

    /// STAGED or FAILED: nothing about the build changes any more.
    pub fn is_final(self) -> bool {
        self != BuildState::Staging
    }

    /// Only a staging build can end.
    pub fn can_finish(self) -> bool {
        self == BuildState::Staging
    }
}

/// A package: AWAITING_UPLOAD, PROCESSING_UPLOAD while its bits are assembled, then READY or
/// FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PackageState {
    AwaitingUpload,
    ProcessingUpload,
    Ready,
    Failed,
}

impl PackageState {
    pub const ALL: [PackageState; 4] = [
        PackageState::AwaitingUpload,
        PackageState::ProcessingUpload,
        PackageState::Ready,
        PackageState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PackageState::AwaitingUpload => "AWAITING_UPLOAD",
            PackageState::ProcessingUpload => "PROCESSING_UPLOAD",
            PackageState::Ready => "READY",
            PackageState::Failed => "FAILED",
        }
    }

    /// Bits can be uploaded only once, to a package that waits for them.
    pub fn can_upload(self) -> bool {
        self == PackageState::AwaitingUpload
    }

    /// Only a package whose bits are assembled can be staged.
    pub fn can_stage(self) -> bool {
        self == PackageState::Ready
    }
}

/// An app's desired state: STARTED runs its current droplet (the Kubernetes objects served for
/// the app have its instances), STOPPED does not (their replicas are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppState {
    Started,
    Stopped,
}

impl AppState {
    pub const ALL: [AppState; 2] = [AppState::Started, AppState::Stopped];

    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Started => "STARTED",
            AppState::Stopped => "STOPPED",
        }
    }
}

impl std::fmt::Display for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job's state (CF's `/v3/jobs`): the work of an asynchronous request such as an app's
/// deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Processing,
    Complete,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 3] = [JobState::Processing, JobState::Complete, JobState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Processing => "PROCESSING",
            JobState::Complete => "COMPLETE",
            JobState::Failed => "FAILED",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for BuildState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for PackageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A column of `$t`: written as its `Display` form, read back through `$from` (`&str` to
/// `Option<$t>`).
macro_rules! text_column {
    ($t:ty, $what:literal, $from:expr) => {
        impl ToSql for $t {
            fn to_value(&self) -> Value {
                Value::Text(self.to_string())
            }
        }

        impl FromSql for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                text_value(v, $what, $from)
            }
        }
    };
}

text_column!(BuildState, "build state", |s| {
    BuildState::ALL.into_iter().find(|b| b.as_str() == s)
});
text_column!(PackageState, "package state", |s| {
    PackageState::ALL.into_iter().find(|p| p.as_str() == s)
});
text_column!(AppState, "app state", |s| {
    AppState::ALL.into_iter().find(|a| a.as_str() == s)
});
text_column!(JobState, "job state", |s| {
    JobState::ALL.into_iter().find(|j| j.as_str() == s)
});
text_column!(FailureKind, "failure kind", |s| s.parse().ok());
text_column!(HealthCheck, "health check type", |s| s.parse().ok());

#[cfg(test)]
#[path = "states_tests.rs"]
mod tests;
