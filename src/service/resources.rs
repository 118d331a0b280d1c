//! (being written) `POST /v3/resource_matches`.

use super::error::ApiError;
use super::Shared;
use axum::extract::State;

pub async fn matches(State(_state): State<Shared>) -> ApiError {
    ApiError::unprocessable("not implemented yet")
}
