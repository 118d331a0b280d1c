//! `dropship login`, `target` and `logout`, and the session `dropship push` runs with.
//!
//! Login as the cf CLI does it: `GET {api}/` gives the `login` link, then
//! `POST {login}/oauth/token` (form body, `grant_type=password`, client `cf` with an empty
//! secret in HTTP Basic). The API, the tokens and the login URL go into the CLI's config file
//! (`config_file.rs`). A refresh (`grant_type=refresh_token`) writes the new token back there.

use super::config_file::{jwt_claims, CliConfig};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;
use std::time::Duration;

#[derive(Args)]
pub struct LoginArgs {
    /// The API, e.g. http://127.0.0.1:8080 (default: the one of the last login or target).
    #[arg(short = 'a', long, env = "DROPSHIP_API", value_name = "URL")]
    pub api: Option<String>,
    /// User name (prompted for on a terminal when missing).
    #[arg(short = 'u', long = "username", value_name = "USER")]
    pub username: Option<String>,
    /// Password (prompted for without echo on a terminal when missing).
    #[arg(short = 'p', long, env = "DROPSHIP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

#[derive(Args)]
pub struct TargetArgs {
    /// Set the API (logs out when it is another one).
    #[arg(short = 'a', long, value_name = "URL")]
    pub api: Option<String>,
    /// Set the organization.
    #[arg(short = 'o', long, value_name = "ORG")]
    pub org: Option<String>,
    /// Set the space.
    #[arg(short = 's', long, value_name = "SPACE")]
    pub space: Option<String>,
}

/// An API base URL, checked and without a trailing slash.
pub fn normalize_api(api: &str) -> Result<String> {
    let url = reqwest::Url::parse(api.trim())
        .with_context(|| format!("API {api:?}: not a URL like http://127.0.0.1:8080"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("API {api:?}: only http:// and https:// URLs");
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("API: put credentials in --token or `dropship login`, not in the URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("API {api:?}: a base URL has no query or fragment");
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn http() -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("dropship/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(120))
        .build()
        .context("setting up the HTTP client")
}

/// Tokens from `/oauth/token`.
pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
}

/// `POST {login}/oauth/token` as the public `cf` client.
pub async fn token_request(login: &str, form: &[(&str, &str)]) -> Result<Tokens> {
    let url = format!("{}/oauth/token", login.trim_end_matches('/'));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = http()?
        .post(&url)
        .basic_auth("cf", Some(""))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("could not reach {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let desc = v["error_description"].as_str().unwrap_or("refused");
        let err = v["error"].as_str().unwrap_or("");
        bail!("POST {url}: {desc} ({err}, HTTP {status})");
    }
    let access = v["access_token"]
        .as_str()
        .context("no access_token in the answer")?;
    Ok(Tokens {
        access: access.to_string(),
        refresh: v["refresh_token"].as_str().map(str::to_string),
    })
}

fn prompt(label: &str, echo: bool) -> Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("no {label}: pass it as a flag (the password also as DROPSHIP_PASSWORD)");
    }
    eprint!("{label}: ");
    std::io::stderr().flush()?;
    let old = tcgetattr(&stdin)?;
    if !echo {
        let mut quiet = old.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if !echo {
        let _ = tcsetattr(&stdin, OptionalActions::Now, &old);
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `dropship login`.
pub async fn login(a: LoginArgs) -> Result<i32> {
    let mut cfg = CliConfig::load()?;
    let api = a.api.clone().or(cfg.api.clone());
    let api = normalize_api(&api.context("no API: pass -a URL (or set DROPSHIP_API)")?)?;
    let root: Value = http()?
        .get(format!("{api}/"))
        .send()
        .await
        .with_context(|| format!("could not reach {api}"))?
        .json()
        .await
        .with_context(|| format!("GET {api}/: not a Cloud Foundry API root"))?;
    let Some(login) = root["links"]["login"]["href"].as_str() else {
        bail!("{api} offers no login (its root has no login link): use --token instead");
    };
    let user = match a.username {
        Some(u) => u,
        None => prompt("Email", true)?,
    };
    let password = match a.password {
        Some(p) => p,
        None => prompt("Password", false)?,
    };
    let form = [
        ("grant_type", "password"),
        ("username", user.as_str()),
        ("password", password.as_str()),
    ];
    let tokens = token_request(login, &form)
        .await
        .context("the login was refused")?;
    if cfg.api.as_deref() != Some(&api) {
        (cfg.org, cfg.space) = (None, None);
    }
    cfg.api = Some(api.clone());
    cfg.login = Some(login.to_string());
    cfg.access_token = Some(tokens.access);
    cfg.refresh_token = tokens.refresh;
    cfg.save()?;
    eprintln!("logged in to {api} as {user}");
    Ok(0)
}

/// `dropship logout`: the tokens are forgotten (the API and target stay).
pub async fn logout() -> Result<i32> {
    let mut cfg = CliConfig::load()?;
    cfg.clear_tokens();
    cfg.save()?;
    eprintln!("logged out");
    Ok(0)
}

/// `dropship target`: prints the API, user, org and space; sets them with flags.
pub async fn target(a: TargetArgs) -> Result<i32> {
    let mut cfg = CliConfig::load()?;
    let before = cfg.clone();
    if let Some(api) = &a.api {
        let api = normalize_api(api)?;
        if cfg.api.as_deref() != Some(&api) {
            cfg.clear_tokens();
            (cfg.login, cfg.org, cfg.space) = (None, None, None);
            cfg.api = Some(api);
        }
    }
    if let Some(org) = a.org {
        cfg.org = Some(org);
    }
    if let Some(space) = a.space {
        cfg.space = Some(space);
    }
    if cfg != before {
        cfg.save()?;
    }
    let user = (cfg.access_token.as_deref())
        .and_then(jwt_claims)
        .and_then(|c| c["user_name"].as_str().map(str::to_string));
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    println!("API:   {}", show(&cfg.api));
    println!(
        "user:  {}",
        user.unwrap_or_else(|| "(not logged in)".into())
    );
    println!("org:   {}", show(&cfg.org));
    println!("space: {}", show(&cfg.space));
    Ok(0)
}

/// How `dropship push` authenticates, and how it refreshes a stored login.
pub struct Session {
    pub api: String,
    pub token: Option<String>,
    /// Set when the token is the stored login's: refreshed (once) on CF's 401 code 1000.
    pub refresh: Option<Refresh>,
}

/// A stored login's refresh token and the file to write the new access token to.
pub struct Refresh {
    config: CliConfig,
    login: String,
    token: String,
}

impl Session {
    /// `--api`/`--token` (or DROPSHIP_API/DROPSHIP_TOKEN) first, else the stored login.
    pub fn resolve(api: Option<&str>, token: Option<String>) -> Result<Session> {
        let cfg = match CliConfig::load() {
            Ok(cfg) => cfg,
            // An unreadable file does not stop a push that names its API.
            Err(e) if api.is_some() => {
                tracing::warn!("ignoring the stored login: {e:#}");
                CliConfig::default()
            }
            Err(e) => return Err(e),
        };
        let api = match api.or(cfg.api.as_deref()) {
            Some(a) => normalize_api(a)?,
            None => bail!(
                "no API: pass --api URL (or set DROPSHIP_API), or run `dropship login -a URL`"
            ),
        };
        let stored = cfg.api.as_deref() == Some(api.as_str());
        if token.is_some() || !stored {
            return Ok(Session {
                api,
                token,
                refresh: None,
            });
        }
        let refresh = match (&cfg.login, &cfg.refresh_token) {
            (Some(login), Some(token)) => Some(Refresh {
                login: login.clone(),
                token: token.clone(),
                config: cfg.clone(),
            }),
            _ => None,
        };
        Ok(Session {
            api,
            token: cfg.access_token.clone(),
            refresh,
        })
    }
}

impl Refresh {
    /// A new access token, written back to the config file.
    pub async fn run(mut self) -> Result<String> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", &self.token),
        ];
        let tokens = token_request(&self.login, &form)
            .await
            .context("the login expired and could not be refreshed: run `dropship login` again")?;
        self.config.access_token = Some(tokens.access.clone());
        if let Some(r) = tokens.refresh {
            self.config.refresh_token = Some(r);
        }
        self.config.save()?;
        super::report::progress!("refreshed the login's access token");
        Ok(tokens.access)
    }
}
