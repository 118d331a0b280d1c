//! Request bodies, bounded: small JSON bodies are read whole up to [`JSON_LIMIT`] (the
//! [`JsonBody`] extractor), big ones stream through a parser on a blocking thread
//! ([`parse_streaming`]) and are never held whole. Both answer CF's 413 past their cap, without
//! reading further.

use super::error::{ApiError, ApiResult};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use futures_util::StreamExt;
use std::io::{self, Read};
use tokio::sync::mpsc;

/// Largest body of the JSON endpoints (apps, packages, builds, relationships).
pub const JSON_LIMIT: u64 = 1 << 20;

fn too_large(cap: u64) -> ApiError {
    ApiError::too_large(format!(
        "The request body is larger than the {cap} bytes allowed"
    ))
}

fn declared(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The body of a JSON endpoint, at most [`JSON_LIMIT`] bytes.
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        read_capped(&parts.headers, body, JSON_LIMIT)
            .await
            .map(JsonBody)
    }
}

/// Every 413 closes its connection (`Connection: close`): the rest of the refused body is never
/// read, so a client that kept the connection for its next request would write into a socket the
/// server is closing (a broken pipe instead of an answer).
pub async fn close_after_413(mut resp: axum::response::Response) -> axum::response::Response {
    if resp.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        (resp.headers_mut()).insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// The request body, at most `cap` bytes (413 beyond, without reading further).
pub async fn read_capped(headers: &HeaderMap, body: Body, cap: u64) -> ApiResult<Bytes> {
    if declared(headers).is_some_and(|n| n > cap) {
        return Err(too_large(cap));
    }
    let mut buf = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(read_error)?;
        if (buf.len() + chunk.len()) as u64 > cap {
            return Err(too_large(cap));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.into())
}

fn read_error(e: axum::Error) -> ApiError {
    ApiError::bad_request(format!("reading the request body: {e}"))
}

/// Feeds the body (at most `cap` bytes) to `parse` on a blocking thread as it arrives; a few
/// chunks are in flight at most. When `parse` returns early (a bad entry), the rest of the body
/// is not read.
pub async fn parse_streaming<T: Send + 'static>(
    headers: &HeaderMap,
    body: Body,
    cap: u64,
    parse: impl FnOnce(&mut dyn Read) -> T + Send + 'static,
) -> ApiResult<T> {
    if declared(headers).is_some_and(|n| n > cap) {
        return Err(too_large(cap));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let parser = tokio::task::spawn_blocking(move || {
        let mut reader = io::BufReader::with_capacity(
            64 * 1024,
            ChannelReader {
                rx,
                cur: Bytes::new(),
            },
        );
        parse(&mut reader)
    });
    let mut total = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(read_error)?;
        total += chunk.len() as u64;
        if total > cap {
            return Err(too_large(cap));
        }
        if tx.send(chunk).await.is_err() {
            break; // the parser has stopped: its answer says why
        }
    }
    drop(tx);
    parser.await.map_err(ApiError::internal)
}

/// Reads the chunks a channel delivers; the end of the channel is the end of the body.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of `n` chunks of `size` bytes, without a declared length.
    fn chunked(n: usize, size: usize) -> Body {
        let chunks = (0..n).map(move |_| Ok::<_, io::Error>(Bytes::from(vec![b' '; size])));
        Body::from_stream(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn bodies_without_a_length_are_counted_as_they_arrive() {
        let h = HeaderMap::new();
        assert_eq!(
            read_capped(&h, chunked(4, 100), 400).await.unwrap().len(),
            400
        );
        let e = read_capped(&h, chunked(5, 100), 400).await.unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (413, 10003));
        let count = |r: &mut dyn Read| io::copy(r, &mut io::sink()).unwrap();
        assert_eq!(
            parse_streaming(&h, chunked(8, 50), 400, count).await,
            Ok(400)
        );
        let e = parse_streaming(&h, chunked(9, 50), 400, count).await;
        assert_eq!(e.unwrap_err().status.as_u16(), 413);
    }
}
