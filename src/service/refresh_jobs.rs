//! Stack refreshes as jobs: `POST /v3/stacks/:name/actions/refresh` answers 202 with the
//! `stack.refresh` job's Location (`GET /v3/jobs/:guid`, whose `result` is the report per app
//! once it is COMPLETE), and the service checks every configured stack at start and every
//! `[stacks] refresh_interval`. One refresh of a stack at a time: a request while one runs gets
//! that job, a periodic check skips the stack. A periodic check only starts a refresh when the
//! stack's reference resolves to another digest than the last refresh that went through for
//! every app (at start there is none: every stack is refreshed).

use super::error::{ApiError, ApiResult};
use super::jobs::job_json;
use super::refresh::{current_digest, refresh_stack, AppRebase, Refresh};
use super::Shared;
use crate::store::{self, Job, StoreError};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use std::sync::Mutex;

/// What the service knows of each stack's refreshes (in memory: a restart refreshes them all).
#[derive(Debug, Default)]
pub struct Refreshes {
    stacks: Mutex<HashMap<String, StackRefresh>>,
}

#[derive(Debug, Default)]
struct StackRefresh {
    /// The job of the refresh running now.
    running: Option<String>,
    /// The digest the last refresh without a failed app rebased every app onto.
    settled: Option<String>,
}

impl Refreshes {
    /// Claims `stack` for job `guid`; the running job's guid when there is one.
    fn begin(&self, stack: &str, guid: &str) -> Result<(), String> {
        let mut all = self.stacks.lock().expect("refreshes lock");
        let s = all.entry(stack.to_string()).or_default();
        match &s.running {
            Some(running) => Err(running.clone()),
            None => {
                s.running = Some(guid.to_string());
                Ok(())
            }
        }
    }

    /// The refresh of `stack` ended; `settled`: every app is on that digest.
    fn end(&self, stack: &str, settled: Option<String>) {
        let mut all = self.stacks.lock().expect("refreshes lock");
        let s = all.entry(stack.to_string()).or_default();
        s.running = None;
        if settled.is_some() {
            s.settled = settled;
        }
    }

    fn running(&self, stack: &str) -> bool {
        let all = self.stacks.lock().expect("refreshes lock");
        all.get(stack).is_some_and(|s| s.running.is_some())
    }

    fn settled(&self, stack: &str) -> Option<String> {
        let all = self.stacks.lock().expect("refreshes lock");
        all.get(stack).and_then(|s| s.settled.clone())
    }
}

/// Releases the stack's claim however the refresh's task ends (a panic included).
struct Claim {
    state: Shared,
    stack: String,
    settled: Option<String>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.state.refreshes.end(&self.stack, self.settled.take());
    }
}

/// `POST /v3/stacks/:name/actions/refresh`: 202, Location of the refresh's job (the running one
/// if there is one), the job as body.
pub async fn refresh(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<Response> {
    if !state.config.stacks.contains_key(&name) {
        return Err(ApiError::not_found("Stack"));
    }
    let guid = start(&state, &name).await?;
    let job = state
        .db
        .call(move |c| store::get_job(c, &guid))
        .await?
        .ok_or_else(|| ApiError::internal("the refresh's job is gone"))?;
    let base = super::apps::base(&state);
    let location = format!("{base}/v3/jobs/{}", job.guid);
    let body = Json(job_json(&job, &base));
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], body).into_response())
}

/// Starts a refresh of stack `name` as a job (or finds the one running): its guid.
async fn start(state: &Shared, name: &str) -> Result<String, StoreError> {
    let job = Job::start("stack.refresh", Vec::new()).owned_by(&state.queue.replica);
    if let Err(running) = state.refreshes.begin(name, &job.guid) {
        return Ok(running);
    }
    let claim = Claim {
        state: state.clone(),
        stack: name.to_string(),
        settled: None,
    };
    let j = job.clone();
    state.db.call(move |c| store::insert_job(c, &j)).await?;
    tokio::spawn(run(claim, job.guid.clone()));
    Ok(job.guid)
}

/// The refresh itself; the job ends COMPLETE with the report (apps that failed are in it), or
/// FAILED when the stack could not be resolved.
async fn run(mut claim: Claim, guid: String) {
    let state = claim.state.clone();
    let name = claim.stack.clone();
    let outcome = refresh_stack(&state, &name).await;
    let (error, result) = match &outcome {
        Ok(r) => {
            log(&name, &guid, r);
            let failed = r.apps.iter().any(|a| matches!(a, AppRebase::Failed { .. }));
            claim.settled = (!failed).then(|| r.digest.clone());
            (None, serde_json::to_string(r).ok())
        }
        Err(e) => {
            tracing::warn!(stack = %name, job = %guid, "stack refresh failed: {e}");
            (Some(e.clone()), None)
        }
    };
    let ended = state
        .db
        .call(move |c| store::finish_job_with(c, &guid, error.as_deref(), result.as_deref()))
        .await;
    if let Err(e) = ended {
        tracing::warn!(stack = %name, "recording the end of a stack refresh: {e}");
    }
}

fn log(name: &str, guid: &str, r: &Refresh) {
    for app in &r.apps {
        let what = serde_json::json!(app);
        tracing::info!(stack = %name, job = %guid, digest = %r.digest, "stack refresh: {what}");
    }
}

/// Checks every stack at start, then every `refresh_interval` (never when it is off).
pub async fn watch(state: Shared) {
    check_all(&state).await;
    let Some(every) = state.config.refresh_interval else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    loop {
        tick.tick().await;
        check_all(&state).await;
    }
}

/// Starts a refresh of every stack whose reference moved since its last settled refresh.
async fn check_all(state: &Shared) {
    for name in state.config.stacks.keys() {
        if state.refreshes.running(name) {
            tracing::debug!(stack = %name, "stack check: a refresh is running");
            continue;
        }
        let digest = match current_digest(state, name).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(stack = %name, "stack check: {e}");
                continue;
            }
        };
        if state.refreshes.settled(name).as_deref() == Some(digest.as_str()) {
            tracing::debug!(stack = %name, %digest, "stack check: unchanged");
            continue;
        }
        match start(state, name).await {
            Ok(job) => tracing::info!(stack = %name, %digest, %job, "stack check: refreshing"),
            Err(e) => tracing::warn!(stack = %name, "stack check: starting a refresh: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refresh_of_a_stack_at_a_time_and_the_settled_digest_kept() {
        let r = Refreshes::default();
        assert_eq!(r.begin("busybox", "j1"), Ok(()));
        assert_eq!(
            r.begin("busybox", "j2"),
            Err("j1".into()),
            "the running job"
        );
        assert_eq!(r.begin("debian", "j3"), Ok(()), "another stack");
        assert!(r.running("busybox"));
        r.end("busybox", Some("sha256:aa".into()));
        assert!(!r.running("busybox"));
        assert_eq!(r.settled("busybox").as_deref(), Some("sha256:aa"));
        // A refresh with a failed app does not forget the last settled digest.
        assert_eq!(r.begin("busybox", "j4"), Ok(()));
        r.end("busybox", None);
        assert_eq!(r.settled("busybox").as_deref(), Some("sha256:aa"));
        assert_eq!(r.settled("debian"), None);
    }
}
