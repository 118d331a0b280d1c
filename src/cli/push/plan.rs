//! What one `dropship push` pushes: the app at SOURCE with its manifest's first application
//! (flags first), or — when the manifest lists several and no `--name` picks one — every
//! application, each from its `path` (relative to the manifest's directory; default that
//! directory), in order. As the cf CLI, flags that set an app's settings cannot apply to several
//! apps. Unlike it, a `path` may not lead out of the manifest's directory: a manifest comes with
//! the code (often someone else's), and `path: /root/.ssh` would upload the pushing machine's
//! files to a server that may serve them.

use super::{PushArgs, Settings};
use anyhow::{bail, Context, Result};
use dropship::intake::manifest::AppManifest;
use dropship::intake::Limits;
use std::path::{Path, PathBuf};

/// The apps to push, each with its source.
pub(super) fn apps(a: &PushArgs) -> Result<Vec<(PathBuf, Settings)>> {
    let file = super::super::manifest::load(&a.source, &Limits::default())?;
    let Some(file) = file else {
        return Ok(vec![(
            a.source.clone(),
            settings(a, AppManifest::default(), &a.source)?,
        )]);
    };
    let name = file.name;
    let mut all = vec![file.manifest];
    all.extend(file.rest);
    let several = all.len() > 1;
    // `load` printed the first application's parsing warnings; the others' are said here.
    for (i, m) in all.iter().enumerate().skip(1) {
        for w in &m.warnings {
            let app = m
                .name
                .clone()
                .unwrap_or_else(|| format!("applications[{i}]"));
            let app = if several {
                format!("{app}: ")
            } else {
                String::new()
            };
            eprintln!("warning: {name}: {app}{w}");
        }
    }
    let picked = match &a.name {
        Some(n) if all.len() > 1 => {
            let n = n.trim();
            let found = all.into_iter().find(|m| m.name.as_deref() == Some(n));
            vec![found.with_context(|| format!("{name} lists no application named {n:?}"))?]
        }
        _ => all,
    };
    if picked.len() > 1 {
        check_no_app_flags(a)?;
    }
    picked
        .into_iter()
        .map(|m| {
            let source = source_of(&a.source, m.path.as_deref())?;
            let s = settings(a, m, &source)?;
            Ok((source, s))
        })
        .collect()
}

/// cf's rule: with several apps, no flag may set one app's settings.
fn check_no_app_flags(a: &PushArgs) -> Result<()> {
    let given = [
        ("-b", !a.buildpacks.is_empty()),
        ("-s", a.stack.is_some()),
        ("-i", a.instances.is_some()),
        ("-m", a.memory.is_some()),
        ("-k", a.disk.is_some()),
    ];
    let flags: Vec<&str> = given.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
    if !flags.is_empty() {
        bail!(
            "{} cannot apply when pushing several apps from a manifest: set them in the \
             manifest, or push one app with --name",
            flags.join(", ")
        );
    }
    Ok(())
}

/// An application's source: its `path` beneath the manifest's directory, else SOURCE.
fn source_of(source: &Path, path: Option<&str>) -> Result<PathBuf> {
    let Some(path) = path else {
        return Ok(source.to_path_buf());
    };
    if !source.is_dir() {
        bail!("path: {path:?}: the manifest is inside a zip; push its apps from a directory");
    }
    let root = source
        .canonicalize()
        .with_context(|| source.display().to_string())?;
    let full = root.join(path);
    let resolved = full
        .canonicalize()
        .with_context(|| format!("path: {path:?} ({})", full.display()))?;
    if !resolved.starts_with(&root) {
        bail!(
            "path: {path:?} leads out of the manifest's directory ({}): refused",
            root.display()
        );
    }
    Ok(resolved)
}

/// The settings: flags, else the manifest's, else defaults (the source's base name).
fn settings(a: &PushArgs, m: AppManifest, source: &Path) -> Result<Settings> {
    let scale_of_manifest = super::super::manifest::Scale::default().over(&m);
    let name = match (&a.name, m.name) {
        (Some(n), _) => n.trim().to_string(),
        (None, Some(n)) => n,
        (None, None) => super::super::app_name(source)?,
    };
    if name.is_empty() {
        bail!("--name: the app name cannot be empty");
    }
    let buildpacks = if a.buildpacks.is_empty() {
        m.buildpacks.unwrap_or_default()
    } else {
        a.buildpacks.clone()
    };
    let mb = |v: &Option<String>, flag: &str| -> Result<Option<u64>> {
        let bytes = v.as_deref().map(super::super::parse_size).transpose();
        let mb = bytes.with_context(|| flag.to_string())?.map(|b| b >> 20);
        if mb == Some(0) {
            bail!("{flag} must be at least 1M");
        }
        Ok(mb)
    };
    let flags = super::super::manifest::Scale {
        instances: a.instances,
        memory_mb: mb(&a.memory, "--memory")?,
        disk_mb: mb(&a.disk, "--disk")?,
    };
    Ok(Settings {
        name,
        buildpacks,
        scale: flags.or(scale_of_manifest),
        stack: a.stack.clone().or(m.stack),
        env: m.env,
        command: m.command,
        health_check: m.health_check,
        timeout_s: m.timeout_s,
        processes: m.processes,
    })
}
