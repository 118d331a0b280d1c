//! The whole build, shared by the CLI and the service: intake -> staging -> droplet -> image ->
//! push -> Kubernetes manifests. Each stage reports its duration; failures say which stage,
//! which file, which blob, which registry answer.

use crate::droplet::{self, StagingInfo};
use crate::fsutil::{copy_tree, unreachable_ancestor};
use crate::image::{self, BuiltImage, ImageSpec, NewLayer};
use crate::intake::{self, IntakeError, Limits};
use crate::k8s::{self, AppSpec, HealthCheck, K8sError};
use crate::layer::{fixed_mtime, LayerBlob};
use crate::refs::ImageRef;
use crate::registry::push::{self, PushBlob, PushInput, PushReport};
use crate::registry::{Registry, RegistryError, RegistryOptions};
use crate::report::{info, warn, Event, Reporter};
use crate::stack::{Stack, StackCache, StackError};
use crate::staging::buildpacks::{self, Buildpack};
use crate::staging::cache;
use crate::staging::env::{staging_env, AppInfo};
use crate::staging::lifecycle::{mounts, Lifecycle};
use crate::staging::sandbox::{hand_over, staging_owner, HostDirs, Sandbox, SandboxKind};
use crate::staging::{BuildpackMeta, StagingError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a build needs; the CLI fills it from flags, the service from its API.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub source: PathBuf,
    pub stack: ImageRef,
    pub target: ImageRef,
    /// More places the same image goes (the service keeps a copy for its own registry endpoint).
    pub also: Vec<ImageRef>,
    pub name: String,
    /// Explicit buildpacks (names or paths): no detection, last one is final.
    pub buildpacks: Vec<String>,
    pub buildpacks_dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub instances: u32,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub health_check: HealthCheck,
    pub namespace: Option<String>,
    pub manifests_dir: Option<PathBuf>,
    pub droplet_out: Option<PathBuf>,
    /// Buildpack cache kept between builds (`/tmp/cache`); `None`: a fresh one per build.
    pub cache_dir: Option<PathBuf>,
    /// Start from an empty cache (the saved one is deleted).
    pub no_cache: bool,
    /// A cache larger than this after a build is not kept.
    pub cache_max: u64,
    pub staging_timeout: Duration,
    pub sandbox: SandboxKind,
    pub registry: RegistryOptions,
    /// Where the per-build temporary directory is made.
    pub work_dir: PathBuf,
    pub stack_cache: StackCache,
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("intake: {0}")]
    Intake(#[from] IntakeError),
    #[error("staging: {0}")]
    Staging(#[from] StagingError),
    #[error("stack: {0}")]
    Stack(#[from] StackError),
    #[error("push: {0}")]
    Registry(#[from] RegistryError),
    #[error("kubernetes manifests: {0}")]
    K8s(#[from] K8sError),
    #[error("image: {0}")]
    Image(#[from] image::ImageError),
    #[error("buildpacks: {0}")]
    Buildpacks(#[from] buildpacks::BuildpackError),
    #[error("{0}")]
    Other(String),
}

impl BuildError {
    /// Cloud Foundry's builder exit codes for staging failures; 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::Staging(e) => e.exit_code(),
            _ => 1,
        }
    }
}

fn other(what: &str) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::Other(format!("{what}: {e}"))
}

/// A layer of the built image, as reported.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerInfo {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// What a build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildOutcome {
    /// `REPO@sha256:...` (registry) or `oci:DIR@sha256:...` (layout).
    pub image: String,
    pub digest: String,
    pub droplet_digest: String,
    pub detected_buildpack: String,
    pub start_command: String,
    pub process_types: BTreeMap<String, String>,
    pub buildpacks: Vec<BuildpackMeta>,
    pub layers: Vec<LayerInfo>,
    pub stack: StackInfo,
    /// Seconds per stage, in order.
    pub timings: Vec<(String, f64)>,
    pub push: PushReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifests: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub droplet: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StackInfo {
    pub reference: String,
    pub name: String,
    pub digest: String,
}

struct Timer<'a> {
    reporter: &'a dyn Reporter,
    timings: Vec<(String, f64)>,
    started: Instant,
}

impl Timer<'_> {
    fn lap(&mut self, name: &'static str) {
        let took = self.started.elapsed();
        self.reporter.event(Event::Stage { name, took });
        self.timings.push((name.to_string(), took.as_secs_f64()));
        self.started = Instant::now();
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BuildError::Other(format!("internal: {e}")))?
}

/// Runs the buildpacks over `dirs.app` inside the stack's sandbox.
#[allow(clippy::too_many_arguments)]
async fn stage(
    opts: &BuildOptions,
    stack: &Stack,
    rootfs: PathBuf,
    dirs: HostDirs,
    work: &Path,
    reporter: Arc<dyn Reporter>,
) -> Result<crate::staging::StagingResult, BuildError> {
    let skip_detect = !opts.buildpacks.is_empty();
    let bps: Vec<Buildpack> = if skip_detect {
        let unpack = work.join("buildpacks");
        opts.buildpacks
            .iter()
            .map(|b| buildpacks::resolve(b, &opts.buildpacks_dir, &unpack))
            .collect::<Result<_, _>>()?
    } else {
        buildpacks::detection_order(&opts.buildpacks_dir)?
    };
    // Buildpacks run from the work dir, as Cloud Foundry downloads them into the staging
    // container: the staging user may not be able to reach where they are installed.
    let copies = work.join("buildpacks-run");
    let bps: Vec<Buildpack> = bps
        .into_iter()
        .map(|b| {
            let dest = copies.join(&b.name);
            std::fs::create_dir_all(&dest)
                .and_then(|_| copy_tree(&b.dir, &dest))
                .map_err(other(&format!("copying buildpack {}", b.dir.display())))?;
            Ok(Buildpack {
                name: b.name,
                dir: dest,
            })
        })
        .collect::<Result<_, BuildError>>()?;
    hand_over(&[&copies]).map_err(other("giving the buildpacks to the staging user"))?;
    if let Some((uid, gid)) = staging_owner() {
        let mut must_reach = vec![work.to_path_buf()];
        if opts.sandbox == SandboxKind::Bwrap {
            must_reach.push(rootfs.clone());
        }
        for path in must_reach {
            if let Some(closed) = unreachable_ancestor(&path, uid, gid) {
                return Err(BuildError::Staging(StagingError::Sandbox(format!(
                    "the staging user (uid {uid}) cannot reach {}: {} is closed to it; \
                     make it traversable (chmod o+x) or choose another --work-dir / --stack-cache",
                    path.display(),
                    closed.display()
                ))));
            }
        }
    }
    let sandbox = Sandbox::new(opts.sandbox, &rootfs, dirs.clone(), mounts(&bps))
        .map_err(|e| BuildError::Staging(StagingError::Sandbox(e)))?;
    let app_guid = k8s::app_guid(opts.namespace.as_deref().unwrap_or(""), &opts.name);
    let app = AppInfo {
        name: opts.name.clone(),
        version: k8s::version(&app_guid),
        app_guid,
        memory_mb: opts.memory_mb,
        disk_mb: opts.disk_mb,
        stack: stack.name.clone(),
        space_name: k8s::DEFAULT_SPACE_ORG.to_string(),
        org_name: k8s::DEFAULT_SPACE_ORG.to_string(),
        user_env: opts.env.clone(),
    };
    let env = staging_env(&app, &sandbox.home(), &sandbox.tmp());
    let timeout = opts.staging_timeout;
    blocking(move || {
        let mut log = |line: &str| reporter.event(Event::Output(line.to_string()));
        let lifecycle = Lifecycle {
            dirs: &dirs,
            sandbox: &sandbox,
            buildpacks: &bps,
            skip_detect,
            env: &env,
            deadline: Instant::now() + timeout,
            timeout,
            log: &mut log,
        };
        Ok(lifecycle.stage()?)
    })
    .await
}

fn image_spec(
    opts: &BuildOptions,
    stack: &Stack,
    info: &StagingInfo,
    droplet: &LayerBlob,
    metas: &[BuildpackMeta],
) -> ImageSpec {
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    let base_name = stack.reference.to_string();
    for m in [&mut labels, &mut annotations] {
        m.insert(
            "org.opencontainers.image.title".to_string(),
            opts.name.clone(),
        );
        m.insert(
            "org.opencontainers.image.base.name".to_string(),
            base_name.clone(),
        );
        m.insert(
            "org.opencontainers.image.base.digest".to_string(),
            stack.digest().to_string(),
        );
    }
    labels.insert("io.dropship.droplet.digest".into(), droplet.digest.clone());
    labels.insert(
        "io.dropship.start-command".into(),
        info.start_command.clone(),
    );
    labels.insert(
        "io.dropship.detected-buildpack".into(),
        info.detected_buildpack.clone(),
    );
    labels.insert("io.dropship.stack".into(), stack.name.clone());
    labels.insert(
        "io.dropship.buildpacks".into(),
        serde_json::to_string(metas).unwrap_or_default(),
    );
    ImageSpec {
        start_command: info.start_command.clone(),
        labels,
        annotations,
        port: image::DEFAULT_PORT,
        created: image::rfc3339(fixed_mtime()),
    }
}

fn write_manifests(
    opts: &BuildOptions,
    dir: &Path,
    image_by_digest: &str,
) -> Result<PathBuf, BuildError> {
    let mut spec = AppSpec::new(opts.name.clone(), image_by_digest.to_string());
    spec.namespace = opts.namespace.clone();
    spec.instances = opts.instances;
    spec.memory_mb = opts.memory_mb;
    spec.disk_mb = opts.disk_mb;
    spec.health_check = opts.health_check.clone();
    spec.env = opts.env.iter().cloned().collect();
    let yaml = k8s::manifests(&spec)?.to_yaml()?;
    std::fs::create_dir_all(dir).map_err(other("creating the manifests dir"))?;
    let file = k8s::sanitize_name(&opts.name, "app");
    let path = dir.join(format!("{file}.yaml"));
    std::fs::write(&path, yaml).map_err(other("writing the manifests"))?;
    Ok(path)
}

/// Writes the image to one target; returns the digest, the report and the image by digest.
async fn push_to(
    registry: &Registry,
    target: &ImageRef,
    input: &PushInput<'_>,
) -> Result<(String, PushReport, String), BuildError> {
    Ok(match target {
        ImageRef::Registry(r) => {
            let (d, rep) = push::to_registry(registry, r, input).await?;
            let by_digest = format!("{}@{d}", r.repo_name());
            (d, rep, by_digest)
        }
        ImageRef::Layout(l) => {
            let (d, rep) = push::to_layout(l, input).await?;
            (d.clone(), rep, format!("oci:{}@{d}", l.dir.display()))
        }
    })
}

/// Builds the app described by `opts` and pushes its image.
pub async fn build(
    opts: &BuildOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<BuildOutcome, BuildError> {
    if opts.manifests_dir.is_some() && matches!(opts.target, ImageRef::Layout(_)) {
        return Err(BuildError::Other(
            "--manifests needs a registry target: a Kubernetes cluster cannot pull from an oci: layout".into(),
        ));
    }
    std::fs::create_dir_all(&opts.work_dir).map_err(other("creating the work dir"))?;
    let work = tempfile::Builder::new()
        .prefix("dropship-build-")
        .tempdir_in(&opts.work_dir)
        .map_err(other("creating the work dir"))?;
    let droplet_dir = work.path().join("droplet");
    let dirs = HostDirs {
        app: droplet_dir.join("app"),
        deps: droplet_dir.join("deps"),
        profile_d: droplet_dir.join("profile.d"),
        cache: work.path().join("cache"),
        home: work.path().join("home"),
    };
    for d in [
        &dirs.app,
        &dirs.deps,
        &dirs.profile_d,
        &dirs.cache,
        &dirs.home,
    ] {
        std::fs::create_dir_all(d).map_err(other("creating the staging dirs"))?;
    }
    // The staging user (uid 2000 when dropship is root) must reach the staging dirs.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o711))
        .map_err(other("opening the work dir to the staging user"))?;
    let mut timer = Timer {
        reporter: reporter.as_ref(),
        timings: Vec::new(),
        started: Instant::now(),
    };

    // Intake and stack resolution are independent: run them together.
    let in_use: Vec<&crate::refs::RegistryRef> = [&opts.stack, &opts.target]
        .into_iter()
        .chain(opts.also.iter())
        .filter_map(|r| match r {
            ImageRef::Registry(r) => Some(r),
            ImageRef::Layout(_) => None,
        })
        .collect();
    let registry = Registry::new(opts.registry.clone(), &in_use, reporter.clone())?;
    let (source, app_dir, limits) = (opts.source.clone(), dirs.app.clone(), opts.limits);
    let intake_job = blocking(move || Ok(intake::intake(&source, &app_dir, &limits)?));
    let stack_job = async {
        let stack = Stack::open(&opts.stack, &registry, &opts.stack_cache).await?;
        let rootfs = match opts.sandbox {
            SandboxKind::Bwrap => stack.rootfs(&opts.stack_cache).await?,
            SandboxKind::None => PathBuf::new(),
        };
        Ok::<_, BuildError>((stack, rootfs))
    };
    let (stats, stack) = tokio::join!(intake_job, stack_job);
    let stats = stats?;
    let (stack, rootfs) = stack?;
    info(
        reporter.as_ref(),
        format!(
            "app: {} files, {} bytes; stack {} ({})",
            stats.files,
            stats.bytes,
            stack.name,
            stack.digest()
        ),
    );
    timer.lap("intake");

    if let (Some(saved), true) = (&opts.cache_dir, opts.no_cache) {
        if saved.exists() {
            std::fs::remove_dir_all(saved).map_err(other("deleting the buildpack cache"))?;
            info(reporter.as_ref(), "no cache: deleted the buildpack cache");
        }
    }
    if let Some(saved) = &opts.cache_dir {
        match cache::restore(saved, &dirs.cache) {
            Ok(0) => {}
            Ok(n) => info(
                reporter.as_ref(),
                format!(
                    "restored the buildpack cache ({n} bytes) from {}",
                    saved.display()
                ),
            ),
            Err(e) => {
                warn(
                    reporter.as_ref(),
                    format!("dropping the buildpack cache {}: {e}", saved.display()),
                );
                let _ = std::fs::remove_dir_all(&dirs.cache);
                std::fs::create_dir_all(&dirs.cache).map_err(other("creating the cache dir"))?;
            }
        }
    }
    hand_over(&[
        &dirs.app,
        &dirs.deps,
        &dirs.profile_d,
        &dirs.cache,
        &dirs.home,
    ])
    .map_err(other("giving the staging dirs to the staging user"))?;
    let staged = stage(
        opts,
        &stack,
        rootfs,
        dirs.clone(),
        work.path(),
        reporter.clone(),
    )
    .await?;
    let too_big = cache::size(&dirs.cache) > opts.cache_max;
    if let (Some(saved), true) = (&opts.cache_dir, too_big) {
        warn(
            reporter.as_ref(),
            format!(
                "the buildpack cache ({} bytes) is larger than the limit ({} bytes): not kept",
                cache::size(&dirs.cache),
                opts.cache_max
            ),
        );
        let _ = std::fs::remove_dir_all(saved);
    } else if let Some(saved) = &opts.cache_dir {
        match cache::save(&dirs.cache, saved) {
            Ok(n) => info(
                reporter.as_ref(),
                format!(
                    "saved the buildpack cache ({n} bytes) to {}",
                    saved.display()
                ),
            ),
            Err(e) => warn(
                reporter.as_ref(),
                format!(
                    "could not save the buildpack cache to {}: {e}",
                    saved.display()
                ),
            ),
        }
    }
    timer.lap("staging");

    let info_doc = StagingInfo {
        detected_buildpack: staged.detected_buildpack.clone(),
        start_command: staged.start_command.clone(),
    };
    let blob_dir = work.path().join("blobs");
    info(
        reporter.as_ref(),
        "packaging the droplet (tgz and image layer)",
    );
    let (d, b, i) = (droplet_dir.clone(), blob_dir.clone(), info_doc.clone());
    let (tgz, layer, launcher) = blocking(move || {
        droplet::finish_layout(&d, &i).map_err(other("writing the droplet"))?;
        let (tgz, layer) = droplet::package(&d, &b).map_err(other("packaging the droplet"))?;
        let launcher = droplet::launcher_layer(&b).map_err(other("writing the launcher layer"))?;
        Ok((tgz, layer, launcher))
    })
    .await?;
    let droplet_out = match &opts.droplet_out {
        Some(p) => {
            std::fs::copy(&tgz.path, p).map_err(other(&format!("writing {}", p.display())))?;
            Some(p.clone())
        }
        None => None,
    };
    timer.lap("droplet");

    let spec = image_spec(opts, &stack, &info_doc, &tgz, &staged.buildpacks);
    let new_layers = [
        NewLayer {
            blob: launcher.clone(),
            created_by: "dropship: /lifecycle/launch".into(),
        },
        NewLayer {
            blob: layer.clone(),
            created_by: format!(
                "dropship: droplet of {} ({})",
                opts.name, info_doc.detected_buildpack
            ),
        },
    ];
    let built: BuiltImage = image::build(&stack.resolved.base, &new_layers, &spec)?;
    let config_path = blob_dir.join("config.json");
    std::fs::write(&config_path, &built.config).map_err(other("writing the image config"))?;
    let mut blobs = vec![PushBlob {
        digest: built.config_digest.clone(),
        size: built.config.len() as u64,
        file: Some(config_path),
    }];
    for l in stack.resolved.base.manifest.layers() {
        blobs.push(PushBlob {
            digest: l.digest().to_string(),
            size: l.size(),
            file: None,
        });
    }
    for l in [&launcher, &layer] {
        blobs.push(PushBlob {
            digest: l.digest.clone(),
            size: l.size,
            file: Some(l.path.clone()),
        });
    }
    timer.lap("image");

    let input = PushInput {
        image: &built,
        blobs,
        base: Some(&stack.source),
        cache: &opts.stack_cache.blobs(),
        reporter: reporter.clone(),
    };
    let (digest, report, image_ref) = push_to(&registry, &opts.target, &input).await?;
    for extra in &opts.also {
        let (d, _, _) = push_to(&registry, extra, &input).await?;
        if d != digest {
            return Err(BuildError::Other(format!(
                "{extra} stored digest {d}, expected {digest}"
            )));
        }
    }
    timer.lap("push");

    let manifests = match &opts.manifests_dir {
        Some(dir) => {
            let p = write_manifests(opts, dir, &image_ref)?;
            timer.lap("manifests");
            Some(p)
        }
        None => None,
    };
    let layers = built
        .layers
        .iter()
        .map(|l| LayerInfo {
            digest: l.digest().to_string(),
            size: l.size(),
            media_type: l.media_type().to_string(),
        })
        .collect();
    Ok(BuildOutcome {
        image: image_ref,
        digest,
        droplet_digest: tgz.digest,
        detected_buildpack: staged.detected_buildpack,
        start_command: staged.start_command,
        process_types: staged.process_types,
        buildpacks: staged.buildpacks,
        layers,
        stack: StackInfo {
            reference: stack.reference.to_string(),
            name: stack.name.clone(),
            digest: stack.digest().to_string(),
        },
        timings: timer.timings,
        push: report,
        manifests,
        droplet: droplet_out,
    })
}
