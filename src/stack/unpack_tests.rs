//! Hostile layers: whatever a layer plants, nothing outside the rootfs changes.

use super::super::rootfs::unpack;
use crate::layer::tree::{append_bytes, append_parent_dir, Owner};
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const R: Owner = Owner::ROOT;

fn link(t: &mut tar::Builder<File>, kind: tar::EntryType, path: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o777);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    t.append_link(&mut h, path, target).unwrap();
}

fn symlink(t: &mut tar::Builder<File>, path: &str, target: &str) {
    link(t, tar::EntryType::Symlink, path, target);
}

fn hardlink(t: &mut tar::Builder<File>, path: &str, target: &str) {
    link(t, tar::EntryType::Link, path, target);
}

/// A temp dir with `outside/` (a file and a subdirectory) next to where the rootfs goes.
struct Case {
    dir: tempfile::TempDir,
    layers: Vec<(String, PathBuf)>,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("outside");
        fs::create_dir_all(out.join("sub")).unwrap();
        fs::write(out.join("file"), "host").unwrap();
        fs::write(out.join("sub/f"), "host").unwrap();
        Case {
            dir,
            layers: Vec::new(),
        }
    }

    fn outside(&self) -> String {
        self.dir.path().join("outside").display().to_string()
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn layer(&mut self, build: impl FnOnce(&mut tar::Builder<File>, &str)) -> &mut Self {
        let digest = format!("sha256:{}", self.layers.len());
        let p = self.dir.path().join(format!("layer{}", self.layers.len()));
        let mut t = tar::Builder::new(File::create(&p).unwrap());
        build(&mut t, &self.outside());
        t.finish().unwrap();
        self.layers.push((digest, p));
        self
    }

    /// Unpacks; checks that `outside/` is exactly as it was; returns the error's text.
    fn unpack(&self) -> Result<(), String> {
        let r = unpack(&self.layers, &self.rootfs(), &mut |_| ()).map_err(|e| e.to_string());
        let out = Path::new(&self.outside()).to_path_buf();
        let mut names: Vec<_> = walkdir::WalkDir::new(&out)
            .into_iter()
            .map(|e| e.unwrap().path().strip_prefix(&out).unwrap().to_path_buf())
            .collect();
        names.sort();
        assert_eq!(names, ["", "file", "sub", "sub/f"].map(PathBuf::from));
        assert_eq!(fs::read(out.join("file")).unwrap(), b"host");
        assert_eq!(fs::read(out.join("sub/f")).unwrap(), b"host");
        assert_eq!(fs::metadata(out.join("file")).unwrap().nlink(), 1);
        r
    }
}

/// A lower layer with `etc -> <outside>` (absolute), then `upper`.
fn through_etc(upper: impl FnOnce(&mut tar::Builder<File>, &str)) -> Case {
    let mut c = Case::new();
    c.layer(|t, out| symlink(t, "etc", out)).layer(upper);
    c
}

#[test]
fn whiteouts_through_a_symlink_are_refused() {
    let err = through_etc(|t, _| append_bytes(t, "etc/.wh..wh..opq", 0o644, R, 1, b"").unwrap())
        .unpack()
        .unwrap_err();
    assert_eq!(
        err,
        r#"stack layer sha256:1: entry "etc/.wh..wh..opq" goes through the symlink "etc": refused"#
    );
    let err = through_etc(|t, _| append_bytes(t, "etc/.wh.file", 0o644, R, 1, b"").unwrap())
        .unpack()
        .unwrap_err();
    assert!(
        err.contains(r#"entry "etc/.wh.file" goes through the symlink "etc""#),
        "{err}"
    );
    let err = through_etc(|t, _| append_bytes(t, "etc/.wh..", 0o644, R, 1, b"").unwrap())
        .unpack()
        .unwrap_err();
    assert!(err.contains("is not a valid whiteout"), "{err}");
}

#[test]
fn writes_through_a_symlink_are_refused() {
    let err = through_etc(|t, _| append_bytes(t, "etc/newfile", 0o644, R, 1, b"x").unwrap())
        .unpack()
        .unwrap_err();
    assert!(
        err.contains(r#"entry "etc/newfile" goes through the symlink "etc""#),
        "{err}"
    );
    let err = through_etc(|t, _| append_parent_dir(t, "etc/sub/deeper/", 0o755, R, 1).unwrap())
        .unpack()
        .unwrap_err();
    assert!(err.contains(r#"goes through the symlink "etc""#), "{err}");
    // A relative link that stays inside is refused all the same: layers record real paths.
    let mut c = Case::new();
    c.layer(|t, _| {
        append_parent_dir(t, "usr/", 0o755, R, 1).unwrap();
        symlink(t, "bin", "usr");
        append_bytes(t, "bin/sh", 0o755, R, 1, b"sh").unwrap();
    });
    let err = c.unpack().unwrap_err();
    assert!(
        err.contains(r#"entry "bin/sh" goes through the symlink "bin""#),
        "{err}"
    );
    assert!(!c.rootfs().exists(), "a failed unpack leaves no rootfs");
}

#[test]
fn entries_replacing_links_replace_the_link_not_its_target() {
    let mut c = through_etc(|t, _| append_bytes(t, "etc", 0o644, R, 1, b"now a file").unwrap());
    c.layer(|t, out| {
        symlink(t, "f", &format!("{out}/file"));
        append_bytes(t, "f", 0o644, R, 1, b"mine").unwrap();
        symlink(t, "d", out);
        append_parent_dir(t, "d/", 0o755, R, 1).unwrap();
        append_bytes(t, "d/x", 0o644, R, 1, b"x").unwrap();
    });
    c.unpack().unwrap();
    let root = c.rootfs();
    assert_eq!(fs::read(root.join("etc")).unwrap(), b"now a file");
    assert_eq!(fs::read(root.join("f")).unwrap(), b"mine");
    assert!(fs::symlink_metadata(root.join("d")).unwrap().is_dir());
}

#[test]
fn removals_delete_links_not_their_targets() {
    let mut c = Case::new();
    c.layer(|t, out| {
        for d in ["a/", "b/", "c/"] {
            append_parent_dir(t, d, 0o755, R, 1).unwrap();
        }
        symlink(t, "a/l", out);
        symlink(t, "b/l", out);
        symlink(t, "c/l", "/");
    })
    .layer(|t, _| {
        append_bytes(t, ".wh.a", 0o644, R, 1, b"").unwrap();
        append_bytes(t, "b/.wh..wh..opq", 0o644, R, 1, b"").unwrap();
        append_bytes(t, "c", 0o644, R, 1, b"file replaces dir").unwrap();
    });
    c.unpack().unwrap();
    let root = c.rootfs();
    assert!(!root.join("a").exists());
    assert_eq!(fs::read_dir(root.join("b")).unwrap().count(), 0);
    assert_eq!(fs::read(root.join("c")).unwrap(), b"file replaces dir");
}

#[test]
fn hard_links_stay_inside_and_never_go_through_links() {
    let mut c = Case::new();
    c.layer(|t, _| hardlink(t, "evil", "../../outside/file"));
    let err = c.unpack().unwrap_err();
    assert!(
        err.contains(
            r#"entry "evil" links to "../../outside/file", outside the root filesystem: refused"#
        ),
        "{err}"
    );
    let mut c = Case::new();
    c.layer(|t, out| hardlink(t, "evil", &format!("{out}/file")));
    let err = c.unpack().unwrap_err();
    assert!(err.contains("which is not there: refused"), "{err}");
    let err = through_etc(|t, _| hardlink(t, "evil", "etc/file"))
        .unpack()
        .unwrap_err();
    assert!(
        err.contains(r#"entry "evil" links to "etc/file" through the symlink "etc": refused"#),
        "{err}"
    );
    let mut c = Case::new();
    c.layer(|t, out| {
        symlink(t, "l", &format!("{out}/file"));
        hardlink(t, "h", "l");
    });
    c.unpack().unwrap();
    let h = fs::symlink_metadata(c.rootfs().join("h")).unwrap();
    assert!(h.file_type().is_symlink(), "the link itself is linked");
}

#[test]
fn parent_dirs_and_dotdot_names_are_refused() {
    let mut c = Case::new();
    c.layer(|t, _| {
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        h.as_gnu_mut().unwrap().name[..8].copy_from_slice(b"a/../../");
        h.set_cksum();
        t.append(&h, &b"x"[..]).unwrap();
    });
    let err = c.unpack().unwrap_err();
    assert!(err.contains("leaves the root filesystem: refused"), "{err}");
}

fn latin1() -> &'static Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(b"bin/caf\xe9"))
}

#[test]
fn owners_modes_links_as_the_tar_says() {
    let mut c = Case::new();
    let vcap = Owner::VCAP;
    c.layer(|t, _| {
        append_parent_dir(t, "bin/", 0o755, R, 1).unwrap();
        append_bytes(t, "bin/su", 0o4755, R, 1_000_000, b"su").unwrap();
        append_parent_dir(t, "home/vcap/", 0o750, vcap, 1).unwrap();
        append_bytes(t, "home/vcap/.profile", 0o600, vcap, 1, b"p").unwrap();
        hardlink(t, "bin/su2", "/bin/su");
        symlink(t, "bin/sh", "/bin/busybox");
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        t.append_data(&mut h, latin1(), &b"l1"[..]).unwrap();
    });
    c.unpack().unwrap();
    let root = c.rootfs();
    let su = fs::metadata(root.join("bin/su")).unwrap();
    assert_eq!(
        (su.permissions().mode() & 0o7777, su.mtime()),
        (0o4755, 1_000_000)
    );
    assert_eq!(su.ino(), fs::metadata(root.join("bin/su2")).unwrap().ino());
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let home = fs::metadata(root.join("home/vcap")).unwrap();
    assert_eq!(home.permissions().mode() & 0o7777, 0o750);
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!((home.uid(), home.gid()), (2000, 2000));
        let profile = fs::metadata(root.join("home/vcap/.profile")).unwrap();
        assert_eq!(profile.uid(), 2000);
    }
}
