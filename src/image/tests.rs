use super::*;
use serde_json::Value;

fn base(media_type: &str, layer_type: &str) -> BaseImage {
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"], "Labels": {"stack": "x"}},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "1".repeat(64))]},
        "history": [{"created_by": "stack import"}]
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": config_bytes.len(), "digest": sha256_digest(&config_bytes)},
        "layers": [{"mediaType": layer_type, "size": 10, "digest": format!("sha256:{}", "2".repeat(64))}]
    });
    BaseImage::parse(&serde_json::to_vec(&manifest).unwrap(), None, &config_bytes).unwrap()
}

fn layer(n: char) -> NewLayer {
    NewLayer {
        blob: LayerBlob {
            codec: Default::default(),
            digest: format!("sha256:{}", n.to_string().repeat(64)),
            diff_id: format!("sha256:{}{n}", "d".repeat(63)),
            size: 42,
            tar_size: 100,
            path: "/nonexistent".into(),
        },
        created_by: format!("layer {n}"),
    }
}

fn spec() -> ImageSpec {
    ImageSpec {
        start_command: "busybox httpd -f -p $PORT".into(),
        labels: [(
            "org.opencontainers.image.title".to_string(),
            "app".to_string(),
        )]
        .into(),
        annotations: [(
            "org.opencontainers.image.base.name".to_string(),
            "stack".to_string(),
        )]
        .into(),
        port: 8080,
        created: rfc3339(1),
    }
}

#[test]
fn config_runs_the_launcher_as_vcap() {
    let b = base(media::OCI_MANIFEST, media::OCI_LAYER_GZIP);
    let img = build(&b, &[layer('a'), layer('b')], &spec()).unwrap();
    let config: Value = serde_json::from_slice(&img.config).unwrap();
    let c = &config["config"];
    assert_eq!(c["User"], "2000:2000");
    assert_eq!(c["WorkingDir"], "/home/vcap/app");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/lifecycle/launch"]));
    assert_eq!(c["Cmd"], serde_json::json!(["busybox httpd -f -p $PORT"]));
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
        "stack env kept: {env:?}"
    );
    assert!(env.contains(&"LANG=en_US.UTF-8") && !env.contains(&"LANG=C"));
    assert!(env.contains(&"HOME=/home/vcap/app") && env.contains(&"PORT=8080"));
    assert_eq!(c["Labels"]["stack"], "x");
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "app");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    assert_eq!(config["history"].as_array().unwrap().len(), 3);
    assert_eq!(config["created"], "1970-01-01T00:00:01Z");
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
}

#[test]
fn manifest_keeps_the_base_flavour() {
    for (mt, lt) in [
        (media::OCI_MANIFEST, media::OCI_LAYER_GZIP),
        (media::DOCKER_MANIFEST, media::DOCKER_LAYER_GZIP),
    ] {
        let b = base(mt, lt);
        let img = build(&b, &[layer('a')], &spec()).unwrap();
        let m: Value = serde_json::from_slice(&img.manifest).unwrap();
        assert_eq!(m["mediaType"], mt);
        assert_eq!(img.manifest_media_type, mt);
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert!(layers.iter().all(|l| l["mediaType"] == lt), "{layers:?}");
        assert_eq!(m["config"]["digest"], img.config_digest.as_str());
        assert_eq!(m["config"]["size"], img.config.len());
        assert_eq!(img.manifest_digest, sha256_digest(&img.manifest));
        assert_eq!(m.get("annotations").is_some(), mt == media::OCI_MANIFEST);
    }
}

#[test]
fn same_inputs_same_bytes() {
    let b = base(media::OCI_MANIFEST, media::OCI_LAYER_GZIP);
    let one = build(&b, &[layer('a')], &spec()).unwrap();
    for _ in 0..5 {
        let again = build(&b, &[layer('a')], &spec()).unwrap();
        assert_eq!(again.manifest, one.manifest);
        assert_eq!(again.manifest_digest, one.manifest_digest);
    }
    let other = build(&b, &[layer('c')], &spec()).unwrap();
    assert_ne!(other.manifest_digest, one.manifest_digest);
}

#[test]
fn rejects_inconsistent_base() {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222"},"layers":[{"mediaType":"x","size":1,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222"}]}"#;
    let err = BaseImage::parse(manifest, None, config).unwrap_err();
    assert!(err.to_string().contains("0 diff_ids for 1 layers"), "{err}");
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
}

#[test]
fn zstd_layers_are_typed_as_such_and_refused_on_a_docker_base() {
    let mut zstd = layer('c');
    zstd.blob.codec = crate::layer::Codec::Zstd;
    let b = base(media::OCI_MANIFEST, media::OCI_LAYER_GZIP);
    let img = build(&b, &[layer('a'), zstd.clone()], &spec()).unwrap();
    let m: Value = serde_json::from_slice(&img.manifest).unwrap();
    let types: Vec<_> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].clone())
        .collect();
    assert_eq!(
        types,
        [
            media::OCI_LAYER_GZIP,
            media::OCI_LAYER_GZIP,
            media::OCI_LAYER_ZSTD
        ]
    );
    let b = base(media::DOCKER_MANIFEST, media::DOCKER_LAYER_GZIP);
    let e = build(&b, &[zstd], &spec()).unwrap_err();
    assert!(matches!(e, ImageError::ZstdOnDocker), "{e}");
}
