//! Directory copy with the cf CLI's ignore rules.
//!
//! Ignore rules, as `cf push` applies them (cloudfoundry/cli,
//! `actor/sharedaction/resource.go`): the root's `.cfignore` (gitignore syntax) plus
//! [`DEFAULT_IGNORES`], the defaults added after the file so a `!pattern` in `.cfignore`
//! cannot bring them back. The CLI's patterns have no slash, so they match at any depth,
//! `manifest.yml` and `manifest.yaml` included; we do the same (an app relying on a nested
//! `manifest.yml` would not work on Cloud Foundry either). An ignored directory is not
//! descended into, so, as in git, nothing below it can be re-included.

use super::dir_workers::copy_entries;
use super::limits::{Budget, Limits};
use super::out::{dir_mode, file_mode, Output};
use super::zip_workers::default_workers;
use super::{IntakeError, IntakeStats};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use walkdir::{DirEntry, WalkDir};

/// Always ignored, at any depth, after the root's `.cfignore` (the cf CLI's list).
pub const DEFAULT_IGNORES: &[&str] = &[
    ".cfignore",
    ".DS_Store",
    ".git",
    ".gitignore",
    ".hg",
    ".svn",
    "_darcs",
    "manifest.yaml",
    "manifest.yml",
];

/// Copies directory `src` into the empty directory `dest`, honouring `.cfignore` and
/// [`DEFAULT_IGNORES`].
///
/// Regular files keep their permission bits (without setuid/setgid/sticky), directories are
/// recreated, symlinks are recreated with the same target after checking that it is
/// relative and resolves inside the app. Sockets, FIFOs and devices are skipped. Symlinks
/// are never followed (the source root itself may be one). `max_files` and `max_bytes`
/// apply; the ratio limit does not. If `dest` lies inside `src` it is skipped. On error
/// `dest` may hold a partial app: the caller removes it.
pub fn copy_dir(src: &Path, dest: &Path, limits: &Limits) -> Result<IntakeStats, IntakeError> {
    copy_dir_with(src, dest, limits, default_workers())
}

/// [`copy_dir`] with files copied by `workers` threads (at least one; see `dir_workers`).
pub(crate) fn copy_dir_with(
    src: &Path,
    dest: &Path,
    limits: &Limits,
    workers: usize,
) -> Result<IntakeStats, IntakeError> {
    let out = Output::new(dest, src, Budget::new(limits, src, None))?;
    let dest_meta = fs::metadata(dest).map_err(|e| IntakeError::io(dest, e))?;
    let entries = walk(src, Some((dest_meta.dev(), dest_meta.ino())))?;
    copy_entries(entries, &out, workers)?;
    out.finish()
}

/// What kind of entry an [`AppEntry`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEntryKind {
    /// A regular file of `size` bytes (when listed).
    File {
        size: u64,
    },
    Dir,
    /// A symlink, not followed; its target is checked by whoever receives the app.
    Symlink {
        target: PathBuf,
    },
}

/// One entry of a directory app as [`copy_dir`] would take it (see [`list_dir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEntry {
    /// Relative to the app's root; normal components only.
    pub path: PathBuf,
    /// Permission bits as [`copy_dir`] would write them (setuid/setgid/sticky dropped, owner
    /// read on files, owner rwx on directories); 0o777 for symlinks.
    pub mode: u32,
    pub kind: AppEntryKind,
}

/// Lists what [`copy_dir`] would copy from `src` (same `.cfignore` and default ignores, same
/// order, sockets/FIFOs/devices left out) without copying anything: e.g. for `dropship push`
/// to hash and upload a directory the way `cf push` does. No limits apply.
pub fn list_dir(src: &Path) -> Result<Vec<AppEntry>, IntakeError> {
    let mut list = Vec::new();
    for entry in walk(src, None)? {
        let (entry, path) = entry?;
        let io_err = |e: io::Error| IntakeError::io(entry.path(), e);
        let ft = entry.file_type();
        let meta = || entry.metadata().map_err(|e| io_err(e.into()));
        let (mode, kind) = if ft.is_dir() {
            (dir_mode(Some(meta()?.mode())), AppEntryKind::Dir)
        } else if ft.is_file() {
            let m = meta()?;
            (
                file_mode(Some(m.mode())),
                AppEntryKind::File { size: m.len() },
            )
        } else if ft.is_symlink() {
            let target = fs::read_link(entry.path()).map_err(io_err)?;
            (0o777, AppEntryKind::Symlink { target })
        } else {
            continue;
        };
        list.push(AppEntry { path, mode, kind });
    }
    Ok(list)
}

/// Opens a regular file of the app for reading, with its metadata. If it was swapped since
/// the walk: fails on a symlink, doesn't block on a FIFO.
pub fn open_file(path: &Path) -> Result<(fs::File, fs::Metadata), IntakeError> {
    let io_err = |e| IntakeError::io(path, e);
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err)?;
    let meta = f.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(io_err(io::Error::other("changed while being copied")));
    }
    Ok((f, meta))
}

/// The entries of `src` below its root that the ignore rules keep, sorted by name, with
/// their paths relative to `src`; symlinks are not followed. `skip` (device, inode) is a
/// directory left out (the destination, when it lies inside `src`).
fn walk(
    src: &Path,
    skip: Option<(u64, u64)>,
) -> Result<impl Iterator<Item = Result<(DirEntry, PathBuf), IntakeError>> + '_, IntakeError> {
    let ignore = cf_ignore(src)?;
    let keep = move |e: &DirEntry| {
        if e.depth() == 0 {
            return true;
        }
        let rel = e.path().strip_prefix(src).unwrap_or(e.path());
        let is_dir = e.file_type().is_dir();
        if ignore.matched(rel, is_dir).is_ignore() {
            return false;
        }
        !(is_dir
            && skip.is_some_and(|(dev, ino)| {
                e.metadata().is_ok_and(|m| m.ino() == ino && m.dev() == dev)
            }))
    };
    let walk = WalkDir::new(src).follow_links(false).sort_by_file_name();
    Ok(walk
        .into_iter()
        .filter_entry(keep)
        .filter(|e| !matches!(e, Ok(e) if e.depth() == 0))
        .map(move |entry| {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(src).to_path_buf();
                IntakeError::io(&path, e.into())
            })?;
            let rel = entry
                .path()
                .strip_prefix(src)
                .expect("walkdir yields paths under its root")
                .to_path_buf();
            Ok((entry, rel))
        }))
}

/// The matcher for `src`: its `.cfignore` (if a regular file) then the defaults.
fn cf_ignore(src: &Path) -> Result<Gitignore, IntakeError> {
    let mut b = GitignoreBuilder::new(src);
    let file = src.join(".cfignore");
    let bad = |detail: String| IntakeError::CfIgnore {
        path: file.display().to_string(),
        detail,
    };
    if fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
        if let Some(e) = b.add(&file) {
            return Err(bad(e.to_string()));
        }
    }
    for line in DEFAULT_IGNORES {
        b.add_line(None, line).map_err(|e| bad(e.to_string()))?;
    }
    b.build().map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod list_tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn lists_what_copy_dir_copies() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("app");
        for (p, content) in [
            (".cfignore", "*.log\n"),
            ("index.html", "hi"),
            ("debug.log", "x"),
            ("lib/run.sh", "#!/bin/sh\n"),
            (".git/HEAD", "x"),
            ("manifest.yml", "x"),
        ] {
            let p = src.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
        fs::create_dir(src.join("empty")).unwrap();
        fs::set_permissions(src.join("lib/run.sh"), fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("lib/run.sh", src.join("run")).unwrap();
        let fifo = std::ffi::CString::new(src.join("fifo").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let list = list_dir(&src).unwrap();
        let seen: Vec<(String, u32, AppEntryKind)> = list
            .into_iter()
            .map(|e| (e.path.display().to_string(), e.mode, e.kind))
            .collect();
        let file = |size| AppEntryKind::File { size };
        assert_eq!(
            seen,
            [
                ("empty".to_string(), 0o755, AppEntryKind::Dir),
                ("index.html".to_string(), 0o644, file(2)),
                ("lib".to_string(), 0o755, AppEntryKind::Dir),
                ("lib/run.sh".to_string(), 0o755, file(10)),
                (
                    "run".to_string(),
                    0o777,
                    AppEntryKind::Symlink {
                        target: "lib/run.sh".into()
                    }
                ),
            ]
        );
        // copy_dir takes exactly the same entries.
        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let stats = copy_dir(&src, &dest, &Limits::default()).unwrap();
        assert_eq!((stats.files, stats.dirs, stats.symlinks), (2, 2, 1));
    }
}
