use super::*;
use crate::image::media;
use crate::layer::hash::sha256_digest;
use serde_json::{json, Value};

/// A stack named `name` with `layers` layers (digits of `seed`), an env and labels of its own.
fn stack(name: &str, seed: char, layers: usize, arch: &str) -> BaseImage {
    let digest = |i: usize| format!("sha256:{}{i}", seed.to_string().repeat(63));
    let config = json!({
        "architecture": arch, "os": "linux", "created": "2020-01-01T00:00:00Z",
        "config": {
            "Env": [format!("PATH=/{seed}/bin:/bin"), format!("STACK_{seed}=1")],
            "Labels": {"io.dropship.stack": name, "org.opencontainers.image.title": name,
                       format!("vendor.{seed}"): "yes"}
        },
        "rootfs": {"type": "layers", "diff_ids": (0..layers).map(digest).collect::<Vec<_>>()},
        "history": (0..layers).map(|i| json!({"created_by": format!("{seed} {i}")})).collect::<Vec<_>>()
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "size": config_bytes.len(),
                   "digest": sha256_digest(&config_bytes)},
        "layers": (0..layers).map(|i| json!({"mediaType": media::OCI_LAYER_GZIP,
                   "size": 10 + i, "digest": digest(i)})).collect::<Vec<_>>()
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    BaseImage::parse(&manifest, None, &config_bytes).unwrap()
}

fn named(s: &BaseImage, name: &str, reference: Option<&str>) -> BaseLabels {
    BaseLabels {
        stack: name.into(),
        name: reference.map(str::to_string),
        digest: s.manifest_digest.clone(),
    }
}

fn app_layers() -> Vec<NewLayer> {
    ['a', 'b', 'c']
        .into_iter()
        .map(|n| NewLayer {
            blob: LayerBlob {
                digest: format!("sha256:{}", n.to_string().repeat(64)),
                diff_id: format!("sha256:{}{n}", "d".repeat(63)),
                size: 42,
                tar_size: 100,
                path: "/nonexistent".into(),
                codec: crate::layer::Codec::Gzip,
            },
            created_by: format!("app layer {n}"),
        })
        .collect()
}

fn spec(base: &BaseLabels) -> ImageSpec {
    let mut spec = ImageSpec {
        start_command: "./run".into(),
        labels: [
            (TITLE_LABEL.to_string(), "shop".to_string()),
            ("io.dropship.start-command".into(), "./run".into()),
        ]
        .into(),
        annotations: [(TITLE_LABEL.to_string(), "shop".to_string())].into(),
        port: 9090,
        created: crate::image::rfc3339(1),
    };
    spec.set_base(base);
    spec
}

/// A build of the app on `s`.
fn built(s: &BaseImage, base: &BaseLabels) -> BaseImage {
    let img = build(s, &app_layers(), &spec(base)).unwrap();
    BaseImage::parse(&img.manifest, None, &img.config).unwrap()
}

#[test]
fn a_rebase_is_the_build_on_the_new_stack() {
    let (old, new) = (
        stack("tiny", '1', 1, "amd64"),
        stack("tiny", '2', 3, "amd64"),
    );
    let (old_names, new_names) = (
        named(&old, "tiny", None),
        named(&new, "tiny", Some("reg/tiny:2")),
    );
    let app = built(&old, &old_names);
    let rebased = rebase(&app, &new, &new_names, false).unwrap();
    let fresh = build(&new, &app_layers(), &spec(&new_names)).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rebased.image.config),
        String::from_utf8_lossy(&fresh.config)
    );
    assert_eq!(rebased.image.manifest, fresh.manifest);
    assert_eq!(rebased.image.manifest_digest, fresh.manifest_digest);
    assert_eq!(rebased.app_layers, app.manifest.layers()[1..].to_vec());
    let config: Value = serde_json::from_slice(&rebased.image.config).unwrap();
    let labels = &config["config"]["Labels"];
    assert_eq!(labels[STACK_LAYERS_LABEL], "3");
    assert_eq!(labels["vendor.2"], "yes");
    assert!(
        labels.get("vendor.1").is_none(),
        "the old stack's labels go"
    );
    assert_eq!(labels["org.opencontainers.image.base.name"], "reg/tiny:2");
    let env = config["config"]["Env"].to_string();
    assert!(
        env.contains("STACK_2=1") && !env.contains("STACK_1"),
        "{env}"
    );
    // And back: the image it was.
    let back = BaseImage::parse(&rebased.image.manifest, None, &rebased.image.config).unwrap();
    let again = rebase(&back, &old, &old_names, false).unwrap();
    assert_eq!(again.image.manifest_digest, app.manifest_digest);
}

#[test]
fn an_image_without_the_record_is_refused() {
    let s = stack("tiny", '1', 1, "amd64");
    let mut app = built(&s, &named(&s, "tiny", None));
    let mut process = app.config.config().clone().unwrap();
    let mut labels = process.labels().clone().unwrap();
    labels.remove(STACK_LAYERS_LABEL);
    process.set_labels(Some(labels));
    app.config.set_config(Some(process));
    let err = rebase(&app, &s, &named(&s, "tiny", None), false).unwrap_err();
    assert!(matches!(err, RebaseError::NotRecorded), "{err}");
    assert!(err.to_string().contains("not built by a dropship"), "{err}");
}

#[test]
fn another_stack_name_or_platform_is_refused_unless_forced() {
    let old = stack("tiny", '1', 1, "amd64");
    let app = built(&old, &named(&old, "tiny", None));
    let other = stack("cflinuxfs4", '2', 1, "amd64");
    let names = named(&other, "cflinuxfs4", None);
    let err = rebase(&app, &other, &names, false).unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert!(err.to_string().contains("\"tiny\""), "{err}");
    let forced = rebase(&app, &other, &names, true).unwrap();
    let config: Value = serde_json::from_slice(&forced.image.config).unwrap();
    assert_eq!(
        config["config"]["Labels"]["io.dropship.stack"],
        "cflinuxfs4"
    );
    assert_eq!(forced.old_stack, "tiny");

    let arm = stack("tiny", '3', 1, "arm64");
    let err = rebase(&app, &arm, &named(&arm, "tiny", None), false).unwrap_err();
    assert!(matches!(err, RebaseError::OtherPlatform { .. }), "{err}");
    assert!(err.to_string().contains("linux/arm64"), "{err}");
}

#[test]
fn a_layer_is_never_described_with_another_compression() {
    let s = stack("tiny", '1', 1, "amd64");
    let names = named(&s, "tiny", None);
    let mut app = built(&s, &names);
    let mut layers = app.manifest.layers().clone();
    let last = layers.last_mut().unwrap();
    let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    *last = Descriptor::new(
        oci_spec::image::MediaType::from(zstd),
        last.size(),
        last.digest().clone(),
    );
    app.manifest.set_layers(layers);
    // A zstd app layer stays zstd on the new stack (read from its media type).
    let out = rebase(&app, &s, &names, false).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&out.image.manifest).unwrap();
    let last = manifest["layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["mediaType"], zstd, "{manifest}");
}
