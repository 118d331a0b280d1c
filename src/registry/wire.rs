//! What the registry client works with: options, manifests as stored, an index's platform
//! entry, files as upload chunks.

use super::auth::CredentialSources;
use super::retry::RetryPolicy;
use crate::image::media;
use oci_client::errors::OciDistributionError;

/// A manifest as the registry stores it.
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub media_type: String,
}

/// Which registries to talk to and how.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `host[:port]` of registries that speak plain HTTP although they are not on loopback.
    pub insecure: Vec<String>,
    pub credentials: CredentialSources,
    pub retry: RetryPolicy,
    /// Longest wait for a registry's answer (`DROPSHIP_REGISTRY_TIMEOUT`, default 120 s).
    pub read_timeout_secs: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            credentials: CredentialSources::default(),
            retry: RetryPolicy::default(),
            read_timeout_secs: 120,
        }
    }
}

impl RegistryOptions {
    /// The timeout from `DROPSHIP_REGISTRY_TIMEOUT` (seconds), else 120 s.
    pub fn timeout_from_env() -> u64 {
        std::env::var("DROPSHIP_REGISTRY_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&s| s > 0)
            .unwrap_or(120)
    }
}

/// The media type a manifest document declares, or the one its shape implies.
pub fn manifest_media_type(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    match v.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => m.to_string(),
        None if v.get("manifests").is_some() => media::OCI_INDEX.to_string(),
        None => media::OCI_MANIFEST.to_string(),
    }
}

/// Picks the linux/amd64 entry of an index.
pub fn pick_platform(index: &[u8], os: &str, arch: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(index).ok()?;
    v.get("manifests")?.as_array()?.iter().find_map(|m| {
        let p = m.get("platform")?;
        (p.get("os")?.as_str()? == os && p.get("architecture")?.as_str()? == arch)
            .then(|| m.get("digest")?.as_str().map(str::to_string))?
    })
}

/// Upload chunk size: oci-client sends each stream item as one PATCH, and 4 MiB is the largest
/// chunk every major registry accepts.
pub const CHUNK: usize = 4 << 20;

/// A file as a stream of `CHUNK`-sized pieces (the last one shorter).
pub(super) fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, OciDistributionError>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::try_unfold(Some(file), |file| async move {
        let Some(mut file) = file else {
            return Ok(None);
        };
        let mut buf = bytes::BytesMut::with_capacity(CHUNK);
        while buf.len() < CHUNK {
            if file.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let more = buf.len() == CHUNK;
        Ok(Some((buf.freeze(), more.then_some(file))))
    })
}
