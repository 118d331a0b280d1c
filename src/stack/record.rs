//! What `dropship stack list` shows: one JSON record per stack the cache has served, written
//! by [`super::Stack::open`] at `<cache>/stacks/<manifest hex>.json` (the blobs and unpacked
//! root filesystems beside it are named by digest only).

use super::{Stack, StackCache};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackRecord {
    /// CF_STACK.
    pub name: String,
    /// The manifest's digest.
    pub digest: String,
    /// The reference it was opened by (last use).
    pub reference: String,
    /// `os/arch`.
    pub platform: String,
    /// Compressed size: config and layers.
    pub size: u64,
    /// Whether its root filesystem is unpacked in the cache.
    #[serde(default)]
    pub unpacked: bool,
}

impl StackRecord {
    pub fn of(stack: &Stack) -> StackRecord {
        let size = stack.resolved.base.manifest.config().size() + stack.layers_size();
        StackRecord {
            name: stack.name.clone(),
            digest: stack.digest().to_string(),
            reference: stack.reference.to_string(),
            platform: stack.resolved.base.platform(),
            size,
            unpacked: false,
        }
    }
}

impl StackCache {
    fn records_dir(&self) -> PathBuf {
        self.dir.join("stacks")
    }

    /// Writes (atomically) the record of a stack just opened.
    pub fn record(&self, stack: &Stack) -> std::io::Result<()> {
        let dir = self.records_dir();
        std::fs::create_dir_all(&dir)?;
        let hex = stack.digest().trim_start_matches("sha256:");
        let json = serde_json::to_vec_pretty(&StackRecord::of(stack))?;
        let tmp = tempfile::NamedTempFile::new_in(&dir)?;
        std::fs::write(tmp.path(), json)?;
        tmp.persist(dir.join(format!("{hex}.json")))?;
        Ok(())
    }

    /// Every recorded stack, by name then digest; unreadable records are skipped.
    pub fn list(&self) -> std::io::Result<Vec<StackRecord>> {
        let entries = match std::fs::read_dir(self.records_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out: Vec<StackRecord> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<StackRecord>(&b).ok())
            .map(|mut r| {
                r.unpacked = self.rootfs_dir(&r.digest).is_dir();
                r
            })
            .collect();
        out.sort_by(|a, b| (&a.name, &a.digest).cmp(&(&b.name, &b.digest)));
        Ok(out)
    }
}
