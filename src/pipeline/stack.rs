//! The stack: its image resolved (pulled once into the stack cache) and, for the bwrap
//! sandbox, its root file system unpacked.

use super::error::BuildError;
use super::options::{BuildRequest, Runtime};
use crate::registry::Registry;
use crate::stack::Stack;
use crate::staging::sandbox::SandboxKind;
use std::path::PathBuf;

/// A stack ready for staging.
pub struct ResolvedStack {
    pub stack: Stack,
    /// The unpacked root file system; `None` without a sandbox (scripts run on the host).
    pub rootfs: Option<PathBuf>,
}

/// Resolves the request's stack, and unpacks it when the sandbox needs it.
pub async fn resolve(
    req: &BuildRequest,
    runtime: &Runtime,
    registry: &Registry,
) -> Result<ResolvedStack, BuildError> {
    let stack = Stack::open(&req.stack, registry, &runtime.stack_cache).await?;
    let rootfs = match runtime.sandbox {
        SandboxKind::Bwrap => Some(stack.rootfs(&runtime.stack_cache).await?),
        SandboxKind::None => None,
    };
    Ok(ResolvedStack { stack, rootfs })
}
