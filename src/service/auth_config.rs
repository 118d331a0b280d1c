//! The login part of the configuration: `[users]` and `[clients]` (name = password or argon2
//! hash), `--user NAME:PASSWORD` / DROPSHIP_USERS (added to the file's, a name given both ways
//! takes the flag's password), and `[auth]` (signing key, token lifetimes, external issuer).

use super::config::ConfigError;
use super::users::{parse_pairs, Secrets};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[auth]`.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// A PKCS#8 P-256 PEM private key (default: made at first start in the data dir).
    pub signing_key: Option<PathBuf>,
    /// Access tokens' lifetime, e.g. "12h" (default 12h, as UAA's 43200 s).
    pub token_ttl: Option<String>,
    /// Refresh tokens' lifetime (default 30 days).
    pub refresh_token_ttl: Option<String>,
    /// An external UAA/OIDC issuer (its tokens' `iss`): the built-in login is then off.
    pub issuer: Option<String>,
    /// The external issuer's public key (RSA or EC PEM) that verifies its tokens.
    pub public_key: Option<PathBuf>,
}

/// An external issuer and its key.
#[derive(Clone, Debug)]
pub struct External {
    pub issuer: String,
    pub public_key: PathBuf,
}

/// The resolved login configuration (secrets hashed, never in Debug output).
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    pub users: Secrets,
    pub clients: Secrets,
    pub signing_key: Option<PathBuf>,
    pub token_ttl: Duration,
    pub refresh_ttl: Duration,
    pub external: Option<External>,
}

fn ttl(key: &str, text: Option<&str>, default: &str) -> Result<Duration, ConfigError> {
    let text = text.unwrap_or(default);
    match humantime::parse_duration(text) {
        Ok(d) if d >= Duration::from_secs(1) => Ok(d),
        _ => Err(ConfigError::Invalid(format!(
            "[auth] {key} {text:?}: a duration of at least 1s, e.g. 12h"
        ))),
    }
}

impl AuthConfig {
    pub fn resolve(
        section: AuthSection,
        file_users: BTreeMap<String, String>,
        clients: BTreeMap<String, String>,
        flag_users: &[String],
    ) -> Result<AuthConfig, ConfigError> {
        let mut users = file_users;
        users.extend(parse_pairs(flag_users).map_err(ConfigError::Invalid)?);
        let external = match (section.issuer, section.public_key) {
            (Some(issuer), Some(public_key)) => Some(External { issuer, public_key }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "[auth] issuer and public_key go together".into(),
                ))
            }
        };
        Ok(AuthConfig {
            users: Secrets::new(users, "[users]").map_err(ConfigError::Invalid)?,
            clients: Secrets::new(clients, "[clients]").map_err(ConfigError::Invalid)?,
            signing_key: section.signing_key,
            token_ttl: ttl("token_ttl", section.token_ttl.as_deref(), "12h")?,
            refresh_ttl: ttl(
                "refresh_token_ttl",
                section.refresh_token_ttl.as_deref(),
                "30d",
            )?,
            external,
        })
    }

    /// `/oauth/token` is dropship's own: users or clients are configured, no external issuer.
    pub fn built_in_login(&self) -> bool {
        self.external.is_none() && !(self.users.is_empty() && self.clients.is_empty())
    }

    /// Whether JWTs are accepted (and so the API wants credentials even without tokens).
    pub fn is_on(&self) -> bool {
        self.external.is_some() || self.built_in_login()
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{Config, FileConfig, Overrides};
    use std::path::PathBuf;

    fn resolve(file: &str, o: Overrides) -> Result<Config, String> {
        let f: FileConfig = toml::from_str(file).map_err(|e| e.to_string())?;
        Config::resolve(f, o, || Some(PathBuf::from("/bp"))).map_err(|e| e.to_string())
    }

    #[test]
    fn users_turn_login_on_and_allow_public_listening() {
        let public = Overrides {
            listen: Some("0.0.0.0:8080".into()),
            users: vec!["ann:pw-ann".into()],
            ..Default::default()
        };
        let c = resolve("[users]\nben = \"pw-ben\"\n", public).unwrap();
        assert!(c.auth.built_in_login() && c.auth.users.contains("ann"));
        assert!(c.auth.users.contains("ben"), "the file's users stay");
        assert_eq!(c.auth.token_ttl.as_secs(), 43200);
        let debug = format!("{c:?}");
        assert!(debug.contains("ann") && !debug.contains("pw-ann") && !debug.contains("pw-ben"));
        assert!(!resolve("", Overrides::default()).unwrap().auth.is_on());
    }

    #[test]
    fn rejects_bad_auth_settings() {
        let d = Overrides::default;
        assert!(resolve("[auth]\ntoken_ttl = \"0s\"\n", d()).is_err());
        assert!(resolve("[auth]\nissuer = \"https://uaa\"\n", d()).is_err());
        assert!(resolve("[users]\n\"bad name\" = \"x\"\n", d()).is_err());
        assert!(resolve("[auth]\nsigning_keys = \"x\"\n", d()).is_err());
        let ext = "[auth]\nissuer = \"https://uaa\"\npublic_key = \"/k.pem\"\n[users]\na = \"b\"\n";
        let c = resolve(ext, d()).unwrap();
        assert!(c.auth.is_on() && !c.auth.built_in_login());
    }
}
