//! The build's workspace: made (and stale ones swept) off the runtime, and removed off it.

use super::error::{blocking, other, BuildError};
use super::options::Runtime;
use crate::report::{warn, Reporter};
use crate::staging::sandbox::staging_owner;
use crate::staging::workspace::Workspace;
use std::sync::Arc;

/// Makes the workspace under the runtime's work dir, its staging tree capped at `quota` bytes.
pub async fn prepare(
    runtime: &Runtime,
    quota: u64,
    reporter: &dyn Reporter,
) -> Result<Arc<Workspace>, BuildError> {
    let work_dir = runtime.work_dir.clone();
    let ws = blocking(move || {
        Workspace::create(&work_dir, quota).map_err(other("creating the work dir"))
    })
    .await?;
    if staging_owner().is_some() && !ws.quota_mounted() {
        warn(
            reporter,
            "the staging disk quota cannot be a tmpfs here (mount refused): it is watched instead",
        );
    }
    Ok(Arc::new(ws))
}

/// Drops the workspace (a tree removal, an unmount) on a blocking thread; if other holders
/// remain, the last of them removes it.
pub async fn remove(ws: Arc<Workspace>) {
    let _ = tokio::task::spawn_blocking(move || drop(ws)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Silent;

    #[tokio::test]
    async fn prepares_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = super::super::options::tests::options(dir.path()).runtime;
        let ws = prepare(&runtime, 64 << 20, &Silent).await.unwrap();
        let root = ws.path().to_path_buf();
        assert!(root.starts_with(&runtime.work_dir));
        assert!(ws.dirs.app.is_dir() && ws.blobs.is_dir());
        remove(ws).await;
        assert!(!root.exists());
    }
}
