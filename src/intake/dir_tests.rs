//! Tests of `copy_dir`: ignore rules, modes, symlinks, special files, budgets.

use super::testutil::{assert_over_budget, Sandbox};
use super::*;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// A sandbox with `tmp/app/` holding `files` (path, content; parents created).
fn app(files: &[(&str, &str)]) -> (Sandbox, PathBuf) {
    let sb = Sandbox::new();
    let src = sb.tmp.path().join("app");
    fs::create_dir(&src).unwrap();
    for (p, content) in files {
        let p = src.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    (sb, src)
}

fn copy(sb: &Sandbox, src: &Path, limits: &Limits) -> Result<IntakeStats, IntakeError> {
    copy_dir(src, &sb.dest, limits)
}

#[test]
fn copies_tree_modes_and_inside_symlinks_skips_fifos() {
    let (sb, src) = app(&[
        ("run.sh", "#!/bin/sh\n"),
        ("lib/a/b.txt", "b"),
        ("data", "12345"),
    ]);
    fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(src.join("data"), fs::Permissions::from_mode(0o600)).unwrap();
    symlink("lib/a/b.txt", src.join("link")).unwrap();
    symlink("../../run.sh", src.join("lib/a/up")).unwrap();
    let fifo = std::ffi::CString::new(src.join("fifo").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let stats = copy(&sb, &src, &Limits::default()).unwrap();
    assert_eq!(
        sb.listing(),
        [
            "data",
            "lib/",
            "lib/a/",
            "lib/a/b.txt",
            "lib/a/up@../../run.sh",
            "link@lib/a/b.txt",
            "run.sh"
        ]
    );
    let mode = |p: &str| fs::metadata(sb.dest.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("run.sh"), 0o755, "setuid dropped, exec kept");
    assert_eq!(mode("data"), 0o600);
    assert_eq!(fs::read_to_string(sb.dest.join("link")).unwrap(), "b");
    assert_eq!(
        stats,
        IntakeStats {
            files: 3,
            dirs: 2,
            symlinks: 2,
            bytes: 10 + 1 + 5
        }
    );
}

#[test]
fn cfignore_and_default_ignores() {
    let (sb, src) = app(&[
        (
            ".cfignore",
            "*.log\n/build/\n!keep.log\nsecret.txt\n!.gitignore\n",
        ),
        ("app.js", "js"),
        ("debug.log", "x"),
        ("keep.log", "kept by negation"),
        ("build/out.bin", "x"),
        ("src/build/kept.txt", "only the root build/ is ignored"),
        ("config/secret.txt", "x"),
        (".git/HEAD", "x"),
        ("vendor/dep/.git/HEAD", "x"),
        ("vendor/dep/.svn/x", "x"),
        (".hg/x", "x"),
        ("_darcs/x", "x"),
        (".gitignore", "cannot be brought back by !"),
        ("sub/.DS_Store", "x"),
        ("manifest.yml", "x"),
        ("manifest.yaml", "x"),
        ("sub/manifest.yml", "cf CLI ignores this at any depth too"),
    ]);
    let stats = copy(&sb, &src, &Limits::default()).unwrap();
    assert_eq!(
        sb.listing(),
        [
            "app.js",
            "config/",
            "keep.log",
            "src/",
            "src/build/",
            "src/build/kept.txt",
            "sub/",
            "vendor/",
            "vendor/dep/"
        ]
    );
    assert_eq!(stats.files, 3);
}

#[test]
fn no_cfignore_still_applies_defaults() {
    let (sb, src) = app(&[
        (".git/config", "x"),
        ("manifest.yml", "x"),
        ("index.php", "x"),
    ]);
    copy(&sb, &src, &Limits::default()).unwrap();
    assert_eq!(sb.listing(), ["index.php"]);
}

#[test]
fn escaping_symlinks_are_refused() {
    let (sb, src) = app(&[("sub/f", "x")]);
    symlink("../../etc/passwd", src.join("sub/link")).unwrap();
    let err = copy(&sb, &src, &Limits::default()).unwrap_err().to_string();
    assert!(
        err.contains("symlink \"sub/link\"") && err.contains("outside the app"),
        "{err}"
    );
    assert!(
        !sb.dest.join("sub/link").exists()
            && fs::symlink_metadata(sb.dest.join("sub/link")).is_err()
    );
    sb.assert_contained();

    let (sb, src) = app(&[("f", "x")]);
    symlink("/etc", src.join("abs")).unwrap();
    let err = copy(&sb, &src, &Limits::default()).unwrap_err().to_string();
    assert!(
        err.contains("symlink \"abs\"") && err.contains("absolute"),
        "{err}"
    );
}

#[test]
fn symlink_chain_escape_is_refused() {
    let (sb, src) = app(&[("a/b/f", "x")]);
    symlink("../..", src.join("a/b/s")).unwrap();
    symlink("a/b/s/..", src.join("u")).unwrap();
    let err = copy(&sb, &src, &Limits::default()).unwrap_err().to_string();
    assert!(
        err.contains("symlink \"u\"") && err.contains("outside the app"),
        "{err}"
    );
}

#[test]
fn budgets_apply_to_directories() {
    let files: Vec<(String, &str)> = (0..5).map(|i| (format!("d/f{i}"), "0123456789")).collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let (sb, src) = app(&files);
    let limits = Limits {
        max_files: 5,
        ..Limits::default()
    }; // d/ plus five files = 6
    let err = copy(&sb, &src, &limits).unwrap_err().to_string();
    assert!(
        err.ends_with("more than 5 entries (limit --max-app-files / DROPSHIP_MAX_APP_FILES)"),
        "{err}"
    );

    let (sb, src) = app(&files);
    let limits = Limits {
        max_bytes: 35,
        max_ratio: 1,
        ..Limits::default()
    };
    let err = copy(&sb, &src, &limits).unwrap_err().to_string();
    assert!(err.contains("more than 35 bytes"), "{err}");
    let written: u64 = fs::read_dir(sb.dest.join("d"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(written <= 35, "wrote {written} bytes");

    let (sb, src) = app(&files);
    let exact = Limits {
        max_files: 6,
        max_bytes: 50,
        max_ratio: 1,
    };
    assert_eq!(copy(&sb, &src, &exact).unwrap().bytes, 50);
}

#[test]
fn dest_inside_src_is_skipped() {
    let (_sb, src) = app(&[("a", "a")]);
    let dest = src.join("work/dest");
    fs::create_dir_all(&dest).unwrap();
    let stats = copy_dir(&src, &dest, &Limits::default()).unwrap();
    assert_eq!(
        (stats.files, stats.dirs),
        (1, 1),
        "copied a and work/, not dest into itself"
    );
    assert!(dest.join("work").is_dir() && !dest.join("work/dest").exists());
}

/// Sorted (path, mode, content or link target) of everything under `root`.
fn snapshot(root: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
    let mut all = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let meta = e.path().symlink_metadata().unwrap();
        let data = if meta.is_file() {
            fs::read(e.path()).unwrap()
        } else if meta.is_symlink() {
            fs::read_link(e.path())
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else {
            Vec::new()
        };
        let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
        all.push((rel, meta.permissions().mode(), data));
    }
    all
}

#[test]
fn one_or_four_workers_copy_the_same_tree() {
    let names: Vec<String> = (0..90)
        .map(|i| format!("d{}/e{}/f{i}", i % 3, i % 4))
        .collect();
    let datas: Vec<String> = (0..90).map(|i| "x".repeat(i * 1777 % 150_000)).collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&datas)
        .map(|(n, d)| (n.as_str(), d.as_str()))
        .collect();
    let (sb, src) = app(&files);
    fs::set_permissions(src.join("d1/e1/f1"), fs::Permissions::from_mode(0o751)).unwrap();
    symlink("d0/e0/f0", src.join("top")).unwrap();
    let one = sb.tmp.path().join("one");
    fs::create_dir(&one).unwrap();
    let s1 = dir::copy_dir_with(&src, &one, &Limits::default(), 1).unwrap();
    let s4 = dir::copy_dir_with(&src, &sb.dest, &Limits::default(), 4).unwrap();
    assert_eq!(s1, s4);
    let total: usize = datas.iter().map(String::len).sum();
    assert_eq!((s4.files, s4.symlinks, s4.bytes), (90, 1, total as u64));
    assert_eq!(snapshot(&one), snapshot(&sb.dest));
    assert_eq!(snapshot(&src), snapshot(&sb.dest), "the copy is the app");
}

#[test]
fn a_budget_overrun_by_several_workers_is_the_budget_error() {
    let big = "y".repeat(300_000);
    let names: Vec<String> = (0..8).map(|i| format!("big{i}")).collect();
    let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), big.as_str())).collect();
    let (sb, src) = app(&files);
    let limits = Limits {
        max_bytes: 1_000_000,
        ..Limits::default()
    };
    let e = dir::copy_dir_with(&src, &sb.dest, &limits, 4).unwrap_err();
    assert_over_budget(&e, &sb.dest, &names, 1_000_000);
}
