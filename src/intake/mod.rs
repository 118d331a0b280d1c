//! Intake: untrusted app source (a zip file or a directory) -> a directory on disk.
//!
//! The source is hostile until proven otherwise. What comes out is a plain tree under
//! `dest` with only regular files, directories and symlinks that resolve inside it:
//!
//! - paths: only normal, relative components (`..`, absolute, NUL, `..\` refused);
//! - budgets ([`Limits`]): entries, bytes and zip expansion ratio, counted from what is
//!   actually written, never from headers, stopping at the first byte over;
//! - symlinks: relative and resolving inside the app, followed through each other
//!   ([`check_symlink`]), created only after every file and directory is written;
//! - modes: permission bits only (no setuid/setgid/sticky); owner read on files and
//!   owner rwx on directories are added so later stages can always read and clean up.
//!
//! On error `dest` may hold a partial app. Nothing is ever written outside it; the caller
//! (who made the work directory) removes it.
//!
//! Files: [`limits`] (budgets), [`zip`] and `cdir` (zips), [`dir`] (directories and
//! `.cfignore`), [`links`] (symlink resolution), `names` (entry names), `out` (the
//! only code writing into `dest`), `error`. Files are written by several threads:
//! `zip_workers` (with `pread`, a reader per thread) and `dir_workers`, their failures kept
//! by `failure` (the first entry's in the source's order).

mod cdir;
pub mod dir;
mod dir_workers;
mod error;
mod failure;
pub(crate) mod limits;
pub(crate) mod links;
pub mod manifest;
pub mod manifest_file;
mod names;
mod out;
mod pread;
pub(crate) mod zip;
mod zip_workers;

#[cfg(test)]
mod dir_tests;
#[cfg(test)]
mod testutil;
#[cfg(test)]
mod zip_budget_tests;
#[cfg(test)]
mod zip_tests;
#[cfg(test)]
mod zip_workers_tests;

pub use dir::copy_dir;
pub use error::IntakeError;
pub use limits::Limits;
pub use links::{check_symlink, SymlinkError};
pub use zip::extract_zip;

use std::path::Path;

/// What an intake wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntakeStats {
    /// Regular files written.
    pub files: u64,
    /// Directory entries of the source (implicit parents of zip entries not counted).
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Writes the app at `source` into `dest` (an existing, empty directory): a directory is
/// copied with [`copy_dir`], anything else is extracted as a zip with [`extract_zip`].
/// Symlinks to either are followed for `source` itself only.
pub fn intake(source: &Path, dest: &Path, limits: &Limits) -> Result<IntakeStats, IntakeError> {
    let meta = std::fs::metadata(source).map_err(|e| IntakeError::io(source, e))?;
    if meta.is_dir() {
        copy_dir(source, dest, limits)
    } else if meta.is_file() {
        extract_zip(source, dest, limits)
    } else {
        Err(IntakeError::NotAnApp {
            path: source.display().to_string(),
        })
    }
}
