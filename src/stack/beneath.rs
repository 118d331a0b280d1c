//! File-system operations beneath a directory fd that never follow a symbolic link: every
//! path is walked one component at a time with `O_NOFOLLOW`, every change is `*at` relative
//! to an fd. Whoever planted a link in the tree cannot make these reach outside it.

use rustix::fs::{openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Why a directory beneath the root could not be opened.
#[derive(Debug)]
pub enum WalkError {
    /// This prefix of the path is a symbolic link.
    Symlink(PathBuf),
    /// This prefix of the path is neither a directory nor a link.
    NotDir(PathBuf),
    Io(io::Error),
}

impl From<Errno> for WalkError {
    fn from(e: Errno) -> Self {
        WalkError::Io(e.into())
    }
}

/// The type of `name` in `dir`, not following a link; `None` when there is none.
pub fn kind_at(dir: BorrowedFd, name: &OsStr) -> io::Result<Option<FileType>> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens the directory `name` in `dir` without following a link.
pub fn open_dir(dir: BorrowedFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(dir, name, DIR_FLAGS, Mode::empty())?)
}

/// Opens the directory `rel` beneath `root` (`""`: the root itself), refusing symbolic links
/// at every step. Missing directories are created (mode 0755) when `create`, else `None`.
pub fn walk(root: BorrowedFd, rel: &Path, create: bool) -> Result<Option<OwnedFd>, WalkError> {
    let mut cur = openat(root, ".", DIR_FLAGS, Mode::empty())?;
    let mut prefix = PathBuf::new();
    for name in rel.iter() {
        prefix.push(name);
        let next = match openat(&cur, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if !create => return Ok(None),
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                openat(&cur, name, DIR_FLAGS, Mode::empty()).map_err(|e| {
                    classify(cur.as_fd(), name, &prefix).unwrap_or(WalkError::Io(e.into()))
                })?
            }
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                return Err(classify(cur.as_fd(), name, &prefix).unwrap_or(e.into()))
            }
            Err(e) => return Err(e.into()),
        };
        cur = next;
    }
    Ok(Some(cur))
}

fn classify(dir: BorrowedFd, name: &OsStr, prefix: &Path) -> Option<WalkError> {
    match kind_at(dir, name) {
        Ok(Some(FileType::Symlink)) => Some(WalkError::Symlink(prefix.to_path_buf())),
        Ok(Some(FileType::Directory)) | Ok(None) => None,
        Ok(Some(_)) => Some(WalkError::NotDir(prefix.to_path_buf())),
        Err(e) => Some(WalkError::Io(e)),
    }
}

/// Removes `name` from `dir`: a link or file is unlinked, a directory emptied depth-first
/// without following any link inside it, then removed. Nothing there: nothing to do.
pub fn remove_tree(dir: BorrowedFd, name: &OsStr) -> io::Result<()> {
    match kind_at(dir, name)? {
        None => Ok(()),
        Some(FileType::Directory) => {
            clear_dir(open_dir(dir, name)?.as_fd())?;
            Ok(unlinkat(dir, name, AtFlags::REMOVEDIR)?)
        }
        Some(_) => Ok(unlinkat(dir, name, AtFlags::empty())?),
    }
}

/// Removes everything in the directory `dir` (see [`remove_tree`]).
pub fn clear_dir(dir: BorrowedFd) -> io::Result<()> {
    let mut names: Vec<CString> = Vec::new();
    for entry in Dir::read_from(dir)? {
        let name = entry?.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            names.push(name);
        }
    }
    for name in names {
        use std::os::unix::ffi::OsStrExt;
        remove_tree(dir, OsStr::from_bytes(name.as_bytes()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn root(dir: &Path) -> OwnedFd {
        fs::File::open(dir).unwrap().into()
    }

    #[test]
    fn walks_refuse_links_and_removals_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let (inside, outside) = (d.path().join("in"), d.path().join("out"));
        fs::create_dir_all(inside.join("a/b")).unwrap();
        fs::create_dir_all(outside.join("keep")).unwrap();
        fs::write(outside.join("keep/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("a/link")).unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("a/b/deep")).unwrap();
        let r = root(&inside);
        assert!(walk(r.as_fd(), Path::new("a/b"), false).unwrap().is_some());
        assert!(walk(r.as_fd(), Path::new("a/none"), false)
            .unwrap()
            .is_none());
        match walk(r.as_fd(), Path::new("a/link/keep"), true) {
            Err(WalkError::Symlink(p)) => assert_eq!(p, Path::new("a/link")),
            other => panic!("{other:?}"),
        }
        walk(r.as_fd(), Path::new("x/y"), true).unwrap().unwrap();
        assert!(inside.join("x/y").is_dir());
        remove_tree(r.as_fd(), OsStr::new("a")).unwrap();
        assert!(!inside.join("a").exists());
        assert_eq!(fs::read(outside.join("keep/f")).unwrap(), b"x");
    }
}
