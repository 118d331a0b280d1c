//! Blob keys: one family per kind of blob, each name checked when the key is made (a GUID, a
//! hex digest, a repository name), so no key can climb out of its family or collide with
//! another's. Each key is also the blob's path relative to the data dir (`packages/<guid>.zip`,
//! `registry-blobs/sha256/<hex>`, ...): with the data dir as the store nothing moves.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key(String);

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-')
                && (b == b'-' || matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a key could not be made from.
#[derive(Debug, thiserror::Error)]
#[error("not a valid {what}: {value:?}")]
pub struct BadKey {
    what: &'static str,
    value: String,
}

fn guid(what: &'static str, value: &str) -> Result<(), BadKey> {
    if is_guid(value) {
        Ok(())
    } else {
        Err(BadKey {
            what,
            value: value.chars().take(80).collect(),
        })
    }
}

impl Key {
    /// A family's prefix, for listing (`packages`, `droplets`, ...).
    pub fn family(name: &'static str) -> Key {
        Key(name.to_string())
    }

    pub fn package(guid_: &str) -> Result<Key, BadKey> {
        guid("package GUID", guid_)?;
        Ok(Key(format!("packages/{guid_}.zip")))
    }

    pub fn droplet(guid_: &str) -> Result<Key, BadKey> {
        guid("droplet GUID", guid_)?;
        Ok(Key(format!("droplets/{guid_}.tgz")))
    }

    pub fn build_log(guid_: &str) -> Result<Key, BadKey> {
        guid("build GUID", guid_)?;
        Ok(Key(format!("logs/{guid_}.log")))
    }

    pub fn build_cache(app_guid: &str) -> Result<Key, BadKey> {
        guid("app GUID", app_guid)?;
        Ok(Key(format!("caches/{app_guid}.tar")))
    }

    /// An uploaded file by its SHA-1 (resource matching).
    pub fn resource(sha1: &str) -> Result<Key, BadKey> {
        if !is_hex(sha1, 40) {
            return Err(BadKey {
                what: "SHA-1",
                value: sha1.chars().take(80).collect(),
            });
        }
        Ok(Key(format!("resources/{}/{sha1}", &sha1[..2])))
    }

    /// A registry blob by its digest (`sha256:<hex>`).
    pub fn registry_blob(digest: &str) -> Result<Key, BadKey> {
        match digest.strip_prefix("sha256:") {
            Some(hex) if is_hex(hex, 64) => Ok(Key(format!("registry-blobs/sha256/{hex}"))),
            _ => Err(BadKey {
                what: "sha256 digest",
                value: digest.chars().take(80).collect(),
            }),
        }
    }

    /// A repository's OCI index (its tags) in the embedded registry: `registry/<name>/index.json`.
    /// `name` is a checked repository name (`[a-z0-9]` runs joined by `.`, `_`, `-`, `/`).
    pub fn registry_index(name: &str) -> Result<Key, BadKey> {
        if !crate::service::registry::valid_name(name) {
            return Err(BadKey {
                what: "repository name",
                value: name.chars().take(80).collect(),
            });
        }
        Ok(Key(format!("registry/{name}/index.json")))
    }

    pub(super) fn path(&self) -> object_store::path::Path {
        // Every part was checked above: no empty part, no `.`/`..`, no escapes needed.
        object_store::path::Path::from(self.0.as_str())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
