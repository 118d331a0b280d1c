//! Running one lifecycle script: output streamed line by line as it comes, stdout optionally
//! captured (bounded), a deadline that kills the whole process group, limits watched while it
//! runs, and whatever it leaves running killed when it exits.

use super::limits::{Breach, Confinement};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest line forwarded as one piece; longer lines are split.
const MAX_LINE: usize = 16 * 1024;
/// Most stdout kept when capturing (detect's name, release's YAML).
const MAX_CAPTURE: usize = 1 << 20;

/// How long output may still come once the script itself has exited (and everything it
/// started was killed): only a process that escaped the kill can hold the pipes longer.
const GRACE: Duration = Duration::from_secs(2);
/// How often the limits are checked.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Set when the process was asked to stop (the CLI's SIGINT/SIGTERM): running scripts are
/// killed with everything they started, and no new one starts.
static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Stops every script this process runs, now and from now on.
pub fn cancel_all() {
    CANCELLED.store(true, Ordering::SeqCst);
}

thread_local! {
    /// The stop flag of the build whose scripts this thread runs (see [`stopping_on`]).
    static STOP: std::cell::RefCell<Option<Arc<AtomicBool>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with the scripts it runs on this thread stopped (killed with everything they
/// started, and no new one started) once `stop` is set: one build of many is stopped.
pub fn stopping_on<T>(stop: Arc<AtomicBool>, f: impl FnOnce() -> T) -> T {
    let before = STOP.with(|s| s.replace(Some(stop)));
    let out = f();
    STOP.with(|s| *s.borrow_mut() = before);
    out
}

fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
        || STOP.with(|s| {
            s.borrow()
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst))
        })
}

fn cancelled_error() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "the build was interrupted")
}

/// The limits a script runs within.
pub trait Watch {
    /// A limit went over: the script is killed.
    fn breach(&self) -> Option<Breach>;
    /// Kills every process the script started, wherever it went (a new session, a double
    /// fork): called as soon as the script exits.
    fn kill_all(&self);
}

/// No limits beyond the deadline; stragglers outside the process group are not found.
pub struct Unwatched;

impl Watch for Unwatched {
    fn breach(&self) -> Option<Breach> {
        None
    }
    fn kill_all(&self) {}
}

impl Watch for Confinement {
    fn breach(&self) -> Option<Breach> {
        Confinement::breach(self)
    }
    fn kill_all(&self) {
        Confinement::kill_all(self)
    }
}

#[derive(Debug)]
pub struct Finished {
    /// Exit code; for a signal, 128 + signal number.
    pub code: i32,
    /// Captured stdout (when asked for).
    pub stdout: String,
    pub timed_out: bool,
    /// The limit it went over (it was killed for it).
    pub breach: Option<Breach>,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out && self.breach.is_none()
    }
}

/// Lines read from a script's pipes and not yet logged, at most.
const PUMPED: usize = 256;

enum Msg {
    Out(Vec<u8>),
    Err(Vec<u8>),
}

fn pump(
    stream: impl Read + Send + 'static,
    tx: mpsc::SyncSender<Msg>,
    is_out: bool,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut r = BufReader::new(stream);
        loop {
            let mut line = Vec::new();
            match r
                .by_ref()
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let msg = if is_out {
                        Msg::Out(line)
                    } else {
                        Msg::Err(line)
                    };
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

fn kill_group(pid: u32) {
    // SAFETY: plain kill(2) on the process group we created for the child.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
}

/// Where a script's output goes: stdout captured (bounded) when asked, every other line to
/// the log.
struct Output<'a> {
    capture: bool,
    stdout: Vec<u8>,
    log: &'a mut dyn FnMut(&str),
}

impl Output<'_> {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Out(line) if self.capture => {
                if self.stdout.len() + line.len() <= MAX_CAPTURE {
                    self.stdout.extend_from_slice(&line);
                }
            }
            Msg::Out(line) | Msg::Err(line) => {
                let text = String::from_utf8_lossy(&line);
                (self.log)(text.trim_end_matches(['\n', '\r']));
            }
        }
    }
}

/// How the watching ended.
#[derive(Default)]
struct Watched {
    timed_out: bool,
    breach: Option<Breach>,
    /// Both pipes closed.
    drained: bool,
    /// When the script itself exited (what it started was killed then).
    exited_at: Option<Instant>,
}

/// Runs `cmd` until it exits or `deadline` passes. Every output line goes to `log` (stdout
/// lines too, unless `capture` is set, in which case they are returned instead). `watch` is
/// checked while it runs; once the script exits, what it left running is killed.
pub fn run(
    mut cmd: Command,
    capture: bool,
    deadline: Instant,
    log: &mut dyn FnMut(&str),
    watch: &dyn Watch,
) -> io::Result<Finished> {
    if cancelled() {
        return Err(cancelled_error());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    // Bounded: a log that cannot keep up (its copy in the database) slows the script's
    // writes down instead of piling its lines up here.
    let (tx, rx) = mpsc::sync_channel(PUMPED);
    let pumps = [
        pump(child.stdout.take().expect("piped"), tx.clone(), true),
        pump(child.stderr.take().expect("piped"), tx, false),
    ];
    let mut out = Output {
        capture,
        stdout: Vec::new(),
        log,
    };
    let mut w = supervise(&mut child, &rx, deadline, watch, &mut out)?;
    if w.drained && !w.timed_out {
        wait_exit(&mut child, deadline, watch, &mut w)?;
    }
    // Reap, and make sure no straggler survives, in the group or anywhere else.
    kill_group(pid);
    watch.kill_all();
    let status = child.wait()?;
    // A limit hit just before the script ended (a failed fork, an OOM kill it survived).
    if w.breach.is_none() && !w.timed_out {
        w.breach = watch.breach();
    }
    if w.drained || w.breach.is_some() || w.timed_out || w.exited_at.is_some() {
        // Everything holding the pipes is dead now, unless it escaped both kills (possible
        // only without a control group): then its pump thread is left to end with it.
        for p in pumps {
            if p.is_finished() || w.drained {
                let _ = p.join();
            }
        }
    }
    rx.try_iter().for_each(|msg| out.take(msg));
    if cancelled() {
        return Err(cancelled_error());
    }
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Finished {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        timed_out: w.timed_out,
        breach: w.breach,
    })
}

/// Forwards output until the pipes close, the deadline passes, a limit breaks, the build is
/// cancelled, or the script has exited and its grace is over.
fn supervise(
    child: &mut std::process::Child,
    rx: &mpsc::Receiver<Msg>,
    deadline: Instant,
    watch: &dyn Watch,
    out: &mut Output<'_>,
) -> io::Result<Watched> {
    let mut w = Watched::default();
    let mut watched = Instant::now() - WATCH_EVERY;
    loop {
        let now = Instant::now();
        if now >= deadline {
            w.timed_out = true;
            return Ok(w);
        }
        if cancelled() {
            return Ok(w);
        }
        if now.duration_since(watched) >= WATCH_EVERY {
            watched = now;
            w.breach = watch.breach();
            if w.breach.is_some() {
                return Ok(w);
            }
            if w.exited_at.is_none() && child.try_wait()?.is_some() {
                w.exited_at = Some(now);
                kill_group(child.id());
                watch.kill_all();
            }
        }
        if w.exited_at.is_some_and(|t| now.duration_since(t) > GRACE) {
            return Ok(w);
        }
        match rx.recv_timeout((deadline - now).min(WATCH_EVERY)) {
            Ok(msg) => out.take(msg),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both pipes closed: the process (and everything holding its pipes) is done.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                w.drained = true;
                return Ok(w);
            }
        }
    }
}

/// Pipes are closed, but a child that closed them may still be running: waits until it
/// exits, the deadline passes or a limit breaks.
fn wait_exit(
    child: &mut std::process::Child,
    deadline: Instant,
    watch: &dyn Watch,
    w: &mut Watched,
) -> io::Result<()> {
    loop {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            w.timed_out = true;
            return Ok(());
        }
        if let Some(b) = watch.breach() {
            w.breach = Some(b);
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn streams_and_captures() {
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let f = run(
            sh("echo out; echo err >&2; exit 3"),
            false,
            deadline,
            &mut |l| lines.push(l.to_string()),
            &Unwatched,
        )
        .unwrap();
        assert_eq!(f.code, 3);
        lines.sort();
        assert_eq!(lines, ["err", "out"]);
        let mut lines = Vec::new();
        let f = run(
            sh("echo name; echo note >&2"),
            true,
            deadline,
            &mut |l| lines.push(l.to_string()),
            &Unwatched,
        )
        .unwrap();
        assert!(f.success());
        assert_eq!(f.stdout, "name\n");
        assert_eq!(lines, ["note"]);
    }

    #[test]
    fn deadline_kills_the_process_group() {
        let marker = tempfile::tempdir().unwrap();
        let pidfile = marker.path().join("pid");
        let script = format!(
            "sleep 300 & echo $! > {}; echo started; wait",
            pidfile.display()
        );
        let start = Instant::now();
        let f = run(
            sh(&script),
            false,
            start + Duration::from_millis(700),
            &mut |_| {},
            &Unwatched,
        )
        .unwrap();
        assert!(f.timed_out && !f.success());
        assert!(start.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        thread::sleep(Duration::from_millis(100));
        // Gone, or a zombie waiting for init to reap it: either way no longer running.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let running = state
            .rsplit(')')
            .next()
            .is_some_and(|s| !s.trim_start().starts_with('Z'));
        assert!(
            !running,
            "background child {pid} survived the timeout: {state}"
        );
    }
}
