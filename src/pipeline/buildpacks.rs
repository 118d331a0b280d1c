//! The buildpacks to run, copied into the workspace (as Cloud Foundry downloads them into the
//! staging container): root's, readable by everyone, so the staging user can run them from
//! wherever they are installed and no buildpack can change another. Blocking.

use super::error::{other, BuildError};
use super::options::BuildRequest;
use crate::fsutil::copy_tree;
use crate::report::{info, Reporter};
use crate::staging::buildpacks::{self, Buildpack};
use std::path::Path;

/// The request's buildpacks (or, with none named, every buildpack in detection order),
/// copied under `work`.
pub fn install(
    req: &BuildRequest,
    work: &Path,
    reporter: &dyn Reporter,
) -> Result<Vec<Buildpack>, BuildError> {
    let bps = chosen(req, work, reporter)?;
    let copies = work.join("buildpacks-run");
    let copied = bps
        .into_iter()
        .map(|b| {
            let dest = copies.join(&b.name);
            std::fs::create_dir_all(&dest)
                .and_then(|_| copy_tree(&b.dir, &dest))
                .map_err(other(&format!("copying buildpack {}", b.dir.display())))?;
            Ok(Buildpack {
                name: b.name,
                dir: dest,
            })
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    open_to_all(&copies).map_err(other("opening the buildpacks to the staging user"))?;
    Ok(copied)
}

/// The named buildpacks (zips unpacked under `work`), else the detection order.
fn chosen(
    req: &BuildRequest,
    work: &Path,
    reporter: &dyn Reporter,
) -> Result<Vec<Buildpack>, BuildError> {
    if !req.buildpacks.is_empty() {
        let unpack = work.join("buildpacks");
        return Ok(req
            .buildpacks
            .iter()
            .map(|b| buildpacks::resolve(b, &req.buildpacks_dir, &unpack))
            .collect::<Result<_, _>>()?);
    }
    let order = buildpacks::detection_order(&req.buildpacks_dir)?;
    if !order.unlisted.is_empty() {
        let order_file = req.buildpacks_dir.join("order");
        let msg = format!(
            "buildpacks not named in {}: {}: tried after the listed ones",
            order_file.display(),
            order.unlisted.join(", ")
        );
        info(reporter, msg);
    }
    Ok(order.buildpacks)
}

/// Makes a tree dropship wrote readable (and its executables runnable) by every user.
fn open_to_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.map_err(std::io::Error::other)?;
        let m = e.metadata().map_err(std::io::Error::other)?;
        if e.file_type().is_symlink() {
            continue;
        }
        let mode = m.permissions().mode();
        let open = if m.is_dir() || mode & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(open))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Silent;
    use std::os::unix::fs::PermissionsExt;

    fn buildpack(dir: &Path, name: &str) {
        let bin = dir.join(name).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for s in ["detect", "compile", "release"] {
            std::fs::write(bin.join(s), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(bin.join(s), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
    }

    #[test]
    fn copies_open_to_everyone() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = super::super::options::tests::options(dir.path()).request;
        buildpack(&req.buildpacks_dir, "static");
        let work = dir.path().join("w");
        std::fs::create_dir_all(&work).unwrap();
        let bps = install(&req, &work, &Silent).unwrap();
        assert_eq!(bps.len(), 1);
        assert!(bps[0].dir.starts_with(work.join("buildpacks-run")));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&bps[0].dir.join("bin/detect")), 0o755);
        req.buildpacks = vec!["missing".into()];
        assert_eq!(
            install(&req, &work, &Silent).unwrap_err().kind(),
            "buildpacks"
        );
    }
}
