//! One stack layer applied onto a root filesystem, safely: every operation is relative to the
//! rootfs's directory fd and never follows a symbolic link (see `beneath.rs`). An entry whose
//! parent path, or whose hard-link target, goes through a symbolic link in the rootfs is
//! refused, and so is the layer: real images record a change at its real path. Whiteouts and
//! replaced directories are removed beneath the rootfs without following links inside them.
//! Owners (when root), modes including setuid and file mtimes are as the tar says; device
//! nodes and fifos are skipped (the sandbox has its own /dev); xattrs are not applied.

use super::beneath::{self, remove_tree, walk, WalkError};
use rustix::fs::{
    chownat, fchmod, fchown, futimens, linkat, mkdirat, openat, symlinkat, AtFlags, FileType, Gid,
    Mode, OFlags, Timespec, Timestamps, Uid,
};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Entries with longer paths are refused (the kernel's PATH_MAX; bounds the depth too).
const MAX_PATH: usize = 4096;
const OPAQUE: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("stack layer {layer}: entry {entry:?} goes through the symlink {link:?}: refused")]
    ThroughSymlink {
        layer: String,
        entry: String,
        link: String,
    },
    #[error("stack layer {layer}: entry {entry:?} {why}: refused")]
    Refused {
        layer: String,
        entry: String,
        why: String,
    },
    #[error("stack layer {layer}: entry {entry:?}: {source}")]
    Entry {
        layer: String,
        entry: String,
        source: io::Error,
    },
    #[error("stack layer {layer}: {source}")]
    Layer { layer: String, source: io::Error },
    #[error("unpacking the stack into {dir}: {source}")]
    Rootfs { dir: String, source: io::Error },
}

/// A layer path made relative: `None` when it has `..` (or is too long).
pub fn clean_path(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (out.as_os_str().len() <= MAX_PATH).then_some(out)
}

/// Applies one layer (an uncompressed tar stream) onto the rootfs open at `root`.
pub fn apply_layer(tar: impl Read, root: BorrowedFd, layer: &str) -> Result<(), UnpackError> {
    let layer_err = |source| UnpackError::Layer {
        layer: layer.to_string(),
        source,
    };
    let mut archive = tar::Archive::new(tar);
    let u = Unpacker {
        root,
        layer,
        // SAFETY: geteuid cannot fail.
        chown: unsafe { libc::geteuid() } == 0,
    };
    for entry in archive.entries().map_err(layer_err)? {
        let mut entry = entry.map_err(layer_err)?;
        let raw = entry.path().map_err(layer_err)?.into_owned();
        u.entry(&raw, &mut entry)?;
    }
    Ok(())
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    layer: &'a str,
    chown: bool,
}

/// Where an entry goes: its parent directory, open, and its name in it.
struct Place {
    dir: OwnedFd,
    name: PathBuf,
}

impl Unpacker<'_> {
    fn refused(&self, entry: &Path, why: impl Into<String>) -> UnpackError {
        UnpackError::Refused {
            layer: self.layer.into(),
            entry: entry.display().to_string(),
            why: why.into(),
        }
    }

    fn io(&self, entry: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
        let entry = entry.display().to_string();
        move |source| UnpackError::Entry {
            layer: self.layer.into(),
            entry,
            source,
        }
    }

    fn walk_err(&self, entry: &Path, e: WalkError) -> UnpackError {
        match e {
            WalkError::Symlink(link) => UnpackError::ThroughSymlink {
                layer: self.layer.into(),
                entry: entry.display().to_string(),
                link: link.display().to_string(),
            },
            WalkError::NotDir(p) => {
                self.refused(entry, format!("goes through {:?}, not a directory", p))
            }
            WalkError::Io(e) => self.io(entry)(e),
        }
    }

    /// The parent directory of `rel` (created when missing and `create`), never through a link.
    fn place(&self, raw: &Path, rel: &Path, create: bool) -> Result<Option<Place>, UnpackError> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        let name = PathBuf::from(rel.file_name().expect("a cleaned, non-empty path"));
        Ok(walk(self.root, parent, create)
            .map_err(|e| self.walk_err(raw, e))?
            .map(|dir| Place { dir, name }))
    }

    fn entry<R: Read>(&self, raw: &Path, entry: &mut tar::Entry<R>) -> Result<(), UnpackError> {
        let rel = clean_path(raw).ok_or_else(|| self.refused(raw, "leaves the root filesystem"))?;
        let Some(name) = rel.file_name().map(OsStrExt::as_bytes) else {
            return Ok(()); // The root itself (`./`).
        };
        if name == OPAQUE.as_bytes() {
            return self.opaque(raw, &rel);
        }
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            return self.whiteout(raw, &rel, OsStr::from_bytes(hidden));
        }
        self.write(raw, &rel, entry)
    }

    /// `.wh..wh..opq`: the directory's lower-layer children go.
    fn opaque(&self, raw: &Path, rel: &Path) -> Result<(), UnpackError> {
        if let Some(p) = self.place(raw, rel, false)? {
            beneath::clear_dir(p.dir.as_fd()).map_err(self.io(raw))?;
        }
        Ok(())
    }

    /// `.wh.NAME`: NAME goes (a directory with all it holds; links themselves, not targets).
    fn whiteout(&self, raw: &Path, rel: &Path, hidden: &OsStr) -> Result<(), UnpackError> {
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(self.refused(raw, "is not a valid whiteout"));
        }
        if let Some(p) = self.place(raw, rel, false)? {
            remove_tree(p.dir.as_fd(), hidden).map_err(self.io(raw))?;
        }
        Ok(())
    }

    fn write<R: Read>(
        &self,
        raw: &Path,
        rel: &Path,
        entry: &mut tar::Entry<R>,
    ) -> Result<(), UnpackError> {
        use tar::EntryType as T;
        let h = entry.header();
        let kind = h.entry_type();
        let meta = Meta {
            mode: h.mode().map_err(self.io(raw))? & 0o7777,
            uid: h.uid().map_err(self.io(raw))?,
            gid: h.gid().map_err(self.io(raw))?,
            mtime: h.mtime().map_err(self.io(raw))?,
        };
        let place = |create| self.place(raw, rel, create).map(|p| p.expect("created"));
        match kind {
            T::Directory => self.dir(raw, &place(true)?, &meta),
            T::Regular | T::Continuous | T::GNUSparse => {
                self.file(raw, &place(true)?, &meta, entry)
            }
            T::Symlink => {
                let target = entry.link_name().map_err(self.io(raw))?;
                let target = target.ok_or_else(|| self.refused(raw, "is a link to nothing"))?;
                self.symlink(raw, &place(true)?, &target, &meta)
            }
            T::Link => {
                let target = entry.link_name().map_err(self.io(raw))?;
                let target = target.ok_or_else(|| self.refused(raw, "is a link to nothing"))?;
                self.hardlink(raw, rel, &place(true)?, &target)
            }
            // Device nodes and fifos (the sandbox has its own /dev), pax and GNU metadata.
            _ => Ok(()),
        }
    }

    /// Clears the way for a new entry: anything there goes, unless it is a directory and
    /// `keep_dir` (a directory entry over a directory only updates its metadata).
    fn clear(&self, raw: &Path, p: &Place, keep_dir: bool) -> Result<bool, UnpackError> {
        let kind = beneath::kind_at(p.dir.as_fd(), p.name.as_os_str()).map_err(self.io(raw))?;
        if keep_dir && kind == Some(FileType::Directory) {
            return Ok(true);
        }
        if kind.is_some() {
            remove_tree(p.dir.as_fd(), p.name.as_os_str()).map_err(self.io(raw))?;
        }
        Ok(false)
    }

    fn dir(&self, raw: &Path, p: &Place, m: &Meta) -> Result<(), UnpackError> {
        if !self.clear(raw, p, true)? {
            mkdirat(&p.dir, &p.name, Mode::from_raw_mode(0o700))
                .map_err(|e| self.io(raw)(e.into()))?;
        }
        let fd = beneath::open_dir(p.dir.as_fd(), p.name.as_os_str()).map_err(self.io(raw))?;
        self.owner_mode(raw, &fd, m)
    }

    fn file<R: Read>(
        &self,
        raw: &Path,
        p: &Place,
        m: &Meta,
        data: &mut tar::Entry<R>,
    ) -> Result<(), UnpackError> {
        self.clear(raw, p, false)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(&p.dir, &p.name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| self.io(raw)(e.into()))?;
        let mut file = std::fs::File::from(fd);
        io::copy(data, &mut file).map_err(self.io(raw))?;
        self.owner_mode(raw, &file, m)?;
        let t = Timespec {
            tv_sec: m.mtime.min(i64::MAX as u64) as i64,
            tv_nsec: 0,
        };
        let times = Timestamps {
            last_access: t,
            last_modification: t,
        };
        futimens(&file, &times).map_err(|e| self.io(raw)(e.into()))
    }

    fn symlink(&self, raw: &Path, p: &Place, target: &Path, m: &Meta) -> Result<(), UnpackError> {
        self.clear(raw, p, false)?;
        // The target is stored as written: it is resolved inside the sandbox, never here.
        symlinkat(target, &p.dir, &p.name).map_err(|e| self.io(raw)(e.into()))?;
        if self.chown {
            let (uid, gid) = ids(m).map_err(self.io(raw))?;
            chownat(
                &p.dir,
                &p.name,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.io(raw)(e.into()))?;
        }
        Ok(())
    }

    /// A hard link to an earlier entry, whose path must not go through a link either.
    fn hardlink(
        &self,
        raw: &Path,
        rel: &Path,
        p: &Place,
        target: &Path,
    ) -> Result<(), UnpackError> {
        let escape = || {
            self.refused(
                raw,
                format!("links to {target:?}, outside the root filesystem"),
            )
        };
        let to = clean_path(target).ok_or_else(escape)?;
        let to_name = to.file_name().ok_or_else(escape)?;
        let to_dir = match walk(self.root, to.parent().unwrap_or(Path::new("")), false) {
            Ok(Some(dir)) => dir,
            Ok(None) => {
                return Err(self.refused(raw, format!("links to {target:?}, which is not there")))
            }
            Err(WalkError::Symlink(link)) => {
                return Err(self.refused(
                    raw,
                    format!("links to {target:?} through the symlink {link:?}"),
                ))
            }
            Err(e) => return Err(self.walk_err(raw, e)),
        };
        match beneath::kind_at(to_dir.as_fd(), to_name).map_err(self.io(raw))? {
            None => {
                return Err(self.refused(raw, format!("links to {target:?}, which is not there")))
            }
            Some(FileType::Directory) => {
                return Err(self.refused(raw, format!("links to the directory {target:?}")))
            }
            Some(_) => {}
        }
        if to == rel {
            return Ok(());
        }
        self.clear(raw, p, false)?;
        linkat(&to_dir, to_name, &p.dir, &p.name, AtFlags::empty())
            .map_err(|e| self.io(raw)(e.into()))
    }

    fn owner_mode(&self, raw: &Path, fd: &impl AsFd, m: &Meta) -> Result<(), UnpackError> {
        if self.chown {
            let (uid, gid) = ids(m).map_err(self.io(raw))?;
            // Before the mode: chown clears setuid and setgid bits.
            fchown(fd, Some(uid), Some(gid)).map_err(|e| self.io(raw)(e.into()))?;
        }
        fchmod(fd, Mode::from_raw_mode(m.mode)).map_err(|e| self.io(raw)(e.into()))
    }
}

struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

fn ids(m: &Meta) -> io::Result<(Uid, Gid)> {
    let too_big = |what| io::Error::new(io::ErrorKind::InvalidData, format!("{what} too large"));
    let id = |v: u64| u32::try_from(v).ok().filter(|v| *v != u32::MAX);
    let uid = id(m.uid).ok_or_else(|| too_big("uid"))?;
    let gid = id(m.gid).ok_or_else(|| too_big("gid"))?;
    Ok((Uid::from_raw(uid), Gid::from_raw(gid)))
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
