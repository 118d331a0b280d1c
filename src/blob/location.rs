//! Where the blob store is: a local directory or `s3://bucket[/prefix]`, from `--blob-store`,
//! `DROPSHIP_BLOB_STORE` or `blob_store` in the configuration file; S3's endpoint, region and
//! credentials from the `[blob_store]` table, else the standard `AWS_*` variables.

use super::BlobError;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

/// The `[blob_store]` table: each unset value falls back to its `AWS_*` variable.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Plain HTTP to the endpoint (a server on loopback); HTTPS otherwise.
    pub allow_http: Option<bool>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|_| "<set>"),
            )
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<set>"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl Location {
    /// `s3://bucket/prefix`, `file:///dir` or a directory path.
    pub fn parse(s: &str) -> Result<Location, BlobError> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = (3..=63).contains(&bucket.len())
                && bucket
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.'));
            if !valid {
                return Err(BlobError::Config(format!(
                    "{s:?}: an S3 bucket name is 3 to 63 of a-z, 0-9, '-' and '.'"
                )));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|p| p == "." || p == "..") {
                return Err(BlobError::Config(format!(
                    "{s:?}: no . or .. in the prefix"
                )));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if s.contains("://") && !s.starts_with("file://") {
            return Err(BlobError::Config(format!(
                "{s:?}: a blob store is s3://bucket/prefix or a local directory"
            )));
        }
        let dir = s.strip_prefix("file://").unwrap_or(s);
        if dir.is_empty() {
            return Err(BlobError::Config("an empty blob store path".into()));
        }
        Ok(Location::Local(PathBuf::from(dir)))
    }

    pub(super) fn open(
        &self,
        s3: &S3Settings,
    ) -> Result<(Arc<dyn ObjectStore>, String), BlobError> {
        match self {
            Location::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| BlobError::Config(format!("creating {}: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| BlobError::Config(format!("{}: {e}", dir.display())))?;
                Ok((Arc::new(fs), format!("local {}", dir.display())))
            }
            Location::S3 { bucket, prefix } => {
                // TLS through rustls with ring, as the rest of dropship (a no-op when set).
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(v) = &s3.endpoint {
                    b = b.with_endpoint(v);
                }
                if let Some(v) = &s3.region {
                    b = b.with_region(v);
                }
                if let Some(v) = &s3.access_key_id {
                    b = b.with_access_key_id(v);
                }
                if let Some(v) = &s3.secret_access_key {
                    b = b.with_secret_access_key(v);
                }
                if let Some(v) = s3.allow_http {
                    b = b.with_allow_http(v);
                }
                let store = b
                    .build()
                    .map_err(|e| BlobError::Config(format!("s3://{bucket}: {e}")))?;
                let name = format!("s3://{bucket}/{prefix}");
                if prefix.is_empty() {
                    Ok((Arc::new(store), name))
                } else {
                    let p = object_store::path::Path::from(prefix.as_str());
                    Ok((Arc::new(PrefixStore::new(store, p)), name))
                }
            }
        }
    }
}
