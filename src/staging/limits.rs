//! What one build's lifecycle scripts may use, and how it is enforced. Disk: the staging tree
//! is a tmpfs of exactly the quota when dropship is root (see `workspace.rs`), else its size is
//! watched; no file may exceed the quota (`RLIMIT_FSIZE`). Memory and processes: a control
//! group per build (`cgroup.rs`), or, where none can be made, `RLIMIT_DATA` and
//! `RLIMIT_NPROC`. CPU: no process may use more CPU seconds than the staging timeout
//! (`RLIMIT_CPU`). Every script starts inside the group, as the staging user, from `pre_exec`;
//! after each script whatever it left running is killed.

use super::cgroup::Cgroup;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bounds on a build's staging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagingLimits {
    /// Bytes the staging tree (app, deps, cache, /tmp, home) may hold.
    pub disk: u64,
    /// Bytes of memory the scripts may use together (the tmpfs holding the staging tree is
    /// counted apart, by `disk`).
    pub memory: u64,
    /// Processes (and threads) at once.
    pub pids: u64,
    /// CPU seconds any one process may use.
    pub cpu_secs: u64,
}

impl StagingLimits {
    pub const DEFAULT_PIDS: u64 = 1024;
}

/// A limit a build went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    Disk(u64),
    Memory(u64),
    Pids(u64),
    /// CPU seconds of one process.
    Cpu(u64),
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::Disk(q) => write!(f, "disk quota of {} exceeded", human(*q)),
            Breach::Memory(q) => write!(f, "memory limit of {} exceeded", human(*q)),
            Breach::Pids(n) => write!(f, "process limit of {n} reached"),
            Breach::Cpu(s) => write!(f, "CPU time limit of {s} s per process exceeded"),
        }
    }
}

/// `1G`, `512M`, `300K` or bytes, as the flags are written.
pub fn human(bytes: u64) -> String {
    for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// How the staging tree's size is known: the free space of its own tmpfs, or by walking it.
#[derive(Debug)]
pub enum DiskWatch {
    Mount(OwnedFd),
    Walk(Vec<PathBuf>),
}

/// Free bytes under which a quota'd tmpfs counts as full.
const FULL: u64 = 1 << 20;
/// How often an unmounted tree is walked.
const WALK_EVERY: Duration = Duration::from_secs(2);

/// The limits of one build, applied to every script it runs.
#[derive(Debug)]
pub struct Confinement {
    limits: StagingLimits,
    cgroup: Option<Cgroup>,
    run_as: Option<(u32, u32)>,
    disk: DiskWatch,
    last_walk: Mutex<Option<Instant>>,
    /// The group's OOM kills and pids-limit hits when the current script started: counters
    /// are the group's, breaches are the script's.
    baseline: Mutex<(u64, u64)>,
    /// Why there is no control group although dropship is root.
    no_cgroup: Option<String>,
}

impl Confinement {
    pub fn new(
        name: &str,
        limits: StagingLimits,
        run_as: Option<(u32, u32)>,
        disk: DiskWatch,
    ) -> std::io::Result<Confinement> {
        // Pages of a tmpfs are charged to the cgroup of whoever writes them: the staging tree,
        // bounded by `disk`, would otherwise count as memory.
        let charged = limits.memory.saturating_add(limits.disk);
        let (cgroup, no_cgroup) = match Cgroup::create(name, charged, limits.pids) {
            Ok(Some(cg)) => (Some(cg), None),
            Ok(None) => (
                None,
                run_as.map(|_| {
                    "no cgroup v1 or v2 hierarchy with the memory and pids controllers".to_string()
                }),
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(Confinement {
            no_cgroup,
            limits,
            cgroup,
            run_as,
            disk,
            last_walk: Mutex::new(None),
            baseline: Mutex::new((0, 0)),
        })
    }

    fn counters(&self) -> (u64, u64) {
        self.cgroup
            .as_ref()
            .map(|cg| (cg.oom_kills(), cg.pids_limit_hits()))
            .unwrap_or_default()
    }

    /// Whether a control group holds the scripts (so that nothing they start survives them).
    pub fn has_cgroup(&self) -> bool {
        self.cgroup.is_some()
    }

    /// Why scripts run without a control group (bounded by rlimits instead), when it matters.
    pub fn why_no_cgroup(&self) -> Option<&str> {
        self.no_cgroup.as_deref()
    }

    /// Makes `cmd` start inside the limits, as the staging user; breaches count from now.
    pub fn apply(&self, cmd: &mut Command) {
        *self.baseline.lock().unwrap_or_else(|p| p.into_inner()) = self.counters();
        let join: Vec<RawFd> = self
            .cgroup
            .as_ref()
            .map(Cgroup::join_fds)
            .unwrap_or_default();
        let l = self.limits;
        let fallback = self.cgroup.is_none();
        let run_as = self.run_as;
        let set = |res, soft: u64, hard: u64| {
            let r = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            // SAFETY: setrlimit(2) with a valid struct; async-signal-safe.
            if unsafe { libc::setrlimit(res, &r) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        };
        // SAFETY: only async-signal-safe calls (write, setrlimit, setgroups, setres[ug]id)
        // between fork and exec; nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &join {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                set(libc::RLIMIT_FSIZE, l.disk, l.disk)?;
                set(libc::RLIMIT_CPU, l.cpu_secs, l.cpu_secs + 5)?;
                if fallback {
                    set(libc::RLIMIT_DATA, l.memory, l.memory)?;
                    if run_as.is_some() {
                        set(libc::RLIMIT_NPROC, l.pids, l.pids)?;
                    }
                }
                if let Some((uid, gid)) = run_as {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setresgid(gid, gid, gid) != 0
                        || libc::setresuid(uid, uid, uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    /// The limit a script killed by `signal` went over, if the kernel's signal says so.
    pub fn breach_by_signal(&self, signal: i32) -> Option<Breach> {
        match signal {
            libc::SIGXFSZ => Some(Breach::Disk(self.limits.disk)),
            libc::SIGXCPU => Some(Breach::Cpu(self.limits.cpu_secs)),
            _ => None,
        }
    }

    /// A limit the scripts went over, if any.
    pub fn breach(&self) -> Option<Breach> {
        let (ooms, pids) = self.counters();
        let (ooms0, pids0) = *self.baseline.lock().unwrap_or_else(|p| p.into_inner());
        if ooms > ooms0 {
            return Some(Breach::Memory(self.limits.memory));
        }
        if pids > pids0 {
            return Some(Breach::Pids(self.limits.pids));
        }
        self.disk_full().then_some(Breach::Disk(self.limits.disk))
    }

    fn disk_full(&self) -> bool {
        match &self.disk {
            DiskWatch::Mount(fd) => rustix::fs::fstatvfs(fd.as_fd())
                .map(|s| s.f_bavail.saturating_mul(s.f_frsize) < FULL)
                .unwrap_or(false),
            DiskWatch::Walk(dirs) => {
                let mut last = self.last_walk.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_some_and(|t| t.elapsed() < WALK_EVERY) {
                    return false;
                }
                *last = Some(Instant::now());
                let used: u64 = dirs.iter().map(|d| disk_usage(d)).sum();
                used > self.limits.disk
            }
        }
    }

    /// Kills whatever the scripts left running (nothing without a control group: the caller
    /// kills the script's process group).
    pub fn kill_all(&self) {
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
        }
    }
}

/// Bytes a tree occupies (allocated blocks, so holes do not count), not following links.
pub fn disk_usage(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_written() {
        assert_eq!(human(1 << 30), "1G");
        assert_eq!(human(64 << 20), "64M");
        assert_eq!(human(1000), "1000 bytes");
        assert_eq!(
            Breach::Disk(1 << 30).to_string(),
            "disk quota of 1G exceeded"
        );
        assert_eq!(Breach::Pids(64).to_string(), "process limit of 64 reached");
    }

    #[test]
    fn a_walked_tree_over_its_quota_is_a_breach() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), vec![7u8; 256 << 10]).unwrap();
        let limits = StagingLimits {
            disk: 64 << 10,
            memory: 1 << 30,
            pids: 64,
            cpu_secs: 60,
        };
        let c = Confinement {
            limits,
            cgroup: None,
            run_as: None,
            disk: DiskWatch::Walk(vec![d.path().to_path_buf()]),
            last_walk: Mutex::new(None),
            baseline: Mutex::new((0, 0)),
            no_cgroup: None,
        };
        assert_eq!(c.breach(), Some(Breach::Disk(64 << 10)));
        assert_eq!(c.breach(), None, "walked at most every {WALK_EVERY:?}");
    }
}
