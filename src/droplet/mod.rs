//! The droplet: Cloud Foundry's layout (`app/ deps/ profile.d/ tmp/ logs/ staging_info.yml`),
//! packaged twice from the same directory in parallel: as the CF droplet tgz (`./app/...`) and
//! as the image layer (`home/vcap/app/...`, vcap-owned). Plus the launcher layer.

use crate::image::{LAUNCHER, LAUNCHER_PATH};
use crate::layer::tree::{append_bytes, append_parent_dir, append_tree, Owner, TreeOptions};
use crate::layer::{fixed_mtime, Codec, LayerBlob, LayerWriter};
use std::io;
use std::path::Path;

/// `staging_info.yml`, which Cloud Foundry writes as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StagingInfo {
    pub detected_buildpack: String,
    pub start_command: String,
}

/// Completes the droplet directory once staging is done.
pub fn finish_layout(droplet: &Path, info: &StagingInfo) -> io::Result<()> {
    for dir in ["app", "deps", "profile.d", "tmp", "logs"] {
        std::fs::create_dir_all(droplet.join(dir))?;
    }
    let json = serde_json::to_vec(info).map_err(io::Error::other)?;
    std::fs::write(droplet.join("staging_info.yml"), json)
}

/// The CF droplet tgz (what `cf download-droplet` gives).
pub fn droplet_tgz(droplet: &Path, blob_dir: &Path) -> io::Result<LayerBlob> {
    let mut w = LayerWriter::create(blob_dir)?;
    append_tree(w.tar(), droplet, &TreeOptions::app("./"))?;
    w.finish()
}

/// The droplet as an image layer under `/home/vcap`; `progress` is told the tar bytes written.
pub fn droplet_layer(
    droplet: &Path,
    blob_dir: &Path,
    codec: Codec,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
) -> io::Result<LayerBlob> {
    let mut w = LayerWriter::with_codec(blob_dir, codec)?;
    if let Some(p) = progress {
        w.on_progress(p);
    }
    append_parent_dir(w.tar(), "home/", 0o755, Owner::ROOT, fixed_mtime())?;
    append_tree(w.tar(), droplet, &TreeOptions::app("home/vcap/"))?;
    w.finish()
}

/// The launcher layer: `/lifecycle/launch`, the same bytes for every app.
pub fn launcher_layer(blob_dir: &Path, codec: Codec) -> io::Result<LayerBlob> {
    let mut w = LayerWriter::with_codec(blob_dir, codec)?;
    let t = fixed_mtime();
    let dir = LAUNCHER_PATH
        .split('/')
        .next()
        .expect("launcher path has a dir");
    append_parent_dir(w.tar(), &format!("{dir}/"), 0o755, Owner::ROOT, t)?;
    append_bytes(
        w.tar(),
        LAUNCHER_PATH,
        0o755,
        Owner::ROOT,
        t,
        LAUNCHER.as_bytes(),
    )?;
    w.finish()
}

/// The droplet tgz (always gzip) and the droplet layer (`codec`), written at the same time;
/// `progress` follows the layer (both read the same files at about the same pace).
pub fn package(
    droplet: &Path,
    blob_dir: &Path,
    codec: Codec,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
) -> io::Result<(LayerBlob, LayerBlob)> {
    std::thread::scope(|s| {
        let tgz = s.spawn(|| droplet_tgz(droplet, blob_dir));
        let layer = droplet_layer(droplet, blob_dir, codec, progress);
        let tgz = tgz
            .join()
            .map_err(|_| io::Error::other("droplet packaging panicked"))?;
        Ok((tgz?, layer?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `staging_info.yml` back.
    fn read_info(droplet: &Path) -> io::Result<StagingInfo> {
        let bytes = std::fs::read(droplet.join("staging_info.yml"))?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
    use flate2::read::GzDecoder;

    fn names(blob: &LayerBlob) -> Vec<(String, u64)> {
        let mut a = tar::Archive::new(GzDecoder::new(std::fs::File::open(&blob.path).unwrap()));
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                (path, e.header().uid().unwrap())
            })
            .collect()
    }

    #[test]
    fn droplet_and_layer_share_content_and_are_reproducible() {
        let d = tempfile::tempdir().unwrap();
        let droplet = d.path().join("droplet");
        std::fs::create_dir_all(droplet.join("app")).unwrap();
        std::fs::write(droplet.join("app/index.html"), "hi").unwrap();
        let info = StagingInfo {
            detected_buildpack: "staticfile".into(),
            start_command: "serve".into(),
        };
        finish_layout(&droplet, &info).unwrap();
        assert_eq!(read_info(&droplet).unwrap(), info);
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let w = written.clone();
        let progress = Box::new(move |n| w.store(n, std::sync::atomic::Ordering::Relaxed));
        let (tgz, layer) = package(
            &droplet,
            &d.path().join("blobs"),
            Codec::Gzip,
            Some(progress),
        )
        .unwrap();
        // The progress ends at the layer's whole tar.
        assert_eq!(
            written.load(std::sync::atomic::Ordering::Relaxed),
            layer.tar_size
        );
        let tgz_names = names(&tgz);
        assert!(
            tgz_names.contains(&("app/index.html".into(), 2000)),
            "{tgz_names:?}"
        );
        assert!(tgz_names.contains(&("staging_info.yml".into(), 2000)));
        assert!(tgz_names.contains(&("tmp/".into(), 2000)));
        let layer_names = names(&layer);
        assert_eq!(layer_names[0], ("home/".to_string(), 0));
        assert_eq!(layer_names[1], ("home/vcap/".to_string(), 2000));
        assert!(layer_names.contains(&("home/vcap/app/index.html".into(), 2000)));
        let (tgz2, layer2) =
            package(&droplet, &d.path().join("blobs2"), Codec::Gzip, None).unwrap();
        assert_eq!((tgz2.digest, layer2.digest), (tgz.digest, layer.digest));
        let l1 = launcher_layer(&d.path().join("blobs"), Codec::Gzip).unwrap();
        let l2 = launcher_layer(&d.path().join("blobs3"), Codec::Gzip).unwrap();
        assert_eq!(l1.digest, l2.digest);
        assert_eq!(
            names(&l1),
            [
                ("lifecycle/".to_string(), 0),
                ("lifecycle/launch".to_string(), 0)
            ]
        );
    }
}
