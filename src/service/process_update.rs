//! `PATCH /v3/processes/:guid` (and `/v3/apps/:guid/processes/:type`): the body as CF takes
//! it, `{"command": "..."|null, "health_check": {"type": "port"|"process"|"http", "data":
//! {"timeout": s, "invocation_timeout": s, "endpoint": "/path"}}}`, checked with CF's words
//! and turned into the process's new settings. `null` resets a setting (the command to the
//! droplet's); an endpoint needs the `http` type, and a type other than `http` drops it.

use super::error::{ApiError, ApiResult};
use super::process_state::Proc;
use crate::intake::manifest::MAX_TIMEOUT_S;
use crate::store::ProcessRow;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Longest command taken (CF's limit).
pub const MAX_COMMAND: usize = 4096;

/// Present-or-absent: an absent field is `None`, a `null` one `Some(Value::Null)`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ProcessUpdate {
    #[serde(default, deserialize_with = "present")]
    command: Option<Value>,
    health_check: Option<HealthCheckUpdate>,
    /// Accepted as clients send it; labels and annotations are not stored.
    #[allow(dead_code)]
    metadata: Option<Value>,
    /// Accepted; readiness checks follow the health check.
    #[allow(dead_code)]
    readiness_health_check: Option<Value>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct HealthCheckUpdate {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: HealthCheckData,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct HealthCheckData {
    #[serde(default, deserialize_with = "present")]
    timeout: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    invocation_timeout: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    endpoint: Option<Value>,
    /// Accepted; probe intervals are dropship's.
    #[allow(dead_code)]
    interval: Option<Value>,
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::unprocessable(detail)
}

/// A command: 1 to [`MAX_COMMAND`] bytes, no NUL; `null` resets it.
pub fn command(v: Value) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() || s.len() > MAX_COMMAND => Err(bad(format!(
            "Command must be between 1 and {MAX_COMMAND} characters"
        ))),
        Value::String(s) if s.contains('\0') => Err(bad("Command must not contain NUL")),
        Value::String(s) => Ok(Some(s)),
        _ => Err(bad("Command must be a string")),
    }
}

/// A timeout in seconds, 1 to [`MAX_TIMEOUT_S`]; `null` resets it.
pub fn seconds(v: Value, what: &str) -> ApiResult<Option<u32>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_i64() {
            Some(t) if t < 1 => Err(bad(format!("{what} must be greater than or equal to 1"))),
            Some(t) if t > i64::from(MAX_TIMEOUT_S) => Err(bad(format!(
                "{what} must be less than or equal to {MAX_TIMEOUT_S}"
            ))),
            Some(t) => Ok(Some(t as u32)),
            None => Err(bad(format!("{what} must be an integer"))),
        },
        _ => Err(bad(format!("{what} must be an integer"))),
    }
}

/// A health check type as CF names them.
pub fn check_type(t: &str) -> ApiResult<&'static str> {
    match t {
        "port" => Ok("port"),
        "process" | "none" => Ok("process"),
        "http" => Ok("http"),
        _ => Err(bad(
            "Health check type must be \"port\", \"process\", or \"http\"",
        )),
    }
}

/// The process's settings after `req`.
pub fn apply(req: ProcessUpdate, p: &Proc) -> ApiResult<ProcessRow> {
    let mut row = p.row.clone();
    if let Some(c) = req.command {
        row.command = command(c)?;
    }
    let Some(hc) = req.health_check else {
        return Ok(row);
    };
    let current = match &p.health_check {
        crate::k8s::HealthCheck::Port => "port",
        crate::k8s::HealthCheck::Process => "process",
        crate::k8s::HealthCheck::Http { .. } => "http",
    };
    let kind = match hc.kind.as_deref() {
        Some(t) => check_type(t)?,
        None => current,
    };
    row.health_check = Some(kind.to_string());
    if kind != "http" {
        row.endpoint = None;
    } else if let crate::k8s::HealthCheck::Http { endpoint } = &p.health_check {
        row.endpoint.get_or_insert_with(|| endpoint.clone());
    }
    if let Some(t) = hc.data.timeout {
        row.timeout_s = seconds(t, "Timeout")?;
    }
    if let Some(t) = hc.data.invocation_timeout {
        row.invocation_timeout_s = seconds(t, "Invocation timeout")?;
    }
    match hc.data.endpoint {
        None | Some(Value::Null) => {}
        Some(_) if kind != "http" => {
            return Err(bad(
                "Health check type must be \"http\" to set a health check HTTP endpoint",
            ))
        }
        Some(Value::String(e)) if crate::app::valid_endpoint(&e) => row.endpoint = Some(e),
        Some(_) => return Err(bad("Health check endpoint must be a valid URI path")),
    }
    Ok(row)
}
