//! One control group per build for its lifecycle scripts: a memory limit (no swap), a pids
//! limit, a count of the times either was hit, and a way to kill everything inside. cgroup v2
//! (`/sys/fs/cgroup/dropship/<build>`) when the host has the unified hierarchy with the memory
//! and pids controllers, else v1 (`/sys/fs/cgroup/{memory,pids}/dropship/<build>`); `None` when
//! neither can be written (not root, or a container without a writable cgroupfs).

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = "/sys/fs/cgroup";
const GROUP: &str = "dropship";

#[derive(Debug)]
enum Version {
    V1 { memory: PathBuf, pids: PathBuf },
    V2 { dir: PathBuf },
}

/// A build's control group; removed (after killing what is left in it) when dropped.
#[derive(Debug)]
pub struct Cgroup {
    version: Version,
    /// `cgroup.procs` files opened for writing, one per hierarchy: a child writes "0" to each
    /// before it execs, so it and everything it starts are inside.
    procs: Vec<fs::File>,
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The number after `key` in a flat-keyed cgroup file (`memory.events`, `pids.events`, ...).
fn counter(path: &Path, key: &str) -> u64 {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

impl Cgroup {
    /// Creates the control group `name` with `memory` bytes and `pids` processes at most.
    pub fn create(name: &str, memory: u64, pids: u64) -> io::Result<Option<Cgroup>> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        let root = Path::new(ROOT);
        let unified = root.join("cgroup.controllers");
        if let Ok(controllers) = fs::read_to_string(&unified) {
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            if !(has("memory") && has("pids")) {
                return Ok(None);
            }
            return Self::create_v2(root, name, memory, pids).map(Some);
        }
        let (mem_root, pids_root) = (root.join("memory"), root.join("pids"));
        if !mem_root.join("cgroup.procs").is_file() || !pids_root.join("cgroup.procs").is_file() {
            return Ok(None);
        }
        Self::create_v1(&mem_root, &pids_root, name, memory, pids).map(Some)
    }

    fn create_v2(root: &Path, name: &str, memory: u64, pids: u64) -> io::Result<Cgroup> {
        let parent = root.join(GROUP);
        let _ = write(&root.join("cgroup.subtree_control"), "+memory +pids");
        fs::create_dir_all(&parent)?;
        write(&parent.join("cgroup.subtree_control"), "+memory +pids")?;
        let dir = parent.join(name);
        fs::create_dir(&dir)?;
        let cg = Cgroup {
            version: Version::V2 { dir: dir.clone() },
            procs: Vec::new(),
        };
        write(&dir.join("memory.max"), &memory.to_string())?;
        let _ = write(&dir.join("memory.swap.max"), "0");
        write(&dir.join("pids.max"), &pids.to_string())?;
        cg.with_procs(&[dir.join("cgroup.procs")])
    }

    fn create_v1(
        mem_root: &Path,
        pids_root: &Path,
        name: &str,
        memory: u64,
        pids: u64,
    ) -> io::Result<Cgroup> {
        let memory_dir = mem_root.join(GROUP).join(name);
        let pids_dir = pids_root.join(GROUP).join(name);
        fs::create_dir_all(&memory_dir)?;
        let cg = Cgroup {
            version: Version::V1 {
                memory: memory_dir.clone(),
                pids: pids_dir.clone(),
            },
            procs: Vec::new(),
        };
        fs::create_dir_all(&pids_dir)?;
        write(
            &memory_dir.join("memory.limit_in_bytes"),
            &memory.to_string(),
        )?;
        let memsw = memory_dir.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            let _ = write(&memsw, &memory.to_string());
        }
        write(&pids_dir.join("pids.max"), &pids.to_string())?;
        cg.with_procs(&[
            memory_dir.join("cgroup.procs"),
            pids_dir.join("cgroup.procs"),
        ])
    }

    fn with_procs(mut self, files: &[PathBuf]) -> io::Result<Cgroup> {
        for f in files {
            self.procs.push(fs::OpenOptions::new().write(true).open(f)?);
        }
        Ok(self)
    }

    /// File descriptors a child writes "0" to (from `pre_exec`) to join the group.
    pub fn join_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// How many processes the kernel's OOM killer ended in this group.
    pub fn oom_kills(&self) -> u64 {
        match &self.version {
            Version::V2 { dir } => counter(&dir.join("memory.events"), "oom_kill"),
            Version::V1 { memory, .. } => counter(&memory.join("memory.oom_control"), "oom_kill"),
        }
    }

    /// How many times a fork failed because the pids limit was reached.
    pub fn pids_limit_hits(&self) -> u64 {
        let dir = match &self.version {
            Version::V2 { dir } => dir,
            Version::V1 { pids, .. } => pids,
        };
        counter(&dir.join("pids.events"), "max")
    }

    fn members(&self) -> Vec<i32> {
        let dir = match &self.version {
            Version::V2 { dir } => dir,
            Version::V1 { pids, .. } => pids,
        };
        fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every process in the group and waits (a few seconds at most) until it is empty.
    pub fn kill_all(&self) {
        if let Version::V2 { dir } = &self.version {
            let _ = fs::write(dir.join("cgroup.kill"), "1");
        }
        for _ in 0..500 {
            let pids = self.members();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY: kill(2) on a pid read from our own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        self.procs.clear();
        let dirs = match &self.version {
            Version::V2 { dir } => vec![dir.clone()],
            Version::V1 { memory, pids } => vec![memory.clone(), pids.clone()],
        };
        for dir in dirs {
            // A group empties asynchronously after its last process is reaped.
            for _ in 0..100 {
                if fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_key() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("memory.events");
        fs::write(&f, "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\n").unwrap();
        assert_eq!(counter(&f, "oom_kill"), 1);
        assert_eq!(counter(&f, "oom"), 2);
        assert_eq!(counter(&f, "max"), 7);
        assert_eq!(counter(&f, "absent"), 0);
    }
}
