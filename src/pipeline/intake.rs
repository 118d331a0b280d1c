//! Intake: the app's source (zip or directory) written into the workspace, within budgets.

use super::error::{blocking, BuildError};
use super::options::BuildRequest;
use crate::intake::{self, IntakeError};
use crate::staging::workspace::Workspace;
use std::sync::Arc;

/// The app as written into the workspace's `app` dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppTree {
    pub files: u64,
    pub bytes: u64,
}

/// Writes the request's source into `ws` (blocking work, off the runtime).
pub async fn intake(req: &BuildRequest, ws: Arc<Workspace>) -> Result<AppTree, BuildError> {
    let (source, limits) = (req.source.clone(), req.limits);
    blocking(move || {
        let stats =
            intake::intake(&source, &ws.dirs.app, &limits).map_err(|e| over_quota(e, &ws))?;
        Ok(AppTree {
            files: stats.files,
            bytes: stats.bytes,
        })
    })
    .await
}

/// An intake that ran out of room in a quota'd workspace is over the disk quota.
fn over_quota(e: IntakeError, ws: &Workspace) -> BuildError {
    let full = ws.quota().saturating_sub(ws.used()) < (1 << 20);
    if full {
        return BuildError::Other(format!(
            "intake: the app does not fit in the disk quota of {} (--disk): {e}",
            crate::staging::limits::human(ws.quota())
        ));
    }
    BuildError::Intake(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Silent;

    #[tokio::test]
    async fn writes_the_app_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let opts = super::super::options::tests::options(dir.path());
        std::fs::create_dir_all(&opts.request.source).unwrap();
        std::fs::write(opts.request.source.join("index.html"), "hello").unwrap();
        let ws = super::super::workspace::prepare(&opts.runtime, 64 << 20, &Silent)
            .await
            .unwrap();
        let tree = intake(&opts.request, ws.clone()).await.unwrap();
        assert_eq!(tree, AppTree { files: 1, bytes: 5 });
        assert!(ws.dirs.app.join("index.html").is_file());
    }

    #[tokio::test]
    async fn a_missing_source_is_an_intake_error() {
        let dir = tempfile::tempdir().unwrap();
        let opts = super::super::options::tests::options(dir.path());
        let ws = super::super::workspace::prepare(&opts.runtime, 64 << 20, &Silent)
            .await
            .unwrap();
        let e = intake(&opts.request, ws).await.unwrap_err();
        assert_eq!(e.kind(), "intake", "{e}");
    }
}
