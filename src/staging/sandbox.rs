//! Where lifecycle scripts run. `bwrap`: a bubblewrap sandbox whose root is the stack's root
//! filesystem (read-only), as uid/gid 2000, with no network, fresh /proc, /dev and /tmp, and no
//! view of the host beyond the staging directories. `none`: directly on the host, for hosts
//! that are already a container.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How to isolate buildpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxKind {
    Bwrap,
    None,
}

impl std::str::FromStr for SandboxKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bwrap" => Ok(SandboxKind::Bwrap),
            "none" => Ok(SandboxKind::None),
            other => Err(format!("unknown sandbox {other:?} (use bwrap or none)")),
        }
    }
}

/// The host directories a staging run writes to.
#[derive(Debug, Clone)]
pub struct HostDirs {
    pub app: PathBuf,
    pub cache: PathBuf,
    pub deps: PathBuf,
    pub profile_d: PathBuf,
    /// HOME for the scripts (`/home/vcap` in the sandbox).
    pub home: PathBuf,
    /// TMPDIR for the scripts (`/tmp` in the sandbox).
    pub tmp: PathBuf,
}

/// The host uid/gid lifecycle scripts run as: vcap's 2000 when dropship runs as root (never
/// root on the host, sandbox or not); otherwise dropship's own (unprivileged) ids.
pub fn staging_owner() -> Option<(u32, u32)> {
    // SAFETY: geteuid cannot fail.
    (unsafe { libc::geteuid() } == 0).then_some((2000, 2000))
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    kind: SandboxKind,
    bwrap: PathBuf,
    rootfs: PathBuf,
    dirs: HostDirs,
    /// Buildpack directories on the host, by name.
    buildpacks: Vec<(String, PathBuf)>,
}

/// Finds bwrap on PATH, or says how to get it.
pub fn find_bwrap() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: apt-get install \
             bubblewrap), or pass --sandbox none on a host that is already a container"
                .to_string()
        })
}

impl Sandbox {
    pub fn new(
        kind: SandboxKind,
        rootfs: &Path,
        dirs: HostDirs,
        buildpacks: Vec<(String, PathBuf)>,
    ) -> Result<Sandbox, String> {
        let bwrap = match kind {
            SandboxKind::Bwrap => find_bwrap()?,
            SandboxKind::None => PathBuf::new(),
        };
        Ok(Sandbox {
            kind,
            bwrap,
            rootfs: rootfs.to_path_buf(),
            dirs,
            buildpacks,
        })
    }

    fn inside(&self, fixed: &str, host: &Path) -> String {
        match self.kind {
            SandboxKind::Bwrap => fixed.to_string(),
            SandboxKind::None => host.display().to_string(),
        }
    }

    /// Paths as the scripts see them.
    pub fn app(&self) -> String {
        self.inside("/tmp/app", &self.dirs.app)
    }
    pub fn cache(&self) -> String {
        self.inside("/tmp/cache", &self.dirs.cache)
    }
    pub fn deps(&self) -> String {
        self.inside("/tmp/deps", &self.dirs.deps)
    }
    pub fn profile_d(&self) -> String {
        self.inside("/tmp/profile.d", &self.dirs.profile_d)
    }
    pub fn home(&self) -> String {
        self.inside("/home/vcap", &self.dirs.home)
    }
    pub fn tmp(&self) -> String {
        self.inside("/tmp", &self.dirs.tmp)
    }

    /// The directory of buildpack `name` as the scripts see it.
    pub fn buildpack(&self, name: &str) -> String {
        match self.kind {
            SandboxKind::Bwrap => format!("/tmp/buildpacks/{name}"),
            SandboxKind::None => self
                .buildpacks
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.display().to_string())
                .unwrap_or_default(),
        }
    }

    /// A command running `program args` in the sandbox with exactly the environment `env`.
    /// Who it runs as, and within which limits, is the caller's `Confinement`.
    pub fn command(&self, program: &str, args: &[String], env: &[(String, String)]) -> Command {
        match self.kind {
            SandboxKind::None => {
                let mut c = Command::new(program);
                c.args(args)
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .current_dir(&self.dirs.app);
                c
            }
            SandboxKind::Bwrap => {
                let mut c = Command::new(&self.bwrap);
                c.env_clear();
                c.arg("--ro-bind").arg(&self.rootfs).arg("/");
                c.args(["--proc", "/proc", "--dev", "/dev"]);
                // /tmp and $HOME are the workspace's, inside its disk quota.
                for (src, dest) in [(&self.dirs.tmp, "/tmp"), (&self.dirs.home, "/home/vcap")] {
                    c.arg("--bind").arg(src).arg(dest);
                }
                for (src, dest) in [
                    (&self.dirs.app, "/tmp/app"),
                    (&self.dirs.cache, "/tmp/cache"),
                    (&self.dirs.deps, "/tmp/deps"),
                    (&self.dirs.profile_d, "/tmp/profile.d"),
                ] {
                    c.arg("--bind").arg(src).arg(dest);
                }
                for (name, dir) in &self.buildpacks {
                    c.arg("--ro-bind")
                        .arg(dir)
                        .arg(format!("/tmp/buildpacks/{name}"));
                }
                c.args(["--unshare-all", "--die-with-parent", "--new-session"]);
                c.args(["--uid", "2000", "--gid", "2000", "--hostname", "staging"]);
                c.args(["--chdir", "/tmp/app", "--clearenv"]);
                for (k, v) in env {
                    c.arg("--setenv").arg(k).arg(v);
                }
                c.arg("--").arg(program).args(args);
                c
            }
        }
    }

    pub fn kind(&self) -> SandboxKind {
        self.kind
    }
}
