//! `dropship push`: what `cf push` does against `dropship serve`, for the buildpack flow.
//!
//! 1. The app: a directory (walked with `intake::dir::list_dir`, so `.cfignore` and the cf
//!    CLI's default ignores apply exactly as in `dropship build`) or a zip, uploaded as is.
//! 2. The app's settings from its `manifest.yml` (see `cli/manifest.rs`), flags first, applied
//!    as a one-application manifest (`POST /v3/spaces/:guid/actions/apply_manifest`, the job
//!    waited for), as the cf CLI does; the app is then found by name.
//! 3. `POST /v3/packages` (bits).
//! 4. Directory apps: SHA-1 and size of every file (streamed, on a few threads), then
//!    `POST /v3/resource_matches` in chunks of 1,000 to learn which the server already has.
//! 5. The other files, the directories and the symlinks go into a zip written to a temporary
//!    file (unix modes kept, symlinks as symlinks), streamed to `POST /v3/packages/:guid/upload`
//!    as `bits`, with the matched files as `resources`.
//! 6. Wait for the package to be READY.
//! 7. `POST /v3/builds`; the staging log is streamed live to stderr
//!    (`GET /v3/builds/:guid/logs?follow=true`), then the build is polled until it ends.
//! 8. STAGED: the droplet becomes the app's current one and the app is started (as cf push
//!    does); the droplet's image (by digest) on stdout. FAILED: the error on stderr and the
//!    exit code of the failure's kind (Cloud Foundry's builder: 222 no buildpack detected, 223
//!    compile, 224 release, 225 supply, 226 finalize, 124 staging timeout, else 1).
//!
//! Files: `apply.rs` (step 2), `scan.rs` (step 4's listing and hashing), `bits.rs` (step 5's
//! zip), `api.rs` (the HTTP client), `upload.rs` (steps 3-6 on the server), `follow.rs` (step
//! 7), `outcome.rs` (step 8). Every body sent and every answer read is a `dropship::cfapi`
//! type, the model the server answers with. The token goes only into `Authorization: Bearer`
//! headers: it is never printed.

mod api;
mod apply;
mod bits;
mod follow;
mod outcome;
mod plan;
mod scan;
mod upload;

use anyhow::{bail, Context, Result};
use api::Api;
use bits::Bits;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args)]
pub struct PushArgs {
    /// The app: a directory (.cfignore honoured) or a zip (uploaded as is); as cf, the current
    /// directory by default.
    #[arg(conflicts_with = "path", default_value = ".")]
    pub source: PathBuf,
    /// The app, as cf's `-p PATH` (instead of SOURCE).
    #[arg(short = 'p', long, value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// The dropship serve API, e.g. http://127.0.0.1:8080 (default: the one of `dropship
    /// login` or `dropship target`).
    #[arg(long, env = "DROPSHIP_API", value_name = "URL")]
    pub api: Option<String>,
    /// App name (default: the manifest's, else the source's base name).
    #[arg(long)]
    pub name: Option<String>,
    /// Admin buildpack to use (repeatable; skips detection; the last one is final; default:
    /// the manifest's buildpacks).
    #[arg(short = 'b', long = "buildpack", value_name = "NAME")]
    pub buildpacks: Vec<String>,
    /// Stack to stage on (default: the manifest's, else the server's).
    #[arg(short = 's', long)]
    pub stack: Option<String>,
    /// Instances of the app (default: the manifest's, else what the app has: 1 when new).
    #[arg(short = 'i', long)]
    pub instances: Option<u32>,
    /// Memory limit of the app and its staging, e.g. 512M, 1G (default: the manifest's, else
    /// what the app has: 1G when new).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Disk limit of the app and its staging, e.g. 1G (default: the manifest's disk_quota,
    /// else what the app has: 1G when new).
    #[arg(short = 'k', long = "disk")]
    pub disk: Option<String>,
    /// API token, sent as `Authorization: Bearer` (default: the stored login's, for its API).
    #[arg(long, env = "DROPSHIP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print {app, package, build, droplet, image} as one JSON object on stdout when done.
    #[arg(long)]
    pub json: bool,
}

/// How often the package and the build are polled.
const POLL: Duration = Duration::from_millis(500);

/// What to push, flags first, then the manifest's.
struct Settings {
    name: String,
    buildpacks: Vec<String>,
    stack: Option<String>,
    env: Vec<(String, String)>,
    /// The web process's scale, set before staging (staging runs with its memory and disk).
    scale: super::manifest::Scale,
    /// The web process's command, health check and start timeout (the manifest's).
    command: Option<String>,
    health_check: Option<dropship::app::HealthCheck>,
    timeout_s: Option<u32>,
    /// The manifest's `processes`.
    processes: Vec<dropship::intake::manifest::ProcessManifest>,
}

/// `dropship push`; returns the process exit code (of the first app that failed).
pub async fn push(mut a: PushArgs) -> Result<i32> {
    a.source = a.path.take().unwrap_or(a.source);
    let meta = std::fs::metadata(&a.source).with_context(|| format!("{}", a.source.display()))?;
    if !meta.is_dir() && !meta.is_file() {
        bail!("{}: not a directory or a zip file", a.source.display());
    }
    let apps = plan::apps(&a)?;
    let session = super::login::Session::resolve(a.api.as_deref(), a.token.clone())?;
    let api = Api::new(session)?;
    for (source, s) in &apps {
        if apps.len() > 1 {
            super::report::progress!("==> pushing {} from {}", s.name, source.display());
        }
        let code = push_one(&api, source, s, a.json).await?;
        if code != 0 {
            return Ok(code);
        }
    }
    Ok(0)
}

/// One app: its source scanned, the app found or made and scaled, the bits uploaded, staged.
async fn push_one(api: &Api, source: &Path, s: &Settings, json: bool) -> Result<i32> {
    // The local work first, so that an unreadable file leaves nothing behind on the server:
    // a directory is listed and hashed, a zip is only opened.
    let scanned = if source.is_dir() {
        let src = source.to_path_buf();
        Source::Dir(tokio::task::spawn_blocking(move || scan::scan(&src)).await??)
    } else {
        Source::Zip(Bits::from_zip(source)?)
    };
    let app = api.apply_manifest(s).await?.guid;
    let package = api.create_package(&app).await?;
    let bits = scanned.bits(api, source).await?;
    super::report::progress!(
        "uploading {} files ({}), {} already on the server",
        bits.files,
        dropship::units::format_size(bits.len),
        bits.matched.len()
    );
    api.upload(&package, bits).await?;
    api.wait_for_package(&package).await?;
    let build = api.create_build(&package, s).await?;
    super::report::progress!("==> staging {} (build {build})", s.name);
    api.follow_log(&build).await;
    let ended = api.wait_for_build(&build).await?;
    let made = outcome::Made {
        app,
        package,
        build,
    };
    outcome::report(api, &ended, made, json).await
}

enum Source {
    Dir(scan::Scanned),
    /// Uploaded as it is.
    Zip(Bits),
}

impl Source {
    /// What to upload: a directory's files the server does not have (asked first), or the zip.
    async fn bits(self, api: &Api, src: &Path) -> Result<Bits> {
        match self {
            Source::Dir(files) => {
                let matched = api.resource_matches(&files).await?;
                let src = src.to_path_buf();
                tokio::task::spawn_blocking(move || bits::zip_unmatched(&src, files, &matched))
                    .await?
            }
            Source::Zip(bits) => Ok(bits),
        }
    }
}
