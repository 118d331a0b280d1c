//! An S3-protocol server on loopback: PyPI's moto in server mode (pinned in
//! tests/s3/requirements.txt), one bucket made for the test. moto does not check request
//! signatures; it speaks the rest of what a blob store uses (multipart uploads, ranged reads,
//! listings), and starts in about a second (s3s-fs, which checks signatures, takes ten minutes
//! to compile here).

use super::*;

pub struct S3Server {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    pub bucket: String,
}

impl S3Server {
    pub fn start() -> S3Server {
        let venv = venv(
            "tests/s3/requirements.txt",
            "DROPSHIP_TEST_S3_VENV",
            "s3-venv",
        );
        for _ in 0..3 {
            if let Some(s) = S3Server::try_start(&venv) {
                return s;
            }
        }
        panic!("moto_server could not bind a free port three times")
    }

    fn try_start(venv: &Path) -> Option<S3Server> {
        let dir = tempdir();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = Command::new("timeout")
            .arg("1800")
            .arg(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .process_group(0)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let mut s = S3Server {
            child,
            port,
            dir,
            bucket: format!("dropship-test-{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_status(port, "/").is_none() {
            if s.child.try_wait().unwrap().is_some() {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let made = http_request(port, "PUT", &format!("/{}", s.bucket)).map(|(st, _)| st);
        assert_eq!(made, Some(200), "creating the bucket:\n{}", s.log());
        Some(s)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The variables dropship reads to reach this server (any key pair: moto takes all).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "dropship-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "dropship-test-secret".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// [`S3Server::env`] and DROPSHIP_BLOB_STORE naming this bucket under `prefix`: what a
    /// service needs to keep its blobs here.
    pub fn service_env(&self, prefix: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = (self.env().into_iter())
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let url = format!("s3://{}/{prefix}", self.bucket);
        env.push(("DROPSHIP_BLOB_STORE".into(), url));
        env
    }

    /// The keys in the bucket, with their sizes (a ListObjectsV2 read by hand).
    pub fn objects(&self) -> Vec<(String, u64)> {
        let (_, body) = http_get(self.port, &format!("/{}?list-type=2", self.bucket)).unwrap();
        let mut out = Vec::new();
        for c in body.split("<Contents>").skip(1) {
            let field = |name: &str| {
                let open = format!("<{name}>");
                let start = c.find(&open).map(|i| i + open.len())?;
                let end = c[start..].find('<')? + start;
                Some(c[start..end].to_string())
            };
            out.push((
                field("Key").unwrap(),
                field("Size").unwrap().parse().unwrap(),
            ));
        }
        out
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
