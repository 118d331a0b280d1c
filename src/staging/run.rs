//! Running one lifecycle script: output streamed line by line as it comes, stdout optionally
//! captured (bounded), and a deadline that kills the whole process group.

use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest line forwarded as one piece; longer lines are split.
const MAX_LINE: usize = 16 * 1024;
/// Most stdout kept when capturing (detect's name, release's YAML).
const MAX_CAPTURE: usize = 1 << 20;

#[derive(Debug)]
pub struct Finished {
    /// Exit code; for a signal, 128 + signal number.
    pub code: i32,
    /// Captured stdout (when asked for).
    pub stdout: String,
    pub timed_out: bool,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }
}

enum Msg {
    Out(Vec<u8>),
    Err(Vec<u8>),
}

fn pump(
    stream: impl Read + Send + 'static,
    tx: mpsc::Sender<Msg>,
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

/// Runs `cmd` until it exits or `deadline` passes. Every output line goes to `log` (stdout
/// lines too, unless `capture` is set, in which case they are returned instead).
pub fn run(
    mut cmd: Command,
    capture: bool,
    deadline: Instant,
    log: &mut dyn FnMut(&str),
) -> io::Result<Finished> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let pumps = [
        pump(child.stdout.take().expect("piped"), tx.clone(), true),
        pump(child.stderr.take().expect("piped"), tx, false),
    ];
    let mut stdout = Vec::new();
    let mut timed_out = false;
    let emit = |bytes: &[u8], log: &mut dyn FnMut(&str)| {
        let text = String::from_utf8_lossy(bytes);
        log(text.trim_end_matches(['\n', '\r']));
    };
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            kill_group(pid);
            break;
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(200))) {
            Ok(Msg::Out(line)) if capture => {
                if stdout.len() + line.len() <= MAX_CAPTURE {
                    stdout.extend_from_slice(&line);
                }
            }
            Ok(Msg::Out(line)) | Ok(Msg::Err(line)) => emit(&line, log),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both pipes closed: the process (and everything holding its pipes) is done.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if !timed_out {
        // Pipes are closed, but a child that closed them may still be running: wait until the
        // deadline, then kill.
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                kill_group(pid);
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    // Reap, and make sure no straggler of the group survives.
    kill_group(pid);
    let status = child.wait()?;
    for p in pumps {
        let _ = p.join();
    }
    for msg in rx.try_iter() {
        match msg {
            Msg::Out(line) if capture => stdout.extend_from_slice(&line),
            Msg::Out(line) | Msg::Err(line) => emit(&line, log),
        }
    }
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Finished {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        timed_out,
    })
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
        )
        .unwrap();
        assert_eq!(f.code, 3);
        lines.sort();
        assert_eq!(lines, ["err", "out"]);
        let mut lines = Vec::new();
        let f = run(sh("echo name; echo note >&2"), true, deadline, &mut |l| {
            lines.push(l.to_string())
        })
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
