//! The service's configuration: built-in defaults, overridden by a TOML file, overridden by
//! environment variables and flags (clap merges those two). Secrets stay out of Debug output.

use crate::intake::Limits;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {detail}")]
    File { path: String, detail: String },
    #[error("{0}")]
    Invalid(String),
}

/// The `[registry]` section: push images there instead of (besides) the embedded registry.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    /// e.g. `registry.example.com/apps`: images go to `<prefix>/<app>`.
    pub prefix: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub insecure: Vec<String>,
}

/// `[limits]`.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest upload body, e.g. "1G".
    pub max_upload: Option<String>,
    pub max_app_files: Option<u64>,
    pub max_app_size: Option<String>,
    pub max_zip_ratio: Option<u64>,
    /// Size of the resource-matching content store before least-recently-used files go.
    pub resource_cache: Option<String>,
    /// Size of all apps' buildpack caches together before least-recently-used ones go.
    pub build_cache: Option<String>,
    /// Size of the compressed droplet layers kept to skip packing unchanged ones (default 2G).
    pub layer_cache: Option<String>,
    /// Most buildpack output kept in one build's log, e.g. "32M".
    pub max_log: Option<String>,
    /// Longest wait for a request's headers (slow clients holding connections), e.g. "30s".
    pub header_timeout: Option<String>,
    /// How long a stopping service (SIGTERM) lets running builds finish, e.g. "30s"; the
    /// others are staged at its next start.
    pub shutdown_grace: Option<String>,
    /// How long a replica's claim on a build lasts without renewal (renewed every third of
    /// it while staging), e.g. "30s": a build whose replica died is staged again after it.
    pub build_lease: Option<String>,
    /// Processes (and threads) one build's staging may run at once.
    pub staging_pids: Option<u64>,
    /// Most instances an app may be scaled to.
    pub max_instances: Option<u32>,
    /// Most memory an app may be given, e.g. "4G": its staging runs with it, too.
    pub max_memory: Option<String>,
    /// Most disk an app may be given, e.g. "4G": its staging tmpfs is that big.
    pub max_disk: Option<String>,
}

/// The most an app may be scaled to (`[limits] max_instances`, `max_memory`, `max_disk`):
/// tenants choose their app's memory and disk, and staging runs with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppMax {
    pub instances: u32,
    pub memory_mb: u32,
    pub disk_mb: u32,
}

impl AppMax {
    fn resolve(lim: &LimitsSection) -> Result<AppMax, ConfigError> {
        let mb = |v: &Option<String>, key: &str| -> Result<u32, ConfigError> {
            let bytes = parse_bytes(v.as_deref().unwrap_or("4G"))?;
            match u32::try_from(bytes >> 20) {
                Ok(mb) if mb >= 1 => Ok(mb),
                _ => Err(ConfigError::Invalid(format!(
                    "[limits] {key}: between 1M and 4P"
                ))),
            }
        };
        Ok(AppMax {
            instances: lim.max_instances.unwrap_or(100),
            memory_mb: mb(&lim.max_memory, "max_memory")?,
            disk_mb: mb(&lim.max_disk, "max_disk")?,
        })
    }
}

/// `[stacks]`: `name = "reference"` lines, and `refresh_interval` (e.g. "1h"; "0": off), how
/// often every stack's reference is resolved again (its apps rebased when it moved).
#[derive(Deserialize, Default, Clone, Debug)]
pub struct StacksSection {
    pub refresh_interval: Option<String>,
    #[serde(flatten)]
    pub by_name: BTreeMap<String, String>,
}

/// The TOML file, every key optional.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `postgres://user:password@host:port/db` (replicas); SQLite in the data dir when unset.
    pub database: Option<String>,
    /// Host[:port] under which the embedded registry's images are named (default: listen).
    pub public_address: Option<String>,
    /// The default stack's image reference (a name is derived from it).
    pub stack: Option<String>,
    /// More stacks, by name, and how often their references are checked.
    #[serde(default)]
    pub stacks: StacksSection,
    pub default_stack: Option<String>,
    pub buildpacks_dir: Option<PathBuf>,
    #[serde(default)]
    pub registry: RegistrySection,
    #[serde(default)]
    pub limits: LimitsSection,
    pub staging_timeout: Option<String>,
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Users of the built-in login: name = password or argon2 PHC hash.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// OAuth clients allowed every grant (client_credentials too): id = secret or hash.
    #[serde(default)]
    pub clients: BTreeMap<String, String>,
    #[serde(default)]
    pub auth: super::auth_config::AuthSection,
    pub sandbox: Option<String>,
    /// `sandbox = "none"` as root without writable cgroups: run anyway.
    pub host_is_container: Option<bool>,
    /// error | warn | info | debug | trace (read by the binary, which installs the logger).
    pub log_level: Option<String>,
    /// text | json.
    pub log_format: Option<String>,
    /// gzip | zstd: how the images' new layers are compressed (default gzip).
    pub compression: Option<crate::layer::Codec>,
    /// Where blobs live: a directory or `s3://bucket/prefix`, or a table (`blob_config.rs`).
    pub blob_store: Option<super::blob_config::BlobStoreSection>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }
}

/// The resolved configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// PostgreSQL's URL; `None`: SQLite in the data dir.
    pub database: Option<String>,
    pub public_address: String,
    /// Stacks by name, and the default one's name.
    pub stacks: BTreeMap<String, String>,
    pub default_stack: Option<String>,
    /// How often the stacks' references are checked (`None`: only at start and on request).
    pub refresh_interval: Option<Duration>,
    pub buildpacks_dir: PathBuf,
    pub registry: RegistrySection,
    pub max_upload: u64,
    pub limits: Limits,
    pub resource_cache: u64,
    pub build_cache: u64,
    pub layer_cache: u64,
    pub max_log: u64,
    pub header_timeout: Duration,
    /// `[limits] shutdown_grace`.
    pub shutdown_grace: Duration,
    /// `[limits] build_lease`.
    pub build_lease: Duration,
    pub staging_timeout: Duration,
    pub concurrency: usize,
    pub tokens: Vec<String>,
    /// Users, clients, token keys and lifetimes, external issuer.
    pub auth: super::auth_config::AuthConfig,
    pub sandbox: crate::staging::sandbox::SandboxKind,
    pub staging_pids: u64,
    pub app_max: AppMax,
    pub host_is_container: bool,
    /// How the images' new layers are compressed.
    pub compression: crate::layer::Codec,
    /// The blob store (none: the data dir itself).
    pub blob_store: super::blob_config::BlobConfig,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database.as_deref().map(redacted))
            .field("public_address", &self.public_address)
            .field("stacks", &self.stacks)
            .field("default_stack", &self.default_stack)
            .field("registry_prefix", &self.registry.prefix)
            .field("tokens", &format!("{} configured", self.tokens.len()))
            .field("auth", &self.auth)
            .field("concurrency", &self.concurrency)
            .field("blob_store", &self.blob_store)
            .finish()
    }
}

/// Bytes from `512M`, `1G` (powers of 1024); a bare number is bytes.
pub fn parse_bytes(s: &str) -> Result<u64, ConfigError> {
    crate::units::parse_size(s).map_err(ConfigError::Invalid)
}

/// The name a stack reference is known by (`.../stacks/cflinuxfs4:latest` -> `cflinuxfs4`).
pub fn stack_name(reference: &str) -> String {
    let path = reference
        .rsplit_once("oci:")
        .map(|(_, p)| p)
        .unwrap_or(reference);
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    let last = last.split(['@']).next().unwrap_or(last);
    last.split(':').next().unwrap_or(last).to_string()
}

/// The default data dir: /var/lib/dropship for root, else ~/.local/share/dropship.
/// A PostgreSQL URL, checked for its scheme (an empty value: SQLite).
fn database(url: Option<String>) -> Result<Option<String>, ConfigError> {
    match url.filter(|u| !u.trim().is_empty()) {
        None => Ok(None),
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Ok(Some(u)),
        Some(u) => Err(ConfigError::Invalid(format!(
            "database: {:?} is not a postgres:// URL (leave it unset for SQLite in the data dir)",
            redacted(&u)
        ))),
    }
}

/// A database URL without its password, for logs.
pub fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() => {
            let creds = &url[scheme.len() + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            let _ = rest;
            format!("{scheme}://{user}:***{}", &url[at..])
        }
        _ => url.to_string(),
    }
}

pub fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/dropship");
    }
    match std::env::var_os("XDG_DATA_HOME") {
        Some(d) => PathBuf::from(d).join("dropship"),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".local/share/dropship"))
            .unwrap_or_else(|| PathBuf::from("dropship-data")),
    }
}

/// Flags and environment (already merged by clap): each one, when set, wins over the file.
#[derive(Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub stack: Option<String>,
    pub buildpacks_dir: Option<PathBuf>,
    pub registry: Option<String>,
    pub tokens: Vec<String>,
    /// `NAME:PASSWORD` users (added to the file's `[users]`).
    pub users: Vec<String>,
    /// `--signing-key`: wins over `[auth] signing_key`.
    pub signing_key: Option<PathBuf>,
    pub concurrency: Option<usize>,
    pub staging_timeout: Option<String>,
    pub sandbox: Option<String>,
    pub public_address: Option<String>,
    pub max_log: Option<String>,
    pub header_timeout: Option<String>,
    pub build_lease: Option<String>,
    pub staging_pids: Option<u64>,
    pub host_is_container: bool,
    /// `--blob-store`: a directory or `s3://bucket/prefix`.
    pub blob_store: Option<String>,
}

impl Config {
    /// Defaults < file < flags/environment; then checks what would be unsafe to run.
    pub fn resolve(
        file: FileConfig,
        o: Overrides,
        default_buildpacks: impl FnOnce() -> Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let flag_tokens = if o.tokens.is_empty() {
            file.tokens
        } else {
            o.tokens
        };
        let mut auth_section = file.auth;
        auth_section.signing_key = o.signing_key.or(auth_section.signing_key);
        let auth = super::auth_config::AuthConfig::resolve(
            auth_section,
            file.users,
            file.clients,
            &o.users,
        )?;
        let (listen, tokens) =
            listen_and_tokens(o.listen.or(file.listen), flag_tokens, auth.is_on())?;
        let (stacks, default_stack) = stacks(
            o.stack.or(file.stack),
            file.stacks.by_name,
            file.default_stack,
        )?;
        let refresh_text = file.stacks.refresh_interval;
        let mut registry = file.registry;
        if let Some(prefix) = o.registry {
            registry.prefix = Some(prefix);
        }
        let lim = &file.limits;
        let timeout_text = o.staging_timeout.or(file.staging_timeout);
        let max_log = o.max_log.or(lim.max_log.clone());
        let header_text = o.header_timeout.or(lim.header_timeout.clone());
        let lease_text = o.build_lease.or(lim.build_lease.clone());
        let sandbox_text = o.sandbox.or(file.sandbox).unwrap_or_else(|| "bwrap".into());
        let buildpacks_dir = o
            .buildpacks_dir
            .or(file.buildpacks_dir)
            .or_else(default_buildpacks)
            .ok_or_else(|| {
                ConfigError::Invalid("no buildpacks directory: set buildpacks_dir".into())
            })?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(Config {
            public_address: o
                .public_address
                .or(file.public_address)
                .unwrap_or_else(|| listen.to_string()),
            listen,
            data_dir: o
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(default_data_dir),
            database: database(o.database.or(file.database))?,
            stacks,
            default_stack,
            refresh_interval: Some(duration("refresh_interval", refresh_text, "1h")?)
                .filter(|d| !d.is_zero()),
            buildpacks_dir,
            registry,
            max_upload: parse_bytes(lim.max_upload.as_deref().unwrap_or("2G"))?,
            limits: app_limits(lim)?,
            resource_cache: parse_bytes(lim.resource_cache.as_deref().unwrap_or("2G"))?,
            build_cache: parse_bytes(lim.build_cache.as_deref().unwrap_or("4G"))?,
            layer_cache: parse_bytes(lim.layer_cache.as_deref().unwrap_or("2G"))?,
            max_log: parse_bytes(max_log.as_deref().unwrap_or("32M"))?,
            header_timeout: duration("header_timeout", header_text, "30s")?,
            shutdown_grace: duration("shutdown_grace", lim.shutdown_grace.clone(), "25s")?,
            build_lease: lease(lease_text)?,
            staging_timeout: duration("staging_timeout", timeout_text, "15m")?,
            concurrency: o.concurrency.or(file.concurrency).unwrap_or(cores).max(1),
            tokens,
            auth,
            sandbox: sandbox_text.parse().map_err(ConfigError::Invalid)?,
            staging_pids: o
                .staging_pids
                .or(lim.staging_pids)
                .unwrap_or(crate::staging::limits::StagingLimits::DEFAULT_PIDS),
            app_max: AppMax::resolve(lim)?,
            host_is_container: o.host_is_container || file.host_is_container.unwrap_or(false),
            compression: file.compression.unwrap_or_default(),
            blob_store: super::blob_config::BlobConfig::resolve(o.blob_store, file.blob_store)?,
        })
    }
}

/// The listen address, and the tokens (blank ones dropped): none only on loopback.
fn listen_and_tokens(
    listen: Option<String>,
    tokens: Vec<String>,
    login: bool,
) -> Result<(SocketAddr, Vec<String>), ConfigError> {
    let listen_text = listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        ConfigError::Invalid(format!("listen address {listen_text:?} is not IP:PORT"))
    })?;
    let tokens: Vec<String> = tokens
        .into_iter()
        .filter(|t| !t.trim().is_empty())
        .collect();
    if !listen.ip().is_loopback() && tokens.is_empty() && !login {
        return Err(ConfigError::Invalid(format!(
            "refusing to listen on {listen} without API tokens: anyone who can reach it could \
             build and run code. Configure tokens (tokens = [\"...\"] in the config file, or \
             DROPSHIP_TOKENS) or users ([users], --user), or listen on 127.0.0.1"
        )));
    }
    Ok((listen, tokens))
}

/// The stacks by name and the default one: `stack` (flag or file) is added and becomes the
/// default; a single stack is the default.
fn stacks(
    stack: Option<String>,
    mut stacks: BTreeMap<String, String>,
    mut default_stack: Option<String>,
) -> Result<(BTreeMap<String, String>, Option<String>), ConfigError> {
    if let Some(reference) = stack {
        let name = stack_name(&reference);
        stacks.insert(name.clone(), reference);
        default_stack = Some(name);
    }
    if default_stack.is_none() && stacks.len() == 1 {
        default_stack = stacks.keys().next().cloned();
    }
    if let Some(d) = &default_stack {
        if !stacks.contains_key(d) {
            return Err(ConfigError::Invalid(format!(
                "default_stack {d:?} is not in [stacks]"
            )));
        }
    }
    Ok((stacks, default_stack))
}

/// The intake budgets of `[limits]`.
fn app_limits(lim: &LimitsSection) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    Ok(Limits {
        max_files: lim.max_app_files.unwrap_or(defaults.max_files),
        max_bytes: match &lim.max_app_size {
            Some(s) => parse_bytes(s)?,
            None => defaults.max_bytes,
        },
        max_ratio: lim.max_zip_ratio.unwrap_or(defaults.max_ratio),
    })
}

/// A duration setting (`15m`, `90s`), `default` when unset.
fn duration(name: &str, text: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let text = text.unwrap_or_else(|| default.into());
    humantime::parse_duration(&text)
        .map_err(|e| ConfigError::Invalid(format!("{name} {text:?}: {e}")))
}

/// `build_lease`: at least a second (it is renewed every third of it).
fn lease(text: Option<String>) -> Result<Duration, ConfigError> {
    let d = duration("build_lease", text, "30s")?;
    if d < Duration::from_secs(1) {
        return Err(ConfigError::Invalid(format!(
            "build_lease {}: it must be at least 1s",
            humantime::format_duration(d)
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(file: &str, o: Overrides) -> Result<Config, ConfigError> {
        let f: FileConfig = toml::from_str(file).unwrap();
        Config::resolve(f, o, || Some(PathBuf::from("/bp")))
    }

    #[test]
    fn defaults_file_and_overrides() {
        let c = resolve("", Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.default_stack.is_none() && c.tokens.is_empty());
        assert_eq!(c.refresh_interval, Some(Duration::from_secs(3600)));
        assert_eq!(c.layer_cache, 2 << 30);
        let file = r#"
            listen = "127.0.0.1:9000"
            concurrency = 3
            [stacks]
            busybox = "docker://127.0.0.1:5000/stacks/busybox:latest"
            [limits]
            max_upload = "10M"
        "#;
        let c = resolve(file, Overrides::default()).unwrap();
        assert_eq!(
            (c.listen.port(), c.concurrency, c.max_upload),
            (9000, 3, 10 << 20)
        );
        let off = "[stacks]\nrefresh_interval = \"0\"\nbb = \"oci:/s/bb:v1\"\n[limits]\nlayer_cache = \"64M\"";
        let d = resolve(off, Overrides::default()).unwrap();
        assert_eq!((d.refresh_interval, d.layer_cache), (None, 64 << 20));
        assert_eq!(d.stacks.keys().collect::<Vec<_>>(), ["bb"], "not a stack");
        let every = resolve("[stacks]\nrefresh_interval = \"10m\"", Overrides::default());
        assert_eq!(
            every.unwrap().refresh_interval,
            Some(Duration::from_secs(600))
        );
        assert_eq!(c.default_stack.as_deref(), Some("busybox"));
        let o = Overrides {
            listen: Some("127.0.0.1:9100".into()),
            stack: Some("oci:/s/cflinuxfs4:latest".into()),
            ..Default::default()
        };
        let c = resolve(file, o).unwrap();
        assert_eq!(c.listen.port(), 9100, "flags win over the file");
        assert_eq!(c.default_stack.as_deref(), Some("cflinuxfs4"));
        assert_eq!(c.stacks.len(), 2);
    }

    #[test]
    fn refuses_public_listening_without_tokens() {
        let o = Overrides {
            listen: Some("0.0.0.0:8080".into()),
            ..Default::default()
        };
        let err = resolve("", o.clone()).err().unwrap().to_string();
        assert!(err.contains("without API tokens"), "{err}");
        let o = Overrides {
            tokens: vec!["t0ken".into()],
            ..o
        };
        let c = resolve("", o).unwrap();
        assert!(
            !format!("{c:?}").contains("t0ken"),
            "tokens stay out of Debug output"
        );
    }

    #[test]
    fn compression_is_gzip_unless_the_file_says_zstd() {
        use crate::layer::Codec;
        let c = resolve("", Overrides::default()).unwrap();
        assert_eq!(c.compression, Codec::Gzip);
        let c = resolve("compression = \"zstd\"", Overrides::default()).unwrap();
        assert_eq!(c.compression, Codec::Zstd);
        assert!(toml::from_str::<FileConfig>("compression = \"lz4\"").is_err());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
        assert!(resolve("staging_timeout = \"soon\"", Overrides::default()).is_err());
        assert_eq!(
            stack_name("docker://reg:5000/stacks/cflinuxfs4:latest"),
            "cflinuxfs4"
        );
        assert_eq!(stack_name("oci:/var/lib/stacks/busybox:v1"), "busybox");
    }
}
