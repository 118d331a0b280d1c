//! What the integration tests share, all real parts: the `dropship` binary (`cli`), a real
//! registry on loopback (`registry`), stacks (busybox-static, Debian from mmdebstrap: `stacks`),
//! podman and skopeo (`podman`), `dropship serve` as a process (`service`) and its HTTP client
//! (`api`), ports and plain HTTP (`net`), files and processes (`host`), vendored npm/PyPI
//! packages (`vendor`), staging fixtures with hand-written buildpacks (`staging`), hostile-input
//! helpers (`bounds`), a recording relay (`tap`), a fault-injecting proxy (`fault_proxy`),
//! plain-HTTP login helpers (`uaa`), and N replicas sharing one store (`replicas`).
//! Missing tools make tests fail with the command that installs them (see .ci/run).
#![allow(dead_code)]

pub mod api;
pub mod bounds;
pub mod client;
pub mod fault_proxy;
pub mod staging;
pub mod tap;
pub mod uaa;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod cli;
mod counted;
mod host;
mod in_process;
mod net;
mod podman;
mod postgres;
mod python;
mod registry;
mod replicas;
mod s3;
mod service;
mod stacks;
mod vendor;

pub use cli::*;
pub use host::*;
pub use in_process::*;
pub use net::*;
pub use podman::*;
pub use postgres::*;
pub use python::*;
pub use registry::*;
pub use replicas::*;
pub use s3::*;
pub use service::*;
pub use stacks::*;
pub use vendor::*;

/// A line on stderr at the start of a slow phase (`[it] making the Debian stack ...`), so that
/// a long run shows where it is: printed live with `cargo test --test it -- --nocapture`, and
/// kept with the output of a test that fails.
pub fn progress(what: impl std::fmt::Display) {
    eprintln!("[it] {what}");
}
