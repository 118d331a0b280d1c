//! Small file-system helpers shared by stages.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Copies the tree `from` into `to` (which exists); returns the bytes copied.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<u64> {
    let mut bytes = 0;
    for entry in walkdir::WalkDir::new(from).follow_links(false).min_depth(1) {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(from).expect("under the root");
        let dest = to.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&dest)?;
            let mode = entry
                .metadata()
                .map_err(io::Error::other)?
                .permissions()
                .mode();
            fs::set_permissions(&dest, fs::Permissions::from_mode(mode & 0o777 | 0o700))?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &dest)?;
        } else if ft.is_file() {
            bytes += fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

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
