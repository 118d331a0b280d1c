//! `dropship push`: what `cf push` does against `dropship serve`, for the buildpack flow.
//!
//! 1. The app: a directory (walked with `intake::dir::list_dir`, so `.cfignore` and the cf
//!    CLI's default ignores apply exactly as in `dropship build`) or a zip, uploaded as is.
//! 2. The app's settings from its `manifest.yml` (see `cli/manifest.rs`), flags first. Find
//!    the app by name (`GET /v3/apps?names=`) and set the manifest's env
//!    (`PATCH /v3/apps/:guid/environment_variables`), else create it with them (`POST /v3/apps`).
//! 3. `POST /v3/packages` (bits).
//! 4. Directory apps: SHA-1 and size of every file (streamed, on a few threads), then
//!    `POST /v3/resource_matches` to learn which the server already has.
//! 5. The other files, the directories and the symlinks go into a zip written to a temporary
//!    file (unix modes kept, symlinks as symlinks), streamed to `POST /v3/packages/:guid/upload`
//!    as `bits`, with the matched files as `resources`.
//! 6. Wait for the package to be READY.
//! 7. `POST /v3/builds`; the staging log is streamed live to stderr
//!    (`GET /v3/builds/:guid/logs?follow=true`), then the build is polled until it ends.
//! 8. STAGED: the droplet's image (by digest) on stdout. FAILED: the error on stderr and the
//!    exit code of Cloud Foundry's builder (222 no buildpack detected, 223 compile, 224
//!    release, 225 supply, 226 finalize, 124 staging timeout, else 1).
//!
//! The token goes only into `Authorization: Bearer` headers: it is never printed.

use anyhow::{bail, Context, Result};
use clap::Args;
use dropship::intake::dir::{self, AppEntryKind};
use dropship::intake::manifest::AppManifest;
use dropship::intake::Limits;
use dropship::report::{Event, Reporter};
use dropship::units::format_size;
use futures_util::TryStreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use std::collections::HashSet;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct PushArgs {
    /// The app: a directory (.cfignore honoured) or a zip (uploaded as is); as cf, the current
    /// directory by default.
    #[arg(conflicts_with = "path", default_value = ".")]
    pub source: PathBuf,
    /// The app, as cf's `-p PATH` (instead of SOURCE).
    #[arg(short = 'p', long, value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// The dropship serve API, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "DROPSHIP_API", value_name = "URL")]
    pub api: String,
    /// App name (default: the manifest's, else the source's base name).
    #[arg(long)]
    pub name: Option<String>,
    /// Admin buildpack to use (repeatable; skips detection; the last one is final; default:
    /// the manifest's buildpacks).
    #[arg(short = 'b', long = "buildpack", value_name = "NAME")]
    pub buildpacks: Vec<String>,
    /// Stack to stage on (default: the manifest's, else the server's).
    #[arg(short = 's', long)]
    pub stack: Option<String>,
    /// API token, sent as `Authorization: Bearer`.
    #[arg(long, env = "DROPSHIP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print {app, package, build, droplet, image} as one JSON object on stdout when done.
    #[arg(long)]
    pub json: bool,
}

/// Resource matching goes in batches of this many files (Cloud Controller takes up to 5,000).
const MATCH_BATCH: usize = 1000;
/// Timeout of the small JSON requests (not of the upload or the log stream).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long package processing may take after the upload.
const PACKAGE_WAIT: Duration = Duration::from_secs(3600);
const POLL: Duration = Duration::from_millis(500);

/// How long a followed log may still stream once its build has ended.
const LOG_GRACE: Duration = Duration::from_secs(10);

/// `dropship push`; returns the process exit code.
pub async fn push(mut a: PushArgs) -> Result<i32> {
    a.source = a.path.take().unwrap_or(a.source);
    let meta = std::fs::metadata(&a.source).with_context(|| format!("{}", a.source.display()))?;
    if !meta.is_dir() && !meta.is_file() {
        bail!("{}: not a directory or a zip file", a.source.display());
    }
    let m = manifest_settings(&a)?;
    let name = match (&a.name, &m.name) {
        (Some(n), _) => n.trim().to_string(),
        (None, Some(n)) => n.clone(),
        (None, None) => super::app_name(&a.source)?,
    };
    let buildpacks = if a.buildpacks.is_empty() {
        m.buildpacks.clone().unwrap_or_default()
    } else {
        a.buildpacks.clone()
    };
    let stack = a.stack.clone().or(m.stack.clone());
    if name.is_empty() {
        bail!("--name: the app name cannot be empty");
    }
    let api = Api::new(&a.api, a.token.clone())?;

    // The local work first, so that an unreadable file leaves nothing behind on the server:
    // a directory is listed and hashed, a zip is only opened.
    let source = if meta.is_dir() {
        let src = a.source.clone();
        Source::Dir(tokio::task::spawn_blocking(move || scan(&src)).await??)
    } else {
        Source::Zip(Bits::from_zip(&a.source)?)
    };

    // The app, then a package for it.
    let app = api.find_or_create_app(&name, &m.env).await?;
    let app_guid = str_field(&app, "guid")?;
    let package = api
        .post(
            "/v3/packages",
            json!({"type": "bits", "relationships": {"app": {"data": {"guid": app_guid}}}}),
        )
        .await?;
    let package_guid = str_field(&package, "guid")?;

    // What to upload.
    let bits = match source {
        Source::Dir(files) => {
            let matched = api.resource_matches(&files).await?;
            let src = a.source.clone();
            tokio::task::spawn_blocking(move || zip_unmatched(&src, files, &matched)).await??
        }
        Source::Zip(bits) => bits,
    };
    super::report::progress!(
        "uploading {} files ({}), {} already on the server",
        bits.files,
        dropship::units::format_size(bits.len),
        bits.matched.len()
    );
    api.upload(&package_guid, bits).await?;
    api.wait_for_package(&package_guid).await?;

    // Staging.
    let mut body = json!({"package": {"guid": package_guid}});
    if !buildpacks.is_empty() || stack.is_some() {
        let mut data = json!({"buildpacks": buildpacks});
        if let Some(s) = &stack {
            data["stack"] = json!(s);
        }
        body["lifecycle"] = json!({"type": "buildpack", "data": data});
    }
    let build = api.post("/v3/builds", body).await?;
    let build_guid = str_field(&build, "guid")?;
    super::report::progress!("==> staging {name} (build {build_guid})");
    api.follow_log(&build_guid).await;
    let build = api.wait_for_build(&build_guid).await?;
    if build["state"] == "FAILED" {
        let error = build["error"].as_str().unwrap_or("staging failed");
        eprintln!("dropship: staging failed: {error}");
        return Ok(exit_code(error));
    }
    let droplet_guid = build["droplet"]["guid"]
        .as_str()
        .context("the build is STAGED but names no droplet")?
        .to_string();
    let droplet = api.get(&format!("/v3/droplets/{droplet_guid}")).await?;
    let image = str_field(&droplet, "image")?;
    if a.json {
        let out = json!({
            "app": app_guid, "package": package_guid, "build": build_guid,
            "droplet": droplet_guid, "image": image,
        });
        println!("{out}");
    } else {
        super::report::progress!("==> image {image}");
        println!("{image}");
    }
    Ok(0)
}

/// The app manifest at the source's root (empty without one), its warnings printed, and one
/// more for each setting the service API cannot take.
fn manifest_settings(a: &PushArgs) -> Result<AppManifest> {
    let Some(file) = super::manifest::load(&a.source, &Limits::default())? else {
        return Ok(AppManifest::default());
    };
    for w in super::manifest::push_warnings(&file.manifest) {
        eprintln!("warning: {}: {w}", file.name);
    }
    Ok(file.manifest)
}

/// The exit code of Cloud Foundry's builder for a build error such as
/// `"NoAppDetectedError - None of the buildpacks detected..."`.
pub fn exit_code(error: &str) -> i32 {
    let (name, rest) = error.split_once(" - ").unwrap_or((error, ""));
    match name.trim() {
        "NoAppDetectedError" => 222,
        "BuildpackCompileFailed" => 223,
        "BuildpackReleaseFailed" => 224,
        "StagingTimeExpired" => 124,
        "StagingError" if rest.starts_with("Failed to run all supply scripts") => 225,
        "StagingError" if rest.starts_with("Failed to run finalize script") => 226,
        _ => 1,
    }
}

fn str_field(v: &Value, key: &str) -> Result<String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the API answered without a {key:?}: {v}"))
}

enum Source {
    Dir(Scanned),
    /// Uploaded as it is.
    Zip(Bits),
}

/// One regular file of a directory app, hashed.
struct Resource {
    path: String,
    mode: u32,
    size: u64,
    sha1: String,
}

impl Resource {
    fn json(&self) -> Value {
        json!({
            "checksum": {"value": self.sha1},
            "size_in_bytes": self.size,
            "path": self.path,
            "mode": format!("{:o}", self.mode & 0o777),
        })
    }
}

/// A directory app's entries in walk order, regular files hashed.
struct Scanned {
    entries: Vec<Entry>,
    files: Vec<Resource>,
}

enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    /// Index into `Scanned::files`.
    File(usize),
    Symlink {
        path: String,
        target: String,
    },
}

fn utf8(p: &Path) -> Result<String> {
    p.to_str().map(str::to_string).with_context(|| {
        format!(
            "{}: the name is not UTF-8, it cannot be pushed",
            p.display()
        )
    })
}

/// Lists the app (ignore rules applied) and hashes every regular file, streaming, on a few
/// threads.
fn scan(src: &Path) -> Result<Scanned> {
    let listing = dir::list_dir(src)?;
    let mut entries = Vec::with_capacity(listing.len());
    let mut todo = Vec::new();
    for e in listing {
        let path = utf8(&e.path)?;
        match e.kind {
            AppEntryKind::Dir => entries.push(Entry::Dir { path, mode: e.mode }),
            AppEntryKind::Symlink { target } => entries.push(Entry::Symlink {
                path,
                target: utf8(&target)?,
            }),
            AppEntryKind::File { .. } => {
                entries.push(Entry::File(todo.len()));
                todo.push((path, e.mode));
            }
        }
    }
    let threads = std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .clamp(1, 8)
        .min(todo.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Vec<(usize, String, u64)>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((path, _)) = todo.get(i) else {
                            return Ok(done);
                        };
                        let (f, _) = dir::open_file(&src.join(path))?;
                        let (sha1, size) = sha1_of(f).with_context(|| format!("reading {path}"))?;
                        done.push((i, sha1, size));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("hashing thread panicked"))
            .collect()
    });
    let mut hashed: Vec<Option<(String, u64)>> = vec![None; todo.len()];
    for r in results {
        for (i, sha1, size) in r? {
            hashed[i] = Some((sha1, size));
        }
    }
    let files = todo
        .into_iter()
        .zip(hashed)
        .map(|((path, mode), h)| {
            let (sha1, size) = h.expect("every file hashed");
            Resource {
                path,
                mode,
                size,
                sha1,
            }
        })
        .collect();
    Ok(Scanned { entries, files })
}

/// SHA-1 and length of what `r` yields, read in chunks.
fn sha1_of(mut r: impl Read) -> std::io::Result<(String, u64)> {
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// What goes to the upload endpoint.
struct Bits {
    /// The zip (positioned anywhere; rewound before sending), None when there is nothing to
    /// send.
    zip: Option<std::fs::File>,
    len: u64,
    /// Regular files in the zip.
    files: usize,
    /// Files the server already has (the `resources` field).
    matched: Vec<Value>,
}

impl Bits {
    /// A zip source goes as it is: no matching.
    fn from_zip(path: &Path) -> Result<Bits> {
        let mut f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        let len = f.metadata()?.len();
        // Only to say how many files go up; the server judges the zip.
        let files = zip::ZipArchive::new(&mut f)
            .map(|z| {
                z.file_names()
                    .filter(|n| n.as_ref().is_ok_and(|n| !n.ends_with('/')))
                    .count()
            })
            .unwrap_or(0);
        f.rewind()?;
        Ok(Bits {
            zip: Some(f),
            len,
            files,
            matched: Vec::new(),
        })
    }
}

/// Does the start of this file fail to deflate (media, archives, random data)? Such files are
/// stored in the zip: deflating them costs far more time than it saves bytes.
fn incompressible(f: &mut std::fs::File, size: u64) -> std::io::Result<bool> {
    const SAMPLE: usize = 128 * 1024;
    if size < 16 * 1024 {
        return Ok(false);
    }
    let mut sample = Vec::with_capacity(SAMPLE);
    Read::by_ref(f)
        .take(SAMPLE as u64)
        .read_to_end(&mut sample)?;
    f.rewind()?;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&sample)?;
    let packed = enc.finish()?.len();
    Ok(packed * 100 >= sample.len() * 97)
}

/// Zips the directories, the symlinks and the files the server does not have into a
/// temporary file (deleted when closed). Files that do not deflate are stored.
fn zip_unmatched(src: &Path, scanned: Scanned, matched: &HashSet<(String, u64)>) -> Result<Bits> {
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;
    let tmp = tempfile::tempfile().context("creating a temporary file for the upload")?;
    let mut w = zip::ZipWriter::new(std::io::BufWriter::with_capacity(256 * 1024, tmp));
    let base = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut files = 0;
    let mut matched_list = Vec::new();
    for e in &scanned.entries {
        match e {
            Entry::Dir { path, mode } => {
                w.add_directory(format!("{path}/"), base.unix_permissions(*mode))?;
            }
            Entry::Symlink { path, target } => {
                w.add_symlink(path, target, base.unix_permissions(0o777))?;
            }
            Entry::File(i) => {
                let r = &scanned.files[*i];
                if r.size > 0 && matched.contains(&(r.sha1.clone(), r.size)) {
                    matched_list.push(r.json());
                    continue;
                }
                let (mut f, meta) = dir::open_file(&src.join(&r.path))?;
                let context = || format!("zipping {}", r.path);
                let method = if incompressible(&mut f, meta.len()).with_context(context)? {
                    CompressionMethod::Stored
                } else {
                    CompressionMethod::Deflated
                };
                // Sized as it is now: it may have changed since it was hashed, which is
                // harmless for a file that is uploaded (its hash was only used for matching).
                let opts = base
                    .compression_method(method)
                    .unix_permissions(r.mode)
                    .large_file(meta.len() >= u32::MAX as u64);
                w.start_file(&r.path, opts)?;
                std::io::copy(&mut f, &mut w).with_context(context)?;
                files += 1;
            }
        }
    }
    let tmp = w
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the upload's zip")?;
    // Everything matched (and no directory or symlink): no bits at all, only resources.
    let zipped = scanned.entries.len() - matched_list.len();
    if zipped == 0 && !matched_list.is_empty() {
        return Ok(Bits {
            zip: None,
            len: 0,
            files,
            matched: matched_list,
        });
    }
    let len = tmp.metadata()?.len();
    Ok(Bits {
        zip: Some(tmp),
        len,
        files,
        matched: matched_list,
    })
}

/// The API client: base URL, HTTP client, token.
struct Api {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    fn new(api: &str, token: Option<String>) -> Result<Api> {
        let url = reqwest::Url::parse(api.trim())
            .with_context(|| format!("--api {api:?}: not a URL like http://127.0.0.1:8080"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("--api {api:?}: only http:// and https:// URLs");
        }
        if !url.username().is_empty() || url.password().is_some() {
            bail!("--api: put the token in --token or DROPSHIP_TOKEN, not in the URL");
        }
        if url.query().is_some() || url.fragment().is_some() {
            bail!("--api {api:?}: a base URL has no query or fragment");
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("dropship/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Api {
            base: url.as_str().trim_end_matches('/').to_string(),
            http,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request built on `method url` (with the token), and turns connection failures
    /// and non-2xx answers into errors that say what failed.
    async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let mut req = self.http.request(method.clone(), url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = match build(req).send().await {
            Ok(r) => r,
            Err(e) => {
                if e.is_connect() {
                    // The innermost cause says it best ("Connection refused", a DNS failure,
                    // a certificate problem).
                    let why = cause_list(&e).pop().unwrap_or_default();
                    bail!("could not reach {url}: {why}");
                }
                let cause = causes(&e);
                if e.is_timeout() {
                    bail!("{method} {url}: no answer in time ({cause})");
                }
                bail!("{method} {url}: {cause}");
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let (title, detail) = match serde_json::from_str::<Value>(&body) {
            Ok(v) if v["errors"][0].is_object() => (
                v["errors"][0]["title"].as_str().unwrap_or("").to_string(),
                v["errors"][0]["detail"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v["errors"][0].to_string()),
            ),
            _ => (String::new(), body.trim().chars().take(500).collect()),
        };
        let title = if title.is_empty() {
            String::new()
        } else {
            format!(", {title}")
        };
        let mut msg = format!("{method} {url}: {detail} (HTTP {status}{title})");
        if status == StatusCode::UNAUTHORIZED {
            msg.push_str(if self.token.is_some() {
                ": the API refused the token"
            } else {
                ": the API wants a token: pass --token or set DROPSHIP_TOKEN"
            });
        }
        bail!(msg)
    }

    async fn json_of(method: &Method, url: &str, resp: Response) -> Result<Value> {
        let text = resp
            .text()
            .await
            .with_context(|| format!("{method} {url}: reading the answer"))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {url}: the answer is not JSON: {text:.200}"))
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let url = self.url(path);
        let resp = self
            .send(Method::GET, &url, |r| r.timeout(REQUEST_TIMEOUT))
            .await?;
        Self::json_of(&Method::GET, &url, resp).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send_json(Method::POST, path, body).await
    }

    async fn send_json(&self, method: Method, path: &str, body: Value) -> Result<Value> {
        let url = self.url(path);
        let resp = self
            .send(method.clone(), &url, |r| {
                r.timeout(REQUEST_TIMEOUT).json(&body)
            })
            .await?;
        Self::json_of(&method, &url, resp).await
    }

    async fn find_app(&self, name: &str) -> Result<Option<Value>> {
        let mut url = reqwest::Url::parse(&self.url("/v3/apps"))?;
        url.query_pairs_mut().append_pair("names", name);
        let path = &url.as_str()[self.base.len()..];
        let list = self.get(path).await?;
        Ok(list["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|a| a["name"] == name))
            .cloned())
    }

    /// The app named `name` with `env` among its environment variables: created with them, or
    /// found and given them (`PATCH .../environment_variables`: its other variables stay, as
    /// `cf push` does).
    async fn find_or_create_app(&self, name: &str, env: &[(String, String)]) -> Result<Value> {
        let vars: serde_json::Map<String, Value> =
            env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        if let Some(app) = self.find_app(name).await? {
            super::report::progress!("==> app {name}");
            if !vars.is_empty() {
                let guid = str_field(&app, "guid")?;
                let path = format!("/v3/apps/{guid}/environment_variables");
                self.send_json(Method::PATCH, &path, json!({"var": vars}))
                    .await?;
            }
            return Ok(app);
        }
        let body = json!({"name": name, "environment_variables": vars});
        match self.post("/v3/apps", body).await {
            Ok(app) => {
                super::report::progress!("==> app {name} (created)");
                Ok(app)
            }
            // Created by someone else in the meantime.
            Err(e) => match self.find_app(name).await {
                Ok(Some(app)) => Ok(app),
                _ => Err(e),
            },
        }
    }

    /// Asks which files the server has already; returns their (SHA-1, size).
    async fn resource_matches(&self, scanned: &Scanned) -> Result<HashSet<(String, u64)>> {
        let mut have = HashSet::new();
        // Empty files are left out, as the cf CLI does: they cost nothing to send.
        let candidates: Vec<&Resource> = scanned.files.iter().filter(|r| r.size > 0).collect();
        for batch in candidates.chunks(MATCH_BATCH) {
            let resources: Vec<Value> = batch.iter().map(|r| r.json()).collect();
            let answer = self
                .post("/v3/resource_matches", json!({"resources": resources}))
                .await?;
            for r in answer["resources"].as_array().into_iter().flatten() {
                let sha1 = r["checksum"]["value"].as_str();
                let size = r["size_in_bytes"].as_u64();
                if let (Some(sha1), Some(size)) = (sha1, size) {
                    have.insert((sha1.to_ascii_lowercase(), size));
                }
            }
        }
        Ok(have)
    }

    async fn upload(&self, package: &str, bits: Bits) -> Result<()> {
        use reqwest::multipart::{Form, Part};
        let url = self.url(&format!("/v3/packages/{package}/upload"));
        let resources = serde_json::to_string(&bits.matched)?;
        let mut form = Form::new().text("resources", resources);
        if let Some(mut f) = bits.zip {
            f.rewind()?;
            let stream = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(f),
                256 * 1024,
            );
            let stream = upload_progress(stream, bits.len);
            let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), bits.len)
                .file_name("application.zip")
                .mime_str("application/zip")?;
            form = form.part("bits", part);
        }
        let (started, zipped) = (Instant::now(), bits.len);
        self.send(Method::POST, &url, |r| r.multipart(form)).await?;
        if zipped > 0 {
            let secs = started.elapsed().as_secs_f64();
            let rate = (zipped as f64 / secs.max(0.001)) as u64;
            let size = format_size(zipped);
            super::report::progress!(
                "    uploaded {size} in {secs:.1}s ({}/s)",
                format_size(rate)
            );
        }
        Ok(())
    }

    /// Polls the package until it is READY (FAILED: its error).
    async fn wait_for_package(&self, guid: &str) -> Result<()> {
        let started = Instant::now();
        let deadline = started + PACKAGE_WAIT;
        loop {
            let p = self.get(&format!("/v3/packages/{guid}")).await?;
            match p["state"].as_str() {
                Some("READY") => return Ok(()),
                Some("FAILED") => {
                    let error = p["data"]["error"].as_str().unwrap_or("no reason given");
                    bail!("the package could not be processed: {error}");
                }
                // The upload was answered with success, yet the package never took it.
                Some("AWAITING_UPLOAD") if started.elapsed() > Duration::from_secs(60) => {
                    bail!("the package {guid} is still AWAITING_UPLOAD a minute after the upload")
                }
                state if Instant::now() > deadline => bail!(
                    "the package is still {} after {}",
                    state.unwrap_or("in an unknown state"),
                    humantime::format_duration(PACKAGE_WAIT)
                ),
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Copies the staging log to stderr as it is written, until the build ends. The end is the
    /// build's state, polled beside the stream (never a line of the log, which buildpacks
    /// write): once the build is STAGED or FAILED, the server's stream gets a few seconds to
    /// deliver what is left. A broken stream is reported, not fatal.
    async fn follow_log(&self, build: &str) {
        if super::report::quiet() {
            return;
        }
        let url = self.url(&format!("/v3/builds/{build}/logs?follow=true"));
        let mut resp = match self.send(Method::GET, &url, |r| r).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("no staging log: {e:#}");
                return;
            }
        };
        let mut err = std::io::stderr();
        let mut poll = tokio::time::interval(POLL);
        let mut deadline: Option<Instant> = None;
        loop {
            let grace = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                chunk = resp.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        let _ = err.write_all(&bytes);
                        let _ = err.flush();
                    }
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(
                            "the staging log broke off: {}",
                            causes(&e)
                        );
                        return;
                    }
                },
                _ = poll.tick(), if deadline.is_none() => {
                    if self.build_ended(build).await {
                        deadline = Some(Instant::now() + LOG_GRACE);
                    }
                }
                () = grace => return,
            }
        }
    }

    /// Whether the build is STAGED or FAILED (a failed poll says no).
    async fn build_ended(&self, guid: &str) -> bool {
        match self.get(&format!("/v3/builds/{guid}")).await {
            Ok(b) => matches!(b["state"].as_str(), Some("STAGED" | "FAILED")),
            Err(_) => false,
        }
    }

    async fn wait_for_build(&self, guid: &str) -> Result<Value> {
        loop {
            let b = self.get(&format!("/v3/builds/{guid}")).await?;
            match b["state"].as_str() {
                Some("STAGED" | "FAILED") => return Ok(b),
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}

/// An error's causes, outermost first, without reqwest's repetition of the URL.
fn causes(e: &reqwest::Error) -> String {
    cause_list(e).join(": ")
}

fn cause_list(e: &reqwest::Error) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts
}

/// The upload's bytes as `Event::Progress`: a bar on a terminal, a line every 5 s elsewhere.
fn upload_progress(
    stream: tokio_util::io::ReaderStream<tokio::fs::File>,
    total: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    let reporter = super::report::CliReporter::new();
    let mut done = 0u64;
    stream.inspect_ok(move |chunk| {
        done += chunk.len() as u64;
        let task = "uploading the app".to_string();
        reporter.event(Event::Progress { task, done, total });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_cf_error_names() {
        let cases = [
            ("NoAppDetectedError - None of the buildpacks detected", 222),
            ("BuildpackCompileFailed - Failed to compile droplet: x", 223),
            (
                "BuildpackReleaseFailed - Failed to build droplet release",
                224,
            ),
            (
                "StagingError - Failed to run all supply scripts: buildpack b: 1",
                225,
            ),
            (
                "StagingError - Failed to run finalize script: buildpack b: 1",
                226,
            ),
            (
                "StagingTimeExpired - Staging time expired: bin/compile",
                124,
            ),
            ("StagingError - staging was interrupted", 1),
            ("StagingError - buildpack finalize-ish failed", 1),
            ("something else", 1),
        ];
        for (error, code) in cases {
            assert_eq!(exit_code(error), code, "{error}");
        }
    }

    #[test]
    fn hashes_in_chunks() {
        let data = vec![b'x'; 600 * 1024];
        let (sha1, n) = sha1_of(&data[..]).unwrap();
        assert_eq!(sha1, hex::encode(Sha1::digest(&data)));
        assert_eq!(n, 600 * 1024);
        let (sha1, _) = sha1_of(&b"hello\n"[..]).unwrap();
        assert_eq!(sha1, "f572d396fae9206628714fb2ce00f72e94f2258f");
    }

    #[test]
    fn zips_unmatched_files_dirs_and_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path();
        std::fs::create_dir(src.join("bin")).unwrap();
        std::fs::write(src.join("bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(src.join("bin/run"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(src.join("index.html"), "hello\n").unwrap();
        std::os::unix::fs::symlink("bin/run", src.join("start")).unwrap();
        // Incompressible bytes are stored, text is deflated.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(src.join("noise.bin"), &noise).unwrap();
        std::fs::write(src.join("text.txt"), "lorem ipsum ".repeat(8000)).unwrap();
        let scanned = scan(src).unwrap();
        let matched: HashSet<_> =
            [("f572d396fae9206628714fb2ce00f72e94f2258f".to_string(), 6)].into();
        let bits = zip_unmatched(src, scanned, &matched).unwrap();
        assert_eq!(bits.files, 3);
        assert_eq!(
            bits.matched,
            [
                json!({"checksum": {"value": "f572d396fae9206628714fb2ce00f72e94f2258f"},
                    "size_in_bytes": 6, "path": "index.html", "mode": "644"})
            ]
        );
        let mut f = bits.zip.unwrap();
        f.rewind().unwrap();
        let mut z = zip::ZipArchive::new(f).unwrap();
        let mut seen = Vec::new();
        for i in 0..z.len() {
            let e = z.by_index(i).unwrap();
            seen.push((
                e.name().unwrap().to_string(),
                e.unix_mode().unwrap(),
                e.is_symlink(),
                e.compression() == zip::CompressionMethod::Stored,
            ));
        }
        assert_eq!(
            seen,
            [
                ("bin/".to_string(), 0o40755, false, true),
                ("bin/run".to_string(), 0o100755, false, false),
                ("noise.bin".to_string(), 0o100644, false, true),
                ("start".to_string(), 0o120777, true, true),
                ("text.txt".to_string(), 0o100644, false, false),
            ]
        );
        let mut content = Vec::new();
        z.by_name("noise.bin")
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content, noise);
    }
}
