//! Resource matching (`POST /v3/resource_matches`) and the upload's `resources` field: files
//! named by SHA-1 and size, with their path and mode in the app.

use serde::{Deserialize, Serialize};

/// `{"resources": [...]}`: the files asked about, and in the answer those the server has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceMatches {
    pub resources: Vec<Resource>,
}

/// A file: `{"checksum": {"value": SHA1}, "size_in_bytes": N, "path": .., "mode": "644"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub checksum: Sha1,
    pub size_in_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Octal, as the cf CLI writes it (`"644"`, `"0755"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// A resource's checksum: its SHA-1 in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sha1 {
    pub value: String,
}
