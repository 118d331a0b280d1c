//! A build's staging workspace: the directories buildpacks write (`app/`, `deps/`,
//! `profile.d/`, `cache/`, `/tmp`, home) and the only operations dropship (possibly root)
//! performs on them once a script has run: reads capped and resolved beneath the directory
//! with no symbolic link followed, directories created and chowned through their own fd.
//!
//! ```text
//! <work dir>/dropship-build-XXXX/     root, 0711; `owner.pid` names the process using it
//!   stage/                            a tmpfs of exactly the disk quota (when root), 0711
//!     droplet/{app,deps,profile.d}    the droplet; the three dirs belong to the staging user
//!     cache/ home/ tmp/               the buildpack cache, $HOME, the sandbox's /tmp
//!   blobs/                            the droplet tgz and layers (outside the quota)
//! ```
//! Dropping the workspace unmounts and deletes it; [`sweep`] removes what a killed process
//! left behind.

use super::limits::{disk_usage, DiskWatch};
use super::sandbox::{staging_owner, HostDirs};
use super::StagingError;
use crate::safefs::{self, Kind, SafeError};
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Largest Procfile, launch.yml, config.yml or env file dropship reads.
pub const MAX_DOC: u64 = 1 << 20;
const PREFIX: &str = "dropship-build-";
const PID_FILE: &str = "owner.pid";

/// The directories buildpacks write, by their role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    App,
    Deps,
    Cache,
}

impl Area {
    fn name(self) -> &'static str {
        match self {
            Area::App => "app",
            Area::Deps => "deps",
            Area::Cache => "cache",
        }
    }
}

/// What a `deps/<idx>` directory contributes to the next scripts' environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepsEntry {
    pub idx: String,
    /// Which of `bin`, `lib`, `include`, `pkgconfig` it has.
    pub subdirs: Vec<&'static str>,
    /// `env/NAME` files, name and content.
    pub env: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    stage: PathBuf,
    mounted: bool,
    pub dirs: HostDirs,
    pub droplet: PathBuf,
    pub blobs: PathBuf,
    owner: Option<(u32, u32)>,
    quota: u64,
}

fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn err(e: SafeError) -> StagingError {
    StagingError::Unsafe(e.to_string())
}

impl Workspace {
    /// Makes a new workspace under `work_dir` whose staging tree may hold `quota` bytes.
    pub fn create(work_dir: &Path, quota: u64) -> io::Result<Workspace> {
        fs::create_dir_all(work_dir)?;
        sweep(work_dir, false);
        let root = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(work_dir)?
            .keep();
        let ws = Self::layout(root, quota);
        fs::set_permissions(&ws.root, fs::Permissions::from_mode(0o711))?;
        fs::write(ws.root.join(PID_FILE), std::process::id().to_string())?;
        mkdir(&ws.stage, 0o711)?;
        let mut ws = ws;
        if ws.owner.is_some() {
            ws.mounted = mount_tmpfs(&ws.stage, quota).is_ok();
        }
        mkdir(&ws.droplet, 0o711)?;
        mkdir(&ws.blobs, 0o700)?;
        for d in ws.staging_dirs() {
            mkdir(d, 0o755)?;
        }
        Ok(ws)
    }

    fn layout(root: PathBuf, quota: u64) -> Workspace {
        let stage = root.join("stage");
        let droplet = stage.join("droplet");
        Workspace {
            dirs: HostDirs {
                app: droplet.join("app"),
                deps: droplet.join("deps"),
                profile_d: droplet.join("profile.d"),
                cache: stage.join("cache"),
                home: stage.join("home"),
                tmp: stage.join("tmp"),
            },
            droplet,
            blobs: root.join("blobs"),
            stage,
            root,
            mounted: false,
            owner: staging_owner(),
            quota,
        }
    }

    fn staging_dirs(&self) -> [&PathBuf; 6] {
        let d = &self.dirs;
        [&d.app, &d.deps, &d.profile_d, &d.cache, &d.home, &d.tmp]
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Whether the staging tree is a tmpfs of exactly the quota (else its size is watched).
    pub fn quota_mounted(&self) -> bool {
        self.mounted
    }

    pub fn quota(&self) -> u64 {
        self.quota
    }

    /// How the staging tree's size is watched while scripts run.
    pub fn disk_watch(&self) -> io::Result<DiskWatch> {
        Ok(if self.mounted {
            DiskWatch::Mount(safefs::open_dir(&self.stage)?)
        } else {
            DiskWatch::Walk(vec![self.stage.clone()])
        })
    }

    /// Bytes the staging tree holds now.
    pub fn used(&self) -> u64 {
        disk_usage(&self.stage)
    }

    /// Gives the staging directories, and what dropship put in them (the app, a restored
    /// cache), to the staging user. Only before the first script runs: nothing in them is
    /// the staging user's work yet.
    pub fn hand_over(&self) -> io::Result<()> {
        let Some((uid, gid)) = self.owner else {
            return Ok(());
        };
        for dir in self.staging_dirs() {
            for entry in walkdir::WalkDir::new(dir).follow_links(false) {
                let entry = entry.map_err(io::Error::other)?;
                std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid))?;
            }
        }
        Ok(())
    }

    fn open(&self, area: Area) -> Result<OwnedFd, StagingError> {
        let path = match area {
            Area::App => &self.dirs.app,
            Area::Deps => &self.dirs.deps,
            Area::Cache => &self.dirs.cache,
        };
        safefs::open_dir(path).map_err(|e| StagingError::Io(format!("opening {area:?} dir: {e}")))
    }

    /// A file a buildpack or the app wrote (Procfile, launch.yml, config.yml), as text, at most
    /// [`MAX_DOC`] bytes; `None` when absent. A symbolic link, or a path through one, fails.
    pub fn read_doc(&self, area: Area, rel: &str) -> Result<Option<String>, StagingError> {
        let dir = self.open(area)?;
        let shown = Path::new(area.name()).join(rel);
        match safefs::read_capped(dir.as_fd(), Path::new(rel), MAX_DOC) {
            Ok(v) => Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned())),
            Err(SafeError::Link(_)) => Err(StagingError::Unsafe(format!(
                "{} is a symbolic link, or goes through one: refused",
                shown.display()
            ))),
            Err(SafeError::TooLarge(_, cap)) => Err(StagingError::Unsafe(format!(
                "{} is larger than {cap} bytes",
                shown.display()
            ))),
            Err(SafeError::WrongType(_, what)) => Err(StagingError::Unsafe(format!(
                "{} is not a {what}",
                shown.display()
            ))),
            Err(e) => Err(StagingError::Io(format!("{}: {e}", shown.display()))),
        }
    }

    /// Makes `deps/<idx>` (or `cache/<key>`) a real directory of the staging user's.
    pub fn ensure_dir(&self, area: Area, name: &str) -> Result<(), StagingError> {
        let dir = self.open(area)?;
        safefs::ensure_dir(dir.as_fd(), name, 0o755, self.owner)
            .map(drop)
            .map_err(|e| StagingError::Unsafe(format!("{}/{}", area.name(), e)))
    }

    /// Removes cache entries no buildpack of this build owns (CF's cleanCacheDir).
    pub fn clean_cache(&self, keep: &[String]) -> Result<(), StagingError> {
        let dir = self.open(Area::Cache)?;
        let entries = safefs::list(dir.as_fd()).map_err(|e| StagingError::Io(e.to_string()))?;
        for (name, kind) in entries {
            if keep.iter().any(|k| k.as_str() == name) {
                continue;
            }
            let p = self.dirs.cache.join(&name);
            // std's remove_dir_all removes a symlink itself and never follows one inside.
            let r = if kind == Kind::Dir {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            r.map_err(|e| StagingError::Io(format!("cleaning the cache dir: {e}")))?;
        }
        Ok(())
    }

    /// What `deps/*/` holds so far for the environment of the next script: real directories
    /// only, subdirectories and env files read without following any link.
    pub fn deps_entries(&self) -> Result<Vec<DepsEntry>, StagingError> {
        let deps = self.open(Area::Deps)?;
        let mut out = Vec::new();
        let list = safefs::list(deps.as_fd()).map_err(|e| StagingError::Io(e.to_string()))?;
        for (idx, kind) in list {
            let Some(idx) = idx.to_str().filter(|_| kind == Kind::Dir) else {
                continue;
            };
            let dir = safefs::open_subdir(deps.as_fd(), Path::new(idx)).map_err(err)?;
            let Some(dir) = dir else { continue };
            let inner = safefs::list(dir.as_fd()).map_err(|e| StagingError::Io(e.to_string()))?;
            let is_dir = |n: &str| inner.iter().any(|(x, k)| x == n && *k == Kind::Dir);
            let mut entry = DepsEntry {
                idx: idx.to_string(),
                subdirs: ["bin", "lib", "include", "pkgconfig"]
                    .into_iter()
                    .filter(|s| is_dir(s))
                    .collect(),
                env: Vec::new(),
            };
            if is_dir("env") {
                entry.env = self.env_files(&dir)?;
            }
            out.push(entry);
        }
        Ok(out)
    }

    fn env_files(&self, dep: &OwnedFd) -> Result<Vec<(String, String)>, StagingError> {
        let env = safefs::open_subdir(dep.as_fd(), Path::new("env")).map_err(err)?;
        let Some(env) = env else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (name, kind) in
            safefs::list(env.as_fd()).map_err(|e| StagingError::Io(e.to_string()))?
        {
            let Some(name) = name.to_str() else { continue };
            if kind != Kind::File {
                continue;
            }
            let value = safefs::read_capped(env.as_fd(), Path::new(name), MAX_DOC).map_err(err)?;
            if let Some(v) = value {
                out.push((name.to_string(), String::from_utf8_lossy(&v).into_owned()));
            }
        }
        Ok(out)
    }
}

fn mount_tmpfs(at: &Path, size: u64) -> io::Result<()> {
    use rustix::mount::{mount, MountFlags};
    let data = std::ffi::CString::new(format!("size={size},mode=0711")).expect("no NUL");
    mount(
        "dropship-staging",
        at,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(data.as_c_str()),
    )?;
    Ok(())
}

fn unmount(at: &Path) {
    let _ = rustix::mount::unmount(at, rustix::mount::UnmountFlags::DETACH);
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if self.mounted {
            unmount(&self.stage);
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH))
}

/// Removes workspaces under `work_dir` left by processes that are gone (all of them with
/// `all`, for a service starting up), unmounting their staging tmpfs first.
pub fn sweep(work_dir: &Path, all: bool) -> usize {
    let Ok(entries) = fs::read_dir(work_dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let is_ours = name.to_str().is_some_and(|n| n.starts_with(PREFIX));
        if !is_ours || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let pid: Option<i32> = fs::read_to_string(e.path().join(PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if !all && pid.is_none_or(alive) {
            continue;
        }
        unmount(&e.path().join("stage"));
        if fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn documents_through_links_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::create(d.path(), 64 << 20).unwrap();
        let secret = d.path().join("secret");
        fs::write(&secret, "host secret").unwrap();
        fs::write(ws.dirs.app.join("Procfile"), "web: ok").unwrap();
        symlink(&secret, ws.dirs.app.join("Procfile.evil")).unwrap();
        assert_eq!(
            ws.read_doc(Area::App, "Procfile").unwrap().unwrap(),
            "web: ok"
        );
        assert!(ws.read_doc(Area::App, "absent").unwrap().is_none());
        let e = ws.read_doc(Area::App, "Procfile.evil").unwrap_err();
        assert!(
            e.to_string()
                .contains("app/Procfile.evil is a symbolic link"),
            "{e}"
        );
        symlink(d.path(), ws.dirs.deps.join("1")).unwrap();
        assert!(ws.ensure_dir(Area::Deps, "1").is_err());
        ws.ensure_dir(Area::Deps, "0").unwrap();
        fs::create_dir_all(ws.dirs.deps.join("0/env")).unwrap();
        fs::create_dir_all(ws.dirs.deps.join("0/bin")).unwrap();
        fs::write(ws.dirs.deps.join("0/env/GOOD"), "v").unwrap();
        symlink(&secret, ws.dirs.deps.join("0/env/BAD")).unwrap();
        let deps = ws.deps_entries().unwrap();
        assert_eq!(deps.len(), 1, "the symlinked deps/1 is not a deps dir");
        assert_eq!(deps[0].subdirs, ["bin"]);
        assert_eq!(deps[0].env, [("GOOD".to_string(), "v".to_string())]);
    }

    #[test]
    fn dropped_and_swept() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::create(d.path(), 64 << 20).unwrap();
        let root = ws.path().to_path_buf();
        drop(ws);
        assert!(!root.exists());
        let stale = d.path().join(format!("{PREFIX}old"));
        fs::create_dir_all(stale.join("stage")).unwrap();
        fs::write(stale.join(PID_FILE), "2147483646").unwrap();
        let live = Workspace::create(d.path(), 64 << 20).unwrap();
        assert!(!stale.exists(), "a dead process's workspace is swept");
        assert!(live.path().exists());
    }
}
