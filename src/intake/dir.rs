//! Directory copy with the cf CLI's ignore rules.
//!
//! Ignore rules, as `cf push` applies them (cloudfoundry/cli,
//! `actor/sharedaction/resource.go`): the root's `.cfignore` (gitignore syntax) plus
//! [`DEFAULT_IGNORES`], the defaults added after the file so a `!pattern` in `.cfignore`
//! cannot bring them back. The CLI's patterns have no slash, so they match at any depth,
//! `manifest.yml` and `manifest.yaml` included; we do the same (an app relying on a nested
//! `manifest.yml` would not work on Cloud Foundry either). An ignored directory is not
//! descended into, so, as in git, nothing below it can be re-included.

use super::limits::{Budget, Limits};
use super::out::{dir_mode, file_mode, Output};
use super::{IntakeError, IntakeStats};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
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
    let mut out = Output::new(dest, src, Budget::new(limits, src, None))?;
    let ignore = cf_ignore(src)?;
    let dest_meta = fs::metadata(dest).map_err(|e| IntakeError::io(dest, e))?;
    let keep = |e: &DirEntry| {
        if e.depth() == 0 {
            return true;
        }
        let rel = e.path().strip_prefix(src).unwrap_or(e.path());
        let is_dir = e.file_type().is_dir();
        if ignore.matched(rel, is_dir).is_ignore() {
            return false;
        }
        !(is_dir
            && e.metadata()
                .is_ok_and(|m| m.ino() == dest_meta.ino() && m.dev() == dest_meta.dev()))
    };
    let walk = WalkDir::new(src).follow_links(false).sort_by_file_name();
    for entry in walk.into_iter().filter_entry(keep) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(src).to_path_buf();
            IntakeError::io(&path, e.into())
        })?;
        if entry.depth() == 0 {
            continue;
        }
        let path = entry.path();
        let rel = path
            .strip_prefix(src)
            .expect("walkdir yields paths under its root");
        let io_err = |e| IntakeError::io(path, e);
        let ft = entry.file_type();
        if ft.is_dir() {
            out.budget.entry()?;
            let mode = entry.metadata().map_err(|e| io_err(e.into()))?.mode();
            out.dir(rel, dir_mode(Some(mode)))?;
        } else if ft.is_file() {
            out.budget.entry()?;
            // If it was swapped since the walk: fail on a symlink, don't block on a FIFO.
            let mut f = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(path)
                .map_err(io_err)?;
            let meta = f.metadata().map_err(io_err)?;
            if !meta.is_file() {
                return Err(io_err(io::Error::other("changed while being copied")));
            }
            let mode = meta.mode();
            out.file(rel, file_mode(Some(mode)), &mut f, &io_err)?;
        } else if ft.is_symlink() {
            out.budget.entry()?;
            let target = fs::read_link(path).map_err(io_err)?;
            out.symlink(rel, &target);
        }
        // Sockets, FIFOs and devices: skipped.
    }
    out.finish()
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
