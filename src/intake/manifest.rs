//! The Cloud Foundry app manifest (`manifest.yml`): the settings of its first application,
//! parsed from untrusted text into checked values, with one warning line per attribute that
//! dropship does not apply (nothing is dropped without a word). Pure: `manifest_file.rs`
//! reads the text from an app source.
//!
//! Applied: `name`, `buildpacks` (legacy `buildpack`), `stack`, `env`, `instances`, `memory`,
//! `disk_quota`, `command`, `health-check-type` (`none` = `process`),
//! `health-check-http-endpoint`, `timeout`, `processes` (`manifest_processes.rs`); top-level
//! `version` (must be 1).

use crate::app::HealthCheck;
use serde_norway::Value;

#[path = "manifest_processes.rs"]
mod processes;
pub use processes::ProcessManifest;

/// Largest manifest read.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The names looked for at the app root, in this order (as the cf CLI does).
pub const FILE_NAMES: [&str; 2] = ["manifest.yml", "manifest.yaml"];
/// Longest health check timeout accepted, in seconds (Cloud Controller's default maximum is
/// 180; operators raise it, so some room above).
pub const MAX_TIMEOUT_S: u32 = 600;

/// What the first application of a manifest asks for; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppManifest {
    pub name: Option<String>,
    /// Buildpack names in order; `Some(empty)` when it asks for detection (`default`).
    pub buildpacks: Option<Vec<String>>,
    pub stack: Option<String>,
    /// Sorted by name.
    pub env: Vec<(String, String)>,
    pub instances: Option<u32>,
    pub memory_mb: Option<u64>,
    pub disk_mb: Option<u64>,
    /// The web process's start command, in place of the buildpack's.
    pub command: Option<String>,
    pub health_check: Option<HealthCheck>,
    /// How long an instance may take to start, in seconds.
    pub timeout_s: Option<u32>,
    /// The app's directory or zip, relative to the manifest's directory (`dropship push` of
    /// several apps); `dropship build` builds its SOURCE.
    pub path: Option<String>,
    /// The `processes` section: settings per process type, in order.
    pub processes: Vec<ProcessManifest>,
    /// One line per attribute that is not applied, `attribute: why`.
    pub warnings: Vec<String>,
}

impl AppManifest {
    /// The application's own attributes, as the `web` process's settings.
    pub fn web_process(&self) -> ProcessManifest {
        ProcessManifest {
            kind: "web".into(),
            instances: self.instances,
            memory_mb: self.memory_mb,
            disk_mb: self.disk_mb,
            command: self.command.clone(),
            health_check: self.health_check.clone(),
            timeout_s: self.timeout_s,
            invocation_timeout_s: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Refused(String),
    /// The zip holding the manifest is refused as an app (the intake would refuse it too).
    #[error("intake: {0}")]
    Zip(String),
}

fn invalid(field: &str, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Parses a manifest's text: its first application (a warning names the others, which
/// `dropship build` does not build); see the module docs for what is applied.
pub fn parse(text: &str) -> Result<AppManifest, ManifestError> {
    let mut apps = parse_all(text)?.into_iter();
    let mut first = apps.next().unwrap_or_default();
    let rest: Vec<String> = apps.map(|a| app_name_of(&a)).collect();
    if !rest.is_empty() {
        first.warnings.push(format!(
            "applications: only the first is built; {} more ignored ({})",
            rest.len(),
            rest.join(", ")
        ));
    }
    Ok(first)
}

/// Every application of a manifest, in order (at least one: an empty manifest gives one that
/// says nothing, with a warning); the manifest's own warnings go with the first.
pub fn parse_all(text: &str) -> Result<Vec<AppManifest>, ManifestError> {
    let doc: Value =
        serde_norway::from_str(text).map_err(|e| ManifestError::Yaml(e.to_string()))?;
    let mut m = AppManifest::default();
    let top = match doc {
        Value::Mapping(top) => top,
        Value::Null => {
            m.warnings
                .push("the manifest is empty: nothing applied".into());
            return Ok(vec![m]);
        }
        _ => {
            return Err(invalid(
                "manifest",
                "expected a mapping with `applications`",
            ))
        }
    };
    let mut apps = None;
    for (k, v) in top {
        match key(&k, "manifest")? {
            "applications" => apps = Some(v),
            "version" => version(&v)?,
            other => m.warnings.push(format!(
                "{other}: ignored, not supported: only `applications` and `version` are read at the top level"
            )),
        }
    }
    let apps = match apps {
        Some(Value::Sequence(s)) => s,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(invalid("applications", "expected a list")),
    };
    let mut apps = apps.into_iter();
    let Some(first) = apps.next() else {
        m.warnings
            .push("applications: none listed: nothing applied".into());
        return Ok(vec![m]);
    };
    parse_app(first, &mut m, 0)?;
    let mut all = vec![m];
    for (i, app) in (1..).zip(apps) {
        let mut m = AppManifest::default();
        parse_app(app, &mut m, i)?;
        all.push(m);
    }
    Ok(all)
}

fn version(v: &Value) -> Result<(), ManifestError> {
    match v {
        Value::Number(n) if n.as_u64() == Some(1) => Ok(()),
        Value::String(s) if s.trim() == "1" => Ok(()),
        _ => Err(invalid("version", "only version 1 exists")),
    }
}

fn app_name_of(app: &AppManifest) -> String {
    match &app.name {
        Some(s) => format!("{s:?}"),
        None => "unnamed".to_string(),
    }
}

fn key<'a>(k: &'a Value, within: &str) -> Result<&'a str, ManifestError> {
    k.as_str()
        .ok_or_else(|| invalid(within, "attribute names must be strings"))
}

/// Attributes a Cloud Foundry manifest may hold that dropship does not apply, and why.
fn unsupported(attr: &str) -> Option<&'static str> {
    Some(match attr {
        "routes" | "route" | "random-route" | "no-route" | "default-route" | "host" | "hosts"
        | "domain" | "domains" | "no-hostname" => {
            "no routes are made; the web process gets a ClusterIP Service, expose it with an Ingress or Gateway"
        }
        "services" => "no service bindings are made, VCAP_SERVICES stays {}",
        "sidecars" => "sidecars are not run",
        "docker" => "docker images are not staged",
        "metadata" => "labels and annotations are not applied",
        "log-rate-limit-per-second" | "log-rate-limit" => "log rate limits are not applied",
        "readiness-health-check-type" | "readiness-health-check-http-endpoint"
        | "readiness-health-check-invocation-timeout" | "readiness-health-check-interval" => {
            "readiness checks follow health-check-type"
        }
        "health-check-invocation-timeout" | "health-check-interval" => {
            "probe timings are dropship's"
        }
        "lifecycle" => "the lifecycle is always buildpack",
        _ => return None,
    })
}

fn parse_app(app: Value, m: &mut AppManifest, index: usize) -> Result<(), ManifestError> {
    let within = format!("applications[{index}]");
    let Value::Mapping(app) = app else {
        return Err(invalid(&within, "expected a mapping"));
    };
    let (mut hc_type, mut endpoint) = (None, None);
    for (k, v) in &app {
        let attr = key(k, &within)?;
        if let Some(why) = unsupported(attr) {
            m.warnings
                .push(format!("{attr}: ignored, not supported: {why}"));
            continue;
        }
        if has_vars(v) {
            m.warnings.push(format!(
                "{attr}: ((variables)) are not interpolated, dropship has no --vars: used as written"
            ));
        }
        match attr {
            "name" => m.name = Some(name(v)?),
            "buildpacks" | "buildpack" => {
                if m.buildpacks.is_some() {
                    return Err(invalid(
                        attr,
                        "give either buildpacks or buildpack, not both",
                    ));
                }
                m.buildpacks = Some(buildpacks(attr, v)?);
            }
            "stack" => m.stack = Some(string(attr, v)?),
            "env" => m.env = env(v)?,
            "instances" => m.instances = Some(instances(v)?),
            "memory" => m.memory_mb = Some(megabytes(attr, v)?),
            "disk_quota" | "disk-quota" => m.disk_mb = Some(megabytes(attr, v)?),
            "command" => m.command = command(v)?,
            "health-check-type" => hc_type = Some(string(attr, v)?),
            "health-check-http-endpoint" => endpoint = Some(string(attr, v)?),
            "timeout" => m.timeout_s = Some(timeout(v)?),
            "path" => m.path = Some(string(attr, v)?),
            "processes" => m.processes = processes::processes(v, &mut m.warnings)?,
            other => m
                .warnings
                .push(format!("{other}: ignored, not supported by dropship")),
        }
    }
    m.health_check = health_check(hc_type, endpoint, &mut m.warnings)?;
    Ok(())
}

/// Whether a string anywhere in `v` holds a `((variable))`.
fn has_vars(v: &Value) -> bool {
    match v {
        Value::String(s) => s.find("((").is_some_and(|i| s[i..].contains("))")),
        Value::Sequence(s) => s.iter().any(has_vars),
        Value::Mapping(m) => m.iter().any(|(k, v)| has_vars(k) || has_vars(v)),
        _ => false,
    }
}

fn string(attr: &str, v: &Value) -> Result<String, ManifestError> {
    match v {
        Value::String(s) if !s.contains('\0') => Ok(s.clone()),
        Value::String(_) => Err(invalid(attr, "contains a NUL byte")),
        _ => Err(invalid(attr, "expected a string")),
    }
}

fn name(v: &Value) -> Result<String, ManifestError> {
    let n = string("name", v)?.trim().to_string();
    if n.is_empty() || n.len() > 255 || n.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            "must be 1 to 255 characters, none of them control characters",
        ));
    }
    Ok(n)
}

/// Names of buildpacks in the buildpacks directory; `default`/`null` mean detection.
fn buildpacks(attr: &str, v: &Value) -> Result<Vec<String>, ManifestError> {
    let items: Vec<&Value> = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(s) => s.iter().collect(),
        Value::String(_) if attr == "buildpack" => vec![v],
        _ => return Err(invalid(attr, "expected a list of buildpack names")),
    };
    let mut out = Vec::new();
    for item in items {
        let b = string(attr, item)?.trim().to_string();
        if matches!(b.as_str(), "default" | "null" | "") {
            continue;
        }
        let is_name = !b.contains('/') && !b.starts_with('.') && b.len() <= 255;
        if !is_name {
            return Err(invalid(
                attr,
                format!("{b:?}: only names of buildpacks in the buildpacks directory are taken from a manifest (no paths or URLs)"),
            ));
        }
        out.push(b);
    }
    Ok(out)
}

/// Strings, numbers and booleans (as text), names and values as staging accepts them.
fn env(v: &Value) -> Result<Vec<(String, String)>, ManifestError> {
    let map = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        _ => return Err(invalid("env", "expected a mapping of NAME: value")),
    };
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in map {
        let k = key(k, "env")?;
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(invalid(
                    &format!("env.{k}"),
                    "only strings, numbers and booleans",
                ))
            }
        };
        crate::staging::env::check_user_var(k, &value).map_err(|e| invalid("env", e))?;
        out.insert(k.to_string(), value);
    }
    Ok(out.into_iter().collect())
}

fn instances(v: &Value) -> Result<u32, ManifestError> {
    v.as_u64()
        .filter(|n| *n <= i32::MAX as u64)
        .map(|n| n as u32)
        .ok_or_else(|| invalid("instances", "expected a whole number of instances"))
}

/// `512M`, `1G`, `1Gi` (`dropship::units`; as the cf CLI, a number needs a unit), at least 1M.
fn megabytes(attr: &str, v: &Value) -> Result<u64, ManifestError> {
    let text = match v {
        Value::String(s) if s.trim().chars().all(|c| c.is_ascii_digit()) => {
            return Err(invalid(attr, "a size needs a unit, like 1024M or 1G"))
        }
        Value::String(s) => s.clone(),
        Value::Number(_) => return Err(invalid(attr, "a size needs a unit, like 1024M or 1G")),
        _ => return Err(invalid(attr, "expected a size like 512M or 1G")),
    };
    let mb = crate::units::parse_size(&text).map_err(|e| invalid(attr, e))? >> 20;
    if mb == 0 {
        return Err(invalid(attr, "must be at least 1M"));
    }
    Ok(mb)
}

/// The start command; `null`, empty or `default` mean the buildpack's (as in Cloud Foundry).
fn command(v: &Value) -> Result<Option<String>, ManifestError> {
    if v.is_null() {
        return Ok(None);
    }
    let c = string("command", v)?;
    Ok(match c.trim() {
        "" | "null" | "default" => None,
        _ => Some(c),
    })
}

fn timeout(v: &Value) -> Result<u32, ManifestError> {
    v.as_u64()
        .filter(|n| (1..=MAX_TIMEOUT_S as u64).contains(n))
        .map(|n| n as u32)
        .ok_or_else(|| {
            invalid(
                "timeout",
                format!("expected seconds from 1 to {MAX_TIMEOUT_S}"),
            )
        })
}

fn health_check(
    kind: Option<String>,
    endpoint: Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<HealthCheck>, ManifestError> {
    let hc = match kind.as_deref().map(str::trim) {
        None => None,
        Some("http") => {
            let e = endpoint.clone().unwrap_or_else(|| "/".to_string());
            Some(
                format!("http:{e}")
                    .parse()
                    .map_err(|e: crate::app::HealthCheckError| {
                        invalid("health-check-http-endpoint", e.to_string())
                    })?,
            )
        }
        Some(t @ ("port" | "process" | "none")) => Some(t.parse().expect("known kind")),
        Some(t) => {
            return Err(invalid(
                "health-check-type",
                format!("{t:?}: expected port, http or process"),
            ))
        }
    };
    if endpoint.is_some() && !matches!(hc, Some(HealthCheck::Http { .. })) {
        warnings.push(
            "health-check-http-endpoint: ignored, used only with health-check-type http".into(),
        );
    }
    Ok(hc)
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
