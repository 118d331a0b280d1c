//! What a build tells the outside world while it runs. The CLI prints it (stderr, progress
//! bars on a TTY); the service stores and streams it. Stages never print directly.

use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Already in the target: nothing sent.
    Exists,
    /// Mounted from another repository of the same registry: nothing sent.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// A stage of the build, as timed and reported (`--json` timings and metrics use its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Intake,
    Stack,
    Staging,
    Droplet,
    Image,
    Push,
    Manifests,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Intake,
        Stage::Stack,
        Stage::Staging,
        Stage::Droplet,
        Stage::Image,
        Stage::Push,
        Stage::Manifests,
    ];

    /// The name in reports and in the `--json` timings.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Intake => "intake",
            Stage::Stack => "stack",
            Stage::Staging => "staging",
            Stage::Droplet => "droplet",
            Stage::Image => "image",
            Stage::Push => "push",
            Stage::Manifests => "manifests",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    /// A line of buildpack output (stdout or stderr of a lifecycle script).
    Output(String),
    /// An informational line from dropship itself.
    Info(String),
    /// Something went wrong but the build goes on (e.g. a retried request).
    Warn(String),
    /// A pipeline stage finished.
    Stage { stage: Stage, took: Duration },
    /// A blob upload starts.
    BlobStart { digest: String, size: u64 },
    /// Bytes of a blob upload sent so far.
    BlobProgress { digest: String, sent: u64 },
    /// A long download: `done` of `total` bytes so far; `done == total` ends it. `task` names
    /// it (e.g. `pulling 3f1c0a9b2d4e`) and tells apart the ones running at once.
    Progress { task: String, done: u64, total: u64 },
    /// A blob is in the target.
    BlobDone {
        digest: String,
        size: u64,
        outcome: BlobOutcome,
    },
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
}

/// A reporter that drops everything (tests, embedding).
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: Event) {}
}

pub type SharedReporter = Arc<dyn Reporter>;

/// Convenience wrappers.
pub fn info(r: &dyn Reporter, msg: impl Into<String>) {
    r.event(Event::Info(msg.into()));
}

pub fn warn(r: &dyn Reporter, msg: impl Into<String>) {
    r.event(Event::Warn(msg.into()));
}
