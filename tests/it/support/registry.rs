//! A real CNCF distribution registry (`docker-registry`, Debian's package of it) on loopback.

use super::*;

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

    /// The paths in the gzipped tar layer `digest` as the registry stores it.
    pub fn layer_paths(&self, digest: &str) -> Vec<String> {
        let hex = digest.trim_start_matches("sha256:");
        let data = self
            .dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        let file = std::fs::File::open(&data).unwrap_or_else(|e| panic!("{data:?}: {e}"));
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(file));
        a.entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect()
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

/// The digests an embedded registry's repository `index` references, its blobs read from data
/// dir `data`: each manifest, its config and its layers, in index order.
pub fn layout_digests(data: &Path, index: &serde_json::Value) -> Vec<String> {
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let mut all = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap().to_string();
        let manifest = read(data.join(format!("registry-blobs/sha256/{}", &d[7..])));
        all.push(d);
        all.push(manifest["config"]["digest"].as_str().unwrap().to_string());
        let layers = manifest["layers"].as_array().unwrap();
        all.extend(
            layers
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_string()),
        );
    }
    all
}
