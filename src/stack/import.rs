//! `dropship stack import`: a root filesystem (a directory, or a tarball such as a cflinuxfs4
//! release or an mmdebstrap output) becomes one deterministic layer. A rootfs without a vcap
//! user (uid 2000) with /home/vcap, or without /tmp, gets them, and the caller is told.

mod tarball;

use super::beneath::{self, WalkError};
use crate::layer::tree::{append_bytes, append_parent_dir, append_tree, Owner, TreeOptions};
use crate::layer::{fixed_mtime, LayerBlob, LayerWriter};
use rustix::fs::{openat, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const VCAP_PASSWD: &str = "vcap:x:2000:2000:vcap:/home/vcap:/bin/sh";
const VCAP_GROUP: &str = "vcap:x:2000:";
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// Directories the import writes into (account files, mount points): they must be real ones.
const MUST_BE_DIRS: &[&str] = &["etc", "tmp", "home", "home/vcap"];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("entry {entry:?} goes through the symlink {link:?}: refused")]
    ThroughSymlink { entry: String, link: String },
    #[error("entry {entry:?} {why}: refused")]
    Refused { entry: String, why: String },
    #[error("/{0} is a symlink; a stack's /etc, /tmp, /home and /home/vcap must be directories")]
    LinkedDir(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The layer and what had to be added to make the rootfs a usable stack.
pub struct Imported {
    pub layer: LayerBlob,
    pub fixes: Vec<String>,
}

fn has_vcap(passwd: &str, uid_field: usize) -> bool {
    passwd.lines().any(|l| {
        let f: Vec<&str> = l.split(':').collect();
        f.first() == Some(&"vcap") || f.get(uid_field) == Some(&"2000")
    })
}

/// An account file (`/etc/passwd`, `/etc/group`) holding vcap: `existing` as is when it has
/// vcap (or id 2000), else with `entry` appended, else a fresh file with `root` and `entry`.
/// The note says what was added, if anything.
fn ensure_vcap(
    existing: Option<&str>,
    entry: &str,
    root: &str,
    file: &str,
    what: &str,
) -> (String, Option<String>) {
    match existing {
        Some(text) if has_vcap(text, 2) => (text.to_string(), None),
        Some(text) => {
            let mut out = text.to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(entry);
            out.push('\n');
            (out, Some(format!("added {what} to {file}")))
        }
        None => (
            format!("{root}\n{entry}\n"),
            Some(format!("created {file} with root and {what}")),
        ),
    }
}

/// `/etc/passwd` with a vcap user (uid 2000).
pub fn fix_passwd(existing: Option<&str>) -> (String, Option<String>) {
    ensure_vcap(
        existing,
        VCAP_PASSWD,
        "root:x:0:0:root:/root:/bin/sh",
        "/etc/passwd",
        "user vcap (uid 2000)",
    )
}

/// `/etc/group` with a vcap group (gid 2000).
pub fn fix_group(existing: Option<&str>) -> (String, Option<String>) {
    ensure_vcap(
        existing,
        VCAP_GROUP,
        "root:x:0:",
        "/etc/group",
        "group vcap (gid 2000)",
    )
}

/// What the rootfs had of the things a stack needs.
#[derive(Default)]
struct Seen {
    dirs: HashSet<String>,
    /// Symbolic links (tarball input): later entries must not go through them.
    links: HashSet<String>,
    passwd: Option<String>,
    group: Option<String>,
}

fn finish_rootfs<W: Write>(
    tar: &mut tar::Builder<W>,
    seen: Seen,
) -> Result<Vec<String>, ImportError> {
    if let Some(d) = MUST_BE_DIRS.iter().find(|d| seen.links.contains(**d)) {
        return Err(ImportError::LinkedDir(d.to_string()));
    }
    let mut fixes = Vec::new();
    let t = fixed_mtime();
    if !seen.dirs.contains("etc") {
        append_parent_dir(tar, "etc/", 0o755, Owner::ROOT, t)?;
    }
    let (passwd, note) = fix_passwd(seen.passwd.as_deref());
    fixes.extend(note);
    append_bytes(tar, "etc/passwd", 0o644, Owner::ROOT, t, passwd.as_bytes())?;
    let (group, note) = fix_group(seen.group.as_deref());
    fixes.extend(note);
    append_bytes(tar, "etc/group", 0o644, Owner::ROOT, t, group.as_bytes())?;
    if !seen.dirs.contains("tmp") {
        append_parent_dir(tar, "tmp/", 0o1777, Owner::ROOT, t)?;
        fixes.push("added /tmp".into());
    }
    if !seen.dirs.contains("home") {
        append_parent_dir(tar, "home/", 0o755, Owner::ROOT, t)?;
    }
    if !seen.dirs.contains("home/vcap") {
        append_parent_dir(tar, "home/vcap/", 0o755, Owner::VCAP, t)?;
        fixes.push("added /home/vcap owned by vcap".into());
    }
    Ok(fixes)
}

/// `etc/NAME` of the tree open at `root` when it is a small regular file, read without
/// following any link.
fn read_account(root: BorrowedFd, name: &str) -> io::Result<Option<String>> {
    let etc = match beneath::walk(root, Path::new("etc"), false) {
        Ok(Some(etc)) => etc,
        Ok(None) | Err(WalkError::Symlink(_)) | Err(WalkError::NotDir(_)) => return Ok(None),
        Err(WalkError::Io(e)) => return Err(e),
    };
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match openat(&etc, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::LOOP) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > MAX_ACCOUNT_FILE {
        return Ok(None);
    }
    let mut text = String::new();
    file.take(MAX_ACCOUNT_FILE).read_to_string(&mut text)?;
    Ok(Some(text))
}

fn from_dir<W: Write>(tar: &mut tar::Builder<W>, src: &Path) -> Result<Seen, ImportError> {
    let root: OwnedFd = File::open(src)?.into();
    let mut seen = Seen::default();
    for d in MUST_BE_DIRS {
        match beneath::walk(root.as_fd(), Path::new(d), false) {
            Ok(Some(_)) => drop(seen.dirs.insert(d.to_string())),
            Err(WalkError::Symlink(link)) => {
                return Err(ImportError::LinkedDir(link.display().to_string()))
            }
            Ok(None) | Err(WalkError::NotDir(_)) => {}
            Err(WalkError::Io(e)) => return Err(e.into()),
        }
    }
    let opts = TreeOptions {
        prefix: String::new(),
        owner: None,
        mtime: Some(fixed_mtime()),
        keep_setid: true,
        keep_special: true,
        exclude: vec![PathBuf::from("etc/passwd"), PathBuf::from("etc/group")],
        untrusted: None,
    };
    append_tree(tar, src, &opts)?;
    seen.passwd = read_account(root.as_fd(), "passwd")?;
    seen.group = read_account(root.as_fd(), "group")?;
    Ok(seen)
}

/// About how many bytes [`rootfs_layer`] will report for `src`: the files of a directory, the
/// size of a tarball.
pub fn import_size(src: &Path) -> u64 {
    if src.is_dir() {
        crate::fsutil::tally(src).1
    } else {
        std::fs::metadata(src).map_or(0, |m| m.len())
    }
}

/// Turns the rootfs at `src` (directory or tarball, optionally gzipped) into a layer in `dir`;
/// `progress` is told the bytes done so far (see [`import_size`]).
pub fn rootfs_layer(
    src: &Path,
    dir: &Path,
    progress: Box<dyn FnMut(u64) + Send>,
) -> Result<Imported, ImportError> {
    let mut w = LayerWriter::create(dir)?;
    let seen = if src.is_dir() {
        w.on_progress(progress);
        from_dir(w.tar(), src)?
    } else {
        tarball::from_tarball(w.tar(), src, progress)?
    };
    let fixes = finish_rootfs(w.tar(), seen)?;
    Ok(Imported {
        layer: w.finish()?,
        fixes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    #[test]
    fn passwd_gets_vcap_once() {
        let (p, note) = fix_passwd(Some("root:x:0:0:root:/root:/bin/sh"));
        assert_eq!(p, format!("root:x:0:0:root:/root:/bin/sh\n{VCAP_PASSWD}\n"));
        assert!(note.unwrap().contains("vcap"));
        let (again, note) = fix_passwd(Some(&p));
        assert_eq!((again, note), (p, None));
        let (p, note) = fix_passwd(Some("app:x:2000:2000::/home/vcap:/bin/sh\n"));
        assert!(
            note.is_none() && !p.contains("vcap:x"),
            "uid 2000 under another name counts"
        );
        let (p, _) = fix_passwd(None);
        assert!(p.starts_with("root:x:0:0"));
        let (g, note) = fix_group(Some("root:x:0:\n"));
        assert!(g.ends_with("vcap:x:2000:\n") && note.is_some());
    }

    fn entries(layer: &LayerBlob) -> Vec<(String, u64)> {
        let f = File::open(&layer.path).unwrap();
        let mut a = tar::Archive::new(GzDecoder::new(f));
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().uid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn directory_and_tarball_give_a_usable_stack() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("bin/sh"), "#!").unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let out = rootfs_layer(&root, &d.path().join("blobs"), Box::new(|_| ())).unwrap();
        let names = entries(&out.layer);
        for want in ["bin/sh", "etc/passwd", "etc/group", "tmp/", "home/vcap/"] {
            assert!(
                names.iter().any(|(n, _)| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert_eq!(names.iter().filter(|(n, _)| n == "etc/passwd").count(), 1);
        assert!(names.contains(&("home/vcap/".to_string(), 2000)));
        assert_eq!(out.fixes.len(), 4, "{:?}", out.fixes);
        let again = rootfs_layer(&root, &d.path().join("blobs2"), Box::new(|_| ())).unwrap();
        assert_eq!(again.layer.digest, out.layer.digest, "deterministic");

        // The same rootfs as a tarball.
        let tarball = d.path().join("root.tar");
        let mut t = tar::Builder::new(File::create(&tarball).unwrap());
        t.append_dir_all(".", &root).unwrap();
        t.finish().unwrap();
        let from_tar = rootfs_layer(&tarball, &d.path().join("blobs3"), Box::new(|_| ())).unwrap();
        let names = entries(&from_tar.layer);
        for want in ["bin/sh", "etc/passwd", "tmp/", "home/vcap/"] {
            assert!(
                names.iter().any(|(n, _)| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert!(from_tar.fixes.iter().any(|f| f.contains("/etc/passwd")));
    }

    fn tarball(dir: &Path, build: impl FnOnce(&mut tar::Builder<File>)) -> PathBuf {
        let p = dir.join("rootfs.tar");
        let mut t = tar::Builder::new(File::create(&p).unwrap());
        build(&mut t);
        t.finish().unwrap();
        p
    }

    fn link(t: &mut tar::Builder<File>, kind: tar::EntryType, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        t.append_link(&mut h, path, target).unwrap();
    }

    fn import_err(src: &Path, dir: &Path) -> String {
        match rootfs_layer(src, &dir.join("blobs"), Box::new(|_| ())) {
            Ok(_) => panic!("{} imported", src.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tarballs_going_through_their_links_are_refused() {
        let d = tempfile::tempdir().unwrap();
        const SYM: tar::EntryType = tar::EntryType::Symlink;
        type Build = Box<dyn FnOnce(&mut tar::Builder<File>)>;
        let cases: [(&str, Build); 4] = [
            (
                r#"entry "x/y" goes through the symlink "x": refused"#,
                Box::new(|t| {
                    link(t, SYM, "x", "/");
                    append_bytes(t, "x/y", 0o644, Owner::ROOT, 1, b"y").unwrap();
                }),
            ),
            (
                r#"entry "h" links to "x/etc/shadow" through the symlink "x": refused"#,
                Box::new(|t| {
                    link(t, SYM, "x", "/");
                    link(t, tar::EntryType::Link, "h", "/x/etc/shadow");
                }),
            ),
            (
                "/etc is a symlink",
                Box::new(|t| link(t, SYM, "etc", "/etc")),
            ),
            (
                r#"entry "opt/.wh.x" has an OCI whiteout name: refused"#,
                Box::new(|t| append_bytes(t, "opt/.wh.x", 0o644, Owner::ROOT, 1, b"").unwrap()),
            ),
        ];
        for (want, build) in cases {
            let err = import_err(&tarball(d.path(), build), d.path());
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn a_directory_whose_etc_is_a_link_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (root, host) = (d.path().join("root"), d.path().join("host-etc"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("passwd"), "host:x:0:0::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(&host, root.join("etc")).unwrap();
        let err = import_err(&root, d.path());
        assert!(err.contains("/etc is a symlink"), "{err}");
    }
}
