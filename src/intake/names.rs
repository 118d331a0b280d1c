//! Zip entry names to app-relative paths, refusing anything that could land outside.

use std::path::{Path, PathBuf};

/// Turns a zip entry name into a relative path made only of normal components, or says
/// why it is unsafe. Backslashes count as separators (zips made on Windows use them), so
/// `..\evil` is traversal like `../evil`. Empty and `.` components are dropped; the result
/// is empty for an entry naming the root itself (`./`).
///
/// `enclosed` is the zip crate's own opinion (`ZipFile::enclosed_name`); both must agree.
pub(crate) fn entry_path(name: &str, enclosed: Option<&Path>) -> Result<PathBuf, &'static str> {
    if name.contains('\0') {
        return Err("contains a NUL byte");
    }
    let name = name.replace('\\', "/");
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let mut out = PathBuf::new();
    for (i, part) in name.split('/').enumerate() {
        match part {
            "" | "." => {}
            ".." => return Err("contains a `..` component"),
            _ if i == 0 && is_drive(part) => return Err("absolute Windows path"),
            _ => out.push(part),
        }
    }
    match enclosed {
        Some(e) if e == out => Ok(out),
        _ => Err("not a plain relative path"),
    }
}

fn is_drive(part: &str) -> bool {
    let b = part.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the zip crate would say, for names it accepts.
    fn ok(name: &str) -> Result<PathBuf, &'static str> {
        let p = PathBuf::from_iter(
            name.split(['/', '\\'])
                .filter(|c| !c.is_empty() && *c != "."),
        );
        entry_path(name, Some(&p))
    }

    #[test]
    fn plain_names() {
        assert_eq!(ok("a/b/c.txt"), Ok(PathBuf::from("a/b/c.txt")));
        assert_eq!(ok("dir/"), Ok(PathBuf::from("dir")));
        assert_eq!(ok("./a//b"), Ok(PathBuf::from("a/b")));
        assert_eq!(ok("win\\style.txt"), Ok(PathBuf::from("win/style.txt")));
        assert_eq!(ok("./"), Ok(PathBuf::new()));
    }

    #[test]
    fn hostile_names() {
        for (name, why) in [
            ("../evil", "contains a `..` component"),
            ("a/../../evil", "contains a `..` component"),
            ("a/../b", "contains a `..` component"),
            ("..\\evil", "contains a `..` component"),
            ("/tmp/evil", "absolute path"),
            ("\\tmp\\evil", "absolute path"),
            ("C:/evil", "absolute Windows path"),
            ("c:evil", "absolute Windows path"),
            ("a\0b", "contains a NUL byte"),
        ] {
            assert_eq!(ok(name), Err(why), "{name:?}");
        }
        assert_eq!(entry_path("a/b", None), Err("not a plain relative path"));
        assert_eq!(
            entry_path("a/b", Some(Path::new("b"))),
            Err("not a plain relative path")
        );
    }
}
