//! `/v3/packages`: create (type bits, for an app) and show. Uploading is in `upload/`.

use super::apps::{base, parse_body};
use super::error::{ApiError, ApiResult};
use super::{json, Shared};
use crate::cfapi as cf;
use crate::store::{self, Package, PackageState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

pub async fn create(
    State(state): State<Shared>,
    super::body::JsonBody(body): super::body::JsonBody,
) -> ApiResult<(StatusCode, Json<cf::Package>)> {
    let req: cf::CreatePackage = parse_body(&body)?;
    if req.kind != "bits" {
        return Err(ApiError::unprocessable(format!(
            "Type must be one of 'bits' (got '{}'): docker packages are not supported",
            req.kind
        )));
    }
    let app_guid = req.relationships.app.data.guid;
    let t = store::now();
    let pkg = Package {
        guid: store::new_guid(),
        app_guid: app_guid.clone(),
        state: PackageState::AwaitingUpload,
        error: None,
        checksum: None,
        created_at: t.clone(),
        updated_at: t,
    };
    let row = pkg.clone();
    let found = state
        .db
        .call(move |c| {
            if store::get_app(c, &row.app_guid)?.is_none() {
                return Ok(false);
            }
            store::insert_package(c, &row)?;
            Ok(true)
        })
        .await?;
    if !found {
        return Err(ApiError::unprocessable(
            "App is invalid. Ensure it exists and you have access to it.",
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(json::package(&pkg, &base(&state))),
    ))
}

pub async fn get(state: &Shared, guid: String) -> ApiResult<Package> {
    state
        .db
        .call(move |c| store::get_package(c, &guid))
        .await?
        .ok_or_else(|| ApiError::not_found("Package"))
}

pub async fn show(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::Package>> {
    let pkg = get(&state, guid).await?;
    Ok(Json(json::package(&pkg, &base(&state))))
}
