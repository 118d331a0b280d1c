//! `dropship serve`'s router in the test process, called with `tower::ServiceExt::oneshot`: for
//! tests of HTTP shapes (status codes, CF error bodies, headers, validation) that need no
//! socket, signal or log of a process. The state is the one `serve` opens
//! (`dropship::service::open`), on a fresh data dir.

use super::client::Client;
use super::*;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request};
use dropship::service::config::{Config, FileConfig, Overrides};
use serde_json::Value;
use tower::ServiceExt as _;

pub struct InProcess {
    router: axum::Router,
    /// Holds `data/` (the data dir) and the config file.
    pub dir: tempfile::TempDir,
    /// Sent as `Authorization: Bearer` when set.
    pub token: Option<String>,
}

/// An answer: status, headers, the whole body.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl InProcess {
    /// With `config` as the text of the config file (TOML; empty for the defaults): the same
    /// data dir layout and default busybox stack as `dropship serve --data-dir DIR`.
    pub async fn start(config: &str) -> InProcess {
        let dir = tempdir();
        let file = dir.path().join("dropship.toml");
        std::fs::write(&file, config).unwrap();
        let file = FileConfig::load(&file).unwrap();
        let overrides = Overrides {
            data_dir: Some(dir.path().join("data")),
            ..Overrides::default()
        };
        let config = Config::resolve(file, overrides, || Some(project_dir().join("buildpacks")))
            .expect("config");
        let state = dropship::service::open(config)
            .await
            .expect("open data dir");
        InProcess {
            router: dropship::service::router(state),
            dir,
            token: None,
        }
    }

    /// A request to `path`, with the token when set.
    pub fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        let r = Request::builder().method(method).uri(path);
        match &self.token {
            Some(t) => r.header(header::AUTHORIZATION, format!("Bearer {t}")),
            None => r,
        }
    }

    /// Runs `req` through the router; reads the whole answer.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let r = self.router.clone().oneshot(req).await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let body = axum::body::to_bytes(r.into_body(), usize::MAX).await;
        Reply {
            status,
            headers,
            body: body.unwrap().to_vec(),
        }
    }

    /// `method path` with `body` of `content_type` and its length, as an HTTP client sends it
    /// (no type: no body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        let body = body.into();
        let mut r = self.request(method, path);
        if let Some(t) = content_type {
            r = r.header(header::CONTENT_TYPE, t);
            r = r.header(header::CONTENT_LENGTH, body.len());
        }
        self.send(r.body(Body::from(body)).unwrap()).await
    }
}

impl Client for InProcess {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.call(Method::GET, path, None, []).await;
        (r.status, r.json())
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .call(
                Method::POST,
                path,
                Some("application/json"),
                body.to_string(),
            )
            .await;
        (r.status, r.json())
    }

    /// As multipart/form-data, the fields as cf push sends them.
    async fn upload(
        &self,
        pkg: &str,
        bits: Option<Vec<u8>>,
        resources: Option<&Value>,
    ) -> (u16, Value) {
        let boundary = "dropship-test-boundary-7d1f";
        let mut body = Vec::new();
        if let Some(r) = resources {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"resources\"\r\n\r\n{r}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some(b) = bits {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"bits\"; \
                     filename=\"application.zip\"\r\nContent-Type: application/zip\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(&b);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let r = self
            .call(
                Method::POST,
                &format!("/v3/packages/{pkg}/upload"),
                Some(&format!("multipart/form-data; boundary={boundary}")),
                body,
            )
            .await;
        (r.status, r.json())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// None: the router in this process has no log of its own.
    fn log(&self) -> String {
        String::new()
    }
}
