//! Budgets for untrusted input: how many entries, how many bytes, how much expansion.
//!
//! They are enforced while writing, from what is actually produced, never from what
//! headers claim: `Budget` is charged before every entry and every chunk is written.

use super::IntakeError;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Past this many decompressed bytes the zip ratio limit applies; below it any ratio is
/// fine (tiny zips of text compress well and are harmless).
pub const RATIO_FLOOR: u64 = 16 * 1024 * 1024;

/// Limits on what one app source may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries (files, directories and symlinks together). `--max-app-files`.
    pub max_files: u64,
    /// Most bytes of file content, uncompressed, in total. `--max-app-size`.
    pub max_bytes: u64,
    /// Most bytes written per byte of zip file, once past [`RATIO_FLOOR`]. `--max-zip-ratio`.
    pub max_ratio: u64,
}

impl Default for Limits {
    /// 100 000 entries, 4 GiB, ratio 200.
    fn default() -> Self {
        Limits {
            max_files: 100_000,
            max_bytes: 4 << 30,
            max_ratio: 200,
        }
    }
}

/// The running totals for one intake, failing as soon as a limit is crossed. Shared by the
/// extraction workers: the totals are atomics, charged once per entry and once per chunk.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: Limits,
    input: String,
    /// Size of the zip file, when the input is a zip (enables the ratio check).
    zip_size: Option<u64>,
    entries: AtomicU64,
    bytes: AtomicU64,
}

impl Budget {
    pub(crate) fn new(limits: &Limits, input: &Path, zip_size: Option<u64>) -> Self {
        Budget {
            limits: *limits,
            input: input.display().to_string(),
            zip_size,
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Charges one entry.
    pub(crate) fn entry(&self) -> Result<(), IntakeError> {
        let entries = self.entries.fetch_add(1, Relaxed).saturating_add(1);
        if entries > self.limits.max_files {
            return Err(IntakeError::TooManyFiles {
                path: self.input.clone(),
                limit: self.limits.max_files,
            });
        }
        Ok(())
    }

    /// Charges `n` bytes of content, before they are written. Once a charge fails every later
    /// one fails too (the total only grows), so concurrent writers all stop.
    pub(crate) fn bytes(&self, n: u64) -> Result<(), IntakeError> {
        let add = |b: u64| Some(b.saturating_add(n));
        let before = (self.bytes.fetch_update(Relaxed, Relaxed, add)).unwrap_or_else(|b| b);
        let bytes = before.saturating_add(n);
        if bytes > self.limits.max_bytes {
            return Err(IntakeError::TooLarge {
                path: self.input.clone(),
                limit: self.limits.max_bytes,
            });
        }
        if let Some(zip_size) = self.zip_size {
            if bytes > RATIO_FLOOR && bytes > self.limits.max_ratio.saturating_mul(zip_size) {
                return Err(IntakeError::Ratio {
                    path: self.input.clone(),
                    limit: self.limits.max_ratio,
                    zip_size,
                    bytes,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_files: u64, max_bytes: u64, max_ratio: u64) -> Limits {
        Limits {
            max_files,
            max_bytes,
            max_ratio,
        }
    }

    #[test]
    fn entries_fail_past_the_limit_only() {
        let b = Budget::new(&limits(2, 100, 1), Path::new("app"), None);
        b.entry().unwrap();
        b.entry().unwrap();
        let e = b.entry().unwrap_err().to_string();
        assert_eq!(
            e,
            "app: more than 2 entries (limit --max-app-files / DROPSHIP_MAX_APP_FILES)"
        );
    }

    #[test]
    fn bytes_fail_past_the_limit_only() {
        let b = Budget::new(&limits(9, 100, 1), Path::new("app"), None);
        b.bytes(60).unwrap();
        b.bytes(40).unwrap();
        let e = b.bytes(1).unwrap_err().to_string();
        assert!(e.contains("more than 100 bytes"), "{e}");
        assert!(e.contains("--max-app-size / DROPSHIP_MAX_APP_SIZE"), "{e}");
    }

    #[test]
    fn ratio_applies_only_past_the_floor_and_only_to_zips() {
        let big = limits(9, u64::MAX, 2);
        let dir = Budget::new(&big, Path::new("app"), None);
        dir.bytes(RATIO_FLOOR * 4).unwrap();
        let zip = Budget::new(&big, Path::new("app.zip"), Some(1000));
        zip.bytes(RATIO_FLOOR).unwrap();
        let e = zip.bytes(1).unwrap_err().to_string();
        assert!(
            e.starts_with("app.zip: expands to more than 2 times"),
            "{e}"
        );
        assert!(
            e.contains("--max-zip-ratio / DROPSHIP_MAX_ZIP_RATIO"),
            "{e}"
        );
        let honest = Budget::new(&big, Path::new("a.zip"), Some(RATIO_FLOOR));
        honest.bytes(RATIO_FLOOR * 2).unwrap();
        assert!(honest.bytes(1).is_err());
    }

    #[test]
    fn concurrent_charges_are_exact() {
        let b = Budget::new(&limits(u64::MAX, 5000, 1), Path::new("app"), None);
        let ok = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if b.bytes(1).is_ok() {
                            ok.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(ok.into_inner(), 5000, "exactly the limit was granted");
    }
}
