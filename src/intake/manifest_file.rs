//! Finding the app manifest at the root of an app source without trusting it: in a directory
//! it is opened beneath the source's fd with no symbolic link followed (a symlinked manifest
//! is refused, it could point anywhere on the host); in a zip it is read from its entry with
//! the intake's checks. At most [`MAX_MANIFEST_BYTES`] either way.

use super::manifest::{parse_all, AppManifest, ManifestError, FILE_NAMES, MAX_MANIFEST_BYTES};
use super::zip::{read_root_file, RootEntry};
use super::Limits;
use crate::safefs::{self, SafeError};
use rustix::fs::{Mode, OFlags};
use std::path::Path;

/// A manifest found in an app source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// `manifest.yml` or `manifest.yaml`.
    pub name: &'static str,
    /// Its first application.
    pub manifest: AppManifest,
    /// The others, in order (`dropship push` pushes them all; `build` says it builds the first).
    pub rest: Vec<AppManifest>,
}

/// The parsed manifest of the app at `source` (a directory or a zip), `None` when it has
/// none. `manifest.yml` wins over `manifest.yaml` (a warning says the other is ignored).
/// Errors start with the file's name.
pub fn read(source: &Path, limits: &Limits) -> Result<Option<ManifestFile>, ManifestError> {
    let meta = std::fs::metadata(source)
        .map_err(|e| ManifestError::Refused(format!("{}: {e}", source.display())))?;
    let mut found = Vec::new();
    for name in FILE_NAMES {
        let bytes = if meta.is_dir() {
            from_dir(source, name)?
        } else {
            from_zip(source, name, limits)?
        };
        if let Some(b) = bytes {
            found.push((name, b));
        }
    }
    let mut found = found.into_iter();
    let Some((name, bytes)) = found.next() else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| ManifestError::Refused(format!("{name}: not UTF-8 text")))?;
    let apps = parse_all(&text).map_err(|e| match e {
        ManifestError::Refused(r) => ManifestError::Refused(format!("{name}: {r}")),
        other => ManifestError::Refused(format!("{name}: {other}")),
    })?;
    let mut apps = apps.into_iter();
    let mut manifest = apps.next().unwrap_or_default();
    if let Some((other, _)) = found.next() {
        manifest
            .warnings
            .push(format!("{other}: ignored, {name} is read"));
    }
    let rest = apps.collect();
    Ok(Some(ManifestFile {
        name,
        manifest,
        rest,
    }))
}

fn refused(name: &str, why: impl std::fmt::Display) -> ManifestError {
    ManifestError::Refused(format!("{name}: {why}"))
}

/// The file `name` at the root of the directory `source`, never through a symbolic link.
fn from_dir(source: &Path, name: &str) -> Result<Option<Vec<u8>>, ManifestError> {
    // The source itself may be a symlink (as for the intake); what is inside may not.
    let dir = rustix::fs::open(
        source,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| refused(&source.display().to_string(), std::io::Error::from(e)))?;
    use std::os::fd::AsFd;
    safefs::read_capped(dir.as_fd(), Path::new(name), MAX_MANIFEST_BYTES).map_err(|e| match e {
        SafeError::Link(_) => refused(
            name,
            "is a symbolic link: refused (the manifest is read only from the app itself)",
        ),
        SafeError::TooLarge(_, cap) => refused(name, format!("larger than {cap} bytes: refused")),
        SafeError::WrongType(..) => refused(name, "not a regular file: refused"),
        SafeError::Io(_, e) => refused(name, e),
    })
}

/// The entry `name` at the root of the zip `source`.
fn from_zip(source: &Path, name: &str, limits: &Limits) -> Result<Option<Vec<u8>>, ManifestError> {
    let entry = read_root_file(source, Path::new(name), MAX_MANIFEST_BYTES, limits)
        .map_err(|e| ManifestError::Zip(e.to_string()))?;
    match entry {
        None => Ok(None),
        Some(RootEntry::File(b)) => Ok(Some(b)),
        Some(RootEntry::NotAFile(kind)) => Err(refused(
            name,
            format!("is a {kind} in the zip, not a file: refused"),
        )),
        Some(RootEntry::TooLarge) => Err(refused(
            name,
            format!("larger than {MAX_MANIFEST_BYTES} bytes: refused"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_with(entries: &[(&str, Option<&str>)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut w = ::zip::ZipWriter::new(f.reopen().unwrap());
        let opts = ::zip::write::SimpleFileOptions::default();
        for (name, content) in entries {
            match content {
                Some(c) => {
                    w.start_file(*name, opts).unwrap();
                    w.write_all(c.as_bytes()).unwrap();
                }
                None => w.add_symlink(*name, "/etc/passwd", opts).unwrap(),
            }
        }
        w.finish().unwrap();
        f
    }

    const APP: &str = "applications: [{name: from-manifest}]\n";

    #[test]
    fn reads_a_directory_manifest_and_refuses_links() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path(), &Limits::default()).unwrap(), None);
        std::fs::write(d.path().join("manifest.yaml"), APP).unwrap();
        let m = read(d.path(), &Limits::default()).unwrap().unwrap();
        assert_eq!(m.name, "manifest.yaml");
        assert_eq!(m.manifest.name.as_deref(), Some("from-manifest"));
        std::fs::write(d.path().join("manifest.yml"), "applications: [{name: yml}]").unwrap();
        let m = read(d.path(), &Limits::default()).unwrap().unwrap();
        assert_eq!(
            (m.name, m.manifest.name.as_deref()),
            ("manifest.yml", Some("yml"))
        );
        assert_eq!(
            m.manifest.warnings,
            ["manifest.yaml: ignored, manifest.yml is read"]
        );
        std::fs::remove_file(d.path().join("manifest.yml")).unwrap();
        std::os::unix::fs::symlink("manifest.yaml", d.path().join("manifest.yml")).unwrap();
        let e = read(d.path(), &Limits::default()).unwrap_err().to_string();
        assert!(e.starts_with("manifest.yml: is a symbolic link"), "{e}");
        std::fs::remove_file(d.path().join("manifest.yml")).unwrap();
        std::fs::write(
            d.path().join("manifest.yml"),
            "x".repeat(MAX_MANIFEST_BYTES as usize + 1),
        )
        .unwrap();
        let e = read(d.path(), &Limits::default()).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        std::fs::write(d.path().join("manifest.yml"), "applications: [{memory: x}]").unwrap();
        let e = read(d.path(), &Limits::default()).unwrap_err().to_string();
        assert!(e.starts_with("manifest.yml: memory: "), "{e}");
    }

    #[test]
    fn reads_a_zip_manifest_within_limits() {
        let z = zip_with(&[("index.html", Some("hi")), ("manifest.yml", Some(APP))]);
        let m = read(z.path(), &Limits::default()).unwrap().unwrap();
        assert_eq!(m.manifest.name.as_deref(), Some("from-manifest"));
        let z = zip_with(&[("index.html", Some("hi")), ("sub/manifest.yml", Some(APP))]);
        assert_eq!(read(z.path(), &Limits::default()).unwrap(), None);
        let z = zip_with(&[("manifest.yml", None)]);
        let e = read(z.path(), &Limits::default()).unwrap_err().to_string();
        assert!(e.contains("symlink in the zip"), "{e}");
        let big = "#".repeat(MAX_MANIFEST_BYTES as usize + 10);
        let z = zip_with(&[("manifest.yml", Some(&big))]);
        let e = read(z.path(), &Limits::default()).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        let z = zip_with(&[
            ("a", Some("1")),
            ("b", Some("2")),
            ("manifest.yml", Some(APP)),
        ]);
        let tight = Limits {
            max_files: 2,
            ..Limits::default()
        };
        assert!(read(z.path(), &tight).is_err());
    }
}
