//! Tests of `extract_zip` budgets and EOCD checks: zip bombs, entry counts, sizes, lying
//! headers, truncated zips.

use super::testutil::{extract, refused, zip_of, Ent, Sandbox};
use super::*;
use std::fs;

/// Sets the uncompressed size of the only entry, in its local and central headers.
fn set_size(bytes: &mut [u8], size: u32) {
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    bytes[22..26].copy_from_slice(&size.to_le_bytes());
    let cd = (0..bytes.len())
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x01\x02"))
        .unwrap();
    bytes[cd + 24..cd + 28].copy_from_slice(&size.to_le_bytes());
}

#[test]
fn ratio_bomb_stops_early() {
    let zeros = vec![0u8; 64 << 20];
    let bytes = zip_of(&[("bomb", Ent::File(&zeros, None))]);
    assert!(
        bytes.len() < 1 << 20,
        "test zip should be small: {}",
        bytes.len()
    );
    let limits = Limits {
        max_ratio: 200,
        ..Limits::default()
    };
    let sb = refused(
        &bytes,
        &limits,
        &["expands to more than 200 times", "--max-zip-ratio"],
    );
    let written = fs::metadata(sb.dest.join("bomb")).map_or(0, |m| m.len());
    assert!(
        written <= limits::RATIO_FLOOR,
        "wrote {written} bytes before stopping"
    );
}

#[test]
fn too_many_entries() {
    let names: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
    let entries: Vec<_> = names
        .iter()
        .map(|n| (n.as_str(), Ent::File(b"x", None)))
        .collect();
    let bytes = zip_of(&entries);
    let ten = Limits {
        max_files: 10,
        ..Limits::default()
    };
    let sb = Sandbox::new();
    let err = extract(&sb, &bytes, &ten).unwrap_err();
    let want = format!(
        "{}: more than 10 entries (limit --max-app-files / DROPSHIP_MAX_APP_FILES)",
        sb.tmp.path().join("app.zip").display()
    );
    assert_eq!(err.to_string(), want);
    assert!(sb.listing().is_empty(), "refused before writing anything");
    sb.assert_contained();
    let eleven = Limits {
        max_files: 11,
        ..Limits::default()
    };
    assert_eq!(extract(&Sandbox::new(), &bytes, &eleven).unwrap().files, 11);
}

#[test]
fn too_many_bytes_stops_at_the_limit() {
    let data = vec![b'a'; 300_000];
    let bytes = zip_of(&[
        ("one", Ent::File(&data, None)),
        ("two", Ent::File(&data, None)),
    ]);
    let limits = Limits {
        max_bytes: 400_000,
        ..Limits::default()
    };
    let sb = refused(
        &bytes,
        &limits,
        &[
            "more than 400000 bytes",
            "--max-app-size / DROPSHIP_MAX_APP_SIZE",
        ],
    );
    // The two files may be written at once (zip_workers): what counts is their total.
    let size = |n| fs::metadata(sb.dest.join(n)).map_or(0, |m| m.len());
    let written = size("one") + size("two");
    assert!(written <= 400_000, "wrote {written} bytes in all");
}

#[test]
fn header_that_understates_the_size_is_caught() {
    let data = vec![b'a'; 1 << 20];
    let mut bytes = zip_of(&[("liar", Ent::File(&data, None))]);
    set_size(&mut bytes, 1000);
    let sb = refused(&bytes, &Limits::default(), &["entry \"liar\"", "corrupt"]);
    let written = fs::metadata(sb.dest.join("liar")).map_or(0, |m| m.len());
    assert!(
        written <= 1000,
        "wrote {written} bytes past a 1000-byte header"
    );
}

#[test]
fn header_that_overstates_the_size_does_not_count() {
    let sb = Sandbox::new();
    let mut bytes = zip_of(&[("small", Ent::File(b"hello", None))]);
    set_size(&mut bytes, u32::MAX - 1);
    let limits = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    let stats = extract(&sb, &bytes, &limits).unwrap();
    assert_eq!(stats.bytes, 5);
    assert_eq!(fs::read(sb.dest.join("small")).unwrap(), b"hello");
}

#[test]
fn truncated_zip_or_not_a_zip() {
    let bytes = zip_of(&[
        ("a", Ent::File(&[7u8; 5000], None)),
        ("b", Ent::File(b"b", None)),
    ]);
    refused(
        &bytes[..bytes.len() / 2],
        &Limits::default(),
        &["app.zip", "truncated or not a zip file"],
    );
    refused(
        b"just some text\n",
        &Limits::default(),
        &["app.zip: truncated or not a zip file"],
    );
}

#[test]
fn absurd_central_directory_is_refused() {
    let mut bytes = zip_of(&[("a", Ent::File(b"a", None))]);
    let eocd = bytes.len() - 22;
    bytes[eocd + 12..eocd + 16].copy_from_slice(&0x7000_0000u32.to_le_bytes());
    refused(
        &bytes,
        &Limits::default(),
        &["central directory of 1879048192 bytes"],
    );
}

#[test]
fn declared_entry_count_is_checked_before_loading_the_directory() {
    let mut bytes = zip_of(&[("a", Ent::File(b"a", None))]);
    let eocd = bytes.len() - 22;
    bytes[eocd + 8..eocd + 12].copy_from_slice(&[0x60, 0xEA, 0x60, 0xEA]); // 60000 entries
    let ten = Limits {
        max_files: 10,
        ..Limits::default()
    };
    refused(&bytes, &ten, &["more than 10 entries"]);
}
