//! A build's life in the service's log: one `build` span per build, its guid (with the app and
//! stack) as fields, and in it the events `build queued`, `staging started`, `image pushed`,
//! `build staged` or `build failed` (with CF's error text). The pipeline's own reports (stage
//! timings, warnings such as retried requests, blobs) reach the log through [`Traced`], which
//! enters the span on whichever thread reports, and still go to the build's staging log.

use super::logs::BuildLog;
use crate::failure::BuildFailure;
use crate::report::{Event, Reporter, SharedReporter};
use crate::store::{App, Build};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn, Span};

/// The span a build's work runs in.
pub fn span(build: &Build, app: &App) -> Span {
    tracing::info_span!("build", guid = %build.guid, app = %app.name, stack = %build.stack)
}

pub fn queued(package_guid: &str) {
    info!(package = %package_guid, "build queued");
}

pub fn started(replica: &str, attempt: u32) {
    info!(replica, attempt, "staging started");
}

/// `image` names it by digest (or by the tag the droplet's guid makes in a configured registry).
pub fn pushed(image: &str, digest: &str) {
    info!(image = %image, digest = %digest, "image pushed");
}

pub fn staged(droplet_guid: &str, took: Duration) {
    info!(droplet = %droplet_guid, seconds = took.as_secs_f64(), "build staged");
}

/// `reason` is CF's error text, e.g. `NoAppDetectedError - ...`.
pub fn failed(failure: &BuildFailure, took: Duration) {
    let (kind, error) = (failure.kind, failure.cf_error());
    warn!(%kind, %error, seconds = took.as_secs_f64(), "build failed");
}

/// The build's log as the pipeline's reporter, with the pipeline's events mirrored into the
/// current (build) span: warnings at `warn`, stages and blobs at `debug`. Buildpack output stays
/// in the staging log only.
pub fn reporter(log: &Arc<BuildLog>) -> SharedReporter {
    Arc::new(Traced {
        log: log.clone(),
        span: Span::current(),
    })
}

struct Traced {
    log: Arc<BuildLog>,
    span: Span,
}

impl Reporter for Traced {
    fn event(&self, event: Event) {
        {
            let _in_build = self.span.enter();
            match &event {
                Event::Warn(message) => warn!("{message}"),
                Event::Stage { stage, took } => {
                    debug!(
                        stage = stage.name(),
                        seconds = took.as_secs_f64(),
                        "stage done"
                    )
                }
                Event::BlobDone {
                    digest,
                    size,
                    outcome,
                } => debug!(digest = %digest, size, outcome = ?outcome, "blob in the target"),
                Event::Info(message) => debug!("{message}"),
                Event::Output(_)
                | Event::BlobStart { .. }
                | Event::BlobProgress { .. }
                | Event::Progress { .. } => {}
            }
        }
        self.log.event(event);
    }
}
