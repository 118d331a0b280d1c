//! A stack image's layers unpacked into a root filesystem for the staging sandbox, once per
//! stack manifest digest (unpacked beside, then renamed into place: never seen half-done).

use flate2::read::GzDecoder;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Directories the sandbox mounts over or writes to; created when a stack lacks them.
const MOUNT_POINTS: &[&str] = &["tmp", "proc", "dev", "home/vcap"];

fn open_layer(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = BufReader::new(File::open(path)?);
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
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{}: zstd-compressed stack layers are not supported yet",
                path.display()
            ),
        ));
    }
    Ok(Box::new(f))
}

/// A layer path made relative and checked: no `..`, no root.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Applies one layer (tar, optionally gzipped) onto `dest`, honouring OCI whiteouts.
pub fn apply_layer(layer: &Path, dest: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(open_layer(layer)?);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let Some(rel) = clean(&entry.path()?) else {
            continue;
        };
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let parent = rel.parent().unwrap_or(Path::new(""));
        if name == ".wh..wh..opq" {
            let dir = dest.join(parent);
            if let Ok(children) = fs::read_dir(&dir) {
                for child in children {
                    remove_any(&child?.path())?;
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            remove_any(&dest.join(parent).join(hidden))?;
            continue;
        }
        match entry.header().entry_type() {
            // The sandbox gets its own /dev; device nodes need privileges we may not have.
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => continue,
            _ => {}
        }
        // A file replacing a directory (or the reverse) from a lower layer.
        let target = dest.join(&rel);
        if let Ok(m) = fs::symlink_metadata(&target) {
            if m.is_dir() != entry.header().entry_type().is_dir() {
                remove_any(&target)?;
            }
        }
        entry.unpack_in(dest)?;
    }
    Ok(())
}

/// Unpacks `layers` (bottom first) into `dest` unless it exists already.
pub fn unpack(layers: &[PathBuf], dest: &Path) -> io::Result<()> {
    if dest.is_dir() {
        return Ok(());
    }
    let parent = dest.parent().expect("rootfs dir has a parent");
    fs::create_dir_all(parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)?;
    for layer in layers {
        apply_layer(layer, tmp.path())
            .map_err(|e| io::Error::new(e.kind(), format!("unpacking {}: {e}", layer.display())))?;
    }
    for dir in MOUNT_POINTS {
        let p = tmp.path().join(dir);
        if fs::symlink_metadata(&p).is_err() {
            fs::create_dir_all(&p)?;
        }
    }
    let tmp = tmp.keep();
    // The staging user reads the rootfs; a temporary directory starts out private.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    match fs::rename(&tmp, dest) {
        Ok(()) => Ok(()),
        // Another build unpacked the same stack meanwhile: keep theirs.
        Err(_) if dest.is_dir() => fs::remove_dir_all(&tmp),
        Err(e) => Err(e),
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
        unpack(&[l1, l2], &dest).unwrap();
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
