//! A directory tree written into a tar stream deterministically: names sorted bytewise,
//! owner and mtime fixed (or kept), setuid/setgid dropped (or kept), symlinks stored as links.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
}

impl Owner {
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };
    /// The Cloud Foundry `vcap` user.
    pub const VCAP: Owner = Owner {
        uid: 2000,
        gid: 2000,
    };
}

#[derive(Debug, Clone)]
pub struct TreeOptions {
    /// Archive path of the tree's root, e.g. `home/vcap/` or `./`; empty: no root entry,
    /// children at the top level.
    pub prefix: String,
    /// Owner of every entry; `None` keeps the files' owners.
    pub owner: Option<Owner>,
    /// mtime of every entry; `None` keeps the files' mtimes.
    pub mtime: Option<u64>,
    /// Keep setuid/setgid bits (a stack's rootfs needs them; an app's droplet must not have them).
    pub keep_setid: bool,
    /// Keep device nodes and fifos (a rootfs); otherwise they are skipped.
    pub keep_special: bool,
    /// Paths (relative to the tree's root) left out, e.g. files the caller writes itself.
    pub exclude: Vec<std::path::PathBuf>,
    /// The tree is another user's work (a droplet): files with more than this many bytes of
    /// holes are refused (a sparse 2 GiB file must not become 2 GiB of zeros in a layer), and
    /// a file with several hard links must belong to `trusted_owner` (else it could be a link
    /// to a file of another user).
    pub untrusted: Option<Untrusted>,
}

#[derive(Debug, Clone, Copy)]
pub struct Untrusted {
    pub max_holes: u64,
    pub trusted_owner: Option<u32>,
}

impl TreeOptions {
    /// The options for app content: vcap-owned, fixed mtime, no setid bits, no device nodes.
    pub fn app(prefix: &str) -> Self {
        TreeOptions {
            prefix: prefix.to_string(),
            owner: Some(Owner::VCAP),
            mtime: Some(super::fixed_mtime()),
            keep_setid: false,
            keep_special: false,
            exclude: Vec::new(),
            untrusted: Some(Untrusted {
                max_holes: 1 << 20,
                trusted_owner: crate::staging::sandbox::staging_owner().map(|(uid, _)| uid),
            }),
        }
    }
}

/// Opens the regular file `rel` of the tree without following any link, and checks it is the
/// file the walk saw and not a sparse file or a foreign hard link.
fn open_checked(
    root: &std::os::fd::OwnedFd,
    rel: &Path,
    meta: &fs::Metadata,
    opts: &TreeOptions,
) -> io::Result<File> {
    use std::os::fd::AsFd;
    let shown = rel.display();
    let (f, st) = crate::safefs::open_file(root.as_fd(), rel)
        .map_err(|e| io::Error::other(e.to_string()))?
        .ok_or_else(|| io::Error::other(format!("{shown} disappeared while it was archived")))?;
    if st.st_ino != meta.ino() || st.st_dev != meta.dev() {
        return Err(io::Error::other(format!(
            "{shown} changed while it was archived"
        )));
    }
    let Some(u) = opts.untrusted else {
        return Ok(f);
    };
    if let Some(owner) = u.trusted_owner {
        if st.st_nlink > 1 && st.st_uid != owner {
            return Err(io::Error::other(format!(
                "{shown} is a hard link to a file of uid {}: refused",
                st.st_uid
            )));
        }
    }
    if meta.blocks() * 512 < meta.len() {
        let holes = crate::safefs::hole_bytes(&f, meta.len());
        if holes > u.max_holes {
            return Err(io::Error::other(format!(
                "{shown} is a sparse file ({} bytes, {holes} of them holes): sparse files are \
                 not stored in images (write the data, or create the file at run time)",
                meta.len()
            )));
        }
    }
    Ok(f)
}

/// What a tree contributed to the archive.
#[derive(Debug, Default, Clone, Copy)]
pub struct TreeStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub skipped: u64,
}

fn new_header(kind: tar::EntryType, mode: u32, owner: Owner, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(owner.uid);
    h.set_gid(owner.gid);
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

/// Appends a directory entry (for parents such as `home/` that the tree itself does not hold).
pub fn append_parent_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    owner: Owner,
    mtime: u64,
) -> io::Result<()> {
    let mut h = new_header(tar::EntryType::Directory, mode, owner, mtime);
    tar.append_data(&mut h, path, io::empty())
}

/// Appends a regular file from bytes held in memory (small generated files only).
pub fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    owner: Owner,
    mtime: u64,
    data: &[u8],
) -> io::Result<()> {
    let mut h = new_header(tar::EntryType::Regular, mode, owner, mtime);
    h.set_size(data.len() as u64);
    tar.append_data(&mut h, path, data)
}

/// A reader that yields exactly `len` bytes or fails: a file that shrinks or grows while it
/// is archived must not corrupt the tar stream.
struct Exact<R> {
    inner: R,
    left: u64,
    path: std::path::PathBuf,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while it was being archived", self.path.display()),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn archive_name(prefix: &str, rel: &Path, is_dir: bool) -> io::Result<String> {
    let rel = rel.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not valid UTF-8", rel.display()),
        )
    })?;
    let mut name = String::with_capacity(prefix.len() + rel.len() + 1);
    name.push_str(prefix);
    name.push_str(rel);
    if is_dir && !name.ends_with('/') {
        name.push('/');
    }
    Ok(name)
}

/// One entry of a tree's walk: its path below the root and what `lstat` said of it.
#[derive(Debug, Clone)]
pub struct Walked {
    pub rel: PathBuf,
    pub meta: fs::Metadata,
}

/// An open tree: the directory (for `openat2` beneath it) and its path.
pub struct Root {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl Root {
    pub fn open(src: &Path) -> io::Result<Root> {
        Ok(Root {
            fd: crate::safefs::open_dir(src)?,
            path: src.to_path_buf(),
        })
    }
}

/// Walks the tree at `src` in archive order (names sorted bytewise, a directory before what
/// it holds, the root first with an empty `rel`), links not followed.
pub fn walk(src: &Path, mut each: impl FnMut(Walked) -> io::Result<()>) -> io::Result<()> {
    let walker = walkdir::WalkDir::new(src)
        .follow_links(false)
        .sort_by(|a, b| {
            a.file_name()
                .as_encoded_bytes()
                .cmp(b.file_name().as_encoded_bytes())
        });
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            io::Error::other(format!("reading {path}: {e}"))
        })?;
        let meta = entry.metadata().map_err(io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(src)
            .expect("walkdir stays under its root")
            .to_path_buf();
        each(Walked { rel, meta })?;
    }
    Ok(())
}

/// Appends one entry of the walk (`rel` below the root): a directory, a file (opened
/// beneath `root`, checked), a symlink, or a device/FIFO when kept; anything else is counted
/// as skipped.
pub fn append_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Root,
    entry: &Walked,
    opts: &TreeOptions,
    stats: &mut TreeStats,
) -> io::Result<()> {
    let (meta, rel) = (&entry.meta, entry.rel.as_path());
    let full = root.path.join(rel);
    let ft = meta.file_type();
    let owner = opts.owner.unwrap_or(Owner {
        uid: meta.uid() as u64,
        gid: meta.gid() as u64,
    });
    let mtime = opts.mtime.unwrap_or(meta.mtime().max(0) as u64);
    let mut mode = meta.mode() & 0o7777;
    if !opts.keep_setid {
        mode &= !0o6000;
    }
    if ft.is_dir() {
        let name = archive_name(&opts.prefix, rel, true)?;
        let mut h = new_header(tar::EntryType::Directory, mode, owner, mtime);
        tar.append_data(&mut h, &name, io::empty())?;
        stats.dirs += 1;
    } else if ft.is_file() {
        let name = archive_name(&opts.prefix, rel, false)?;
        let mut h = new_header(tar::EntryType::Regular, mode, owner, mtime);
        h.set_size(meta.len());
        let f = open_checked(&root.fd, rel, meta, opts)?;
        let reader = Exact {
            inner: f,
            left: meta.len(),
            path: full,
        };
        tar.append_data(&mut h, &name, reader)?;
        stats.files += 1;
        stats.bytes += meta.len();
    } else if ft.is_symlink() {
        let name = archive_name(&opts.prefix, rel, false)?;
        use std::os::fd::AsFd;
        // Beneath the tree's fd, no directory on the way followed: the tree is untrusted.
        let target = crate::safefs::read_link(root.fd.as_fd(), rel)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut h = new_header(tar::EntryType::Symlink, 0o777, owner, mtime);
        tar.append_link(&mut h, &name, &target)?;
        stats.symlinks += 1;
    } else if opts.keep_special && (ft.is_char_device() || ft.is_block_device() || ft.is_fifo()) {
        let name = archive_name(&opts.prefix, rel, false)?;
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        };
        let mut h = new_header(kind, mode, owner, mtime);
        let rdev = meta.rdev();
        h.set_device_major(libc::major(rdev))?;
        h.set_device_minor(libc::minor(rdev))?;
        tar.append_data(&mut h, &name, io::empty())?;
    } else {
        stats.skipped += 1;
    }
    Ok(())
}

/// Appends the tree rooted at `src` (the root itself becomes `opts.prefix` when non-empty).
pub fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    src: &Path,
    opts: &TreeOptions,
) -> io::Result<TreeStats> {
    let mut stats = TreeStats::default();
    let root = Root::open(src)?;
    walk(src, |entry| {
        if entry.rel.as_os_str().is_empty() && opts.prefix.is_empty() {
            return Ok(());
        }
        if opts.exclude.contains(&entry.rel) {
            return Ok(());
        }
        append_entry(tar, &root, &entry, opts, &mut stats)
    })?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn list(tar_bytes: &[u8]) -> Vec<(String, u64, u32, u64, char)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    match h.entry_type() {
                        tar::EntryType::Directory => 'd',
                        tar::EntryType::Symlink => 'l',
                        _ => 'f',
                    },
                )
            })
            .collect()
    }

    #[test]
    fn sorted_fixed_owner_no_setid() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("b")).unwrap();
        fs::write(d.path().join("b/z"), "z").unwrap();
        fs::write(d.path().join("a"), "a").unwrap();
        fs::set_permissions(d.path().join("a"), fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("b/z", d.path().join("c")).unwrap();
        let mut t = tar::Builder::new(Vec::new());
        let stats = append_tree(&mut t, d.path(), &TreeOptions::app("home/vcap/")).unwrap();
        let bytes = t.into_inner().unwrap();
        let entries = list(&bytes);
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "home/vcap/",
                "home/vcap/a",
                "home/vcap/b/",
                "home/vcap/b/z",
                "home/vcap/c"
            ]
        );
        assert!(entries
            .iter()
            .all(|e| e.1 == 2000 && e.3 == crate::layer::fixed_mtime()));
        assert_eq!(entries[1].2, 0o755, "setuid bit dropped");
        assert_eq!(entries[4].4, 'l');
        assert_eq!((stats.files, stats.dirs, stats.symlinks), (2, 2, 1));
    }
}
