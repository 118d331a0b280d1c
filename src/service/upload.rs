//! (being written) `POST /v3/packages/:guid/upload`.

use super::error::ApiError;
use super::Shared;
use axum::extract::{Path, State};

pub async fn upload(State(_state): State<Shared>, Path(_guid): Path<String>) -> ApiError {
    ApiError::unprocessable("not implemented yet")
}
