//! Packaging: the droplet's CF layout finished, then its tgz, its image layer and the
//! launcher layer written as blobs (and the tgz copied out when asked). Blocking throughout.

use super::error::{blocking, other, BuildError};
use super::stage::Staged;
use crate::droplet::{self, StagingInfo};
use crate::layer::{Codec, LayerBlob};
use crate::report::{info, Meter, Reporter};
use crate::units::format_size;
use std::path::PathBuf;
use std::sync::Arc;

/// The droplet's blobs in the workspace.
pub struct DropletBlobs {
    /// The droplet as Cloud Foundry ships it (`droplet.tgz`).
    pub tgz: LayerBlob,
    /// The droplet as an image layer (`/home/vcap`).
    pub layer: LayerBlob,
    /// The launcher layer (`/lifecycle`).
    pub launcher: LayerBlob,
    /// The droplet's `staging_info.yml` (the buildpack's start command).
    pub info: StagingInfo,
    /// Where the tgz was copied, if asked.
    pub kept: Option<PathBuf>,
}

/// Packages the staged droplet, its image layers compressed with `codec`; `keep` gets a copy
/// of the tgz.
pub async fn package(
    staged: &Staged,
    keep: Option<PathBuf>,
    codec: Codec,
    reporter: Arc<dyn Reporter>,
) -> Result<DropletBlobs, BuildError> {
    let info_doc = StagingInfo {
        detected_buildpack: staged.result.detected_buildpack.clone(),
        start_command: staged.result.start_command.clone(),
    };
    let ws = staged.ws.clone();
    blocking(move || {
        let (d, b) = (&ws.droplet, &ws.blobs);
        droplet::finish_layout(d, &info_doc).map_err(other("writing the droplet"))?;
        let (files, bytes) = crate::fsutil::tally(d);
        let size = format_size(bytes);
        let what = format!("the droplet ({files} entries, {size}): tgz and image layer");
        info(reporter.as_ref(), format!("packaging {what}"));
        // Tar headers (512 B per entry) on top of the content: an estimate of the tar's size.
        let mut meter = Meter::new(reporter.clone(), "packing the droplet", bytes + 512 * files);
        let progress = Box::new(move |n| meter.set(n));
        let (tgz, layer) = droplet::package(d, b, codec, Some(progress))
            .map_err(other("packaging the droplet"))?;
        let launcher =
            droplet::launcher_layer(b, codec).map_err(other("writing the launcher layer"))?;
        if let Some(p) = &keep {
            std::fs::copy(&tgz.path, p).map_err(other(&format!("writing {}", p.display())))?;
        }
        Ok(DropletBlobs {
            tgz,
            layer,
            launcher,
            info: info_doc,
            kept: keep,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{fixture, staged};
    use super::*;
    use crate::report::Silent;

    #[tokio::test]
    async fn writes_the_droplet_blobs_and_a_copy() {
        let f = fixture().await;
        let (_, s) = staged(&f).await;
        let keep = f.dir.path().join("droplet.tgz");
        let d = package(&s, Some(keep.clone()), Codec::Gzip, Arc::new(Silent))
            .await
            .unwrap();
        for b in [&d.tgz, &d.layer, &d.launcher] {
            assert!(b.path.is_file() && b.digest.starts_with("sha256:"), "{b:?}");
        }
        assert_eq!(
            std::fs::read(&keep).unwrap(),
            std::fs::read(&d.tgz.path).unwrap()
        );
        assert_eq!(d.kept, Some(keep));
        assert_eq!(d.info.start_command, "httpd -f");
        assert!(s.ws.droplet.join("staging_info.yml").is_file());
    }
}
