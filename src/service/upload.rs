//! `POST /v3/packages/:guid/upload`: the bits of a `cf push`.
//!
//! multipart/form-data with `bits` (a zip of the files resource matching did not find) and/or
//! `resources` (JSON list of the matched files: v3 `{"checksum":{"value":SHA1},
//! "size_in_bytes":N,"path":..,"mode":..}` or v2 `{"sha1":..,"size":..,"fn":..,"mode":..}`).
//!
//! 1. Before reading the body: the package must exist (404) and await an upload (422); a
//!    declared Content-Length over `limits.max_upload` is refused (413).
//! 2. Each field streams to a temp file under `uploads/`, hashed on the way; the body is
//!    counted as it arrives and reading stops at the first byte over `limits.max_upload` (413,
//!    the rest is never read). Memory does not grow with the upload. Shape errors (no field,
//!    bad `resources` JSON) answer 422 and leave the package awaiting an upload.
//! 3. The package moves to PROCESSING_UPLOAD (atomically: one upload wins) and is assembled on
//!    a task of its own, so a client hanging up cannot leave it half-done: the bits are
//!    extracted with the intake's protections (zip-slip, budgets) into a private work dir,
//!    matched resources are checked (safe relative paths, no clash with the bits or each other,
//!    in the content store), the package zip is written beside its final name, fsynced and
//!    renamed, and its SHA-256 becomes the package checksum. The files of the bits then go into
//!    the content store for later matching.
//! 4. READY (200 with the package), or FAILED with the reason (422 with the same reason).
//!    Nothing half-written stays behind: temp files and dirs are removed on every path.
//!
//! The package zip: with bits only, the uploaded zip itself (validated, renamed into place);
//! with resources, the bits' entries copied as they are (no recompression) plus the matched
//! files, stored uncompressed (fast to write and read, and the package can never look more
//! like a zip bomb than the bits did).

use super::apps::base;
use super::content::{self, Incoming, Reservation, Store};
use super::error::{ApiError, ApiResult};
use super::resources::{descriptors, Descriptor};
use super::{json, packages, Shared};
use crate::intake::{self, IntakeError, IntakeStats, Limits};
use crate::store::{self, Package};
use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::header;
use axum::Json;
use futures_util::Stream;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Component, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Largest `resources` field: the list is parsed in memory (100 000 entries fit easily).
pub const MAX_RESOURCES_FIELD: u64 = 64 << 20;

fn not_awaiting() -> ApiError {
    ApiError::unprocessable("Package must be in AWAITING_UPLOAD state")
}

/// `1048576` -> `1M`.
fn human(n: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

fn too_large(limit: u64) -> ApiError {
    ApiError::too_large(format!(
        "The upload is larger than {} ({limit} bytes), the limit set by limits.max_upload in \
         the service configuration",
        human(limit)
    ))
}

pub async fn upload(
    State(state): State<Shared>,
    Path(guid): Path<String>,
    req: Request,
) -> ApiResult<Json<Value>> {
    let pkg = packages::get(&state, guid.clone()).await?;
    if pkg.state != "AWAITING_UPLOAD" {
        return Err(not_awaiting());
    }
    SWEPT.get_or_init(|| sweep(state.paths.clone())).await;
    let limit = state.config.max_upload;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let received = receive(&state, req, limit).await?;
    if received.bits.is_none() && received.resources.is_empty() {
        return Err(ApiError::unprocessable(
            "Upload must include either resources or bits",
        ));
    }
    let g = guid.clone();
    if !state
        .db
        .call(move |c| store::claim_package_upload(c, &g))
        .await?
    {
        return Err(not_awaiting());
    }
    // From here on the package must end READY or FAILED even if the client goes away (which
    // drops this future): the work runs on its own task.
    let task = tokio::spawn(process(state.clone(), guid, received));
    let pkg = task.await.map_err(ApiError::internal)??;
    Ok(Json(json::package(&pkg, &base(&state))))
}

/// Set once this process has removed what earlier ones left behind.
static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Temp files and dirs of uploads cut short by a crash, a kill or the bounded stop (destructors
/// do not run then): `uploads/upload-*`, `work/upload-*`, `packages/.upload-*`. Runs before this
/// process's first upload creates any, and only takes what is older than that moment.
async fn sweep(paths: store::Paths) {
    let started = std::time::SystemTime::now();
    let swept = tokio::task::spawn_blocking(move || {
        let mut n = 0;
        for (dir, prefix) in [
            (paths.uploads(), "upload-"),
            (paths.work(), "upload-"),
            (paths.packages(), ".upload-"),
        ] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < started);
                if !old || !e.file_name().to_string_lossy().starts_with(prefix) {
                    continue;
                }
                let path = e.path();
                let gone = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                match gone {
                    Ok(()) => n += 1,
                    Err(err) => eprintln!("dropship: removing {}: {err}", path.display()),
                }
            }
        }
        n
    })
    .await
    .unwrap_or(0);
    if swept > 0 {
        eprintln!("dropship: removed {swept} temp file(s) of interrupted uploads");
    }
}

// --- receiving -----------------------------------------------------------------------------------

/// A field written to a temp file (removed when dropped).
struct Spooled {
    file: NamedTempFile,
    size: u64,
    sha256: String,
}

struct Received {
    /// None when absent or empty.
    bits: Option<Spooled>,
    resources: Vec<Resource>,
}

/// A matched file to put into the package.
#[derive(Debug, Clone)]
struct Resource {
    /// As given, for messages.
    given: String,
    /// Normal components only.
    rel: PathBuf,
    sha1: String,
    size: u64,
    mode: u32,
}

/// The request body, counted as it arrives: past `limit` bytes it fails (setting `over`) and
/// never polls the body again, so the rest is not read.
struct Counted {
    inner: BodyDataStream,
    total: u64,
    limit: u64,
    over: Arc<AtomicBool>,
    state: Shared,
}

impl Stream for Counted {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.over.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(Pin::new(&mut self.inner).poll_next(cx));
        if let Some(Ok(chunk)) = &item {
            let n = chunk.len() as u64;
            self.total += n;
            self.state
                .metrics
                .bytes_uploaded
                .fetch_add(n, Ordering::Relaxed);
            if self.total > self.limit {
                self.over.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(axum::Error::new(io::Error::other(
                    "over limits.max_upload",
                )))));
            }
        }
        Poll::Ready(item)
    }
}

fn multipart_error(
    e: axum::extract::multipart::MultipartError,
    over: &AtomicBool,
    limit: u64,
) -> ApiError {
    if over.load(Ordering::Relaxed) {
        return too_large(limit);
    }
    ApiError::bad_request(format!(
        "The upload is not valid multipart/form-data or was cut short: {}",
        e.body_text()
    ))
}

/// Reads the multipart body: `bits` and `resources` to temp files, other fields skipped (but
/// counted). The `resources` list is parsed and checked for shape here.
async fn receive(state: &Shared, req: Request, limit: u64) -> ApiResult<Received> {
    let over = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let counted = Counted {
        inner: body.into_data_stream(),
        total: 0,
        limit,
        over: over.clone(),
        state: state.clone(),
    };
    let req = Request::from_parts(parts, Body::from_stream(counted));
    let mut form = Multipart::from_request(req, &()).await.map_err(|e| {
        ApiError::unprocessable(format!(
            "The upload must be multipart/form-data with a bits and/or a resources field ({})",
            e.body_text()
        ))
    })?;
    let dir = state.paths.uploads();
    let mut bits: Option<Spooled> = None;
    let mut resources: Option<Spooled> = None;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(e, &over, limit))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let slot = match name.as_str() {
            "bits" => &mut bits,
            "resources" => &mut resources,
            _ => {
                while field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(e, &over, limit))?
                    .is_some()
                {}
                continue;
            }
        };
        if slot.is_some() {
            return Err(ApiError::unprocessable(format!(
                "The upload has more than one {name} field"
            )));
        }
        let file = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(&dir)
            .map_err(ApiError::internal)?;
        let mut out = tokio::fs::File::from_std(file.reopen().map_err(ApiError::internal)?);
        let mut hash = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| multipart_error(e, &over, limit))?
        {
            size += chunk.len() as u64;
            if name == "resources" && size > MAX_RESOURCES_FIELD {
                return Err(ApiError::too_large(format!(
                    "The resources field is larger than {}",
                    human(MAX_RESOURCES_FIELD)
                )));
            }
            hash.update(&chunk);
            out.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        out.flush().await.map_err(ApiError::internal)?;
        *slot = Some(Spooled {
            file,
            size,
            sha256: hex::encode(hash.finalize()),
        });
    }
    let resources = match resources {
        Some(r) => tokio::task::spawn_blocking(move || parse_resources(&r))
            .await
            .map_err(ApiError::internal)??,
        None => Vec::new(),
    };
    Ok(Received {
        bits: bits.filter(|b| b.size > 0),
        resources,
    })
}

/// The `resources` field: a JSON list of matched files, each with a safe relative path.
fn parse_resources(field: &Spooled) -> ApiResult<Vec<Resource>> {
    let reader = BufReader::new(File::open(field.file.path()).map_err(ApiError::internal)?);
    let list: Vec<Value> = serde_json::from_reader(reader).map_err(|e| {
        ApiError::unprocessable(format!("The resources field is not a JSON array: {e}"))
    })?;
    let parsed: Vec<Descriptor> = descriptors(&list, usize::MAX)?;
    parsed
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let given = d
                .path
                .ok_or_else(|| ApiError::unprocessable(format!("Resource {i} has no path")))?;
            Ok(Resource {
                rel: PathBuf::new(),
                given,
                sha1: d.sha1,
                size: d.size,
                mode: d.mode.unwrap_or(0o644),
            })
        })
        .collect()
}

/// A resource path as an app-relative path of normal components (like zip entry names:
/// backslashes separate, `..`, absolute and drive paths and NUL are refused).
fn safe_path(given: &str) -> Result<PathBuf, &'static str> {
    if given.contains('\0') {
        return Err("contains a NUL byte");
    }
    let p = given.replace('\\', "/");
    if p.starts_with('/') {
        return Err("absolute path");
    }
    let mut out = PathBuf::new();
    for (i, part) in p.split('/').enumerate() {
        match part {
            "" | "." => {}
            ".." => return Err("contains a `..` component"),
            _ if i == 0
                && part.len() >= 2
                && part.as_bytes()[0].is_ascii_alphabetic()
                && part.as_bytes()[1] == b':' =>
            {
                return Err("absolute Windows path")
            }
            _ => out.push(part),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("names the app root");
    }
    debug_assert!(out.components().all(|c| matches!(c, Component::Normal(_))));
    Ok(out)
}

// --- assembling ----------------------------------------------------------------------------------

/// Why assembling stopped.
enum Failure {
    /// The upload's fault: the package FAILS with this reason (422).
    Invalid(String),
    /// A stored file turned out damaged: forget it, then fail like `Invalid`.
    Damaged { sha1: String, reason: String },
    /// Ours (I/O, database): FAILED, 500, details in the log.
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::Internal(e.to_string())
}

fn not_in_store(r: &Resource) -> String {
    format!(
        "resource {} ({}) is not in the store: upload it in bits",
        r.given, r.sha1
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

/// Assembles the package and records the outcome.
async fn process(state: Shared, guid: String, rx: Received) -> ApiResult<Package> {
    let outcome = assemble(&state, &guid, rx).await;
    let (to, error, checksum, answer) = match outcome {
        Ok(sum) => ("READY", None, Some(sum), None),
        Err(Failure::Invalid(reason)) | Err(Failure::Damaged { reason, .. }) => (
            "FAILED",
            Some(reason.clone()),
            None,
            Some(ApiError::unprocessable(reason)),
        ),
        Err(Failure::Internal(detail)) => (
            "FAILED",
            Some("the upload could not be processed: server error (see the service log)".into()),
            None,
            Some(ApiError::internal(format!(
                "package {guid} upload: {detail}"
            ))),
        ),
    };
    let g = guid.clone();
    let recorded = state
        .db
        .call(move |c| {
            store::set_package_state(c, &g, to, error.as_deref(), checksum.as_deref())?;
            store::get_package(c, &g)
        })
        .await;
    let pkg = match recorded {
        Ok(p) => p,
        Err(e) => {
            // Not READY, so no package file either.
            let _ = fs::remove_file(state.paths.package(&guid));
            return Err(e.into());
        }
    };
    if let Some(e) = answer {
        return Err(e);
    }
    pkg.ok_or_else(|| ApiError::not_found("Package"))
}

async fn assemble(state: &Shared, guid: &str, rx: Received) -> Result<String, Failure> {
    let store = Store::of(state);
    let Received { bits, resources } = rx;
    let work = tempfile::Builder::new()
        .prefix("upload-")
        .tempdir_in(state.paths.work())
        .map_err(internal)?;
    let tree = work.path().to_path_buf();

    // The bits, extracted and vetted; the resources checked against them.
    let limits = state.config.limits;
    let bits_path = bits.as_ref().map(|b| b.file.path().to_path_buf());
    let t = tree.clone();
    let resources = blocking(move || prepare(bits_path, &t, resources, &limits)).await?;

    // The matched files, from the store (pinned until the package is written).
    let stored: Vec<&Resource> = resources.iter().filter(|r| r.size > 0).collect();
    for r in resources.iter().filter(|r| r.size == 0) {
        if r.sha1 != content::EMPTY_SHA1 {
            return Err(Failure::Invalid(not_in_store(r)));
        }
    }
    let wanted = stored.iter().map(|r| (r.sha1.clone(), r.size)).collect();
    let reservation = match store.reserve(wanted).await.map_err(internal)? {
        Ok(r) => r,
        Err(i) => return Err(Failure::Invalid(not_in_store(stored[i]))),
    };

    // The package file.
    let dest = state.paths.package(guid);
    let written = blocking(move || write_package(bits, resources, reservation, dest)).await;
    let checksum = match written {
        Ok(sum) => sum,
        Err(Failure::Damaged { sha1, reason }) => {
            if let Err(e) = store.forget(&sha1).await {
                eprintln!("dropship: content store: forgetting {sha1}: {e}");
            }
            return Err(Failure::Damaged { sha1, reason });
        }
        Err(e) => return Err(e),
    };

    // The bits' files, for later matching. A failure here costs only future matches.
    let max = state.config.resource_cache;
    let hashed = blocking(move || Ok(hash_tree(&tree, max))).await?;
    if let Err(e) = store.put(hashed).await {
        eprintln!("dropship: content store: {e}");
    }
    drop(work);
    Ok(checksum)
}

/// Intake messages name the files they were given and the CLI's flags: show the upload's terms
/// instead of temp paths ("bits: entry ...") and the service's configuration keys.
fn describe(e: &IntakeError, zip: &std::path::Path, tree: &std::path::Path) -> String {
    let tree_prefix = format!("{}/", tree.display());
    e.to_string()
        .replace(&zip.display().to_string(), "bits")
        .replace(&tree_prefix, "")
        .replace(
            "--max-app-files / DROPSHIP_MAX_APP_FILES",
            "limits.max_app_files",
        )
        .replace(
            "--max-app-size / DROPSHIP_MAX_APP_SIZE",
            "limits.max_app_size",
        )
        .replace(
            "--max-zip-ratio / DROPSHIP_MAX_ZIP_RATIO",
            "limits.max_zip_ratio",
        )
}

/// Extracts the bits into `tree` and checks the resources: safe paths, each once, none inside
/// another or clashing with the bits, and the whole app within the limits.
fn prepare(
    bits: Option<PathBuf>,
    tree: &std::path::Path,
    mut resources: Vec<Resource>,
    limits: &Limits,
) -> Result<Vec<Resource>, Failure> {
    let stats = match &bits {
        Some(zip) => match intake::extract_zip(zip, tree, limits) {
            Ok(s) => s,
            Err(e @ IntakeError::Io { .. }) if !is_client_io(&e) => return Err(internal(e)),
            Err(e) => return Err(Failure::Invalid(describe(&e, zip, tree))),
        },
        None => IntakeStats::default(),
    };
    let mut seen = std::collections::HashSet::new();
    for r in resources.iter_mut() {
        r.rel = safe_path(&r.given).map_err(|why| {
            Failure::Invalid(format!("resource {:?}: unsafe path: {why}", r.given))
        })?;
        if !seen.insert(r.rel.clone()) {
            return Err(Failure::Invalid(format!(
                "resource {:?} appears more than once",
                r.given
            )));
        }
    }
    for r in &resources {
        let mut ancestors: Vec<&std::path::Path> = r
            .rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        let mut in_bits = true;
        for a in ancestors {
            if seen.contains(a) {
                return Err(Failure::Invalid(format!(
                    "resource {:?} is inside {:?}, which is another resource",
                    r.given,
                    a.display().to_string()
                )));
            }
            if !in_bits {
                continue;
            }
            match fs::symlink_metadata(tree.join(a)) {
                Ok(m) if m.is_dir() => {}
                Ok(m) => {
                    return Err(Failure::Invalid(format!(
                        "resource {:?} is inside {:?}, which is a {} in bits",
                        r.given,
                        a.display().to_string(),
                        if m.file_type().is_symlink() {
                            "symlink"
                        } else {
                            "file"
                        }
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => in_bits = false,
                Err(e) => return Err(internal(e)),
            }
        }
        if in_bits && fs::symlink_metadata(tree.join(&r.rel)).is_ok() {
            return Err(Failure::Invalid(format!(
                "resource {:?} is also in bits",
                r.given
            )));
        }
    }
    let entries = stats.files + stats.dirs + stats.symlinks + resources.len() as u64;
    if entries > limits.max_files {
        return Err(Failure::Invalid(format!(
            "the app has more than {} files and directories with its matched resources \
             (limit limits.max_app_files)",
            limits.max_files
        )));
    }
    let bytes = resources
        .iter()
        .fold(stats.bytes, |n, r| n.saturating_add(r.size));
    if bytes > limits.max_bytes {
        return Err(Failure::Invalid(format!(
            "the app is larger than {} bytes with its matched resources (limit \
             limits.max_app_size)",
            limits.max_bytes
        )));
    }
    Ok(resources)
}

/// I/O errors of the intake that are about the zip (it cannot be read as one), not the disk.
fn is_client_io(e: &IntakeError) -> bool {
    match e {
        IntakeError::Io { source, .. } => matches!(
            source.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
        ),
        _ => true,
    }
}

/// Writes the package at `dest` (temp file beside it, fsync, rename, fsync the directory);
/// returns its SHA-256.
fn write_package(
    bits: Option<Spooled>,
    resources: Vec<Resource>,
    reservation: Reservation,
    dest: PathBuf,
) -> Result<String, Failure> {
    let dir = dest.parent().expect("packages dir").to_path_buf();
    if resources.is_empty() {
        // The uploaded zip is the package, as it is.
        let bits = bits.expect("bits or resources");
        install(bits.file, &dest, &dir).map_err(internal)?;
        return Ok(bits.sha256);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(&dir)
        .map_err(internal)?;
    {
        let mut zip = ZipWriter::new(BufWriter::with_capacity(256 * 1024, tmp.as_file()));
        if let Some(b) = &bits {
            let src = File::open(b.file.path()).map_err(internal)?;
            let mut archive = ZipArchive::new(BufReader::new(src)).map_err(internal)?;
            for i in 0..archive.len() {
                let entry = archive.by_index_raw(i).map_err(internal)?;
                zip.raw_copy_file(entry).map_err(internal)?;
            }
        }
        let mut paths = reservation.paths.iter();
        for r in &resources {
            let name = r.rel.to_str().expect("from a JSON string");
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .unix_permissions(r.mode)
                .large_file(r.size >= u32::MAX as u64);
            zip.start_file(name, options).map_err(internal)?;
            if r.size == 0 {
                continue; // the empty file, checked against its SHA-1 already
            }
            let src = paths.next().expect("one path per stored resource");
            match content::verify_copy(src, &r.sha1, r.size, &mut zip) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Failure::Damaged {
                        sha1: r.sha1.clone(),
                        reason: not_in_store(r),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Failure::Invalid(not_in_store(r)))
                }
                Err(e) => return Err(internal(e)),
            }
        }
        let out = zip.finish().map_err(internal)?;
        out.into_inner().map_err(|e| internal(e.into_error()))?;
    }
    drop(reservation);
    let (sum, _) = sha256_file(tmp.path()).map_err(internal)?;
    tmp.as_file().sync_all().map_err(internal)?;
    tmp.persist(&dest).map_err(|e| internal(e.error))?;
    sync_dir(&dir).map_err(internal)?;
    Ok(sum)
}

/// Moves a complete temp file to `dest` durably: fsync, rename (a copy first when `dir` is on
/// another file system), fsync the directory.
fn install(tmp: NamedTempFile, dest: &std::path::Path, dir: &std::path::Path) -> io::Result<()> {
    tmp.as_file().sync_all()?;
    match tmp.persist(dest) {
        Ok(_) => {}
        Err(e) if e.error.raw_os_error() == Some(libc::EXDEV) => {
            let mut copy = tempfile::Builder::new()
                .prefix(".upload-")
                .tempfile_in(dir)?;
            io::copy(&mut File::open(e.file.path())?, copy.as_file_mut())?;
            copy.as_file().sync_all()?;
            copy.persist(dest).map_err(|e| e.error)?;
        }
        Err(e) => return Err(e.error),
    }
    sync_dir(dir)
}

fn sync_dir(dir: &std::path::Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn sha256_file(path: &std::path::Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// The regular files of the extracted bits worth keeping (see `content::MIN_SIZE`), hashed.
fn hash_tree(tree: &std::path::Path, max: u64) -> Vec<Incoming> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(tree).follow_links(false).min_depth(1) {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let len = meta.len();
        if len < content::MIN_SIZE || len > max {
            continue;
        }
        match content::hash_file(entry.path()) {
            Ok((sha1, size)) if size == len => out.push(Incoming {
                path: entry.path().to_path_buf(),
                sha1,
                size,
            }),
            Ok(_) => {}
            Err(e) => eprintln!(
                "dropship: content store: hashing {}: {e}",
                entry.path().display()
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_are_checked_like_zip_entries() {
        assert_eq!(safe_path("a/b.txt"), Ok(PathBuf::from("a/b.txt")));
        assert_eq!(safe_path("./a//b"), Ok(PathBuf::from("a/b")));
        assert_eq!(safe_path("win\\x"), Ok(PathBuf::from("win/x")));
        assert_eq!(safe_path("1:x"), Ok(PathBuf::from("1:x")));
        for (p, why) in [
            ("../evil", "contains a `..` component"),
            ("a/../../evil", "contains a `..` component"),
            ("..\\evil", "contains a `..` component"),
            ("/etc/passwd", "absolute path"),
            ("C:/x", "absolute Windows path"),
            ("c:evil", "absolute Windows path"),
            ("a\0b", "contains a NUL byte"),
            ("./", "names the app root"),
            ("", "names the app root"),
        ] {
            assert_eq!(safe_path(p), Err(why), "{p:?}");
        }
    }

    #[test]
    fn sizes_read_like_the_config() {
        assert_eq!(human(1 << 20), "1M");
        assert_eq!(human(2 << 30), "2G");
        assert_eq!(human(1000), "1000 bytes");
    }
}
