//! A real PostgreSQL server (Debian's, `apt-get install postgresql`) on loopback: a throw-away
//! cluster made by `initdb` for the test, its server a child of the test (killed by pid when
//! dropped), and as root run as the `postgres` user (PostgreSQL refuses root).

use super::*;

pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// Debian's PostgreSQL binaries (the newest major installed).
fn bin_dir() -> PathBuf {
    let mut majors: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    majors.sort();
    match majors.last() {
        Some(m) => PathBuf::from(format!("/usr/lib/postgresql/{m}/bin")),
        None => panic!("PostgreSQL is not installed: apt-get install -y postgresql"),
    }
}

/// `program` as the `postgres` user when the tests run as root (set in the child itself, so
/// the pid the test holds is the server's), else as is.
fn as_owner(program: PathBuf) -> Command {
    let mut c = Command::new(program);
    if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = postgres_user();
        c.uid(uid).gid(gid);
    }
    c
}

fn postgres_user() -> (u32, u32) {
    let name = std::ffi::CString::new("postgres").unwrap();
    // SAFETY: getpwnam returns a pointer into static storage or null; read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "no postgres user: apt-get install -y postgresql"
    );
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempdir();
        if unsafe { libc::geteuid() } == 0 {
            let (uid, gid) = postgres_user();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let out = as_owner(bin_dir().join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(dir.path().join("data"))
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb: {}", text(&out));
        let mut pg = Postgres {
            child: None,
            port: 0,
            dir,
        };
        for _ in 0..3 {
            pg.port = free_port();
            if pg.run() {
                return pg;
            }
        }
        panic!(
            "postgres could not bind a free port three times:\n{}",
            pg.log()
        )
    }

    /// Starts the server on `self.port`; false when the port was taken.
    fn run(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .unwrap();
        let mut c = as_owner(bin_dir().join("postgres"));
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "max_connections=200"])
            .process_group(0)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(c.spawn().expect("start postgres"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(bin_dir().join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ready {
                return true;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                if self.log().contains("could not bind") {
                    return false;
                }
                panic!("postgres exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs SQL as the superuser.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// Runs SQL as the superuser in database `db`; rows as `a|b` lines.
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let out = Command::new(bin_dir().join("psql"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {sql}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE \"{name}\""));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGINT);
            }
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.run(),
            "postgres could not bind its port again:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }
}

/// The server shared by every service of this test process (DROPSHIP_TEST_ON_POSTGRES=1),
/// killed when the process exits.
static SHARED: std::sync::OnceLock<std::sync::Mutex<Postgres>> = std::sync::OnceLock::new();
static SHARED_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn kill_shared() {
    let pid = SHARED_PID.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// A new database on the shared server; its URL.
pub fn shared_database() -> String {
    let pg = SHARED.get_or_init(|| {
        let pg = Postgres::start();
        let pid = pg.child.as_ref().map_or(0, |c| c.id() as i32);
        SHARED_PID.store(pid, std::sync::atomic::Ordering::SeqCst);
        unsafe {
            libc::atexit(kill_shared);
        }
        std::sync::Mutex::new(pg)
    });
    let name = format!("t{}", uuid_like());
    pg.lock().unwrap_or_else(|p| p.into_inner()).database(&name)
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}
