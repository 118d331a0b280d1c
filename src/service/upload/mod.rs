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
//!    renamed, and its SHA-256 becomes the package checksum; with a shared blob store it is
//!    put there too. The files of the bits then go into the content store for later matching
//!    (with a shared blob store, a request per file: after the answer, on a task of their own).
//! 4. READY (200 with the package), or FAILED with the reason (422 with the same reason).
//!    Nothing half-written stays behind: temp files and dirs are removed on every path.
//!
//! The package zip: with bits only, the uploaded zip itself (validated, renamed into place);
//! with resources, the bits' entries copied as they are (no recompression) plus the matched
//! files, stored uncompressed (fast to write and read, and the package can never look more
//! like a zip bomb than the bits did).
//!
//! Receiving (this file) and assembling (`assemble.rs`) are separate steps.

mod assemble;
mod hash;

use super::apps::base;
use super::content::{self, Reservation, Store};
use super::error::{ApiError, ApiResult};
use super::resource_list::{parse_list, Descriptor, ListError};
use super::resources::{list_error, BYTES_PER_ENTRY};
use super::{json, packages, Shared};
use crate::intake::{self, IntakeError, IntakeStats, Limits};
use crate::store::{self, Package};
use assemble::process;
use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::header;
use axum::Json;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::{Component, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Largest `resources` field: proportional to the number of entries an app may have
/// (`limits.max_app_files`), as for resource matching.
fn max_resources_field(state: &Shared) -> u64 {
    state
        .config
        .limits
        .max_files
        .saturating_mul(BYTES_PER_ENTRY)
}

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
) -> ApiResult<Json<crate::cfapi::Package>> {
    let pkg = packages::get(&state, guid.clone()).await?;
    if !pkg.state.can_upload() {
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
    let (g, me) = (guid.clone(), state.queue.replica.clone());
    if !state
        .db
        .call(move |c| store::claim_package_upload(c, &g, &me))
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
                    Err(err) => tracing::warn!("removing {}: {err}", path.display()),
                }
            }
        }
        n
    })
    .await
    .unwrap_or(0);
    if swept > 0 {
        tracing::info!("removed {swept} temp file(s) of interrupted uploads");
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
    /// As given, for messages; emptied once `rel` says the same.
    given: String,
    /// Normal components only.
    rel: PathBuf,
    sha1: String,
    size: u64,
    mode: u32,
}

impl Resource {
    /// The path as the client gave it.
    fn shown(&self) -> &str {
        match self.given.as_str() {
            "" => self.rel.to_str().unwrap_or_default(),
            given => given,
        }
    }
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
        *slot = Some(spool(state, &mut field, &name, &dir, (&over, limit)).await?);
    }
    let max = state.config.limits.max_files as usize;
    let resources = match resources {
        Some(r) => tokio::task::spawn_blocking(move || parse_resources(&r, max))
            .await
            .map_err(ApiError::internal)??,
        None => Vec::new(),
    };
    Ok(Received {
        bits: bits.filter(|b| b.size > 0),
        resources,
    })
}

/// Writes one field to a temp file under `dir`, hashing it; a `resources` field over its
/// limit stops the upload (`over` and `limit`: the whole body's, for the error).
async fn spool(
    state: &Shared,
    field: &mut axum::extract::multipart::Field<'_>,
    name: &str,
    dir: &std::path::Path,
    (over, limit): (&AtomicBool, u64),
) -> ApiResult<Spooled> {
    let stored = |e| ApiError::storage("the upload", e);
    let file = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(dir)
        .map_err(stored)?;
    let mut out = tokio::fs::File::from_std(file.reopen().map_err(stored)?);
    let mut hash = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(e, over, limit))?
    {
        size += chunk.len() as u64;
        if name == "resources" && size > max_resources_field(state) {
            return Err(ApiError::too_large(format!(
                "The resources field is larger than {} bytes",
                max_resources_field(state)
            )));
        }
        hash.update(&chunk);
        out.write_all(&chunk).await.map_err(stored)?;
    }
    out.flush().await.map_err(stored)?;
    Ok(Spooled {
        file,
        size,
        sha256: hex::encode(hash.finalize()),
    })
}

/// The `resources` field: a JSON list of matched files (at most `max`), each with a path.
fn parse_resources(field: &Spooled, max: usize) -> ApiResult<Vec<Resource>> {
    let reader = BufReader::new(File::open(field.file.path()).map_err(ApiError::internal)?);
    let mut out = Vec::new();
    let mut sink = |batch: Vec<Descriptor>| {
        for d in batch {
            let i = out.len();
            let given = d.path.ok_or_else(|| format!("Resource {i} has no path"))?;
            out.push(Resource {
                rel: PathBuf::new(),
                given: given.into(),
                sha1: hex::encode(d.sha1),
                size: d.size,
                mode: d.mode.map_or(0o644, |m| m.bits()),
            });
        }
        Ok(())
    };
    match parse_list(reader, max, &mut sink) {
        Ok(()) => Ok(out),
        // The sink's only complaint is a missing path: the client's.
        Err(ListError::Sink(detail)) => Err(ApiError::unprocessable(detail)),
        Err(e) => Err(list_error(e, "The resources field is not a JSON array")),
    }
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
    let mut out = PathBuf::with_capacity(p.len());
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
