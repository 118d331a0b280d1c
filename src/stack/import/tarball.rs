//! A rootfs tarball copied entry by entry into the stack layer, with the checks the unpacker
//! will make: no entry leaves the root, none goes through a symbolic link of the tarball
//! (nor does a hard link's target), no OCI whiteout names.

use super::{ImportError, Seen, MAX_ACCOUNT_FILE};
use crate::report::MeteredRead;
use flate2::read::GzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

fn refused(entry: &Path, why: &str) -> ImportError {
    ImportError::Refused {
        entry: entry.display().to_string(),
        why: why.to_string(),
    }
}

/// `path` relative, `/`-separated, checked: no `..`, UTF-8.
fn clean(entry: &Path, path: &Path) -> Result<String, ImportError> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => {
                parts.push(p.to_str().ok_or_else(|| refused(entry, "is not UTF-8"))?)
            }
            Component::CurDir | Component::RootDir => {}
            _ => return Err(refused(entry, "leaves the root filesystem")),
        }
    }
    Ok(parts.join("/"))
}

/// The first symbolic link (seen earlier in the tarball) that `path` goes through.
fn through_link<'a>(seen: &Seen, path: &'a str) -> Option<&'a str> {
    path.match_indices('/')
        .map(|(i, _)| &path[..i])
        .find(|p| seen.links.contains(*p))
}

fn check(
    seen: &mut Seen,
    entry: &Path,
    path: &str,
    kind: tar::EntryType,
) -> Result<(), ImportError> {
    if let Some(link) = through_link(seen, path) {
        return Err(ImportError::ThroughSymlink {
            entry: entry.display().to_string(),
            link: link.to_string(),
        });
    }
    if path
        .rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with(".wh."))
    {
        return Err(refused(entry, "has an OCI whiteout name"));
    }
    // A later entry replaces an earlier one at the same path.
    if kind.is_symlink() {
        seen.links.insert(path.to_string());
        seen.dirs.remove(path);
    } else {
        seen.links.remove(path);
        if kind.is_dir() {
            seen.dirs.insert(path.to_string());
        } else {
            seen.dirs.remove(path);
        }
    }
    Ok(())
}

fn hardlink_target(seen: &Seen, entry: &Path, target: &Path) -> Result<PathBuf, ImportError> {
    let to = clean(entry, target)?;
    match through_link(seen, &to) {
        Some(link) => Err(refused(
            entry,
            &format!("links to {to:?} through the symlink {link:?}"),
        )),
        None if to.is_empty() => Err(refused(entry, "is a hard link to the root")),
        None => Ok(PathBuf::from(to)),
    }
}

/// `progress` is told how many bytes of the tarball were read so far.
pub(super) fn from_tarball<W: Write>(
    tar: &mut tar::Builder<W>,
    src: &Path,
    progress: impl FnMut(u64),
) -> Result<Seen, ImportError> {
    let file = MeteredRead::new(File::open(src)?, progress);
    let mut f = BufReader::with_capacity(1 << 20, file);
    let gz = f.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + '_> = if gz {
        Box::new(GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut archive = tar::Archive::new(reader);
    let mut seen = Seen::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let path = clean(&raw, &raw)?;
        if path.is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        check(&mut seen, &raw, &path, kind)?;
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
                hardlink_target(&seen, &raw, &target)?
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
