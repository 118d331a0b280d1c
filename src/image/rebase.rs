//! Rebase (pure): an app image's own layers put onto another stack. The app's part is read
//! back from the image (its layers after the stack's, their history, the process settings and
//! the app's labels) and handed to [`super::build`], the function a build assembles with: a
//! rebased image is byte for byte the image a build on the new stack gives for the same
//! droplet.

use super::stack::STACK_LABEL;
use super::{build, BaseImage, BaseLabels, BuiltImage, ImageError, ImageSpec, NewLayer};
use super::{DEFAULT_PORT, STACK_LAYERS_LABEL, TITLE_LABEL};
use crate::layer::{Codec, LayerBlob};
use oci_spec::image::Descriptor;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error(
        "the image has no {STACK_LAYERS_LABEL} label: it was not built by a dropship that \
         records which layers are its stack's; rebuild it once, then rebase"
    )]
    NotRecorded,
    #[error(
        "the image was built on stack {image:?} and the new stack is {stack:?} (CF_STACK \
         differs): buildpacks' output for one need not run on the other; --force to rebase anyway"
    )]
    OtherStack { image: String, stack: String },
    #[error("the image is {image} and the new stack is {stack}: --force to rebase anyway")]
    OtherPlatform { image: String, stack: String },
    #[error("the image's config is not one dropship wrote: {0}")]
    Malformed(String),
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl RebaseError {
    /// Whether the new stack was refused as incompatible (what `--force` overrides).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RebaseError::OtherStack { .. } | RebaseError::OtherPlatform { .. }
        )
    }
}

/// The rebased image and what it kept.
#[derive(Debug, Clone)]
pub struct Rebased {
    pub image: BuiltImage,
    /// The app's layers (kept as they were), in order.
    pub app_layers: Vec<Descriptor>,
    /// The stack the image was on (its `io.dropship.stack` label).
    pub old_stack: String,
}

fn malformed(what: impl Into<String>) -> RebaseError {
    RebaseError::Malformed(what.into())
}

/// `app` (an image a dropship build made) on `stack`, named by `base`. Refuses a stack of
/// another name, OS or architecture unless `force`.
pub fn rebase(
    app: &BaseImage,
    stack: &BaseImage,
    base: &BaseLabels,
    force: bool,
) -> Result<Rebased, RebaseError> {
    let labels = app
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default();
    let count = labels
        .get(STACK_LAYERS_LABEL)
        .ok_or(RebaseError::NotRecorded)?;
    let count: usize = count
        .parse()
        .map_err(|_| malformed(format!("{STACK_LAYERS_LABEL} = {count:?}")))?;
    let old_stack = labels.get(STACK_LABEL).cloned().unwrap_or_default();
    if !force && old_stack != base.stack {
        return Err(RebaseError::OtherStack {
            image: old_stack,
            stack: base.stack.clone(),
        });
    }
    if !force && app.platform() != stack.platform() {
        return Err(RebaseError::OtherPlatform {
            image: app.platform(),
            stack: stack.platform(),
        });
    }
    let layers = app_layers(app, count)?;
    let spec = app_spec(app, &labels, base)?;
    let image = build(stack, &layers, &spec)?;
    same_compression(
        &app.manifest.layers()[count..],
        &image.layers[stack.manifest.layers().len()..],
    )?;
    Ok(Rebased {
        app_layers: app.manifest.layers()[count..].to_vec(),
        image,
        old_stack,
    })
}

fn compression(media_type: &str) -> &'static str {
    match media_type {
        m if m.ends_with("zstd") => "zstd",
        m if m.ends_with("gzip") => "gzip",
        _ => "none",
    }
}

/// The assembly must describe each app blob as it is: a layer's media type may change flavour
/// (Docker or OCI, as the new stack's), never compression.
fn same_compression(old: &[Descriptor], new: &[Descriptor]) -> Result<(), RebaseError> {
    for (o, n) in old.iter().zip(new) {
        let (a, b) = (o.media_type().to_string(), n.media_type().to_string());
        if compression(&a) != compression(&b) {
            return Err(malformed(format!(
                "layer {} is {a}, would be described as {b}",
                o.digest()
            )));
        }
    }
    Ok(())
}

/// A layer's compression, from its media type (`...+zstd`, else gzip).
pub fn codec_of(media_type: &oci_spec::image::MediaType) -> Codec {
    if media_type.to_string().ends_with("+zstd") {
        Codec::Zstd
    } else {
        Codec::Gzip
    }
}

/// The layers after the stack's, with their diff_ids and history lines (a build adds one
/// history line per layer, after the stack's).
fn app_layers(app: &BaseImage, stack_layers: usize) -> Result<Vec<NewLayer>, RebaseError> {
    let descriptors = app.manifest.layers();
    let diff_ids = app.config.rootfs().diff_ids();
    if stack_layers > descriptors.len() {
        return Err(malformed(format!(
            "{STACK_LAYERS_LABEL} is {stack_layers} but the image has {} layers",
            descriptors.len()
        )));
    }
    let ours = descriptors.len() - stack_layers;
    let history = app.config.history().clone().unwrap_or_default();
    if history.len() < ours {
        return Err(malformed(format!(
            "{} history lines for {ours} app layers",
            history.len()
        )));
    }
    let history = &history[history.len() - ours..];
    let layers = descriptors[stack_layers..]
        .iter()
        .zip(&diff_ids[stack_layers..])
        .zip(history)
        .map(|((d, diff_id), h)| NewLayer {
            blob: LayerBlob {
                digest: d.digest().to_string(),
                diff_id: diff_id.clone(),
                size: d.size(),
                tar_size: 0,
                // Not read: the blob is already in a registry.
                path: PathBuf::new(),
                codec: codec_of(d.media_type()),
            },
            created_by: h.created_by().clone().unwrap_or_default(),
        })
        .collect();
    Ok(layers)
}

/// The spec a build gave: the start command, port and date, the app's labels (`io.dropship.*`
/// and the title); the base named anew.
fn app_spec(
    app: &BaseImage,
    labels: &std::collections::HashMap<String, String>,
    base: &BaseLabels,
) -> Result<ImageSpec, RebaseError> {
    let process = app
        .config
        .config()
        .as_ref()
        .ok_or_else(|| malformed("no process config"))?;
    let start_command = process
        .cmd()
        .as_ref()
        .and_then(|c| c.first().cloned())
        .ok_or_else(|| malformed("no start command (Cmd)"))?;
    let port = match process.exposed_ports().as_ref().and_then(|p| p.first()) {
        Some(p) => p
            .split('/')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| malformed(format!("exposed port {p:?}")))?,
        None => DEFAULT_PORT,
    };
    let created = app
        .config
        .created()
        .clone()
        .ok_or_else(|| malformed("no creation date"))?;
    let ours =
        |k: &str| k == TITLE_LABEL || (k.starts_with("io.dropship.") && k != STACK_LAYERS_LABEL);
    let labels: BTreeMap<String, String> = labels
        .iter()
        .filter(|(k, _)| ours(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let annotations = labels
        .get_key_value(TITLE_LABEL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .into_iter()
        .collect();
    let mut spec = ImageSpec {
        start_command,
        labels,
        annotations,
        port,
        created,
    };
    spec.set_base(base);
    Ok(spec)
}

#[cfg(test)]
#[path = "rebase_tests.rs"]
mod tests;
