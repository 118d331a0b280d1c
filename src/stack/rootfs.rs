//! A stack image's layers unpacked into a root filesystem for the staging sandbox, once per
//! stack manifest digest (unpacked beside, then renamed into place: never seen half-done).

use super::beneath::{walk, WalkError};
use super::unpack::{apply_layer, UnpackError};
use crate::report::MeteredRead;
use flate2::read::GzDecoder;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Directories the sandbox mounts over or writes to; created when a stack lacks them.
const MOUNT_POINTS: &[&str] = &["tmp", "proc", "dev", "home/vcap"];

/// The layer's tar stream (plain, gzip or zstd, by magic number); `progress` is told how many
/// bytes of the blob were read.
fn open_layer<'a>(path: &Path, progress: impl FnMut(u64) + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut f = BufReader::new(MeteredRead::new(File::open(path)?, progress));
    let mut magic = [0u8; 4];
    let n = {
        use std::io::BufRead;
        let buf = f.fill_buf()?;
        let n = buf.len().min(4);
        magic[..n].copy_from_slice(&buf[..n]);
        n
    };
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        return Ok(Box::new(GzDecoder::new(f)));
    }
    if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        // Streaming; a frame asking for a window over 2^27 bytes (128 MiB, zstd's own default
        // limit, what `zstd --long` writes) is refused rather than allocated.
        let mut z = zstd::stream::read::Decoder::with_buffer(f)?;
        z.window_log_max(27)?;
        return Ok(Box::new(z));
    }
    Ok(Box::new(f))
}

/// Creates the mount points a stack lacks. One behind a symbolic link is left alone: the
/// sandbox resolves it inside the rootfs, and nothing here writes through a link.
fn mount_points(root: BorrowedFd) -> io::Result<()> {
    for dir in MOUNT_POINTS {
        match walk(root, Path::new(dir), true) {
            Ok(_) | Err(WalkError::Symlink(_)) | Err(WalkError::NotDir(_)) => {}
            Err(WalkError::Io(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Unpacks `layers` (digest and blob file, bottom first) into `dest` unless it exists already;
/// `progress` is told how many blob bytes were read so far, all layers together.
pub fn unpack(
    layers: &[(String, PathBuf)],
    dest: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<(), UnpackError> {
    let rootfs_err = |source| UnpackError::Rootfs {
        dir: dest.display().to_string(),
        source,
    };
    if dest.is_dir() {
        return Ok(());
    }
    let parent = dest.parent().expect("rootfs dir has a parent");
    fs::create_dir_all(parent).map_err(rootfs_err)?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)
        .map_err(rootfs_err)?;
    let root: OwnedFd = File::open(tmp.path()).map_err(rootfs_err)?.into();
    let mut before = 0;
    for (digest, path) in layers {
        let size = fs::metadata(path).map_or(0, |m| m.len());
        let tar =
            open_layer(path, |n| progress(before + n)).map_err(|source| UnpackError::Layer {
                layer: digest.clone(),
                source,
            })?;
        apply_layer(tar, root.as_fd(), digest)?;
        before += size;
    }
    mount_points(root.as_fd()).map_err(rootfs_err)?;
    // The staging user reads the rootfs; a temporary directory starts out private.
    rustix::fs::fchmod(&root, rustix::fs::Mode::from_raw_mode(0o755))
        .map_err(|e| rootfs_err(e.into()))?;
    let tmp = tmp.keep();
    match fs::rename(&tmp, dest) {
        Ok(()) => Ok(()),
        // Another build unpacked the same stack meanwhile: keep theirs.
        Err(_) if dest.is_dir() => fs::remove_dir_all(&tmp).map_err(rootfs_err),
        Err(e) => Err(rootfs_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tree::{append_bytes, append_parent_dir, Owner};

    fn layer(dir: &Path, name: &str, build: impl FnOnce(&mut tar::Builder<File>)) -> PathBuf {
        let p = dir.join(name);
        let mut t = tar::Builder::new(File::create(&p).unwrap());
        build(&mut t);
        t.finish().unwrap();
        p
    }

    #[test]
    fn zstd_and_gzip_layers_unpack() {
        let d = tempfile::tempdir().unwrap();
        let mut layers = Vec::new();
        for codec in [crate::layer::Codec::Zstd, crate::layer::Codec::Gzip] {
            let blobs = d.path().join(codec.name());
            let mut w = crate::layer::LayerWriter::with_codec(&blobs, codec).unwrap();
            let r = Owner::ROOT;
            append_parent_dir(w.tar(), "etc/", 0o755, r, 1).unwrap();
            let name = format!("etc/{codec}");
            append_bytes(w.tar(), &name, 0o644, r, 1, codec.name().as_bytes()).unwrap();
            let blob = w.finish().unwrap();
            layers.push((blob.digest, blob.path));
        }
        let dest = d.path().join("rootfs");
        unpack(&layers, &dest, &mut |_| {}).unwrap();
        assert_eq!(fs::read(dest.join("etc/zstd")).unwrap(), b"zstd");
        assert_eq!(fs::read(dest.join("etc/gzip")).unwrap(), b"gzip");
    }

    #[test]
    fn whiteouts_and_mount_points() {
        let d = tempfile::tempdir().unwrap();
        let r = Owner::ROOT;
        let l1 = layer(d.path(), "l1", |t| {
            append_parent_dir(t, "etc/", 0o755, r, 1).unwrap();
            append_bytes(t, "etc/keep", 0o644, r, 1, b"keep").unwrap();
            append_bytes(t, "etc/gone", 0o644, r, 1, b"gone").unwrap();
            append_parent_dir(t, "opt/", 0o755, r, 1).unwrap();
            append_bytes(t, "opt/old", 0o644, r, 1, b"old").unwrap();
        });
        let l2 = layer(d.path(), "l2", |t| {
            append_bytes(t, "etc/.wh.gone", 0o644, r, 1, b"").unwrap();
            append_bytes(t, "opt/.wh..wh..opq", 0o644, r, 1, b"").unwrap();
            append_bytes(t, "opt/new", 0o644, r, 1, b"new").unwrap();
        });
        let dest = d.path().join("rootfs");
        let sizes = fs::metadata(&l1).unwrap().len() + fs::metadata(&l2).unwrap().len();
        let mut read = 0;
        unpack(&[("l1".into(), l1), ("l2".into(), l2)], &dest, &mut |n| {
            read = n
        })
        .unwrap();
        // Progress counts the blobs of all layers, one after the other.
        assert_eq!(read, sizes);
        assert_eq!(fs::read(dest.join("etc/keep")).unwrap(), b"keep");
        assert!(!dest.join("etc/gone").exists());
        assert!(!dest.join("opt/old").exists());
        assert_eq!(fs::read(dest.join("opt/new")).unwrap(), b"new");
        for m in MOUNT_POINTS {
            assert!(dest.join(m).is_dir(), "{m}");
        }
        assert!(!dest.join("etc/.wh.gone").exists());
    }
}
