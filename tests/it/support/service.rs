//! `dropship serve` as a process.

use super::*;

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
    /// Variables set for the process (e.g. AWS_*), after DROPSHIP_* ones are removed.
    env: Vec<(String, String)>,
}

/// Whether services run on PostgreSQL (DROPSHIP_TEST_ON_POSTGRES=1), else SQLite.
pub fn on_postgres() -> bool {
    std::env::var("DROPSHIP_TEST_ON_POSTGRES").is_ok_and(|v| v == "1")
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
        Service::start_env(dir, data, args, &[])
    }

    /// As [`Service::start_with`], with these variables set (`DROPSHIP_*` ones too).
    pub fn start_with_env(args: &[&str], env: Vec<(String, String)>) -> Service {
        let dir = tempdir();
        let data = dir.path().join("data");
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        Service::start_env(dir, data, args, &env)
    }

    /// As [`Service::start_on`], with variables `env` set for the process.
    pub fn start_env(
        dir: tempfile::TempDir,
        data: PathBuf,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Service {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        // DROPSHIP_TEST_ON_POSTGRES=1: every service keeps its metadata in a database of its
        // own on one shared PostgreSQL server (the same tests, on the other engine).
        if on_postgres() && !args.iter().any(|a| a == "--database") {
            args.extend(["--database".to_string(), super::postgres::shared_database()]);
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let port = free_port();
        let child = Service::spawn(&dir, &data, port, &args, &env);
        let mut s = Service {
            child,
            port,
            dir,
            data,
            args,
            env,
        };
        // A port free when picked can be taken before dropship binds it (dropship binds
        // before it touches the data dir, so starting again on another port is clean).
        for _ in 0..3 {
            if s.wait_healthy() {
                return s;
            }
            s.port = free_port();
            s.child = Service::spawn(&s.dir, &s.data, s.port, &s.args, &s.env);
        }
        panic!(
            "dropship serve could not bind a free port three times:\n{}",
            s.log()
        )
    }

    fn spawn(
        dir: &tempfile::TempDir,
        data: &Path,
        port: u16,
        args: &[String],
        env: &[(String, String)],
    ) -> Child {
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
        c.envs(env.iter().map(|(k, v)| (k, v)));
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

    /// Another replica: `dropship serve` on this one's data dir (and database, if any) with
    /// `args`, on its own port and with its own log.
    pub fn replica(&self, args: &[&str]) -> Service {
        let mut args = args.to_vec();
        if let Some(i) = self.args.iter().position(|a| a == "--database") {
            args.extend(["--database", &self.args[i + 1]]);
        }
        Service::start_on(tempdir(), self.data.clone(), &args)
    }

    /// Sends `signal` to dropship's process group (e.g. SIGSTOP, then SIGCONT: a replica that
    /// stops answering for a while).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the process group created for this service.
        unsafe {
            libc::kill(-(self.child.id() as i32), signal);
        }
    }

    /// kill -9 of dropship (and whatever it started), then a new process on the same data dir
    /// and port.
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        self.restart();
    }

    /// kill -9 of dropship and whatever it started; returns once its port no longer answers
    /// (10 s at most). [`Service::restart`] starts it again.
    pub fn kill9(&mut self) {
        // SAFETY: kill(2) on the process group created for this service.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while http_status(self.port, "/healthz").is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM to the service; waits for it to exit (a minute at most): its status and how long
    /// it took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let sent = Instant::now();
        // SAFETY: kill(2) on the process group created for this service (`timeout` passes the
        // signal on, too).
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGTERM);
        }
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            assert!(
                sent.elapsed() < Duration::from_secs(60),
                "still running a minute after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the service again on its data dir and port (after [`Service::terminate`] or
    /// [`Service::kill9`]).
    pub fn restart(&mut self) {
        self.child = Service::spawn(&self.dir, &self.data, self.port, &self.args, &self.env);
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
