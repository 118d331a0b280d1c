//! An HTTP client for `dropship serve` in tests: CF v3 calls, uploads, and helpers for the
//! apps they send (zips, SHA-1s, the resource-match shape).

pub use super::client::Client;
use super::*;
pub use dropship::cfapi::{self as cf, BuildState, PackageState};
use serde_json::{json, Value};
use sha1::Digest as _;
use std::io::{Cursor, Write};
use std::time::{Duration, Instant};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub struct Api {
    pub svc: Service,
    pub http: reqwest::Client,
    /// Sent as `Authorization: Bearer` when set.
    pub token: Option<String>,
}

/// A file of a test app: path, content, mode.
pub type F<'a> = (&'a str, &'a [u8], u32);

pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(data))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// A deflated zip of `files`, names stored exactly as given.
pub fn zip_of(files: &[F]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, mode) in files {
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(*mode);
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The v3 resource-match shape cf push sends.
pub fn v3(path: &str, data: &[u8], mode: &str) -> Value {
    json!({"checksum": {"value": sha1_hex(data)}, "size_in_bytes": data.len(),
           "path": path, "mode": mode})
}

/// `n` pseudo-random (incompressible) bytes.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

impl Api {
    pub fn start(args: &[&str]) -> Api {
        Api::on(Service::start_with(args))
    }

    /// A client of `svc`, without a token.
    pub fn on(svc: Service) -> Api {
        // reqwest is built without a default TLS provider (plain HTTP here, but it insists).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            svc,
            http: reqwest::Client::new(),
            token: None,
        }
    }

    /// As [`Api::start`], with these variables set for the service.
    pub fn start_env(args: &[&str], env: Vec<(String, String)>) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            svc: Service::start_with_env(args, env),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    /// Nothing left in uploads/ or work/ (temp files and dirs of uploads are removed).
    pub fn assert_no_leftovers(&self) {
        for d in ["uploads", "work"] {
            let left: Vec<_> = std::fs::read_dir(self.svc.data_dir().join(d))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().starts_with("upload-"))
                .collect();
            assert!(left.is_empty(), "left in {d}/: {left:?}");
        }
        let tmp: Vec<_> = std::fs::read_dir(self.svc.data_dir().join("packages"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(tmp.is_empty(), "temp files in packages/: {tmp:?}");
    }
}

impl Client for Api {
    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.svc.url(path))
            .json(body)
            .bearer_auth(self.token.clone().unwrap_or_default())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.svc.url(path))
            .bearer_auth(self.token.clone().unwrap_or_default())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn upload(
        &self,
        pkg: &str,
        bits: Option<Vec<u8>>,
        resources: Option<&Value>,
    ) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new();
        if let Some(r) = resources {
            form = form.text("resources", r.to_string());
        }
        if let Some(b) = bits {
            let part = reqwest::multipart::Part::bytes(b)
                .file_name("application.zip")
                .mime_str("application/zip")
                .unwrap();
            form = form.part("bits", part);
        }
        let r = self
            .http
            .post(self.svc.url(&format!("/v3/packages/{pkg}/upload")))
            .bearer_auth(self.token.clone().unwrap_or_default())
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.svc.data_dir()
    }

    fn log(&self) -> String {
        self.svc.log()
    }
}

impl Api {
    /// `PATCH /v3/apps/:app/relationships/current_droplet` to `droplet`; asserts a 200.
    pub async fn set_current_droplet(&self, app: &str, droplet: &str) {
        let path = format!("/v3/apps/{app}/relationships/current_droplet");
        let body = json!({"data": {"guid": droplet}});
        let r = self.http.patch(self.svc.url(&path)).json(&body);
        let r = r.bearer_auth(self.token.clone().unwrap_or_default()).send();
        assert_eq!(r.await.unwrap().status().as_u16(), 200, "PATCH {path}");
    }

    /// POST /v3/builds for `pkg` (with an optional lifecycle); returns the status and body.
    pub async fn build(&self, pkg: &str, lifecycle: Option<Value>) -> (u16, Value) {
        let mut body = json!({"package": {"guid": pkg}});
        if let Some(l) = lifecycle {
            body["lifecycle"] = l;
        }
        self.post_json("/v3/builds", &body).await
    }

    /// A build of `pkg` created (201), STAGING.
    pub async fn stage(&self, pkg: &str) -> cf::Build {
        let body = cf::CreateBuild {
            package: cf::GuidRef::new(pkg),
            lifecycle: None,
        };
        let b: cf::Build = self.post_as("/v3/builds", &body, 201).await;
        assert_eq!(
            (b.state, b.package.guid.as_str()),
            (BuildState::Staging, pkg)
        );
        b
    }

    /// A build of `pkg` staged (the default lifecycle, two minutes at most): its droplet's guid.
    pub async fn staged(&self, pkg: &str) -> String {
        let b = self.stage(pkg).await;
        let b = self.wait_build(&b.guid, Duration::from_secs(120)).await;
        assert_eq!(b.state, BuildState::Staged, "{b:?}\n{}", self.svc.log());
        b.droplet.expect("a staged build's droplet").guid
    }

    /// `PATCH path` with a JSON body: the status and the answer.
    pub async fn patch_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.http.patch(self.svc.url(path)).json(body);
        let r = r.bearer_auth(self.token.clone().unwrap_or_default());
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Polls a build until it is no longer STAGING (panics after `within`).
    pub async fn wait_build(&self, build: &str, within: Duration) -> cf::Build {
        let deadline = Instant::now() + within;
        loop {
            let b: cf::Build = self.get_as(&format!("/v3/builds/{build}")).await;
            if b.state.is_final() {
                return b;
            }
            assert!(
                Instant::now() < deadline,
                "build {build} still staging:\n{}",
                self.svc.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls a package until it is READY or FAILED.
    pub async fn wait_package(&self, pkg: &str) -> cf::Package {
        for _ in 0..600 {
            let p = self.show(pkg).await;
            if matches!(p.state, PackageState::Ready | PackageState::Failed) {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("package {pkg} never became READY");
    }

    /// App, package, upload of `files`: the READY package's guid.
    pub async fn ready_package(&self, name: &str, files: &[F<'_>]) -> (String, String) {
        let app = self.app(name).await;
        let pkg = self.package(&app).await;
        let (s, v) = self.upload(&pkg, Some(zip_of(files)), None).await;
        assert_eq!(s, 200, "{v}");
        let p = self.wait_package(&pkg).await;
        assert_eq!(p.state, PackageState::Ready, "{p:?}");
        (app, pkg)
    }

    /// A GET answered as text, with an optional Accept header.
    pub async fn text(&self, path: &str, accept: Option<&str>) -> (u16, String, String) {
        let mut req = self.http.get(self.svc.url(path));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, ct, r.text().await.unwrap_or_default())
    }
}
