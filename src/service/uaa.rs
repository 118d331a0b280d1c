//! The built-in UAA-compatible login: `GET /login` (prompts, links), `GET /token_keys` (the
//! signing key as a JWK set) and `POST /oauth/token` with the `password`, `refresh_token` and
//! `client_credentials` grants, answering in UAA's JSON (errors as `{"error", "error_description"}`).
//!
//! Clients: `cf` with an empty secret is public (as UAA's) and may use the password and refresh
//! grants only; clients in `[clients]` authenticate with their secret (HTTP Basic or form
//! fields) and may use every grant. Other clients, or `client_credentials` for `cf`, are refused.

use super::uaa_tokens::issue;
use super::Shared;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::collections::HashMap;

/// The UAA version `/login` reports: the UAA API dropship answers like (the cf CLI wants 4.26.0
/// or later).
pub const UAA_VERSION: &str = "4.30.0";

/// Largest `/oauth/token` body: a few form fields.
const FORM_LIMIT: u64 = 64 << 10;
/// A refusal in UAA's shape.
pub struct UaaError(
    pub(super) StatusCode,
    pub(super) &'static str,
    pub(super) &'static str,
);

impl IntoResponse for UaaError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.1, "error_description": self.2});
        (self.0, no_store(), Json(body)).into_response()
    }
}

pub(super) fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

const BAD_CREDENTIALS: UaaError =
    UaaError(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials");
const BAD_CLIENT: UaaError = UaaError(
    StatusCode::UNAUTHORIZED,
    "invalid_client",
    "Bad client credentials",
);

/// `GET /login`, as UAA answers it (the cf CLI reads the prompts).
pub async fn login(State(state): State<Shared>) -> Response {
    if !state.config.auth.built_in_login() {
        return super::error::ApiError::unknown_request().into_response();
    }
    let b = super::apps::base(&state);
    Json(json!({
        "app": {"version": UAA_VERSION},
        "zone_name": "uaa",
        "entityID": "dropship",
        "commit_id": "dropship",
        "idpDefinitions": {},
        "links": {"uaa": b, "login": b, "passwd": null, "register": null},
        "prompts": {"username": ["text", "Email"], "password": ["password", "Password"]},
        "timestamp": timestamp(),
    }))
    .into_response()
}

fn timestamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// `GET /token_keys`: the public key tokens are signed with.
pub async fn token_keys(State(state): State<Shared>) -> Response {
    match state.keys.as_ref().and_then(|k| k.jwk()) {
        Some(jwk) => Json(json!({"keys": [jwk]})).into_response(),
        None => super::error::ApiError::unknown_request().into_response(),
    }
}

/// `GET /token_key`: the same key alone.
pub async fn token_key(State(state): State<Shared>) -> Response {
    match state.keys.as_ref().and_then(|k| k.jwk()) {
        Some(jwk) => Json(jwk.clone()).into_response(),
        None => super::error::ApiError::unknown_request().into_response(),
    }
}

/// The client a request names: HTTP Basic `id:secret`, else the `client_id`/`client_secret`
/// form fields.
fn client(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<(String, String)> {
    use base64::Engine;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|d| String::from_utf8(d).ok());
    if let Some((id, secret)) = basic.as_deref().and_then(|t| t.split_once(':')) {
        return Some((id.to_string(), secret.to_string()));
    }
    let id = form.get("client_id")?;
    Some((
        id.clone(),
        form.get("client_secret").cloned().unwrap_or_default(),
    ))
}

/// Verifies a secret off the runtime (argon2 is slow on purpose).
async fn verify(state: &Shared, users: bool, name: &str, secret: &str) -> bool {
    let (state, name, secret) = (state.clone(), name.to_string(), secret.to_string());
    tokio::task::spawn_blocking(move || {
        let table = if users {
            &state.config.auth.users
        } else {
            &state.config.auth.clients
        };
        table.verify(&name, &secret)
    })
    .await
    .unwrap_or(false)
}

/// Which client this is: configured (secret checked) or the public `cf`.
enum Client {
    Configured,
    PublicCf,
}

async fn authenticate(state: &Shared, id: &str, secret: &str) -> Result<Client, UaaError> {
    if state.config.auth.clients.contains(id) {
        return match verify(state, false, id, secret).await {
            true => Ok(Client::Configured),
            false => Err(BAD_CLIENT),
        };
    }
    if id == "cf" && secret.is_empty() {
        return Ok(Client::PublicCf);
    }
    Err(BAD_CLIENT)
}

/// `POST /oauth/token`.
pub async fn token(State(state): State<Shared>, req: Request) -> Response {
    match token_inner(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn token_inner(state: Shared, req: Request) -> Result<Response, UaaError> {
    let Some(keys) = state.keys.clone().filter(|k| k.issues()) else {
        return Ok(super::error::ApiError::unknown_request().into_response());
    };
    let (parts, body) = req.into_parts();
    let form = read_form(&parts.headers, body).await?;
    let (id, secret) = client(&parts.headers, &form).ok_or(UaaError(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Full authentication is required to access this resource",
    ))?;
    let client = authenticate(&state, &id, &secret).await?;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let grant = field("grant_type");
    let user = match (grant, &client) {
        ("password", _) => {
            let (name, pw) = (field("username"), field("password"));
            if name.is_empty() || pw.is_empty() {
                return Err(UaaError(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                ));
            }
            if !verify(&state, true, name, pw).await {
                tracing::info!(client = %id, "refused a password login");
                return Err(BAD_CREDENTIALS);
            }
            Some(name.to_string())
        }
        ("refresh_token", _) => refreshed_user(&state, &keys, &id, field("refresh_token"))?,
        ("client_credentials", Client::Configured) => None,
        ("client_credentials", Client::PublicCf) => {
            return Err(UaaError(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "Unauthorized grant type: client_credentials",
            ))
        }
        ("", _) => {
            return Err(UaaError(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "A grant_type is required",
            ))
        }
        _ => {
            return Err(UaaError(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant type",
            ))
        }
    };
    issue(&state, &keys, &id, grant, user.as_deref())
}

/// The user of a valid refresh token issued to this client (still configured).
fn refreshed_user(
    state: &Shared,
    keys: &super::jwt::Keys,
    client: &str,
    token: &str,
) -> Result<Option<String>, UaaError> {
    let invalid = || {
        tracing::info!(client, "refused a refresh token");
        UaaError(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Invalid refresh token",
        )
    };
    let claims = keys.verify(token).map_err(|_| invalid())?;
    let user = (claims.user_name.clone()).filter(|u| state.config.auth.users.contains(u));
    if !claims.is_refresh() || claims.cid != client || user.is_none() {
        return Err(invalid());
    }
    Ok(user)
}

async fn read_form(headers: &HeaderMap, body: Body) -> Result<HashMap<String, String>, UaaError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(UaaError(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = super::body::read_capped(headers, body, FORM_LIMIT)
        .await
        .map_err(|_| {
            UaaError(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "The body is too large",
            )
        })?;
    let mut form = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        form.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    Ok(form)
}
