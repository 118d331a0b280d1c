//! `/v3/builds`: a build is queued (a row of the `builds` table: `workers.rs` claims it), runs
//! the same `pipeline::build` as the CLI, and ends STAGED with a droplet or FAILED with its
//! `BuildFailure` (a kind, shown as CF's error text).

use super::apps::{base, parse_body};
use super::error::{ApiError, ApiResult};
use super::lifecycle;
use super::logs::BuildLog;
use super::{json, Shared};
use crate::cfapi::{self as cf, Lifecycle, LifecycleData};
use crate::failure::{BuildFailure, FailureKind};
use crate::pipeline::{
    self, BuildError, BuildOptions, BuildRequest, CachePolicy, Outputs, Runtime, Targets,
};
use crate::refs::{ImageRef, LayoutRef, RegistryRef};
use crate::stack::StackCache;
use crate::store::{self, App, Build, BuildState, Droplet, Package};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// The repository of an app's images: `apps/<name>`, lowercased to what registries accept.
pub fn repository(app_name: &str) -> String {
    format!("apps/{}", super::registry::component(app_name))
}

/// The build's lifecycle (buildpack only), its stack (else the default one) and its
/// buildpacks (admin buildpacks only), checked.
fn checked_lifecycle(
    state: &Shared,
    lifecycle: Option<Lifecycle>,
) -> ApiResult<(LifecycleData, String)> {
    let lifecycle = match lifecycle {
        Some(l) if l.kind != "buildpack" => {
            return Err(ApiError::unprocessable(format!(
                "lifecycle type {:?} is not supported (only buildpack)",
                l.kind
            )))
        }
        Some(l) => l.data,
        None => LifecycleData::default(),
    };
    let stack = match lifecycle
        .stack
        .clone()
        .or_else(|| state.config.default_stack.clone())
    {
        Some(s) if state.config.stacks.contains_key(&s) => s,
        Some(s) => {
            return Err(ApiError::unprocessable(format!(
                "Stack '{s}' does not exist"
            )))
        }
        None => {
            return Err(ApiError::unprocessable(
                "No stack is configured: start dropship serve with --stack",
            ))
        }
    };
    for bp in lifecycle.buildpacks.iter().flatten() {
        let known = !bp.contains('/')
            && !bp.starts_with('.')
            && state.config.buildpacks_dir.join(bp).join("bin").is_dir();
        if !known {
            return Err(ApiError::unprocessable(format!(
                "Buildpack \"{bp}\" must be an existing admin buildpack"
            )));
        }
    }
    Ok((lifecycle, stack))
}

pub async fn create(
    State(state): State<Shared>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<(StatusCode, Json<cf::Build>)> {
    let req: cf::CreateBuild = parse_body(&body)?;
    let pkg = super::packages::get(&state, req.package.guid)
        .await
        .map_err(|_| {
            ApiError::unprocessable(
                "Unable to use package. Ensure that the package exists and you have access to it.",
            )
        })?;
    if !pkg.state.can_stage() {
        return Err(ApiError::unprocessable(format!(
            "Package state is {}: it must be READY to be staged",
            pkg.state
        )));
    }
    let app_guid = pkg.app_guid.clone();
    let app = state
        .db
        .call(move |c| store::get_app(c, &app_guid))
        .await?
        .ok_or_else(|| ApiError::not_found("App"))?;
    // No lifecycle given: the app's (a manifest's buildpacks and stack), as in CF.
    let lifecycle = req.lifecycle.or_else(|| {
        Some(Lifecycle {
            kind: "buildpack".into(),
            data: LifecycleData {
                buildpacks: Some(app.buildpacks.clone()).filter(|b| !b.is_empty()),
                stack: app.stack.clone(),
            },
        })
    });
    let (lifecycle, stack) = checked_lifecycle(&state, lifecycle)?;
    let t = store::now();
    let build = Build {
        guid: store::new_guid(),
        app_guid: app.guid.clone(),
        package_guid: pkg.guid.clone(),
        state: BuildState::Staging,
        failure: None,
        droplet_guid: None,
        buildpacks: lifecycle.buildpacks.unwrap_or_default(),
        stack,
        created_at: t.clone(),
        updated_at: t,
    };
    // The log first: a build whose log cannot be created (a full disk: 507) is never recorded.
    let log_path = state.paths.build_log(&build.guid);
    BuildLog::create(&log_path, state.config.max_log, None)
        .map_err(|e| ApiError::storage("the build's log", e))?;
    let row = build.clone();
    if let Err(e) = state.db.call(move |c| store::insert_build(c, &row)).await {
        let _ = std::fs::remove_file(&log_path);
        return Err(e.into());
    }
    // Queued: a worker of this replica (woken now) or of another one (polling) claims it.
    lifecycle::span(&build, &app).in_scope(|| lifecycle::queued(&pkg.guid));
    state.queue.wake();
    Ok((
        StatusCode::CREATED,
        Json(json::build(&build, &base(&state))),
    ))
}

pub async fn show(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::Build>> {
    let build = state
        .db
        .call(move |c| store::get_build(c, &guid))
        .await?
        .ok_or_else(|| ApiError::not_found("Build"))?;
    Ok(Json(json::build(&build, &base(&state))))
}

/// Why a build failed: staging failures keep their own kind, the other stages are named.
pub fn failure(e: &BuildError) -> BuildFailure {
    let kind = match e {
        BuildError::Staging(s) => return BuildFailure::new(s.kind(), s.to_string()),
        BuildError::Intake(_) => FailureKind::Intake,
        BuildError::Stack(_) => FailureKind::Stack,
        BuildError::Registry(_) => FailureKind::Registry,
        BuildError::K8s(_) => FailureKind::Kubernetes,
        BuildError::Image(_) => FailureKind::Image,
        BuildError::Buildpacks(_) => FailureKind::Buildpacks,
        BuildError::Other(_) => FailureKind::Other,
    };
    BuildFailure::new(kind, e.to_string())
}

/// Where the image of an app's droplet goes: the embedded registry's repository (tagged with
/// the droplet's guid), else the configured registry and then the embedded one.
pub(super) fn targets(state: &Shared, app: &str, droplet_guid: &str) -> Result<Targets, String> {
    let repo = repository(app);
    let layout_dir =
        super::registry::ensure_repository(&state.paths, &repo).map_err(|e| e.to_string())?;
    let local = ImageRef::Layout(LayoutRef {
        dir: layout_dir,
        tag: Some(droplet_guid.to_string()),
    });
    Ok(match &state.config.registry.prefix {
        Some(prefix) => {
            let remote: RegistryRef = format!(
                "{}/{}:{droplet_guid}",
                prefix.trim_end_matches('/'),
                repo.trim_start_matches("apps/")
            )
            .parse()
            .map_err(|e: crate::refs::RefError| e.to_string())?;
            Targets {
                target: ImageRef::Registry(remote),
                also: vec![local],
            }
        }
        None => Targets {
            target: local,
            also: vec![],
        },
    })
}

/// The name a droplet records for its image: the configured registry's, else the embedded
/// registry's public address.
pub(super) fn image_name(state: &Shared, app: &str, pushed: &str, digest: &str) -> String {
    match &state.config.registry.prefix {
        Some(_) => pushed.to_string(),
        None => format!(
            "{}/{}@{digest}",
            state.config.public_address,
            repository(app)
        ),
    }
}

fn options(
    state: &Shared,
    build: &Build,
    app: &App,
    droplet_guid: &str,
    stop: Arc<AtomicBool>,
) -> Result<BuildOptions, String> {
    let cfg = &state.config;
    let paths = &state.paths;
    let stack_ref = cfg
        .stacks
        .get(&build.stack)
        .ok_or("the stack disappeared from the configuration")?;
    let Targets { target, also } = targets(state, &app.name, droplet_guid)?;
    let stack: ImageRef = stack_ref
        .parse()
        .map_err(|e: crate::refs::RefError| e.to_string())?;
    let registry = state.registry_options(&stack)?;
    Ok(BuildOptions {
        request: BuildRequest {
            source: paths.package(&build.package_guid),
            stack,
            buildpacks: build.buildpacks.clone(),
            buildpacks_dir: cfg.buildpacks_dir.clone(),
            limits: cfg.limits,
        },
        app: super::apps::settings(app),
        outputs: Outputs {
            targets: Targets { target, also },
            manifests_dir: None,
            droplet: Some(paths.droplet(droplet_guid)),
            compression: cfg.compression,
        },
        cache: CachePolicy {
            dir: Some(paths.caches().join(&app.guid)),
            fresh: false,
            max: cfg.build_cache,
            layer_max: cfg.layer_cache,
        },
        runtime: Runtime {
            work_dir: paths.work(),
            stack_cache: StackCache {
                dir: paths.stack_cache(),
            },
            registry,
            sandbox: cfg.sandbox,
            host_is_container: cfg.host_is_container,
            staging_timeout: cfg.staging_timeout,
            staging_pids: cfg.staging_pids,
            stop,
        },
    })
}

/// Runs the pipeline (its scripts stopped once `stop` is set); the droplet it made, or why it
/// failed.
pub(super) async fn stage(
    state: &Shared,
    build: &Build,
    app: &App,
    pkg: &Package,
    log: &Arc<BuildLog>,
    stop: Arc<AtomicBool>,
) -> Result<Droplet, BuildFailure> {
    let droplet_guid = store::new_guid();
    let started = Instant::now();
    super::build_blobs::fetch_package(state, &build.package_guid).await?;
    let opts = options(state, build, app, &droplet_guid, stop)
        .map_err(|e| BuildFailure::new(FailureKind::Other, e))?;
    let out = pipeline::build(&opts, lifecycle::reporter(log))
        .await
        .map_err(|e| failure(&e))?;
    super::build_blobs::publish(state, &droplet_guid, &repository(&app.name)).await?;
    state.metrics.observe(&out, started.elapsed());
    evict_caches(state, log).await;
    let image = image_name(state, &app.name, &out.image, &out.digest);
    lifecycle::pushed(&image, &out.digest);
    let t = store::now();
    Ok(Droplet {
        guid: droplet_guid,
        app_guid: app.guid.clone(),
        build_guid: build.guid.clone(),
        package_guid: pkg.guid.clone(),
        // The service always asks for the tgz (its download).
        checksum: out.droplet_digest.clone().unwrap_or_default(),
        image,
        process_types: out.process_types.clone(),
        buildpacks: serde_json::to_value(&out.buildpacks).unwrap_or_default(),
        stack: build.stack.clone(),
        detected_buildpack: out.detected_buildpack.clone(),
        start_command: out.start_command.clone(),
        created_at: t.clone(),
        updated_at: t,
    })
}

/// Drops the least recently used build caches over `limits.build_cache` (a walk of every
/// cache: off the runtime).
async fn evict_caches(state: &Shared, log: &BuildLog) {
    let (root, limit) = (state.paths.caches(), state.config.build_cache);
    let evicted =
        tokio::task::spawn_blocking(move || crate::staging::cache::evict_lru(&root, limit))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    match evicted {
        Ok(gone) if !gone.is_empty() => log.line(&format!(
            "==> build caches over limits.build_cache: dropped {} least recently used",
            gone.len()
        )),
        Ok(_) => {}
        Err(e) => tracing::warn!("evicting build caches: {e}"),
    }
}
