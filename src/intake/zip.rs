//! Zip extraction, streaming: the central directory is read one entry at a time
//! (`zip::read::ZipIterable`, never an index of the whole archive) and vetted in two passes
//! (names, duplicates, symlink targets; then nesting) before anything is written; a third
//! pass makes the directories, then every file entry is decompressed straight into its file
//! under the budget, on several threads (`zip_workers`). Memory: each entry's app-relative
//! path, once, with its kind. The zip root is the app root: a single top-level directory is
//! kept as is, as `cf push` does.

use super::limits::{Budget, Limits};
use super::names::entry_path;
use super::out::{dir_mode, Output};
use super::pread::PosReader;
use super::zip_workers::{default_workers, extract_files};
use super::{cdir, IntakeError, IntakeStats};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use zip::read::{Config, ZipFileEntry, ZipReadOptions};
// `unstable`: the zip crate may reshape this API in a minor release (Cargo.lock pins 9.4.1).
use zip::unstable::read::ZipIterable;
use zip::System;

/// Longest symlink target read from an entry (Linux's `PATH_MAX`).
pub const MAX_LINK_TARGET: usize = 4096;

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File,
    Symlink,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::File => "file",
            Kind::Symlink => "symlink",
        }
    }
}

/// One entry of the central directory, checked.
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) rel: PathBuf,
    pub(super) kind: Kind,
    pub(super) mode: Option<u32>,
}

pub(super) type Archive<'f> = ZipIterable<PosReader<'f>>;

/// The zip `file` (`size` bytes, named `path`) ready for a pass over its central directory.
pub(super) fn open<'f>(file: &'f File, size: u64, path: &str) -> Result<Archive<'f>, IntakeError> {
    ZipIterable::try_new(PosReader::new(file, size), Config::default()).map_err(zip_error(path))
}

/// Every entry's path in the app, once, with its kind.
type Kinds = HashMap<Box<Path>, Kind>;

/// Extracts the zip file `zip` into the empty directory `dest`.
///
/// Refuses (see [`IntakeError`]) unsafe names, duplicates, entries nested under a file or
/// symlink, symlinks that are absolute or resolve outside the app, corrupt or unsupported
/// data, and anything over `limits`. Budgets count what is actually decompressed, and
/// writing stops at the first byte over. On error `dest` may hold a partial app: the
/// caller removes it; nothing is ever written outside `dest`.
pub fn extract_zip(zip: &Path, dest: &Path, limits: &Limits) -> Result<IntakeStats, IntakeError> {
    extract_zip_with(zip, dest, limits, default_workers())
}

/// [`extract_zip`] with file entries written by `workers` threads (at least one).
pub(crate) fn extract_zip_with(
    zip: &Path,
    dest: &Path,
    limits: &Limits,
    workers: usize,
) -> Result<IntakeStats, IntakeError> {
    let mut file = File::open(zip).map_err(|e| IntakeError::io(zip, e))?;
    let size = file.metadata().map_err(|e| IntakeError::io(zip, e))?.len();
    cdir::precheck(zip, &mut file, limits)?;
    let path = zip.display().to_string();
    let mut archive = open(&file, size, &path)?;
    let out = Output::new(dest, zip, Budget::new(limits, zip, Some(size)))?;
    let kinds = vet(&mut archive, &out, &path)?;
    check_nesting(&mut archive, &kinds, &path)?;
    let files = kinds.values().filter(|k| **k == Kind::File).count();
    drop(kinds);
    make_dirs(&mut archive, &out, &path)?;
    drop(archive);
    extract_files(&file, size, &path, &out, workers.clamp(1, files.max(1)))?;
    out.finish()
}

pub(super) fn zip_error(path: &str) -> impl Fn(zip::result::ZipError) -> IntakeError + '_ {
    move |e| IntakeError::Zip {
        path: path.into(),
        detail: e.to_string(),
    }
}

/// The entry as the app will have it; None for the app root itself (`./`).
pub(super) fn classify(meta: &ZipFileEntry, path: &str) -> Result<Option<Entry>, IntakeError> {
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
            return Ok(None);
        }
        return Err(unsafe_path("names the app root"));
    }
    let kind = match (is_dir, is_link) {
        (true, _) => Kind::Dir,
        (_, true) => Kind::Symlink,
        _ => Kind::File,
    };
    Ok(Some(Entry {
        name,
        rel,
        kind,
        mode,
    }))
}

/// First pass: every name checked, counted against the budget and seen once; symlink targets
/// read (charged to the budget) and recorded in `out`.
fn vet(archive: &mut Archive, out: &Output, path: &str) -> Result<Kinds, IntakeError> {
    let mut kinds = Kinds::with_capacity(archive.len());
    let files = archive.files().map_err(zip_error(path))?;
    while let Some(meta) = files.next() {
        let meta = meta.map_err(zip_error(path))?;
        out.budget.entry()?;
        let Some(e) = classify(&meta, path)? else {
            continue;
        };
        if kinds.contains_key(e.rel.as_path()) {
            return Err(IntakeError::Duplicate {
                path: path.into(),
                entry: e.name,
            });
        }
        if e.kind == Kind::Symlink {
            let target = read_target(meta, files.reader_mut(), out, path, &e.name)?;
            out.symlink(&e.rel, &target);
        }
        kinds.insert(e.rel.into_boxed_path(), e.kind);
    }
    Ok(kinds)
}

/// Second pass: nothing may live under a file or a symlink of the archive (the first entry
/// in the archive's order that does is named).
fn check_nesting(archive: &mut Archive, kinds: &Kinds, path: &str) -> Result<(), IntakeError> {
    let files = archive.files().map_err(zip_error(path))?;
    for meta in files {
        let Some(e) = classify(&meta.map_err(zip_error(path))?, path)? else {
            continue;
        };
        for up in e.rel.ancestors().skip(1) {
            if let Some(kind @ (Kind::File | Kind::Symlink)) = kinds.get(up) {
                return Err(IntakeError::Conflict {
                    path: path.into(),
                    entry: e.name,
                    parent: up.display().to_string(),
                    kind: kind.noun(),
                });
            }
        }
    }
    Ok(())
}

/// Third pass: the directories, in order (files follow, from `zip_workers`; symlinks come
/// at the end, from `out`).
fn make_dirs(archive: &mut Archive, out: &Output, path: &str) -> Result<(), IntakeError> {
    let files = archive.files().map_err(zip_error(path))?;
    for meta in files {
        if let Some(e) = classify(&meta.map_err(zip_error(path))?, path)? {
            if e.kind == Kind::Dir {
                out.dir(&e.rel, dir_mode(e.mode))?;
            }
        }
    }
    Ok(())
}

/// A symlink entry's content: its target, at most [`MAX_LINK_TARGET`] bytes.
fn read_target(
    meta: ZipFileEntry,
    reader: &mut PosReader,
    out: &Output,
    path: &str,
    name: &str,
) -> Result<PathBuf, IntakeError> {
    let corrupt = |detail: String| IntakeError::Corrupt {
        path: path.into(),
        entry: name.into(),
        detail,
    };
    let mut src = meta
        .with_reader(reader, ZipReadOptions::new())
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

/// What [`read_root_file`] found under the name asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum RootEntry {
    /// A regular file's content (at most the cap).
    File(Vec<u8>),
    /// Something else under that name: `"symlink"` or `"directory"`.
    NotAFile(&'static str),
    /// A regular file larger than the cap.
    TooLarge,
}

/// The entry `rel` of the zip's root (e.g. `manifest.yml`), read with the same checks as an
/// extraction (pre-check of the central directory, entry names, budget of entries), the file
/// at most `cap` bytes decompressed; `None` when there is no such entry. A name seen twice is
/// refused, as extraction refuses it.
pub fn read_root_file(
    zip: &Path,
    rel: &Path,
    cap: u64,
    limits: &Limits,
) -> Result<Option<RootEntry>, IntakeError> {
    let mut file = File::open(zip).map_err(|e| IntakeError::io(zip, e))?;
    let size = file.metadata().map_err(|e| IntakeError::io(zip, e))?.len();
    cdir::precheck(zip, &mut file, limits)?;
    let path = zip.display().to_string();
    let mut archive = open(&file, size, &path)?;
    let mut found = None;
    let files = archive.files().map_err(zip_error(&path))?;
    while let Some(meta) = files.next() {
        let meta = meta.map_err(zip_error(&path))?;
        let Some(e) = classify(&meta, &path)? else {
            continue;
        };
        if e.rel != rel {
            continue;
        }
        if found.is_some() {
            return Err(IntakeError::Duplicate {
                path,
                entry: e.name,
            });
        }
        found = Some(match e.kind {
            Kind::Dir => RootEntry::NotAFile("directory"),
            Kind::Symlink => RootEntry::NotAFile("symlink"),
            Kind::File => {
                let mut src = meta
                    .with_reader(files.reader_mut(), ZipReadOptions::new())
                    .map_err(zip_error(&path))?;
                let mut out = Vec::new();
                (&mut src)
                    .take(cap + 1)
                    .read_to_end(&mut out)
                    .map_err(|io| IntakeError::Corrupt {
                        path: path.clone(),
                        entry: e.name.clone(),
                        detail: io.to_string(),
                    })?;
                if out.len() as u64 > cap {
                    RootEntry::TooLarge
                } else {
                    RootEntry::File(out)
                }
            }
        });
    }
    Ok(found)
}
