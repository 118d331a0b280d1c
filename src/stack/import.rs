//! `dropship stack import`: a root filesystem (a directory, or a tarball such as a cflinuxfs4
//! release or an mmdebstrap output) becomes one deterministic layer. A rootfs without a vcap
//! user (uid 2000) with /home/vcap, or without /tmp, gets them, and the caller is told.

use crate::layer::tree::{append_bytes, append_parent_dir, append_tree, Owner, TreeOptions};
use crate::layer::{fixed_mtime, LayerBlob, LayerWriter};
use flate2::read::GzDecoder;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

const VCAP_PASSWD: &str = "vcap:x:2000:2000:vcap:/home/vcap:/bin/sh";
const VCAP_GROUP: &str = "vcap:x:2000:";
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

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
    passwd: Option<String>,
    group: Option<String>,
}

fn finish_rootfs<W: Write>(tar: &mut tar::Builder<W>, seen: Seen) -> io::Result<Vec<String>> {
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

fn read_small(path: &Path) -> io::Result<Option<String>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() <= MAX_ACCOUNT_FILE => {
            Ok(Some(std::fs::read_to_string(path)?))
        }
        _ => Ok(None),
    }
}

fn from_dir<W: Write>(tar: &mut tar::Builder<W>, src: &Path) -> io::Result<Seen> {
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
    let mut seen = Seen::default();
    for d in ["etc", "tmp", "home", "home/vcap"] {
        if src.join(d).is_dir() {
            seen.dirs.insert(d.to_string());
        }
    }
    seen.passwd = read_small(&src.join("etc/passwd"))?;
    seen.group = read_small(&src.join("etc/group"))?;
    Ok(seen)
}

fn clean(path: &Path) -> io::Result<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "non-UTF-8 path in rootfs tarball",
                )
            })?),
            Component::CurDir | Component::RootDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("rootfs tarball entry {} leaves the root", path.display()),
                ))
            }
        }
    }
    Ok(parts.join("/"))
}

fn from_tarball<W: Write>(tar: &mut tar::Builder<W>, src: &Path) -> io::Result<Seen> {
    let mut f = BufReader::with_capacity(1 << 20, File::open(src)?);
    let gz = f.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut archive = tar::Archive::new(reader);
    let mut seen = Seen::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = clean(&entry.path()?)?;
        if path.is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            seen.dirs.insert(path.clone());
        }
        if (path == "etc/passwd" || path == "etc/group") && kind.is_file() {
            let mut text = String::new();
            (&mut entry)
                .take(MAX_ACCOUNT_FILE)
                .read_to_string(&mut text)?;
            if path == "etc/passwd" {
                seen.passwd = Some(text);
            } else {
                seen.group = Some(text);
            }
            continue;
        }
        let mut header = entry.header().clone();
        let name = if kind.is_dir() {
            format!("{path}/")
        } else {
            path
        };
        if kind.is_symlink() || kind == tar::EntryType::Link {
            let target = entry.link_name()?.unwrap_or_default().into_owned();
            let target = if kind == tar::EntryType::Link {
                PathBuf::from(clean(&target)?)
            } else {
                target
            };
            tar.append_link(&mut header, &name, &target)?;
        } else {
            tar.append_data(&mut header, &name, &mut entry)?;
        }
    }
    Ok(seen)
}

/// Turns the rootfs at `src` (directory or tarball, optionally gzipped) into a layer in `dir`.
pub fn rootfs_layer(src: &Path, dir: &Path) -> io::Result<Imported> {
    let mut w = LayerWriter::create(dir)?;
    let seen = if src.is_dir() {
        from_dir(w.tar(), src)?
    } else {
        from_tarball(w.tar(), src)?
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
        let out = rootfs_layer(&root, &d.path().join("blobs")).unwrap();
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
        let again = rootfs_layer(&root, &d.path().join("blobs2")).unwrap();
        assert_eq!(again.layer.digest, out.layer.digest, "deterministic");

        // The same rootfs as a tarball.
        let tarball = d.path().join("root.tar");
        let mut t = tar::Builder::new(File::create(&tarball).unwrap());
        t.append_dir_all(".", &root).unwrap();
        t.finish().unwrap();
        let from_tar = rootfs_layer(&tarball, &d.path().join("blobs3")).unwrap();
        let names = entries(&from_tar.layer);
        for want in ["bin/sh", "etc/passwd", "tmp/", "home/vcap/"] {
            assert!(
                names.iter().any(|(n, _)| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert!(from_tar.fixes.iter().any(|f| f.contains("/etc/passwd")));
    }
}
