//! The droplet: Cloud Foundry's layout (`app/ deps/ profile.d/ tmp/ logs/ staging_info.yml`),
//! packaged as image layers (`home/vcap/app/...`, vcap-owned, cut into stable layers: `plan`,
//! `layers`; unchanged ones taken from the layer cache: `cache`) and, when asked, at the same
//! time as the CF droplet tgz (`./app/...`). Plus the launcher layer.

pub mod cache;
pub mod layers;
pub mod plan;

use crate::image::{LAUNCHER, LAUNCHER_PATH};
use crate::layer::tree::{append_bytes, append_parent_dir, append_tree, Owner, TreeOptions};
use crate::layer::{fixed_mtime, Codec, LayerBlob, LayerWriter};
use cache::LayerCache;
use layers::{app_layers, AppLayer, OnLayer};
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

/// What packaging is given besides the droplet and where blobs go.
#[derive(Default)]
pub struct PackOptions<'a> {
    /// Make the CF droplet tgz too (always gzip).
    pub tgz: bool,
    /// The layers' compression.
    pub codec: Codec,
    pub cache: Option<&'a LayerCache>,
    /// The layers the target registry holds (see [`layers::RemoteLayers`]).
    pub remote: Option<&'a layers::RemoteLayers>,
    /// Told the layers' tar bytes so far (hashed and packed).
    pub progress: Option<Box<dyn FnMut(u64) + Send>>,
    /// Told of each layer once it is written.
    pub on_layer: Option<OnLayer<'a>>,
    /// Gives a copy for each new layer's compressed bytes (see [`layers::OnCompress`]).
    pub on_compress: Option<layers::OnCompress<'a>>,
}

/// The droplet's layers, and its tgz when asked (written at the same time on another thread).
pub fn package(
    droplet: &Path,
    blob_dir: &Path,
    o: PackOptions,
) -> io::Result<(Option<LayerBlob>, Vec<AppLayer>)> {
    std::thread::scope(|s| {
        let tgz = o.tgz.then(|| s.spawn(|| droplet_tgz(droplet, blob_dir)));
        let layers = app_layers(droplet, blob_dir, o);
        let tgz = match tgz {
            Some(t) => Some(
                t.join()
                    .map_err(|_| io::Error::other("droplet packaging panicked"))??,
            ),
            None => None,
        };
        Ok((tgz, layers?))
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

    fn cached(cache: &LayerCache) -> PackOptions<'_> {
        PackOptions {
            cache: Some(cache),
            ..PackOptions::default()
        }
    }

    /// A droplet of one app file (`app/index.html`, "hi") in a temp dir, and a cache dir there.
    fn one_file_droplet() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let droplet = d.path().join("droplet");
        std::fs::create_dir_all(droplet.join("app")).unwrap();
        std::fs::write(droplet.join("app/index.html"), "hi").unwrap();
        let cache = d.path().join("cache");
        (d, droplet, cache)
    }

    fn all_names(layers: &[AppLayer]) -> Vec<(String, u64)> {
        layers.iter().flat_map(|l| names(&l.blob)).collect()
    }

    /// A droplet with an app, its node_modules, a deps/0 with a tool and a light deps/1.
    fn sample(droplet: &Path) {
        std::fs::create_dir_all(droplet.join("app/node_modules/x")).unwrap();
        std::fs::write(droplet.join("app/index.html"), "hi").unwrap();
        std::fs::write(droplet.join("app/node_modules/x/i.js"), "1").unwrap();
        std::fs::create_dir_all(droplet.join("deps/0/bin")).unwrap();
        std::fs::write(droplet.join("deps/0/bin/tool"), vec![7; 200 << 10]).unwrap();
        std::fs::create_dir_all(droplet.join("deps/1")).unwrap();
        std::fs::write(droplet.join("deps/1/config.yml"), "name: x").unwrap();
        let info = StagingInfo {
            detected_buildpack: "staticfile".into(),
            start_command: "serve".into(),
        };
        finish_layout(droplet, &info).unwrap();
        assert_eq!(read_info(droplet).unwrap(), info);
    }

    #[test]
    fn droplet_and_layers_share_content_are_reproducible_and_reused() {
        let d = tempfile::tempdir().unwrap();
        let droplet = d.path().join("droplet");
        sample(&droplet);
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let w = written.clone();
        let progress = Box::new(move |n| w.store(n, std::sync::atomic::Ordering::Relaxed));
        let cache = LayerCache::new(d.path().join("cache"), 1 << 30);
        let blobs = d.path().join("blobs");
        let told = std::sync::Mutex::new(Vec::new());
        let (tgz, layers) = package(
            &droplet,
            &blobs,
            PackOptions {
                tgz: true,
                cache: Some(&cache),
                remote: None,
                progress: Some(progress),
                on_layer: Some(&|b: &LayerBlob| told.lock().unwrap().push(b.digest.clone())),
                on_compress: None,
                codec: Codec::Gzip,
            },
        )
        .unwrap();
        let tgz = tgz.unwrap();
        let mut told = told.into_inner().unwrap();
        told.sort();
        let mut made: Vec<_> = layers.iter().map(|l| l.blob.digest.clone()).collect();
        made.sort();
        assert_eq!(told, made, "each layer is told as it is written");
        // deps/0, the app's dependencies, the app (deps/1 is too light for a layer of its own).
        let holds: Vec<_> = layers.iter().map(|l| l.holds.as_str()).collect();
        assert_eq!(holds, ["deps/0 1/1", "app dependencies 1/1", "app 1/1"]);
        // The progress ends at the layers' whole tars.
        let tars: u64 = layers.iter().map(|l| l.blob.tar_size).sum();
        assert_eq!(written.load(std::sync::atomic::Ordering::Relaxed), tars);
        let tgz_names = names(&tgz);
        assert!(
            tgz_names.contains(&("app/index.html".into(), 2000)),
            "{tgz_names:?}"
        );
        assert!(tgz_names.contains(&("staging_info.yml".into(), 2000)));
        assert!(tgz_names.contains(&("tmp/".into(), 2000)));
        for l in &layers {
            let n = names(&l.blob);
            assert_eq!(n[0], ("home/".to_string(), 0), "{n:?}");
            assert_eq!(n[1], ("home/vcap/".to_string(), 2000), "{n:?}");
        }
        // Each entry of the tgz is in the layers under home/vcap, each file in one layer.
        let all = all_names(&layers);
        for (name, uid) in &tgz_names {
            let want = format!("home/vcap/{}", name.trim_start_matches("./"));
            assert!(all.contains(&(want.clone(), *uid)), "{want} in {all:?}");
            if !want.ends_with('/') {
                assert_eq!(all.iter().filter(|(n, _)| *n == want).count(), 1, "{want}");
            }
        }
        assert!(layers.iter().all(|l| !l.reused));
        // Again, into another blob dir: the same layers, from the cache.
        let (none, again) = package(&droplet, &d.path().join("blobs2"), cached(&cache)).unwrap();
        assert!(none.is_none(), "no tgz unless asked");
        let digests = |l: &[AppLayer]| l.iter().map(|l| l.blob.digest.clone()).collect::<Vec<_>>();
        assert_eq!(digests(&again), digests(&layers));
        assert!(again.iter().all(|l| l.reused && l.blob.path.is_file()));
        // Without a cache too.
        let (_, fresh) =
            package(&droplet, &d.path().join("blobs3"), PackOptions::default()).unwrap();
        assert_eq!(digests(&fresh), digests(&layers));
    }

    #[test]
    fn the_launcher_layer_is_the_same_for_every_app() {
        let d = tempfile::tempdir().unwrap();
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

    #[test]
    fn a_cache_entry_that_does_not_match_its_record_is_not_used() {
        let (d, droplet, cache_dir) = one_file_droplet();
        let cache = LayerCache::new(cache_dir.clone(), 1 << 30);
        let (_, first) = package(&droplet, &d.path().join("b1"), cached(&cache)).unwrap();
        let hex = first[0].blob.diff_id.trim_start_matches("sha256:");
        let gz = cache_dir.join(format!("{hex}.gz"));
        // Truncated: not its record's size, dropped and packed again.
        let len = std::fs::metadata(&gz).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&gz).unwrap();
        f.set_len(len - 3).unwrap();
        let (_, second) = package(&droplet, &d.path().join("b2"), cached(&cache)).unwrap();
        assert!(!second[0].reused);
        assert_eq!(second[0].blob.digest, first[0].blob.digest);
        let (_, third) = package(&droplet, &d.path().join("b3"), cached(&cache)).unwrap();
        assert!(third[0].reused, "kept again once packed");
        // A record for another tar size: not used either.
        let record = cache_dir.join(format!("{hex}.gz.json"));
        let mut r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
        r["tar_size"] = serde_json::json!(1);
        std::fs::write(&record, r.to_string()).unwrap();
        let (_, fourth) = package(&droplet, &d.path().join("b4"), cached(&cache)).unwrap();
        assert!(!fourth[0].reused);
    }

    #[test]
    fn a_hit_on_another_file_system_is_used_where_it_is() {
        let d = tempfile::tempdir().unwrap();
        let droplet = d.path().join("droplet");
        sample(&droplet);
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let cache = LayerCache::new(shm.path().join("cache"), 1 << 30);
        let (_, first) = package(&droplet, &d.path().join("b1"), cached(&cache)).unwrap();
        let (_, again) = package(&droplet, &d.path().join("b2"), cached(&cache)).unwrap();
        for (a, f) in again.iter().zip(&first) {
            assert!(
                a.reused && a.blob.path.starts_with(shm.path()),
                "{:?}",
                a.blob
            );
            assert_eq!(
                std::fs::read(&a.blob.path).unwrap(),
                std::fs::read(&f.blob.path).unwrap()
            );
            assert_eq!((&a.blob.digest, a.blob.size), (&f.blob.digest, f.blob.size));
        }
        // On the same file system: linked into the build's blob dir.
        let near = LayerCache::new(d.path().join("cache"), 1 << 30);
        package(&droplet, &d.path().join("b3"), cached(&near)).unwrap();
        let (_, linked) = package(&droplet, &d.path().join("b4"), cached(&near)).unwrap();
        assert!(linked
            .iter()
            .all(|l| l.reused && l.blob.path.starts_with(d.path().join("b4"))));
    }

    #[test]
    fn layers_the_registry_holds_are_not_compressed_again() {
        let d = tempfile::tempdir().unwrap();
        let droplet = d.path().join("droplet");
        sample(&droplet);
        let (_, first) = package(&droplet, &d.path().join("b1"), PackOptions::default()).unwrap();
        let mut remote: layers::RemoteLayers = first
            .iter()
            .map(|l| {
                let b = &l.blob;
                (b.diff_id.clone(), (b.digest.clone(), b.size, b.codec))
            })
            .collect();
        // The app's own files changed since: that layer is packed, the others are found.
        std::fs::write(droplet.join("app/index.html"), "changed").unwrap();
        let blobs = d.path().join("b2");
        let with = |r| PackOptions {
            remote: Some(r),
            ..PackOptions::default()
        };
        let (_, again) = package(&droplet, &blobs, with(&remote.clone())).unwrap();
        let found: Vec<bool> = again.iter().map(|l| l.reused).collect();
        assert_eq!(found, [true, true, false], "{again:?}");
        for (a, f) in again.iter().zip(&first).take(2) {
            assert_eq!((&a.blob.digest, a.blob.size), (&f.blob.digest, f.blob.size));
            assert_eq!(a.blob.tar_size, f.blob.tar_size);
            assert!(
                !a.blob.path.exists(),
                "nothing written for a layer the registry has"
            );
        }
        assert!(again[2].blob.path.is_file());
        // Held in another compression: not the layer asked for.
        for v in remote.values_mut() {
            v.2 = Codec::Zstd;
        }
        let other = PackOptions {
            remote: Some(&remote),
            ..PackOptions::default()
        };
        let (_, gz) = package(&droplet, &d.path().join("b3"), other).unwrap();
        assert!(gz.iter().all(|l| !l.reused));
    }

    #[test]
    fn a_layer_whose_shape_was_never_kept_is_packed_in_one_pass() {
        let (d, droplet, cache_dir) = one_file_droplet();
        let cache = LayerCache::new(cache_dir.clone(), 1 << 30);
        let (_, first) = package(&droplet, &d.path().join("b1"), cached(&cache)).unwrap();
        let marks = || {
            std::fs::read_dir(&cache_dir)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".gz.shape"))
                .count()
        };
        assert_eq!(marks(), first.len(), "one shape mark per layer kept");
        // Same shape, other content ("hi" -> "ho"): hashed, missed, packed, kept.
        std::fs::write(droplet.join("app/index.html"), "ho").unwrap();
        let (_, edited) = package(&droplet, &d.path().join("b2"), cached(&cache)).unwrap();
        assert!(!edited[0].reused);
        assert_ne!(edited[0].blob.diff_id, first[0].blob.diff_id);
        // Back to "hi": the shape is known, the diff_id too.
        std::fs::write(droplet.join("app/index.html"), "hi").unwrap();
        let (_, back) = package(&droplet, &d.path().join("b3"), cached(&cache)).unwrap();
        assert!(back[0].reused);
        // Without its shape mark the cache is not asked: packed again, the same blob.
        for e in std::fs::read_dir(&cache_dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".shape") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        let (_, again) = package(&droplet, &d.path().join("b4"), cached(&cache)).unwrap();
        assert!(!again[0].reused);
        assert_eq!(again[0].blob.digest, first[0].blob.digest);
        assert_eq!(marks(), first.len(), "marked again");
    }

    #[test]
    fn the_layer_cache_keeps_each_compression_apart() {
        let (d, droplet, cache_dir) = one_file_droplet();
        let cache = LayerCache::new(cache_dir, 1 << 30);
        let with = |codec| PackOptions {
            codec,
            ..cached(&cache)
        };
        let (_, gz) = package(&droplet, &d.path().join("b1"), with(Codec::Gzip)).unwrap();
        let (_, zst) = package(&droplet, &d.path().join("b2"), with(Codec::Zstd)).unwrap();
        assert!(!zst[0].reused, "a gzip blob is not a zstd layer");
        assert_eq!(
            (zst[0].blob.codec, &zst[0].blob.diff_id),
            (Codec::Zstd, &gz[0].blob.diff_id)
        );
        let (_, again) = package(&droplet, &d.path().join("b3"), with(Codec::Zstd)).unwrap();
        assert!(again[0].reused, "the zstd blob is kept apart");
        assert_eq!(again[0].blob.digest, zst[0].blob.digest);
    }
}
