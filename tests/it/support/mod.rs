//! Helpers for the integration tests: the `dropship` binary, a real registry on loopback,
//! stacks (busybox-static, Debian from mmdebstrap), podman to run images, HTTP checks.
//! Missing tools make tests fail with the command that installs them (see .ci/run).
#![allow(dead_code)]

pub mod api;
pub mod bounds;
pub mod staging;
pub mod tap;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dropship"))
}

pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics with how to install `tool` when it is missing.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: apt-get install -y {package} (or run bash .ci/run)"
    );
}

/// A loopback port that was free a moment ago and that no other test of this process was
/// given: tests run in parallel, and two of them handed the same port made one test talk to
/// the other's registry until that one stopped.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Stack blobs and unpacked stacks, shared by all tests (unpacking is atomic per digest).
pub fn stack_cache() -> PathBuf {
    std::env::temp_dir().join("dropship-test-stack-cache")
}

/// Runs `dropship ARGS` with the shared stack cache; returns its output.
pub fn dropship(args: &[&str]) -> Output {
    dropship_env(args, &[])
}

pub fn dropship_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args).env("DROPSHIP_STACK_CACHE", stack_cache());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run dropship")
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs dropship and requires success; returns stdout.
pub fn dropship_ok(args: &[&str]) -> String {
    let o = dropship(args);
    assert!(
        o.status.success(),
        "dropship {args:?} failed:\n{}",
        text(&o)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `dropship build ... --json`, parsed.
pub fn build_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = dropship_ok(&all);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

/// A CNCF distribution registry on a free loopback port, stopped when dropped (and by
/// `timeout` after 30 minutes, should the test process die first).
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with("")
    }

    /// A registry whose config gets `extra` (YAML, top level) appended, e.g. an `auth:` section.
    pub fn start_with(extra: &str) -> Registry {
        require("docker-registry", "docker-registry");
        // A port that was free when picked can be taken (e.g. as the source port of an
        // outgoing connection) before the registry binds it: then try another.
        for _ in 0..3 {
            if let Some(r) = Registry::try_start(extra) {
                return r;
            }
        }
        panic!("docker-registry could not bind a free port three times")
    }

    fn try_start(extra: &str) -> Option<Registry> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{ level: info }}\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n  delete: {{ enabled: true }}\nhttp: {{ addr: 127.0.0.1:{port} }}\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("timeout")
            .args(["1800", "docker-registry", "serve"])
            .arg(&config)
            // Its own process group, so that dropping kills the registry, not only `timeout`.
            .process_group(0)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut r = Registry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Ready when it says it listens on its port and answers there.
        let listening = format!("listening on 127.0.0.1:{port}");
        while !(r.log().contains(&listening)
            && matches!(http_status(port, "/v2/"), Some(200 | 401)))
        {
            if let Some(status) = r.child.try_wait().unwrap() {
                eprintln!(
                    "docker-registry on port {port} exited ({status}):\n{}",
                    r.log()
                );
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "registry did not start:\n{}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(r)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many blob uploads were committed to `repo` so far (PUT .../blobs/uploads/...).
    pub fn blob_uploads(&self, repo: &str) -> usize {
        let needle = format!("\"PUT /v2/{repo}/blobs/uploads/");
        self.log().lines().filter(|l| l.contains(&needle)).count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group created for this registry.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Status of a plain HTTP GET on loopback.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(s, _)| s)
}

/// A minimal HTTP/1.0 GET on 127.0.0.1 (no client library needed).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Polls until GET answers 200 (or `wait` passes); returns the body.
pub fn wait_for_page(port: u16, path: &str, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some((200, body)) = http_get(port, path) {
            return Some(body);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// A busybox-static root filesystem: /bin/busybox, its applets, /etc/passwd with root only
/// (stack import adds vcap, /tmp and /home/vcap).
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    require("busybox", "busybox-static");
    let root = dir.join("busybox-rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    root
}

/// Imports a busybox stack to `target` (e.g. `docker://HOST/stacks/busybox:latest`).
pub fn busybox_stack(dir: &Path, target: &str) -> String {
    let root = busybox_rootfs(dir);
    dropship_ok(&[
        "stack",
        "import",
        root.to_str().unwrap(),
        "--image",
        target,
        "--name",
        "busybox",
    ]);
    target.to_string()
}

/// The Debian rootfs tarball (mmdebstrap: busybox, nodejs, python3, ca-certificates), made
/// once and cached at $DROPSHIP_TEST_DEBIAN_ROOTFS or /var/tmp/dropship-test/debian-bookworm-v2.tar.
pub fn debian_rootfs() -> PathBuf {
    let path = std::env::var_os("DROPSHIP_TEST_DEBIAN_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/dropship-test/debian-bookworm-v2.tar"));
    if path.is_file() {
        return path;
    }
    require("mmdebstrap", "mmdebstrap");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("partial");
    let status = Command::new("mmdebstrap")
        .args([
            // The format is guessed from the file name otherwise, and `.partial` means a directory.
            "--format=tar",
            "--variant=minbase",
            "--include=busybox,nodejs,python3,python3-pip,ca-certificates",
            "bookworm",
        ])
        .arg(&tmp)
        .status()
        .expect("run mmdebstrap");
    assert!(status.success(), "mmdebstrap failed");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// podman with the flags that work on this kind of host (runc, cgroupfs, vfs, host network,
/// no default ulimits), with its own storage so tests don't share state.
pub struct Podman {
    dir: tempfile::TempDir,
}

pub struct Container<'a> {
    podman: &'a Podman,
    pub name: String,
}

impl Podman {
    pub fn new() -> Podman {
        require("podman", "podman runc");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = []\n",
        )
        .unwrap();
        Podman { dir }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .arg("--runtime")
            .arg("/usr/sbin/runc")
            .args(["--cgroup-manager=cgroupfs", "--storage-driver=vfs"])
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"));
        c
    }

    /// Runs `image` detached with PORT=`port` on the host network.
    pub fn run(&self, image: &str, port: u16) -> Container<'_> {
        let name = format!("dropship-test-{}", free_port());
        let out = self
            .cmd()
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "--net=host",
                "--tls-verify=false",
            ])
            .arg("-e")
            .arg(format!("PORT={port}"))
            .arg(image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman run {image} failed:\n{}",
            text(&out)
        );
        Container { podman: self, name }
    }
}

impl Container<'_> {
    pub fn logs(&self) -> String {
        let o = self
            .podman
            .cmd()
            .args(["logs", &self.name])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self
            .podman
            .cmd()
            .args(["rm", "-f", "-t", "2", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `skopeo inspect` (config view) of an image reference such as `docker://HOST/REPO:TAG`.
pub fn skopeo_inspect(reference: &str, raw: bool) -> serde_json::Value {
    require("skopeo", "skopeo");
    let mut c = Command::new("skopeo");
    c.arg("inspect").arg("--tls-verify=false");
    if raw {
        c.arg("--raw");
    }
    let o = c.arg(reference).output().unwrap();
    assert!(
        o.status.success(),
        "skopeo inspect {reference} failed:\n{}",
        text(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Writes a file of `size` pseudo-random (incompressible) bytes without holding it in memory.
pub fn random_file(path: &Path, size: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = [0u8; 8192];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
}

/// Runs a command and reports its peak RSS in KiB (wait4's ru_maxrss).
pub fn run_with_peak_rss(mut cmd: Command) -> (std::process::ExitStatus, u64, String) {
    use std::os::unix::process::ExitStatusExt;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // Read outputs on threads so the child never blocks on a full pipe.
    let mut child = child;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    std::mem::forget(child);
    let stdout = t_out.join().unwrap();
    let stderr = t_err.join().unwrap();
    (
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as u64,
        format!("{stdout}\n{stderr}"),
    )
}

/// Command lines of the running processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            let zombie = std::fs::read_to_string(e.path().join("stat"))
                .unwrap_or_default()
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'));
            if cmd.contains(needle) && !zombie {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// A temporary directory the staging user (uid 2000 when tests run as root) can pass through,
/// as it can /tmp, so that `--work-dir` may point inside it.
pub fn tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    d
}

// --- dropship serve ----------------------------------------------------------------------------

/// `dropship serve` on a free loopback port with a fresh data dir, stopped when dropped (and by
/// `timeout` after 30 minutes, should the test process die first). Started with only
/// `--data-dir` and `--listen` (it makes its own busybox stack); [`Service::start_with`] adds
/// arguments such as `--config FILE` or `--token T`. DROPSHIP_* variables of the test
/// environment are not passed on, so runs do not depend on the shell they come from.
pub struct Service {
    child: Child,
    pub port: u16,
    /// Holds `data/` (the data dir) and `service.log` (the service's stdout and stderr).
    pub dir: tempfile::TempDir,
    /// The data dir: `dir/data` unless started with [`Service::start_on`].
    data: PathBuf,
    args: Vec<String>,
}

impl Service {
    pub fn start() -> Service {
        Service::start_with(&[])
    }

    /// Starts with `args` after `serve --data-dir DIR --listen 127.0.0.1:PORT`; returns once
    /// `/healthz` answers 200 (panics with the log if it exits or takes over two minutes).
    pub fn start_with(args: &[&str]) -> Service {
        let dir = tempdir();
        let data = dir.path().join("data");
        Service::start_on(dir, data, args)
    }

    /// As [`Service::start_with`], with the data dir at `data` (e.g. a small file system).
    pub fn start_on(dir: tempfile::TempDir, data: PathBuf, args: &[&str]) -> Service {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let port = free_port();
        let child = Service::spawn(&dir, &data, port, &args);
        let mut s = Service {
            child,
            port,
            dir,
            data,
            args,
        };
        // A port free when picked can be taken before dropship binds it (dropship binds
        // before it touches the data dir, so starting again on another port is clean).
        for _ in 0..3 {
            if s.wait_healthy() {
                return s;
            }
            s.port = free_port();
            s.child = Service::spawn(&s.dir, &s.data, s.port, &s.args);
        }
        panic!(
            "dropship serve could not bind a free port three times:\n{}",
            s.log()
        )
    }

    fn spawn(dir: &tempfile::TempDir, data: &Path, port: u16, args: &[String]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("service.log"))
            .unwrap();
        let mut c = Command::new("timeout");
        c.arg("1800")
            .arg(bin())
            .arg("serve")
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            // Its own process group, so that dropping kills dropship, not only `timeout`.
            .process_group(0)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("DROPSHIP_") {
                c.env_remove(k);
            }
        }
        c.spawn().expect("start dropship serve")
    }

    /// Waits for `/healthz`; false when dropship exited because its port was taken.
    fn wait_healthy(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(120);
        while http_status(self.port, "/healthz") != Some(200) {
            if let Some(status) = self.child.try_wait().unwrap() {
                if self.log().contains("cannot listen on") {
                    return false;
                }
                panic!(
                    "dropship serve exited ({status}) before answering:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "dropship serve did not answer /healthz within 120 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// kill -9 of dropship (and whatever it started), then a new process on the same data dir
    /// and port.
    pub fn kill9_and_restart(&mut self) {
        // SAFETY: kill(2) on the process group created for this service.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while http_status(self.port, "/healthz").is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Service::spawn(&self.dir, &self.data, self.port, &self.args);
        assert!(
            self.wait_healthy(),
            "port {} was taken:\n{}",
            self.port,
            self.log()
        );
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `base()` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// What the service printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// The pid of dropship itself (the child of `timeout`), e.g. to read /proc/PID/status.
    pub fn pid(&self) -> Option<u32> {
        let t = self.child.id();
        std::fs::read_to_string(format!("/proc/{t}/task/{t}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group created for this service.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Real packages for the language buildpacks' tests, fetched once from the public registries
/// (npm, PyPI) and kept under /var/tmp/dropship-test/vendor: staging itself has no network,
/// so apps vendor their dependencies, as these fixtures do.
pub fn vendor_cache(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let dir = PathBuf::from("/var/tmp/dropship-test/vendor").join(name);
    if dir.join(".complete").is_file() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make(&dir);
    std::fs::write(dir.join(".complete"), "").unwrap();
    dir
}

/// `node_modules` of an app depending on express 4, as `npm install --omit=dev` makes it.
pub fn express_node_modules() -> PathBuf {
    let dir = vendor_cache("express-4", |dir| {
        require("npm", "npm (or the machine's Node.js)");
        std::fs::write(
            dir.join("package.json"),
            r#"{"name":"fixture","version":"1.0.0","private":true}"#,
        )
        .unwrap();
        let o = Command::new("npm")
            .args([
                "install",
                "express@4",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "npm install express failed:\n{}",
            text(&o)
        );
    });
    dir.join("node_modules")
}

/// Wheels for `flask==3.0.3` for the stack's CPython 3.11 on x86_64, as `pip download` makes them.
pub fn flask_wheels() -> PathBuf {
    vendor_cache("flask-3.0.3-cp311", |dir| {
        let o = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "flask==3.0.3",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
            ])
            .args([
                "--platform",
                "manylinux2014_x86_64",
                "--implementation",
                "cp",
                "--disable-pip-version-check",
                "-d",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pip download flask failed:\n{}",
            text(&o)
        );
    })
}

/// Copies a directory tree (fixtures into apps).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    dropship::fsutil::copy_tree(from, to)
        .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
}
