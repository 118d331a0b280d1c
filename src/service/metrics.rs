//! `GET /metrics` in the Prometheus text format: builds by state, staging and push durations,
//! bytes uploaded and pushed, the build queue (its length, this replica's leases and retries).

use super::Shared;
use crate::pipeline::BuildOutcome;
use crate::report::Stage;
use crate::store::queue;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    pub bytes_uploaded: AtomicU64,
    pub bytes_pushed: AtomicU64,
    staging_ms: AtomicU64,
    push_ms: AtomicU64,
    build_ms: AtomicU64,
    builds_timed: AtomicU64,
}

impl Metrics {
    /// Records a finished build's timings and pushed bytes.
    pub fn observe(&self, out: &BuildOutcome, total: Duration) {
        let ms = |stage: Stage| out.timings.get(stage).map_or(0, |d| d.as_millis() as u64);
        self.staging_ms
            .fetch_add(ms(Stage::Staging), Ordering::Relaxed);
        self.push_ms.fetch_add(ms(Stage::Push), Ordering::Relaxed);
        self.build_ms
            .fetch_add(total.as_millis() as u64, Ordering::Relaxed);
        self.builds_timed.fetch_add(1, Ordering::Relaxed);
        self.bytes_pushed
            .fetch_add(out.push.bytes_uploaded, Ordering::Relaxed);
    }
}

pub async fn render(State(state): State<Shared>) -> impl IntoResponse {
    let counts = state
        .db
        .call(|c| crate::store::count_builds(c))
        .await
        .unwrap_or_default();
    let replica = state.queue.replica.clone();
    let me = replica.clone();
    let (depth, held) = state
        .db
        .call(move |c| Ok((queue::depth(c)?, queue::held(c, &me)?)))
        .await
        .unwrap_or_default();
    let m = &state.metrics;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP dropship_builds Builds by state.\n# TYPE dropship_builds gauge"
    );
    for st in crate::store::BuildState::ALL {
        let _ = writeln!(
            s,
            "dropship_builds{{state=\"{st}\"}} {}",
            counts.get(&st).copied().unwrap_or(0)
        );
    }
    queue_metrics(&mut s, &replica, (depth, held), &state.queue.retries);
    let secs = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1000.0;
    let n = m.builds_timed.load(Ordering::Relaxed);
    for (name, help, v) in [
        (
            "dropship_staging_seconds",
            "Time spent running buildpacks, summed over staged builds.",
            &m.staging_ms,
        ),
        (
            "dropship_push_seconds",
            "Time spent pushing images, summed over staged builds.",
            &m.push_ms,
        ),
        (
            "dropship_build_seconds",
            "Wall time of staged builds, queue excluded.",
            &m.build_ms,
        ),
    ] {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} summary\n{name}_sum {}\n{name}_count {n}",
            secs(v)
        );
    }
    for (name, help, v) in [
        (
            "dropship_uploaded_bytes_total",
            "Bytes received by package uploads.",
            &m.bytes_uploaded,
        ),
        (
            "dropship_pushed_bytes_total",
            "Bytes of blobs uploaded to registries.",
            &m.bytes_pushed,
        ),
    ] {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            v.load(Ordering::Relaxed)
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s)
}

/// The queue as the database has it (every replica answers the same), and this replica's
/// leases and retries, labelled with its id.
fn queue_metrics(s: &mut String, replica: &str, (depth, held): (u64, u64), retries: &AtomicU64) {
    let _ = writeln!(
        s,
        "# HELP dropship_build_queue_length Builds waiting for a worker of any replica.\n\
         # TYPE dropship_build_queue_length gauge\ndropship_build_queue_length {depth}"
    );
    let label = replica.replace('\\', "\\\\").replace('"', "\\\"");
    let _ = writeln!(
        s,
        "# HELP dropship_build_leases_held Builds this replica stages now.\n\
         # TYPE dropship_build_leases_held gauge\n\
         dropship_build_leases_held{{replica=\"{label}\"}} {held}"
    );
    let _ = writeln!(
        s,
        "# HELP dropship_build_retries_total Builds this replica took over from a replica \
         that stopped answering.\n# TYPE dropship_build_retries_total counter\n\
         dropship_build_retries_total{{replica=\"{label}\"}} {}",
        retries.load(Ordering::Relaxed)
    );
}
