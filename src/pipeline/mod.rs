//! The whole build, shared by the CLI and the service, as a list of stages: workspace ->
//! intake (beside the stack) -> staging -> droplet -> image -> push -> Kubernetes manifests.
//! Each stage is a function with typed input and output in a file of its own; each reports
//! its duration; failures say which stage, which file, which blob, which registry answer.
//! Blocking work (file system walks, copies, tar, scripts) runs inside the stages'
//! `spawn_blocking`, never on the runtime's workers.

mod buildpacks;
mod cache;
mod confine;
mod error;
mod image;
mod intake;
mod manifests;
mod options;
mod outcome;
mod package;
mod publish;
pub mod rebase;
mod stack;
mod stage;
mod stream;
#[cfg(test)]
mod testkit;
mod workspace;

pub use cache::CachePolicy;
pub use error::BuildError;
pub use options::{BuildOptions, BuildRequest, Codec, Outputs, Runtime, Targets};
pub use outcome::{BuildOutcome, LayerInfo, StackInfo, Timings};

use crate::droplet::cache::LayerCache;
use crate::layer::LayerBlob;
use crate::registry::push::PushBlob;
use crate::report::{info, Reporter, Stage};
use crate::staging::workspace::Workspace;
use crate::units::format_size;
use outcome::{timed, Parts, Timer};
use publish::Via;
use stage::StagingInput;
use std::sync::Arc;

/// Builds the app described by `opts` and pushes its image.
pub async fn build(
    opts: &BuildOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<BuildOutcome, BuildError> {
    opts.check()?;
    let ws = workspace::prepare(&opts.runtime, opts.app.disk_mb << 20, reporter.as_ref()).await?;
    let out = stages(opts, ws.clone(), reporter).await;
    workspace::remove(ws).await;
    out
}

/// The stages, in order, in the workspace `ws`.
async fn stages(
    opts: &BuildOptions,
    ws: Arc<Workspace>,
    reporter: Arc<dyn Reporter>,
) -> Result<BuildOutcome, BuildError> {
    let mut timer = Timer::start(reporter.as_ref());
    let registry = publish::connect(opts, reporter.clone()).await?;
    // Intake, stack resolution and a look at the target are independent: run them together.
    let blob_cache = opts.runtime.stack_cache.blobs();
    let ((tree, intake_took), (stack, stack_took), target_now) = tokio::join!(
        timed(intake::intake(&opts.request, ws.clone())),
        timed(stack::resolve(&opts.request, &opts.runtime, &registry)),
        publish::look_at_target(&registry, &opts.outputs.targets, &blob_cache),
    );
    let (tree, stack) = (tree?, stack?);
    // Before staging: a zstd layer needs a manifest flavour that has a type for it.
    let flavor = stack.stack.resolved.base.flavor();
    if flavor.layer(opts.outputs.compression).is_none() {
        return Err(crate::image::ImageError::ZstdOnDocker.into());
    }
    let (files, size, s) = (tree.files, format_size(tree.bytes), &stack.stack);
    let what = format!(
        "app: {files} files, {size}; stack {} ({})",
        s.name,
        s.digest()
    );
    info(reporter.as_ref(), what);
    timer.record(Stage::Stack, stack_took);
    timer.record(Stage::Intake, intake_took);
    timer.restart();

    let input = StagingInput {
        app: &opts.app,
        request: &opts.request,
        runtime: &opts.runtime,
        cache: &opts.cache,
        stack: &stack,
        ws: ws.clone(),
    };
    let mut staged = stage::stage(input, reporter.clone()).await?;
    timer.lap(Stage::Staging);

    // `--no-cache` means a cold build: no buildpack cache and no layer of an earlier build.
    let fresh = opts.cache.fresh;
    let reuse = package::Reuse {
        cache: (!fresh).then(|| {
            let dir = opts.runtime.stack_cache.dir.join("layers");
            LayerCache::new(dir, opts.cache.layer_max)
        }),
        remote: target_now.layers.filter(|_| !fresh),
    };
    let keep = opts.outputs.droplet.clone();
    // Each layer goes to the registry as soon as it is packed, while the others are packed.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let ahead: package::Ahead = Box::new(move |b: &LayerBlob| {
        let _ = tx.send(PushBlob {
            digest: b.digest.clone(),
            size: b.size,
            file: Some(b.path.clone()),
        });
    });
    // Big new layers go while they are compressed (when the target is a registry).
    let targets = &opts.outputs.targets;
    let new_target = target_now.new;
    let streamer = stream::Streamer::new(&registry, targets, new_target, reporter.clone());
    let (droplet, sent) = tokio::join!(
        package::package(
            &staged,
            keep,
            opts.outputs.compression,
            reuse,
            Some(ahead),
            streamer.clone(),
            reporter.clone()
        ),
        publish::send_ahead(
            &registry,
            &opts.outputs.targets,
            rx,
            streamer.as_deref(),
            reporter.clone()
        ),
    );
    let (droplet, sent) = (droplet?, sent?);
    timer.lap(Stage::Droplet);

    staged.apply_command(&opts.app, reporter.as_ref());
    let built = image::assemble(&opts.app, &stack.stack, &staged, &droplet)?;
    let blobs = image::blobs(&built, &stack.stack, &droplet, ws.blobs.join("config.json"));
    timer.lap(Stage::Image);

    let via = Via {
        registry: &registry,
        stack: &stack.stack,
        stack_cache: &opts.runtime.stack_cache,
        reporter: reporter.clone(),
    };
    let config = ws.blobs.join("config.json");
    let targets = &opts.outputs.targets;
    let published = publish::publish(&built, blobs, config, targets, &via, &sent).await?;
    timer.lap(Stage::Push);

    let manifests = match &opts.outputs.manifests_dir {
        Some(dir) => {
            let processes = &staged.result.process_types;
            let p = manifests::write(&opts.app, dir, &published.image, processes).await?;
            timer.lap(Stage::Manifests);
            Some(p)
        }
        None => None,
    };
    Ok(BuildOutcome::from(Parts {
        name: opts.app.name.clone(),
        stack,
        staged,
        droplet,
        built,
        published,
        manifests,
        streamed: streamer.map(|s| s.streamed()).unwrap_or_default(),
        timings: timer.timings(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Silent;

    #[tokio::test]
    async fn builds_into_an_oci_layout_and_times_every_stage() {
        let mut f = testkit::fixture().await;
        let kept = f.dir.path().join("droplet.tgz");
        f.opts.outputs.droplet = Some(kept.clone());
        let out = build(&f.opts, Arc::new(Silent)).await.unwrap();
        assert!(out.image.starts_with("oci:") && out.image.ends_with(&out.digest));
        assert_eq!(
            (out.detected_buildpack.as_str(), out.stack.name.as_str()),
            ("static", "tiny")
        );
        assert_eq!(out.droplet.as_deref(), Some(kept.as_path()));
        let json = serde_json::to_value(&out).unwrap();
        let stages: Vec<_> = json["timings"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            stages,
            ["droplet", "image", "intake", "push", "stack", "staging"]
        );
        let left = std::fs::read_dir(&f.opts.runtime.work_dir).unwrap().count();
        assert_eq!(left, 0, "the workspace is removed");
        let again = build(&f.opts, Arc::new(Silent)).await.unwrap();
        assert_eq!(again.digest, out.digest, "same inputs, same image");
    }

    #[tokio::test]
    async fn a_failed_stage_is_named_and_leaves_no_workspace() {
        let f = testkit::fixture().await;
        std::fs::remove_file(f.opts.request.source.join("index.html")).unwrap();
        std::fs::write(f.opts.request.source.join("app.txt"), "no site").unwrap();
        let e = build(&f.opts, Arc::new(Silent)).await.unwrap_err();
        assert_eq!(
            (e.kind(), e.exit_code()),
            ("NoAppDetectedError", 222),
            "{e}"
        );
        let left = std::fs::read_dir(&f.opts.runtime.work_dir).unwrap().count();
        assert_eq!(left, 0);
    }
}
