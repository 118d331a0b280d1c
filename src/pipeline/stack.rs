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

#[cfg(test)]
mod tests {
    use super::super::testkit::fixture;
    use super::*;
    use crate::registry::RegistryOptions;
    use crate::report::Silent;
    use std::sync::Arc;

    #[tokio::test]
    async fn resolves_a_layout_stack_without_unpacking_it_for_no_sandbox() {
        let f = fixture().await;
        let registry = Registry::new(RegistryOptions::default(), &[], Arc::new(Silent)).unwrap();
        let r = resolve(&f.opts.request, &f.opts.runtime, &registry)
            .await
            .unwrap();
        assert_eq!(r.stack.name, "tiny");
        assert!(r.stack.digest().starts_with("sha256:"));
        assert!(r.rootfs.is_none());
        let mut missing = f.opts.request.clone();
        missing.stack = format!("oci:{}:nope", f.dir.path().join("stack").display())
            .parse()
            .unwrap();
        let e = resolve(&missing, &f.opts.runtime, &registry)
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), "stack", "{e}");
    }
}
