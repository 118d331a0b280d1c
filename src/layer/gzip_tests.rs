use super::*;
use std::io::Read;

/// Incompressible bytes, the same for a seed (other modules' tests use them too).
pub(crate) fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15 ^ seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn text(n: usize) -> Vec<u8> {
    let mut t = Vec::new();
    let mut i = 0u64;
    while t.len() < n {
        t.extend_from_slice(
            format!("fn handler_{i}() {{ println!(\"request {}\"); }}\n", i % 97).as_bytes(),
        );
        i += 1;
    }
    t.truncate(n);
    t
}

/// Gzips `data` with `threads` workers; also tells how many blocks were stored.
fn gzip_counting(data: &[u8], threads: usize) -> (Vec<u8>, u32) {
    let mut w = GzWriter::with_threads(Vec::new(), Compression::new(6), threads).unwrap();
    // Odd-sized writes, as a tar stream makes them.
    for piece in data.chunks(70_001) {
        w.write_all(piece).unwrap();
    }
    w.finish_counting().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_counting(data, 4).0
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn mixed() -> Vec<u8> {
    let mut data = text(3 << 20);
    data.extend(noise(5 << 20, 7));
    data.extend(text(1 << 20));
    data.extend(noise(100_000, 9));
    data
}

#[test]
fn the_same_bytes_with_any_number_of_threads() {
    let data = mixed();
    let (one, _) = gzip_counting(&data, 1);
    for threads in [2, 3, 8] {
        assert!(
            gzip_counting(&data, threads).0 == one,
            "{threads} threads gave other bytes than 1"
        );
    }
    assert_eq!(
        gunzip(&one),
        data,
        "a standard gzip reader gets the input back"
    );
}

#[test]
fn gzip_t_accepts_the_stream() {
    let data = mixed();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.gz");
    std::fs::write(&p, gzip(&data)).unwrap();
    let out = std::process::Command::new("gzip")
        .arg("-t")
        .arg(&p)
        .output()
        .expect("gzip is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stores_noise_and_compresses_text() {
    let data = mixed();
    let (_, stored) = gzip_counting(&data, 2);
    // 5 MiB of noise = 20 blocks, and the last 100 kB is a block of its own (the tail).
    assert_eq!(stored, 21, "the noisy blocks, and only they, are stored");
    let n = noise(4 << 20, 3);
    let (gz, stored) = gzip_counting(&n, 2);
    assert_eq!(stored, 16);
    // Stored: barely larger than the input (5 bytes a 64 KiB block, plus framing).
    assert!(
        gz.len() < n.len() + n.len() / 1000 + 1024,
        "{} for {}",
        gz.len(),
        n.len()
    );
    let t = text(4 << 20);
    let (gz, stored) = gzip_counting(&t, 2);
    assert_eq!(stored, 0);
    assert!(
        gz.len() < t.len() / 5,
        "text compresses: {} for {}",
        gz.len(),
        t.len()
    );
    assert!(entropy(&n) > STORE_ABOVE_BITS && entropy(&t) < 6.0);
}

#[test]
fn the_dictionary_carries_matches_across_blocks() {
    // 20 kB of 6-bit noise, repeated: each block starts with a repeat of bytes of the block
    // before, found only through the window carried over as dictionary. Without it, every
    // block would spend ~15 kB on its first 20 kB.
    let unit: Vec<u8> = noise(20_000, 5).iter().map(|b| b & 0x3f).collect();
    let data: Vec<u8> = unit.iter().cycle().take(4 * BLOCK).copied().collect();
    let gz = gzip(&data);
    assert!(
        gz.len() < unit.len() * 3 / 2,
        "repeats across blocks are found: {} bytes",
        gz.len()
    );
    assert_eq!(gunzip(&gz), data);
}

#[test]
fn empty_and_tiny_inputs_are_valid_gzip() {
    for data in [&b""[..], b"x", &text(BLOCK)[..], &text(BLOCK + 1)[..]] {
        let gz = gzip(data);
        assert_eq!(gunzip(&gz), data, "{} bytes", data.len());
    }
}
