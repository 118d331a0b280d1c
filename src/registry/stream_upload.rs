//! A blob upload that starts before the blob's digest is known (distribution spec, chunked
//! upload): POST opens a session, each PATCH sends the next bytes (`Content-Range`), PUT
//! `?digest=` sends the last ones and commits, DELETE abandons. Used to send a layer while it
//! is still being compressed; every failure is the caller's cue to upload the finished file.

use super::client::Registry;
use super::RegistryError;
use crate::refs::RegistryRef;
use bytes::Bytes;
use reqwest::{header, Method, StatusCode, Url};

/// Why a streamed upload stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{what}: the registry answered HTTP {status}")]
    Refused { what: &'static str, status: u16 },
    #[error("{what}: {detail}")]
    Broken { what: &'static str, detail: String },
    #[error("{what}: unusable Location {location:?}")]
    Location {
        what: &'static str,
        location: String,
    },
    #[error("the registry holds {held} bytes of the upload, {sent} were sent")]
    Range { sent: u64, held: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// How requests to the registry prove who sends them.
#[derive(Clone)]
pub enum PushAuth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

/// An open upload session: where its next request goes, how many bytes it holds.
pub struct UploadSession {
    http: reqwest::Client,
    auth: PushAuth,
    /// The registry's own URL: credentials go there only, not to a Location elsewhere.
    origin: Url,
    location: Url,
    sent: u64,
}

impl Registry {
    /// Opens an upload session in `r`'s repository (POST .../blobs/uploads/).
    pub async fn start_upload(&self, r: &RegistryRef) -> Result<UploadSession, StreamError> {
        let (http, origin, auth) = self.push_parts(r).await?;
        let url = origin
            .join(&format!("/v2/{}/blobs/uploads/", r.repository))
            .map_err(|_| StreamError::Location {
                what: "starting an upload",
                location: r.repository.clone(),
            })?;
        let mut s = UploadSession {
            http,
            auth,
            origin,
            location: url.clone(),
            sent: 0,
        };
        let what = "starting an upload";
        let res = s.send(s.request(Method::POST, url), what).await?;
        s.next(&res, StatusCode::ACCEPTED, what)?;
        if s.location.path().ends_with("/blobs/uploads/") {
            // No Location: the registry gave no session to send to.
            return Err(StreamError::Location {
                what,
                location: String::new(),
            });
        }
        Ok(s)
    }
}

impl UploadSession {
    /// Bytes the registry holds.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Sends the next bytes of the blob (PATCH).
    pub async fn append(&mut self, chunk: Bytes) -> Result<(), StreamError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let what = "sending a chunk";
        let len = chunk.len() as u64;
        let req = self
            .request(Method::PATCH, self.location.clone())
            .header(header::CONTENT_RANGE, content_range(self.sent, len))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(chunk);
        let res = self.send(req, what).await?;
        self.next(&res, StatusCode::ACCEPTED, what)?;
        let held = res
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok());
        check_range(held, self.sent + len)?;
        self.sent += len;
        Ok(())
    }

    /// Sends the last bytes and commits the blob as `digest` (PUT ?digest=).
    pub async fn finish(mut self, last: Bytes, digest: &str) -> Result<u64, StreamError> {
        let what = "committing the upload";
        let mut url = self.location.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let len = last.len() as u64;
        let req = self
            .request(Method::PUT, url)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(last);
        let res = self.send(req, what).await?;
        if res.status() != StatusCode::CREATED {
            let status = res.status().as_u16();
            self.abort().await;
            return Err(StreamError::Refused { what, status });
        }
        self.sent += len;
        Ok(self.sent)
    }

    /// Abandons the session (DELETE), best effort: the registry expires it anyway.
    pub async fn abort(&self) {
        let req = self.request(Method::DELETE, self.location.clone());
        let _ = req.send().await;
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let ours = same_origin(&self.origin, &url);
        let b = self.http.request(method, url);
        match &self.auth {
            _ if !ours => b,
            PushAuth::None => b,
            PushAuth::Basic { user, password } => b.basic_auth(user, Some(password)),
            PushAuth::Bearer(t) => b.bearer_auth(t),
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &'static str,
    ) -> Result<reqwest::Response, StreamError> {
        req.send().await.map_err(|e| StreamError::Broken {
            what,
            // Upload URLs carry session tokens: not in messages.
            detail: e.without_url().to_string(),
        })
    }

    /// Checks the status and moves to the Location the registry gave.
    fn next(
        &mut self,
        res: &reqwest::Response,
        want: StatusCode,
        what: &'static str,
    ) -> Result<(), StreamError> {
        if res.status() != want {
            let status = res.status().as_u16();
            return Err(StreamError::Refused { what, status });
        }
        let location = res
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok());
        if let Some(l) = location {
            self.location = resolve(&self.location, l).ok_or_else(|| StreamError::Location {
                what,
                location: l.chars().take(200).collect(),
            })?;
        }
        Ok(())
    }
}

/// `Content-Range` of `len` bytes from `start`: `start-end`, both inclusive.
pub fn content_range(start: u64, len: u64) -> String {
    format!("{start}-{}", start + len - 1)
}

/// Checks the registry's `Range: 0-<last>` (if it sent one) against `sent` bytes.
fn check_range(held: Option<&str>, sent: u64) -> Result<(), StreamError> {
    let Some(h) = held else { return Ok(()) };
    let last = h.trim().trim_start_matches("bytes=").strip_prefix("0-");
    match last.and_then(|l| l.parse::<u64>().ok()) {
        Some(l) if l + 1 == sent => Ok(()),
        _ => Err(StreamError::Range {
            sent,
            held: h.chars().take(60).collect(),
        }),
    }
}

/// A `Location` (absolute, or relative to the URL it answered) as a URL.
pub fn resolve(current: &Url, location: &str) -> Option<Url> {
    let url = current.join(location).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn content_ranges_are_inclusive_and_follow_each_other() {
        assert_eq!(content_range(0, 4 << 20), "0-4194303");
        assert_eq!(content_range(4 << 20, 1), "4194304-4194304");
        let mut start = 0;
        for len in [5, 7, 1] {
            let r = content_range(start, len);
            let (a, b) = r.split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!((a, b - a + 1), (start, len));
            start += len;
        }
    }

    #[test]
    fn the_registry_range_must_hold_what_was_sent() {
        assert!(check_range(None, 10).is_ok());
        assert!(check_range(Some("0-9"), 10).is_ok());
        assert!(check_range(Some("bytes=0-9"), 10).is_ok());
        for bad in ["0-8", "0-10", "1-9", "junk", ""] {
            let e = check_range(Some(bad), 10).unwrap_err();
            assert!(
                matches!(e, StreamError::Range { sent: 10, .. }),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn locations_are_absolute_or_relative_to_the_last_request() {
        let at = url("http://127.0.0.1:5000/v2/apps/x/blobs/uploads/");
        let rel = resolve(&at, "/v2/apps/x/blobs/uploads/abc?_state=s%3D").unwrap();
        assert_eq!(
            rel.as_str(),
            "http://127.0.0.1:5000/v2/apps/x/blobs/uploads/abc?_state=s%3D"
        );
        let abs = resolve(&at, "https://blobs.example.com/up/1?sig=z").unwrap();
        assert_eq!(abs.as_str(), "https://blobs.example.com/up/1?sig=z");
        assert!(resolve(&at, "file:///etc/passwd").is_none());
        assert!(resolve(&at, "http://[::1").is_none());
    }

    #[test]
    fn credentials_stay_with_the_registry() {
        let reg = url("https://r.example.com/v2/");
        assert!(same_origin(
            &reg,
            &url("https://r.example.com:443/v2/x/blobs/uploads/1")
        ));
        assert!(!same_origin(&reg, &url("https://storage.example.com/up/1")));
        assert!(!same_origin(&reg, &url("http://r.example.com/v2/")));
        assert!(!same_origin(&reg, &url("https://r.example.com:8443/v2/")));
    }
}
