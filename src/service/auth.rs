//! Who may call the API. With static tokens, users or an external issuer configured, every
//! endpoint but discovery and login wants `Authorization: Bearer <token>`, the token being a
//! static one or a JWT of the configured issuer (an invalid JWT gets CF's 401
//! CF-InvalidAuthToken, code 1000, which tells clients to refresh). The registry (`/v2/`) also
//! takes HTTP Basic with a static token as the password, or a configured user's name and
//! password, so `podman login` and `skopeo --creds` work. Tokens are compared in constant time
//! and never logged.

use super::error::ApiError;
use super::jwt::Keys;
use super::Shared;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::sync::Arc;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a request presents.
enum Presented {
    Bearer(String),
    /// HTTP Basic (registry only): user and password.
    Basic(String, String),
}

fn presented(req: &Request, allow_basic: bool) -> Option<Presented> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(t) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        return Some(Presented::Bearer(t.trim().to_string()));
    }
    if allow_basic {
        let encoded = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pw) = text.split_once(':')?;
        return Some(Presented::Basic(user.to_string(), pw.to_string()));
    }
    None
}

/// What anyone may read: health, discovery (as Cloud Foundry's root and `/v3/info`, which
/// clients read before they log in) and the login endpoints.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/",
    "/v3",
    "/v3/info",
    "/v2/info",
    "/login",
    "/oauth/token",
    "/token_keys",
    "/token_key",
];

/// The verdict on a request's credentials.
enum Verdict {
    Ok,
    /// No credentials, or wrong static ones.
    Missing,
    /// A JWT that does not verify.
    InvalidJwt,
}

fn is_static(state: &State<Shared>, t: &str) -> bool {
    (state.config.tokens.iter()).any(|known| constant_time_eq(t.as_bytes(), known.as_bytes()))
}

fn bearer(state: &State<Shared>, t: &str) -> Verdict {
    if is_static(state, t) {
        return Verdict::Ok;
    }
    // A JWT is three base64url parts; anything else is a (wrong) static token.
    if t.split('.').count() != 3 {
        return Verdict::Missing;
    }
    match state.keys.as_ref().map(|k| k.verify(t)) {
        Some(Ok(c)) if !c.is_refresh() => Verdict::Ok,
        _ => Verdict::InvalidJwt,
    }
}

async fn basic(state: &State<Shared>, user: String, pw: String) -> Verdict {
    if is_static(state, &pw) {
        return Verdict::Ok;
    }
    if state.config.auth.users.is_empty() {
        return Verdict::Missing;
    }
    let s = state.0.clone();
    let ok = tokio::task::spawn_blocking(move || s.config.auth.users.verify(&user, &pw)).await;
    if ok.unwrap_or(false) {
        Verdict::Ok
    } else {
        Verdict::Missing
    }
}

pub async fn check(state: State<Shared>, req: Request, next: Next) -> Response {
    let on = !state.config.tokens.is_empty() || state.config.auth.is_on();
    let path = req.uri().path();
    if !on || PUBLIC.contains(&path) {
        return next.run(req).await;
    }
    let registry = path.starts_with("/v2/") || path == "/v2";
    let verdict = match presented(&req, registry) {
        None => Verdict::Missing,
        Some(Presented::Bearer(t)) => bearer(&state, &t),
        Some(Presented::Basic(u, p)) => basic(&state, u, p).await,
    };
    match verdict {
        Verdict::Ok => next.run(req).await,
        _ if registry => challenge(),
        Verdict::InvalidJwt => ApiError::invalid_auth_token().into_response(),
        Verdict::Missing => ApiError::not_authenticated().into_response(),
    }
}

/// Registry clients look for a challenge, then retry with Basic credentials.
fn challenge() -> Response {
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": null}]})),
    )
        .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"dropship\""),
    );
    resp
}

/// The JWT keys: an external issuer's public key, else the built-in login's signing key
/// (configured, or made in the data dir at first start); none without login.
pub fn keys(
    config: &super::config::Config,
    paths: &crate::store::Paths,
) -> anyhow::Result<Option<Arc<Keys>>> {
    let auth = &config.auth;
    let keys = if let Some(ext) = &auth.external {
        Keys::external(&ext.public_key, ext.issuer.clone())
    } else if auth.built_in_login() {
        let issuer = format!("http://{}/oauth/token", config.public_address);
        let generated = paths.root.join("token-signing-key.pem");
        Keys::built_in(auth.signing_key.as_deref(), &generated, issuer)
    } else {
        return Ok(None);
    };
    keys.map(|k| Some(Arc::new(k))).map_err(anyhow::Error::msg)
}

/// How users log in, for the start-up line.
pub fn login_kind(config: &super::config::Config) -> &'static str {
    if config.auth.external.is_some() {
        "external issuer"
    } else if config.auth.built_in_login() {
        "built-in"
    } else {
        "none"
    }
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
