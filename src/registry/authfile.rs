//! Credential files as docker and podman write them: docker's `config.json` and the containers
//! `auth.json` share one format (`auths`, `credHelpers`, docker's `credsStore`). Which file is
//! read when is decided in `auth.rs`; this module reads one file and finds a registry in it.

use super::auth::{AuthError, Credentials};
use base64::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileShape {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// What a file says about a registry.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// Credentials written in the file, under the key that matched.
    Stored { creds: Credentials, key: String },
    /// Ask `docker-credential-<helper>` for `server`.
    Helper { helper: String, server: String },
}

/// One credential file, parsed.
#[derive(Debug)]
pub struct AuthFile {
    pub path: PathBuf,
    shape: FileShape,
}

/// A key as docker writes it (`https://host/v1/`, `host`) or podman (`host/namespace/repo`):
/// with a scheme only the host counts; without one the path is a repository prefix.
fn normalize_key(key: &str) -> String {
    let (had_scheme, rest) = match key.split_once("://") {
        Some((_, rest)) => (true, rest),
        None => (false, key),
    };
    let rest = rest.trim_end_matches('/');
    let rest = if had_scheme {
        rest.split('/').next().unwrap_or(rest)
    } else {
        rest
    };
    match rest.split_once('/') {
        Some((host, path)) => format!("{}/{path}", normalize_host(host)),
        None => normalize_host(rest).to_string(),
    }
}

/// Docker Hub goes by several names.
fn normalize_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io",
        h => h,
    }
}

/// The address a helper is asked for: docker's historical one for Docker Hub, else the host.
fn helper_server(registry: &str) -> String {
    match normalize_host(registry) {
        "docker.io" => "https://index.docker.io/v1/".to_string(),
        r => r.to_string(),
    }
}

impl AuthFile {
    /// Reads `path`; `None` when there is no such file.
    pub fn load(path: &Path) -> Result<Option<AuthFile>, AuthError> {
        let bad = |detail: String| AuthError::File {
            path: path.display().to_string(),
            detail,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let shape = if text.trim().is_empty() {
            FileShape::default()
        } else {
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?
        };
        Ok(Some(AuthFile {
            path: path.to_path_buf(),
            shape,
        }))
    }

    /// What the file says for `registry` (`host[:port]`) and `repository`: its `credHelpers`
    /// entry for the host, else the most specific `auths` key (host, or host with a repository
    /// path prefix) holding credentials, else the `credsStore` helper.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Found>, AuthError> {
        let host = normalize_host(registry);
        let helper = self
            .shape
            .cred_helpers
            .iter()
            .find(|(k, h)| normalize_key(k) == host && !h.is_empty());
        if let Some((_, helper)) = helper {
            return Ok(Some(Found::Helper {
                helper: helper.clone(),
                server: helper_server(registry),
            }));
        }
        if let Some(found) = self.stored(host, repository)? {
            return Ok(Some(found));
        }
        Ok(self
            .shape
            .creds_store
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|helper| Found::Helper {
                helper: helper.clone(),
                server: helper_server(registry),
            }))
    }

    /// The `auths` entry with the longest key that names the host or a path prefix of the
    /// repository. Empty entries (docker's markers for a credential store) do not count.
    fn stored(&self, host: &str, repository: &str) -> Result<Option<Found>, AuthError> {
        let full = format!("{host}/{repository}");
        let best = self
            .shape
            .auths
            .iter()
            .map(|(k, e)| (k, normalize_key(k), e))
            .filter(|(_, n, _)| n == host || full == *n || full.starts_with(&format!("{n}/")))
            .filter(|(_, n, _)| n.split('/').next() == Some(host))
            .filter_map(|(k, n, e)| Some((k, n, self.decode(k, e).transpose()?)))
            .max_by_key(|(_, n, _)| n.len());
        match best {
            None => Ok(None),
            Some((key, _, creds)) => Ok(Some(Found::Stored {
                creds: creds?,
                key: key.clone(),
            })),
        }
    }

    /// An entry's credentials: `identitytoken`, else `auth` (base64 `user:pass`), else
    /// `username`/`password`; `None` for an empty entry.
    fn decode(&self, key: &str, e: &AuthEntry) -> Result<Option<Credentials>, AuthError> {
        if let Some(token) = e.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.clone())));
        }
        if let Some(auth) = e.auth.as_ref().filter(|a| !a.is_empty()) {
            let bad = || AuthError::File {
                path: self.path.display().to_string(),
                detail: format!("auths.{key:?}.auth is not base64 of USER:PASSWORD"),
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let text = String::from_utf8(bytes).map_err(|_| bad())?;
            return Credentials::parse(&text).map(Some).map_err(|_| bad());
        }
        match (&e.username, &e.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::Basic {
                user: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> (tempfile::TempDir, AuthFile) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("auth.json");
        std::fs::write(&p, json).unwrap();
        let f = AuthFile::load(&p).unwrap().unwrap();
        (d, f)
    }

    fn basic(user: &str, password: &str) -> Credentials {
        Credentials::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    fn stored(f: &AuthFile, reg: &str, repo: &str) -> Option<(Credentials, String)> {
        match f.lookup(reg, repo).unwrap()? {
            Found::Stored { creds, key } => Some((creds, key)),
            Found::Helper { .. } => None,
        }
    }

    #[test]
    fn docker_keys_and_encodings() {
        let (_d, f) = file(
            r#"{"auths":{"reg.example.com":{"auth":"dXNlcjpwYTpzcw=="},
                "https://other.example.com/v1/":{"username":"u2","password":"p2"},
                "https://index.docker.io/v1/":{"identitytoken":"tok"},
                "marker.example.com":{}}}"#,
        );
        assert_eq!(
            stored(&f, "reg.example.com", "a/b").unwrap().0,
            basic("user", "pa:ss")
        );
        assert_eq!(
            stored(&f, "other.example.com", "x").unwrap().0,
            basic("u2", "p2")
        );
        assert_eq!(
            stored(&f, "docker.io", "library/debian").unwrap().0,
            Credentials::IdentityToken("tok".into())
        );
        assert_eq!(f.lookup("marker.example.com", "x").unwrap(), None);
        assert_eq!(f.lookup("nope.example.com", "x").unwrap(), None);
    }

    #[test]
    fn the_most_specific_repository_prefix_wins() {
        let (_d, f) = file(
            r#"{"auths":{"reg.example.com":{"username":"host","password":"1"},
                "reg.example.com/team":{"username":"team","password":"2"},
                "reg.example.com/team/app":{"username":"app","password":"3"},
                "reg.example.com/te":{"username":"partial","password":"4"}}}"#,
        );
        let who = |repo: &str| match stored(&f, "reg.example.com", repo).unwrap().0 {
            Credentials::Basic { user, .. } => user,
            other => panic!("{other:?}"),
        };
        assert_eq!(who("team/app"), "app");
        assert_eq!(who("team/app2"), "team");
        assert_eq!(who("team/other/x"), "team");
        assert_eq!(who("tea/x"), "host");
        assert_eq!(who("ten"), "host");
    }

    #[test]
    fn helpers_per_registry_then_auths_then_the_store() {
        let (_d, f) = file(
            r#"{"credHelpers":{"reg.example.com":"test"},"credsStore":"desktop",
                "auths":{"own.example.com":{"auth":"dTpw"}}}"#,
        );
        let helper = |reg: &str| match f.lookup(reg, "x").unwrap() {
            Some(Found::Helper { helper, server }) => (helper, server),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            helper("reg.example.com"),
            ("test".into(), "reg.example.com".into())
        );
        assert_eq!(
            stored(&f, "own.example.com", "x").unwrap().0,
            basic("u", "p")
        );
        assert_eq!(
            helper("docker.io"),
            ("desktop".into(), "https://index.docker.io/v1/".into())
        );
    }

    #[test]
    fn bad_files_are_named() {
        let (_d, f) = file(r#"{"auths":{"r.example.com":{"auth":"!!"}}}"#);
        let e = f.lookup("r.example.com", "x").unwrap_err().to_string();
        assert!(e.contains("auth.json") && e.contains("base64"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(&p, "{nope").unwrap();
        let e = AuthFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("JSON"), "{e}");
        assert!(AuthFile::load(&d.path().join("absent")).unwrap().is_none());
    }
}
