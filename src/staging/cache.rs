//! The buildpack cache kept between builds (`--cache-dir`): copied into the build before staging
//! and written back only after a successful one, so a failed or killed build never leaves a
//! half-written cache, and the staging user never writes outside the build's work directory.

use crate::fsutil::copy_tree;
use std::fs;
use std::io;
use std::path::Path;

/// Restores `saved` (if it exists) into the empty build cache `cache`.
pub fn restore(saved: &Path, cache: &Path) -> io::Result<u64> {
    if !saved.is_dir() {
        return Ok(0);
    }
    copy_tree(saved, cache)
}

/// Replaces `saved` with the build cache `cache`: written beside it, then swapped in.
pub fn save(cache: &Path, saved: &Path) -> io::Result<u64> {
    let parent = saved.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let fresh = tempfile::Builder::new()
        .prefix(".cache-new-")
        .tempdir_in(parent)?;
    let bytes = copy_tree(cache, fresh.path())?;
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
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_then_save_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let saved = d.path().join("saved");
        let build = d.path().join("build");
        fs::create_dir_all(&build).unwrap();
        assert_eq!(restore(&saved, &build).unwrap(), 0, "no cache yet");
        fs::create_dir_all(build.join("final/pkgs")).unwrap();
        fs::write(build.join("final/pkgs/a.whl"), "wheel").unwrap();
        std::os::unix::fs::symlink("pkgs/a.whl", build.join("final/latest")).unwrap();
        assert_eq!(save(&build, &saved).unwrap(), 5);
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
