//! Cloud Foundry's v3 API as Rust types: the one model of the API that the server
//! (`service/`), the `dropship push` client (`cli/push/`) and the tests share. Pure serde types
//! (no HTTP here): every resource serializes to CF's JSON field names and reads back from it.
//!
//! One file per resource family: `common` (links, metadata, relationships, pagination, the
//! error body), `app`, `package`, `build` (with its typed failure), `droplet`, `process`
//! (with stats and the scale request), `resource` (resource matching), `space` (organizations
//! and spaces), `stack` (stacks and admin buildpacks), `job`, `root` (discovery and info). Requests are here too (`CreateApp`, `CreatePackage`, `CreateBuild`,
//! `Scale`, `SetEnv`, `SetCurrentDroplet`).
//!
//! States are the store's enums (`BuildState`, `PackageState`, `AppState`, `JobState`), in CF's
//! SCREAMING_CASE; a failed build's `failure.kind` is a [`FailureKind`](crate::failure::FailureKind).
//! Fields that may be null are `Option`s serialized as `null` (CF sends them), never omitted,
//! unless marked otherwise.

pub mod app;
pub mod build;
pub mod common;
pub mod droplet;
pub mod job;
pub mod package;
pub mod process;
pub mod resource;
pub mod root;
pub mod space;
pub mod stack;

pub use app::{
    App, AppEnv, AppLinks, CreateApp, CurrentDroplet, EnvVars, SetCurrentDroplet, SetEnv, UpdateApp,
};
pub use build::{Build, BuildLinks, CreateBuild, Failure};
pub use common::{
    CfError, ErrorBody, GuidRef, Lifecycle, LifecycleData, Link, Metadata, OptionalRelationship,
    Paginated, Pagination, Relationship,
};
pub use droplet::{Droplet, DropletBuildpack, DropletState};
pub use job::Job;
pub use package::{Checksum, CreatePackage, Package};
pub use process::{InstanceState, InstanceStats, Process, ProcessStats, Scale};
pub use resource::{Resource, ResourceMatches};
pub use root::{Info, Root, V3Root};
pub use space::{Included, Organization, Space};
pub use stack::{Buildpack, Stack};

pub use crate::store::{AppState, BuildState, JobState, PackageState};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_platform;
