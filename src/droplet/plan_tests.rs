//! The plan's invariants: each entry in one chunk, dependencies apart, bounded, stable under
//! renames and edits; the targets from the part's size.

use super::*;
use std::path::PathBuf;

/// `(path, Some(size))` files, `(path, None)` directories.
fn items(list: &[(PathBuf, Option<u64>)]) -> Vec<Item<'_>> {
    list.iter()
        .map(|(p, f)| Item { rel: p, file: *f })
        .collect()
}

/// An app with `n` files of 3 KiB in node_modules and a few of its own, sorted as a walk.
fn app(n: usize, renamed: Option<(&str, &str)>) -> Vec<(PathBuf, Option<u64>)> {
    let mut v: Vec<(PathBuf, Option<u64>)> = vec![
        ("".into(), None),
        ("app".into(), None),
        ("app/node_modules".into(), None),
        ("app/public".into(), None),
        ("app/public/a.html".into(), Some(100)),
        ("app/public/b.html".into(), Some(100)),
        ("app/server.js".into(), Some(300)),
        ("deps".into(), None),
        ("staging_info.yml".into(), Some(50)),
    ];
    for i in 0..n {
        v.push((format!("app/node_modules/m{i:05}.js").into(), Some(3 << 10)));
    }
    if let Some((from, to)) = renamed {
        for e in &mut v {
            if e.0 == Path::new(from) {
                e.0 = to.into();
            }
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn names(list: &[(PathBuf, Option<u64>)], chunks: &[Chunk]) -> Vec<Vec<PathBuf>> {
    chunks
        .iter()
        .map(|c| c.entries.iter().map(|&i| list[i].0.clone()).collect())
        .collect()
}

#[test]
fn every_entry_in_one_chunk_dependencies_apart_bounded() {
    let list = app(3000, None);
    let chunks = plan(&items(&list));
    assert!(
        chunks.len() <= MAX_LAYERS && chunks.len() > 4,
        "{}",
        chunks.len()
    );
    let mut seen: Vec<usize> = chunks.iter().flat_map(|c| c.entries.clone()).collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..list.len()).collect::<Vec<_>>(),
        "each once, root in none"
    );
    let own = chunks.last().unwrap();
    assert_eq!(own.group, Group::App);
    let own: Vec<_> = own.entries.iter().map(|&i| &list[i].0).collect();
    assert!(own.contains(&&PathBuf::from("app/server.js")), "{own:?}");
    assert!(own.iter().all(|p| !p.starts_with("app/node_modules/")));
    // Far more files than the bound: merged down to it.
    let list = app(60_000, None);
    assert!(plan(&items(&list)).len() <= MAX_LAYERS);
}

#[test]
fn a_rename_changes_only_its_chunk_and_a_large_file_is_alone() {
    let list = app(3000, None);
    let before = names(&list, &plan(&items(&list)));
    let moved = app(3000, Some(("app/public/a.html", "app/public/c.html")));
    let after = names(&moved, &plan(&items(&moved)));
    assert_eq!(before.len(), after.len());
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert_eq!(changed, 1);
    let moved = app(
        3000,
        Some(("app/node_modules/m01234.js", "app/node_modules/z.js")),
    );
    let after = names(&moved, &plan(&items(&moved)));
    let kept = before.iter().filter(|c| after.contains(c)).count();
    assert!(kept + 3 >= before.len(), "{kept} of {} kept", before.len());

    let mut big = app(10, None);
    big.push(("app/bin".into(), None));
    big.push(("app/bin/server".into(), Some(200 << 20)));
    big.sort_by(|a, b| a.0.cmp(&b.0));
    let chunks = names(&big, &plan(&items(&big)));
    assert!(
        chunks.contains(&vec![PathBuf::from("app/bin/server")]),
        "{chunks:?}"
    );
}

#[test]
fn the_target_moves_in_powers_of_two() {
    assert_eq!(target(0, AIM), FLOOR);
    assert_eq!(target(10 << 20, AIM), FLOOR);
    assert_eq!(target(68 << 20, AIM_STABLE), 8 << 20);
    assert_eq!(target(14 << 20, AIM_APP), 1 << 20);
    assert_eq!(target(200 << 20, AIM_APP), 16 << 20);
}

/// The 6,000-file app of `bench` (many-small) in shape: 14 MB of the app's own files (1,000 of 2 to
/// 20 KB) beside 57 MB of node_modules. An edit to any of its own files re-uploads one chunk of
/// at most about 2 MiB of tar (≈ 0.6 MB gzipped for text), and there are at most 31 layers.
#[test]
fn one_own_file_edited_moves_one_small_chunk() {
    let mut list: Vec<(PathBuf, Option<u64>)> = vec![
        ("".into(), None),
        ("app".into(), None),
        ("app/node_modules".into(), None),
        ("app/src".into(), None),
    ];
    let mut x: u64 = 42;
    let mut next = |lo: u64, hi: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lo + x % (hi - lo)
    };
    for i in 0..5000 {
        list.push((
            format!("app/node_modules/m{i:05}.js").into(),
            Some(next(2000, 20000)),
        ));
    }
    for i in 0..1000 {
        list.push((
            format!("app/src/f{i:05}.js").into(),
            Some(next(2000, 20000)),
        ));
    }
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let chunks = plan(&items(&list));
    assert!(chunks.len() <= MAX_LAYERS, "{}", chunks.len());
    let own: Vec<&Chunk> = chunks.iter().filter(|c| c.group == Group::App).collect();
    assert!(
        own.len() >= 8,
        "{} chunks of the app's own files",
        own.len()
    );
    for c in &own {
        assert!(
            c.weight <= (2 << 20) + (20 << 10),
            "{} bytes of tar",
            c.weight
        );
    }
    // An edit (the file grows past its 512-byte padding) changes that chunk alone.
    let edited = list
        .iter()
        .position(|e| e.0 == Path::new("app/src/f00500.js"))
        .unwrap();
    let before = names(&list, &chunks);
    list[edited].1 = list[edited].1.map(|n| n + 600);
    let after = names(&list, &plan(&items(&list)));
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(
        before.len() == after.len() && changed <= 1,
        "{changed} chunks changed"
    );
}
