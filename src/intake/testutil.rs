//! Test helpers: zips built with the zip crate, and a sandbox that can tell whether
//! anything escaped the destination.

use super::{extract_zip, IntakeError, IntakeStats, Limits};
use ::zip::write::SimpleFileOptions;
use ::zip::{CompressionMethod, ZipWriter};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

/// One entry of a test zip.
pub enum Ent<'a> {
    /// Content and unix mode (`None`: no unix attributes at all).
    File(&'a [u8], Option<u32>),
    Dir,
    Link(&'a str),
    /// Raw external attributes, for modes `unix_permissions` would mask (setuid).
    Attr(&'a [u8], u32),
    /// Content stored uncompressed, so tests can find and patch it.
    Stored(&'a [u8]),
}

/// A zip, deflated, of `entries` in order.
pub fn zip_of(entries: &[(&str, Ent)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let base = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, ent) in entries {
        match ent {
            Ent::File(data, mode) => {
                let opts = match mode {
                    Some(m) => base.unix_permissions(*m),
                    None => base.external_attributes(0),
                };
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
            Ent::Attr(data, attrs) => {
                w.start_file(*name, base.external_attributes(*attrs))
                    .unwrap();
                w.write_all(data).unwrap();
            }
            Ent::Stored(data) => {
                let opts = base.compression_method(CompressionMethod::Stored);
                w.start_file(*name, opts.unix_permissions(0o644)).unwrap();
                w.write_all(data).unwrap();
            }
            Ent::Dir => w.add_directory(*name, base).unwrap(),
            Ent::Link(target) => w.add_symlink(*name, *target, base).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

/// Replaces every occurrence of `from` by `to` (same length) in `bytes`.
pub fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    for i in 0..=bytes.len() - from.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + to.len()].copy_from_slice(to);
            n += 1;
        }
    }
    n
}

/// `tmp/app.zip` (or `tmp/app/`) as the source, `tmp/a/dest` as the destination.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub dest: PathBuf,
}

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("a/dest");
        std::fs::create_dir_all(&dest).unwrap();
        Sandbox { tmp, dest }
    }

    /// Writes `bytes` as `tmp/app.zip` and returns its path.
    pub fn zip(&self, bytes: &[u8]) -> PathBuf {
        let p = self.tmp.path().join("app.zip");
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Asserts that `tmp/a` holds only `dest` and no file named `evil` exists under `tmp`.
    pub fn assert_contained(&self) {
        let names: Vec<_> = std::fs::read_dir(self.tmp.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["dest"], "something was written next to dest");
        for e in walkdir::WalkDir::new(self.tmp.path()) {
            let e = e.unwrap();
            assert_ne!(e.file_name(), "evil", "found {}", e.path().display());
        }
    }

    /// Sorted paths under dest, `/` appended to directories, `@target` to symlinks.
    pub fn listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in walkdir::WalkDir::new(&self.dest)
            .min_depth(1)
            .sort_by_file_name()
        {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(&self.dest)
                .unwrap()
                .display()
                .to_string();
            out.push(if e.file_type().is_dir() {
                rel + "/"
            } else if e.file_type().is_symlink() {
                format!("{rel}@{}", std::fs::read_link(e.path()).unwrap().display())
            } else {
                rel
            });
        }
        out
    }
}

/// Extracts `bytes` (written as `tmp/app.zip`) into the sandbox's dest.
pub fn extract(sb: &Sandbox, bytes: &[u8], limits: &Limits) -> Result<IntakeStats, IntakeError> {
    extract_zip(&sb.zip(bytes), &sb.dest, limits)
}

/// Extracts `bytes` in a new sandbox, expecting an error whose message contains every one
/// of `needles`, and checks nothing escaped.
pub fn refused(bytes: &[u8], limits: &Limits, needles: &[&str]) -> Sandbox {
    let sb = Sandbox::new();
    let err = extract(&sb, bytes, limits)
        .expect_err("hostile zip was accepted")
        .to_string();
    for n in needles {
        assert!(err.contains(n), "{err:?} does not mention {n:?}");
    }
    sb.assert_contained();
    sb
}

/// `e` is the byte budget of `limit` running out, and the files `names` under `dest` hold no
/// more than `limit` bytes between them (several threads may have been writing).
pub fn assert_over_budget(e: &IntakeError, dest: &Path, names: &[String], limit: u64) {
    assert!(
        matches!(e, IntakeError::TooLarge { limit: l, .. } if *l == limit),
        "{e}"
    );
    let written: u64 = names
        .iter()
        .map(|n| std::fs::metadata(dest.join(n)).map_or(0, |m| m.len()))
        .sum();
    assert!(written <= limit, "wrote {written} bytes");
}
