//! `DELETE /v3/apps/:guid` and `GET /v3/jobs/:guid`. An app's deletion is CF's asynchronous
//! `app.delete` job: the rows go in one transaction (refused while a build of the app is
//! staging), then its files — package zips, droplet tgzs, build logs and their stamps, its buildpack cache, and
//! its repository of the embedded registry when no other app shares it — and the job ends
//! COMPLETE (or FAILED naming what could not be removed) before the 202 answer, so a client
//! polling the job finds it done.
//!
//! With a shared blob store, the same go from it too (a repository: its index).
//!
//! Not removed: blobs of the embedded registry's shared store (another image may use them;
//! there is no garbage collection yet), and images pushed to an external registry.

use super::apps::base;
use super::error::{ApiError, ApiResult};
use super::Shared;
use crate::cfapi as cf;
use crate::store::{self, Deleted, Job, NotDeleted, Paths};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::path::PathBuf;

/// CF's job, plus `result` (what the job reports) when it has one.
pub(crate) fn job_json(j: &Job, base: &str) -> cf::Job {
    // A manifest that cannot be applied is the client's to fix, as in CF.
    let (code, title) = match j.operation.as_str() {
        "space.apply_manifest" => (10008, "CF-UnprocessableEntity"),
        _ => (10001, "CF-ServerError"),
    };
    let errors = j.error.iter().map(|e| cf::CfError {
        code,
        title: title.into(),
        detail: e.clone(),
    });
    let warnings = j
        .warnings
        .iter()
        .map(|w| cf::job::Warning { detail: w.clone() });
    cf::Job {
        guid: j.guid.clone(),
        operation: j.operation.clone(),
        state: j.state,
        errors: errors.collect(),
        warnings: warnings.collect(),
        result: (j.result.as_deref()).map(|r| serde_json::from_str(r).unwrap_or_else(|_| r.into())),
        created_at: j.created_at.clone(),
        updated_at: j.updated_at.clone(),
        links: cf::job::JobLinks {
            this: cf::Link::to(base, &format!("/v3/jobs/{}", j.guid)),
        },
    }
}

pub async fn show(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Json<cf::Job>> {
    let job = state
        .db
        .call(move |c| store::get_job(c, &guid))
        .await?
        .ok_or_else(|| ApiError::not_found("Job"))?;
    Ok(Json(job_json(&job, &base(&state))))
}

pub async fn delete_app(
    State(state): State<Shared>,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let job = Job::start("app.delete", Vec::new()).owned_by(&state.queue.replica);
    let (app, j) = (guid.clone(), job.clone());
    let deleted = state
        .db
        .call(move |c| store::delete_app(c, &app, &j))
        .await?
        .map_err(|e| match e {
            NotDeleted::Missing => ApiError::not_found("App"),
            NotDeleted::Staging(build) => ApiError::unprocessable(format!(
                "the app has a build staging ({build}): delete it once the build has ended"
            )),
        })?;
    let mut files = files_of(&state.paths, &guid, &deleted);
    let repos = unshared_repositories(&state, &deleted).await?;
    for repo in &repos {
        files.push(state.paths.repository(repo));
    }
    let error = tokio::task::spawn_blocking(move || remove_all(&files))
        .await
        .map_err(ApiError::internal)?;
    let error = error.or(remove_blobs(&state, &deleted, &repos).await);
    let (g, e) = (job.guid.clone(), error.clone());
    state
        .db
        .call(move |c| store::finish_job(c, &g, e.as_deref()))
        .await?;
    let location = format!("{}/v3/jobs/{}", base(&state), job.guid);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)]).into_response())
}

/// The files of a deleted app's rows.
fn files_of(paths: &Paths, app: &str, d: &Deleted) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = d.packages.iter().map(|p| paths.package(p)).collect();
    files.extend(d.droplets.iter().map(|g| paths.droplet(g)));
    files.extend(d.builds.iter().map(|b| paths.build_log(b)));
    let stamps = d
        .builds
        .iter()
        .map(|b| super::log_cache::stamps_path(&paths.build_log(b)));
    files.extend(stamps);
    files.push(paths.caches().join(app));
    files
}

/// The same from a shared blob store (packages, droplets, logs, repositories' indexes); the
/// first failure, named.
async fn remove_blobs(state: &Shared, d: &Deleted, repos: &[String]) -> Option<String> {
    use crate::blob::Key;
    if !state.blobs.is_shared() {
        return None;
    }
    let mut keys = Vec::new();
    keys.extend(d.packages.iter().filter_map(|g| Key::package(g).ok()));
    keys.extend(d.droplets.iter().filter_map(|g| Key::droplet(g).ok()));
    keys.extend(d.builds.iter().filter_map(|g| Key::build_log(g).ok()));
    keys.extend(repos.iter().filter_map(|r| Key::registry_index(r).ok()));
    let mut first = None;
    for key in keys {
        if let Err(e) = state.blobs.delete(&key).await {
            tracing::warn!("deleting an app: {e}");
            first.get_or_insert_with(|| format!("cannot remove {key}: {e}"));
        }
    }
    first
}

/// The embedded registry's repositories of a deleted app (its name's, and those its droplets'
/// images are in, should it have been renamed) that no remaining app or droplet uses (names
/// that differ only in case share one, as registries want lowercase).
async fn unshared_repositories(state: &Shared, d: &Deleted) -> ApiResult<Vec<String>> {
    let ours = format!("{}/", state.config.public_address);
    let repo_of = |image: &str| -> Option<String> {
        let rest = image.strip_prefix(&ours)?;
        Some(rest.split(['@', ':']).next()?.to_string())
    };
    let mut repos: Vec<String> = d.images.iter().filter_map(|i| repo_of(i)).collect();
    repos.push(super::builds::repository(&d.name));
    repos.sort();
    repos.dedup();
    let (apps, images) = state
        .db
        .call(|c| Ok((store::list_apps(c, None)?, store::droplet_images(c)?)))
        .await?;
    let used: Vec<String> = apps
        .iter()
        .map(|a| super::builds::repository(&a.name))
        .chain(images.iter().filter_map(|i| repo_of(i)))
        .collect();
    Ok(repos.into_iter().filter(|r| !used.contains(r)).collect())
}

/// Removes files and directories (missing ones are fine); the first failure, named.
fn remove_all(paths: &[PathBuf]) -> Option<String> {
    let mut first = None;
    for p in paths {
        let r = match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
            Ok(_) => std::fs::remove_file(p),
            Err(_) => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!("deleting an app: cannot remove {}: {e}", p.display());
            first.get_or_insert_with(|| format!("cannot remove {}: {e}", p.display()));
        }
    }
    first
}
