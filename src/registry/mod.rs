//! Registries and OCI layouts: reading base images, writing built ones.

pub mod auth;
pub(crate) mod authfile;
pub(crate) mod client;
pub(crate) mod helper;
pub(crate) mod layout;
pub(crate) mod push;
pub(crate) mod retry;
pub mod source;
pub(crate) mod stream_upload;
pub(crate) mod wire;

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
    /// The registry could not be reached at all (DNS, refused, TLS): one line, no retries.
    #[error("{detail}")]
    Unreachable { detail: String },
    #[error("{image}: not found (the registry has no such repository or tag)")]
    NotFound { image: String },
    #[error(transparent)]
    Credentials(#[from] auth::AuthError),
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

const AUTH_HINT: &str =
    "check --creds (--stack-creds for the stack), auth.json or the docker config.json";

/// Whether the registry said that a manifest's repository or tag does not exist.
pub fn is_not_found(e: &OciDistributionError) -> bool {
    use oci_client::errors::OciErrorCode as C;
    match e {
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, C::ManifestUnknown | C::NameUnknown | C::NotFound)),
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

/// A registry's error body, `{"errors":[{"code":..,"message":..}]}`, as `CODE: message; ...`.
fn error_body(body: &str) -> String {
    let parsed: Option<Vec<String>> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errors")?.as_array().cloned())
        .map(|errs| {
            errs.iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    format!("{code}: {msg}")
                })
                .collect()
        });
    match parsed {
        Some(list) if !list.is_empty() => list.join("; "),
        _ => body.trim().chars().take(300).collect(),
    }
}

fn status_line(code: u16, body: &str) -> String {
    let body = error_body(body);
    let mut s = if body.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {body}")
    };
    if code == 401 || code == 403 {
        s.push_str(&format!(" ({AUTH_HINT})"));
    }
    s
}

/// A one-line account of a registry failure: the HTTP status and the registry's own words,
/// without upload-session tokens or credentials.
pub fn describe(e: &OciDistributionError) -> String {
    match e {
        OciDistributionError::ServerError { code, message, .. } => status_line(*code, message),
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .map(|e| format!("{:?}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        OciDistributionError::RequestError(r) => {
            if let Some(status) = r.status() {
                return status_line(status.as_u16(), status.canonical_reason().unwrap_or(""));
            }
            let mut s = r.to_string();
            let mut src = std::error::Error::source(r);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            // Upload URLs carry long session tokens in their query: keep the path only.
            if let Some(url) = r.url() {
                let mut short = url.clone();
                short.set_query(None);
                s = s.replace(url.as_str(), short.as_str());
            }
            s
        }
        OciDistributionError::UnauthorizedError { url } => {
            format!("unauthorized (401) at {url} ({AUTH_HINT})")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_registry_answers() {
        let e = OciDistributionError::ServerError {
            code: 500,
            url: "u".into(),
            message: r#"{"errors":[{"code":"UNKNOWN","message":"storage is full"}]}"#.into(),
        };
        assert_eq!(describe(&e), "HTTP 500: UNKNOWN: storage is full");
        let e = OciDistributionError::ServerError {
            code: 401,
            url: "u".into(),
            message: String::new(),
        };
        assert!(describe(&e).contains("--creds"), "{}", describe(&e));
        let e = OciDistributionError::ServerError {
            code: 502,
            url: "u".into(),
            message: "<html>bad gateway</html>".into(),
        };
        assert_eq!(describe(&e), "HTTP 502: <html>bad gateway</html>");
    }
}
