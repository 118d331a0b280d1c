//! Jobs (`/v3/jobs/:guid`): the work of an asynchronous request (an app's deletion).

use super::common::{CfError, Link};
use super::JobState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub guid: String,
    /// `app.delete`, ...
    pub operation: String,
    pub state: JobState,
    pub errors: Vec<CfError>,
    pub warnings: Vec<Warning>,
    /// What a finished job reports (dropship's: a stack refresh's apps), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
    pub links: JobLinks,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLinks {
    #[serde(rename = "self")]
    pub this: Link,
}
