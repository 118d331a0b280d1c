//! The Cloud Foundry buildpack app lifecycle: detect, supply, finalize (or compile), release,
//! with CF's directory layout, arguments, deps indexes, cache directories and merge order.

use super::buildpacks::Buildpack;
use super::env::with_deps;
use super::limits::Confinement;
use super::release::{parse_config, parse_launch, parse_procfile, parse_release, ProcessTypes};
use super::run::{run, Finished};
use super::sandbox::Sandbox;
use super::workspace::{Area, Workspace};
use super::{BuildpackMeta, StagingError, StagingResult};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// Everything one staging run needs. Between scripts, dropship touches what they wrote only
/// through `ws` (no link followed, reads capped); `confine` holds the scripts' limits.
pub struct Lifecycle<'a> {
    pub ws: &'a Workspace,
    pub confine: &'a Confinement,
    pub sandbox: &'a Sandbox,
    pub buildpacks: &'a [Buildpack],
    /// Buildpacks named explicitly: no detection; all but the last only supply.
    pub skip_detect: bool,
    pub env: &'a [(String, String)],
    pub deadline: Instant,
    pub timeout: Duration,
    pub log: &'a mut (dyn FnMut(&str) + Send),
}

/// CF's deps index: zero-padded to the number of digits of the buildpack count.
pub fn deps_index(i: usize, buildpacks: usize) -> String {
    let width = buildpacks.max(1).to_string().len();
    format!("{i:0width$}")
}

impl Lifecycle<'_> {
    fn has(&self, bp: &Buildpack, script: &str) -> bool {
        bp.dir.join("bin").join(script).is_file()
    }

    /// Runs `bin/<script>` of `bp` with `args`; output goes to the log unless captured.
    fn script(
        &mut self,
        bp: &Buildpack,
        script: &str,
        args: Vec<String>,
        capture: bool,
    ) -> Result<Finished, StagingError> {
        let host = bp.dir.join("bin").join(script);
        let inside = format!("{}/bin/{script}", self.sandbox.buildpack(&bp.name));
        let executable = std::fs::metadata(&host)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        let env = with_deps(self.env, &self.ws.deps_entries()?, &self.sandbox.deps());
        let mut cmd = if executable {
            self.sandbox.command(&inside, &args, &env)
        } else {
            (self.log)(&format!(
                "WARNING: buildpack script '/bin/{script}' is not executable"
            ));
            let mut all = vec![inside];
            all.extend(args);
            self.sandbox.command("/bin/sh", &all, &env)
        };
        self.confine.apply(&mut cmd);
        let finished =
            run(cmd, capture, self.deadline, &mut *self.log, self.confine).map_err(|e| match e
                .kind()
            {
                std::io::ErrorKind::Interrupted => StagingError::Interrupted,
                _ => StagingError::Sandbox(format!("starting {script} of {}: {e}", bp.name)),
            })?;
        let by_signal = (finished.code > 128)
            .then(|| self.confine.breach_by_signal(finished.code - 128))
            .flatten();
        if let Some(limit) = finished.breach.or(by_signal) {
            return Err(StagingError::LimitExceeded {
                limit,
                phase: script.to_string(),
                buildpack: bp.name.clone(),
            });
        }
        if finished.timed_out {
            return Err(StagingError::TimedOut {
                phase: script.to_string(),
                buildpack: bp.name.clone(),
                timeout: self.timeout,
            });
        }
        Ok(finished)
    }

    /// Checks that the sandbox starts at all, so that its own failures are not blamed on a
    /// buildpack.
    pub fn preflight(&mut self) -> Result<(), StagingError> {
        let mut cmd = self
            .sandbox
            .command("/bin/sh", &["-c".into(), ":".into()], self.env);
        self.confine.apply(&mut cmd);
        let mut lines = Vec::new();
        let f = run(
            cmd,
            false,
            Instant::now() + Duration::from_secs(30),
            &mut |l| lines.push(l.to_string()),
            self.confine,
        )
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::Interrupted => StagingError::Interrupted,
            _ => StagingError::Sandbox(e.to_string()),
        })?;
        if !f.success() {
            return Err(StagingError::Sandbox(format!(
                "the staging sandbox does not start (exit {}): {}. The stack needs /bin/sh; \
                 bubblewrap needs user namespaces and a /proc it may mount (in a container: \
                 seccomp and apparmor unconfined, /proc unmasked), or use --sandbox none",
                f.code,
                lines.join(" / ")
            )));
        }
        Ok(())
    }

    fn detect(&mut self) -> Result<(usize, String), StagingError> {
        let app = self.sandbox.app();
        for (i, bp) in self.buildpacks.iter().enumerate() {
            if !self.has(bp, "detect") {
                (self.log)(&format!("buildpack {} has no bin/detect: skipped", bp.name));
                continue;
            }
            let f = self.script(bp, "detect", vec![app.clone()], true)?;
            if f.code == 0 {
                let name = f.stdout.trim_end_matches(['\r', '\n']).trim().to_string();
                let name = if name.is_empty() {
                    bp.name.clone()
                } else {
                    name
                };
                return Ok((i, name));
            }
        }
        Err(StagingError::NoAppDetected {
            tried: self.buildpacks.iter().map(|b| b.name.clone()).collect(),
        })
    }

    fn cache_for(&self, key: &str) -> String {
        format!("{}/{key}", self.sandbox.cache())
    }

    /// Makes every `deps/<idx>` and `cache/<key>` directory the scripts are given before any
    /// script runs, and drops cache entries no buildpack of this build owns (CF's
    /// cleanCacheDir: the cache cannot grow with buildpacks an app no longer uses).
    fn prepare_dirs(&self, total: usize, cache_keys: &[String]) -> Result<(), StagingError> {
        self.ws.clean_cache(cache_keys)?;
        for key in cache_keys {
            self.ws.ensure_dir(Area::Cache, key)?;
        }
        for i in 0..total {
            self.ws.ensure_dir(Area::Deps, &deps_index(i, total))?;
        }
        Ok(())
    }

    fn merge_launch(&self, idx: &str, into: &mut ProcessTypes) -> Result<bool, StagingError> {
        let Some(text) = self.ws.read_doc(Area::Deps, &format!("{idx}/launch.yml"))? else {
            return Ok(false);
        };
        let procs = parse_launch(&text).map_err(|reason| StagingError::ReleaseFailed {
            buildpack: format!("deps/{idx}"),
            reason,
        })?;
        into.extend(procs);
        Ok(true)
    }

    /// The buildpack as `deps/<idx>/config.yml` describes it, and whether that file exists.
    fn meta(&self, bp: &Buildpack, idx: &str) -> Result<(BuildpackMeta, bool), StagingError> {
        let text = self.ws.read_doc(Area::Deps, &format!("{idx}/config.yml"))?;
        let cfg = text.as_deref().map(parse_config).unwrap_or_default();
        let meta = BuildpackMeta {
            key: bp.name.clone(),
            name: cfg.name.unwrap_or_else(|| bp.name.clone()),
            version: cfg.version,
        };
        Ok((meta, text.is_some()))
    }

    /// Stages the app: the buildpacks' output goes to the log as it comes.
    pub fn stage(mut self) -> Result<StagingResult, StagingError> {
        let (total, cache_keys) = self.cache_keys();
        // Every directory a script is handed exists before the first script runs.
        self.prepare_dirs(total, &cache_keys)?;
        self.preflight()?;
        let (supply, final_bp, detected) = self.choose()?;
        let mut used = self.supply_all(&supply, total, &cache_keys)?;
        let idx = deps_index(total - 1, total);
        self.finalize(&final_bp, &idx, !supply.is_empty())?;
        used.push((final_bp.clone(), idx.clone()));
        let processes = self.processes(&used, &final_bp, &idx)?;
        self.result(&used, processes, detected)
    }

    /// How many buildpacks run, and the cache dir of each (`supply-<name>`, then `final`).
    fn cache_keys(&self) -> (usize, Vec<String>) {
        let (total, mut keys) = if self.skip_detect {
            let n = self.buildpacks.len();
            let supply = &self.buildpacks[..n.saturating_sub(1)];
            let keys = supply.iter().map(|b| format!("supply-{}", b.name));
            (n.max(1), keys.collect::<Vec<_>>())
        } else {
            (1, Vec::new())
        };
        keys.push("final".to_string());
        (total, keys)
    }

    /// The supply buildpacks, the final one and the detected name: the named buildpacks (last
    /// one final), else the first that detects.
    fn choose(&mut self) -> Result<(Vec<Buildpack>, Buildpack, Option<String>), StagingError> {
        if self.skip_detect {
            let (last, rest) = self
                .buildpacks
                .split_last()
                .ok_or_else(|| StagingError::Io("no buildpack to stage with".to_string()))?;
            return Ok((rest.to_vec(), last.clone(), None));
        }
        let (i, name) = self.detect()?;
        Ok((Vec::new(), self.buildpacks[i].clone(), Some(name)))
    }

    /// Runs `bin/supply` of each non-final buildpack (all must have one); returns them with
    /// their deps index.
    fn supply_all(
        &mut self,
        supply: &[Buildpack],
        total: usize,
        cache_keys: &[String],
    ) -> Result<Vec<(Buildpack, String)>, StagingError> {
        if let Some(bp) = supply.iter().find(|bp| !self.has(bp, "supply")) {
            return Err(StagingError::SupplyFailed {
                buildpack: bp.name.clone(),
                reason: "it has no bin/supply: it cannot supply dependencies to a \
                         multi-buildpack app (name it last)"
                    .into(),
            });
        }
        let mut used = Vec::new();
        for (i, bp) in supply.iter().enumerate() {
            let idx = deps_index(i, total);
            let cache = self.cache_for(&cache_keys[i]);
            self.supply(bp, cache, &idx)?;
            used.push((bp.clone(), idx));
        }
        Ok(used)
    }

    fn supply(&mut self, bp: &Buildpack, cache: String, idx: &str) -> Result<(), StagingError> {
        let (app, deps) = (self.sandbox.app(), self.sandbox.deps());
        let f = self.script(bp, "supply", vec![app, cache, deps, idx.to_string()], false)?;
        if f.code != 0 {
            return Err(StagingError::SupplyFailed {
                buildpack: bp.name.clone(),
                reason: format!("bin/supply exited with status {}", f.code),
            });
        }
        Ok(())
    }

    /// The final buildpack: `supply` (if any) and `finalize`, else the legacy `compile`.
    fn finalize(
        &mut self,
        bp: &Buildpack,
        idx: &str,
        after_supply: bool,
    ) -> Result<(), StagingError> {
        let (app, deps) = (self.sandbox.app(), self.sandbox.deps());
        let cache = self.cache_for("final");
        let failed = |script: &str, code: i32| format!("bin/{script} exited with status {code}");
        if self.has(bp, "finalize") {
            if self.has(bp, "supply") {
                self.supply(bp, cache.clone(), idx)?;
            }
            let args = vec![app, cache, deps, idx.to_string(), self.sandbox.profile_d()];
            let f = self.script(bp, "finalize", args, false)?;
            if f.code != 0 {
                return Err(StagingError::FinalizeFailed {
                    buildpack: bp.name.clone(),
                    reason: failed("finalize", f.code),
                });
            }
            return Ok(());
        }
        if !self.has(bp, "compile") {
            return Err(StagingError::CompileFailed {
                buildpack: bp.name.clone(),
                reason: "it has neither bin/finalize nor bin/compile".into(),
            });
        }
        if after_supply {
            (self.log)("Warning: the last buildpack is not compatible with multi-buildpack apps and cannot make use of any dependencies supplied by the buildpacks specified before it");
        }
        let f = self.script(bp, "compile", vec![app, cache], false)?;
        if f.code != 0 {
            return Err(StagingError::CompileFailed {
                buildpack: bp.name.clone(),
                reason: failed("compile", f.code),
            });
        }
        Ok(())
    }

    /// Process types: the supply buildpacks' launch.yml, then the final one's (else its
    /// `bin/release`), then the app's Procfile.
    fn processes(
        &mut self,
        used: &[(Buildpack, String)],
        final_bp: &Buildpack,
        idx: &str,
    ) -> Result<ProcessTypes, StagingError> {
        let mut processes = ProcessTypes::new();
        for (_, i) in used.iter().take(used.len() - 1) {
            self.merge_launch(i, &mut processes)?;
        }
        if !self.merge_launch(idx, &mut processes)? {
            processes.extend(self.release(final_bp)?);
        }
        if let Some(text) = self.ws.read_doc(Area::App, "Procfile")? {
            processes.extend(parse_procfile(&text).map_err(StagingError::Procfile)?);
        }
        Ok(processes)
    }

    /// The process types `bin/release` prints.
    fn release(&mut self, bp: &Buildpack) -> Result<ProcessTypes, StagingError> {
        let failed = |reason: String| StagingError::ReleaseFailed {
            buildpack: bp.name.clone(),
            reason,
        };
        if !self.has(bp, "release") {
            return Err(failed("it has no bin/release".into()));
        }
        let f = self.script(bp, "release", vec![self.sandbox.app()], true)?;
        if f.code != 0 {
            return Err(failed(format!("bin/release exited with status {}", f.code)));
        }
        parse_release(&f.stdout).map_err(failed)
    }

    /// The staging result: the web command, the buildpacks' metadata, the detected name (the
    /// final buildpack's config.yml name, else what detect printed).
    fn result(
        &mut self,
        used: &[(Buildpack, String)],
        processes: ProcessTypes,
        detected: Option<String>,
    ) -> Result<StagingResult, StagingError> {
        let start_command = processes.get("web").cloned().unwrap_or_default();
        if start_command.is_empty() {
            (self.log)("No start command specified by buildpack or via Procfile.");
            (self.log)("App will not start unless a command is provided at runtime.");
        }
        let mut buildpacks = Vec::new();
        let mut has_config = false;
        for (b, i) in used {
            let (meta, has) = self.meta(b, i)?;
            buildpacks.push(meta);
            has_config = has;
        }
        let last = buildpacks.last().expect("a final buildpack ran");
        let detected_buildpack = match (has_config, detected) {
            (true, _) | (false, None) => last.name.clone(),
            (false, Some(name)) => name,
        };
        Ok(StagingResult {
            detected_buildpack,
            start_command,
            process_types: processes,
            buildpacks,
        })
    }
}

/// The buildpack directories to mount, by name.
pub fn mounts(buildpacks: &[Buildpack]) -> Vec<(String, std::path::PathBuf)> {
    buildpacks
        .iter()
        .map(|b| (b.name.clone(), b.dir.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn deps_indexes_are_padded_like_cf() {
        assert_eq!(super::deps_index(0, 1), "0");
        assert_eq!(super::deps_index(3, 9), "3");
        assert_eq!(super::deps_index(3, 10), "03");
        assert_eq!(super::deps_index(12, 100), "012");
    }
}
