//! Everything that can go wrong while taking in an app. Every message starts with the input
//! (the zip or directory the user gave) and names the entry at fault when there is one.

use super::links::SymlinkError;
use std::path::Path;

/// Why an app source was refused or could not be written.
///
/// On any error the destination directory may hold a partial app: the caller owns it and
/// removes it (nothing is ever written outside it).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{path}: truncated or not a zip file ({reason})")]
    NotAZip { path: String, reason: String },
    #[error("{path}: central directory of {size} bytes is larger than the {limit} bytes allowed")]
    CentralDirectoryTooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: more than {limit} entries (limit --max-app-files / DROPSHIP_MAX_APP_FILES)")]
    TooManyFiles { path: String, limit: u64 },
    #[error(
        "{path}: more than {limit} bytes uncompressed (limit --max-app-size / DROPSHIP_MAX_APP_SIZE)"
    )]
    TooLarge { path: String, limit: u64 },
    #[error(
        "{path}: expands to more than {limit} times its {zip_size} bytes ({bytes} bytes so far), \
         likely a zip bomb (limit --max-zip-ratio / DROPSHIP_MAX_ZIP_RATIO)"
    )]
    Ratio {
        path: String,
        limit: u64,
        zip_size: u64,
        bytes: u64,
    },
    #[error("{path}: entry {entry:?}: unsafe path: {reason}")]
    UnsafePath {
        path: String,
        entry: String,
        reason: &'static str,
    },
    #[error("{path}: entry {entry:?} appears more than once")]
    Duplicate { path: String, entry: String },
    #[error("{path}: entry {entry:?} is inside {parent:?}, which is a {kind} in the same archive")]
    Conflict {
        path: String,
        entry: String,
        parent: String,
        kind: &'static str,
    },
    #[error("{path}: symlink {entry:?} -> {target:?}: {reason}")]
    Symlink {
        path: String,
        entry: String,
        target: String,
        reason: SymlinkError,
    },
    #[error("{path}: entry {entry:?}: corrupt or unsupported data: {detail}")]
    Corrupt {
        path: String,
        entry: String,
        detail: String,
    },
    #[error("{path}: cannot read zip: {detail}")]
    Zip { path: String, detail: String },
    #[error("{path}: bad .cfignore: {detail}")]
    CfIgnore { path: String, detail: String },
    #[error("{path}: neither a directory nor a zip file")]
    NotAnApp { path: String },
    #[error("{path}: destination must be an empty directory")]
    DestNotEmpty { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl IntakeError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        IntakeError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
