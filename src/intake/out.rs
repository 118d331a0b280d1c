//! Writing the app into `dest`, the one place that touches the destination.
//!
//! Safety by construction: every path is `dest` joined with normal components only;
//! files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` (nothing existing is overwritten or
//! followed); symlinks are created last, after being checked against all the others, so
//! no file or directory is ever written through one. Directory modes are applied at the
//! end (before the symlinks exist), so a read-only directory does not block its children.

use super::limits::Budget;
use super::links::check_symlink;
use super::{IntakeError, IntakeStats};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

const CHUNK: usize = 64 * 1024;

thread_local! {
    /// Each thread's copy buffer, kept from file to file.
    static BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; CHUNK].into_boxed_slice());
}

/// Permission bits for a file: the given bits without setuid/setgid/sticky, plus owner
/// read so later stages can always read the app (0o644 when unknown).
pub(crate) fn file_mode(mode: Option<u32>) -> u32 {
    mode.map_or(0o644, |m| m & 0o777) | 0o400
}

/// Permission bits for a directory: as given plus owner rwx, so the tree can always be
/// walked and removed (0o755 when unknown).
pub(crate) fn dir_mode(mode: Option<u32>) -> u32 {
    mode.map_or(0o755, |m| m & 0o777) | 0o700
}

/// The destination being filled, with the budget charged for what is written. Shared by the
/// threads of an intake: files are written at once; directories and symlinks are recorded
/// under a lock.
pub(crate) struct Output<'a> {
    dest: &'a Path,
    input: String,
    pub(crate) budget: Budget,
    stats: IntakeStats,
    files: AtomicU64,
    bytes: AtomicU64,
    dir_modes: Mutex<Vec<(PathBuf, u32)>>,
    links: Mutex<Vec<(PathBuf, PathBuf)>>,
}

impl<'a> Output<'a> {
    /// Starts writing into `dest`, which must be an empty directory.
    pub(crate) fn new(dest: &'a Path, input: &Path, budget: Budget) -> Result<Self, IntakeError> {
        let mut entries = fs::read_dir(dest).map_err(|e| IntakeError::io(dest, e))?;
        if entries.next().is_some() {
            return Err(IntakeError::DestNotEmpty {
                path: dest.display().to_string(),
            });
        }
        Ok(Output {
            dest,
            input: input.display().to_string(),
            budget,
            stats: IntakeStats::default(),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dir_modes: Mutex::default(),
            links: Mutex::default(),
        })
    }

    fn mkdirs(&self, rel: &Path) -> Result<PathBuf, IntakeError> {
        let path = self.dest.join(rel);
        fs::create_dir_all(&path).map_err(|e| IntakeError::io(&path, e))?;
        Ok(path)
    }

    /// Creates directory `rel` (and its parents); `mode` is applied at [`Output::finish`].
    pub(crate) fn dir(&self, rel: &Path, mode: u32) -> Result<(), IntakeError> {
        self.mkdirs(rel)?;
        let mut modes = self
            .dir_modes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        modes.push((rel.to_path_buf(), mode));
        Ok(())
    }

    /// Creates file `rel` with the content of `src`, charging every chunk to the budget
    /// before writing it. Read errors go through `on_read` (to name the entry).
    pub(crate) fn file(
        &self,
        rel: &Path,
        mode: u32,
        src: &mut dyn Read,
        on_read: &dyn Fn(io::Error) -> IntakeError,
    ) -> Result<(), IntakeError> {
        let path = self.dest.join(rel);
        let io_err = |e| IntakeError::io(&path, e);
        let create = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .mode(0o600)
                .open(&path)
        };
        let mut out = match (create(), rel.parent()) {
            // A parent the source does not list as a directory (made only when missing:
            // most are there already).
            (Err(e), Some(parent)) if e.kind() == io::ErrorKind::NotFound => {
                self.mkdirs(parent)?;
                create()
            }
            (opened, _) => opened,
        }
        .map_err(io_err)?;
        BUF.with_borrow_mut(|buf| loop {
            let n = match src.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(on_read(e)),
            };
            self.budget.bytes(n as u64)?;
            out.write_all(&buf[..n]).map_err(io_err)?;
            self.bytes.fetch_add(n as u64, Relaxed);
        })?;
        out.set_permissions(Permissions::from_mode(mode))
            .map_err(io_err)?;
        self.files.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Removes file `rel`, if it exists, after its writing was abandoned (best effort: the
    /// caller removes `dest` on failure anyway). Never follows a symlink: none exist yet.
    pub(crate) fn discard(&self, rel: &Path) {
        let _ = fs::remove_file(self.dest.join(rel));
    }

    /// Records symlink `rel -> target`, created at [`Output::finish`] once checked.
    pub(crate) fn symlink(&self, rel: &Path, target: &Path) {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        links.push((rel.to_path_buf(), target.to_path_buf()));
    }

    /// Applies directory modes, then checks and creates the symlinks; returns the stats.
    pub(crate) fn finish(mut self) -> Result<IntakeStats, IntakeError> {
        self.stats.files = *self.files.get_mut();
        self.stats.bytes = *self.bytes.get_mut();
        let dir_modes = self
            .dir_modes
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        self.stats.dirs = dir_modes.len() as u64;
        let dir_modes = std::mem::take(dir_modes);
        let links = std::mem::take(self.links.get_mut().unwrap_or_else(PoisonError::into_inner));
        // Before any symlink exists, so chmod cannot follow one. Owner rwx is always set,
        // so no mode blocks a later step.
        for (rel, mode) in &dir_modes {
            let path = self.dest.join(rel);
            fs::set_permissions(&path, Permissions::from_mode(*mode))
                .map_err(|e| IntakeError::io(&path, e))?;
        }
        let all: HashMap<PathBuf, PathBuf> = links.iter().cloned().collect();
        for (rel, target) in &links {
            let err = |reason| IntakeError::Symlink {
                path: self.input.clone(),
                entry: rel.display().to_string(),
                target: target.display().to_string(),
                reason,
            };
            check_symlink(rel, target, &all).map_err(err)?;
            if let Some(up) = rel.ancestors().skip(1).find(|a| all.contains_key(*a)) {
                return Err(IntakeError::Conflict {
                    path: self.input.clone(),
                    entry: rel.display().to_string(),
                    parent: up.display().to_string(),
                    kind: "symlink",
                });
            }
        }
        for (rel, target) in &links {
            if let Some(parent) = rel.parent() {
                self.mkdirs(parent)?;
            }
            let path = self.dest.join(rel);
            std::os::unix::fs::symlink(target, &path).map_err(|e| IntakeError::io(&path, e))?;
            self.stats.symlinks += 1;
        }
        Ok(self.stats)
    }
}
