//! The embedded registry (`/v2/`) of `dropship serve`, against the image the service stores at
//! start-up (its busybox stack, `stacks/busybox:latest`, stored like every image it builds):
//! only stored manifests are served as manifests, blobs honour `Range` and HEAD, bad names
//! and digests are 400 with the OCI error codes (in process, on the router), and skopeo still
//! copies the image (from the process).

use crate::support::api::sha256_hex;
use crate::support::*;
use axum::body::Body;
use axum::http::{HeaderMap, Method};
use serde_json::Value;

const REPO: &str = "/v2/stacks/busybox";

async fn get(api: &InProcess, path: &str, range: Option<&str>) -> (u16, HeaderMap, Vec<u8>) {
    let mut req = api.request(Method::GET, path);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let r = api.send(req.body(Body::empty()).unwrap()).await;
    (r.status, r.headers, r.body)
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(body));
    });
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

/// In process: the answers' shapes need no socket (skopeo's copy, below, does).
#[tokio::test(flavor = "multi_thread")]
async fn manifests_blobs_ranges_and_bad_input() {
    let api = InProcess::start("").await;
    let (s, h, manifest) = get(&api, &format!("{REPO}/manifests/latest"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        h["content-type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();

    // A layer or the config asked as a manifest: unknown, though the store has the blob.
    for digest in [&layer, &config] {
        let (s, _, body) = get(&api, &format!("{REPO}/manifests/{digest}"), None).await;
        assert_eq!((s, error_code(&body).as_str()), (404, "MANIFEST_UNKNOWN"));
    }

    // Range: exactly those bytes; the whole blob otherwise; 416 past the end.
    let (s, _, whole) = get(&api, &format!("{REPO}/blobs/{layer}"), None).await;
    assert_eq!((s, whole.len() as u64), (200, size));
    let (s, h, part) = get(&api, &format!("{REPO}/blobs/{layer}"), Some("bytes=10-109")).await;
    assert_eq!(s, 206);
    assert_eq!(part, whole[10..110]);
    assert_eq!(h["content-range"], format!("bytes 10-109/{size}"));
    assert_eq!(h["content-length"], "100");
    let (s, _, tail) = get(&api, &format!("{REPO}/blobs/{layer}"), Some("bytes=-7")).await;
    assert_eq!((s, tail.as_slice()), (206, &whole[whole.len() - 7..]));
    let past = format!("bytes={size}-");
    let (s, h, _) = get(&api, &format!("{REPO}/blobs/{layer}"), Some(&past)).await;
    assert_eq!(s, 416);
    assert_eq!(h["content-range"], format!("bytes */{size}"));
    let head = format!("{REPO}/blobs/{layer}");
    let r = api.call(Method::HEAD, &head, None, []).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-length"], size.to_string());
    assert_eq!(r.headers["docker-content-digest"], layer.as_str());

    // Checked before the store is touched (paths with `..` never arrive: clients normalise).
    let upper = layer.to_uppercase().replace("SHA256", "sha256");
    for (path, status, code) in [
        (format!("{REPO}/blobs/sha256:1234"), 400, "DIGEST_INVALID"),
        (format!("{REPO}/blobs/{upper}"), 400, "DIGEST_INVALID"),
        (format!("{REPO}/manifests/{upper}"), 400, "DIGEST_INVALID"),
        (format!("{REPO}/manifests/-bad"), 400, "TAG_INVALID"),
        (
            format!("/v2/stacks/Busybox/blobs/{layer}"),
            400,
            "NAME_INVALID",
        ),
        (
            "/v2/stacks/.hidden/manifests/latest".to_string(),
            400,
            "NAME_INVALID",
        ),
        ("/v2/stacks/a..b/tags/list".to_string(), 400, "NAME_INVALID"),
        (
            "/v2/stacks/nothing/manifests/latest".to_string(),
            404,
            "NAME_UNKNOWN",
        ),
        (
            format!("{REPO}/blobs/sha256:{}", "0".repeat(64)),
            404,
            "BLOB_UNKNOWN",
        ),
    ] {
        let (s, _, body) = get(&api, &path, None).await;
        assert_eq!((s, error_code(&body).as_str()), (status, code), "{path}");
    }
}

/// The process: an independent client reads and copies the image over HTTP.
#[test]
fn skopeo_copies_the_stored_stack_image() {
    require("skopeo", "skopeo");
    let svc = Service::start();
    let src = format!("docker://127.0.0.1:{}/stacks/busybox:latest", svc.port);
    let manifest = skopeo_inspect(&src, true);
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let inspected = skopeo_inspect(&src, false);
    assert_eq!(inspected["Layers"][0], layer);
    let out = tempdir();
    skopeo_copy(&src, &out.path().join("copy"), "");
    let copied = out.path().join("copy/blobs/sha256").join(&layer[7..]);
    let copied = std::fs::read(copied).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&copied)), layer);
}
