//! Symlink containment: does a link, followed the way the kernel would follow it, stay
//! inside the app? Checked without touching the disk, over the set of all symlinks of the
//! app, because a lexically harmless target can escape through another link
//! (`a/b/s -> ../..` then `u -> a/b/s/..` lands one level above the app).

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed while resolving one path (Linux's `MAXSYMLINKS`).
pub const MAX_HOPS: usize = 40;

/// Why a symlink is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymlinkError {
    #[error("target is empty")]
    Empty,
    #[error("target is absolute (only relative targets are allowed)")]
    Absolute,
    #[error("resolves outside the app")]
    Escapes,
    #[error("symlink loop (more than {MAX_HOPS} links followed)")]
    Loop,
}

/// Checks that the symlink at `link_path_in_app` (relative to the app root) pointing at
/// `target` resolves inside the app.
///
/// `links` maps the app-relative path of every symlink in the app to its target; symlinks
/// met on the way are followed (at most [`MAX_HOPS`]). Resolution is lexical over that map:
/// `..` pops a component, and the walk fails as soon as it would pop above the app root,
/// even if it comes back in later. Targets that do not exist are fine (dangling links stay
/// inside). Pure: never looks at the file system.
pub fn check_symlink(
    link_path_in_app: &Path,
    target: &Path,
    links: &HashMap<PathBuf, PathBuf>,
) -> Result<(), SymlinkError> {
    if target.as_os_str().is_empty() {
        return Err(SymlinkError::Empty);
    }
    // The link's own directory, then the target, component by component.
    let mut pending: VecDeque<Component> = link_path_in_app
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    pending.extend(target.components());
    let mut here: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(component) = pending.pop_front() {
        match component {
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(SymlinkError::Absolute),
            Component::ParentDir => {
                if here.pop().is_none() {
                    return Err(SymlinkError::Escapes);
                }
            }
            Component::Normal(name) => {
                here.push(name.to_os_string());
                let Some(next) = links.get(&here.iter().collect::<PathBuf>()) else {
                    continue;
                };
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(SymlinkError::Loop);
                }
                if next.as_os_str().is_empty() {
                    return Err(SymlinkError::Empty);
                }
                // Replace the link by its target, read relative to the link's directory.
                here.pop();
                for c in next.components().rev() {
                    pending.push_front(c);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(pairs: &[(&str, &str)]) -> HashMap<PathBuf, PathBuf> {
        pairs
            .iter()
            .map(|(l, t)| (PathBuf::from(l), PathBuf::from(t)))
            .collect()
    }

    fn check(link: &str, all: &HashMap<PathBuf, PathBuf>) -> Result<(), SymlinkError> {
        check_symlink(Path::new(link), &all[Path::new(link)], all)
    }

    #[test]
    fn inside_targets_are_fine() {
        let all = links(&[
            ("a/b/s", "../c/./d"),
            ("t", "a/b/s"),
            ("dangling", "no/such/file"),
        ]);
        for l in ["a/b/s", "t", "dangling"] {
            assert_eq!(check(l, &all), Ok(()), "{l}");
        }
        assert_eq!(
            check_symlink(Path::new("a/x"), Path::new(".."), &all),
            Ok(())
        );
    }

    #[test]
    fn escaping_and_absolute_targets_fail() {
        let all = links(&[
            ("link", "../../etc/passwd"),
            ("abs", "/etc/passwd"),
            ("up", ".."),
        ]);
        assert_eq!(check("link", &all), Err(SymlinkError::Escapes));
        assert_eq!(check("abs", &all), Err(SymlinkError::Absolute));
        assert_eq!(check("up", &all), Err(SymlinkError::Escapes));
        // Leaving and coming back in still counts as leaving: the app root's name is unknown.
        assert_eq!(
            check_symlink(Path::new("x"), Path::new("../app/x"), &all),
            Err(SymlinkError::Escapes)
        );
        assert_eq!(
            check_symlink(Path::new("x"), Path::new(""), &all),
            Err(SymlinkError::Empty)
        );
    }

    #[test]
    fn physical_escape_through_another_link() {
        // `u`'s target looks inside (a/b/s/.. is a/b lexically), but s is the app root.
        let all = links(&[("a/b/s", "../.."), ("u", "a/b/s/..")]);
        assert_eq!(check("a/b/s", &all), Ok(()));
        assert_eq!(check("u", &all), Err(SymlinkError::Escapes));
    }

    #[test]
    fn escape_through_a_chain_of_absolute_link() {
        let all = links(&[("a", "/"), ("b", "a/etc")]);
        assert_eq!(check("b", &all), Err(SymlinkError::Absolute));
    }

    #[test]
    fn loops_fail() {
        let all = links(&[("a", "b"), ("b", "a"), ("self", "self/x")]);
        assert_eq!(check("a", &all), Err(SymlinkError::Loop));
        assert_eq!(check("self", &all), Err(SymlinkError::Loop));
    }
}
