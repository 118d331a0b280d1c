//! Tests of the parallel extraction pass: the same tree whatever the number of workers, one
//! shared budget, and the error of the lowest failing entry whatever the threads' timing.

use super::testutil::{assert_over_budget, patch, zip_of, Ent, Sandbox};
use super::zip::extract_zip_with;
use super::{IntakeError, IntakeStats, Limits};
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Content of the `i`th generated file: its size varies from empty to a few chunks.
fn content(i: usize) -> Vec<u8> {
    let len = (i * 7919) % 200_000;
    (0..len).map(|k| ((k * 31 + i) % 253) as u8).collect()
}

fn run(
    bytes: &[u8],
    limits: &Limits,
    workers: usize,
) -> (Sandbox, Result<IntakeStats, IntakeError>) {
    let sb = Sandbox::new();
    let zip = sb.zip(bytes);
    let result = extract_zip_with(&zip, &sb.dest, limits, workers);
    (sb, result)
}

/// Every path under dest with its mode and its content (or symlink target).
fn tree(sb: &Sandbox) -> Vec<(String, u32, Vec<u8>)> {
    sb.listing()
        .into_iter()
        .map(|name| {
            let rel = name.split('@').next().unwrap().trim_end_matches('/');
            let p = sb.dest.join(rel);
            let meta = fs::symlink_metadata(&p).unwrap();
            let data = if meta.is_file() {
                fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            (name, meta.permissions().mode(), data)
        })
        .collect()
}

#[test]
fn one_or_four_workers_give_the_same_tree() {
    let names: Vec<String> = (0..120)
        .map(|i| format!("d{}/s{}/f{i}", i % 3, i % 5))
        .collect();
    let datas: Vec<Vec<u8>> = (0..names.len()).map(content).collect();
    let mut entries = vec![("d0/", Ent::Dir), ("d1/", Ent::Dir)];
    for (i, (n, d)) in names.iter().zip(&datas).enumerate() {
        let mode = [Some(0o755), Some(0o600), None][i % 3];
        entries.push((n.as_str(), Ent::File(d, mode)));
    }
    entries.push(("top", Ent::Link("d0/s0/f0")));
    entries.push(("d1/up", Ent::Link("../d2")));
    let bytes = zip_of(&entries);
    let (one, stats1) = run(&bytes, &Limits::default(), 1);
    let (four, stats4) = run(&bytes, &Limits::default(), 4);
    let (stats1, stats4) = (stats1.unwrap(), stats4.unwrap());
    assert_eq!(stats1, stats4);
    assert_eq!((stats4.files, stats4.symlinks, stats4.dirs), (120, 2, 2));
    let total: usize = datas.iter().map(Vec::len).sum();
    assert_eq!(stats4.bytes, total as u64);
    let (t1, t4) = (tree(&one), tree(&four));
    assert_eq!(t1, t4);
    for (n, d) in names.iter().zip(&datas) {
        assert_eq!(&fs::read(four.dest.join(n)).unwrap(), d, "{n}");
    }
    let mode = |rel: &str| {
        fs::metadata(four.dest.join(rel))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode("d1/s1/f1") & 0o777, 0o600);
    assert_eq!(mode("d0/s0/f0") & 0o777, 0o755);
    assert_eq!(
        fs::read_link(four.dest.join("d1/up")).unwrap().to_str(),
        Some("../d2")
    );
    four.assert_contained();
}

#[test]
fn a_budget_overrun_by_several_workers_is_the_budget_error() {
    let data = vec![b'z'; 300_000];
    let names: Vec<String> = (0..8).map(|i| format!("big{i}")).collect();
    let entries: Vec<_> = names
        .iter()
        .map(|n| (n.as_str(), Ent::File(&data, None)))
        .collect();
    let bytes = zip_of(&entries);
    let limits = Limits {
        max_bytes: 1_000_000,
        ..Limits::default()
    };
    for _ in 0..5 {
        let (sb, result) = run(&bytes, &limits, 4);
        let e = result.expect_err("over the budget");
        assert_over_budget(&e, &sb.dest, &names, 1_000_000);
        sb.assert_contained();
    }
}

/// A zip of `n` good files with corrupt stored entries at the indexes `bad`.
fn zip_with_bad(n: usize, bad: &[usize]) -> Vec<u8> {
    let names: Vec<String> = (0..n).map(|i| format!("f{i:03}")).collect();
    let good = content(3);
    let bads: Vec<Vec<u8>> = bad
        .iter()
        .map(|i| format!("<bad{i:03}>").into_bytes())
        .collect();
    let entries: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| match bad.iter().position(|b| *b == i) {
            Some(k) => (name.as_str(), Ent::Stored(&bads[k])),
            None => (name.as_str(), Ent::File(&good, None)),
        })
        .collect();
    let mut bytes = zip_of(&entries);
    for i in bad {
        let (from, to) = (format!("bad{i:03}>"), format!("BAD{i:03}>"));
        assert_eq!(patch(&mut bytes, from.as_bytes(), to.as_bytes()), 1);
    }
    bytes
}

#[test]
fn a_bad_entry_late_in_the_zip_fails_with_its_error() {
    let bytes = zip_with_bad(200, &[197]);
    let (sb, result) = run(&bytes, &Limits::default(), 4);
    let e = result.expect_err("corrupt entry accepted").to_string();
    assert!(e.contains("entry \"f197\"") && e.contains("corrupt"), "{e}");
    sb.assert_contained();
}

#[test]
fn of_two_bad_entries_the_first_is_reported() {
    let bytes = zip_with_bad(120, &[40, 100]);
    for workers in [1, 2, 4, 8] {
        for _ in 0..5 {
            let e = run(&bytes, &Limits::default(), workers)
                .1
                .unwrap_err()
                .to_string();
            assert!(e.contains("entry \"f040\""), "{workers} workers: {e}");
        }
    }
}

#[test]
fn a_failure_stops_the_other_workers_and_removes_what_they_began() {
    let zeros = vec![0u8; 64 << 20];
    // Long enough to fail (its checksum, at its end) while the others are being written.
    let mut bad = vec![b'a'; 4 << 20];
    bad[2 << 20..(2 << 20) + 9].copy_from_slice(b"<corrupt>");
    let mut bytes = zip_of(&[
        ("bad", Ent::Stored(&bad)),
        ("big", Ent::File(&zeros, None)),
        ("bigger", Ent::File(&zeros, None)),
    ]);
    assert_eq!(patch(&mut bytes, b"corrupt>", b"CORRUPT>"), 1);
    let limits = Limits {
        max_ratio: u64::MAX,
        ..Limits::default()
    };
    let (sb, result) = run(&bytes, &limits, 3);
    let e = result.expect_err("corrupt entry accepted").to_string();
    assert!(e.contains("entry \"bad\""), "{e}");
    // A single thread would have stopped at "bad": the others' files are gone.
    assert_eq!(sb.listing(), ["bad"]);
}
