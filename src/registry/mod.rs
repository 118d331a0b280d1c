//! Registries and OCI layouts: reading base images, writing built ones.

pub mod auth;
pub mod client;
pub mod layout;
pub mod push;
pub mod retry;
pub mod source;

pub use client::{RawManifest, Registry, RegistryOptions};
use oci_client::errors::OciDistributionError;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{registry}: {what}: {detail}")]
    Remote {
        registry: String,
        what: String,
        detail: String,
    },
    #[error("registry client: {detail}")]
    Client { detail: String },
    #[error("{what}: expected digest {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{image} has no {platform} image in its index")]
    NoPlatform { image: String, platform: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("OCI layout {dir}: {detail}")]
    Layout { dir: String, detail: String },
    #[error("{0}")]
    Other(String),
}

impl RegistryError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        RegistryError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// A one-line account of a registry failure: the HTTP status and the registry's own words.
pub fn describe(e: &OciDistributionError) -> String {
    match e {
        OciDistributionError::ServerError { code, message, .. } => {
            let msg = message.trim();
            let msg: String = msg.chars().take(300).collect();
            if msg.is_empty() {
                format!("HTTP {code}")
            } else {
                format!("HTTP {code}: {msg}")
            }
        }
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .map(|e| format!("{:?}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        OciDistributionError::RequestError(r) => {
            let mut s = r.to_string();
            let mut src = std::error::Error::source(r);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
        OciDistributionError::UnauthorizedError { url } => {
            format!("unauthorized (401) at {url}: check --creds or DROPSHIP_REGISTRY_USER/PASSWORD")
        }
        other => other.to_string(),
    }
}
