//! A manifest application's `processes`: per process type, its `instances`, `memory`,
//! `disk_quota`, `command`, `health-check-type`, `health-check-http-endpoint`, `timeout` and
//! `health-check-invocation-timeout`, checked as the application's own attributes are. Other
//! attributes are named in one warning each; a type given twice is refused.

use super::{
    command, health_check, instances, invalid, key, megabytes, string, timeout, ManifestError,
};
use crate::app::HealthCheck;
use serde_norway::Value;

/// What a manifest says of one process type; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessManifest {
    pub kind: String,
    pub instances: Option<u32>,
    pub memory_mb: Option<u64>,
    pub disk_mb: Option<u64>,
    pub command: Option<String>,
    pub health_check: Option<HealthCheck>,
    pub timeout_s: Option<u32>,
    pub invocation_timeout_s: Option<u32>,
}

/// A process type: a Kubernetes label value (it names objects), as the droplet's types are.
fn process_type(v: &Value) -> Result<String, ManifestError> {
    let t = string("type", v)?;
    let ok = !t.is_empty()
        && t.len() <= 63
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && t.starts_with(|c: char| c.is_ascii_alphanumeric())
        && t.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        return Err(invalid(
            "processes.type",
            format!("{t:?}: 1 to 63 of [A-Za-z0-9-_.], starting and ending alphanumeric"),
        ));
    }
    Ok(t)
}

pub(super) fn processes(
    v: &Value,
    warnings: &mut Vec<String>,
) -> Result<Vec<ProcessManifest>, ManifestError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(s) => s,
        _ => return Err(invalid("processes", "expected a list")),
    };
    let mut out: Vec<ProcessManifest> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let within = format!("processes[{i}]");
        let Value::Mapping(map) = item else {
            return Err(invalid(&within, "expected a mapping"));
        };
        let mut p = ProcessManifest::default();
        let (mut hc_type, mut endpoint) = (None, None);
        for (k, v) in map {
            let attr = key(k, &within)?;
            match attr {
                "type" => p.kind = process_type(v)?,
                "instances" => p.instances = Some(instances(v)?),
                "memory" => p.memory_mb = Some(megabytes(attr, v)?),
                "disk_quota" | "disk-quota" => p.disk_mb = Some(megabytes(attr, v)?),
                "command" => p.command = command(v)?,
                "health-check-type" => hc_type = Some(string(attr, v)?),
                "health-check-http-endpoint" => endpoint = Some(string(attr, v)?),
                "timeout" => p.timeout_s = Some(timeout(v)?),
                "health-check-invocation-timeout" => p.invocation_timeout_s = Some(timeout(v)?),
                other => warnings.push(format!("{within}.{other}: ignored, not supported")),
            }
        }
        if p.kind.is_empty() {
            return Err(invalid(&within, "a process needs a type"));
        }
        if out.iter().any(|o| o.kind == p.kind) {
            return Err(invalid(
                "processes",
                format!("process type {:?} is given twice", p.kind),
            ));
        }
        p.health_check = health_check(hc_type, endpoint, warnings)?;
        out.push(p);
    }
    Ok(out)
}
