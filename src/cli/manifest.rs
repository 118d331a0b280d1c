//! The app manifest (`manifest.yml` at the app's root) for `dropship build` and `dropship
//! push`: read once, its warnings printed, its settings under the command's flags (flags win).

use anyhow::{Context, Result};
use dropship::app::HealthCheck;
use dropship::intake::manifest::AppManifest;
use dropship::intake::manifest::ManifestError;
use dropship::intake::manifest_file::{self, ManifestFile};
use dropship::intake::Limits;
use std::path::Path;

/// The warnings of `dropship build` about a manifest: it stages on `--stack` (an image
/// reference, where a manifest names a stack), builds its SOURCE (not `path`), and only the
/// first application.
pub fn build_warnings(file: &ManifestFile) -> Vec<String> {
    let m = &file.manifest;
    let mut out = Vec::new();
    if let Some(stack) = &m.stack {
        out.push(format!(
            "stack: ignored, {stack:?} is a name: dropship build stages on --stack"
        ));
    }
    if m.path.is_some() {
        out.push("path: ignored, dropship build builds its SOURCE".to_string());
    }
    if !m.processes.is_empty() {
        out.push(
            "processes: ignored, every process type runs with the app's settings \
             (the service's apply_manifest applies them)"
                .to_string(),
        );
    }
    if !file.rest.is_empty() {
        let names: Vec<String> = file
            .rest
            .iter()
            .map(|a| format!("{:?}", a.name.clone().unwrap_or_default()))
            .collect();
        out.push(format!(
            "applications: only the first is built; {} more ignored ({}); dropship push pushes them all",
            names.len(),
            names.join(", ")
        ));
    }
    let name = file.name;
    out.into_iter()
        .map(|w| format!("warning: {name}: {w}"))
        .collect()
}

/// The manifest of the app at `source`, if it has one; prints one line saying it is read and
/// one warning per attribute not applied.
pub fn load(source: &Path, limits: &Limits) -> Result<Option<ManifestFile>> {
    let file = match manifest_file::read(source, limits) {
        // A zip the intake refuses is reported as such, not as a manifest problem.
        Err(e @ ManifestError::Zip(_)) => return Err(anyhow::anyhow!("{e}")),
        r => r.context("app manifest")?,
    };
    let Some(file) = file else {
        return Ok(None);
    };
    eprintln!("==> reading {} of {}", file.name, source.display());
    for w in &file.manifest.warnings {
        eprintln!("warning: {}: {w}", file.name);
    }
    Ok(Some(file))
}

/// What `dropship build` runs with: flags, else the manifest, else the defaults.
pub struct BuildSettings {
    pub name: Option<String>,
    pub buildpacks: Vec<String>,
    pub env: Vec<(String, String)>,
    pub instances: u32,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub health_check: HealthCheck,
    pub command: Option<String>,
    pub timeout: Option<u32>,
}

/// The flags of `dropship build` that a manifest may also set; `None`/empty: not given.
pub struct BuildFlags<'a> {
    pub name: Option<&'a str>,
    pub buildpacks: &'a [String],
    pub env: Vec<(String, String)>,
    pub instances: Option<u32>,
    pub memory_mb: Option<u64>,
    pub disk_mb: Option<u64>,
    pub health_check: Option<HealthCheck>,
    pub command: Option<&'a str>,
}

const DEFAULT_MB: u64 = 1024;

/// Flags over the manifest; `--env` replaces the manifest's variable of the same name.
pub fn build_settings(flags: BuildFlags<'_>, m: AppManifest) -> BuildSettings {
    let mut env: std::collections::BTreeMap<String, String> = m.env.into_iter().collect();
    env.extend(flags.env);
    BuildSettings {
        name: flags.name.map(str::to_string).or(m.name),
        buildpacks: if flags.buildpacks.is_empty() {
            m.buildpacks.unwrap_or_default()
        } else {
            flags.buildpacks.to_vec()
        },
        env: env.into_iter().collect(),
        instances: flags.instances.or(m.instances).unwrap_or(1),
        memory_mb: flags.memory_mb.or(m.memory_mb).unwrap_or(DEFAULT_MB),
        disk_mb: flags.disk_mb.or(m.disk_mb).unwrap_or(DEFAULT_MB),
        health_check: flags.health_check.or(m.health_check).unwrap_or_default(),
        command: flags.command.map(str::to_string).or(m.command),
        timeout: m.timeout_s,
    }
}

/// The web process's scale `dropship push` sets: `-i/-m/-k`, else the manifest's; `None`:
/// neither says (the server keeps what the app has).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub instances: Option<u32>,
    pub memory_mb: Option<u64>,
    pub disk_mb: Option<u64>,
}

impl Scale {
    /// Flags over the manifest, attribute by attribute.
    pub fn over(self, m: &AppManifest) -> Scale {
        self.or(Scale {
            instances: m.instances,
            memory_mb: m.memory_mb,
            disk_mb: m.disk_mb,
        })
    }

    /// This scale's settings, else `other`'s.
    pub fn or(self, other: Scale) -> Scale {
        Scale {
            instances: self.instances.or(other.instances),
            memory_mb: self.memory_mb.or(other.memory_mb),
            disk_mb: self.disk_mb.or(other.disk_mb),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> AppManifest {
        dropship::intake::manifest::parse(
            "applications: [{name: m, buildpacks: [binary], instances: 3, memory: 256M, \
             env: {A: from-manifest, B: b}, command: ./run, health-check-type: process}]",
        )
        .unwrap()
    }

    fn no_flags() -> BuildFlags<'static> {
        BuildFlags {
            name: None,
            buildpacks: &[],
            env: Vec::new(),
            instances: None,
            memory_mb: None,
            disk_mb: None,
            health_check: None,
            command: None,
        }
    }

    #[test]
    fn manifest_then_defaults() {
        let s = build_settings(no_flags(), manifest());
        assert_eq!(s.name.as_deref(), Some("m"));
        assert_eq!(s.buildpacks, ["binary"]);
        assert_eq!((s.instances, s.memory_mb, s.disk_mb), (3, 256, 1024));
        assert_eq!(s.health_check, HealthCheck::Process);
        assert_eq!(s.command.as_deref(), Some("./run"));
    }

    #[test]
    fn flags_win() {
        let bps = vec!["staticfile".to_string()];
        let flags = BuildFlags {
            name: Some("f"),
            buildpacks: &bps,
            env: vec![("A".into(), "from-flag".into())],
            instances: Some(1),
            memory_mb: Some(64),
            disk_mb: Some(128),
            health_check: Some(HealthCheck::Port),
            command: Some("./flag"),
        };
        let s = build_settings(flags, manifest());
        assert_eq!(s.name.as_deref(), Some("f"));
        assert_eq!(s.buildpacks, bps);
        assert_eq!(
            s.env,
            [
                ("A".to_string(), "from-flag".to_string()),
                ("B".to_string(), "b".to_string())
            ]
        );
        assert_eq!((s.instances, s.memory_mb, s.disk_mb), (1, 64, 128));
        assert_eq!(s.health_check, HealthCheck::Port);
        assert_eq!(s.command.as_deref(), Some("./flag"));
    }

    #[test]
    fn push_scale_flags_over_manifest() {
        let flags = Scale {
            memory_mb: Some(64),
            ..Scale::default()
        };
        let s = flags.over(&manifest());
        assert_eq!(
            (s.instances, s.memory_mb, s.disk_mb),
            (Some(3), Some(64), None)
        );
        assert_eq!(
            Scale::default().over(&AppManifest::default()),
            Scale::default()
        );
    }
}
