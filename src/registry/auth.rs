//! Registry credentials, found the way podman and skopeo find them (containers/image):
//!
//! 1. credentials given for *that* registry: `--creds` (or `DROPSHIP_REGISTRY_USER`/`_PASSWORD`)
//!    for the target's, `--stack-creds` (or `DROPSHIP_STACK_REGISTRY_USER`/`_PASSWORD`) for the
//!    stack's; no other registry ever sees them;
//! 2. the credential files, first one that knows the registry wins: `$REGISTRY_AUTH_FILE` alone
//!    when set (as containers/image does), else `$XDG_RUNTIME_DIR/containers/auth.json`,
//!    `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`, then docker's
//!    `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`);
//! 3. anonymous.
//!
//! In each file (`authfile.rs`): `credHelpers` for the host, else the most specific `auths` key,
//! else `credsStore`. Credentials never appear in Debug output, logs or errors.

use super::authfile::{AuthFile, Found};
use super::helper;
use std::fmt;
use std::path::PathBuf;

#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic {
        user: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user).
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("credentials file {path}: {detail}")]
    File { path: String, detail: String },
    #[error("credential helper {helper} (for {registry}): {detail}")]
    Helper {
        helper: String,
        registry: String,
        detail: String,
    },
    #[error("{registry}: {origin} gives an identity token (OAuth2 refresh token), which dropship cannot use yet: log in with a username and password")]
    IdentityToken { registry: String, origin: String },
    #[error("{registry}: {first} and {second} give different credentials for the same registry")]
    Conflict {
        registry: String,
        first: String,
        second: String,
    },
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

    /// A `USER`/`PASSWORD` pair of environment variables, when the user one is set.
    pub fn from_env_pair(user_var: &str, password_var: &str) -> Option<Credentials> {
        let user = std::env::var(user_var).ok().filter(|u| !u.is_empty())?;
        let password = std::env::var(password_var).unwrap_or_default();
        Some(Credentials::Basic { user, password })
    }

    pub fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            Credentials::Basic { user, password } => {
                oci_client::secrets::RegistryAuth::Basic(user.clone(), password.clone())
            }
            _ => oci_client::secrets::RegistryAuth::Anonymous,
        }
    }
}

/// Credentials given for one registry (`host[:port]`), with where they came from.
#[derive(Debug, Clone)]
pub struct Explicit {
    pub registry: String,
    pub creds: Credentials,
    pub origin: String,
}

/// Where credentials come from; see the module documentation for the order.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    pub explicit: Vec<Explicit>,
    /// Credential files in the order they are asked; `None` means [`default_files`].
    pub files: Option<Vec<PathBuf>>,
}

/// Credentials found for a registry, and where: `--creds`, a file and key, a helper.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub creds: Credentials,
    pub origin: String,
}

impl CredentialSources {
    /// Gives the credentials of a flag (`USER:PASS`), else of an environment pair, to the
    /// registry `image` lives in (nothing when it is not in a registry).
    pub fn bind_image(
        &mut self,
        image: &crate::refs::ImageRef,
        flag: (&str, Option<&str>),
        env: (&str, &str),
    ) -> Result<(), String> {
        let crate::refs::ImageRef::Registry(r) = image else {
            return Ok(());
        };
        let (creds, origin) = match flag.1 {
            Some(v) => (
                Credentials::parse(v).map_err(|e| format!("{}: {e}", flag.0))?,
                flag.0,
            ),
            None => match Credentials::from_env_pair(env.0, env.1) {
                Some(c) => (c, env.0),
                None => return Ok(()),
            },
        };
        self.bind(&r.registry, creds, origin)
            .map_err(|e| e.to_string())
    }

    /// Gives `creds` (from `origin`, e.g. `--creds`) to `registry` only. Two different
    /// credentials for one registry are refused.
    pub fn bind(
        &mut self,
        registry: &str,
        creds: Credentials,
        origin: &str,
    ) -> Result<(), AuthError> {
        if let Some(have) = self.explicit.iter().find(|e| e.registry == registry) {
            if have.creds != creds {
                return Err(AuthError::Conflict {
                    registry: registry.to_string(),
                    first: have.origin.clone(),
                    second: origin.to_string(),
                });
            }
            return Ok(());
        }
        self.explicit.push(Explicit {
            registry: registry.to_string(),
            creds,
            origin: origin.to_string(),
        });
        Ok(())
    }

    /// Credentials for `repository` on `registry`, running a credential helper if a file
    /// names one. Identity tokens are refused with a clear error (see [`AuthError`]).
    pub async fn resolve(&self, registry: &str, repository: &str) -> Result<Resolved, AuthError> {
        let found = self.find(registry, repository).await?;
        if let Credentials::IdentityToken(_) = found.creds {
            return Err(AuthError::IdentityToken {
                registry: registry.to_string(),
                origin: found.origin,
            });
        }
        Ok(found)
    }

    async fn find(&self, registry: &str, repository: &str) -> Result<Resolved, AuthError> {
        if let Some(e) = self.explicit.iter().find(|e| e.registry == registry) {
            return Ok(Resolved {
                creds: e.creds.clone(),
                origin: e.origin.clone(),
            });
        }
        let files = self.files.clone().unwrap_or_else(default_files);
        for path in files {
            let Some(file) = AuthFile::load(&path)? else {
                continue;
            };
            let origin = |what: String| format!("{} ({what})", path.display());
            match file.lookup(registry, repository)? {
                None => continue,
                Some(Found::Stored { creds, key }) => {
                    return Ok(Resolved {
                        creds,
                        origin: origin(format!("auths.{key:?}")),
                    })
                }
                Some(Found::Helper { helper, server }) => {
                    let got = helper::get(&helper, &server, registry, helper::TIMEOUT).await?;
                    return Ok(Resolved {
                        creds: got.unwrap_or(Credentials::Anonymous),
                        origin: origin(format!("docker-credential-{helper}")),
                    });
                }
            }
        }
        Ok(Resolved {
            creds: Credentials::Anonymous,
            origin: "no credentials".to_string(),
        })
    }
}

/// The credential files podman and skopeo read, then docker's (see the module documentation).
pub fn default_files() -> Vec<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(file) = var("REGISTRY_AUTH_FILE") {
        return vec![file];
    }
    let home = var("HOME");
    let mut files = Vec::new();
    if let Some(run) = var("XDG_RUNTIME_DIR") {
        files.push(run.join("containers/auth.json"));
    }
    if let Some(config) =
        var("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
    {
        files.push(config.join("containers/auth.json"));
    }
    if let Some(docker) = var("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker")))
    {
        files.push(docker.join("config.json"));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn explicit_credentials_go_to_their_registry_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(&p, r#"{"auths":{"other.example.com":{"auth":"dTpw"}}}"#).unwrap();
        let mut s = CredentialSources {
            explicit: vec![],
            files: Some(vec![d.path().join("absent.json"), p]),
        };
        let alice = Credentials::parse("alice:s3cret").unwrap();
        s.bind("reg.example.com", alice.clone(), "--creds").unwrap();
        let got = s.resolve("reg.example.com", "a").await.unwrap();
        assert_eq!((got.creds, got.origin.as_str()), (alice.clone(), "--creds"));
        let got = s.resolve("other.example.com", "a").await.unwrap();
        assert_eq!(got.creds, Credentials::parse("u:p").unwrap());
        assert!(got.origin.contains("config.json"), "{}", got.origin);
        let got = s.resolve("third.example.com", "a").await.unwrap();
        assert_eq!(got.creds, Credentials::Anonymous);
        // The same credentials twice are fine; different ones for one registry are not.
        s.bind("reg.example.com", alice, "DROPSHIP_REGISTRY_USER")
            .unwrap();
        let bob = Credentials::parse("bob:x").unwrap();
        let e = s.bind("reg.example.com", bob, "--stack-creds").unwrap_err();
        assert!(e.to_string().contains("--creds and --stack-creds"), "{e}");
    }

    #[tokio::test]
    async fn identity_tokens_are_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth.json");
        std::fs::write(
            &p,
            r#"{"auths":{"r.example.com":{"identitytoken":"T0KEN"}}}"#,
        )
        .unwrap();
        let s = CredentialSources {
            explicit: vec![],
            files: Some(vec![p]),
        };
        let e = s
            .resolve("r.example.com", "x")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("identity token") && !e.contains("T0KEN"), "{e}");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials::parse("alice:s3cret").unwrap();
        let shown = format!("{c:?} {:?}", Credentials::IdentityToken("t0k".into()));
        assert!(
            shown.contains("alice") && !shown.contains("s3cret") && !shown.contains("t0k"),
            "{shown}"
        );
        assert!(Credentials::parse("nocolon").is_err());
    }
}
