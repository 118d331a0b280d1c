//! `dropship serve`: the cf push-style HTTP API (CF v3 shapes), a build queue running the same
//! pipeline as the CLI, staging logs, and a read-only OCI registry endpoint for the images.

pub(crate) mod access;
pub(crate) mod app_actions;
pub(crate) mod app_manifest;
pub(crate) mod apps;
mod attempt;
pub(crate) mod auth;
pub mod auth_config;
pub mod blob_config;
pub mod blobs;
pub(crate) mod body;
pub(crate) mod build_blobs;
pub(crate) mod buildpacks;
pub(crate) mod builds;
pub mod config;
pub(crate) mod content;
mod content_blobs;
pub(crate) mod droplets;
pub(crate) mod error;
pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod json;
pub(crate) mod jwt;
pub(crate) mod lifecycle;
pub(crate) mod listen;
pub(crate) mod lists;
pub(crate) mod locks;
pub(crate) mod log_cache;
pub(crate) mod log_lines;
pub(crate) mod log_ship;
pub(crate) mod log_tail;
pub(crate) mod logs;
pub(crate) mod manifest_apply;
pub(crate) mod manifest_diff;
pub(crate) mod metrics;
pub(crate) mod packages;
pub(crate) mod paging;
pub(crate) mod process_state;
pub(crate) mod process_update;
pub(crate) mod processes;
pub(crate) mod refresh;
pub(crate) mod refresh_jobs;
pub(crate) mod registry;
mod replica_slot;
mod resource_entry;
pub mod resource_list;
pub(crate) mod resources;
pub(crate) mod root;
pub(crate) mod spaces;
pub(crate) mod stack_list;
pub(crate) mod stacks;
pub(crate) mod uaa;
mod uaa_tokens;
pub(crate) mod upload;
pub(crate) mod users;
pub(crate) mod validate;
pub mod workers;

use crate::refs::ImageRef;
use crate::registry::auth::CredentialSources;
use crate::registry::RegistryOptions;
use crate::store::{Db, Paths};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use axum::Router;
use config::Config;
use std::sync::Arc;

/// Everything handlers share.
pub struct State {
    pub config: Config,
    pub paths: Paths,
    pub db: Db,
    /// This replica's build workers: its id, wake-ups, the builds it stages now.
    pub queue: workers::Queue,
    /// Packages, droplets, logs, resource content and registry blobs shared by replicas (the
    /// data dir itself by default): `blobs.rs` says how to publish and read them.
    pub blobs: blobs::Blobs,
    pub metrics: metrics::Metrics,
    /// Counts builds that reached a final state: wakes log followers (who then ask the store).
    pub builds_ended: tokio::sync::watch::Sender<u64>,
    /// Counts log chunks this replica wrote to the database: wakes its log followers at once
    /// (those of other replicas poll).
    pub logs_flushed: Arc<tokio::sync::watch::Sender<u64>>,
    /// The keys that sign (built-in login) or verify (external issuer) JWTs; none without login.
    pub keys: Option<Arc<jwt::Keys>>,
    /// Stack refreshes running and settled.
    pub refreshes: refresh_jobs::Refreshes,
    /// Set once the service is stopping: no build is claimed any more.
    pub draining: std::sync::atomic::AtomicBool,
}

pub type Shared = Arc<State>;

impl State {
    /// Options for registries the service pushes to or pulls `stack` from: `[registry]`
    /// username/password (else DROPSHIP_REGISTRY_USER/PASSWORD) go to the push prefix's
    /// registry only, DROPSHIP_STACK_REGISTRY_USER/PASSWORD to the stack's.
    pub fn registry_options(&self, stack: &ImageRef) -> Result<RegistryOptions, String> {
        let r = &self.config.registry;
        let mut credentials = CredentialSources::default();
        if let Some(prefix) = &r.prefix {
            let target: ImageRef = format!("{}/x", prefix.trim_end_matches('/'))
                .parse()
                .map_err(|e: crate::refs::RefError| e.to_string())?;
            let pair = (r.username.as_ref())
                .map(|u| format!("{u}:{}", r.password.as_deref().unwrap_or("")));
            credentials.bind_image(
                &target,
                ("[registry] username", pair.as_deref()),
                ("DROPSHIP_REGISTRY_USER", "DROPSHIP_REGISTRY_PASSWORD"),
            )?;
        }
        let stack_env = (
            "DROPSHIP_STACK_REGISTRY_USER",
            "DROPSHIP_STACK_REGISTRY_PASSWORD",
        );
        credentials.bind_image(stack, ("", None), stack_env)?;
        Ok(RegistryOptions {
            insecure: r.insecure.clone(),
            credentials,
            read_timeout_secs: RegistryOptions::timeout_from_env(),
            ..Default::default()
        })
    }
}

/// The routes. JSON bodies are capped at `body::JSON_LIMIT`, resource matches at
/// `resources::MAX_BODY`; uploads have no limit here: the upload handler enforces its own while
/// it streams.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics::render))
        .route("/", get(root::root))
        .route("/v3", get(root::v3))
        .route("/v3/info", get(root::info))
        .route("/v2/info", get(root::v2_info))
        .route("/login", get(uaa::login))
        .route("/oauth/token", post(uaa::token))
        .route("/token_keys", get(uaa::token_keys))
        .route("/token_key", get(uaa::token_key))
        .route("/api/v1/info", get(log_cache::info))
        .route("/api/v1/read/{source}", get(log_cache::read_source))
        .route("/v3/apps", post(apps::create).get(apps::list))
        .route(
            "/v3/apps/{guid}",
            get(apps::show).patch(apps::update).delete(jobs::delete_app),
        )
        .route("/v3/apps/{guid}/env", get(apps::show_full_env))
        .route("/v3/apps/{guid}/manifest", get(app_manifest::show))
        .route("/v3/apps/{guid}/actions/start", post(app_actions::start))
        .route("/v3/apps/{guid}/actions/stop", post(app_actions::stop))
        .route(
            "/v3/apps/{guid}/actions/restart",
            post(app_actions::restart),
        )
        .route("/v3/apps/{guid}/kubernetes", get(app_actions::kubernetes))
        .route("/v3/jobs/{guid}", get(jobs::show))
        .route(
            "/v3/organizations",
            get(spaces::orgs).post(spaces::create_org),
        )
        .route("/v3/organizations/{guid}", get(spaces::show_org))
        .route("/v3/spaces", get(spaces::spaces).post(spaces::create_space))
        .route("/v3/spaces/{guid}", get(spaces::show_space))
        .route(
            "/v3/spaces/{guid}/actions/apply_manifest",
            post(manifest_apply::apply_manifest),
        )
        .route(
            "/v3/spaces/{guid}/manifest_diff",
            post(manifest_diff::manifest_diff),
        )
        .route("/v3/buildpacks", get(buildpacks::list))
        .route("/v3/buildpacks/{guid}", get(buildpacks::show))
        .route(
            "/v3/apps/{guid}/cache",
            axum::routing::delete(apps::delete_cache),
        )
        .route(
            "/v3/apps/{guid}/environment_variables",
            get(apps::show_env).patch(apps::update_env),
        )
        .route(
            "/v3/apps/{guid}/relationships/current_droplet",
            patch(apps::set_current_droplet).get(app_manifest::current_droplet),
        )
        .route("/v3/apps/{guid}/droplets/current", get(droplets::current))
        .route("/v3/apps/{guid}/processes", get(processes::list_for_app))
        .route(
            "/v3/apps/{guid}/processes/{kind}",
            get(processes::show_for_app).patch(processes::update_for_app),
        )
        .route(
            "/v3/apps/{guid}/processes/{kind}/actions/scale",
            post(processes::scale_for_app),
        )
        .route("/v3/processes", get(processes::list))
        .route(
            "/v3/processes/{guid}",
            get(processes::show).patch(processes::update),
        )
        .route("/v3/processes/{guid}/stats", get(processes::stats))
        .route("/v3/processes/{guid}/actions/scale", post(processes::scale))
        .route("/v3/apps/{guid}/packages", get(lists::packages))
        .route("/v3/apps/{guid}/builds", get(lists::builds))
        .route("/v3/apps/{guid}/droplets", get(lists::droplets))
        .route("/v3/packages", post(packages::create).get(lists::packages))
        .route("/v3/packages/{guid}", get(packages::show))
        .route(
            "/v3/packages/{guid}/upload",
            post(upload::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/v3/resource_matches", post(resources::matches))
        .route("/v3/builds", post(builds::create).get(lists::builds))
        .route("/v3/builds/{guid}", get(builds::show))
        .route("/v3/builds/{guid}/logs", get(log_tail::show))
        .route("/v3/droplets", get(lists::droplets))
        .route("/v3/droplets/{guid}", get(droplets::show))
        .route("/v3/droplets/{guid}/download", get(droplets::download))
        .route("/v3/droplets/{guid}/kubernetes", get(droplets::kubernetes))
        .route("/v3/stacks", get(stack_list::list))
        .route("/v3/stacks/{guid}", get(stack_list::show))
        .route(
            "/v3/stacks/{name}/actions/refresh",
            post(refresh_jobs::refresh),
        )
        .route("/v2/", get(registry::base))
        .route("/v2/{*path}", get(registry::dispatch))
        .fallback(|| async { error::ApiError::unknown_request() })
        // Extractors that read whole bodies stop here; handlers read theirs through
        // `body.rs` (CF-shaped 413s), the upload streams with its own limit.
        .layer(DefaultBodyLimit::max(body::JSON_LIMIT as usize))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check,
        ))
        .layer(axum::middleware::from_fn(error::shape))
        .layer(axum::middleware::from_fn(access::log))
        .layer(axum::middleware::map_response(body::close_after_413))
        .with_state(state)
}

/// Binds the listen address (before anything is written: a taken port leaves the data dir as it
/// was), opens the data dir ([`open`]), and serves until the process ends.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = bind(config.listen).await?;
    let state = open(config).await?;
    started(&state);
    // A stack whose reference moved while the service was down: its apps are rebased now; then
    // every `[stacks] refresh_interval`.
    tokio::spawn(refresh_jobs::watch(state.clone()));
    let header_timeout = state.config.header_timeout;
    let (signaled, mut stopping) = tokio::sync::watch::channel(false);
    let stop = async move {
        stop_signal().await;
        let _ = signaled.send(true);
    };
    let http = tokio::spawn(listen::serve(
        listener,
        router(state.clone()),
        header_timeout,
        stop,
    ));
    let _ = stopping.wait_for(|s| *s).await;
    state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    workers::drain(&state).await;
    // Open requests (a followed log ends with its build) get a few seconds more, no more.
    if tokio::time::timeout(std::time::Duration::from_secs(5), http)
        .await
        .is_err()
    {
        tracing::info!("requests still open were cut");
    }
    tracing::info!("stopped");
    // Every build ended, or was handed back with its scripts stopped: blocking work left
    // behind (a workspace being removed) gets the runtime's bounded shutdown in main.
    Ok(())
}

/// The state `serve` runs the router on, from `config`: opens the data dir, recovers from a
/// previous crash (interrupted uploads FAILED, dead processes' workspaces removed), makes the
/// default stack when none is configured and starts the build workers. Tests call it to run
/// the router in their process.
pub async fn open(config: Config) -> anyhow::Result<Shared> {
    let paths = Paths {
        root: config.data_dir.clone(),
    };
    paths.create()?;
    let blobs = blobs::Blobs::open(&config.blob_store, &paths)?;
    // Build workspaces of processes that are gone (their staging tmpfs unmounted): other
    // replicas may share this data dir, so only the dead's. Uploads' temp files are swept by
    // `upload::sweep`.
    crate::staging::workspace::sweep(&paths.work(), false);
    let db = match &config.database {
        // Enough connections for every worker and a burst of requests.
        Some(url) => Db::postgres(url, 16 + 2 * config.concurrency).await?,
        None => Db::open(&paths.db())?,
    };
    let logs_flushed = Arc::new(tokio::sync::watch::Sender::new(0));
    let mut config = config;
    stacks::ensure_default(&mut config, &paths).await;
    let keys = auth::keys(&config, &paths)?;
    let state = Arc::new(State {
        keys,
        queue: workers::Queue::for_data_dir(&paths.root),
        config,
        paths,
        db,
        blobs,
        metrics: metrics::Metrics::default(),
        builds_ended: tokio::sync::watch::Sender::new(0),
        logs_flushed,
        refreshes: refresh_jobs::Refreshes::default(),
        draining: std::sync::atomic::AtomicBool::new(false),
    });
    // The default stack made here, pullable from every replica like the apps' images.
    if state
        .paths
        .repository(DEFAULT_STACK_REPO)
        .join("index.json")
        .is_file()
    {
        if let Err(e) = build_blobs::publish_image(&state, DEFAULT_STACK_REPO).await {
            tracing::warn!("{}", e.message);
        }
    }
    // Builds queued, or left by a replica that stopped answering (this one's previous
    // incarnation too: once their leases lapse), are claimed from now on.
    // What its previous process left taken back; alive before it owns anything (uploads,
    // jobs); then its builds.
    workers::recover(&state).await;
    workers::liveness(&state).await;
    workers::start(&state);
    Ok(state)
}

/// The embedded registry's repository of the default (busybox) stack.
const DEFAULT_STACK_REPO: &str = "stacks/busybox";

/// The listener, or an error naming the address: `cannot listen on 127.0.0.1:8080: Address
/// already in use`.
async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let text = e.to_string();
        // "Address already in use (os error 98)": the number tells people nothing.
        let text = match text.rfind(" (os error ") {
            Some(i) => &text[..i],
            None => &text,
        };
        anyhow::anyhow!("cannot listen on {addr}: {text}")
    })
}

/// The start-up line: where it listens, this replica's id, and what it runs with (no secrets:
/// tokens are counted).
fn started(state: &State) {
    let (config, paths) = (&state.config, &state.paths);
    let stacks = if config.stacks.is_empty() {
        "none".to_string()
    } else {
        config.stacks.keys().cloned().collect::<Vec<_>>().join(", ")
    };
    let sandbox = match config.sandbox {
        crate::staging::sandbox::SandboxKind::Bwrap => "bwrap",
        crate::staging::sandbox::SandboxKind::None => "none",
    };
    let registry = (config.registry.prefix.clone())
        .unwrap_or_else(|| format!("embedded at {}/v2/", config.public_address));
    tracing::info!(
        listen = %config.listen,
        replica = %state.queue.replica,
        build_lease = %humantime::format_duration(config.build_lease),
        data_dir = %paths.root.display(),
        stacks = %stacks,
        default_stack = config.default_stack.as_deref().unwrap_or("none"),
        sandbox,
        concurrency = config.concurrency,
        registry = %registry,
        blob_store = %state_blobs(config, paths),
        tokens = config.tokens.len(),
        users = ?config.auth.users,
        login = auth::login_kind(config),
        "listening on http://{}",
        config.listen
    );
}

/// The blob store as the start-up line shows it.
fn state_blobs(config: &Config, paths: &Paths) -> String {
    match &config.blob_store.location {
        None => format!("the data dir {}", paths.root.display()),
        Some(crate::blob::Location::Local(d)) => d.display().to_string(),
        Some(crate::blob::Location::S3 { bucket, prefix }) => format!("s3://{bucket}/{prefix}"),
    }
}

/// SIGTERM or SIGINT (as PID 1 in a container nothing else would stop the process).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
