//! Small file-system helpers shared by stages.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What [`copy_tree`] did.
#[derive(Debug, Default)]
pub struct Copied {
    pub bytes: u64,
    /// Symlinks not copied because they point outside the tree (absolute, or escaping it
    /// through `..` or other links), relative to its root.
    pub dropped_links: Vec<PathBuf>,
}

/// Copies the tree `from` into `to` (which exists). Nothing is followed: files are opened
/// beneath `from` with no symbolic link on the way (the tree may belong to another user),
/// symlinks are copied as links unless they point outside the tree, special files are
/// skipped.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<Copied> {
    let root = crate::safefs::open_dir(from)?;
    let mut entries = Vec::new();
    let mut links = HashMap::new();
    for entry in walkdir::WalkDir::new(from).follow_links(false).min_depth(1) {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(from)
            .expect("under the root")
            .to_path_buf();
        if entry.file_type().is_symlink() {
            links.insert(rel.clone(), fs::read_link(entry.path())?);
        }
        let mode = entry
            .metadata()
            .map_err(io::Error::other)?
            .permissions()
            .mode();
        entries.push((rel, entry.file_type(), mode));
    }
    let mut done = Copied::default();
    for (rel, ft, mode) in entries {
        let dest = to.join(&rel);
        if ft.is_dir() {
            fs::create_dir_all(&dest)?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(mode & 0o777 | 0o700))?;
        } else if ft.is_symlink() {
            let target = &links[&rel];
            if crate::intake::check_symlink(&rel, target, &links).is_err() {
                done.dropped_links.push(rel);
                continue;
            }
            std::os::unix::fs::symlink(target, &dest)?;
        } else if ft.is_file() {
            let opened = crate::safefs::open_file(root.as_fd(), &rel)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let Some((mut src, _)) = opened else { continue };
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & 0o777 | 0o400)
                .open(&dest)?;
            done.bytes += io::copy(&mut src, &mut out)?;
        }
    }
    Ok(done)
}

/// The first directory on the way to `path` (its ancestors) that user `uid`/`gid` cannot pass
/// through, if any: bubblewrap, running as that user, must reach every directory it mounts.
pub fn unreachable_ancestor(path: &Path, uid: u32, gid: u32) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    ancestors.reverse();
    ancestors.into_iter().find_map(|dir| {
        let m = fs::metadata(dir).ok()?;
        let mode = m.mode();
        let ok = mode & 0o001 != 0
            || (m.uid() == uid && mode & 0o100 != 0)
            || (m.gid() == gid && mode & 0o010 != 0);
        (!ok).then(|| dir.to_path_buf())
    })
}

/// Entries and bytes of regular files under `dir`, for progress lines (links are not followed).
pub fn tally(dir: &Path) -> (u64, u64) {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(|e| e.ok())
        .fold((0, 0), |(n, bytes), e| {
            let len = e
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .map_or(0, |m| m.len());
            (n + 1, bytes + len)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_without_following_and_drops_escaping_links() {
        let d = tempfile::tempdir().unwrap();
        let (from, to) = (d.path().join("from"), d.path().join("to"));
        fs::create_dir_all(from.join("sub")).unwrap();
        fs::create_dir_all(&to).unwrap();
        fs::write(from.join("sub/file"), "data").unwrap();
        std::os::unix::fs::symlink("sub/file", from.join("inside")).unwrap();
        std::os::unix::fs::symlink("/etc", from.join("abs")).unwrap();
        std::os::unix::fs::symlink("../..", from.join("sub/up")).unwrap();
        std::os::unix::fs::symlink(".", from.join("dot")).unwrap();
        std::os::unix::fs::symlink("dot/..", from.join("sneaky")).unwrap();
        let c = copy_tree(&from, &to).unwrap();
        assert_eq!(c.bytes, 4);
        let mut dropped = c.dropped_links.clone();
        dropped.sort();
        assert_eq!(
            dropped,
            [PathBuf::from("abs"), "sneaky".into(), "sub/up".into()]
        );
        assert_eq!(fs::read_to_string(to.join("inside")).unwrap(), "data");
        assert!(fs::symlink_metadata(to.join("abs")).is_err());
    }

    #[test]
    fn finds_closed_ancestors() {
        let d = tempfile::tempdir().unwrap();
        let closed = d.path().join("closed");
        let inner = closed.join("open/leaf");
        fs::create_dir_all(&inner).unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o711)).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
        let owner = fs::metadata(&closed).unwrap();
        assert_eq!(
            unreachable_ancestor(&inner, 4242, 4242),
            Some(closed.clone())
        );
        assert_eq!(
            unreachable_ancestor(&inner, owner.uid(), 4242),
            None,
            "the owner passes"
        );
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o701)).unwrap();
        assert_eq!(unreachable_ancestor(&inner, 4242, 4242), None);
    }
}
