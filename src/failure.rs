//! Why a build failed, as a type: a [`FailureKind`] (Cloud Foundry's error name and the exit
//! code of its builder) and a message for people. The kind is what is stored, sent and
//! compared; the message may be reworded freely without changing any exit code.
//!
//! A kind's identifier (`compile_failed`, `limit_exceeded:supply`, ...) is its one string form:
//! in the database, in the build JSON's `failure.kind` (a dropship extension) and nowhere else.

use std::fmt;
use std::str::FromStr;

/// A buildpack script, where a staging limit can be hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Detect,
    Supply,
    Finalize,
    Compile,
    Release,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Detect,
        Phase::Supply,
        Phase::Finalize,
        Phase::Compile,
        Phase::Release,
    ];

    /// The script's name (`bin/<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Detect => "detect",
            Phase::Supply => "supply",
            Phase::Finalize => "finalize",
            Phase::Compile => "compile",
            Phase::Release => "release",
        }
    }
}

impl FromStr for Phase {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Phase, UnknownKind> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// What failed. Staging kinds follow Cloud Foundry's builder; the others name the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No buildpack detected the app.
    NoAppDetected,
    /// `bin/compile` (or the final `bin/finalize` of a v2 buildpack) failed.
    CompileFailed,
    /// `bin/release` failed or wrote no valid YAML.
    ReleaseFailed,
    SupplyFailed,
    FinalizeFailed,
    /// A script outran the staging timeout.
    TimeExpired,
    /// A script hit a staging limit (memory, disk, processes) and was stopped.
    LimitExceeded(Phase),
    /// Staging was stopped: a signal, or the service stopped mid-build.
    Interrupted,
    /// Any other staging failure (sandbox, unsafe output, Procfile, I/O).
    Staging,
    Intake,
    Stack,
    Registry,
    Kubernetes,
    Image,
    Buildpacks,
    /// Anything else (the build's own set-up).
    Other,
}

/// A kind's string form that names no kind (a newer server, a damaged row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure kind {0:?}")]
pub struct UnknownKind(pub String);

/// The kinds with a fixed identifier (all but `LimitExceeded`).
const NAMED: [(FailureKind, &str); 15] = [
    (FailureKind::NoAppDetected, "no_app_detected"),
    (FailureKind::CompileFailed, "compile_failed"),
    (FailureKind::ReleaseFailed, "release_failed"),
    (FailureKind::SupplyFailed, "supply_failed"),
    (FailureKind::FinalizeFailed, "finalize_failed"),
    (FailureKind::TimeExpired, "time_expired"),
    (FailureKind::Interrupted, "interrupted"),
    (FailureKind::Staging, "staging"),
    (FailureKind::Intake, "intake"),
    (FailureKind::Stack, "stack"),
    (FailureKind::Registry, "registry"),
    (FailureKind::Kubernetes, "kubernetes"),
    (FailureKind::Image, "image"),
    (FailureKind::Buildpacks, "buildpacks"),
    (FailureKind::Other, "other"),
];

const LIMIT: &str = "limit_exceeded:";

impl FailureKind {
    /// The exit code of Cloud Foundry's builder (222 no app detected, 223 compile, 224
    /// release, 225 supply, 226 finalize, 124 timeout), 130 when interrupted, else 1. The one
    /// mapping: `dropship build` and `dropship push` both exit with it.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::NoAppDetected => 222,
            FailureKind::CompileFailed | FailureKind::LimitExceeded(Phase::Compile) => 223,
            FailureKind::ReleaseFailed | FailureKind::LimitExceeded(Phase::Release) => 224,
            FailureKind::SupplyFailed | FailureKind::LimitExceeded(Phase::Supply) => 225,
            FailureKind::FinalizeFailed | FailureKind::LimitExceeded(Phase::Finalize) => 226,
            FailureKind::TimeExpired => 124,
            FailureKind::Interrupted => 130,
            _ => 1,
        }
    }

    /// Cloud Controller's error name, the prefix of a build's `error`.
    pub fn cf_name(self) -> &'static str {
        match self {
            FailureKind::NoAppDetected => "NoAppDetectedError",
            FailureKind::CompileFailed => "BuildpackCompileFailed",
            FailureKind::ReleaseFailed => "BuildpackReleaseFailed",
            FailureKind::TimeExpired => "StagingTimeExpired",
            _ => "StagingError",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::LimitExceeded(p) => write!(f, "{LIMIT}{}", p.as_str()),
            k => {
                let (_, name) = NAMED
                    .iter()
                    .find(|(n, _)| n == k)
                    .expect("every kind named");
                f.write_str(name)
            }
        }
    }
}

impl FromStr for FailureKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<FailureKind, UnknownKind> {
        if let Some(phase) = s.strip_prefix(LIMIT) {
            let p = phase.parse().map_err(|_| UnknownKind(s.to_string()))?;
            return Ok(FailureKind::LimitExceeded(p));
        }
        NAMED
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(k, _)| *k)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

impl serde::Serialize for FailureKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FailureKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A failed build's reason, as stored with the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFailure {
    pub kind: FailureKind,
    /// For people; never compared.
    pub message: String,
}

impl BuildFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> BuildFailure {
        BuildFailure {
            kind,
            message: message.into(),
        }
    }

    /// The error as Cloud Controller writes it: `"NoAppDetectedError - <message>"`.
    pub fn cf_error(&self) -> String {
        format!("{} - {}", self.kind.cf_name(), self.message)
    }
}

#[cfg(test)]
#[path = "failure_tests.rs"]
mod tests;
