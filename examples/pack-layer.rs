//! `pack-layer DIR OUT_DIR gzip|zstd`: packs DIR as dropship packs an app layer (tar, compressed
//! on every core, both digests) and prints one JSON object: seconds, tar and blob sizes, the
//! codec and level. Used by `bench` to put the packing beside `tar | pigz` on the same tree.

use dropship::layer::{codec, pack_dir, Codec};
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out, codec_name] = &args[..] else {
        eprintln!("usage: pack-layer DIR OUT_DIR gzip|zstd");
        std::process::exit(2);
    };
    let codec = match codec_name.as_str() {
        "gzip" => Codec::Gzip,
        "zstd" => Codec::Zstd,
        other => {
            eprintln!("pack-layer: unknown codec {other:?}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let blob = match pack_dir(Path::new(dir), Path::new(out), codec) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("pack-layer: {e}");
            std::process::exit(1);
        }
    };
    let level = match codec {
        Codec::Gzip => codec::GZIP_LEVEL as i32,
        Codec::Zstd => codec::ZSTD_LEVEL,
    };
    let seconds = start.elapsed().as_secs_f64();
    println!(
        r#"{{"seconds": {seconds:.3}, "tar_size": {}, "size": {}, "codec": "{codec}", "level": {level}, "digest": "{}"}}"#,
        blob.tar_size, blob.size, blob.digest
    );
}
