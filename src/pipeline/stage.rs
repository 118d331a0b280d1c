//! Staging: the buildpack cache restored and the workspace handed to the staging user, the
//! buildpacks run over the app inside the stack's sandbox, the cache saved back.

use super::buildpacks;
use super::cache::CachePolicy;
use super::confine::{check_reachable, confinement};
use super::error::{blocking, other, BuildError};
use super::options::{BuildRequest, Runtime};
use super::stack::ResolvedStack;
use crate::app::App;
use crate::report::{info, warn, Event, Reporter};
use crate::staging::env::{platform_owned, staging_env, AppInfo};
use crate::staging::lifecycle::{mounts, Lifecycle};
use crate::staging::sandbox::Sandbox;
use crate::staging::workspace::Workspace;
use crate::staging::{StagingError, StagingResult};
use std::sync::Arc;
use std::time::Instant;

/// What staging needs.
pub struct StagingInput<'a> {
    pub app: &'a App,
    pub request: &'a BuildRequest,
    pub runtime: &'a Runtime,
    pub cache: &'a CachePolicy,
    pub stack: &'a ResolvedStack,
    pub ws: Arc<Workspace>,
}

/// A staged app: the droplet's tree in the workspace, and what the buildpacks said of it.
pub struct Staged {
    pub result: StagingResult,
    pub ws: Arc<Workspace>,
}

impl Staged {
    /// The app's `command` replaces the buildpack's web command, as in Cloud Foundry (the
    /// droplet's `staging_info.yml` keeps the buildpack's): call it after packaging.
    pub fn apply_command(&mut self, app: &App, reporter: &dyn Reporter) {
        if let Some(cmd) = &app.command {
            info(reporter, format!("start command (web): {cmd}"));
            self.result.start_command = cmd.clone();
            let web = crate::k8s::PROCESS_TYPE_WEB.to_string();
            self.result.process_types.insert(web, cmd.clone());
        }
    }
}

/// Runs the buildpacks over the workspace's app; the cache is restored before and kept after.
pub async fn stage(
    input: StagingInput<'_>,
    reporter: Arc<dyn Reporter>,
) -> Result<Staged, BuildError> {
    let (c, w, r) = (input.cache.clone(), input.ws.clone(), reporter.clone());
    blocking(move || {
        c.restore(&w, r.as_ref())?;
        w.hand_over()
            .map_err(other("giving the staging dirs to the staging user"))
    })
    .await?;
    let result = run(&input, reporter.clone()).await?;
    let (c, w, r) = (input.cache.clone(), input.ws.clone(), reporter);
    blocking(move || {
        c.keep(&w, r.as_ref());
        Ok(())
    })
    .await?;
    Ok(Staged {
        result,
        ws: input.ws,
    })
}

/// The lifecycle (detect, supply, finalize/compile, release) in the sandbox.
async fn run(
    input: &StagingInput<'_>,
    reporter: Arc<dyn Reporter>,
) -> Result<StagingResult, BuildError> {
    let (req, w, r) = (input.request.clone(), input.ws.clone(), reporter.clone());
    let bps = blocking(move || buildpacks::install(&req, w.path(), r.as_ref())).await?;
    let rootfs = input.stack.rootfs.clone().unwrap_or_default();
    check_reachable(input.stack.rootfs.as_deref(), input.ws.path())?;
    let ws = input.ws.clone();
    let confine = confinement(input.app, input.runtime, &ws, reporter.as_ref())?;
    let sandbox = Sandbox::new(
        input.runtime.sandbox,
        &rootfs,
        ws.dirs.clone(),
        mounts(&bps),
    )
    .map_err(|e| BuildError::Staging(StagingError::Sandbox(e)))?;
    let env = environment(input, &sandbox, reporter.as_ref());
    let skip_detect = !input.request.buildpacks.is_empty();
    let timeout = input.runtime.staging_timeout;
    let stop = input.runtime.stop.clone();
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
        Ok(crate::staging::run::stopping_on(stop, || {
            lifecycle.stage()
        })?)
    })
    .await
}

/// The variables scripts see; the app's own that the platform sets are named and left out.
fn environment(
    input: &StagingInput<'_>,
    sandbox: &Sandbox,
    reporter: &dyn Reporter,
) -> Vec<(String, String)> {
    let app = AppInfo::new(input.app, &input.stack.stack.name);
    for (k, _) in &input.app.env {
        if platform_owned(k) {
            let msg = format!(
                "{k} from the app's environment is not used in staging: the platform sets it"
            );
            warn(reporter, msg);
        }
    }
    staging_env(&app, &sandbox.home(), &sandbox.tmp())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{fixture, staged};
    use super::*;
    use crate::report::Silent;

    /// The fixture with a saved cache kept up to `max` bytes.
    async fn with_cache(max: u64) -> (super::super::testkit::Fixture, std::path::PathBuf) {
        let mut f = fixture().await;
        let saved = f.dir.path().join("cache");
        let dir = Some(saved.clone());
        f.opts.cache = CachePolicy {
            dir,
            fresh: false,
            max,
            ..CachePolicy::default()
        };
        (f, saved)
    }

    #[tokio::test]
    async fn stages_with_the_detected_buildpack_and_keeps_the_cache() {
        let (f, saved) = with_cache(1 << 30).await;
        let (_, mut s) = staged(&f).await;
        assert_eq!(s.result.detected_buildpack, "static");
        assert_eq!(s.result.start_command, "httpd -f");
        let seen = std::fs::read_to_string(saved.join("final/seen")).unwrap();
        assert_eq!(seen, "kept\n", "the cache is saved after staging");
        let mut app = App::named("shop");
        app.command = Some("run-it".into());
        s.apply_command(&app, &Silent);
        assert_eq!(s.result.start_command, "run-it");
        assert_eq!(s.result.process_types["web"], "run-it");
    }

    #[tokio::test]
    async fn a_cache_over_its_limit_is_not_kept() {
        let (f, saved) = with_cache(1).await;
        staged(&f).await;
        assert!(!saved.exists());
    }
}
