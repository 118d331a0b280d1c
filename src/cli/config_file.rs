//! The CLI's own state, as the cf CLI's `~/.cf/config.json`: the API, the tokens of the last
//! `dropship login`, where to refresh them, and the target org and space. Kept in
//! `$DROPSHIP_HOME/config.toml`, else `$XDG_CONFIG_HOME/dropship/config.toml`, else
//! `~/.config/dropship/config.toml`; written atomically (a temporary file renamed) with mode
//! 0600, as it holds tokens. Tokens never appear in Debug output.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

#[derive(Serialize, Deserialize, Default, Clone, PartialEq)]
pub struct CliConfig {
    /// The API's base URL, e.g. http://127.0.0.1:8080.
    pub api: Option<String>,
    /// The token endpoint's base (the root's `login` link).
    pub login: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub org: Option<String>,
    pub space: Option<String>,
}

impl fmt::Debug for CliConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliConfig")
            .field("api", &self.api)
            .field("login", &self.login)
            .field("access_token", &self.access_token.as_ref().map(|_| "…"))
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .field("org", &self.org)
            .field("space", &self.space)
            .finish()
    }
}

/// Where the file is.
pub fn path() -> Result<PathBuf> {
    let env_dir = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(home) = env_dir("DROPSHIP_HOME") {
        return Ok(home.join("config.toml"));
    }
    if let Some(xdg) = env_dir("XDG_CONFIG_HOME") {
        return Ok(xdg.join("dropship/config.toml"));
    }
    let home = env_dir("HOME").context("no HOME: set DROPSHIP_HOME")?;
    Ok(home.join(".config/dropship/config.toml"))
}

impl CliConfig {
    /// The file's contents; the defaults when there is none.
    pub fn load() -> Result<CliConfig> {
        let p = path()?;
        match std::fs::read_to_string(&p) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("{}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CliConfig::default()),
            Err(e) => Err(e).with_context(|| format!("{}", p.display())),
        }
    }

    /// Writes the file: mode 0600, a temporary file in the same directory renamed over it.
    pub fn save(&self) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let p = path()?;
        let dir = p.parent().context("config path without a directory")?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("{}", dir.display()))?;
        let text = toml::to_string(self).context("writing the config")?;
        let tmp = dir.join(format!(".config.toml.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &p)
        };
        let r = write();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r.with_context(|| format!("writing {}", p.display()))
    }

    /// Forgets the tokens (logout, or another API).
    pub fn clear_tokens(&mut self) {
        self.access_token = None;
        self.refresh_token = None;
    }
}

/// The claims of a JWT, read without checking its signature (only to show the user name and
/// to see whether it expired: the server decides whether it is valid).
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
