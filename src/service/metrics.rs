//! `GET /metrics` in the Prometheus text format: builds by state, staging and push durations,
//! bytes uploaded and pushed, queue length.

use super::Shared;
use crate::pipeline::BuildOutcome;
use crate::report::Stage;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    /// Builds waiting for a slot.
    pub queued: AtomicUsize,
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
    let _ = writeln!(s, "# HELP dropship_build_queue_length Builds waiting for a slot.\n# TYPE dropship_build_queue_length gauge");
    let _ = writeln!(
        s,
        "dropship_build_queue_length {}",
        m.queued.load(Ordering::Relaxed)
    );
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
