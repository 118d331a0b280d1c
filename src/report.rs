//! What a build tells the outside world while it runs. The CLI prints it (stderr, progress
//! bars on a TTY); the service stores and streams it. Stages never print directly.

use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Already in the target: nothing sent.
    Exists,
    /// Mounted from another repository of the same registry: nothing sent.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// A stage of the build, as timed and reported (`--json` timings and metrics use its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Intake,
    Stack,
    Staging,
    Droplet,
    Image,
    Push,
    Manifests,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Intake,
        Stage::Stack,
        Stage::Staging,
        Stage::Droplet,
        Stage::Image,
        Stage::Push,
        Stage::Manifests,
    ];

    /// The name in reports and in the `--json` timings.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Intake => "intake",
            Stage::Stack => "stack",
            Stage::Staging => "staging",
            Stage::Droplet => "droplet",
            Stage::Image => "image",
            Stage::Push => "push",
            Stage::Manifests => "manifests",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    /// A line of buildpack output (stdout or stderr of a lifecycle script).
    Output(String),
    /// An informational line from dropship itself.
    Info(String),
    /// Something went wrong but the build goes on (e.g. a retried request).
    Warn(String),
    /// A pipeline stage finished.
    Stage { stage: Stage, took: Duration },
    /// A blob upload starts.
    BlobStart { digest: String, size: u64 },
    /// Bytes of a blob upload sent so far.
    BlobProgress { digest: String, sent: u64 },
    /// A long download: `done` of `total` bytes so far; `done == total` ends it. `task` names
    /// it (e.g. `pulling 3f1c0a9b2d4e`) and tells apart the ones running at once.
    Progress { task: String, done: u64, total: u64 },
    /// A blob is in the target.
    BlobDone {
        digest: String,
        size: u64,
        outcome: BlobOutcome,
    },
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
}

/// A reporter that drops everything (tests, embedding).
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: Event) {}
}

pub type SharedReporter = Arc<dyn Reporter>;

/// Convenience wrappers.
pub fn info(r: &dyn Reporter, msg: impl Into<String>) {
    r.event(Event::Info(msg.into()));
}

pub fn warn(r: &dyn Reporter, msg: impl Into<String>) {
    r.event(Event::Warn(msg.into()));
}

/// A long task's progress as [`Event::Progress`], at most once per MiB: a stack pull, an
/// unpack, the droplet's packing. `done` stays below `total` until the meter is finished or
/// dropped (which ends the task), so that an estimated total never ends the bar early.
pub struct Meter {
    reporter: SharedReporter,
    task: String,
    total: u64,
    done: u64,
    reported: u64,
}

impl Meter {
    pub fn new(reporter: SharedReporter, task: impl Into<String>, total: u64) -> Meter {
        Meter {
            reporter,
            task: task.into(),
            total: total.max(1),
            done: 0,
            reported: 0,
        }
    }

    /// `n` more bytes done.
    pub fn add(&mut self, n: u64) {
        self.set(self.done + n);
    }

    /// `done` bytes done so far.
    pub fn set(&mut self, done: u64) {
        self.done = done;
        if done.saturating_sub(self.reported) >= 1 << 20 {
            self.reported = done;
            self.send(done.min(self.total - 1));
        }
    }

    /// The task is over: ends the bar (as dropping the meter does).
    pub fn finish(self) {}

    fn send(&self, done: u64) {
        let (task, total) = (self.task.clone(), self.total.max(done));
        self.reporter.event(Event::Progress { task, done, total });
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.send(self.total.max(self.done));
    }
}

/// A reader that tells `progress` how many bytes it has read so far.
pub struct MeteredRead<R, F> {
    inner: R,
    read: u64,
    progress: F,
}

impl<R, F: FnMut(u64)> MeteredRead<R, F> {
    pub fn new(inner: R, progress: F) -> Self {
        MeteredRead {
            inner,
            read: 0,
            progress,
        }
    }
}

impl<R: std::io::Read, F: FnMut(u64)> std::io::Read for MeteredRead<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.progress)(self.read);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(u64, u64)>>);

    impl Reporter for Seen {
        fn event(&self, e: Event) {
            if let Event::Progress { done, total, .. } = e {
                self.0.lock().unwrap().push((done, total));
            }
        }
    }

    #[test]
    fn meter_reports_per_mib_and_ends_once_at_total() {
        let seen = Arc::new(Seen::default());
        let mut m = Meter::new(seen.clone(), "packing", 3 << 20);
        for _ in 0..8 {
            m.add(512 << 10);
        }
        m.finish();
        let events = seen.0.lock().unwrap().clone();
        // Four MiB steps, the last two held below the (underestimated) total, then the end.
        assert_eq!(
            events,
            vec![
                (1 << 20, 3 << 20),
                (2 << 20, 3 << 20),
                ((3 << 20) - 1, 3 << 20),
                ((3 << 20) - 1, 3 << 20),
                (4 << 20, 4 << 20)
            ]
        );
        let ends = events.iter().filter(|(d, t)| d >= t).count();
        assert_eq!(ends, 1, "only finish() ends the task");
    }

    #[test]
    fn metered_read_counts_what_was_read() {
        let mut last = 0;
        let mut r = MeteredRead::new(&b"hello world"[..], |n| last = n);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut r, &mut out).unwrap();
        assert_eq!(r.read, 11);
        assert_eq!((out.as_str(), last), ("hello world", 11));
    }
}
