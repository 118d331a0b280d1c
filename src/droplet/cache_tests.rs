//! The layer cache's limit: least recently used blobs go first, a blob over the limit is not
//! kept, and what was evicted is simply packed again.

use super::*;
use crate::layer::pack_dir;
use std::time::{Duration, SystemTime};

/// A layer of one file of `len` bytes that do not compress (so the blob is about `len`).
fn layer(d: &Path, name: &str, len: usize) -> LayerBlob {
    let src = d.join("src").join(name);
    fs::create_dir_all(&src).unwrap();
    let mut bytes = vec![0u8; len];
    let mut x: u64 = name.bytes().fold(7, |a, b| a * 31 + u64::from(b));
    for b in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    fs::write(src.join("f"), bytes).unwrap();
    pack_dir(&src, &d.join("blobs"), Codec::Gzip).unwrap()
}

fn cached(cache: &LayerCache, l: &LayerBlob, out: &Path) -> bool {
    cache.get(&l.diff_id, l.tar_size, l.codec, out).is_some()
}

/// Makes the cached blob of `l` look last used `ago` seconds back.
fn used_ago(dir: &Path, l: &LayerBlob, ago: u64) {
    let hex = l.diff_id.trim_start_matches("sha256:");
    let f = File::options()
        .write(true)
        .open(dir.join(format!("{hex}.gz")))
        .unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(ago))
        .unwrap();
}

#[test]
fn least_recently_used_blobs_go_first_over_the_limit() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("cache");
    let (a, b, c) = (
        layer(d.path(), "a", 100 << 10),
        layer(d.path(), "b", 100 << 10),
        layer(d.path(), "c", 100 << 10),
    );
    // Room for two of the three.
    let cache = LayerCache::new(dir.clone(), 250 << 10);
    cache.put(&a, None).unwrap();
    used_ago(&dir, &a, 300);
    cache.put(&b, None).unwrap();
    used_ago(&dir, &b, 200);
    // `a` is used (a build found it): now `b` is the least recently used.
    assert!(cached(&cache, &a, &d.path().join("out1")));
    cache.put(&c, None).unwrap();
    let out = d.path().join("out2");
    assert!(cached(&cache, &a, &out), "used last: kept");
    assert!(cached(&cache, &c, &out), "just put: kept");
    assert!(!cached(&cache, &b, &out), "least recently used: evicted");
    let held: u64 = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".gz"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(held <= 250 << 10, "{held} bytes held");
    // The evicted blob's record went with it.
    let hex = b.diff_id.trim_start_matches("sha256:");
    assert!(!dir.join(format!("{hex}.gz.json")).exists());
}

#[test]
fn a_blob_over_the_limit_is_not_kept() {
    let d = tempfile::tempdir().unwrap();
    let big = layer(d.path(), "big", 300 << 10);
    let cache = LayerCache::new(d.path().join("cache"), 200 << 10);
    cache.put(&big, None).unwrap();
    assert!(!cached(&cache, &big, &d.path().join("out")));
    assert!(big.path.is_file(), "the build's own blob stays");
    // A limit lowered to 0 (nothing kept): what an earlier, larger limit kept goes too.
    let small = layer(d.path(), "small", 10 << 10);
    cache.put(&small, None).unwrap();
    assert!(cached(&cache, &small, &d.path().join("out")));
    LayerCache::new(d.path().join("cache"), 0)
        .put(&big, None)
        .unwrap();
    assert!(!cached(&cache, &small, &d.path().join("out2")));
}
