//! Pure image assembly: a base (stack) manifest and config plus new layers give a new manifest
//! and config, as canonical JSON bytes with their digests. No IO here.

pub(crate) mod canonical;
pub(crate) mod media;
pub mod rebase;
pub mod stack;

use crate::layer::{hash::sha256_digest, LayerBlob};
use media::Flavor;
use oci_spec::image::{
    Config, Descriptor, Digest, History, ImageConfiguration, ImageManifest, MediaType,
};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

/// The launcher installed at `/lifecycle/launch`.
pub const LAUNCHER: &str = include_str!("launch.sh");
pub const LAUNCHER_PATH: &str = "lifecycle/launch";
pub const APP_DIR: &str = "/home/vcap/app";
pub const DEFAULT_PORT: u16 = 8080;
/// How many of an image's layers are its stack's (the rest are the app's): what `rebase`
/// replaces. Written by every build, like CNB's `runImage.topLayer`.
pub const STACK_LAYERS_LABEL: &str = "io.dropship.stack.layers";
pub const TITLE_LABEL: &str = "org.opencontainers.image.title";
pub const BASE_NAME_LABEL: &str = "org.opencontainers.image.base.name";
pub const BASE_DIGEST_LABEL: &str = "org.opencontainers.image.base.digest";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("base image manifest is not valid JSON: {0}")]
    BadManifest(serde_json::Error),
    #[error("base image config is not valid JSON: {0}")]
    BadConfig(serde_json::Error),
    #[error("invalid digest {0:?}")]
    BadDigest(String),
    #[error("base image config lists {diff_ids} diff_ids for {layers} layers")]
    Inconsistent { diff_ids: usize, layers: usize },
    #[error(
        "zstd layers need an OCI base image, and the stack's manifest is Docker schema 2, which \
         has no zstd layer type: build with --compression gzip, or use a stack in OCI format \
         (`dropship stack import` writes one; `skopeo copy --format oci` converts)"
    )]
    ZstdOnDocker,
    #[error("serializing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A base image as read from a registry or a layout.
#[derive(Debug, Clone)]
pub struct BaseImage {
    pub manifest: ImageManifest,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config: ImageConfiguration,
}

impl BaseImage {
    /// Parses a base image from its manifest and config bytes.
    pub fn parse(
        manifest_bytes: &[u8],
        manifest_media_type: Option<&str>,
        config_bytes: &[u8],
    ) -> Result<BaseImage, ImageError> {
        let manifest: ImageManifest =
            serde_json::from_slice(manifest_bytes).map_err(ImageError::BadManifest)?;
        let config: ImageConfiguration =
            serde_json::from_slice(config_bytes).map_err(ImageError::BadConfig)?;
        let media_type = manifest_media_type
            .map(str::to_string)
            .or_else(|| manifest.media_type().as_ref().map(|m| m.to_string()))
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        let diff_ids = config.rootfs().diff_ids().len();
        if diff_ids != manifest.layers().len() {
            return Err(ImageError::Inconsistent {
                diff_ids,
                layers: manifest.layers().len(),
            });
        }
        Ok(BaseImage {
            manifest_digest: sha256_digest(manifest_bytes),
            manifest,
            manifest_media_type: media_type,
            config,
        })
    }

    pub fn flavor(&self) -> Flavor {
        Flavor::of_manifest(&self.manifest_media_type)
    }

    /// `os/architecture` of the base, e.g. `linux/amd64`.
    pub fn platform(&self) -> String {
        format!("{}/{}", self.config.os(), self.config.architecture())
    }
}

/// A layer to add, with the history line that explains it.
#[derive(Debug, Clone)]
pub struct NewLayer {
    pub blob: LayerBlob,
    pub created_by: String,
}

/// What the new image runs and says about itself.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    pub start_command: String,
    pub labels: BTreeMap<String, String>,
    /// Annotations for the manifest (OCI flavour only).
    pub annotations: BTreeMap<String, String>,
    pub port: u16,
    /// RFC 3339 timestamp written as `created` (fixed, for reproducibility).
    pub created: String,
}

/// The stack an image is layered onto, as its labels and annotations name it.
#[derive(Debug, Clone)]
pub struct BaseLabels {
    /// The stack's name (CF_STACK).
    pub stack: String,
    /// A pullable reference (`None` for an OCI layout: a path on this machine).
    pub name: Option<String>,
    /// The stack's manifest digest.
    pub digest: String,
}

impl ImageSpec {
    /// Names the base in the labels and annotations (the same for a build and a rebase).
    pub fn set_base(&mut self, base: &BaseLabels) {
        for m in [&mut self.labels, &mut self.annotations] {
            match &base.name {
                Some(name) => m.insert(BASE_NAME_LABEL.into(), name.clone()),
                None => m.remove(BASE_NAME_LABEL),
            };
            m.insert(BASE_DIGEST_LABEL.into(), base.digest.clone());
        }
        self.labels
            .insert(stack::STACK_LABEL.into(), base.stack.clone());
    }
}

/// The assembled image: manifest and config bytes are exactly what gets pushed.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    /// Every layer of the image, base layers first.
    pub layers: Vec<Descriptor>,
}

fn digest(s: &str) -> Result<Digest, ImageError> {
    Digest::from_str(s).map_err(|_| ImageError::BadDigest(s.to_string()))
}

/// Sets `KEY=value` in an env list, replacing an existing entry for KEY.
fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.starts_with(&prefix)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Seconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The new config: the base's, with the app's process settings and the new layers' diff_ids.
fn build_config(
    base: &BaseImage,
    layers: &[NewLayer],
    spec: &ImageSpec,
) -> Result<ImageConfiguration, ImageError> {
    let mut config = base.config.clone();
    let mut process: Config = config.config().clone().unwrap_or_default();
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        set_env(&mut env, "PATH", "/usr/local/bin:/usr/bin:/bin");
    }
    set_env(&mut env, "HOME", APP_DIR);
    set_env(&mut env, "TMPDIR", "/home/vcap/tmp");
    set_env(&mut env, "LANG", "en_US.UTF-8");
    set_env(&mut env, "PORT", &spec.port.to_string());
    process.set_env(Some(env));
    // Numeric: Kubernetes cannot check runAsNonRoot against a user name.
    process.set_user(Some("2000:2000".to_string()));
    process.set_working_dir(Some(APP_DIR.to_string()));
    process.set_entrypoint(Some(vec![format!("/{LAUNCHER_PATH}")]));
    process.set_cmd(Some(vec![spec.start_command.clone()]));
    process.set_exposed_ports(Some(vec![format!("{}/tcp", spec.port)]));
    let mut labels: HashMap<String, String> = process.labels().clone().unwrap_or_default();
    labels.extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let stack_layers = base.manifest.layers().len().to_string();
    labels.insert(STACK_LAYERS_LABEL.to_string(), stack_layers);
    process.set_labels(Some(labels));
    config.set_config(Some(process));

    let mut diff_ids = config.rootfs().diff_ids().clone();
    let mut history = config.history().clone().unwrap_or_default();
    for layer in layers {
        diff_ids.push(layer.blob.diff_id.clone());
        let mut h = History::default();
        h.set_created(Some(spec.created.clone()));
        h.set_created_by(Some(layer.created_by.clone()));
        h.set_comment(Some("dropship".to_string()));
        history.push(h);
    }
    config.rootfs_mut().set_diff_ids(diff_ids);
    config.set_history(Some(history));
    config.set_created(Some(spec.created.clone()));
    Ok(config)
}

/// Assembles the new image from the base and the layers to add on top of it.
pub fn build(
    base: &BaseImage,
    layers: &[NewLayer],
    spec: &ImageSpec,
) -> Result<BuiltImage, ImageError> {
    let flavor = base.flavor();
    let config = build_config(base, layers, spec)?;
    let config_bytes = canonical::to_vec(&config)?;
    let config_digest = sha256_digest(&config_bytes);

    let mut all_layers: Vec<Descriptor> = base.manifest.layers().clone();
    for layer in layers {
        let media_type = flavor
            .layer(layer.blob.codec)
            .ok_or(ImageError::ZstdOnDocker)?;
        all_layers.push(Descriptor::new(
            MediaType::from(media_type),
            layer.blob.size,
            digest(&layer.blob.digest)?,
        ));
    }
    let mut manifest = base.manifest.clone();
    manifest.set_schema_version(2);
    manifest.set_media_type(Some(MediaType::from(flavor.manifest())));
    manifest.set_config(Descriptor::new(
        MediaType::from(flavor.config()),
        config_bytes.len() as u64,
        digest(&config_digest)?,
    ));
    manifest.set_layers(all_layers.clone());
    manifest.set_subject(None);
    manifest.set_annotations(match flavor {
        Flavor::Oci if !spec.annotations.is_empty() => Some(
            spec.annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => None,
    });
    let manifest_bytes = canonical::to_vec(&manifest)?;
    Ok(BuiltImage {
        manifest_digest: sha256_digest(&manifest_bytes),
        manifest: manifest_bytes,
        manifest_media_type: flavor.manifest().to_string(),
        config: config_bytes,
        config_digest,
        layers: all_layers,
    })
}

#[cfg(test)]
mod tests;
