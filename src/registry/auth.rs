//! Registry credentials: `--creds USER:PASS`, then `DROPSHIP_REGISTRY_USER`/`_PASSWORD`, then the
//! docker `config.json` (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
//! Credentials never appear in Debug output, logs or errors.

use base64::Engine;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { user: String, password: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
        }
    }
}

impl Credentials {
    /// Parses `USER:PASS` (the password may contain ':').
    pub fn parse(s: &str) -> Result<Credentials, String> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials::Basic {
                user: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err("credentials must be USER:PASSWORD".to_string()),
        }
    }

    pub fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            Credentials::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
            Credentials::Basic { user, password } => {
                oci_client::secrets::RegistryAuth::Basic(user.clone(), password.clone())
            }
        }
    }
}

/// Where credentials come from, in order of precedence.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// `--creds`, applies to every registry the command talks to.
    pub explicit: Option<Credentials>,
    /// The docker config file to read; `None` means the default location.
    pub docker_config: Option<PathBuf>,
}

impl CredentialSources {
    /// Explicit credentials, else the `DROPSHIP_REGISTRY_USER`/`_PASSWORD` pair.
    pub fn from_env(explicit: Option<Credentials>) -> Self {
        let env = match (
            std::env::var("DROPSHIP_REGISTRY_USER"),
            std::env::var("DROPSHIP_REGISTRY_PASSWORD"),
        ) {
            (Ok(user), Ok(password)) if !user.is_empty() => {
                Some(Credentials::Basic { user, password })
            }
            _ => None,
        };
        CredentialSources {
            explicit: explicit.or(env),
            docker_config: None,
        }
    }

    /// Credentials for `registry` (`host[:port]`).
    pub fn for_registry(&self, registry: &str) -> Credentials {
        if let Some(c) = &self.explicit {
            return c.clone();
        }
        let path = self.docker_config.clone().or_else(default_docker_config);
        path.and_then(|p| from_docker_config(&p, registry))
            .unwrap_or(Credentials::Anonymous)
    }
}

fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The keys docker uses for a registry in `auths`.
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ];
    if registry == "docker.io" || registry == "index.docker.io" {
        keys.push("https://index.docker.io/v1/".to_string());
        keys.push("index.docker.io".to_string());
    }
    keys
}

/// Reads `auths.<registry>` from a docker config file: `auth` (base64 `user:pass`) or
/// `username`/`password`. Credential helpers are not run.
pub fn from_docker_config(path: &Path, registry: &str) -> Option<Credentials> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let auths = json.get("auths")?.as_object()?;
    let entry = keys_for(registry).iter().find_map(|k| auths.get(k))?;
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        return Credentials::parse(&String::from_utf8(decoded).ok()?).ok();
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some(Credentials::Basic {
        user: user.to_string(),
        password: password.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_config() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"reg.example.com":{"auth":"dXNlcjpwYTpzcw=="},
                "https://other.example.com":{"username":"u2","password":"p2"}}}"#,
        )
        .unwrap();
        assert_eq!(
            from_docker_config(&p, "reg.example.com"),
            Some(Credentials::Basic {
                user: "user".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            from_docker_config(&p, "other.example.com"),
            Some(Credentials::Basic {
                user: "u2".into(),
                password: "p2".into()
            })
        );
        assert_eq!(from_docker_config(&p, "nope.example.com"), None);
        let sources = CredentialSources {
            explicit: None,
            docker_config: Some(p),
        };
        assert_eq!(
            sources.for_registry("nope.example.com"),
            Credentials::Anonymous
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let c = Credentials::parse("alice:s3cret").unwrap();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(Credentials::parse("nocolon").is_err());
    }
}
