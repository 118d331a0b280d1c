//! Blobs streamed from their files, whole or one `Range: bytes=…` of them.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const CHUNK: usize = 256 * 1024;

/// What a `Range` header asks of a blob of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Want {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n`; anything else (several ranges, other
/// units, bad syntax) is ignored as HTTP allows, and the whole blob is sent.
pub fn want(range: Option<&str>, len: u64) -> Want {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Want::Whole;
    };
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Want::Whole;
    };
    let num = |s: &str| {
        s.parse::<u64>()
            .ok()
            .filter(|_| s.bytes().all(|c| c.is_ascii_digit()))
    };
    match (a, b) {
        ("", n) => match num(n) {
            Some(0) => Want::Unsatisfiable,
            Some(_) if len == 0 => Want::Unsatisfiable,
            Some(n) => Want::Part(len - n.min(len), len - 1),
            None => Want::Whole,
        },
        (a, "") => match num(a) {
            Some(a) if a >= len => Want::Unsatisfiable,
            Some(a) => Want::Part(a, len - 1),
            None => Want::Whole,
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a > b => Want::Whole,
            (Some(a), Some(_)) if a >= len => Want::Unsatisfiable,
            (Some(a), Some(b)) => Want::Part(a, b.min(len - 1)),
            _ => Want::Whole,
        },
    }
}

/// The part of a blob of `len` bytes that `headers`' Range asks for: (status, first byte,
/// count); `None`: none can be given ([`unsatisfiable`]).
pub fn part(headers: &HeaderMap, len: u64) -> Option<(StatusCode, u64, u64)> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    match want(range, len) {
        Want::Whole => Some((StatusCode::OK, 0, len)),
        Want::Part(a, b) => Some((StatusCode::PARTIAL_CONTENT, a, b - a + 1)),
        Want::Unsatisfiable => None,
    }
}

/// The 416 for a Range past a blob of `len` bytes.
pub fn unsatisfiable(len: u64) -> Response {
    let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    let v = HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii");
    r.headers_mut().insert(header::CONTENT_RANGE, v);
    r
}

/// A blob's answer: `body` (its `count` bytes from `first`, of `len`) and the headers saying so.
pub fn respond(
    (status, first, count): (StatusCode, u64, u64),
    body: Body,
    len: u64,
    digest: &str,
) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    let text = |s: String| HeaderValue::from_str(&s).expect("ascii");
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, text(count.to_string()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(super::CONTENT_DIGEST, text(digest.to_string()));
    if status == StatusCode::PARTIAL_CONTENT {
        let end = first + count - 1;
        h.insert(
            header::CONTENT_RANGE,
            text(format!("bytes {first}-{end}/{len}")),
        );
    }
    r
}

/// The blob at `path` (known to exist as `digest`), streamed; `None` when it is not there.
pub async fn serve(path: &Path, digest: &str, headers: &HeaderMap) -> Option<Response> {
    let mut file = tokio::fs::File::open(path).await.ok()?;
    let len = file.metadata().await.ok()?.len();
    let Some(wanted) = part(headers, len) else {
        return Some(unsatisfiable(len));
    };
    let (_, first, count) = wanted;
    if first > 0 {
        file.seek(std::io::SeekFrom::Start(first)).await.ok()?;
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file.take(count),
        CHUNK,
    ));
    Some(respond(wanted, body, len, digest))
}

#[cfg(test)]
mod tests {
    use super::{want, Want::*};

    #[test]
    fn ranges() {
        assert_eq!(want(None, 10), Whole);
        assert_eq!(want(Some("bytes=0-3"), 10), Part(0, 3));
        assert_eq!(want(Some("bytes=4-"), 10), Part(4, 9));
        assert_eq!(want(Some("bytes=-3"), 10), Part(7, 9));
        assert_eq!(want(Some("bytes=-30"), 10), Part(0, 9));
        assert_eq!(want(Some("bytes=5-100"), 10), Part(5, 9));
        assert_eq!(want(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(want(Some("bytes=10-12"), 10), Unsatisfiable);
        assert_eq!(want(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(want(Some("bytes=0-0"), 0), Unsatisfiable);
        for ignored in [
            "bytes=3-1",
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=+1-2",
            "bytes=x",
        ] {
            assert_eq!(want(Some(ignored), 10), Whole, "{ignored}");
        }
    }
}
