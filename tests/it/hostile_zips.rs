//! Hostile app zips through the `dropship` binary: path traversal, absolute names, escaping
//! symlinks, bombs, budgets, truncated and non-zip input. Each must fail with exit code 1 and a
//! message naming the problem, write nothing outside the build's work directory (which must be
//! removed again), and push nothing. A well-formed zip builds, so failures are not "everything
//! fails".

use crate::support::*;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// One entry of a test zip.
enum Ent<'a> {
    File(&'a [u8]),
    Link(&'a str),
}

/// A deflated zip of `entries`, names stored exactly as given.
fn zip_of(entries: &[(&str, Ent)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (name, ent) in entries {
        match ent {
            Ent::File(data) => {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
            Ent::Link(target) => w.add_symlink(*name, *target, opts).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

/// `n` pseudo-random (incompressible) bytes.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A temp root holding the stack, the input zip, a dedicated work dir and the OCI target.
struct Root {
    tmp: tempfile::TempDir,
    stack: String,
}

impl Root {
    fn new() -> Root {
        let tmp = tempdir();
        let stack = busybox_stack(
            tmp.path(),
            &format!("oci:{}:busybox", tmp.path().join("stack").display()),
        );
        std::fs::create_dir_all(tmp.path().join("work")).unwrap();
        std::fs::create_dir_all(tmp.path().join("input")).unwrap();
        Root { tmp, stack }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Writes `bytes` as `input/hostile.zip` and builds it into `oci:out:app`.
    fn build(&self, bytes: &[u8], extra: &[&str]) -> Output {
        let zip = self.path("input/hostile.zip");
        std::fs::write(&zip, bytes).unwrap();
        let (zip, work) = (
            zip.display().to_string(),
            self.path("work").display().to_string(),
        );
        let target = format!("oci:{}:app", self.path("out").display());
        let mut args = vec![
            "build",
            &zip,
            "--stack",
            &self.stack,
            "--image",
            &target,
            "--work-dir",
            &work,
        ];
        args.extend_from_slice(extra);
        dropship(&args)
    }

    /// The work dir is empty again and no file named `evil*` exists under the root.
    fn assert_clean(&self, o: &Output) {
        let left: Vec<_> = std::fs::read_dir(self.path("work"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            left.is_empty(),
            "work dir not cleaned up: {left:?}\n{}",
            text(o)
        );
        for e in walkdir::WalkDir::new(self.tmp.path()) {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy();
            assert!(
                !name.starts_with("evil"),
                "written outside the app: {}\n{}",
                e.path().display(),
                text(o)
            );
        }
    }

    /// Manifests recorded in the OCI target's index.json (none if it does not exist).
    fn pushed(&self) -> usize {
        let index = self.path("out/index.json");
        let Ok(text) = std::fs::read_to_string(&index) else {
            return 0;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["manifests"].as_array().map_or(0, |m| m.len())
    }

    /// Builds `bytes`, expecting exit 1, every needle in stderr, nothing escaped, nothing pushed.
    fn refused(&self, bytes: &[u8], extra: &[&str], needles: &[&str]) {
        let o = self.build(bytes, extra);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("intake: "),
            "not refused at intake:\n{}",
            text(&o)
        );
        assert!(
            err.contains("hostile.zip"),
            "the message does not name the input:\n{}",
            text(&o)
        );
        for n in needles {
            assert!(err.contains(n), "stderr lacks {n:?}:\n{}", text(&o));
        }
        self.assert_clean(&o);
        assert_eq!(self.pushed(), 0, "an image was pushed:\n{}", text(&o));
    }
}

/// Climbs from the extraction dir, `work/dropship-build-*/droplet/app/`, to the temp root.
const UP_TO_ROOT: &str = "../../../../";

#[test]
fn zip_slip_is_refused() {
    let r = Root::new();
    for name in [
        "../evil",
        &format!("{UP_TO_ROOT}evil"),
        "ok/../../evil",
        "..\\evil",
    ] {
        let bytes = zip_of(&[
            ("index.html", Ent::File(b"fine")),
            (name, Ent::File(b"pwned")),
        ]);
        r.refused(&bytes, &[], &[&format!("{name:?}"), "unsafe path"]);
    }
}

#[test]
fn absolute_path_is_refused() {
    let r = Root::new();
    // Points into the temp root, so a naive extractor would leave a detectable `evil` there.
    let abs = r.path("evil").display().to_string();
    let bytes = zip_of(&[
        ("index.html", Ent::File(b"fine")),
        (&abs, Ent::File(b"pwned")),
    ]);
    r.refused(&bytes, &[], &[&abs, "absolute path"]);
}

#[test]
fn escaping_symlinks_are_refused() {
    let r = Root::new();
    let bytes = zip_of(&[
        ("index.html", Ent::File(b"fine")),
        ("link", Ent::Link("../../evil")),
    ]);
    r.refused(&bytes, &[], &["symlink \"link\"", "outside the app"]);
    // The classic: a symlink to a directory outside, then a file written through it.
    let bytes = zip_of(&[
        ("up", Ent::Link(UP_TO_ROOT)),
        ("up/evil", Ent::File(b"pwned")),
    ]);
    r.refused(
        &bytes,
        &[],
        &["\"up/evil\" is inside \"up\", which is a symlink"],
    );
    let bytes = zip_of(&[("abs", Ent::Link(&r.path("evil").display().to_string()))]);
    r.refused(&bytes, &[], &["symlink \"abs\"", "absolute"]);
}

#[test]
fn ratio_bomb_is_refused() {
    let r = Root::new();
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    w.start_file("evil-bomb", opts).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        w.write_all(&zeros).unwrap();
    }
    let bytes = w.finish().unwrap().into_inner();
    assert!(
        bytes.len() < 1 << 20,
        "the bomb should be small: {}",
        bytes.len()
    );
    r.refused(
        &bytes,
        &[],
        &[
            "expands to more than 200 times",
            "zip bomb",
            "--max-zip-ratio",
        ],
    );
}

#[test]
fn too_many_entries_is_refused() {
    let r = Root::new();
    let names: Vec<String> = (0..101).map(|i| format!("f{i:03}.txt")).collect();
    let entries: Vec<_> = names
        .iter()
        .map(|n| (n.as_str(), Ent::File(b"x")))
        .collect();
    r.refused(
        &zip_of(&entries),
        &["--max-app-files", "100"],
        &["more than 100 entries", "--max-app-files"],
    );
    // The same zip within the limit is accepted (it fails later, at detection: no index.html).
    let o = r.build(&zip_of(&entries), &["--max-app-files", "101"]);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("--max-app-files"),
        "{}",
        text(&o)
    );
    assert_eq!(o.status.code(), Some(222), "{}", text(&o));
    r.assert_clean(&o);
}

#[test]
fn too_large_is_refused() {
    let r = Root::new();
    let data = noise(2_000_000);
    let bytes = zip_of(&[
        ("index.html", Ent::File(b"fine")),
        ("evil.bin", Ent::File(&data)),
    ]);
    r.refused(
        &bytes,
        &["--max-app-size", "1M"],
        &["more than 1048576 bytes uncompressed", "--max-app-size"],
    );
}

#[test]
fn truncated_zip_and_plain_text_are_refused() {
    let r = Root::new();
    let bytes = zip_of(&[
        ("index.html", Ent::File(&noise(5000))),
        ("b.txt", Ent::File(b"b")),
    ]);
    r.refused(
        &bytes[..bytes.len() / 2],
        &[],
        &["truncated or not a zip file"],
    );
    r.refused(
        b"just some text, no zip here\n",
        &[],
        &["truncated or not a zip file"],
    );
    r.refused(b"", &[], &["truncated or not a zip file"]);
}

#[test]
fn well_formed_zip_builds() {
    let r = Root::new();
    let bytes = zip_of(&[
        ("index.html", Ent::File(b"<h1>fine</h1>\n")),
        ("css/site.css", Ent::File(b"h1{}")),
    ]);
    let o = r.build(&bytes, &["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["detected_buildpack"], "staticfile");
    assert_eq!(r.pushed(), 1);
    r.assert_clean(&o);
    assert!(Path::new(&r.path("out/index.json")).is_file());
}
