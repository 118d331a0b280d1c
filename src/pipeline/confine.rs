//! Where staging may run: the staging user must reach the workspace (and the rootfs), and a
//! build gets its limits and control group, refused where processes could not all be killed.

use super::error::{other, BuildError};
use super::options::Runtime;
use crate::app::App;
use crate::fsutil::unreachable_ancestor;
use crate::report::{warn, Reporter};
use crate::staging::limits::{Confinement, StagingLimits};
use crate::staging::sandbox::{staging_owner, SandboxKind};
use crate::staging::workspace::Workspace;
use crate::staging::StagingError;
use std::path::Path;

/// Stops with the directory the staging user cannot pass through, if any.
pub fn check_reachable(rootfs: Option<&Path>, work: &Path) -> Result<(), BuildError> {
    let Some((uid, gid)) = staging_owner() else {
        return Ok(());
    };
    for path in std::iter::once(work).chain(rootfs) {
        if let Some(closed) = unreachable_ancestor(path, uid, gid) {
            return Err(BuildError::Staging(StagingError::Sandbox(format!(
                "the staging user (uid {uid}) cannot reach {}: {} is closed to it; \
                 make it traversable (chmod o+x) or choose another --work-dir / --stack-cache",
                path.display(),
                closed.display()
            ))));
        }
    }
    Ok(())
}

/// The limits of this build's staging, and the control group that holds them.
pub fn confinement(
    app: &App,
    runtime: &Runtime,
    ws: &Workspace,
    reporter: &dyn Reporter,
) -> Result<Confinement, BuildError> {
    let limits = StagingLimits {
        disk: app.disk_mb << 20,
        memory: app.memory_mb << 20,
        pids: runtime.staging_pids,
        cpu_secs: runtime.staging_timeout.as_secs().max(1),
    };
    let name = ws
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let watch = ws
        .disk_watch()
        .map_err(other("watching the staging disk"))?;
    let c = Confinement::new(&name, limits, staging_owner(), watch)
        .map_err(other("confining staging"))?;
    if let Some(why) = c.why_no_cgroup() {
        warn(
            reporter,
            format!("staging runs without a control group ({why}): memory and processes are bounded by rlimits"),
        );
    }
    if runtime.sandbox == SandboxKind::None
        && staging_owner().is_some()
        && !c.has_cgroup()
        && !runtime.host_is_container
    {
        return Err(BuildError::Staging(StagingError::Sandbox(
            "--sandbox none as root needs a writable cgroup file system (to kill every process \
             a buildpack starts, and to bound its memory and processes); none is writable here. \
             Use the bwrap sandbox, or pass --i-know-the-host-is-a-container"
                .into(),
        )));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_closed_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("work");
        std::fs::create_dir(&inner).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let r = check_reachable(None, &inner);
        if staging_owner().is_none() {
            // Not root: scripts run as this user, who reaches its own directories.
            return assert!(r.is_ok());
        }
        let e = r.unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        assert!(check_reachable(None, &inner).is_ok());
    }
}
