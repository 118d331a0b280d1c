//! The app's health check, as `cf push --health-check-type` and the manifest name it.

use std::fmt;
use std::str::FromStr;

/// A health check that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid health check {input:?}: {reason}")]
pub struct HealthCheckError {
    input: String,
    reason: String,
}

/// How the platform (Kubernetes probes) decides an instance is alive, as in `cf push --health-check-type`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HealthCheck {
    /// A TCP connect to the app port succeeds (CF's default).
    #[default]
    Port,
    /// An HTTP GET of `endpoint` on the app port answers 2xx/3xx.
    Http { endpoint: String },
    /// The process is running: no probes at all.
    Process,
}

impl FromStr for HealthCheck {
    type Err = HealthCheckError;

    /// `port`, `process` (or CF's legacy alias `none`), `http` (endpoint `/`) or
    /// `http:/PATH`.
    fn from_str(input: &str) -> Result<Self, HealthCheckError> {
        let err = |reason: &str| HealthCheckError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        match input {
            "port" => Ok(HealthCheck::Port),
            "process" | "none" => Ok(HealthCheck::Process),
            "http" => Ok(HealthCheck::Http {
                endpoint: "/".to_string(),
            }),
            _ => match input.strip_prefix("http:") {
                Some(endpoint) if valid_endpoint(endpoint) => Ok(HealthCheck::Http {
                    endpoint: endpoint.to_string(),
                }),
                Some(_) => Err(err(
                    "the endpoint must start with '/' and contain no whitespace",
                )),
                None => Err(err("expected port, process, http or http:/PATH")),
            },
        }
    }
}

impl fmt::Display for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthCheck::Port => f.write_str("port"),
            HealthCheck::Process => f.write_str("process"),
            HealthCheck::Http { endpoint } => write!(f, "http:{endpoint}"),
        }
    }
}

pub(crate) fn valid_endpoint(endpoint: &str) -> bool {
    endpoint.starts_with('/') && !endpoint.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_check_parses() {
        assert_eq!("port".parse::<HealthCheck>().unwrap(), HealthCheck::Port);
        assert_eq!(
            "process".parse::<HealthCheck>().unwrap(),
            HealthCheck::Process
        );
        let http = |e: &str| HealthCheck::Http {
            endpoint: e.to_string(),
        };
        assert_eq!("http".parse::<HealthCheck>().unwrap(), http("/"));
        assert_eq!(
            "http:/healthz".parse::<HealthCheck>().unwrap(),
            http("/healthz")
        );
        assert_eq!(http("/healthz").to_string(), "http:/healthz");
        let err = "tcp".parse::<HealthCheck>().unwrap_err().to_string();
        assert!(err.contains("expected port, process, http"), "{err}");
        assert!("http:healthz".parse::<HealthCheck>().is_err());
    }
}
