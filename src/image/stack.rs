//! The image of a stack: one root filesystem layer and a minimal config.

use super::{canonical, media, BuiltImage, ImageError};
use crate::layer::{hash::sha256_digest, LayerBlob};
use oci_spec::image::{
    Config, Descriptor, Digest, History, ImageConfiguration, ImageManifestBuilder, MediaType,
    RootFs,
};
use std::collections::HashMap;
use std::str::FromStr;

/// The label naming the stack (the value of CF_STACK during staging).
pub const STACK_LABEL: &str = "io.dropship.stack";

/// The Go/OCI name of the architecture dropship runs on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Builds a one-layer stack image.
pub fn build_stack(
    layer: &LayerBlob,
    name: &str,
    source: &str,
    created: &str,
) -> Result<BuiltImage, ImageError> {
    let bad = |d: &str| ImageError::BadDigest(d.to_string());
    let mut process = Config::default();
    process.set_env(Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    ]));
    process.set_labels(Some(HashMap::from([
        (STACK_LABEL.to_string(), name.to_string()),
        (
            "org.opencontainers.image.title".to_string(),
            name.to_string(),
        ),
    ])));
    let mut rootfs = RootFs::default();
    rootfs.set_diff_ids(vec![layer.diff_id.clone()]);
    let mut history = History::default();
    history.set_created(Some(created.to_string()));
    history.set_created_by(Some(format!("dropship stack import {source}")));
    let mut config = ImageConfiguration::default();
    config.set_architecture(host_arch().into());
    config.set_os("linux".into());
    config.set_config(Some(process));
    config.set_rootfs(rootfs);
    config.set_history(Some(vec![history]));
    config.set_created(Some(created.to_string()));
    let config_bytes = canonical::to_vec(&config)?;
    let config_digest = sha256_digest(&config_bytes);

    let layers = vec![Descriptor::new(
        MediaType::from(media::OCI_LAYER_GZIP),
        layer.size,
        Digest::from_str(&layer.digest).map_err(|_| bad(&layer.digest))?,
    )];
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(media::OCI_MANIFEST))
        .config(Descriptor::new(
            MediaType::from(media::OCI_CONFIG),
            config_bytes.len() as u64,
            Digest::from_str(&config_digest).map_err(|_| bad(&config_digest))?,
        ))
        .layers(layers.clone())
        .build()
        .map_err(|e| ImageError::BadDigest(e.to_string()))?;
    let manifest_bytes = canonical::to_vec(&manifest)?;
    Ok(BuiltImage {
        manifest_digest: sha256_digest(&manifest_bytes),
        manifest: manifest_bytes,
        manifest_media_type: media::OCI_MANIFEST.to_string(),
        config: config_bytes,
        config_digest,
        layers,
    })
}
