//! API errors in Cloud Foundry's v3 shape: `{"errors":[{"code":…,"title":"CF-…","detail":"…"}]}`
//! with CF's codes and HTTP statuses.

use axum::http::StatusCode;
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

    /// 401 CF-NotAuthenticated (10002).
    pub fn not_authenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            10002,
            "CF-NotAuthenticated",
            "Authentication error",
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
        eprintln!("dropship: the disk is full: {what} could not be stored");
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

    /// 500 CF-ServerError (10001); the detail is logged, not shown.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        eprintln!("dropship: internal error: {detail}");
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
        let body = serde_json::json!({
            "errors": [{"code": self.code, "title": self.title, "detail": self.detail}]
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

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
    fn a_full_disk_is_507() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let wrapped = zip::result::ZipError::Io(full);
        assert_eq!(ApiError::storage("x", wrapped).status.as_u16(), 507);
        let other = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(ApiError::storage("x", other).status.as_u16(), 500);
    }
}
