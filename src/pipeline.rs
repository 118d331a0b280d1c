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
use crate::report::{info, warn, Event, Meter, Reporter};
use crate::stack::{Stack, StackCache, StackError};
use crate::staging::buildpacks::{self, Buildpack};
use crate::staging::cache;
use crate::staging::env::{platform_owned, staging_env, AppInfo};
use crate::staging::lifecycle::{mounts, Lifecycle};
use crate::staging::limits::{Confinement, StagingLimits};
use crate::staging::sandbox::{staging_owner, Sandbox, SandboxKind};
use crate::staging::workspace::Workspace;
use crate::staging::{BuildpackMeta, StagingError};
use crate::units::format_size;
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
    /// The web process's start command in place of the buildpack's (the manifest's
    /// `command`): the image's Cmd.
    pub command: Option<String>,
    /// How long an instance may take to start, in seconds (the manifest's `timeout`); `None`:
    /// Cloud Foundry's 60.
    pub health_check_timeout: Option<u32>,
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
    /// Processes (and threads) staging may run at once.
    pub staging_pids: u64,
    pub sandbox: SandboxKind,
    /// `--sandbox none` as root on a host without control groups: scripts could leave
    /// processes behind; run anyway (the host is a throw-away container).
    pub host_is_container: bool,
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
    /// What failed, for machines: CF's error name for staging failures, else the stage.
    pub fn kind(&self) -> &'static str {
        match self {
            BuildError::Staging(e) => e.cf_name(),
            BuildError::Intake(_) => "intake",
            BuildError::Stack(_) => "stack",
            BuildError::Registry(_) => "registry",
            BuildError::K8s(_) => "kubernetes",
            BuildError::Image(_) => "image",
            BuildError::Buildpacks(_) => "buildpacks",
            BuildError::Other(_) => "build",
        }
    }

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
    /// The app's name.
    pub name: String,
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
    /// Seconds per stage: `intake` and `stack` ran at the same time, the others one after the
    /// other (`staging`, `droplet`, `image`, `push`, `manifests`).
    pub timings: BTreeMap<String, f64>,
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
        self.record(name, took);
        self.started = Instant::now();
    }

    /// A stage that ran beside another one, timed on its own.
    fn record(&mut self, name: &'static str, took: Duration) {
        self.reporter.event(Event::Stage { name, took });
        self.timings.push((name.to_string(), took.as_secs_f64()));
    }
}

/// `fut`'s result and how long it took.
async fn timed<T>(fut: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = fut.await;
    (out, start.elapsed())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BuildError::Other(format!("internal: {e}")))?
}

/// The buildpacks to run, copied into the work dir (as Cloud Foundry downloads them into the
/// staging container): root's, readable by everyone, so the staging user can run them from
/// wherever they are installed and no buildpack can change another.
fn staged_buildpacks(
    opts: &BuildOptions,
    work: &Path,
    reporter: &dyn Reporter,
) -> Result<Vec<Buildpack>, BuildError> {
    let bps: Vec<Buildpack> = if opts.buildpacks.is_empty() {
        let order = buildpacks::detection_order(&opts.buildpacks_dir)?;
        if !order.unlisted.is_empty() {
            info(
                reporter,
                format!(
                    "buildpacks not named in {}: {}: tried after the listed ones",
                    opts.buildpacks_dir.join("order").display(),
                    order.unlisted.join(", ")
                ),
            );
        }
        order.buildpacks
    } else {
        let unpack = work.join("buildpacks");
        opts.buildpacks
            .iter()
            .map(|b| buildpacks::resolve(b, &opts.buildpacks_dir, &unpack))
            .collect::<Result<_, _>>()?
    };
    let copies = work.join("buildpacks-run");
    let copied = bps
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
        .collect::<Result<Vec<_>, BuildError>>()?;
    open_to_all(&copies).map_err(other("opening the buildpacks to the staging user"))?;
    Ok(copied)
}

/// Makes a tree dropship wrote readable (and its executables runnable) by every user.
fn open_to_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.map_err(std::io::Error::other)?;
        let m = e.metadata().map_err(std::io::Error::other)?;
        if e.file_type().is_symlink() {
            continue;
        }
        let mode = m.permissions().mode();
        let open = if m.is_dir() || mode & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(open))?;
    }
    Ok(())
}

/// Stops with the directory the staging user cannot pass through, if any.
fn check_reachable(opts: &BuildOptions, rootfs: &Path, work: &Path) -> Result<(), BuildError> {
    let Some((uid, gid)) = staging_owner() else {
        return Ok(());
    };
    let mut must_reach = vec![work.to_path_buf()];
    if opts.sandbox == SandboxKind::Bwrap {
        must_reach.push(rootfs.to_path_buf());
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
    Ok(())
}

/// The limits of this build's staging, and the control group that holds them.
fn confinement(
    opts: &BuildOptions,
    ws: &Workspace,
    reporter: &dyn Reporter,
) -> Result<Confinement, BuildError> {
    let limits = StagingLimits {
        disk: opts.disk_mb << 20,
        memory: opts.memory_mb << 20,
        pids: opts.staging_pids,
        cpu_secs: opts.staging_timeout.as_secs().max(1),
    };
    let name = ws
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let watch = ws
        .disk_watch()
        .map_err(other("watching the staging disk"))?;
    let c = Confinement::new(&name, limits, staging_owner(), watch)
        .map_err(other("confining staging"))?;
    if let Some(why) = c.why_no_cgroup() {
        warn(
            reporter,
            format!("staging runs without a control group ({why}): memory and processes are bounded by rlimits"),
        );
    }
    if opts.sandbox == SandboxKind::None
        && staging_owner().is_some()
        && !c.has_cgroup()
        && !opts.host_is_container
    {
        return Err(BuildError::Staging(StagingError::Sandbox(
            "--sandbox none as root needs a writable cgroup file system (to kill every process \
             a buildpack starts, and to bound its memory and processes); none is writable here. \
             Use the bwrap sandbox, or pass --i-know-the-host-is-a-container"
                .into(),
        )));
    }
    Ok(c)
}

/// Runs the buildpacks over the workspace's app inside the stack's sandbox.
async fn stage(
    opts: &BuildOptions,
    stack: &Stack,
    rootfs: PathBuf,
    ws: Arc<Workspace>,
    reporter: Arc<dyn Reporter>,
) -> Result<crate::staging::StagingResult, BuildError> {
    let skip_detect = !opts.buildpacks.is_empty();
    let (o, w, r) = (opts.clone(), ws.clone(), reporter.clone());
    let bps = blocking(move || staged_buildpacks(&o, w.path(), r.as_ref())).await?;
    check_reachable(opts, &rootfs, ws.path())?;
    let confine = confinement(opts, &ws, reporter.as_ref())?;
    let sandbox = Sandbox::new(opts.sandbox, &rootfs, ws.dirs.clone(), mounts(&bps))
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
    for (k, _) in &opts.env {
        if platform_owned(k) {
            warn(
                reporter.as_ref(),
                format!(
                    "{k} from the app's environment is not used in staging: the platform sets it"
                ),
            );
        }
    }
    let env = staging_env(&app, &sandbox.home(), &sandbox.tmp());
    let timeout = opts.staging_timeout;
    blocking(move || {
        let mut log = |line: &str| reporter.event(Event::Output(line.to_string()));
        let lifecycle = Lifecycle {
            ws: &ws,
            confine: &confine,
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

/// The manifest's `command` replaces the buildpack's web command, as in Cloud Foundry (the
/// droplet's `staging_info.yml` keeps the buildpack's).
fn apply_command(
    opts: &BuildOptions,
    staged: &mut crate::staging::StagingResult,
    reporter: &dyn Reporter,
) {
    if let Some(cmd) = &opts.command {
        info(reporter, format!("start command (web): {cmd}"));
        staged.start_command = cmd.clone();
        staged
            .process_types
            .insert(k8s::PROCESS_TYPE_WEB.to_string(), cmd.clone());
    }
}

/// `info` with the start command the image runs (which may be the manifest's).
fn image_spec(
    opts: &BuildOptions,
    stack: &Stack,
    info: &StagingInfo,
    droplet: &LayerBlob,
    metas: &[BuildpackMeta],
) -> ImageSpec {
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    // Only a pullable reference names the base: an OCI layout is a path on this machine, and
    // would make the same build differ from one host to another.
    let base_name = match &stack.reference {
        ImageRef::Registry(r) => Some(r.to_string()),
        ImageRef::Layout(_) => None,
    };
    for m in [&mut labels, &mut annotations] {
        m.insert(
            "org.opencontainers.image.title".to_string(),
            opts.name.clone(),
        );
        if let Some(name) = &base_name {
            m.insert(
                "org.opencontainers.image.base.name".to_string(),
                name.clone(),
            );
        }
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
    processes: &BTreeMap<String, String>,
) -> Result<PathBuf, BuildError> {
    let mut spec = AppSpec::new(opts.name.clone(), image_by_digest.to_string());
    spec.namespace = opts.namespace.clone();
    spec.instances = opts.instances;
    spec.memory_mb = opts.memory_mb;
    spec.disk_mb = opts.disk_mb;
    spec.health_check = opts.health_check.clone();
    spec.env = opts.env.iter().cloned().collect();
    spec.processes = processes.clone();
    if let Some(t) = opts.health_check_timeout {
        spec.startup_timeout_s = t;
    }
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

/// An intake that ran out of room in a quota'd workspace is over the disk quota.
fn over_quota(e: IntakeError, ws: &Workspace) -> BuildError {
    let full = ws.quota().saturating_sub(ws.used()) < (1 << 20);
    if full {
        return BuildError::Other(format!(
            "intake: the app does not fit in the disk quota of {} (--disk): {e}",
            crate::staging::limits::human(ws.quota())
        ));
    }
    BuildError::Intake(e)
}

/// Restores the saved buildpack cache into the workspace (or deletes it for `--no-cache`).
fn restore_cache(
    opts: &BuildOptions,
    ws: &Workspace,
    reporter: &dyn Reporter,
) -> Result<(), BuildError> {
    let Some(saved) = &opts.cache_dir else {
        return Ok(());
    };
    if opts.no_cache && saved.exists() {
        std::fs::remove_dir_all(saved).map_err(other("deleting the buildpack cache"))?;
        info(reporter, "no cache: deleted the buildpack cache");
    }
    match cache::restore(saved, &ws.dirs.cache) {
        Ok(c) => {
            for link in &c.dropped_links {
                warn(
                    reporter,
                    format!(
                        "buildpack cache: {} points outside the cache: not restored",
                        link.display()
                    ),
                );
            }
            if c.bytes > 0 {
                info(
                    reporter,
                    format!(
                        "restored the buildpack cache ({}) from {}",
                        format_size(c.bytes),
                        saved.display()
                    ),
                );
            }
        }
        Err(e) => {
            warn(
                reporter,
                format!("dropping the buildpack cache {}: {e}", saved.display()),
            );
            let _ = std::fs::remove_dir_all(&ws.dirs.cache);
            std::fs::create_dir_all(&ws.dirs.cache).map_err(other("creating the cache dir"))?;
        }
    }
    Ok(())
}

/// Saves the workspace's buildpack cache after a successful staging, unless it is too big.
fn keep_cache(opts: &BuildOptions, ws: &Workspace, reporter: &dyn Reporter) {
    let Some(saved) = &opts.cache_dir else {
        return;
    };
    let size = cache::size(&ws.dirs.cache);
    if size > opts.cache_max {
        warn(
            reporter,
            format!(
                "the buildpack cache ({}) is larger than the limit ({}): not kept",
                format_size(size),
                format_size(opts.cache_max)
            ),
        );
        let _ = std::fs::remove_dir_all(saved);
        return;
    }
    match cache::save(&ws.dirs.cache, saved) {
        Ok(c) => {
            for link in &c.dropped_links {
                warn(
                    reporter,
                    format!(
                        "buildpack cache: {} points outside the cache: not kept",
                        link.display()
                    ),
                );
            }
            info(
                reporter,
                format!(
                    "saved the buildpack cache ({}) to {}",
                    format_size(c.bytes),
                    saved.display()
                ),
            );
        }
        Err(e) => warn(
            reporter,
            format!(
                "could not save the buildpack cache to {}: {e}",
                saved.display()
            ),
        ),
    }
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
    let (work_dir, quota) = (opts.work_dir.clone(), opts.disk_mb << 20);
    let ws = Arc::new(
        blocking(move || {
            Workspace::create(&work_dir, quota).map_err(other("creating the work dir"))
        })
        .await?,
    );
    if staging_owner().is_some() && !ws.quota_mounted() {
        warn(
            reporter.as_ref(),
            "the staging disk quota cannot be a tmpfs here (mount refused): it is watched instead",
        );
    }
    let droplet_dir = ws.droplet.clone();
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
    for target in std::iter::once(&opts.target).chain(&opts.also) {
        if let ImageRef::Registry(r) = target {
            registry.preflight(r).await?;
        }
    }
    let (source, app_dir, limits) = (opts.source.clone(), ws.dirs.app.clone(), opts.limits);
    let quota_ws = ws.clone();
    let intake_job = blocking(move || {
        intake::intake(&source, &app_dir, &limits).map_err(|e| over_quota(e, &quota_ws))
    });
    let stack_job = async {
        let stack = Stack::open(&opts.stack, &registry, &opts.stack_cache).await?;
        let rootfs = match opts.sandbox {
            SandboxKind::Bwrap => stack.rootfs(&opts.stack_cache).await?,
            SandboxKind::None => PathBuf::new(),
        };
        Ok::<_, BuildError>((stack, rootfs))
    };
    let ((stats, intake_took), (stack, stack_took)) =
        tokio::join!(timed(intake_job), timed(stack_job));
    let stats = stats?;
    let (stack, rootfs) = stack?;
    info(
        reporter.as_ref(),
        format!(
            "app: {} files, {}; stack {} ({})",
            stats.files,
            format_size(stats.bytes),
            stack.name,
            stack.digest()
        ),
    );
    timer.record("stack", stack_took);
    timer.record("intake", intake_took);
    timer.started = Instant::now();

    let (o, w, r) = (opts.clone(), ws.clone(), reporter.clone());
    blocking(move || {
        restore_cache(&o, &w, r.as_ref())?;
        w.hand_over()
            .map_err(other("giving the staging dirs to the staging user"))
    })
    .await?;
    let mut staged = stage(opts, &stack, rootfs, ws.clone(), reporter.clone()).await?;
    let (o, w, r) = (opts.clone(), ws.clone(), reporter.clone());
    blocking(move || {
        keep_cache(&o, &w, r.as_ref());
        Ok(())
    })
    .await?;
    timer.lap("staging");

    let info_doc = StagingInfo {
        detected_buildpack: staged.detected_buildpack.clone(),
        start_command: staged.start_command.clone(),
    };
    let blob_dir = ws.blobs.clone();
    let (d, b, i, r) = (
        droplet_dir.clone(),
        blob_dir.clone(),
        info_doc.clone(),
        reporter.clone(),
    );
    let (tgz, layer, launcher) = blocking(move || {
        droplet::finish_layout(&d, &i).map_err(other("writing the droplet"))?;
        let (files, bytes) = crate::fsutil::tally(&d);
        let size = crate::units::format_size(bytes);
        let what = format!("the droplet ({files} entries, {size}): tgz and image layer");
        info(r.as_ref(), format!("packaging {what}"));
        // Tar headers (512 B per entry) on top of the content: an estimate of the tar's size.
        let mut meter = Meter::new(r.clone(), "packing the droplet", bytes + 512 * files);
        let progress = Box::new(move |n| meter.set(n));
        let (tgz, layer) =
            droplet::package(&d, &b, Some(progress)).map_err(other("packaging the droplet"))?;
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

    apply_command(opts, &mut staged, reporter.as_ref());
    let run_info = StagingInfo {
        start_command: staged.start_command.clone(),
        ..info_doc.clone()
    };
    let spec = image_spec(opts, &stack, &run_info, &tgz, &staged.buildpacks);
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
            let p = write_manifests(opts, dir, &image_ref, &staged.process_types)?;
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
        name: opts.name.clone(),
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
        timings: timer.timings.into_iter().collect(),
        push: report,
        manifests,
        droplet: droplet_out,
    })
}
