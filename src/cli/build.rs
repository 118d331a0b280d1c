//! `dropship build`: flags and the app manifest turned into [`BuildOptions`], the pipeline
//! run (abandoned on SIGINT / SIGTERM), its outcome printed (text or `--json`).

use super::workdir::work_dir;
use super::{absolute, app_name, default_buildpacks_dir, manifest, parse_size};
use super::{registry_options, report, stack_cache, BuildArgs};
use anyhow::{bail, Context, Result};
use dropship::app::{App, HealthCheck};
use dropship::intake::Limits;
use dropship::pipeline::{self, BuildOptions, BuildRequest, CachePolicy, Outputs, Runtime};
use dropship::pipeline::{BuildOutcome, Targets};
use dropship::refs::ImageRef;
use std::sync::Arc;
use std::time::Duration;

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
    let (app, buildpacks) = app_settings(a, &limits)?;
    let stack_creds = Some((&stack, a.stack_creds.as_deref()));
    let registry = registry_options(&a.registry, &target, stack_creds)?;
    let buildpacks_dir = match &a.buildpacks_dir {
        Some(d) => d.clone(),
        None => default_buildpacks_dir()?,
    };
    Ok(BuildOptions {
        request: BuildRequest {
            source: absolute(&a.source)?,
            stack,
            buildpacks,
            buildpacks_dir: absolute(&buildpacks_dir)?,
            limits,
        },
        runtime: Runtime {
            work_dir: absolute(&work_dir(&a.registry, Some(&a.source), app.disk_mb << 20))?,
            stack_cache: stack_cache(&a.registry),
            registry,
            sandbox: a.sandbox,
            host_is_container: a.host_is_container,
            staging_timeout: Duration::from(a.staging_timeout),
            staging_pids: a.staging_pids,
            stop: Default::default(),
        },
        app,
        outputs: Outputs {
            targets: Targets {
                target,
                also: Vec::new(),
            },
            manifests_dir: a.manifests.as_deref().map(absolute).transpose()?,
            droplet: a.droplet.as_deref().map(absolute).transpose()?,
            compression: a.compression,
        },
        cache: CachePolicy {
            dir: a.cache_dir.as_deref().map(absolute).transpose()?,
            fresh: a.no_cache,
            max: parse_size(&a.cache_max).context("--cache-max")?,
            layer_max: parse_size(&a.layer_cache_size).context("--layer-cache-size")?,
        },
    })
}

/// The app's settings (flags over the manifest) and the buildpacks named.
fn app_settings(a: &BuildArgs, limits: &Limits) -> Result<(App, Vec<String>)> {
    let file = manifest::load(&a.source, limits)?;
    for w in file
        .as_ref()
        .map(manifest::build_warnings)
        .unwrap_or_default()
    {
        eprintln!("{w}");
    }
    let m = file.map(|f| f.manifest).unwrap_or_default();
    let s = manifest::build_settings(build_flags(a)?, m);
    if s.memory_mb == 0 || s.disk_mb == 0 {
        bail!("--memory and --disk must be at least 1M");
    }
    let name = match s.name {
        Some(n) => n,
        None => app_name(&a.source)?,
    };
    let app = App {
        name,
        namespace: a.namespace.clone(),
        instances: s.instances,
        memory_mb: s.memory_mb,
        disk_mb: s.disk_mb,
        health_check: s.health_check,
        env: s.env,
        command: s.command,
        health_check_timeout: s.timeout,
    };
    Ok((app, s.buildpacks))
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
    let json = a.registry.json;
    match result {
        Ok(out) => print_outcome(&out, json).map(|_| 0),
        Err(e) => {
            eprintln!("dropship: build failed: {e}");
            if json {
                let error = serde_json::json!({"error": {
                    "code": e.exit_code(), "kind": e.kind(), "message": e.to_string(),
                }});
                println!("{error}");
            }
            Ok(e.exit_code())
        }
    }
}

/// The image on stdout: alone, or in the outcome's JSON.
fn print_outcome(out: &BuildOutcome, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(out)?);
    } else {
        report::progress!("==> image {}", out.image);
        println!("{}", out.image);
    }
    Ok(())
}
