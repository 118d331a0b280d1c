//! Tests of `extract_zip` (and `intake`'s dispatch): valid zips, hostile paths and
//! symlinks, corrupt data. Budgets are in `zip_budget_tests.rs`.

use super::testutil::{extract, patch, refused, zip_of, Ent, Sandbox};
use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn valid_zip_nested_dirs_modes_and_inside_symlink() {
    let sb = Sandbox::new();
    let setuid = (0o100_000 | 0o4755) << 16;
    let bytes = zip_of(&[
        ("bin/", Ent::Dir),
        (
            "bin/run.sh",
            Ent::File(b"#!/bin/sh\necho hi\n", Some(0o755)),
        ),
        ("lib/deep/x/y.txt", Ent::File(b"deep", Some(0o640))),
        ("plain", Ent::File(b"no unix mode", None)),
        ("suid", Ent::Attr(b"s", setuid)),
        ("link", Ent::Link("lib/deep/x/y.txt")),
        ("lib/up", Ent::Link("../bin")),
    ]);
    let stats = extract(&sb, &bytes, &Limits::default()).unwrap();
    assert_eq!(
        sb.listing(),
        [
            "bin/",
            "bin/run.sh",
            "lib/",
            "lib/deep/",
            "lib/deep/x/",
            "lib/deep/x/y.txt",
            "lib/up@../bin",
            "link@lib/deep/x/y.txt",
            "plain",
            "suid",
        ]
    );
    let d = &sb.dest;
    assert_eq!(mode(&d.join("bin/run.sh")), 0o755);
    assert_eq!(mode(&d.join("lib/deep/x/y.txt")), 0o640);
    assert_eq!(mode(&d.join("plain")), 0o644);
    assert_eq!(mode(&d.join("suid")), 0o755, "setuid dropped, rest kept");
    assert_eq!(fs::read(d.join("link")).unwrap(), b"deep");
    assert!(fs::read(d.join("lib/up/run.sh"))
        .unwrap()
        .starts_with(b"#!"));
    let want = IntakeStats {
        files: 4,
        dirs: 1,
        symlinks: 2,
        bytes: 18 + 4 + 12 + 1,
    };
    assert_eq!(stats, want);
}

#[test]
fn single_top_level_dir_is_kept() {
    let sb = Sandbox::new();
    let bytes = zip_of(&[
        ("app/", Ent::Dir),
        ("app/index.js", Ent::File(b"1", Some(0o644))),
    ]);
    extract(&sb, &bytes, &Limits::default()).unwrap();
    assert_eq!(sb.listing(), ["app/", "app/index.js"]);
}

#[test]
fn zip_slip_is_refused() {
    for name in ["../evil", "a/../../evil", "..\\evil", "ok/..\\..\\evil"] {
        let bytes = zip_of(&[
            ("fine", Ent::File(b"x", None)),
            (name, Ent::File(b"x", None)),
        ]);
        refused(
            &bytes,
            &Limits::default(),
            &["app.zip", &format!("{name:?}"), "unsafe path"],
        );
    }
}

#[test]
fn absolute_paths_are_refused() {
    let sb = Sandbox::new();
    // Points into the sandbox, so a naive extractor would leave a detectable `evil`.
    let abs = sb.tmp.path().join("evil").display().to_string();
    for name in [abs.as_str(), "/tmp/evil", "C:/evil"] {
        let bytes = zip_of(&[(name, Ent::File(b"x", None))]);
        refused(&bytes, &Limits::default(), &[name, "absolute"]);
    }
    sb.assert_contained();
}

#[test]
fn escaping_symlink_is_refused() {
    let bytes = zip_of(&[("link", Ent::Link("../../etc/passwd"))]);
    let sb = refused(
        &bytes,
        &Limits::default(),
        &["symlink \"link\"", "outside the app"],
    );
    assert!(
        sb.listing().is_empty(),
        "no symlink created: {:?}",
        sb.listing()
    );
    let bytes = zip_of(&[("abs", Ent::Link("/etc/passwd"))]);
    refused(&bytes, &Limits::default(), &["symlink \"abs\"", "absolute"]);
}

#[test]
fn physical_escape_through_symlink_chain_is_refused() {
    let bytes = zip_of(&[("a/b/s", Ent::Link("../..")), ("u", Ent::Link("a/b/s/.."))]);
    let sb = refused(
        &bytes,
        &Limits::default(),
        &["symlink \"u\"", "outside the app"],
    );
    assert!(
        !sb.listing().iter().any(|p| p.contains('@')),
        "{:?}",
        sb.listing()
    );
}

#[test]
fn entry_under_a_symlink_or_file_is_refused() {
    let bytes = zip_of(&[
        ("s", Ent::Link("d")),
        ("d/", Ent::Dir),
        ("s/evil", Ent::File(b"x", None)),
    ]);
    refused(
        &bytes,
        &Limits::default(),
        &["\"s/evil\"", "inside \"s\"", "symlink"],
    );
    let bytes = zip_of(&[("f/x", Ent::File(b"x", None)), ("f", Ent::File(b"x", None))]);
    refused(
        &bytes,
        &Limits::default(),
        &["\"f/x\"", "inside \"f\"", "file"],
    );
}

#[test]
fn duplicates_are_refused() {
    let mut bytes = zip_of(&[
        ("dup1", Ent::File(b"x", None)),
        ("dup2", Ent::File(b"y", None)),
    ]);
    assert_eq!(patch(&mut bytes, b"dup2", b"dup1"), 2);
    refused(
        &bytes,
        &Limits::default(),
        &["entry \"dup1\" appears more than once"],
    );
    let bytes = zip_of(&[
        ("a/b", Ent::File(b"x", None)),
        ("a//b", Ent::File(b"y", None)),
    ]);
    refused(
        &bytes,
        &Limits::default(),
        &["entry \"a//b\" appears more than once"],
    );
    let bytes = zip_of(&[("x/", Ent::Dir), ("x", Ent::File(b"y", None))]);
    refused(
        &bytes,
        &Limits::default(),
        &["entry \"x\" appears more than once"],
    );
}

#[test]
fn corrupt_data_names_the_entry() {
    let mut bytes = zip_of(&[
        ("good", Ent::Stored(b"fine")),
        ("bad", Ent::Stored(b"0123456789")),
    ]);
    assert_eq!(patch(&mut bytes, b"34567", b"34X67"), 1);
    refused(&bytes, &Limits::default(), &["entry \"bad\"", "corrupt"]);
}

#[test]
fn unsupported_compression_names_the_entry() {
    let mut bytes = zip_of(&[("odd", Ent::File(b"data", None))]);
    let cd = (0..bytes.len())
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x01\x02"))
        .unwrap();
    bytes[8..10].copy_from_slice(&14u16.to_le_bytes()); // LZMA, not compiled in
    bytes[cd + 10..cd + 12].copy_from_slice(&14u16.to_le_bytes());
    refused(
        &bytes,
        &Limits::default(),
        &["entry \"odd\"", "unsupported"],
    );
}

#[test]
fn dest_must_be_empty() {
    let sb = Sandbox::new();
    fs::write(sb.dest.join("old"), "x").unwrap();
    let err = extract(
        &sb,
        &zip_of(&[("old", Ent::File(b"new", None))]),
        &Limits::default(),
    );
    assert!(
        matches!(err, Err(IntakeError::DestNotEmpty { .. })),
        "{err:?}"
    );
    assert_eq!(fs::read(sb.dest.join("old")).unwrap(), b"x");
}

#[test]
fn intake_dispatches_on_the_source_kind() {
    let sb = Sandbox::new();
    let zip = sb.zip(&zip_of(&[("z", Ent::File(b"z", None))]));
    assert_eq!(intake(&zip, &sb.dest, &Limits::default()).unwrap().files, 1);
    let dir = sb.tmp.path().join("appdir");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("d"), "d").unwrap();
    let dest2 = sb.tmp.path().join("dest2");
    fs::create_dir(&dest2).unwrap();
    intake(&dir, &dest2, &Limits::default()).unwrap();
    assert_eq!(fs::read(dest2.join("d")).unwrap(), b"d");
    let missing = intake(&sb.tmp.path().join("nope"), &dest2, &Limits::default()).unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
}
