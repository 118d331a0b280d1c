//! podman to run the images, skopeo to read them.

use super::*;

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
        // Its own credentials (podman wants the file to exist).
        std::fs::write(dir.path().join("auth.json"), "{\"auths\": {}}\n").unwrap();
        Podman { dir }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"))
            .arg("--runtime")
            .arg("/usr/sbin/runc")
            .args(["--cgroup-manager=cgroupfs", "--storage-driver=vfs"])
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"));
        c
    }

    /// `podman login` to a plain-HTTP registry (credentials kept in this podman's own dir).
    pub fn login(self, registry: &str, user: &str, password: &str) -> Podman {
        let mut c = self.cmd();
        c.args([
            "login",
            "--tls-verify=false",
            "--password-stdin",
            "-u",
            user,
            registry,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "podman login {registry}: {}",
            text(&out)
        );
        self
    }

    /// Runs `image` detached with PORT=`port` on the host network.
    pub fn run(&self, image: &str, port: u16) -> Container<'_> {
        let name = format!("dropship-test-{}", free_port());
        progress(format_args!("podman run {image} as {name}"));
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

/// `skopeo copy` of `src` (a plain-HTTP registry's `docker://...`) into the OCI layout `dir`
/// (tag `copy`): skopeo checks every blob's digest; `context` is added to a failure.
pub fn skopeo_copy(src: &str, dir: &Path, context: &str) {
    require("skopeo", "skopeo");
    let dest = format!("oci:{}:copy", dir.display());
    let o = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false", src, &dest])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo copy {src}: {}\n{context}",
        text(&o)
    );
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
