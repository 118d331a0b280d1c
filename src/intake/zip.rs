//! Zip extraction, streaming: the central directory is vetted (EOCD, names, duplicates,
//! nesting, symlink targets) before anything is written, then every entry is
//! decompressed straight into its file under the budget. The zip root is the app root:
//! a single top-level directory is kept as is, as `cf push` does.

use super::limits::{Budget, Limits};
use super::names::entry_path;
use super::out::{dir_mode, file_mode, Output};
use super::{cdir, IntakeError, IntakeStats};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use zip::{System, ZipArchive};

/// Longest symlink target read from an entry (Linux's `PATH_MAX`).
pub const MAX_LINK_TARGET: usize = 4096;

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;

enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

struct Entry {
    index: usize,
    name: String,
    rel: PathBuf,
    kind: Kind,
    mode: Option<u32>,
}

type Archive = ZipArchive<BufReader<File>>;

/// Extracts the zip file `zip` into the empty directory `dest`.
///
/// Refuses (see [`IntakeError`]) unsafe names, duplicates, entries nested under a file or
/// symlink, symlinks that are absolute or resolve outside the app, corrupt or unsupported
/// data, and anything over `limits`. Budgets count what is actually decompressed, and
/// writing stops at the first byte over. On error `dest` may hold a partial app: the
/// caller removes it; nothing is ever written outside `dest`.
pub fn extract_zip(zip: &Path, dest: &Path, limits: &Limits) -> Result<IntakeStats, IntakeError> {
    let mut file = File::open(zip).map_err(|e| IntakeError::io(zip, e))?;
    let size = file.metadata().map_err(|e| IntakeError::io(zip, e))?.len();
    cdir::precheck(zip, &mut file, limits)?;
    let path = zip.display().to_string();
    let reader = file.try_clone().map_err(|e| IntakeError::io(zip, e))?;
    let mut archive = ZipArchive::new(BufReader::new(reader)).map_err(|e| IntakeError::Zip {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if archive.has_duplicate_names() {
        let start = archive.central_directory_start();
        let dup = cdir::find_duplicate(&mut file, start, limits.max_files.saturating_add(1))
            .map_err(|e| IntakeError::io(zip, e))?;
        return Err(IntakeError::Duplicate {
            path,
            entry: dup.unwrap_or_else(|| "(unknown)".into()),
        });
    }
    let mut out = Output::new(dest, zip, Budget::new(limits, zip, Some(size)))?;
    let entries = plan(&mut archive, &mut out, &path)?;
    for e in &entries {
        let corrupt = |detail: String| IntakeError::Corrupt {
            path: path.clone(),
            entry: e.name.clone(),
            detail,
        };
        match &e.kind {
            Kind::Dir => out.dir(&e.rel, dir_mode(e.mode))?,
            Kind::Symlink(target) => out.symlink(&e.rel, target),
            Kind::File => {
                let mut src = archive
                    .by_index(e.index)
                    .map_err(|z| corrupt(z.to_string()))?;
                out.file(&e.rel, file_mode(e.mode), &mut src, &|io| {
                    corrupt(io.to_string())
                })?;
            }
        }
    }
    out.finish()
}

/// Reads the central directory into a checked list of entries (symlink targets included,
/// charged to the budget), before anything is written.
fn plan(archive: &mut Archive, out: &mut Output, path: &str) -> Result<Vec<Entry>, IntakeError> {
    let mut entries = Vec::with_capacity(archive.len());
    let mut kinds: HashMap<PathBuf, &'static str> = HashMap::new();
    for index in 0..archive.len() {
        out.budget.entry()?;
        let meta = archive.by_index_data(index).map_err(|e| IntakeError::Zip {
            path: path.into(),
            detail: e.to_string(),
        })?;
        let name = String::from_utf8_lossy(meta.name_raw()).into_owned();
        let name = meta.name().map(|n| n.into_owned()).unwrap_or(name);
        let unsafe_path = |reason| IntakeError::UnsafePath {
            path: path.into(),
            entry: name.clone(),
            reason,
        };
        let rel = entry_path(&name, meta.enclosed_name().as_deref()).map_err(unsafe_path)?;
        let mode = meta.unix_mode().filter(|_| meta.system() == System::Unix);
        let is_dir = meta.is_dir() || mode.is_some_and(|m| m & S_IFMT == S_IFDIR);
        let is_link = !is_dir && meta.is_symlink();
        if rel.as_os_str().is_empty() {
            if is_dir {
                continue;
            }
            return Err(unsafe_path("names the app root"));
        }
        let kind = match (is_dir, is_link) {
            (true, _) => "directory",
            (_, true) => "symlink",
            _ => "file",
        };
        if kinds.insert(rel.clone(), kind).is_some() {
            return Err(IntakeError::Duplicate {
                path: path.into(),
                entry: name,
            });
        }
        let kind = match kind {
            "directory" => Kind::Dir,
            "symlink" => Kind::Symlink(read_target(archive, index, out, path, &name)?),
            _ => Kind::File,
        };
        entries.push(Entry {
            index,
            name,
            rel,
            kind,
            mode,
        });
    }
    // Nothing may live under a file or a symlink of the archive.
    for e in &entries {
        for up in e.rel.ancestors().skip(1) {
            if let Some(&kind @ ("file" | "symlink")) = kinds.get(up) {
                return Err(IntakeError::Conflict {
                    path: path.into(),
                    entry: e.name.clone(),
                    parent: up.display().to_string(),
                    kind,
                });
            }
        }
    }
    Ok(entries)
}

/// A symlink entry's content: its target, at most [`MAX_LINK_TARGET`] bytes.
fn read_target(
    archive: &mut Archive,
    index: usize,
    out: &mut Output,
    path: &str,
    name: &str,
) -> Result<PathBuf, IntakeError> {
    let corrupt = |detail: String| IntakeError::Corrupt {
        path: path.into(),
        entry: name.into(),
        detail,
    };
    let mut src = archive
        .by_index(index)
        .map_err(|e| corrupt(e.to_string()))?;
    let mut target = Vec::new();
    (&mut src)
        .take(MAX_LINK_TARGET as u64 + 1)
        .read_to_end(&mut target)
        .map_err(|e| corrupt(e.to_string()))?;
    if target.len() > MAX_LINK_TARGET {
        return Err(corrupt(format!(
            "symlink target longer than {MAX_LINK_TARGET} bytes"
        )));
    }
    out.budget.bytes(target.len() as u64)?;
    Ok(PathBuf::from(OsString::from_vec(target)))
}
