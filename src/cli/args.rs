//! The flags of every command but `push` (`push/`) and `stack list|inspect` (`stacks.rs`).

use super::{examples, logging, login, meta, push, stacks};
use clap::{Args, Parser, Subcommand};
use dropship::intake::Limits;
use dropship::staging::sandbox::SandboxKind;
use std::path::PathBuf;

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
    /// Put an image's app layers onto a new stack: only the manifest and config are uploaded.
    #[command(after_help = examples::REBASE)]
    Rebase(RebaseArgs),
    /// Run the cf push-style API, build queue and registry endpoint.
    #[command(after_help = examples::SERVE)]
    Serve(Box<ServeArgs>),
    /// Push an app to a `dropship serve` API the way `cf push` does: upload, stage, print the image.
    #[command(after_help = examples::PUSH)]
    Push(push::PushArgs),
    /// Log in to a `dropship serve` API with a user and password (kept for push).
    #[command(after_help = examples::LOGIN)]
    Login(login::LoginArgs),
    /// Forget the stored login's tokens.
    #[command(after_help = examples::LOGOUT)]
    Logout,
    /// Show or set the API, org and space that push uses.
    #[command(after_help = examples::TARGET)]
    Target(login::TargetArgs),
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
    /// PostgreSQL for the metadata (postgres://user:password@host/db), shared by replicas;
    /// default: SQLite in the data dir.
    #[arg(long, env = "DROPSHIP_DATABASE", value_name = "URL")]
    pub database: Option<String>,
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
    /// A user of the built-in login, NAME:PASSWORD (repeatable; the password may contain
    /// commas and colons). Without it, DROPSHIP_USERS=name:pw,name2:pw2 is read. Added to the
    /// config file's [users].
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    pub users: Vec<String>,
    /// The built-in login's token signing key, a PKCS#8 P-256 PEM file ([auth] signing_key):
    /// replicas must share one (default: made at first start in the data dir).
    #[arg(long, env = "DROPSHIP_SIGNING_KEY", value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
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
    /// How long a replica's claim on a build lasts unless renewed (default 30s): a build
    /// whose replica died is staged again by another one after it.
    #[arg(long, env = "DROPSHIP_BUILD_LEASE")]
    pub build_lease: Option<String>,
    /// Processes (and threads) one build's staging may run at once (default 1024).
    #[arg(long, env = "DROPSHIP_STAGING_PIDS")]
    pub staging_pids: Option<u64>,
    /// With sandbox none as root and no writable cgroups: run builds anyway.
    #[arg(
        long = "i-know-the-host-is-a-container",
        env = "DROPSHIP_HOST_IS_CONTAINER"
    )]
    pub host_is_container: bool,
    /// Where packages, droplets and registry blobs are shared between replicas: a directory
    /// or s3://bucket/prefix (AWS_* variables for S3; default: the data dir itself).
    #[arg(long, env = "DROPSHIP_BLOB_STORE", value_name = "URL")]
    pub blob_store: Option<String>,
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
    /// How the image's new layers are compressed: gzip (every tool reads it) or zstd (OCI
    /// `tar+zstd`: smaller and faster; needs an OCI stack). The droplet tgz is always gzip.
    #[arg(long, value_enum, default_value_t = dropship::pipeline::Codec::Gzip)]
    pub compression: dropship::pipeline::Codec,
    /// Buildpack cache (/tmp/cache) kept between builds.
    #[arg(long, env = "DROPSHIP_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Delete the buildpack cache and build without it.
    #[arg(long)]
    pub no_cache: bool,
    /// A buildpack cache larger than this is not kept (e.g. 2G).
    #[arg(long, env = "DROPSHIP_CACHE_MAX", default_value = "2G")]
    pub cache_max: String,
    /// Compressed droplet layers kept (in the stack cache dir) to skip packing unchanged
    /// layers again; least recently used ones go beyond this (e.g. 2G, 0: none kept).
    #[arg(long, env = "DROPSHIP_LAYER_CACHE_SIZE", default_value = "2G")]
    pub layer_cache_size: String,
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

#[derive(Args)]
pub struct RebaseArgs {
    /// The app image (built by dropship): docker://HOST/REPO[:TAG|@DIGEST] or oci:DIR[:TAG].
    #[arg(value_name = "IMAGE")]
    pub from: String,
    /// The new stack image: docker://HOST/REPO[:TAG|@DIGEST] or oci:DIR[:TAG].
    #[arg(long, env = "DROPSHIP_STACK")]
    pub stack: String,
    /// Where the rebased image goes (default: IMAGE's repository and tag).
    #[arg(long = "image", value_name = "TARGET")]
    pub target: Option<String>,
    /// Rebase onto a stack of another name (CF_STACK), OS or architecture.
    #[arg(long)]
    pub force: bool,
    /// Credentials for the stack's registry only (else DROPSHIP_STACK_REGISTRY_USER/PASSWORD,
    /// else auth.json and docker config.json); --creds are never sent there.
    #[arg(long, value_name = "USER:PASS")]
    pub stack_creds: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}
