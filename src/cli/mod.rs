//! Command-line definitions (clap) and their translation into library calls.

pub mod examples;
pub mod logging;
pub mod manifest;
pub mod meta;
pub mod push;
pub mod report;
pub mod stacks;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use dropship::intake::Limits;
use dropship::k8s::HealthCheck;
use dropship::pipeline::{self, BuildOptions};
use dropship::refs::ImageRef;
use dropship::registry::auth::CredentialSources;
use dropship::registry::{Registry, RegistryOptions};
use dropship::stack::{self, StackCache};
use dropship::staging::sandbox::SandboxKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "dropship",
    version = meta::VERSION,
    after_help = examples::TOP,
    about = "App source -> buildpacks -> droplet -> OCI image -> registry -> Kubernetes"
)]
pub struct Cli {
    #[command(flatten)]
    pub log: logging::LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build an app: stage it with buildpacks, layer the droplet onto a stack, push the image.
    #[command(after_help = examples::BUILD)]
    Build(Box<BuildArgs>),
    /// Manage stacks (base images).
    #[command(subcommand, after_help = examples::STACK)]
    Stack(StackCommand),
    /// Run the cf push-style API, build queue and registry endpoint.
    #[command(after_help = examples::SERVE)]
    Serve(ServeArgs),
    /// Push an app to a `dropship serve` API the way `cf push` does: upload, stage, print the image.
    #[command(after_help = examples::PUSH)]
    Push(push::PushArgs),
    /// Print the version, the git commit and the build date.
    #[command(after_help = examples::VERSION)]
    Version(meta::VersionArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = examples::COMPLETION)]
    Completion(meta::CompletionArgs),
}

/// Every flag can also come from the environment or the TOML config file (flag > env > file).
#[derive(Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "DROPSHIP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "DROPSHIP_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Where metadata, packages, droplets and images live.
    #[arg(long, env = "DROPSHIP_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The default stack's image reference.
    #[arg(long, env = "DROPSHIP_STACK", value_name = "REF")]
    pub stack: Option<String>,
    /// Directory of admin buildpacks (default: the shipped ones).
    #[arg(long, env = "DROPSHIP_BUILDPACKS_DIR", value_name = "DIR")]
    pub buildpacks_dir: Option<PathBuf>,
    /// Push images to this registry prefix (e.g. registry.example.com/apps) as well.
    #[arg(long, env = "DROPSHIP_REGISTRY", value_name = "PREFIX")]
    pub registry: Option<String>,
    /// API token (repeatable; DROPSHIP_TOKENS takes a comma-separated list).
    #[arg(
        long = "token",
        env = "DROPSHIP_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,
    /// Builds that run at once (default: the number of cores).
    #[arg(long, env = "DROPSHIP_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Longest staging of one build, e.g. 15m, 90s (default 15m).
    #[arg(long, env = "DROPSHIP_STAGING_TIMEOUT")]
    pub staging_timeout: Option<String>,
    /// bwrap | none
    #[arg(long, env = "DROPSHIP_SANDBOX")]
    pub sandbox: Option<String>,
    /// host[:port] naming the embedded registry's images (default: the listen address).
    #[arg(long, env = "DROPSHIP_PUBLIC_ADDRESS")]
    pub public_address: Option<String>,
    /// Most buildpack output kept in a build's log (default 32M; then a marker line).
    #[arg(long, env = "DROPSHIP_MAX_LOG")]
    pub max_log: Option<String>,
    /// Longest wait for a request's headers (default 30s).
    #[arg(long, env = "DROPSHIP_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,
    /// Processes (and threads) one build's staging may run at once (default 1024).
    #[arg(long, env = "DROPSHIP_STAGING_PIDS")]
    pub staging_pids: Option<u64>,
    /// With sandbox none as root and no writable cgroups: run builds anyway.
    #[arg(
        long = "i-know-the-host-is-a-container",
        env = "DROPSHIP_HOST_IS_CONTAINER"
    )]
    pub host_is_container: bool,
    /// Log lines as text or JSON objects (default text).
    #[arg(long, env = "DROPSHIP_LOG_FORMAT", value_name = "text|json")]
    pub log_format: Option<logging::LogFormat>,
}

#[derive(Subcommand)]
pub enum StackCommand {
    /// Turn a root filesystem (directory or tarball) into a one-layer stack image.
    #[command(after_help = examples::STACK_IMPORT)]
    Import(ImportArgs),
    /// List the stacks in the stack cache: name, digest, size, unpacked or not, reference.
    #[command(after_help = examples::STACK_LIST)]
    List(stacks::ListArgs),
    /// Show a stack image (name, digest, platform, layers, labels) without unpacking it.
    #[command(after_help = examples::STACK_INSPECT)]
    Inspect(stacks::InspectArgs),
}

/// Options shared by every command that talks to registries.
#[derive(Args, Clone, Default)]
pub struct RegistryArgs {
    /// Credentials for the target's registry only (else DROPSHIP_REGISTRY_USER/PASSWORD,
    /// else auth.json, docker config.json and their credential helpers).
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// A registry that speaks plain HTTP (loopback registries always do).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
    /// Where temporary files go (default: /dev/shm when it is tmpfs with room, else the
    /// system temp dir).
    #[arg(long, env = "DROPSHIP_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Cache of stack blobs and unpacked stacks.
    #[arg(long, env = "DROPSHIP_STACK_CACHE", value_name = "DIR")]
    pub stack_cache: Option<PathBuf>,
    /// Print one JSON object on stdout when done.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BuildArgs {
    /// The app: a zip file or a directory (.cfignore honoured).
    pub source: PathBuf,
    /// The stack image: docker://HOST/REPO[:TAG|@DIGEST] or oci:DIR[:TAG].
    #[arg(long, env = "DROPSHIP_STACK")]
    pub stack: String,
    /// Where the image goes: docker://HOST/REPO[:TAG] or oci:DIR[:TAG].
    #[arg(long)]
    pub image: String,
    /// Credentials for the stack's registry only (else DROPSHIP_STACK_REGISTRY_USER/PASSWORD,
    /// else auth.json and docker config.json); --creds are never sent there.
    #[arg(long, value_name = "USER:PASS")]
    pub stack_creds: Option<String>,
    /// Buildpack name or path (repeatable; skips detection; the last one is final).
    #[arg(long = "buildpack", value_name = "NAME|PATH")]
    pub buildpacks: Vec<String>,
    /// Directory of buildpacks used for detection.
    #[arg(long, env = "DROPSHIP_BUILDPACKS_DIR", value_name = "DIR")]
    pub buildpacks_dir: Option<PathBuf>,
    /// App name (default: the manifest's, else the source's base name).
    #[arg(long)]
    pub name: Option<String>,
    /// Environment variable for staging and running (repeatable; over the manifest's env).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Instances (default: the manifest's, else 1).
    #[arg(long)]
    pub instances: Option<u32>,
    /// Memory limit (e.g. 512M, 1G), of the app and of its staging (default: the
    /// manifest's, else 1G).
    #[arg(long)]
    pub memory: Option<String>,
    /// Disk limit (e.g. 1G), of the app and of its staging (app, deps, cache, /tmp)
    /// (default: the manifest's disk_quota, else 1G).
    #[arg(long)]
    pub disk: Option<String>,
    /// Start command of the web process, in place of the buildpack's (default: the
    /// manifest's command).
    #[arg(long)]
    pub command: Option<String>,
    /// Processes (and threads) staging may run at once.
    #[arg(long, env = "DROPSHIP_STAGING_PIDS", default_value_t = dropship::staging::limits::StagingLimits::DEFAULT_PIDS)]
    pub staging_pids: u64,
    /// port | http:PATH | process (default: the manifest's, else port).
    #[arg(long = "health-check")]
    pub health_check: Option<String>,
    /// Kubernetes namespace of the manifests (default: none, kubectl's current one).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Write the StatefulSet, PodDisruptionBudget and Service to DIR/<app>.yaml.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Keep the droplet tgz at FILE.
    #[arg(long, value_name = "FILE")]
    pub droplet: Option<PathBuf>,
    /// Buildpack cache (/tmp/cache) kept between builds.
    #[arg(long, env = "DROPSHIP_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Delete the buildpack cache and build without it.
    #[arg(long)]
    pub no_cache: bool,
    /// A buildpack cache larger than this is not kept (e.g. 2G).
    #[arg(long, env = "DROPSHIP_CACHE_MAX", default_value = "2G")]
    pub cache_max: String,
    /// e.g. 15m, 90s.
    #[arg(long, default_value = "15m")]
    pub staging_timeout: humantime::Duration,
    /// bwrap | none (none: only on hosts that are already a container).
    #[arg(long, default_value = "bwrap")]
    pub sandbox: SandboxKind,
    /// With --sandbox none as root and no writable cgroups: run anyway (processes a buildpack
    /// leaves behind cannot all be killed; only for throw-away containers).
    #[arg(
        long = "i-know-the-host-is-a-container",
        env = "DROPSHIP_HOST_IS_CONTAINER"
    )]
    pub host_is_container: bool,
    /// Most entries (files, directories, symlinks) an app may have.
    #[arg(long, env = "DROPSHIP_MAX_APP_FILES", default_value_t = Limits::default().max_files)]
    pub max_app_files: u64,
    /// Uncompressed app size limit (e.g. 4G).
    #[arg(long, env = "DROPSHIP_MAX_APP_SIZE", default_value = "4G")]
    pub max_app_size: String,
    /// Most bytes a zip may expand to per byte of zip file (zip bombs).
    #[arg(long, env = "DROPSHIP_MAX_ZIP_RATIO", default_value_t = Limits::default().max_ratio)]
    pub max_zip_ratio: u64,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A root filesystem: a directory or a tarball (optionally gzipped).
    pub rootfs: PathBuf,
    /// Where the stack image goes: docker://HOST/REPO[:TAG] or oci:DIR[:TAG].
    #[arg(long)]
    pub image: String,
    /// Stack name given to buildpacks as CF_STACK (default: the image's repository name).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Bytes from `512M`, `1G`, `1Gi`, `1.5GB` (powers of 1024) or a bare number of bytes: the
/// grammar of `dropship::units`, the same as the service's configuration.
pub fn parse_size(s: &str) -> Result<u64> {
    dropship::units::parse_size(s).map_err(anyhow::Error::msg)
}

fn parse_env(items: &[String]) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                dropship::staging::env::check_user_var(k, v)
                    .map_err(|e| anyhow::anyhow!("--env: {e}"))?;
                Ok((k.to_string(), v.to_string()))
            }
            _ => bail!("--env {kv:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// Registry options; `--creds` go to the target's registry, `--stack-creds` to the stack's.
fn registry_options(
    args: &RegistryArgs,
    target: &ImageRef,
    stack: Option<(&ImageRef, Option<&str>)>,
) -> Result<RegistryOptions> {
    let mut credentials = CredentialSources::default();
    credentials
        .bind_image(
            target,
            ("--creds", args.creds.as_deref()),
            ("DROPSHIP_REGISTRY_USER", "DROPSHIP_REGISTRY_PASSWORD"),
        )
        .map_err(anyhow::Error::msg)?;
    if let Some((stack, flag)) = stack {
        credentials
            .bind_image(
                stack,
                ("--stack-creds", flag),
                (
                    "DROPSHIP_STACK_REGISTRY_USER",
                    "DROPSHIP_STACK_REGISTRY_PASSWORD",
                ),
            )
            .map_err(anyhow::Error::msg)?;
    }
    Ok(RegistryOptions {
        insecure: args.insecure.clone(),
        credentials,
        retry: Default::default(),
        read_timeout_secs: RegistryOptions::timeout_from_env(),
    })
}

fn work_dir(args: &RegistryArgs, source: Option<&Path>, quota: u64) -> PathBuf {
    args.work_dir
        .clone()
        .unwrap_or_else(|| default_work_dir(source, quota))
}

/// Room a build needs in its work dir: 10 times a zip (it expands), 3 times a directory source,
/// and 3 times the staging disk quota (the staging tmpfs takes the same memory as /dev/shm, and
/// the droplet tgz and its layer are written beside it); at least 2 GiB.
fn room_needed(source: Option<&Path>, quota: u64) -> u64 {
    let source_room = match source.and_then(|s| std::fs::metadata(s).ok()) {
        Some(m) if m.is_file() => m.len().saturating_mul(10),
        Some(m) if m.is_dir() => {
            let bytes: u64 = walkdir::WalkDir::new(source.expect("some"))
                .follow_links(false)
                .into_iter()
                .filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum();
            bytes.saturating_mul(3)
        }
        _ => 0,
    };
    (2u64 << 30).max(source_room).max(quota.saturating_mul(3))
}

/// The work directory goes on tmpfs when there is room: creating a file costs ~25 µs there
/// against 0.3–1 ms on this kind of disk, and an app of 5,000 files builds in 0.5 s instead of
/// 6 s (see `bench`). It holds the app, the droplet tgz and the layers, so it needs room for a
/// few times the app and the staging quota ([`room_needed`]). Otherwise the system temp dir.
pub fn default_work_dir(source: Option<&Path>, quota: u64) -> PathBuf {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let shm = Path::new("/dev/shm");
    let need = room_needed(source, quota);
    let c_path = std::ffi::CString::new("/dev/shm").expect("no NUL");
    // SAFETY: statfs fills the zeroed struct for a valid NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::statfs(c_path.as_ptr(), &mut st) } == 0;
    let available = st.f_bavail as u64 * st.f_bsize as u64;
    if ok && st.f_type as i64 == TMPFS_MAGIC && available >= need {
        // SAFETY: getuid cannot fail.
        let dir = shm.join(format!("dropship-{}", unsafe { libc::getuid() }));
        if std::fs::create_dir_all(&dir).is_ok() {
            use std::os::unix::fs::PermissionsExt;
            // Traversable (not listable) by the staging user, who runs as another uid.
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711));
            return dir;
        }
    }
    std::env::temp_dir()
}

fn stack_cache(args: &RegistryArgs) -> StackCache {
    StackCache {
        dir: args
            .stack_cache
            .clone()
            .unwrap_or_else(StackCache::default_dir),
    }
}

/// The shipped buildpacks: next to an installed binary, else in the source tree it was built from.
fn default_buildpacks_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().ok();
    let installed = exe
        .as_ref()
        .and_then(|e| e.parent())
        .map(|d| d.join("../share/dropship/buildpacks"));
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("buildpacks");
    [installed, Some(source_tree)]
        .into_iter()
        .flatten()
        .find(|p| p.is_dir())
        .context(
            "no buildpacks directory found: pass --buildpacks-dir or set DROPSHIP_BUILDPACKS_DIR",
        )
}

fn app_name(source: &Path) -> Result<String> {
    let abs = std::fs::canonicalize(source).with_context(|| format!("{}", source.display()))?;
    let name = if abs.is_dir() {
        abs.file_name()
    } else {
        abs.file_stem()
    };
    name.map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .context("cannot derive an app name from the source: pass --name")
}

/// Paths handed to buildpacks must not depend on the directory scripts run in.
fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{}", p.display()))
}

pub fn build_options(a: &BuildArgs) -> Result<BuildOptions> {
    let stack: ImageRef = a.stack.parse().context("--stack")?;
    let target: ImageRef = a.image.parse().context("--image")?;
    if let ImageRef::Registry(r) = &target {
        if r.digest.is_some() {
            bail!(
                "--image {}: a target is named by tag, not by digest",
                a.image
            );
        }
    }
    if !a.source.exists() {
        bail!("{}: no such file or directory", a.source.display());
    }
    let limits = Limits {
        max_files: a.max_app_files,
        max_bytes: parse_size(&a.max_app_size).context("--max-app-size")?,
        max_ratio: a.max_zip_ratio,
    };
    let file = manifest::load(&a.source, &limits)?;
    if let Some(w) = file.as_ref().and_then(manifest::build_warnings) {
        eprintln!("{w}");
    }
    let m = file.map(|f| f.manifest).unwrap_or_default();
    let s = manifest::build_settings(build_flags(a)?, m);
    if s.memory_mb == 0 || s.disk_mb == 0 {
        bail!("--memory and --disk must be at least 1M");
    }
    let stack_creds = Some((&stack, a.stack_creds.as_deref()));
    let registry = registry_options(&a.registry, &target, stack_creds)?;
    Ok(BuildOptions {
        source: absolute(&a.source)?,
        name: match s.name {
            Some(n) => n,
            None => app_name(&a.source)?,
        },
        stack,
        target,
        also: Vec::new(),
        buildpacks: s.buildpacks,
        buildpacks_dir: absolute(&match &a.buildpacks_dir {
            Some(d) => d.clone(),
            None => default_buildpacks_dir()?,
        })?,
        env: s.env,
        instances: s.instances,
        memory_mb: s.memory_mb,
        disk_mb: s.disk_mb,
        health_check: s.health_check,
        command: s.command,
        health_check_timeout: s.timeout,
        namespace: a.namespace.clone(),
        manifests_dir: a.manifests.as_deref().map(absolute).transpose()?,
        droplet_out: a.droplet.as_deref().map(absolute).transpose()?,
        cache_dir: a.cache_dir.as_deref().map(absolute).transpose()?,
        no_cache: a.no_cache,
        cache_max: parse_size(&a.cache_max).context("--cache-max")?,
        staging_timeout: Duration::from(a.staging_timeout),
        staging_pids: a.staging_pids,
        sandbox: a.sandbox,
        host_is_container: a.host_is_container,
        registry,
        work_dir: absolute(&work_dir(&a.registry, Some(&a.source), s.disk_mb << 20))?,
        stack_cache: stack_cache(&a.registry),
        limits,
    })
}

/// The flags of `dropship build` that the app manifest may also set, parsed.
fn build_flags(a: &BuildArgs) -> Result<manifest::BuildFlags<'_>> {
    let mb = |v: &Option<String>, flag: &str| -> Result<Option<u64>> {
        v.as_deref()
            .map(|s| parse_size(s).context(flag.to_string()).map(|b| b >> 20))
            .transpose()
    };
    Ok(manifest::BuildFlags {
        name: a.name.as_deref(),
        buildpacks: &a.buildpacks,
        env: parse_env(&a.env)?,
        instances: a.instances,
        memory_mb: mb(&a.memory, "--memory")?,
        disk_mb: mb(&a.disk, "--disk")?,
        health_check: a
            .health_check
            .as_deref()
            .map(|h| h.parse::<HealthCheck>().context("--health-check"))
            .transpose()?,
        command: a.command.as_deref().filter(|c| !c.trim().is_empty()),
    })
}

/// Resolves with the signal's exit code (128 + number) on SIGINT or SIGTERM.
async fn interrupted() -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => 130,
        _ = term.recv() => 143,
    }
}

/// `dropship build`; returns the process exit code. On SIGINT or SIGTERM the staging
/// processes are killed and the build is abandoned; its work dir goes once the blocking work
/// still holding it has stopped (the runtime waits for it before the process exits).
pub async fn build(a: BuildArgs) -> Result<i32> {
    let opts = build_options(&a)?;
    let reporter = Arc::new(report::CliReporter::new());
    let result = tokio::select! {
        r = pipeline::build(&opts, reporter) => r,
        code = interrupted() => {
            dropship::staging::run::cancel_all();
            eprintln!("dropship: interrupted: stopping the build and removing its work dir");
            return Ok(code);
        }
    };
    match result {
        Ok(out) => {
            if a.registry.json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                report::progress!("==> image {}", out.image);
                println!("{}", out.image);
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("dropship: build failed: {e}");
            if a.registry.json {
                let error = serde_json::json!({"error": {
                    "code": e.exit_code(), "kind": e.kind(), "message": e.to_string(),
                }});
                println!("{error}");
            }
            Ok(e.exit_code())
        }
    }
}

/// `dropship serve`.
pub async fn serve(a: ServeArgs, log: &logging::LogArgs) -> Result<i32> {
    use dropship::service::config::{Config, FileConfig, Overrides};
    let file = match &a.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    logging::init_serve(log, a.log_format, &file)?;
    let overrides = Overrides {
        listen: a.listen,
        data_dir: a.data_dir.as_deref().map(absolute).transpose()?,
        stack: a.stack,
        buildpacks_dir: a.buildpacks_dir.as_deref().map(absolute).transpose()?,
        registry: a.registry,
        tokens: a.tokens,
        concurrency: a.concurrency,
        staging_timeout: a.staging_timeout,
        sandbox: a.sandbox,
        public_address: a.public_address,
        max_log: a.max_log,
        header_timeout: a.header_timeout,
        staging_pids: a.staging_pids,
        host_is_container: a.host_is_container,
    };
    let config = Config::resolve(file, overrides, || default_buildpacks_dir().ok())?;
    dropship::service::serve(config).await?;
    Ok(0)
}

/// `dropship stack import`.
pub async fn stack_import(a: ImportArgs) -> Result<i32> {
    let target: ImageRef = a.image.parse().context("--image")?;
    if !a.rootfs.exists() {
        bail!("{}: no such file or directory", a.rootfs.display());
    }
    let in_use: Vec<_> = match &target {
        ImageRef::Registry(r) => vec![r],
        ImageRef::Layout(_) => vec![],
    };
    let reporter = Arc::new(report::CliReporter::new());
    let opts = registry_options(&a.registry, &target, None)?;
    let registry = Registry::new(opts, &in_use, reporter.clone())?;
    let base = work_dir(&a.registry, None, 0);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let work = tempfile::Builder::new()
        .prefix("dropship-stack-")
        .tempdir_in(&base)?;
    let r = stack::import(
        &a.rootfs,
        &target,
        a.name.as_deref(),
        &registry,
        work.path(),
        reporter,
    )
    .await?;
    for fix in &r.fixes {
        report::progress!("==> stack: {fix}");
    }
    let image = match &target {
        ImageRef::Registry(t) => format!("{}@{}", t.repo_name(), r.digest),
        ImageRef::Layout(l) => format!("oci:{}@{}", l.dir.display(), r.digest),
    };
    if a.registry.json {
        let out = serde_json::json!({
            "image": image, "digest": r.digest, "layer": {"digest": r.layer_digest, "size": r.layer_size},
            "fixes": r.fixes, "push": r.push,
        });
        println!("{out}");
    } else {
        report::progress!("==> stack image {image}");
        println!("{image}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(super::parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(super::parse_size("256MB").unwrap(), 256 << 20);
        assert_eq!(super::parse_size("1Gi").unwrap(), 1 << 30);
        assert_eq!(
            super::parse_size("100").unwrap(),
            100,
            "bytes, as in the TOML file"
        );
        assert!(super::parse_size("lots").is_err());
    }
}
