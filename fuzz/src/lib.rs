//! Shared by the fuzz targets that write files: a read-only sandbox for the whole fuzzing
//! process, and a per-input scratch directory that can tell whether anything was written
//! beside the destination.
//!
//! Why a sandbox: `intake_zip` and `stack_layer` unpack hostile archives, usually as root.
//! A bug that follows a symlink out of the destination (the very bugs fuzzing is for) would
//! otherwise delete or overwrite real files of this machine, e.g. a layer with `x -> /` then
//! `x/.wh..wh..opq` empties `/`. So these targets re-execute themselves under bubblewrap
//! with `/` read-only, a private tmpfs `/tmp` for the scratch directories, and only the
//! fuzzer's own corpus and artifact directories writable; they refuse to run otherwise.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the re-executed process.
const MARK: &str = "DROPSHIP_FUZZ_SANDBOXED";

/// Is the file system at `p` mounted read-only?
fn read_only(p: &str) -> bool {
    let c = std::ffi::CString::new(p).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    unsafe { libc::statvfs(c.as_ptr(), &mut s) == 0 && s.f_flag & libc::ST_RDONLY != 0 }
}

/// Re-executes this fuzzer under bubblewrap (once, from the target's `init`), or returns
/// when already inside one. Exits with a message when that is impossible.
pub fn sandbox() {
    if std::env::var_os(MARK).is_some() {
        if !read_only("/") || read_only("/tmp") {
            eprintln!("fuzz sandbox: expected `/` read-only and `/tmp` writable");
            std::process::exit(2);
        }
        return;
    }
    let exe = std::env::current_exe().expect("own executable");
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Writable: the fuzz crate's corpus and artifacts, plus every directory named on the
    // command line (corpus directories) and the directory of `-artifact_prefix=`.
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut writable: Vec<PathBuf> = vec![fuzz_dir.join("corpus"), fuzz_dir.join("artifacts")];
    // Read-only: this executable and input files named on the command line (reproducing a
    // crash), which the private `/tmp` would hide.
    let mut inputs: Vec<PathBuf> = vec![exe.clone()];
    for a in &args {
        let s = a.to_string_lossy();
        if let Some(prefix) = s.strip_prefix("-artifact_prefix=") {
            let p = Path::new(prefix);
            writable.push(if prefix.ends_with('/') {
                p.to_path_buf()
            } else {
                p.parent().unwrap_or(Path::new(".")).to_path_buf()
            });
        } else if !s.starts_with('-') && Path::new(a).is_dir() {
            writable.push(PathBuf::from(a));
        } else if !s.starts_with('-') && Path::new(a).is_file() {
            inputs.push(PathBuf::from(a));
        }
    }
    let mut cmd = Command::new("bwrap");
    cmd.args([
        "--ro-bind",
        "/",
        "/",
        "--tmpfs",
        "/tmp",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]);
    cmd.args(["--unshare-pid", "--unshare-net", "--die-with-parent"]);
    // Root inside keeps what unpacking needs (chown, modes), not what could undo the
    // read-only mounts (CAP_SYS_ADMIN). Others run unprivileged in a user namespace.
    if unsafe { libc::geteuid() } == 0 {
        cmd.args(["--cap-drop", "ALL"]);
        for cap in ["CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE"] {
            cmd.args(["--cap-add", cap]);
        }
    }
    for w in writable {
        let _ = fs::create_dir_all(&w);
        if let Ok(w) = fs::canonicalize(&w) {
            cmd.arg("--bind").arg(&w).arg(&w);
        }
    }
    for i in inputs {
        if let Ok(i) = fs::canonicalize(&i) {
            cmd.arg("--ro-bind").arg(&i).arg(&i);
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        cmd.arg("--chdir").arg(cwd);
    }
    cmd.arg("--").arg(exe).args(args).env(MARK, "1");
    let err = cmd.exec();
    eprintln!(
        "fuzz sandbox: cannot run bwrap ({err}); this target unpacks hostile archives and \
         runs only inside bubblewrap (apt-get install bubblewrap)"
    );
    std::process::exit(2);
}

/// What a path is, for comparing trees before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir(u32),
    File(u32, Vec<u8>),
    Link(PathBuf),
    Other(u32),
}

/// Every path under `root` (not following symlinks), except `skip` and what is under it.
pub fn snapshot(root: &Path, skip: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p == skip {
                continue;
            }
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            let mode = m.permissions().mode();
            let node = if m.is_symlink() {
                Node::Link(fs::read_link(&p).unwrap_or_default())
            } else if m.is_dir() {
                walk(&p, skip, out);
                Node::Dir(mode)
            } else if m.is_file() {
                Node::File(mode, fs::read(&p).unwrap_or_default())
            } else {
                Node::Other(m.mode())
            };
            out.insert(p, node);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, skip, &mut out);
    out
}

/// Where the per-input directories are made (on the sandbox's private tmpfs).
const SCRATCH: &str = "/tmp/dropship-fuzz";

/// A fresh directory per input, in [`SCRATCH`]:
/// `root/input` (the bytes), `root/dest/` (empty), `root/canary/` (a file, a directory,
/// a symlink): the destination's neighbours, which must come out untouched.
pub struct Scratch {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub input: PathBuf,
    pub dest: PathBuf,
    before: BTreeMap<PathBuf, Node>,
}

impl Scratch {
    pub fn new(data: &[u8]) -> Scratch {
        fs::create_dir_all(SCRATCH).unwrap();
        let tmp = tempfile::Builder::new()
            .prefix("input-")
            .tempdir_in(SCRATCH)
            .expect("scratch dir");
        let root = tmp.path().to_path_buf();
        let input = root.join("input");
        fs::write(&input, data).unwrap();
        let dest = root.join("dest");
        fs::create_dir(&dest).unwrap();
        let canary = root.join("canary");
        fs::create_dir_all(canary.join("dir")).unwrap();
        fs::write(canary.join("file"), b"canary").unwrap();
        fs::write(canary.join("dir/file"), b"canary").unwrap();
        std::os::unix::fs::symlink("file", canary.join("link")).unwrap();
        let before = snapshot(&root, &dest);
        Scratch {
            _tmp: tmp,
            root,
            input,
            dest,
            before,
        }
    }

    /// Panics (a finding) when anything beside `dest` was created, changed or removed, or
    /// `dest` itself was replaced by something other than a directory.
    pub fn assert_nothing_outside(&self) {
        let m = fs::symlink_metadata(&self.dest).expect("dest still exists");
        assert!(m.is_dir(), "dest was replaced by a non-directory");
        let after = snapshot(&self.root, &self.dest);
        if after != self.before {
            let changed: Vec<_> = self
                .before
                .keys()
                .chain(after.keys())
                .filter(|k| self.before.get(*k) != after.get(*k))
                .collect();
            panic!("written outside the destination: {changed:?}");
        }
        // Nothing appeared beside this input's directory either.
        for e in fs::read_dir(SCRATCH).unwrap().flatten() {
            let p = e.path();
            assert!(
                p == self.root,
                "written outside the destination: {}",
                p.display()
            );
        }
    }
}
