//! The buildpack cache kept between builds (`--cache-dir`): copied into the build before staging
//! and written back only after a successful one, so a failed or killed build never leaves a
//! half-written cache, and the staging user never writes outside the build's work directory.

use crate::fsutil::{copy_tree, Copied};
use std::fs;
use std::io;
use std::path::Path;

/// Restores `saved` (if it exists) into the empty build cache `cache`, and marks it used.
/// Symlinks pointing outside the cache are not restored (see [`Copied::dropped_links`]).
pub fn restore(saved: &Path, cache: &Path) -> io::Result<Copied> {
    if !saved.is_dir() {
        return Ok(Copied::default());
    }
    let copied = copy_tree(saved, cache)?;
    touch(saved);
    Ok(copied)
}

/// Sets a directory's mtime to now: the "last used" time least-recently-used eviction reads.
fn touch(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Bytes of the files under `dir`.
pub fn size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Keeps the caches under `root` (one directory each) within `limit` bytes by deleting the
/// least recently used ones; returns the names deleted.
pub fn evict_lru(root: &Path, limit: u64) -> io::Result<Vec<String>> {
    let mut caches: Vec<(std::time::SystemTime, u64, std::path::PathBuf)> = fs::read_dir(root)?
        .flatten()
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let used = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (used, size(&e.path()), e.path())
        })
        .collect();
    caches.sort_by_key(|(used, _, _)| *used);
    let mut total: u64 = caches.iter().map(|(_, s, _)| s).sum();
    let mut gone = Vec::new();
    for (_, bytes, path) in caches {
        if total <= limit {
            break;
        }
        fs::remove_dir_all(&path)?;
        total -= bytes;
        gone.push(
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
    }
    Ok(gone)
}

/// Replaces `saved` with the build cache `cache`: written beside it, then swapped in. Nothing
/// in `cache` (the staging user's) is followed; symlinks pointing outside it are not kept.
pub fn save(cache: &Path, saved: &Path) -> io::Result<Copied> {
    let parent = saved.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let fresh = tempfile::Builder::new()
        .prefix(".cache-new-")
        .tempdir_in(parent)?;
    let copied = copy_tree(cache, fresh.path())?;
    let fresh = fresh.keep();
    if saved.exists() {
        let old = tempfile::Builder::new()
            .prefix(".cache-old-")
            .tempdir_in(parent)?
            .keep();
        fs::rename(saved, old.join("c"))?;
        fs::rename(&fresh, saved)?;
        fs::remove_dir_all(&old)?;
    } else {
        fs::rename(&fresh, saved)?;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_caches_go_first() {
        let d = tempfile::tempdir().unwrap();
        for (name, kb) in [("old", 40), ("mid", 40), ("new", 40)] {
            fs::create_dir_all(d.path().join(name)).unwrap();
            fs::write(d.path().join(name).join("blob"), vec![0u8; kb * 1024]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Using "old" makes it the most recent.
        let scratch = d.path().join(".scratch");
        fs::create_dir_all(&scratch).unwrap();
        restore(&d.path().join("old"), &scratch).unwrap();
        assert_eq!(size(&d.path().join("mid")), 40 * 1024);
        let gone = evict_lru(d.path(), 90 * 1024).unwrap();
        assert_eq!(gone, ["mid"]);
        assert!(d.path().join("old").is_dir() && d.path().join("new").is_dir());
        assert_eq!(evict_lru(d.path(), 0).unwrap().len(), 2);
    }

    #[test]
    fn restore_then_save_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let saved = d.path().join("saved");
        let build = d.path().join("build");
        fs::create_dir_all(&build).unwrap();
        assert_eq!(restore(&saved, &build).unwrap().bytes, 0, "no cache yet");
        fs::create_dir_all(build.join("final/pkgs")).unwrap();
        fs::write(build.join("final/pkgs/a.whl"), "wheel").unwrap();
        std::os::unix::fs::symlink("pkgs/a.whl", build.join("final/latest")).unwrap();
        std::os::unix::fs::symlink("/etc", build.join("final/planted")).unwrap();
        let copied = save(&build, &saved).unwrap();
        assert_eq!(copied.bytes, 5);
        assert_eq!(
            copied.dropped_links,
            [std::path::PathBuf::from("final/planted")]
        );
        assert!(fs::symlink_metadata(saved.join("final/planted")).is_err());
        fs::write(build.join("final/pkgs/a.whl"), "changed").unwrap();
        save(&build, &saved).unwrap();
        let again = d.path().join("again");
        fs::create_dir_all(&again).unwrap();
        restore(&saved, &again).unwrap();
        assert_eq!(
            fs::read_to_string(again.join("final/latest")).unwrap(),
            "changed"
        );
        let leftovers: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 3, "no temporary dirs left: {leftovers:?}");
    }
}
