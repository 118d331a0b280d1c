//! The API client: base URL, HTTP client, token (only ever in `Authorization: Bearer`), and
//! requests whose failures say what failed: the URL, CF's error title and detail, the cause.
//! Bodies go out and come back as `dropship::cfapi` types.

use super::super::login::{Refresh, Session};
use anyhow::{bail, Context, Result};
use dropship::cfapi::ErrorBody;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// Timeout of the small JSON requests (not of the upload or the log stream).
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The API client: base URL, HTTP client, token, and the stored login's refresh (used once).
pub(super) struct Api {
    pub(super) base: String,
    http: reqwest::Client,
    token: std::sync::Mutex<Option<String>>,
    refresh: tokio::sync::Mutex<Option<Refresh>>,
}

/// CF's 401 code 1000 (CF-InvalidAuthToken): the token expired or is not valid.
#[derive(Debug)]
pub(super) struct InvalidToken(String);

impl std::fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidToken {}

impl Api {
    pub(super) fn new(session: Session) -> Result<Api> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("dropship/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Api {
            base: session.api,
            http,
            token: std::sync::Mutex::new(session.token.filter(|t| !t.is_empty())),
            refresh: tokio::sync::Mutex::new(session.refresh),
        })
    }

    fn token(&self) -> Option<String> {
        self.token.lock().map(|t| t.clone()).unwrap_or(None)
    }

    /// As [`Api::send`]; on CF's 401 code 1000 the stored login is refreshed (once per push)
    /// and the request sent again.
    pub(super) async fn send_again(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        match self.send(method.clone(), url, &build).await {
            Err(e) if e.downcast_ref::<InvalidToken>().is_some() => {
                let Some(refresh) = self.refresh.lock().await.take() else {
                    return Err(e);
                };
                let fresh = refresh.run().await?;
                if let Ok(mut t) = self.token.lock() {
                    *t = Some(fresh);
                }
                self.send(method, url, build).await
            }
            r => r,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request built on `method url` (with the token), and turns connection failures
    /// and non-2xx answers into errors that say what failed.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let mut req = self.http.request(method.clone(), url);
        let token = self.token();
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let resp = match build(req).send().await {
            Ok(r) => r,
            Err(e) => {
                if e.is_connect() {
                    // The innermost cause says it best ("Connection refused", a DNS failure,
                    // a certificate problem).
                    let why = cause_list(&e).pop().unwrap_or_default();
                    bail!("could not reach {url}: {why}");
                }
                let cause = causes(&e);
                if e.is_timeout() {
                    bail!("{method} {url}: no answer in time ({cause})");
                }
                bail!("{method} {url}: {cause}");
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let first = serde_json::from_str::<ErrorBody>(&body)
            .ok()
            .and_then(|e| e.errors.into_iter().next());
        let code = first.as_ref().map(|e| e.code);
        let (title, detail) = match first {
            Some(e) => (e.title, e.detail),
            None => (String::new(), body.trim().chars().take(500).collect()),
        };
        let title = if title.is_empty() {
            String::new()
        } else {
            format!(", {title}")
        };
        let mut msg = format!("{method} {url}: {detail} (HTTP {status}{title})");
        if status == StatusCode::UNAUTHORIZED {
            msg.push_str(if token.is_some() {
                ": the API refused the token"
            } else {
                ": the API wants a token: pass --token or set DROPSHIP_TOKEN, or `dropship login`"
            });
            if code == Some(1000) {
                return Err(InvalidToken(msg).into());
            }
        }
        bail!(msg)
    }

    /// The answer read as `T`; an answer that is not one says so, with its start.
    async fn json_of<T: DeserializeOwned>(method: &Method, url: &str, resp: Response) -> Result<T> {
        let text = resp
            .text()
            .await
            .with_context(|| format!("{method} {url}: reading the answer"))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{method} {url}: the answer is not a {}: {text:.300}",
                short_type_name::<T>()
            )
        })
    }

    pub(super) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path);
        let resp = self
            .send_again(Method::GET, &url, |r| r.timeout(REQUEST_TIMEOUT))
            .await?;
        Self::json_of(&Method::GET, &url, resp).await
    }

    pub(super) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send_json(Method::POST, path, body).await
    }

    pub(super) async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let url = self.url(path);
        let resp = self
            .send_again(method.clone(), &url, |r| {
                r.timeout(REQUEST_TIMEOUT).json(body)
            })
            .await?;
        Self::json_of(&method, &url, resp).await
    }
}

/// `Build` for `dropship::cfapi::build::Build`: what an answer was expected to be.
fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    let base = name.split('<').next().unwrap_or(name);
    base.rsplit("::").next().unwrap_or(base)
}

/// An error's causes, outermost first, without reqwest's repetition of the URL.
pub(super) fn causes(e: &reqwest::Error) -> String {
    cause_list(e).join(": ")
}

fn cause_list(e: &reqwest::Error) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts
}
