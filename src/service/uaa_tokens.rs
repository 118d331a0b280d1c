//! The tokens `/oauth/token` answers with: an access token (UAA's claims, the configured
//! lifetime) and, for a user, a refresh token (a JWT too, its `jti` ending in `-r`).

use super::jwt::{now, Claims, Keys};
use super::uaa::{no_store, UaaError};
use super::users::user_id;
use super::Shared;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

const USER_SCOPES: &[&str] = &[
    "openid",
    "uaa.user",
    "cloud_controller.read",
    "cloud_controller.write",
    "cloud_controller.admin",
];
const CLIENT_SCOPES: &[&str] = &[
    "cloud_controller.read",
    "cloud_controller.write",
    "cloud_controller.admin",
];

fn claims(state: &Shared, iss: &str, client: &str, grant: &str, user: Option<&str>) -> Claims {
    let scopes = if user.is_some() {
        USER_SCOPES
    } else {
        CLIENT_SCOPES
    };
    let t = now();
    Claims {
        jti: uuid::Uuid::new_v4().simple().to_string(),
        sub: user.map(user_id).unwrap_or_else(|| client.to_string()),
        scope: scopes.iter().map(|s| s.to_string()).collect(),
        client_id: client.into(),
        cid: client.into(),
        azp: client.into(),
        grant_type: grant.into(),
        user_id: user.map(user_id),
        user_name: user.map(str::to_string),
        origin: user.map(|_| "uaa".to_string()),
        iat: t,
        exp: t + state.config.auth.token_ttl.as_secs(),
        iss: iss.into(),
        zid: "uaa".into(),
        aud: json!(["cloud_controller", "openid", client]),
    }
}

/// The token answer: an access token, and a refresh token for a user.
pub(super) fn issue(
    state: &Shared,
    keys: &Keys,
    client: &str,
    grant: &str,
    user: Option<&str>,
) -> Result<Response, UaaError> {
    let failed = |e: String| {
        tracing::error!("signing a token: {e}");
        UaaError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Signing failed",
        )
    };
    let access = claims(state, &keys.issuer, client, grant, user);
    let mut body = json!({
        "access_token": keys.sign(&access).map_err(failed)?,
        "token_type": "bearer",
        "expires_in": state.config.auth.token_ttl.as_secs(),
        "scope": access.scope.join(" "),
        "jti": access.jti,
    });
    if user.is_some() {
        let mut refresh = access.clone();
        refresh.jti = format!("{}-r", access.jti);
        refresh.exp = refresh.iat + state.config.auth.refresh_ttl.as_secs();
        body["refresh_token"] = Value::String(keys.sign(&refresh).map_err(failed)?);
    }
    Ok((StatusCode::OK, no_store(), Json(body)).into_response())
}
