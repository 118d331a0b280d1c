//! File operations on trees another user controls (what buildpacks leave in `app/`, `deps/`,
//! `cache/`): every path is resolved beneath a directory fd and no symbolic link is followed
//! (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, or, on kernels before 5.6, one
//! component at a time with `O_NOFOLLOW`); reads are capped; directories are created and
//! chowned through their own fd, never by path.

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

/// Why a path beneath a directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SafeError {
    #[error("{0} is a symbolic link, or goes through one: refused")]
    Link(String),
    #[error("{0} is not a {1}")]
    WrongType(String, &'static str),
    #[error("{0} is larger than {1} bytes")]
    TooLarge(String, u64),
    #[error("{0}: {1}")]
    Io(String, io::Error),
}

fn errno_to(path: &Path, e: rustix::io::Errno) -> SafeError {
    let shown = path.display().to_string();
    match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV | rustix::io::Errno::NOTDIR => {
            SafeError::Link(shown)
        }
        other => SafeError::Io(shown, other.into()),
    }
}

/// Opens a directory by an absolute path the caller trusts (created by dropship under a
/// directory only root can write), refusing a symlink as its last component.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn relative_parts(rel: &Path) -> Option<Vec<&std::ffi::OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Opens `rel` beneath `dir` with `flags`; no component may be a symbolic link.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> Result<OwnedFd, SafeError> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rfs::openat2(dir, rel, flags, Mode::empty(), resolve) {
        Err(rustix::io::Errno::NOSYS) => open_by_components(dir, rel, flags),
        r => r.map_err(|e| errno_to(rel, e)),
    }
}

/// The same as `open_beneath` without openat2: every directory on the way is opened with
/// `O_NOFOLLOW | O_DIRECTORY`, so a symlink anywhere fails.
fn open_by_components(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
) -> Result<OwnedFd, SafeError> {
    let parts = relative_parts(rel).ok_or_else(|| SafeError::Link(rel.display().to_string()))?;
    let Some((last, parents)) = parts.split_last() else {
        return rfs::openat(dir, ".", flags, Mode::empty()).map_err(|e| errno_to(rel, e));
    };
    let mut cur: Option<OwnedFd> = None;
    for p in parents {
        let at = cur.as_ref().map(|f| f.as_fd()).unwrap_or(dir);
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        cur = Some(rfs::openat(at, *p, dir_flags, Mode::empty()).map_err(|e| errno_to(rel, e))?);
    }
    let at = cur.as_ref().map(|f| f.as_fd()).unwrap_or(dir);
    rfs::openat(at, *last, flags, Mode::empty()).map_err(|e| errno_to(rel, e))
}

/// Opens the regular file `rel` beneath `dir` for reading; `None` when it does not exist.
pub fn open_file(dir: BorrowedFd<'_>, rel: &Path) -> Result<Option<(File, rfs::Stat)>, SafeError> {
    let fd = match open_beneath(dir, rel, OFlags::RDONLY | OFlags::NONBLOCK) {
        Ok(fd) => fd,
        Err(SafeError::Io(_, e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let st = rfs::fstat(&fd).map_err(|e| errno_to(rel, e))?;
    if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::RegularFile {
        return Err(SafeError::WrongType(
            rel.display().to_string(),
            "regular file",
        ));
    }
    Ok(Some((File::from(fd), st)))
}

/// Reads the regular file `rel` beneath `dir`, at most `cap` bytes; `None` when it is absent.
pub fn read_capped(
    dir: BorrowedFd<'_>,
    rel: &Path,
    cap: u64,
) -> Result<Option<Vec<u8>>, SafeError> {
    let Some((f, _)) = open_file(dir, rel)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| SafeError::Io(rel.display().to_string(), e))?;
    if out.len() as u64 > cap {
        return Err(SafeError::TooLarge(rel.display().to_string(), cap));
    }
    Ok(Some(out))
}

/// The target of the symbolic link `rel` beneath `dir`: its directory opened with no link
/// followed, then `readlinkat` there (the kernel bounds a target to PATH_MAX).
pub fn read_link(dir: BorrowedFd<'_>, rel: &Path) -> Result<std::path::PathBuf, SafeError> {
    let name = rel
        .file_name()
        .ok_or_else(|| SafeError::Link(rel.display().to_string()))?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    let at = if parent.as_os_str().is_empty() {
        None
    } else {
        let p = OFlags::PATH | OFlags::DIRECTORY;
        Some(open_beneath(dir, parent, p)?)
    };
    let at = at.as_ref().map(|f| f.as_fd()).unwrap_or(dir);
    let target = rfs::readlinkat(at, name, Vec::new()).map_err(|e| errno_to(rel, e))?;
    use std::os::unix::ffi::OsStringExt;
    Ok(OsString::from_vec(target.into_bytes()).into())
}

/// Opens the directory `rel` beneath `dir`; `None` when it does not exist.
pub fn open_subdir(dir: BorrowedFd<'_>, rel: &Path) -> Result<Option<OwnedFd>, SafeError> {
    match open_beneath(dir, rel, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(fd) => Ok(Some(fd)),
        Err(SafeError::Io(_, e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes sure `name` (one component) is a real directory in `dir` owned by `owner`: created
/// when missing, refused when it is anything else (a symlink, a file). The chown goes through
/// the directory's own fd.
pub fn ensure_dir(
    dir: BorrowedFd<'_>,
    name: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<OwnedFd, SafeError> {
    let rel = Path::new(name);
    if relative_parts(rel).map(|p| p.len()) != Some(1) {
        return Err(SafeError::WrongType(
            name.to_string(),
            "plain directory name",
        ));
    }
    match rfs::mkdirat(dir, name, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(errno_to(rel, e)),
    }
    let fd = open_beneath(dir, rel, OFlags::RDONLY | OFlags::DIRECTORY).map_err(|e| match e {
        SafeError::Link(p) => SafeError::WrongType(p, "directory (it is a symbolic link)"),
        e => e,
    })?;
    if let Some((uid, gid)) = owner {
        let (u, g) = (rfs::Uid::from_raw(uid), rfs::Gid::from_raw(gid));
        rfs::fchown(&fd, Some(u), Some(g)).map_err(|e| errno_to(rel, e))?;
    }
    Ok(fd)
}

/// The kind of a directory entry, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

/// The entries of `dir` (no `.`/`..`), sorted by name, with their kinds (not followed).
pub fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<(OsString, Kind)>> {
    use std::os::unix::ffi::OsStrExt;
    let dup = rfs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for entry in rfs::Dir::read_from(&dup)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let st = rfs::statat(dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)?;
        let kind = match rfs::FileType::from_raw_mode(st.st_mode) {
            rfs::FileType::Directory => Kind::Dir,
            rfs::FileType::RegularFile => Kind::File,
            rfs::FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        out.push((std::ffi::OsStr::from_bytes(name).to_os_string(), kind));
    }
    out.sort();
    Ok(out)
}

/// Bytes of `f` that are holes (sparse regions), counted with `SEEK_DATA`/`SEEK_HOLE`.
pub fn hole_bytes(f: &File, size: u64) -> u64 {
    let mut holes = 0;
    let mut pos = 0;
    while pos < size {
        let data = match rfs::seek(f, rfs::SeekFrom::Data(pos)) {
            Ok(d) => d.min(size),
            // ENXIO: no data after `pos`, the rest is a hole.
            Err(rustix::io::Errno::NXIO) => size,
            Err(_) => return 0,
        };
        holes += data - pos;
        if data >= size {
            break;
        }
        pos = match rfs::seek(f, rfs::SeekFrom::Hole(data)) {
            Ok(h) => h,
            Err(_) => return 0,
        };
    }
    let _ = rfs::seek(f, rfs::SeekFrom::Start(0));
    holes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_are_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/file"), "ok").unwrap();
        symlink(&outside, root.join("out")).unwrap();
        symlink("real/file", root.join("inner")).unwrap();
        symlink("/etc/passwd", root.join("abs")).unwrap();
        let fd = open_dir(&root).unwrap();
        let read = |p: &str| read_capped(fd.as_fd(), Path::new(p), 100);
        assert_eq!(read("real/file").unwrap().unwrap(), b"ok");
        assert!(read("missing").unwrap().is_none());
        for bad in ["out/secret", "inner", "abs", "../outside/secret"] {
            assert!(matches!(read(bad), Err(SafeError::Link(_))), "{bad}");
        }
        assert!(matches!(read("real"), Err(SafeError::WrongType(..))));
        assert!(matches!(
            read_capped(fd.as_fd(), Path::new("real/file"), 1),
            Err(SafeError::TooLarge(..))
        ));
        // The fallback without openat2 refuses the same paths.
        for bad in ["out/secret", "inner", "abs"] {
            assert!(open_by_components(
                fd.as_fd(),
                Path::new(bad),
                OFlags::RDONLY | OFlags::NOFOLLOW
            )
            .is_err());
        }
        assert!(open_by_components(fd.as_fd(), Path::new("real/file"), OFlags::RDONLY).is_ok());
        // A link's target is read where the link is, never through a linked directory.
        symlink("/etc/hostname", outside.join("host")).unwrap();
        symlink("file", root.join("real/sibling")).unwrap();
        let link = |p: &str| read_link(fd.as_fd(), Path::new(p));
        assert_eq!(link("abs").unwrap(), Path::new("/etc/passwd"));
        assert_eq!(link("real/sibling").unwrap(), Path::new("file"));
        assert!(matches!(link("out/host"), Err(SafeError::Link(_))));
    }

    #[test]
    fn ensure_dir_refuses_links_and_files() {
        let d = tempfile::tempdir().unwrap();
        let fd = open_dir(d.path()).unwrap();
        std::fs::write(d.path().join("file"), "").unwrap();
        symlink(d.path(), d.path().join("link")).unwrap();
        assert!(ensure_dir(fd.as_fd(), "new", 0o755, None).is_ok());
        assert!(
            ensure_dir(fd.as_fd(), "new", 0o755, None).is_ok(),
            "exists: fine"
        );
        assert!(ensure_dir(fd.as_fd(), "link", 0o755, None).is_err());
        assert!(ensure_dir(fd.as_fd(), "file", 0o755, None).is_err());
        assert!(ensure_dir(fd.as_fd(), "a/b", 0o755, None).is_err());
        let names: Vec<_> = list(fd.as_fd()).unwrap();
        assert_eq!(names.len(), 3);
        assert!(names.contains(&("link".into(), Kind::Symlink)));
    }

    #[test]
    fn holes_are_counted() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sparse");
        let f = File::create(&p).unwrap();
        f.set_len(64 << 20).unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(hole_bytes(&f, 64 << 20), 64 << 20);
        std::fs::write(&p, vec![1u8; 1 << 20]).unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(hole_bytes(&f, 1 << 20), 0);
    }
}
