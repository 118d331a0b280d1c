//! Which registry failures are worth another try, and how long to wait before it. What cannot
//! succeed on a second try is not retried: a host name that does not resolve, a TLS failure, a
//! refused connection to a registry that never answered, a 4xx other than 408 and 429.

use oci_client::errors::OciDistributionError;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts, the first one included.
    pub attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// Delay after failed attempt number `attempt` (1-based): 0.5 s, 1 s, 2 s, 4 s, ... (capped).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << (attempt.saturating_sub(1)).min(6);
        (self.base_delay * factor).min(Duration::from_secs(30))
    }

    /// [`Self::delay`] plus up to a quarter of it at random, so that parallel uploads that
    /// failed together do not come back together.
    pub fn jittered(&self, attempt: u32) -> Duration {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let d = self.delay(attempt);
        d + d.mul_f64((random % 1000) as f64 / 4000.0)
    }
}

/// Why a request never reached a registry, when that is why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// The host name does not resolve.
    Dns(String),
    /// Nothing listens on the port.
    Refused,
    /// The TLS handshake failed (certificate, or a plain HTTP server).
    Tls(String),
}

impl Unreachable {
    /// One line for the registry `registry`.
    pub fn describe(&self, registry: &str) -> String {
        match self {
            Unreachable::Dns(d) => format!("cannot resolve the host name of {registry} ({d})"),
            Unreachable::Refused => {
                format!("connection refused by {registry} (is the registry running, and on that port?)")
            }
            Unreachable::Tls(d) => format!(
                "TLS with {registry} failed ({d}); a registry that speaks plain HTTP needs --insecure-registry {registry}"
            ),
        }
    }
}

/// The errors under `e`, outermost first.
fn chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut all = vec![e];
    while let Some(next) = all.last().and_then(|e| e.source()) {
        all.push(next);
    }
    all
}

/// Whether `e` says the registry could not be reached at all, and why.
pub fn unreachable(e: &OciDistributionError) -> Option<Unreachable> {
    let top: &(dyn std::error::Error + 'static) = match e {
        OciDistributionError::RequestError(r) => r,
        OciDistributionError::IoError(io) => io,
        _ => return None,
    };
    let all = chain(top);
    let deepest = all.last().map(|e| e.to_string()).unwrap_or_default();
    for err in &all {
        if err.to_string().starts_with("dns error") {
            return Some(Unreachable::Dns(deepest));
        }
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(t) = tls {
            return Some(Unreachable::Tls(t.to_string()));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return Some(Unreachable::Refused);
            }
        }
    }
    None
}

/// Whether to try again after `e`; `answered`: the registry answered this process before
/// (a refused connection then means a restart, worth waiting for).
pub fn worth_retrying(e: &OciDistributionError, answered: bool) -> bool {
    match unreachable(e) {
        Some(Unreachable::Refused) => answered,
        Some(_) => false,
        None => is_transient(e),
    }
}

/// Connection problems, timeouts, 5xx, 408 and 429 are transient; everything else is an answer.
pub fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => {
            r.is_connect()
                || r.is_timeout()
                || r.is_request()
                || r.is_body()
                || r.is_decode()
                || r.status()
                    .is_some_and(|s| s.is_server_error() || matches!(s.as_u16(), 408 | 429))
        }
        OciDistributionError::ServerError { code, .. } => *code >= 500 || matches!(code, 408 | 429),
        OciDistributionError::IoError(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::TimedOut
        ),
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == oci_client::errors::OciErrorCode::Toomanyrequests),
        // A 2xx other than the one the spec asks for, or a missing Location, is an answer.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::from_millis(500));
        assert_eq!(p.delay(2), Duration::from_secs(1));
        assert_eq!(p.delay(4), Duration::from_secs(4));
        assert_eq!(p.delay(40), Duration::from_secs(30));
        for attempt in 1..5 {
            let j = p.jittered(attempt);
            assert!(j >= p.delay(attempt) && j <= p.delay(attempt).mul_f64(1.25));
        }
    }

    #[test]
    fn classifies_errors() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: "m".into(),
        };
        assert!(is_transient(&server(503)));
        assert!(is_transient(&server(429)));
        assert!(!is_transient(&server(404)));
        assert!(!is_transient(&server(401)));
        assert!(is_transient(&server(408)));
        let refused = || {
            OciDistributionError::IoError(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))
        };
        assert_eq!(unreachable(&refused()), Some(Unreachable::Refused));
        assert!(!worth_retrying(&refused(), false));
        assert!(worth_retrying(&refused(), true));
        assert!(!worth_retrying(&server(404), true));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_transient(&OciDistributionError::IoError(reset)));
        assert!(!is_transient(&OciDistributionError::SpecViolationError(
            "x".into()
        )));
    }
}
