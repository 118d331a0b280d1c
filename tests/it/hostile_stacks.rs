//! Hostile stack images through the `dropship` binary: a stack is somebody else's image, and
//! its layers are unpacked by root. A layer that plants `etc -> <a host directory>` and a later
//! layer that whites out `etc/` through that link must delete nothing outside the stack's root
//! filesystem, and the build must fail naming the entry.

use crate::support::staging::Fixture;
use crate::support::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    build(&mut t);
    t.into_inner().unwrap()
}

fn entry(t: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: Option<&str>) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(if kind.is_symlink() { 0o777 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    h.set_size(0);
    match target {
        Some(target) => t.append_link(&mut h, path, target).unwrap(),
        None => t.append_data(&mut h, path, std::io::empty()).unwrap(),
    }
}

/// Writes an OCI image layout at `dir` tagged `tag`: `layers` are uncompressed tars, stored
/// gzipped (the first) and plain (the others), as registries hand both out.
fn oci_layout(dir: &Path, tag: &str, layers: &[Vec<u8>]) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = digest(bytes);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), bytes).unwrap();
        d
    };
    let mut descriptors = Vec::new();
    for (i, tar) in layers.iter().enumerate() {
        let (bytes, media_type) = if i == 0 {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(tar).unwrap();
            (
                gz.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (tar.clone(), "application/vnd.oci.image.layer.v1.tar")
        };
        descriptors
            .push(json!({"mediaType": media_type, "digest": put(&bytes), "size": bytes.len()}));
    }
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(&config), "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": put(&manifest), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

#[test]
fn whiteouts_through_a_planted_symlink_delete_nothing_on_the_host() {
    let mut f = Fixture::new();
    f.buildpack(
        "ok",
        &[
            ("detect", "echo ok"),
            ("finalize", "exit 0"),
            ("release", "echo ---"),
        ],
    );
    let host = f.path("host-etc");
    std::fs::create_dir_all(host.join("sub")).unwrap();
    std::fs::write(host.join("passwd"), "host file\n").unwrap();
    std::fs::write(host.join("sub/keep"), "host file\n").unwrap();
    let host_str = host.to_str().unwrap();
    let lower = tar_of(|t| entry(t, tar::EntryType::Symlink, "etc", Some(host_str)));
    let upper = tar_of(|t| {
        entry(t, tar::EntryType::Regular, "etc/.wh..wh..opq", None);
        entry(t, tar::EntryType::Regular, "etc/.wh.passwd", None);
    });
    let stack_dir = f.path("hostile-stack");
    oci_layout(&stack_dir, "hostile", &[lower, upper]);
    f.stack = format!("oci:{}:hostile", stack_dir.display());

    let o = f.build(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(r#"entry "etc/.wh..wh..opq" goes through the symlink "etc": refused"#),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(host.join("passwd")).unwrap(), b"host file\n");
    assert_eq!(
        std::fs::read(host.join("sub/keep")).unwrap(),
        b"host file\n"
    );
    assert_eq!(std::fs::read_dir(&host).unwrap().count(), 2);
}
