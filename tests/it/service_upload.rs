//! Package uploads and resource matching through HTTP against a real `dropship serve`: a bits
//! upload makes a READY package whose files resource matching then knows; a second push sends
//! only what changed plus the matched `resources` and gets a complete package; the upload limit
//! answers 413 before the body is read; hostile zips and unknown resources FAIL the package with
//! the reason; many uploads at once keep the service's memory flat; the store is bounded (LRU).

use crate::support::api::*;
use crate::support::*;
use axum::http::Method;
use serde_json::{json, Value};
use std::io::{Cursor, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

// --- helpers -------------------------------------------------------------------------------------

/// Path -> (content, mode) of every file entry of a zip on disk.
fn zip_files(path: &Path) -> std::collections::BTreeMap<String, (Vec<u8>, u32)> {
    let mut a = ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..a.len() {
        let mut e = a.by_index(i).unwrap();
        if e.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(
            e.name().unwrap().to_string(),
            (data, e.unix_mode().unwrap() & 0o7777),
        );
    }
    out
}

const INDEX: &[u8] = b"<html><body>hello from dropship</body></html>\n";
const CSS: &[u8] = b"body { color: rebeccapurple; }\n";
const RUN: &[u8] = b"#!/bin/sh\nexec httpd -f -p \"$PORT\"\n";

fn first_files() -> Vec<F<'static>> {
    vec![
        ("index.html", INDEX, 0o644),
        ("css/site.css", CSS, 0o640),
        ("bin/run.sh", RUN, 0o755),
    ]
}

/// App + package + bits upload of [`first_files`]; returns the package guid.
async fn first_push(api: &impl Client, app: &str) -> String {
    let pkg = api.package(app).await;
    let bits = zip_of(&first_files());
    let (s, v) = api.upload(&pkg, Some(bits.clone()), None).await;
    assert_eq!(s, 200, "{v}\n{}", api.log());
    assert_eq!(v["state"], "READY", "{v}");
    let file = std::fs::read(api.package_file(&pkg)).unwrap();
    assert_eq!(file, bits, "bits alone: the package is the uploaded zip");
    assert_eq!(v["data"]["checksum"]["type"], "sha256");
    assert_eq!(v["data"]["checksum"]["value"], sha256_hex(&file));
    pkg
}

// --- tests ---------------------------------------------------------------------------------------

#[tokio::test]
async fn bits_upload_makes_a_ready_package_whose_files_then_match() {
    let api = Api::start(&[]);
    // What a killed service leaves behind goes before the first upload.
    let data = api.svc.data_dir();
    std::fs::write(data.join("uploads/upload-Xk3d9a"), b"half an upload").unwrap();
    std::fs::create_dir_all(data.join("work/upload-Pq81zz/app/lib")).unwrap();
    std::fs::write(data.join("packages/.upload-Zz0912"), b"half a package").unwrap();
    std::fs::write(data.join("uploads/keep.txt"), b"not ours").unwrap();
    let app = api.app("shop").await;
    let pkg = first_push(&api, &app).await;
    api.assert_no_leftovers();
    assert!(data.join("uploads/keep.txt").exists());
    let shown = api.show(&pkg).await;
    assert_eq!(shown.state, PackageState::Ready);
    assert!(shown.data.error.is_none(), "{shown:?}");
    assert_eq!(
        shown.data.checksum.value.as_ref().unwrap().len(),
        64,
        "{shown:?}"
    );

    let known = [
        v3("index.html", INDEX, "644"),
        v3("css/site.css", CSS, "640"),
        v3("bin/run.sh", RUN, "755"),
    ];
    let mut wrong_size = v3("other.html", INDEX, "644");
    wrong_size["size_in_bytes"] = json!(INDEX.len() + 1);
    let query = vec![
        known[0].clone(),
        wrong_size,
        v3("new.js", b"console.log(1)\n", "644"),
        known[1].clone(),
        v3("empty.txt", b"", "644"),
        known[2].clone(),
    ];
    let (s, v) = api.matches(&query).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["resources"].as_array().unwrap(),
        &known.to_vec(),
        "exactly the uploaded files, echoed as sent, in order (same SHA-1 with another size is \
         not a match; nor is the empty file)"
    );

    // Bits are uploaded once.
    let (s, v) = api.upload(&pkg, Some(zip_of(&first_files())), None).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["errors"][0]["detail"],
        "Package must be in AWAITING_UPLOAD state"
    );
    assert_eq!(v["errors"][0]["title"], "CF-UnprocessableEntity");

    // Shape errors leave the package waiting: nothing to upload (422), a form without any
    // part (400, not multipart), resources that are not a list of files (422).
    let fresh = api.package(&app).await;
    let (s, v) = api.upload(&fresh, None, Some(&json!([]))).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["errors"][0]["detail"],
        "Upload must include either resources or bits"
    );
    let (s, v) = api.upload(&fresh, None, None).await;
    assert_eq!(
        (s, v["errors"][0]["title"].as_str()),
        (400, Some("CF-MessageParseError")),
        "{v}"
    );
    let (s, v) = api
        .upload(&fresh, None, Some(&json!([{"path": "x"}])))
        .await;
    assert_eq!(
        (s, v["errors"][0]["detail"].as_str()),
        (422, Some("Resource 0 has no checksum")),
        "{v}"
    );
    let (s, v) = api
        .upload(&fresh, None, Some(&json!({"not": "a list"})))
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("The resources field is not a JSON array"),
        "{v}"
    );
    assert_eq!(api.show(&fresh).await.state, PackageState::AwaitingUpload);

    // Two uploads racing for one package: exactly one wins, whatever the timing.
    let race = api.package(&app).await;
    let big = zip_of(&[("blob.bin", &noise(4 << 20, 9), 0o644)]);
    let (one, two) = tokio::join!(
        api.upload(&race, Some(big.clone()), None),
        api.upload(&race, Some(big.clone()), None)
    );
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(statuses, [200, 422], "{one:?} {two:?}");
    let loser = if one.0 == 422 { &one.1 } else { &two.1 };
    assert_eq!(
        loser["errors"][0]["detail"],
        "Package must be in AWAITING_UPLOAD state"
    );
    assert_eq!(api.show(&race).await.state, PackageState::Ready);
    assert_eq!(std::fs::read(api.package_file(&race)).unwrap(), big);

    let (_, metrics) = http_get(api.svc.port, "/metrics").unwrap();
    let uploaded: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("dropship_uploaded_bytes_total "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        uploaded >= 2 * zip_of(&first_files()).len() as u64,
        "both bits uploads counted: {uploaded}"
    );
    api.assert_no_leftovers();
}

#[tokio::test]
async fn matched_resources_plus_changed_bits_make_a_complete_package() {
    let api = Api::start(&[]);
    let app = api.app("shop").await;
    first_push(&api, &app).await;

    // Second push: css changed (in bits, with a new file), index.html and run.sh matched
    // (v3 and v2 shapes).
    let css2: &[u8] = b"body { color: tomato; }\n";
    let pkg = api.package(&app).await;
    let bits = zip_of(&[
        ("css/site.css", css2, 0o600),
        ("js/app.js", b"go()\n", 0o644),
    ]);
    let resources = json!([
        v3("index.html", INDEX, "644"),
        {"fn": "bin/run.sh", "sha1": sha1_hex(RUN), "size": RUN.len(), "mode": "0755"},
    ]);
    let (s, v) = api.upload(&pkg, Some(bits), Some(&resources)).await;
    assert_eq!(s, 200, "{v}\n{}", api.svc.log());
    assert_eq!(v["state"], "READY", "{v}");
    let path = api.package_file(&pkg);
    assert_eq!(
        v["data"]["checksum"]["value"],
        sha256_hex(&std::fs::read(&path).unwrap())
    );
    let files = zip_files(&path);
    let expect = [
        ("bin/run.sh", RUN, 0o755),
        ("css/site.css", css2, 0o600),
        ("index.html", INDEX, 0o644),
        ("js/app.js", b"go()\n".as_slice(), 0o644),
    ];
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        expect.iter().map(|e| e.0).collect::<Vec<_>>()
    );
    for (name, data, mode) in expect {
        let (got, got_mode) = &files[name];
        assert_eq!(got.as_slice(), data, "{name}");
        assert_eq!(*got_mode, mode, "{name} mode {got_mode:o}");
    }

    // Resources only, no bits; the changed css is matchable now.
    let pkg = api.package(&app).await;
    let resources = json!([
        v3("site.css", css2, "4755"),
        v3("www/index.html", INDEX, "644")
    ]);
    let (s, v) = api.upload(&pkg, None, Some(&resources)).await;
    assert_eq!(s, 200, "{v}");
    let files = zip_files(&api.package_file(&pkg));
    assert_eq!(files["site.css"], (css2.to_vec(), 0o755), "setuid dropped");
    assert_eq!(files["www/index.html"].0, INDEX);
    assert_eq!(files.len(), 2);

    // A resource the store does not have fails the package, naming it.
    let pkg = api.package(&app).await;
    let ghost: &[u8] = b"never uploaded\n";
    let resources = json!([
        v3("index.html", INDEX, "644"),
        v3("lib/ghost.rb", ghost, "644")
    ]);
    let (s, v) = api.upload(&pkg, None, Some(&resources)).await;
    let reason = format!(
        "resource lib/ghost.rb ({}) is not in the store: upload it in bits",
        sha1_hex(ghost)
    );
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["errors"][0]["detail"], reason.as_str());
    let shown = api.show(&pkg).await;
    assert_eq!(shown.state, PackageState::Failed);
    assert_eq!(shown.data.error.as_deref(), Some(reason.as_str()));
    assert!(!api.package_file(&pkg).exists());

    // Resource paths are checked like zip entries; clashes with bits are refused.
    for (resources, bits, words) in [
        (
            json!([v3("../../etc/cron.d/x", INDEX, "644")]),
            None,
            "unsafe path: contains a `..` component",
        ),
        (
            json!([v3("/etc/passwd", INDEX, "644")]),
            None,
            "unsafe path: absolute path",
        ),
        (
            json!([v3("index.html", INDEX, "644")]),
            Some(zip_of(&[("index.html", b"x", 0o644)])),
            "is also in bits",
        ),
        (
            json!([v3("css/site.css/x", INDEX, "644")]),
            Some(zip_of(&[("css/site.css", b"x", 0o644)])),
            "which is a file in bits",
        ),
    ] {
        let pkg = api.package(&app).await;
        let (s, v) = api.upload(&pkg, bits, Some(&resources)).await;
        assert_eq!(s, 422, "{v}");
        let detail = v["errors"][0]["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{detail}");
        assert_eq!(api.show(&pkg).await.state, PackageState::Failed);
        assert!(!api.package_file(&pkg).exists());
    }
    assert!(!api.svc.dir.path().join("etc").exists());
    api.assert_no_leftovers();
}

/// Sends a multipart upload of `total` bytes of bits, chunked, `chunk` bytes every `pause`,
/// while reading the answer. Returns the status, the body, and how many bytes of bits had been
/// produced when the answer arrived.
fn slow_upload(
    port: u16,
    path: &str,
    total: usize,
    chunk: usize,
    pause: Duration,
) -> (u16, Value, u64, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let reader = s.try_clone().unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicBool::new(false));
    let (p, a) = (produced.clone(), answered.clone());
    let t = std::thread::spawn(move || read_response(reader, &p, &a));
    let b = "XdropshipX";
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={b}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let head = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"bits\"; filename=\"app.zip\"\r\n\
         Content-Type: application/zip\r\n\r\n"
    );
    let send = |s: &mut TcpStream, data: &[u8]| -> std::io::Result<()> {
        write!(s, "{:x}\r\n", data.len())?;
        s.write_all(data)?;
        s.write_all(b"\r\n")
    };
    send(&mut s, head.as_bytes()).unwrap();
    let mut finished = false;
    let mut seed = 1u64;
    loop {
        if answered.load(Ordering::SeqCst) {
            break;
        }
        let done = produced.load(Ordering::SeqCst) as usize;
        if done >= total {
            let tail = format!("\r\n--{b}--\r\n");
            finished = send(&mut s, tail.as_bytes())
                .and_then(|_| s.write_all(b"0\r\n\r\n"))
                .is_ok();
            break;
        }
        seed += 1;
        let data = noise(chunk.min(total - done), seed);
        if send(&mut s, &data).is_err() {
            break; // the server closed the connection
        }
        produced.fetch_add(data.len() as u64, Ordering::SeqCst);
        std::thread::sleep(pause);
    }
    let (status, body, at) = t.join().unwrap();
    (status, body, at, finished)
}

/// Reads one HTTP response (Content-Length body); records `produced` when its first bytes come.
fn read_response(
    mut r: TcpStream,
    produced: &AtomicU64,
    answered: &AtomicBool,
) -> (u16, Value, u64) {
    r.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = Vec::new();
    let mut at = None;
    let mut tmp = [0u8; 4096];
    loop {
        let n = r.read(&mut tmp).expect("an answer within 60 s");
        if at.is_none() {
            at = Some(produced.load(Ordering::SeqCst));
            answered.store(true, Ordering::SeqCst);
        }
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .expect("content-length");
            if body.len() >= len {
                let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                return (
                    status,
                    serde_json::from_str(&body[..len]).unwrap(),
                    at.unwrap(),
                );
            }
        }
    }
    panic!(
        "connection closed before a full answer: {}",
        String::from_utf8_lossy(&buf)
    );
}

#[tokio::test]
async fn over_limit_upload_gets_413_before_the_body_is_sent() {
    let cfg = tempdir();
    let config = cfg.path().join("dropship.toml");
    std::fs::write(&config, "[limits]\nmax_upload = \"1M\"\n").unwrap();
    let api = Api::start(&["--config", config.to_str().unwrap()]);
    let app = api.app("big").await;
    let pkg = api.package(&app).await;
    let path = format!("/v3/packages/{pkg}/upload");
    let port = api.svc.port;

    // 20 MB, 64 KiB every 20 ms: all of it would take over 6 s.
    let total = 20 << 20;
    let started = Instant::now();
    let (status, body, produced, finished) = tokio::task::spawn_blocking(move || {
        slow_upload(port, &path, total, 64 << 10, Duration::from_millis(20))
    })
    .await
    .unwrap();
    println!(
        "413 after {:?}, {} KiB of {} KiB produced",
        started.elapsed(),
        produced >> 10,
        total >> 10
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["errors"][0]["code"], 10003);
    assert_eq!(body["errors"][0]["title"], "CF-RequestEntityTooLarge");
    let detail = body["errors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("limits.max_upload") && detail.contains("1M"),
        "{detail}"
    );
    assert!(
        !finished,
        "the client was still sending when the answer came"
    );
    assert!(
        produced < (total / 5) as u64,
        "answered after {produced} bytes: the server must stop at the limit, not read the rest"
    );

    // A declared Content-Length over the limit is refused on the headers alone.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /v3/packages/{pkg}/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: multipart/form-data; boundary=X\r\nContent-Length: {total}\r\n\r\n"
    )
    .unwrap();
    let (status, body, _) = read_response(s, &AtomicU64::new(0), &AtomicBool::new(false));
    assert_eq!(status, 413, "{body}");

    // Refused uploads leave the package waiting, and nothing behind; a small upload works.
    assert_eq!(api.show(&pkg).await.state, PackageState::AwaitingUpload);
    api.assert_no_leftovers();
    let (s, v) = api.upload(&pkg, Some(zip_of(&first_files())), None).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("READY")), "{v}");
}

#[tokio::test]
async fn zip_slip_fails_the_package_naming_the_entry() {
    let api = Api::start(&[]);
    let app = api.app("evil").await;
    let pkg = api.package(&app).await;
    let bits = zip_of(&[
        ("index.html", INDEX, 0o644),
        ("../../evil.txt", b"pwned", 0o644),
    ]);
    let (s, v) = api.upload(&pkg, Some(bits), None).await;
    assert_eq!(s, 422, "{v}");
    let detail = v["errors"][0]["detail"].as_str().unwrap();
    assert_eq!(
        detail, "bits: entry \"../../evil.txt\": unsafe path: contains a `..` component",
        "the intake's reason, without server paths"
    );
    let shown = api.show(&pkg).await;
    assert_eq!(shown.state, PackageState::Failed);
    assert_eq!(shown.data.error.as_deref(), Some(detail));
    assert!(shown.data.checksum.value.is_none());
    assert!(!api.package_file(&pkg).exists());
    for d in [
        api.svc.dir.path(),
        &api.svc.data_dir(),
        &api.svc.data_dir().join("work"),
    ] {
        assert!(!d.join("evil.txt").exists(), "{}", d.display());
    }
    // Nothing of a failed upload goes into the content store.
    let (s, v) = api.matches(&[v3("index.html", INDEX, "644")]).await;
    assert_eq!(
        (s, v["resources"].as_array().unwrap().len()),
        (201, 0),
        "{v}"
    );

    // Not a zip at all.
    let pkg = api.package(&app).await;
    let (s, v) = api
        .upload(&pkg, Some(b"this is not a zip file".to_vec()), None)
        .await;
    assert_eq!(s, 422, "{v}");
    let detail = v["errors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("bits: ") && detail.contains("zip"),
        "{detail}"
    );
    assert_eq!(api.show(&pkg).await.state, PackageState::Failed);
    api.assert_no_leftovers();
}

/// In process: a CF error shape needs no socket.
#[tokio::test]
async fn unknown_package_is_404_in_cf_shape() {
    let api = InProcess::start("").await;
    let (s, v) = api
        .upload(
            "00000000-0000-4000-8000-00000000dead",
            Some(zip_of(&first_files())),
            None,
        )
        .await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(
        v,
        json!({"errors": [{"code": 10010, "title": "CF-ResourceNotFound", "detail": "Package not found"}]})
    );
}

/// In process: status codes and bodies of resource matching need no socket.
#[tokio::test]
async fn resource_matches_20000_entries_and_bad_requests() {
    let api = InProcess::start("").await;
    let app = api.app("many").await;
    first_push(&api, &app).await;
    let known = [
        v3("index.html", INDEX, "644"),
        v3("css/site.css", CSS, "640"),
        v3("bin/run.sh", RUN, "755"),
    ];
    let mut list: Vec<Value> = (0..20_000)
        .map(|i| {
            let data = format!("file {i}");
            v3(
                &format!("node_modules/pkg{}/lib/f{i}.js", i % 300),
                data.as_bytes(),
                "644",
            )
        })
        .collect();
    for (at, k) in [(7, &known[0]), (10_000, &known[1]), (19_999, &known[2])] {
        list[at] = k.clone();
    }
    let body = json!({ "resources": list });
    let started = Instant::now();
    let (s, v) = api.post_json("/v3/resource_matches", &body).await;
    let took = started.elapsed();
    println!(
        "resource_matches: 20000 entries ({} KiB of JSON) answered in {took:?}",
        body.to_string().len() >> 10
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["resources"].as_array().unwrap(), &known.to_vec());

    let too_many: Vec<Value> = (0..100_001).map(|_| known[0].clone()).collect();
    let (s, v) = api.matches(&too_many).await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("at most 100000"),
        "{v}"
    );

    let r = api
        .call(
            Method::POST,
            "/v3/resource_matches",
            Some("application/json"),
            "{\"resources\": [",
        )
        .await;
    assert_eq!(r.status, 422);
    let v: Value = r.json();
    assert_eq!(v["errors"][0]["code"], 10008);
    assert_eq!(v["errors"][0]["title"], "CF-UnprocessableEntity");
    assert!(v["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .starts_with("invalid request body"));

    let (s, v) = api
        .matches(&[
            known[0].clone(),
            json!({"checksum": {"value": "nope"}, "size_in_bytes": 1}),
        ])
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["errors"][0]["detail"],
        "Resource 1 has a non-SHA1 checksum value"
    );
    let (s, v) = api
        .post_json("/v3/resource_matches", &json!({"resources": {}}))
        .await;
    assert_eq!(
        (s, v["errors"][0]["detail"].as_str()),
        (422, Some("Resources must be an array"))
    );
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn several_large_uploads_at_once_keep_memory_flat() {
    let api = Arc::new(Api::start(&[]));
    let pid = api.svc.pid().expect("the service's pid");
    let app = api.app("big").await;
    const N: usize = 4;
    const SIZE: usize = 48 << 20;
    let before = peak_rss_kib(pid);
    let mut pkgs = Vec::new();
    let mut sums = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..N {
        let pkg = api.package(&app).await;
        // Stored (incompressible data): the request is as large as the app.
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        w.start_file("index.html", opts).unwrap();
        w.write_all(INDEX).unwrap();
        w.start_file(format!("data/blob{i}.bin"), opts).unwrap();
        w.write_all(&noise(SIZE, i as u64 + 7)).unwrap();
        let bits = w.finish().unwrap().into_inner();
        sums.push(sha256_hex(&bits));
        pkgs.push(pkg.clone());
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = api.upload(&pkg, Some(bits), None).await;
            (r, t.elapsed())
        }));
    }
    let started = Instant::now();
    for (i, t) in tasks.into_iter().enumerate() {
        let ((s, v), took) = t.await.unwrap();
        println!("upload {i}: {s} in {took:?}");
        assert_eq!(s, 200, "{v}\n{}", api.svc.log());
        assert_eq!(v["state"], "READY");
        assert_eq!(v["data"]["checksum"]["value"], sums[i].as_str());
    }
    let after = peak_rss_kib(pid);
    println!(
        "{N} x {} MiB uploaded at once in {:?}; service peak RSS {} MiB -> {} MiB",
        SIZE >> 20,
        started.elapsed(),
        before >> 10,
        after >> 10
    );
    assert!(
        after - before < ((N * SIZE) >> 10) as u64 / 3,
        "peak RSS grew by {} MiB for {} MiB uploaded: uploads must stream to disk",
        (after - before) >> 10,
        (N * SIZE) >> 20
    );
    for (i, pkg) in pkgs.iter().enumerate() {
        let on_disk = sha256_hex(&std::fs::read(api.package_file(pkg)).unwrap());
        assert_eq!(on_disk, sums[i]);
    }
    api.assert_no_leftovers();
}

#[tokio::test]
async fn content_store_evicts_least_recently_used_beyond_resource_cache() {
    let cfg = tempdir();
    let config = cfg.path().join("dropship.toml");
    std::fs::write(&config, "[limits]\nresource_cache = \"150K\"\n").unwrap();
    let api = Api::start(&["--config", config.to_str().unwrap()]);
    let app = api.app("lru").await;
    let (a, b, c) = (noise(60_000, 1), noise(60_000, 2), noise(60_000, 3));
    assert!(a != b && b != c && a != c);
    let all = [
        v3("a.bin", &a, "644"),
        v3("b.bin", &b, "644"),
        v3("c.bin", &c, "644"),
    ];

    let pkg = api.package(&app).await;
    let (s, v) = api
        .upload(
            &pkg,
            Some(zip_of(&[("a.bin", &a, 0o644), ("b.bin", &b, 0o644)])),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = api.matches(&all).await;
    assert_eq!(
        v["resources"].as_array().unwrap(),
        &all[..2].to_vec(),
        "120K fit"
    );

    // A second later `a` is used again (as a resource) and `c` comes in bits: 180K > 150K, so
    // the least recently used file, `b`, goes.
    std::thread::sleep(Duration::from_millis(1100));
    let pkg = api.package(&app).await;
    let (s, v) = api
        .upload(
            &pkg,
            Some(zip_of(&[("c.bin", &c, 0o644)])),
            Some(&json!([all[0]])),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = api.matches(&all).await;
    assert_eq!(
        v["resources"].as_array().unwrap(),
        &vec![all[0].clone(), all[2].clone()]
    );
    let stored: Vec<_> = walkdir::WalkDir::new(api.svc.data_dir().join("resources"))
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    let mut expect = vec![sha1_hex(&a), sha1_hex(&c)];
    expect.sort();
    let mut stored = stored;
    stored.sort();
    assert_eq!(stored, expect, "b's file is gone from disk too");
    let files = zip_files(&api.package_file(&pkg));
    assert_eq!(files["a.bin"].0, a);
    assert_eq!(files["c.bin"].0, c);
}

#[tokio::test]
async fn app_budgets_count_matched_resources_too() {
    let cfg = tempdir();
    let config = cfg.path().join("dropship.toml");
    std::fs::write(&config, "[limits]\nmax_app_files = 4\n").unwrap();
    let api = Api::start(&["--config", config.to_str().unwrap()]);
    let app = api.app("budget").await;
    first_push(&api, &app).await; // 3 files

    // 2 files in bits + 3 matched = 5 entries.
    let pkg = api.package(&app).await;
    let resources = json!([
        v3("index.html", INDEX, "644"),
        v3("css/site.css", CSS, "640"),
        v3("bin/run.sh", RUN, "755")
    ]);
    let bits = zip_of(&[("a.txt", b"a", 0o644), ("b.txt", b"b", 0o644)]);
    let (s, v) = api.upload(&pkg, Some(bits), Some(&resources)).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["errors"][0]["detail"],
        "the app has more than 4 files and directories with its matched resources (limit \
         limits.max_app_files)"
    );
    assert_eq!(api.show(&pkg).await.state, PackageState::Failed);

    // 5 files in bits alone: the intake's own check, in the service's terms.
    let pkg = api.package(&app).await;
    let five: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("f{i}"), vec![b'x'; i + 1]))
        .collect();
    let files: Vec<F> = five
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), 0o644))
        .collect();
    let (s, v) = api.upload(&pkg, Some(zip_of(&files)), None).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["errors"][0]["detail"],
        "bits: more than 4 entries (limit limits.max_app_files)"
    );
    api.assert_no_leftovers();
}
