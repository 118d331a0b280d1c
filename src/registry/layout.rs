//! OCI image layouts on disk (`oci:DIR[:TAG]`), as skopeo and umoci read and write them:
//! `oci-layout`, `index.json` (tags in `org.opencontainers.image.ref.name`), `blobs/sha256/`.

use super::client::{manifest_media_type, pick_platform, RawManifest};
use super::RegistryError;
use crate::image::media;
use crate::layer::hash::{sha256_digest, sha256_file};
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn err(&self, detail: impl Into<String>) -> RegistryError {
        RegistryError::Layout {
            dir: self.dir.display().to_string(),
            detail: detail.into(),
        }
    }

    /// Opens an existing layout.
    pub fn open(dir: &Path) -> Result<Layout, RegistryError> {
        let l = Layout {
            dir: dir.to_path_buf(),
        };
        if !dir.join("oci-layout").is_file() {
            return Err(l.err("not an OCI image layout (no oci-layout file)"));
        }
        Ok(l)
    }

    /// Opens a layout, creating an empty one when the directory has none.
    pub fn create(dir: &Path) -> Result<Layout, RegistryError> {
        let l = Layout {
            dir: dir.to_path_buf(),
        };
        fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| RegistryError::io(dir, e))?;
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = dir.join("index.json");
        if !index.exists() {
            let empty = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []});
            write_atomic(&index, &serde_json::to_vec(&empty).expect("json"))?;
        }
        Ok(l)
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        self.dir.join("blobs").join(alg).join(hex)
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a small blob (manifest, config) and checks its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|e| RegistryError::io(&path, e))?;
        let got = sha256_digest(&bytes);
        if got != digest {
            return Err(RegistryError::DigestMismatch {
                what: path.display().to_string(),
                expected: digest.to_string(),
                actual: got,
            });
        }
        Ok(bytes)
    }

    fn index(&self) -> Result<Value, RegistryError> {
        let path = self.dir.join("index.json");
        let bytes = fs::read(&path).map_err(|e| RegistryError::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.err(format!("index.json: {e}")))
    }

    /// The image manifest tagged `tag` (or the only one), resolving a nested index to
    /// linux/amd64.
    pub fn resolve(&self, tag: Option<&str>) -> Result<RawManifest, RegistryError> {
        let index = self.index()?;
        let entries = index["manifests"].as_array().cloned().unwrap_or_default();
        let found: Vec<&Value> = match tag {
            Some(t) => entries
                .iter()
                .filter(|m| m["annotations"][REF_NAME].as_str() == Some(t))
                .collect(),
            None => entries.iter().collect(),
        };
        let entry = match found.as_slice() {
            [one] => *one,
            [] => return Err(self.err(format!("no image tagged {:?}", tag.unwrap_or("")))),
            _ => return Err(self.err("holds several images: name one with oci:DIR:TAG")),
        };
        let mut digest = entry["digest"]
            .as_str()
            .ok_or_else(|| self.err("index.json entry without digest"))?
            .to_string();
        for _ in 0..4 {
            let bytes = self.read_blob(&digest)?;
            let media_type = manifest_media_type(&bytes);
            if !media::is_index(&media_type) {
                return Ok(RawManifest {
                    bytes,
                    digest,
                    media_type,
                });
            }
            digest = pick_platform(&bytes, "linux", "amd64")
                .ok_or_else(|| self.err("no linux/amd64 image in the index"))?;
        }
        Err(self.err("indexes nested too deep"))
    }

    /// Copies a blob file into the layout unless it is there already (a hard link when on the
    /// same file system). Either way its bytes must hash to `digest` before it takes that name:
    /// a blob can come from a cache, and the layout never holds one under a wrong digest.
    pub fn put_blob_file(&self, digest: &str, src: &Path) -> Result<(), RegistryError> {
        let dest = self.blob_path(digest);
        if dest.is_file() {
            return Ok(());
        }
        let dir = dest.parent().expect("blob path has a parent");
        fs::create_dir_all(dir).map_err(|e| RegistryError::io(dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".link-")
            .make_in(dir, |p| fs::hard_link(src, p))
            .map(|t| t.into_temp_path())
            .or_else(|_| copied(src, dir))
            .map_err(|e| RegistryError::io(&dest, e))?;
        let (got, _) = sha256_file(&tmp).map_err(|e| RegistryError::io(&dest, e))?;
        if got != digest {
            return Err(RegistryError::DigestMismatch {
                what: src.display().to_string(),
                expected: digest.to_string(),
                actual: got,
            });
        }
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| RegistryError::io(&dest, e))?;
        tmp.persist(&dest)
            .map_err(|e| RegistryError::io(&dest, e.error))?;
        Ok(())
    }

    /// Writes a small blob; returns its digest.
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<String, RegistryError> {
        let digest = sha256_digest(bytes);
        let dest = self.blob_path(&digest);
        if !dest.is_file() {
            write_atomic(&dest, bytes)?;
        }
        Ok(digest)
    }

    /// Points `tag` (or the untagged entry) at a manifest already stored as a blob.
    pub fn tag(&self, manifest: &RawManifest, tag: Option<&str>) -> Result<(), RegistryError> {
        let lock_path = self.dir.join(".index.lock");
        let lock = fs::File::create(&lock_path).map_err(|e| RegistryError::io(&lock_path, e))?;
        // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(RegistryError::io(
                &lock_path,
                std::io::Error::last_os_error(),
            ));
        }
        let mut index = self.index()?;
        let mut entries = index["manifests"].as_array().cloned().unwrap_or_default();
        entries.retain(|m| m["annotations"][REF_NAME].as_str() != tag);
        let mut desc = json!({
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": manifest.bytes.len(),
        });
        if let Some(t) = tag {
            desc["annotations"] = json!({ REF_NAME: t });
        }
        entries.push(desc);
        index["manifests"] = Value::Array(entries);
        index["schemaVersion"] = json!(2);
        write_atomic(
            &self.dir.join("index.json"),
            &serde_json::to_vec(&index).expect("json"),
        )?;
        drop(lock);
        Ok(())
    }
}

/// `src` copied to a temporary file in `dir` (removed when dropped unless persisted).
fn copied(src: &Path, dir: &Path) -> std::io::Result<tempfile::TempPath> {
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::copy(&mut fs::File::open(src)?, &mut tmp.as_file())?;
    Ok(tmp.into_temp_path())
}

/// Writes a file through a temporary sibling and a rename: readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| RegistryError::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| RegistryError::io(dir, e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| RegistryError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| RegistryError::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_resolve_and_replace() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::create(d.path()).unwrap();
        let m1 = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
        let m2 = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[ ]}"#;
        for (bytes, tag) in [(&m1[..], "one"), (&m2[..], "two"), (&m2[..], "one")] {
            let digest = l.put_blob_bytes(bytes).unwrap();
            let raw = RawManifest {
                bytes: bytes.to_vec(),
                digest,
                media_type: media::OCI_MANIFEST.into(),
            };
            l.tag(&raw, Some(tag)).unwrap();
        }
        let l = Layout::open(d.path()).unwrap();
        assert_eq!(l.resolve(Some("one")).unwrap().bytes, m2.to_vec());
        assert_eq!(l.resolve(Some("two")).unwrap().bytes, m2.to_vec());
        assert!(l.resolve(Some("three")).is_err());
        let err = l.resolve(None).unwrap_err().to_string();
        assert!(err.contains("several images"), "{err}");
        assert!(Layout::open(&d.path().join("nope")).is_err());
    }

    #[test]
    fn a_multi_arch_image_resolves_to_linux_amd64() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::create(d.path()).unwrap();
        let arm = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[],"annotations":{"a":"arm"}}"#;
        let amd = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[],"annotations":{"a":"amd"}}"#;
        let (arm_d, amd_d) = (
            l.put_blob_bytes(arm).unwrap(),
            l.put_blob_bytes(amd).unwrap(),
        );
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [
            {"mediaType": media::OCI_MANIFEST, "digest": arm_d, "size": arm.len(), "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": media::OCI_MANIFEST, "digest": amd_d, "size": amd.len(), "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        let bytes = serde_json::to_vec(&index).unwrap();
        let digest = l.put_blob_bytes(&bytes).unwrap();
        let raw = RawManifest {
            bytes,
            digest,
            media_type: media::OCI_INDEX.into(),
        };
        l.tag(&raw, Some("multi")).unwrap();
        let got = l.resolve(Some("multi")).unwrap();
        assert_eq!((got.digest, got.bytes), (amd_d, amd.to_vec()));
    }

    #[test]
    fn blob_files_land_once() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::create(&d.path().join("lay")).unwrap();
        let src = d.path().join("blob");
        fs::write(&src, b"data").unwrap();
        l.put_blob_file(&sha256_digest(b"data"), &src).unwrap();
        assert_eq!(
            fs::read(l.blob_path(&sha256_digest(b"data"))).unwrap(),
            b"data"
        );
        // Present already: nothing to do, no error.
        l.put_blob_file(&sha256_digest(b"data"), &src).unwrap();
    }

    #[test]
    fn a_blob_file_that_is_not_its_digest_is_refused_linked_or_copied() {
        let d = tempfile::tempdir().unwrap();
        let lay = d.path().join("lay");
        let l = Layout::create(&lay).unwrap();
        let src = d.path().join("blob");
        fs::write(&src, b"tampered").unwrap();
        let said = sha256_digest(b"data");
        let e = l.put_blob_file(&said, &src).unwrap_err();
        assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
        assert!(!l.blob_path(&said).exists());
        let dir = l.blob_path(&said).parent().unwrap().to_path_buf();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "no temporary left");
        // From another file system (a copy, not a link): the same.
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let far = shm.path().join("blob");
        fs::write(&far, b"tampered").unwrap();
        assert!(l.put_blob_file(&said, &far).is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        assert_eq!(
            fs::read(&src).unwrap(),
            b"tampered",
            "the source is untouched"
        );
    }
}
