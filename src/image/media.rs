//! Manifest flavours: an image keeps its base's flavour (OCI or Docker schema 2) for every
//! manifest, config and layer media type it adds.

use crate::layer::Codec;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Media types a manifest GET should accept.
pub const ACCEPTED_MANIFESTS: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Oci,
    Docker,
}

impl Flavor {
    /// The flavour of a manifest media type; anything not Docker's is treated as OCI.
    pub fn of_manifest(media_type: &str) -> Flavor {
        if media_type == DOCKER_MANIFEST {
            Flavor::Docker
        } else {
            Flavor::Oci
        }
    }

    pub fn manifest(self) -> &'static str {
        match self {
            Flavor::Oci => OCI_MANIFEST,
            Flavor::Docker => DOCKER_MANIFEST,
        }
    }

    pub fn config(self) -> &'static str {
        match self {
            Flavor::Oci => OCI_CONFIG,
            Flavor::Docker => DOCKER_CONFIG,
        }
    }

    pub fn layer_gzip(self) -> &'static str {
        match self {
            Flavor::Oci => OCI_LAYER_GZIP,
            Flavor::Docker => DOCKER_LAYER_GZIP,
        }
    }

    /// The media type of a layer compressed with `codec`; Docker schema 2 has none for zstd.
    pub fn layer(self, codec: Codec) -> Option<&'static str> {
        match (self, codec) {
            (_, Codec::Gzip) => Some(self.layer_gzip()),
            (Flavor::Oci, Codec::Zstd) => Some(OCI_LAYER_ZSTD),
            (Flavor::Docker, Codec::Zstd) => None,
        }
    }
}

/// Is this the media type of an index (manifest list)?
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_layers_have_a_type_in_oci_only() {
        assert_eq!(Flavor::Oci.layer(Codec::Zstd), Some(OCI_LAYER_ZSTD));
        assert_eq!(Flavor::Docker.layer(Codec::Zstd), None);
        assert_eq!(Flavor::Docker.layer(Codec::Gzip), Some(DOCKER_LAYER_GZIP));
        assert_eq!(Flavor::Oci.layer(Codec::Gzip), Some(OCI_LAYER_GZIP));
    }
}
