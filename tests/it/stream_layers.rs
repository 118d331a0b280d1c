//! A big new layer goes to the registry while it is compressed (chunked upload, 4 MiB
//! PATCHes), through the `dropship build` binary, a real registry, and the fault proxy that
//! watches (or breaks) the requests: the image is whole, the layer is sent once, and any
//! failure of the streamed upload falls back to uploading the layer's file.

use crate::support::fault_proxy::*;
use crate::support::*;
use std::path::Path;

const REPO: &str = "apps/streamed";
const UPLOADS: &str = "/v2/apps/streamed/blobs/uploads";

struct Setup {
    tmp: tempfile::TempDir,
    reg: Registry,
    stack: String,
    app: std::path::PathBuf,
}

/// An app with a 24 MB incompressible file (several chunks), an OCI-layout stack (all the
/// registry traffic is the push).
fn setup() -> Setup {
    setup_with(Registry::start())
}

fn setup_with(reg: Registry) -> Setup {
    let tmp = tempdir();
    let stack_dir = tmp.path().join("stack");
    let stack = busybox_stack(tmp.path(), &format!("oci:{}:busybox", stack_dir.display()));
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "<h1>streamed</h1>\n").unwrap();
    random_file(&app.join("noise.bin"), 24 << 20);
    Setup {
        tmp,
        reg,
        stack,
        app,
    }
}

/// Builds through `proxy` into `REPO:latest`, cold (`--no-cache`: the layer cache would have
/// the layer, and nothing would be compressed); the `--json` report and stderr.
fn build(s: &Setup, proxy: &Proxy) -> (serde_json::Value, String) {
    let dump = || {
        proxy.settle();
        proxy.dump()
    };
    let (report, stderr) = build_at(s, &proxy.host(), &[], &dump);
    proxy.assert_clean();
    (report, stderr)
}

/// Builds into `HOST/REPO:latest` with `extra` flags; `dump` tells what the registry saw
/// (once the build is over).
fn build_at(
    s: &Setup,
    host: &str,
    extra: &[&str],
    dump: &dyn Fn() -> String,
) -> (serde_json::Value, String) {
    let mut args = vec!["--no-cache"];
    args.extend(extra);
    build_with(s, host, &args, dump)
}

/// Builds into `HOST/REPO:latest` with `extra` flags (the layer cache used unless they say).
fn build_with(
    s: &Setup,
    host: &str,
    extra: &[&str],
    dump: &dyn Fn() -> String,
) -> (serde_json::Value, String) {
    build_tagged(s, &format!("{host}/{REPO}:latest"), extra, dump)
}

/// Builds into `TARGET` (`HOST/REPO:TAG`) with `extra` flags.
fn build_tagged(
    s: &Setup,
    target: &str,
    extra: &[&str],
    dump: &dyn Fn() -> String,
) -> (serde_json::Value, String) {
    let image = format!("docker://{target}");
    let app = s.app.to_str().unwrap();
    let mut args = vec![
        "build", app, "--stack", &s.stack, "--image", &image, "--json",
    ];
    args.extend(extra);
    let out = dropship(&args);
    let ctx = format!("{}\n--- requests\n{}", text(&out), dump());
    assert!(out.status.success(), "build failed:\n{ctx}");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{ctx}"));
    (json, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The droplet layer that carries the 24 MB file.
fn big_layer(report: &serde_json::Value) -> serde_json::Value {
    let layers = report["layers"].as_array().unwrap();
    let big = layers.iter().max_by_key(|l| l["size"].as_u64().unwrap());
    let big = big.unwrap().clone();
    assert!(big["size"].as_u64().unwrap() > 24_000_000, "{report:#}");
    big
}

/// skopeo copies the image out of the registry (checking every blob's digest) and sees the
/// layers the report names.
fn assert_whole(reg: &Registry, report: &serde_json::Value, out: &Path) {
    let src = format!("docker://{}/{REPO}:latest", reg.host());
    skopeo_copy(&src, out, "");
    let inspected = skopeo_inspect(&src, false);
    assert_eq!(inspected["Digest"], report["digest"]);
    let want: Vec<&serde_json::Value> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    let got: Vec<&serde_json::Value> = inspected["Layers"].as_array().unwrap().iter().collect();
    assert_eq!(got, want);
}

/// The bytes the push report counts, against the sizes of the blobs it lists as uploaded.
fn assert_counted_once(report: &serde_json::Value, digest: &str) {
    let push = &report["push"];
    let uploaded: Vec<&str> = push["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let times = uploaded.iter().filter(|d| **d == digest).count();
    assert_eq!(times, 1, "{push:#}");
    let layers = report["layers"].as_array().unwrap();
    let size_of = |d: &str| {
        layers
            .iter()
            .find(|l| l["digest"] == d)
            .map(|l| l["size"].as_u64().unwrap())
    };
    let layer_bytes: u64 = uploaded.iter().filter_map(|d| size_of(d)).sum();
    let bytes = push["bytes_uploaded"].as_u64().unwrap();
    // The rest is the config (and nothing more than a few KiB of it).
    assert!(
        bytes >= layer_bytes && bytes - layer_bytes < 64 << 10,
        "{push:#}"
    );
}

#[test]
fn a_big_layer_is_streamed_while_it_is_packed_and_sent_once() {
    let s = setup();
    let proxy = Proxy::start(s.reg.port, vec![]);
    let (report, stderr) = build(&s, &proxy);
    let big = big_layer(&report);
    let digest = big["digest"].as_str().unwrap();
    assert_eq!(big["streamed"], true, "{report:#}\n{stderr}");
    assert!(!stderr.contains("streaming a layer"), "{stderr}");
    assert_counted_once(&report, digest);
    // One session carried it: a POST, PATCHes of 4 MiB in order, one PUT with its digest.
    let log = proxy.log();
    let commits: Vec<&Seen> = log
        .iter()
        .filter(|r| r.method == "PUT" && r.query.contains(&digest.replace(':', "%3A")))
        .collect();
    assert_eq!(commits.len(), 1, "{}", proxy.dump());
    let session = commits[0].path.clone();
    let ranges: Vec<&str> = log
        .iter()
        .filter(|r| r.method == "PATCH" && r.path == session)
        .map(|r| r.content_range.as_deref().unwrap())
        .collect();
    let size = big["size"].as_u64().unwrap();
    let chunks = size / (4 << 20);
    assert_eq!(ranges.len() as u64, chunks, "{}", proxy.dump());
    for (i, r) in ranges.iter().enumerate() {
        let start = i as u64 * (4 << 20);
        assert_eq!(*r, format!("{start}-{}", start + (4 << 20) - 1));
    }
    assert_eq!(commits[0].body_len as u64, size - chunks * (4 << 20));
    assert_eq!(
        s.reg.blob_uploads(REPO),
        report["push"]["uploaded"].as_array().unwrap().len()
    );
    assert_whole(&s.reg, &report, &s.tmp.path().join("out"));
}

/// A streamed session broken by `rule` (its second PATCH): the build succeeds, warns once,
/// and the layer goes up from its file, counted once.
fn falls_back(rule: Rule) {
    let s = setup();
    let proxy = Proxy::start(s.reg.port, vec![rule]);
    let (report, stderr) = build(&s, &proxy);
    assert_eq!(proxy.faults(), 1, "{}", proxy.dump());
    let big = big_layer(&report);
    assert_eq!(big["streamed"], false, "{report:#}");
    let warned = stderr
        .matches("streaming a layer while it is packed failed")
        .count();
    assert_eq!(warned, 1, "{stderr}");
    assert_counted_once(&report, big["digest"].as_str().unwrap());
    assert_whole(&s.reg, &report, &s.tmp.path().join("out"));
}

#[test]
fn a_refused_chunk_falls_back_to_the_file() {
    falls_back(
        Rule::on(&["PATCH"], UPLOADS, Fault::Status(416))
            .later_chunks()
            .first(1),
    );
}

#[test]
fn a_connection_cut_mid_stream_falls_back_to_the_file() {
    falls_back(
        Rule::on(&["PATCH"], UPLOADS, Fault::ResetEarly)
            .later_chunks()
            .first(1),
    );
}

#[test]
fn a_registry_that_asks_for_credentials_gets_them_on_every_chunk() {
    use crate::registry_auth::{auth_registry, PASSWORD, USER};
    let s = setup_with(auth_registry());
    let creds = format!("{USER}:{PASSWORD}");
    let (host, log) = (s.reg.host(), || s.reg.log());
    let (report, stderr) = build_at(&s, &host, &["--creds", &creds], &log);
    let big = big_layer(&report);
    assert_eq!(big["streamed"], true, "{report:#}\n{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert_counted_once(&report, big["digest"].as_str().unwrap());
}

#[test]
fn a_zstd_layer_is_streamed_too() {
    let s = setup();
    let (host, log) = (s.reg.host(), || s.reg.log());
    let (report, stderr) = build_at(&s, &host, &["--compression", "zstd"], &log);
    let big = big_layer(&report);
    assert!(
        big["media_type"].as_str().unwrap().ends_with("zstd"),
        "{big}"
    );
    assert_eq!(big["streamed"], true, "{report:#}\n{stderr}");
    assert_counted_once(&report, big["digest"].as_str().unwrap());
    assert_whole(&s.reg, &report, &s.tmp.path().join("out"));
}

/// A build whose target tag has an image already (a runner without a layer cache, building
/// what was pushed before) streams nothing: with `--no-cache` the layer's digest, once known,
/// is found in the registry and no byte of it is sent; with an empty layer cache the tag's
/// image says which layers it has, and they are not even compressed. An edit the layer cache
/// knows (a layer of the same shape, other content) is streamed even so.
#[test]
fn a_layer_the_target_may_have_is_not_streamed_but_an_edit_is() {
    let s = setup();
    let (host, log) = (s.reg.host(), || s.reg.log());
    let cache = s.tmp.path().join("stack-cache");
    let cache = cache.to_str().unwrap();
    let (first, _) = build_with(&s, &host, &["--stack-cache", cache], &log);
    assert_eq!(big_layer(&first)["streamed"], true, "{first:#}");
    // Again on an empty layer cache: the tag exists, the layer is found there.
    let (again, stderr) = build_at(&s, &host, &[], &log);
    let big = big_layer(&again);
    assert_eq!(big["streamed"], false, "{again:#}\n{stderr}");
    assert_eq!(big["digest"], big_layer(&first)["digest"]);
    let push = &again["push"];
    assert_eq!(push["uploaded"].as_array().unwrap().len(), 0, "{push:#}");
    assert!(
        push["bytes_uploaded"].as_u64().unwrap() < 64 << 10,
        "{push:#}"
    );
    // The big file changed, same size: its shape is known to this cache, the layer streams.
    use std::os::unix::fs::FileExt;
    let noise = std::fs::OpenOptions::new()
        .write(true)
        .open(s.app.join("noise.bin"));
    noise.unwrap().write_all_at(b"edited", 12 << 20).unwrap();
    let (edited, stderr) = build_with(&s, &host, &["--stack-cache", cache], &log);
    let big = big_layer(&edited);
    assert_ne!(big["digest"], big_layer(&first)["digest"], "{edited:#}");
    assert_eq!(big["streamed"], true, "{edited:#}\n{stderr}");
    assert_counted_once(&edited, big["digest"].as_str().unwrap());
    assert_whole(&s.reg, &edited, &s.tmp.path().join("out"));
    // A new tag beside the others (a `:<commit>` tag), on a runner without a layer cache:
    // nothing streamed, nothing sent.
    let tag = format!("{host}/{REPO}:commit-2");
    let (tagged, stderr) = build_tagged(&s, &tag, &["--no-cache"], &log);
    assert_eq!(
        big_layer(&tagged)["streamed"],
        false,
        "{tagged:#}\n{stderr}"
    );
    assert_eq!(tagged["digest"], edited["digest"]);
    let push = &tagged["push"];
    assert_eq!(push["uploaded"].as_array().unwrap().len(), 0, "{push:#}");
}
