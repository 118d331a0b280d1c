//! API errors in Cloud Foundry's v3 shape: `{"errors":[{"code":…,"title":"CF-…","detail":"…"}]}`
//! with CF's codes and HTTP statuses. Responses that were not made here (axum's 405, extractor
//! rejections) are given the same shape by [`shape`].

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub title: &'static str,
    pub detail: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, title: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            title,
            detail: detail.into(),
        }
    }

    /// 404 CF-NotFound (10000) "Unknown request": no such endpoint, as Cloud Foundry says it.
    pub fn unknown_request() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            10000,
            "CF-NotFound",
            "Unknown request",
        )
    }

    /// 405 for a known path and another method. Cloud Foundry has no 405 (its router answers
    /// 404 CF-NotFound, 10000, "Unknown request"): the status stays HTTP's, with an `Allow`
    /// header (axum's), the code is CF's for an unknown request and the title names the status.
    pub fn method_not_allowed(method: &Method, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            10000,
            "CF-MethodNotAllowed",
            format!("Unknown request: {path} does not take {method} (see the Allow header)"),
        )
    }

    /// 404 CF-ResourceNotFound (10010), e.g. "App not found".
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            10010,
            "CF-ResourceNotFound",
            format!("{what} not found"),
        )
    }

    /// 422 CF-UnprocessableEntity (10008).
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            10008,
            "CF-UnprocessableEntity",
            detail,
        )
    }

    /// 400 CF-MessageParseError (1001).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            1001,
            "CF-MessageParseError",
            detail,
        )
    }

    /// 400 CF-BadQueryParameter (10005): a list's `page`, `per_page`, `order_by` or filter.
    pub fn bad_query(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            10005,
            "CF-BadQueryParameter",
            detail,
        )
    }

    /// 401 CF-NotAuthenticated (10002).
    pub fn not_authenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            10002,
            "CF-NotAuthenticated",
            "Authentication error",
        )
    }

    /// 401 CF-InvalidAuthToken (1000): a JWT that is expired, tampered with or not ours.
    pub fn invalid_auth_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            1000,
            "CF-InvalidAuthToken",
            "Invalid Auth Token",
        )
    }

    /// 413 CF-RequestEntityTooLarge (... CF answers uploads over its limit with 413).
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            10003,
            "CF-RequestEntityTooLarge",
            detail,
        )
    }

    /// 507 when the data dir's file system is full. Cloud Foundry has no error of its own for
    /// this: the title says what happened, the code is CF's server error's.
    pub fn disk_full(what: &str) -> Self {
        tracing::error!("the disk is full: {what} could not be stored");
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            10001,
            "CF-InsufficientStorage",
            format!("The server's disk is full: {what} could not be stored. Try again later."),
        )
    }

    /// 507 when `e` (or one of its causes) is the disk being full, else 500.
    pub fn storage(what: &str, e: impl std::error::Error + 'static) -> Self {
        if is_disk_full(&e) {
            Self::disk_full(what)
        } else {
            Self::internal(format!("{what}: {e}"))
        }
    }

    /// 503 CF-ServiceUnavailable (10015): the database cannot be reached now; the client may
    /// try again.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!("unavailable: {detail}");
        Self::service_unavailable("its database cannot be reached")
    }

    /// 503 CF-ServiceUnavailable (10015): the blob store did not answer (detail logged).
    pub fn blobs_unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!("blob store: {detail}");
        Self::service_unavailable("its blob store cannot be reached")
    }

    fn service_unavailable(what: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            10015,
            "CF-ServiceUnavailable",
            format!("The service is temporarily unavailable: {what}. Try again."),
        )
    }

    /// 500 CF-ServerError (10001); the detail is logged, not shown.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            10001,
            "CF-ServerError",
            "An unknown error occurred.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = crate::cfapi::ErrorBody {
            errors: vec![crate::cfapi::CfError {
                code: self.code,
                title: self.title.to_string(),
                detail: self.detail,
            }],
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            return ApiError::unavailable(e);
        }
        ApiError::internal(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Gives error responses made outside [`ApiError`] (axum's 404 and 405, extractor rejections:
/// anything 4xx/5xx that is not JSON) CF's shape, with the rejection's text as the detail and
/// their other headers kept (axum adds `Allow` to a 405 further out). The registry endpoint
/// keeps the distribution spec's errors: there only a 405 is reshaped, as `UNSUPPORTED`.
pub async fn shape(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let registry = path == "/v2" || path.starts_with("/v2/");
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    let error = status.is_client_error() || status.is_server_error();
    if !error || is_json || (registry && status != StatusCode::METHOD_NOT_ALLOWED) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let mut shaped = if registry {
        let detail = format!("{path} does not take {method}");
        let error = serde_json::json!({"code": "UNSUPPORTED", "message": detail, "detail": null});
        (status, Json(serde_json::json!({ "errors": [error] }))).into_response()
    } else {
        reshaped(status, &method, &path, text).into_response()
    };
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.headers_mut().append(name, value.clone());
        }
    }
    shaped
}

/// The CF error for a status that came with `text` (axum's rejection message) or nothing.
fn reshaped(status: StatusCode, method: &Method, path: &str, text: String) -> ApiError {
    let detail = |fallback: &str| {
        if text.is_empty() {
            fallback.to_string()
        } else {
            text.clone()
        }
    };
    match status {
        StatusCode::NOT_FOUND => ApiError::unknown_request(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::method_not_allowed(method, path),
        StatusCode::UNAUTHORIZED => ApiError::not_authenticated(),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(detail("The request is too large")),
        s if s.is_server_error() => ApiError {
            status: s,
            ..ApiError::internal(detail("no detail"))
        },
        s => ApiError {
            status: s,
            ..ApiError::bad_request(detail(s.canonical_reason().unwrap_or("Bad request")))
        },
    }
}

/// Whether an error or one of its causes is ENOSPC or EDQUOT.
pub fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_cf_error_json() {
        let resp = ApiError::not_found("App").into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["errors"][0]["code"], 10010);
        assert_eq!(v["errors"][0]["title"], "CF-ResourceNotFound");
        assert_eq!(v["errors"][0]["detail"], "App not found");
    }

    #[test]
    fn router_answers_get_cf_codes() {
        let get = Method::GET;
        let e = reshaped(StatusCode::NOT_FOUND, &get, "/v3/x", String::new());
        assert_eq!(
            (e.code, e.title, e.detail.as_str()),
            (10000, "CF-NotFound", "Unknown request")
        );
        let e = reshaped(
            StatusCode::METHOD_NOT_ALLOWED,
            &get,
            "/v3/builds",
            String::new(),
        );
        assert_eq!((e.status.as_u16(), e.title), (405, "CF-MethodNotAllowed"));
        assert!(
            e.detail.contains("/v3/builds does not take GET"),
            "{}",
            e.detail
        );
        let why = "Failed to deserialize query string".to_string();
        let e = reshaped(StatusCode::BAD_REQUEST, &get, "/v3/apps", why.clone());
        assert_eq!((e.code, e.detail), (1001, why));
        let e = reshaped(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &get,
            "/v3/apps",
            String::new(),
        );
        assert_eq!((e.status.as_u16(), e.title), (415, "CF-MessageParseError"));
    }

    #[test]
    fn a_full_disk_is_507() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let wrapped = zip::result::ZipError::Io(full);
        assert_eq!(ApiError::storage("x", wrapped).status.as_u16(), 507);
        let other = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(ApiError::storage("x", other).status.as_u16(), 500);
    }
}
