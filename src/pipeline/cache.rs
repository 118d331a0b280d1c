//! The buildpack cache policy: a saved cache restored into the workspace before staging (or
//! deleted for `--no-cache`), saved back after a successful staging unless it is too big.
//! Blocking: called inside the staging stage's blocking work.

use super::error::{other, BuildError};
use crate::report::{info, warn, Reporter};
use crate::staging::cache;
use crate::staging::workspace::Workspace;
use crate::units::format_size;
use std::path::PathBuf;

/// Where the buildpack cache (`/tmp/cache`) is kept between builds, and how; and how large the
/// layer cache (compressed droplet layers, in the stack cache dir) may grow.
#[derive(Debug, Clone)]
pub struct CachePolicy {
    /// `None`: a fresh cache per build, never saved.
    pub dir: Option<PathBuf>,
    /// Start from an empty cache (the saved one is deleted), and no layer cache either.
    pub fresh: bool,
    /// A cache larger than this after a build is not kept.
    pub max: u64,
    /// The layer cache's size: least recently used layers go beyond it.
    pub layer_max: u64,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            dir: None,
            fresh: false,
            max: 0,
            layer_max: crate::droplet::cache::DEFAULT_MAX,
        }
    }
}

impl CachePolicy {
    /// Restores the saved cache into the workspace (or deletes it when `fresh`).
    pub fn restore(&self, ws: &Workspace, reporter: &dyn Reporter) -> Result<(), BuildError> {
        let Some(saved) = &self.dir else {
            return Ok(());
        };
        if self.fresh && saved.exists() {
            std::fs::remove_dir_all(saved).map_err(other("deleting the buildpack cache"))?;
            info(reporter, "no cache: deleted the buildpack cache");
        }
        match cache::restore(saved, &ws.dirs.cache) {
            Ok(c) => {
                dropped(reporter, &c.dropped_links, "restored");
                if c.bytes > 0 {
                    let size = format_size(c.bytes);
                    let msg = format!(
                        "restored the buildpack cache ({size}) from {}",
                        saved.display()
                    );
                    info(reporter, msg);
                }
            }
            Err(e) => {
                let msg = format!("dropping the buildpack cache {}: {e}", saved.display());
                warn(reporter, msg);
                let _ = std::fs::remove_dir_all(&ws.dirs.cache);
                std::fs::create_dir_all(&ws.dirs.cache).map_err(other("creating the cache dir"))?;
            }
        }
        Ok(())
    }

    /// Saves the workspace's cache after a successful staging, unless it is over `max`.
    pub fn keep(&self, ws: &Workspace, reporter: &dyn Reporter) {
        let Some(saved) = &self.dir else {
            return;
        };
        let size = cache::size(&ws.dirs.cache);
        if size > self.max {
            let (size, max) = (format_size(size), format_size(self.max));
            let msg =
                format!("the buildpack cache ({size}) is larger than the limit ({max}): not kept");
            warn(reporter, msg);
            let _ = std::fs::remove_dir_all(saved);
            return;
        }
        match cache::save(&ws.dirs.cache, saved) {
            Ok(c) => {
                dropped(reporter, &c.dropped_links, "kept");
                let size = format_size(c.bytes);
                info(
                    reporter,
                    format!("saved the buildpack cache ({size}) to {}", saved.display()),
                );
            }
            Err(e) => warn(
                reporter,
                format!(
                    "could not save the buildpack cache to {}: {e}",
                    saved.display()
                ),
            ),
        }
    }
}

/// Warns of each link out of the cache that was left behind.
fn dropped(reporter: &dyn Reporter, links: &[PathBuf], what: &str) {
    for link in links {
        let msg = format!(
            "buildpack cache: {} points outside the cache: not {what}",
            link.display()
        );
        warn(reporter, msg);
    }
}
