//! What a build reports: the image, the droplet, the stack, the timings per [`Stage`].

use super::package::DropletBlobs;
use super::publish::Published;
use super::stack::ResolvedStack;
use super::stage::Staged;
use crate::image::BuiltImage;
use crate::registry::push::PushReport;
use crate::report::{Event, Reporter, Stage};
use crate::staging::BuildpackMeta;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A layer of the built image, as reported.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerInfo {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// For the droplet's layers: what it holds (e.g. `app dependencies 2/5`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holds: Option<String>,
    /// For the droplet's layers: its blob came from the layer cache, not compressed again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused: Option<bool>,
    /// For the droplet's layers: sent to the registry while it was compressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streamed: Option<bool>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StackInfo {
    pub reference: String,
    pub name: String,
    pub digest: String,
}

/// Seconds per stage: `intake` and `stack` ran at the same time, the others one after the
/// other. Serialized as an object keyed by [`Stage::name`].
#[derive(Debug, Clone, Default)]
pub struct Timings(BTreeMap<Stage, f64>);

impl Timings {
    pub fn get(&self, stage: Stage) -> Option<Duration> {
        self.0.get(&stage).map(|s| Duration::from_secs_f64(*s))
    }
}

impl serde::Serialize for Timings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let by_name: BTreeMap<&str, f64> = self.0.iter().map(|(k, v)| (k.name(), *v)).collect();
        by_name.serialize(s)
    }
}

/// What a build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildOutcome {
    /// The app's name.
    pub name: String,
    /// `REPO@sha256:...` (registry) or `oci:DIR@sha256:...` (layout).
    pub image: String,
    pub digest: String,
    /// The droplet tgz's digest, when it was made (`--droplet`).
    pub droplet_digest: Option<String>,
    pub detected_buildpack: String,
    pub start_command: String,
    pub process_types: BTreeMap<String, String>,
    pub buildpacks: Vec<BuildpackMeta>,
    pub layers: Vec<LayerInfo>,
    pub stack: StackInfo,
    pub timings: Timings,
    pub push: PushReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifests: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub droplet: Option<PathBuf>,
}

/// The parts of a finished build the outcome is made of.
pub(super) struct Parts {
    pub name: String,
    pub stack: ResolvedStack,
    pub staged: Staged,
    pub droplet: DropletBlobs,
    pub built: BuiltImage,
    pub published: Published,
    pub manifests: Option<PathBuf>,
    /// Layers sent to the registry while they were compressed.
    pub streamed: std::collections::HashSet<String>,
    pub timings: Timings,
}

impl From<Parts> for BuildOutcome {
    fn from(p: Parts) -> Self {
        let ours: std::collections::HashMap<&str, _> = p
            .droplet
            .layers
            .iter()
            .map(|l| (l.blob.digest.as_str(), l))
            .collect();
        let layers = p.built.layers.iter().map(|l| {
            let digest = l.digest().to_string();
            let own = ours.get(digest.as_str());
            LayerInfo {
                size: l.size(),
                media_type: l.media_type().to_string(),
                holds: own.map(|o| o.holds.clone()),
                reused: own.map(|o| o.reused),
                streamed: own.map(|_| p.streamed.contains(&digest)),
                digest,
            }
        });
        let layers = layers.collect();
        let (r, stack) = (p.staged.result, &p.stack.stack);
        BuildOutcome {
            name: p.name,
            image: p.published.image,
            digest: p.published.digest,
            droplet_digest: p.droplet.tgz.as_ref().map(|t| t.digest.clone()),
            detected_buildpack: r.detected_buildpack,
            start_command: r.start_command,
            process_types: r.process_types,
            buildpacks: r.buildpacks,
            layers,
            stack: StackInfo {
                reference: stack.reference.to_string(),
                name: stack.name.clone(),
                digest: stack.digest().to_string(),
            },
            timings: p.timings,
            push: p.published.report,
            manifests: p.manifests,
            droplet: p.droplet.kept,
        }
    }
}

/// Times the stages one after the other, reporting each as it ends.
pub(super) struct Timer<'a> {
    reporter: &'a dyn Reporter,
    timings: Timings,
    started: Instant,
}

impl<'a> Timer<'a> {
    pub fn start(reporter: &'a dyn Reporter) -> Self {
        Timer {
            reporter,
            timings: Timings::default(),
            started: Instant::now(),
        }
    }

    /// `stage` ended now; the next one starts.
    pub fn lap(&mut self, stage: Stage) {
        let took = self.started.elapsed();
        self.record(stage, took);
        self.restart();
    }

    /// A stage that ran beside another one, timed on its own.
    pub fn record(&mut self, stage: Stage, took: Duration) {
        self.reporter.event(Event::Stage { stage, took });
        self.timings.0.insert(stage, took.as_secs_f64());
    }

    pub fn restart(&mut self) {
        self.started = Instant::now();
    }

    pub fn timings(self) -> Timings {
        self.timings
    }
}

/// `fut`'s result and how long it took.
pub(super) async fn timed<T>(fut: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = fut.await;
    (out, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Stages(Mutex<Vec<Stage>>);

    impl Reporter for Stages {
        fn event(&self, e: Event) {
            if let Event::Stage { stage, .. } = e {
                self.0.lock().unwrap().push(stage);
            }
        }
    }

    #[test]
    fn timings_are_reported_and_keyed_by_name() {
        let seen = Stages(Mutex::new(vec![]));
        let mut t = Timer::start(&seen);
        t.record(Stage::Stack, Duration::from_millis(1500));
        t.record(Stage::Intake, Duration::from_millis(250));
        t.lap(Stage::Staging);
        let timings = t.timings();
        assert_eq!(
            *seen.0.lock().unwrap(),
            [Stage::Stack, Stage::Intake, Stage::Staging]
        );
        assert_eq!(timings.get(Stage::Stack), Some(Duration::from_millis(1500)));
        assert_eq!(timings.get(Stage::Push), None);
        let json = serde_json::to_value(&timings).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["intake", "stack", "staging"]);
    }

    #[test]
    fn stage_names_are_the_json_keys() {
        let names: Vec<_> = Stage::ALL.iter().map(|s| s.to_string()).collect();
        let expected = [
            "intake",
            "stack",
            "staging",
            "droplet",
            "image",
            "push",
            "manifests",
        ];
        assert_eq!(names, expected);
    }
}
