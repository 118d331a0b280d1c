//! Packaging: the droplet's CF layout finished, then its image layers (unchanged ones from
//! the layer cache), the launcher layer, and the droplet tgz only when it is asked for (the
//! CLI's `--droplet`, the service's download). Blocking throughout.

use super::error::{blocking, other, BuildError};
use super::stage::Staged;
use super::stream::Streamer;
use crate::droplet::cache::LayerCache;
use crate::droplet::layers::{AppLayer, OnCompress, OnLayer, RemoteLayers};
use crate::droplet::{self, PackOptions, StagingInfo};
use crate::layer::{Codec, LayerBlob};
use crate::report::{info, Meter, Reporter};
use crate::units::format_size;
use std::path::PathBuf;
use std::sync::Arc;

/// The droplet's blobs in the workspace.
pub struct DropletBlobs {
    /// The droplet as Cloud Foundry ships it (`droplet.tgz`), when asked for.
    pub tgz: Option<LayerBlob>,
    /// The droplet as image layers (`/home/vcap`), in image order.
    pub layers: Vec<AppLayer>,
    /// The launcher layer (`/lifecycle`).
    pub launcher: LayerBlob,
    /// The droplet's `staging_info.yml` (the buildpack's start command).
    pub info: StagingInfo,
    /// Where the tgz was copied, if asked.
    pub kept: Option<PathBuf>,
}

/// Where unchanged layers come from instead of being compressed again.
#[derive(Default)]
pub struct Reuse {
    /// The layer cache (none with `--no-cache`).
    pub cache: Option<LayerCache>,
    /// The layers of the image the target's tag names (a registry target).
    pub remote: Option<RemoteLayers>,
}

/// Told of each droplet layer as soon as it is written.
pub type Ahead = Box<dyn Fn(&LayerBlob) + Send + Sync>;

/// Packages the staged droplet, its layers compressed with `codec`; `keep` gets its tgz;
/// `reuse` says where layers of earlier builds are; `ahead` is told of each layer once written;
/// `stream` sends new layers to the registry while they are compressed.
pub async fn package(
    staged: &Staged,
    keep: Option<PathBuf>,
    codec: Codec,
    reuse: Reuse,
    ahead: Option<Ahead>,
    stream: Option<Arc<Streamer>>,
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
        let tgz = if keep.is_some() { "tgz and " } else { "" };
        let what = format!("the droplet ({files} entries, {size}): {tgz}image layers");
        info(reporter.as_ref(), format!("packaging {what}"));
        // Tar headers (512 B per entry) on top of the content: an estimate of the tar's size.
        let copy = stream.map(|s| move |changed| s.copy(changed));
        let mut meter = Meter::new(reporter.clone(), "packing the droplet", bytes + 512 * files);
        let progress = Box::new(move |n| meter.set(n));
        let o = PackOptions {
            tgz: keep.is_some(),
            codec,
            cache: reuse.cache.as_ref(),
            remote: reuse.remote.as_ref(),
            progress: Some(progress),
            on_layer: ahead.as_ref().map(|a| a.as_ref() as OnLayer),
            on_compress: copy.as_ref().map(|c| c as OnCompress),
        };
        let (tgz, layers) = droplet::package(d, b, o).map_err(other("packaging the droplet"))?;
        let reused = layers.iter().filter(|l| l.reused).count();
        let n = layers.len();
        info(
            reporter.as_ref(),
            format!("droplet: {n} layers, {reused} unchanged (not compressed again)"),
        );
        let launcher =
            droplet::launcher_layer(b, codec).map_err(other("writing the launcher layer"))?;
        if let (Some(p), Some(t)) = (&keep, &tgz) {
            std::fs::copy(&t.path, p).map_err(other(&format!("writing {}", p.display())))?;
        }
        Ok(DropletBlobs {
            tgz,
            layers,
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
        let d = package(
            &s,
            Some(keep.clone()),
            Codec::Gzip,
            Default::default(),
            None,
            None,
            Arc::new(Silent),
        )
        .await
        .unwrap();
        let tgz = d.tgz.as_ref().expect("asked for");
        let layers = d.layers.iter().map(|l| &l.blob);
        for b in [tgz, &d.launcher].into_iter().chain(layers) {
            assert!(b.path.is_file() && b.digest.starts_with("sha256:"), "{b:?}");
        }
        assert_eq!(
            std::fs::read(&keep).unwrap(),
            std::fs::read(&tgz.path).unwrap()
        );
        assert_eq!(d.kept, Some(keep));
        assert_eq!(d.info.start_command, "httpd -f");
        assert!(s.ws.droplet.join("staging_info.yml").is_file());
    }
}
