//! Arbitrary bytes as an app zip through `dropship::intake::intake`, with small limits.
//! Never panics, writes nothing beside the destination, stays within its budgets; what
//! a successful intake leaves is only files, directories and symlinks resolving inside.
#![no_main]

use dropship::intake::{intake, Limits};
use dropship_fuzz::{sandbox, Scratch};
use libfuzzer_sys::fuzz_target;
use std::fs;
use std::os::unix::fs::PermissionsExt;

const LIMITS: Limits = Limits {
    max_files: 64,
    max_bytes: 1 << 20,
    max_ratio: 200,
};

fuzz_target!(
    init: sandbox(),
    |data: &[u8]| {
        let s = Scratch::new(data);
        let result = intake(&s.input, &s.dest, &LIMITS);
        s.assert_nothing_outside();
        let dest = fs::canonicalize(&s.dest).unwrap();
        let (mut files, mut links, mut bytes) = (0u64, 0u64, 0u64);
        for e in walk(&dest) {
            let m = fs::symlink_metadata(&e).unwrap();
            let mode = m.permissions().mode();
            assert_eq!(mode & 0o7000, 0, "setuid/setgid/sticky kept: {}", e.display());
            if m.is_symlink() {
                links += 1;
                let target = fs::read_link(&e).unwrap();
                assert!(target.is_relative(), "absolute symlink {}", e.display());
                if let Ok(real) = fs::canonicalize(&e) {
                    assert!(real.starts_with(&dest), "{} resolves outside", e.display());
                }
            } else if m.is_file() {
                files += 1;
                bytes += m.len();
            } else {
                assert!(m.is_dir(), "not a file, directory or symlink: {}", e.display());
            }
        }
        assert!(bytes <= LIMITS.max_bytes, "{bytes} bytes written");
        assert!(files + links <= LIMITS.max_files, "{files} files and {links} links");
        if let Ok(stats) = result {
            assert_eq!((stats.files, stats.symlinks, stats.bytes), (files, links, bytes));
        }
    }
);

/// Everything under `dir`, not following symlinks.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}
