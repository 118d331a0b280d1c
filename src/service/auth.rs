//! API tokens. With tokens configured, every endpoint but `/healthz` wants
//! `Authorization: Bearer <token>`; the registry endpoint (`/v2/`) also takes HTTP Basic with a
//! token as the password, so `podman login` and `skopeo --creds` work. Tokens are compared in
//! constant time and never logged.

use super::error::ApiError;
use super::Shared;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request presents: a bearer token, or (for `/v2/`) a Basic password.
fn presented(req: &Request, allow_basic: bool) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(t) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        return Some(t.trim().to_string());
    }
    if allow_basic {
        let encoded = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text.split_once(':').map(|(_, p)| p.to_string());
    }
    None
}

/// What anyone may read: health and discovery (as Cloud Foundry's root and `/v3/info`, which
/// clients read before they log in).
const PUBLIC: &[&str] = &["/healthz", "/", "/v3", "/v3/info", "/v2/info"];

pub async fn check(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let tokens = &state.config.tokens;
    let path = req.uri().path();
    if tokens.is_empty() || PUBLIC.contains(&path) {
        return next.run(req).await;
    }
    let registry = path.starts_with("/v2/") || path == "/v2";
    let ok = presented(&req, registry).is_some_and(|t| {
        tokens
            .iter()
            .any(|known| constant_time_eq(t.as_bytes(), known.as_bytes()))
    });
    if ok {
        return next.run(req).await;
    }
    if registry {
        // Registry clients look for a challenge, then retry with Basic credentials.
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": null}]})),
        )
            .into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"dropship\""),
        );
        return resp;
    }
    ApiError::not_authenticated().into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_tokens() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
