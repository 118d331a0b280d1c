//! `dropship serve --blob-store s3://...` against a real S3-protocol server (moto): an upload and
//! a build leave the package, the droplet, the resource-matching content and the registry's
//! blobs and index in the bucket; with the service's local copies deleted, the droplet download,
//! a registry pull (raw `/v2`, with `Range` and HEAD), a package made of matched resources and a
//! new build still work by reading the bucket; a second service with another data dir (and the
//! store from its TOML file) serves the first one's image (skopeo copies it). Bad store
//! settings stop the start.

use crate::support::api::{sha256_hex, v3, Api, Client};
use crate::support::*;
use serde_json::{json, Value};

const BITS: &[u8] = b"<h1>kept in a bucket</h1>\n";

fn s3_env(s3: &S3Server) -> Vec<(String, String)> {
    s3.service_env("dropship")
}

/// GET (or HEAD) `path` with an optional Range: status, headers, body.
async fn raw(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut r = api.http.request(method, api.svc.url(path));
    if let Some(range) = range {
        r = r.header("range", range);
    }
    let r = r.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

fn keys(s3: &S3Server) -> Vec<String> {
    s3.objects().into_iter().map(|(k, _)| k).collect()
}

/// Empties `dir` (files only, recursively), keeping its directories.
fn empty_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            n += empty_files(&p);
        } else {
            std::fs::remove_file(&p).unwrap();
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_reads_back_from_the_bucket_what_it_lost_locally() {
    let s3 = S3Server::start();
    let api = Api::start_env(&[], s3_env(&s3));
    let (s, ready) = api.get("/readyz").await;
    assert_eq!(
        (s, &ready["checks"]["blob_store"]),
        (200, &json!("ok")),
        "{ready}"
    );

    let (app, pkg) = api
        .ready_package("bucket-site", &[("index.html", BITS, 0o644)])
        .await;
    let droplet = api.staged(&pkg).await;
    let data = api.data_dir();
    // The content store's files go to the bucket after the upload's answer.
    let content = format!("dropship/resources/{}/{}", &sha1(BITS)[..2], sha1(BITS));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !keys(&s3).contains(&content) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let in_bucket = keys(&s3);
    for key in [
        format!("dropship/packages/{pkg}.zip"),
        format!("dropship/droplets/{droplet}.tgz"),
        content,
        "dropship/registry/apps/bucket-site/index.json".to_string(),
    ] {
        assert!(in_bucket.contains(&key), "{key} not in {in_bucket:?}");
    }
    // Every registry blob the service has locally for the image is in the bucket too.
    let manifest_path = format!("/v2/apps/bucket-site/manifests/{droplet}");
    let (s, h, manifest) = raw(&api, reqwest::Method::GET, &manifest_path, None).await;
    assert_eq!(s, 200, "{}", api.log());
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    let mut digests = vec![h["docker-content-digest"].to_str().unwrap().to_string()];
    digests.push(m["config"]["digest"].as_str().unwrap().to_string());
    let layers = m["layers"].as_array().unwrap();
    digests.extend(
        layers
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string()),
    );
    for d in &digests {
        let key = format!("dropship/registry-blobs/sha256/{}", &d[7..]);
        assert!(in_bucket.contains(&key), "{key} not in the bucket");
    }
    let tgz = std::fs::read(data.join(format!("droplets/{droplet}.tgz"))).unwrap();
    let top = layers.last().unwrap();
    let top_digest = top["digest"].as_str().unwrap().to_string();
    let top_blob =
        std::fs::read(data.join(format!("registry-blobs/sha256/{}", &top_digest[7..]))).unwrap();

    // This replica loses its copies: packages, droplets, content and the image's registry
    // blobs (not its stack's, a local cache the service made at its start: builds need it).
    for dir in ["packages", "droplets", "resources"] {
        empty_files(&data.join(dir));
    }
    let stack = stack_blobs(&data);
    for d in digests.iter().filter(|d| !stack.contains(d)) {
        std::fs::remove_file(data.join(format!("registry-blobs/sha256/{}", &d[7..]))).unwrap();
    }
    assert!(!stack.contains(&top_digest), "the app's own layer");

    let path = format!("/v3/droplets/{droplet}/download");
    let (s, _, got) = raw(&api, reqwest::Method::GET, &path, None).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&got));
    assert!(got == tgz, "the droplet as it was staged");

    let (s, h, again) = raw(&api, reqwest::Method::GET, &manifest_path, None).await;
    assert_eq!((s, &again), (200, &manifest));
    assert_eq!(sha256_hex(&again), digests[0][7..], "{h:?}");
    let blob = format!("/v2/apps/bucket-site/blobs/{top_digest}");
    let (s, h, part) = raw(&api, reqwest::Method::GET, &blob, Some("bytes=10-99")).await;
    assert_eq!(s, 206);
    assert!(part == top_blob[10..100], "the bytes asked for");
    let len = top_blob.len();
    assert_eq!(h["content-range"], format!("bytes 10-99/{len}").as_str());
    let (s, h, _) = raw(&api, reqwest::Method::HEAD, &blob, None).await;
    assert_eq!(
        (s, h["content-length"].to_str().unwrap()),
        (200, &*len.to_string())
    );
    let (s, _, whole) = raw(&api, reqwest::Method::GET, &blob, None).await;
    assert_eq!((s, sha256_hex(&whole)), (200, top_digest[7..].to_string()));
    let past = format!("bytes={len}-");
    assert_eq!(
        raw(&api, reqwest::Method::GET, &blob, Some(&past)).await.0,
        416
    );
    assert!(
        !data
            .join(format!("registry-blobs/sha256/{}", &top_digest[7..]))
            .exists(),
        "served from the bucket, not copied"
    );

    // A package of matched resources only: the content comes back from the bucket.
    let other = api.app("bucket-match").await;
    let matched = api.package(&other).await;
    let resources = json!([v3("index.html", BITS, "644")]);
    let (s, v) = api.upload(&matched, None, Some(&resources)).await;
    assert_eq!(s, 200, "{v}\n{}", api.log());

    // A new build of the first package: its zip is fetched from the bucket.
    let second = api.staged(&pkg).await;
    assert!(
        data.join(format!("packages/{pkg}.zip")).is_file(),
        "fetched"
    );
    let index = "/v2/apps/bucket-site/tags/list";
    let (_, _, tags) = raw(&api, reqwest::Method::GET, index, None).await;
    let tags: Value = serde_json::from_slice(&tags).unwrap();
    let tags = tags["tags"].as_array().unwrap();
    assert!(
        tags.contains(&json!(droplet)) && tags.contains(&json!(second)),
        "{tags:?}"
    );

    // Deleting the app deletes its package, droplets and repository index from the bucket.
    let r = api.http.delete(api.svc.url(&format!("/v3/apps/{app}")));
    assert_eq!(r.send().await.unwrap().status().as_u16(), 202);
    let left = keys(&s3);
    for gone in [
        format!("dropship/packages/{pkg}.zip"),
        format!("dropship/droplets/{droplet}.tgz"),
        format!("dropship/droplets/{second}.tgz"),
        "dropship/registry/apps/bucket-site/index.json".to_string(),
    ] {
        assert!(
            !left.contains(&gone),
            "{gone} is still in the bucket\n{}",
            api.log()
        );
    }
    let (s, _, _) = raw(&api, reqwest::Method::GET, &manifest_path, None).await;
    assert_eq!(s, 404, "the image is gone from the registry");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_service_on_the_same_bucket_serves_the_first_ones_image() {
    let s3 = S3Server::start();
    let a = Api::start_env(&[], s3_env(&s3));
    let (_, pkg) = a
        .ready_package("shared-site", &[("index.html", BITS, 0o644)])
        .await;
    let droplet = a.staged(&pkg).await;

    // B: another data dir, the store from its TOML file only (no AWS_* variables).
    let dir = tempdir();
    let config = dir.path().join("dropship.toml");
    let table = format!(
        "[blob_store]\nurl = \"s3://{}/dropship\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
         access_key_id = \"k\"\nsecret_access_key = \"s\"\nallow_http = true\n",
        s3.bucket,
        s3.endpoint()
    );
    std::fs::write(&config, table).unwrap();
    let b = Api::start(&["--config", config.to_str().unwrap()]);
    assert_ne!(a.data_dir(), b.data_dir());
    let path = format!("/v2/apps/shared-site/manifests/{droplet}");
    let (s, ha, from_a) = raw(&a, reqwest::Method::GET, &path, None).await;
    let (s2, hb, from_b) = raw(&b, reqwest::Method::GET, &path, None).await;
    assert_eq!((s, s2), (200, 200), "{}", b.log());
    assert!(from_a == from_b);
    assert_eq!(ha["docker-content-digest"], hb["docker-content-digest"]);
    let m: Value = serde_json::from_slice(&from_b).unwrap();
    let config_digest = m["config"]["digest"].as_str().unwrap();
    let blob = format!("/v2/apps/shared-site/blobs/{config_digest}");
    let (s, _, c) = raw(&b, reqwest::Method::GET, &blob, None).await;
    assert_eq!((s, sha256_hex(&c)), (200, config_digest[7..].to_string()));
    // skopeo pulls the whole image from B, which never had any of it.
    require("skopeo", "skopeo");
    let src = format!(
        "docker://127.0.0.1:{}/apps/shared-site:{droplet}",
        b.svc.port
    );
    let out = tempdir();
    skopeo_copy(&src, &out.path().join("copy"), &b.log());
    for l in m["layers"].as_array().unwrap() {
        let d = l["digest"].as_str().unwrap();
        let copied = std::fs::read(out.path().join("copy/blobs/sha256").join(&d[7..])).unwrap();
        assert_eq!(sha256_hex(&copied), d[7..]);
    }
    let stack = "/v2/stacks/busybox/manifests/latest";
    assert_eq!(raw(&b, reqwest::Method::GET, stack, None).await.0, 200);
    assert!(keys(&s3).contains(&"dropship/registry/stacks/busybox/index.json".to_string()));
    let unknown = "/v2/apps/nobody/manifests/latest";
    assert_eq!(raw(&b, reqwest::Method::GET, unknown, None).await.0, 404);
}

#[test]
fn bad_blob_store_settings_stop_the_start() {
    for (value, says) in [
        ("ftp://host/x", "s3://bucket/prefix or a local directory"),
        ("s3://UPPER/x", "bucket name"),
    ] {
        let out = dropship(&["serve", "--listen", "127.0.0.1:0", "--blob-store", value]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success() && err.contains(says),
            "{value}: {err}"
        );
    }
}

/// The digests of the default stack's image (its manifest, config and layers).
fn stack_blobs(data: &std::path::Path) -> Vec<String> {
    let index = std::fs::read(data.join("registry/stacks/busybox/index.json")).unwrap();
    layout_digests(data, &serde_json::from_slice(&index).unwrap())
}

fn sha1(data: &[u8]) -> String {
    crate::support::api::sha1_hex(data)
}
