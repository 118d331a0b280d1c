//! Staging logs: each build's output is written as it happens, at most `limits.max_log`
//! bytes of it (then one marker line; the build goes on), to a file on the replica staging it
//! and, in chunks, to the database (`log_ship.rs`), where every replica reads it:
//! `GET /v3/builds/:guid/logs` is `log_tail.rs`. NUL bytes are written as U+FFFD (a log is
//! text, and PostgreSQL's TEXT has no NUL).
//!
//! Beside each log file, `<guid>.stamps` holds one text record per line, `OFFSET NANOS STREAM`
//! (the line's byte offset in the log, when it was written, `O` for output and service lines,
//! `E` for warnings); the chunks in the database carry the same times. The log cache
//! (`log_cache.rs`) reads the lines with their times from them. Logs written before the stamps
//! existed have none and give no envelopes.

use super::log_cache::{now_ns, stamps_path, Stream};
pub use super::log_ship::Shipper;
use super::Shared;
use crate::report::{BlobOutcome, Event, Reporter};
use crate::store::BuildState;
use std::borrow::Cow;
use std::io::Write;
use std::sync::Mutex;

/// The last line of every log (for people reading it; followers do not look for it).
pub const END: &str = "==> end of staging log: ";

/// A build's log file, written line by line (each line flushed, so followers see it at once).
/// Buildpack output counts against the cap; the service's own lines (stages, the end) do not.
pub struct BuildLog {
    inner: Mutex<Inner>,
    cap: u64,
    /// The copy in the database (none in unit tests of the file alone).
    ship: Option<Shipper>,
}

struct Inner {
    file: std::fs::File,
    /// The stamps beside the log (`None` if it could not be opened: lines are still logged).
    stamps: Option<std::fs::File>,
    /// The log's length: where the next line starts.
    offset: u64,
    /// The last line's time: each line is later than the one before (clients of the log
    /// cache ask for what follows a time).
    last_ns: u64,
    /// Bytes of buildpack output written so far.
    output: u64,
    /// Past the cap (the marker is written): buildpack output is dropped.
    truncated: bool,
}

/// `33554432` -> `32 MiB`.
fn mib(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

impl BuildLog {
    /// Build `guid`'s log on this replica: its file (appended to, after a restart) and its
    /// chunks in the database (appended to, whichever replica staged before).
    pub fn open(state: &Shared, guid: &str) -> std::io::Result<BuildLog> {
        let ship = Shipper::start(state.db.clone(), guid, state.logs_flushed.clone());
        BuildLog::create(
            &state.paths.build_log(guid),
            state.config.max_log,
            Some(ship),
        )
    }

    pub fn create(
        path: &std::path::Path,
        cap: u64,
        ship: Option<Shipper>,
    ) -> std::io::Result<BuildLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let offset = file.metadata()?.len();
        let stamps = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stamps_path(path))
            .ok();
        Ok(BuildLog {
            inner: Mutex::new(Inner {
                file,
                stamps,
                offset,
                last_ns: 0,
                output: 0,
                truncated: false,
            }),
            cap,
            ship,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, inner: &mut Inner, text: &str, stream: Stream) {
        let text = match text.contains('\0') {
            true => Cow::Owned(text.replace('\0', "\u{fffd}")),
            false => Cow::Borrowed(text),
        };
        let ns = inner.write(&text, stream);
        if let Some(ship) = &self.ship {
            ship.push(&text, ns, stream);
        }
    }

    /// A line of the service's own.
    pub fn line(&self, text: &str) {
        self.write(&mut self.lock(), text, Stream::Out);
    }

    /// A warning of the service's own (the log cache's `ERR` stream).
    fn warning(&self, text: &str) {
        self.write(&mut self.lock(), text, Stream::Err);
    }

    /// A line of buildpack output: dropped past the cap, where one marker line says so. Waits
    /// while much of the log is not in the database yet (called on the staging thread).
    pub fn output(&self, text: &str) {
        if let Some(ship) = &self.ship {
            ship.wait_for_room();
        }
        let mut inner = self.lock();
        if inner.truncated {
            return;
        }
        let len = text.len() as u64 + 1;
        if inner.output + len > self.cap {
            inner.truncated = true;
            let marker = format!(
                "==> log truncated at {}: further output dropped",
                mib(self.cap)
            );
            self.write(&mut inner, &marker, Stream::Out);
            return;
        }
        inner.output += len;
        self.write(&mut inner, text, Stream::Out);
    }

    /// Writes the last line, syncs the file and ships the rest to the database. Call (and
    /// await) before the build's final state is recorded: followers stop once they see that
    /// state and have read the log to its end.
    pub async fn finish(&self, state: BuildState) {
        self.line(&format!("{END}{state}"));
        {
            let inner = self.lock();
            let _ = inner.file.sync_all();
            if let Some(stamps) = &inner.stamps {
                let _ = stamps.sync_all();
            }
        }
        // TODO(blobs): with `state.blobs`, the finished log could go to the blob store here
        // (one object, `blob::Key::build_log`) and its chunks be deleted. Until then the
        // chunks are the finished log, bounded by max_log per attempt like the file.
        if let Some(ship) = &self.ship {
            ship.close().await;
        }
    }
}

impl Inner {
    /// One line and its stamp in the file; the line's time. A full disk loses log lines
    /// (in the file), never the build.
    fn write(&mut self, text: &str, stream: Stream) -> u64 {
        let start = self.offset;
        self.last_ns = now_ns().max(self.last_ns + 1);
        if writeln!(self.file, "{text}").is_err() {
            return self.last_ns;
        }
        self.offset += text.len() as u64 + 1;
        if let Some(stamps) = &mut self.stamps {
            let _ = writeln!(stamps, "{start} {} {}", self.last_ns, stream.letter());
        }
        self.last_ns
    }
}

impl Reporter for BuildLog {
    fn event(&self, event: Event) {
        match event {
            Event::Output(l) => self.output(&l),
            Event::Info(l) => self.line(&format!("==> {l}")),
            Event::Warn(l) => self.warning(&format!("warning: {l}")),
            Event::Stage { stage, took } => {
                self.line(&format!("==> {stage}: {:.2}s", took.as_secs_f64()))
            }
            Event::BlobStart { digest, size } => self.line(&format!(
                "    uploading {digest} ({})",
                crate::units::format_size(size)
            )),
            Event::BlobProgress { .. } | Event::Progress { .. } => {}
            Event::BlobDone {
                digest, outcome, ..
            } => {
                let what = match outcome {
                    BlobOutcome::Exists => "already there",
                    BlobOutcome::Mounted => "mounted",
                    BlobOutcome::Uploaded => "uploaded",
                };
                self.line(&format!("    {digest} {what}"));
            }
        }
    }
}
