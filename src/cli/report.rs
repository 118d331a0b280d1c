//! The CLI's reporter: buildpack output and stage lines on stderr; on a TTY, progress bars for
//! uploads; elsewhere (CI logs), a line when an upload starts, every few seconds while it runs,
//! and when it ends, so that a slow push never looks like a hang.

use dropship::report::{BlobOutcome, Event, Reporter};
use dropship::units::format_size;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `-q`: no progress lines at all (the result on stdout and errors are still printed).
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A progress line on stderr (`eprintln!` unless `-q`): output for people, not a diagnostic.
macro_rules! progress {
    ($($arg:tt)*) => {
        if !$crate::cli::report::quiet() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use progress;

pub struct CliReporter {
    tty: bool,
    bars: MultiProgress,
    state: Mutex<HashMap<String, Upload>>,
    /// Downloads in progress, by task.
    tasks: Mutex<HashMap<String, Task>>,
}

struct Task {
    bar: Option<ProgressBar>,
    last_line: Instant,
}

struct Upload {
    size: u64,
    bar: Option<ProgressBar>,
    last_line: Instant,
    started: Instant,
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// A size for people, as everywhere in dropship: `812 B`, `4.20 KiB`, `300.0 MiB`.
pub fn human(bytes: u64) -> String {
    dropship::units::format_size(bytes)
}

impl CliReporter {
    pub fn new() -> Self {
        CliReporter {
            tty: std::io::stderr().is_terminal(),
            bars: MultiProgress::new(),
            state: Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, size: u64, msg: String) -> ProgressBar {
        let b = self.bars.add(ProgressBar::new(size));
        b.set_style(
            ProgressStyle::with_template(
                "    {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.set_message(msg);
        b
    }

    /// A download's bar on a TTY; elsewhere a line every 5 seconds. Ends at `done == total`.
    fn progress(&self, task: String, done: u64, total: u64) {
        let mut tasks = self.tasks.lock().unwrap();
        if done >= total {
            if let Some(b) = tasks.remove(&task).and_then(|t| t.bar) {
                b.finish_and_clear();
            }
            return;
        }
        let t = tasks.entry(task.clone()).or_insert_with(|| Task {
            bar: self.tty.then(|| self.bar(total, task.clone())),
            last_line: Instant::now(),
        });
        if let Some(b) = &t.bar {
            b.set_position(done);
        } else if t.last_line.elapsed() >= Duration::from_secs(5) {
            t.last_line = Instant::now();
            eprintln!(
                "    {task}: {} of {}",
                format_size(done),
                format_size(total)
            );
        }
    }

    fn line(&self, s: &str) {
        if self.tty {
            let _ = self.bars.println(s);
        } else {
            eprintln!("{s}");
        }
    }
}

impl Reporter for CliReporter {
    fn event(&self, event: Event) {
        if quiet() {
            return;
        }
        match event {
            // Buildpack output as the buildpacks wrote it, as Cloud Foundry shows it.
            Event::Output(l) => self.line(&l),
            Event::Info(l) => self.line(&format!("==> {l}")),
            Event::Warn(l) => self.line(&format!("warning: {l}")),
            Event::Stage { stage, took } => {
                self.line(&format!("==> {stage}: {:.2}s", took.as_secs_f64()))
            }
            Event::BlobStart { digest, size } => {
                let bar = self.tty.then(|| self.bar(size, short(&digest).to_string()));
                if !self.tty {
                    self.line(&format!(
                        "    uploading {} ({})",
                        short(&digest),
                        human(size)
                    ));
                }
                let now = Instant::now();
                self.state.lock().unwrap().insert(
                    digest,
                    Upload {
                        size,
                        bar,
                        last_line: now,
                        started: now,
                    },
                );
            }
            Event::BlobProgress { digest, sent } => {
                let mut state = self.state.lock().unwrap();
                if let Some(u) = state.get_mut(&digest) {
                    if let Some(b) = &u.bar {
                        b.set_position(sent);
                    } else if u.last_line.elapsed() >= Duration::from_secs(5) {
                        u.last_line = Instant::now();
                        eprintln!(
                            "    uploading {}: {} of {}",
                            short(&digest),
                            human(sent),
                            human(u.size)
                        );
                    }
                }
            }
            Event::Progress { task, done, total } => self.progress(task, done, total),
            Event::BlobDone {
                digest,
                size,
                outcome,
            } => {
                let upload = self.state.lock().unwrap().remove(&digest);
                if let Some(b) = upload.as_ref().and_then(|u| u.bar.as_ref()) {
                    b.finish_and_clear();
                }
                let what = match outcome {
                    BlobOutcome::Exists => "already there".to_string(),
                    BlobOutcome::Mounted => "mounted".to_string(),
                    BlobOutcome::Uploaded => {
                        let secs = upload
                            .map(|u| u.started.elapsed().as_secs_f64())
                            .unwrap_or(0.0);
                        format!("uploaded in {secs:.1}s")
                    }
                };
                self.line(&format!("    {} {} {what}", short(&digest), human(size)));
            }
        }
    }
}
