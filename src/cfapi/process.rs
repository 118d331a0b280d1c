//! Processes (`/v3/processes`): one per process type of an app's current droplet, their
//! instances' stats, and the scale request.

use super::app::AppRelationships;
use super::common::{Link, Metadata, OptionalRelationship};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub guid: String,
    /// `web`, `worker`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub command: Option<String>,
    pub instances: u32,
    pub memory_in_mb: u32,
    pub disk_in_mb: u32,
    /// -1: unlimited.
    pub log_rate_limit_in_bytes_per_second: i64,
    pub health_check: HealthCheck,
    pub relationships: ProcessRelationships,
    pub metadata: Metadata,
    pub created_at: String,
    pub updated_at: String,
    pub links: ProcessLinks,
}

/// `{"type": "port", "data": {"timeout": null, "invocation_timeout": null}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// `port`, `process` or `http`.
    #[serde(rename = "type")]
    pub kind: String,
    pub data: HealthCheckData,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckData {
    #[serde(default)]
    pub timeout: Option<u32>,
    #[serde(default)]
    pub invocation_timeout: Option<u32>,
    /// The HTTP health check's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRelationships {
    pub app: super::common::Relationship,
    /// Revisions are not kept: null.
    pub revision: Option<OptionalRelationship>,
}

impl From<ProcessRelationships> for AppRelationships {
    fn from(r: ProcessRelationships) -> AppRelationships {
        AppRelationships { app: r.app }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessLinks {
    #[serde(rename = "self")]
    pub this: Link,
    pub stats: Link,
    /// POST.
    pub scale: Link,
    pub app: Link,
}

/// `POST /v3/processes/:guid/actions/scale` (and under an app): what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_in_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_in_mb: Option<i64>,
    /// Accepted for the cf CLI; dropship does not limit log rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rate_limit_in_bytes_per_second: Option<i64>,
}

/// `GET /v3/processes/:guid/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStats {
    pub resources: Vec<InstanceStats>,
}

/// An instance's state, as CF names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceState {
    Running,
    Crashed,
    Starting,
    Stopping,
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStats {
    #[serde(rename = "type")]
    pub kind: String,
    pub index: u32,
    pub state: InstanceState,
    /// Measured use (empty: dropship does not watch the cluster).
    pub usage: Usage,
    pub host: Option<String>,
    pub instance_ports: Vec<serde_json::Value>,
    pub uptime: u64,
    pub mem_quota: Option<u64>,
    pub disk_quota: Option<u64>,
    pub fds_quota: Option<u64>,
    pub isolation_segment: Option<String>,
    pub details: Option<String>,
}

/// An instance's measured use; every figure absent when nothing was measured (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
}
