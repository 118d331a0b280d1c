//! Assembling a received upload into a READY package (or a FAILED one, with the reason).

use super::*;
use crate::store::PackageState;
use zip::unstable::read::ZipIterable;

/// Why assembling stopped.
enum Failure {
    /// The upload's fault: the package FAILS with this reason (422).
    Invalid(String),
    /// A stored file turned out damaged: forget it, then fail like `Invalid`.
    Damaged { sha1: String, reason: String },
    /// Ours (I/O, database): FAILED, 500, details in the log.
    Internal(String),
    /// The data dir's file system is full: FAILED, 507.
    DiskFull,
}

fn internal(e: impl std::error::Error + 'static) -> Failure {
    if super::super::error::is_disk_full(&e) {
        return Failure::DiskFull;
    }
    Failure::Internal(e.to_string())
}

fn not_in_store(r: &Resource) -> String {
    format!(
        "resource {} ({}) is not in the store: upload it in bits",
        r.shown(),
        r.sha1
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

/// Assembles the package and records the outcome.
pub(super) async fn process(state: Shared, guid: String, rx: Received) -> ApiResult<Package> {
    let outcome = assemble(&state, &guid, rx).await;
    let (to, error, checksum, answer) = match outcome {
        Ok(sum) => (PackageState::Ready, None, Some(sum), None),
        Err(Failure::Invalid(reason)) | Err(Failure::Damaged { reason, .. }) => (
            PackageState::Failed,
            Some(reason.clone()),
            None,
            Some(ApiError::unprocessable(reason)),
        ),
        Err(Failure::DiskFull) => (
            PackageState::Failed,
            Some("the upload could not be stored: the server's disk is full".into()),
            None,
            Some(ApiError::disk_full("the upload")),
        ),
        Err(Failure::Internal(detail)) => (
            PackageState::Failed,
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
                tracing::warn!("content store: forgetting {sha1}: {e}");
            }
            return Err(Failure::Damaged { sha1, reason });
        }
        Err(e) => return Err(e),
    };
    // Into the blob store: the package's build may be staged by any replica.
    if let Err(e) = publish(state, guid).await {
        let _ = fs::remove_file(state.paths.package(guid));
        return Err(Failure::Internal(e));
    }

    // The bits' files, for later matching. A failure here costs only future matches. Into a
    // shared blob store that is a request per file: after the answer, not before it.
    let remember = remember(store, work, state.config.resource_cache);
    if state.blobs.is_shared() {
        tokio::spawn(remember);
    } else {
        remember.await;
    }
    Ok(checksum)
}

/// Puts the files of the extracted bits in `work` into the content store, a batch at a time
/// (memory does not grow with the number of files); then removes `work`.
async fn remember(store: Store, work: tempfile::TempDir, max: u64) {
    let tree = work.path().to_path_buf();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let walker = tokio::task::spawn_blocking(move || super::hash::hash_tree(&tree, max, &tx));
    while let Some(batch) = rx.recv().await {
        if let Err(e) = store.put(batch).await {
            tracing::warn!("content store: {e}");
            break;
        }
    }
    drop(rx);
    let _ = walker.await;
    drop(work);
}

async fn publish(state: &Shared, guid: &str) -> Result<(), String> {
    let key = crate::blob::Key::package(guid).map_err(|e| e.to_string())?;
    state.blobs.publish(&key).await.map_err(|e| e.to_string())
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
    check_resources(tree, &mut resources)?;
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

/// Each resource's path made safe; none twice, none inside another (checked in sorted order,
/// where a path's descendants follow it at once: no copies of the paths, no quadratic walk),
/// none inside a file or symlink of the bits, none in the bits already.
fn check_resources(tree: &std::path::Path, resources: &mut [Resource]) -> Result<(), Failure> {
    for r in resources.iter_mut() {
        r.rel = safe_path(&r.given).map_err(|why| {
            Failure::Invalid(format!("resource {:?}: unsafe path: {why}", r.given))
        })?;
        if r.rel.as_os_str() == r.given.as_str() {
            r.given = String::new(); // the path once: `shown()` gives it back
        }
    }
    let mut sorted: Vec<&Resource> = resources.iter().collect();
    sorted.sort_by(|a, b| a.rel.cmp(&b.rel));
    for pair in sorted.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.rel == b.rel {
            return Err(Failure::Invalid(format!(
                "resource {:?} appears more than once",
                b.shown()
            )));
        }
        if b.rel.starts_with(&a.rel) {
            return Err(Failure::Invalid(format!(
                "resource {:?} is inside {:?}, which is another resource",
                b.shown(),
                a.rel.display().to_string()
            )));
        }
    }
    drop(sorted);
    for r in resources.iter() {
        check_against_bits(tree, r)?;
    }
    Ok(())
}

/// A resource may not sit inside a file or symlink of the bits, nor be in the bits itself.
fn check_against_bits(tree: &std::path::Path, r: &Resource) -> Result<(), Failure> {
    let mut ancestors: Vec<&std::path::Path> = r
        .rel
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .collect();
    ancestors.reverse();
    for a in ancestors {
        match fs::symlink_metadata(tree.join(a)) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                return Err(Failure::Invalid(format!(
                    "resource {:?} is inside {:?}, which is a {} in bits",
                    r.shown(),
                    a.display().to_string(),
                    if m.file_type().is_symlink() {
                        "symlink"
                    } else {
                        "file"
                    }
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(internal(e)),
        }
    }
    if fs::symlink_metadata(tree.join(&r.rel)).is_ok() {
        return Err(Failure::Invalid(format!(
            "resource {:?} is also in bits",
            r.shown()
        )));
    }
    Ok(())
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
            // One central directory entry at a time (never an index of the whole archive).
            let src = BufReader::new(File::open(b.file.path()).map_err(internal)?);
            let mut archive =
                ZipIterable::try_new(src, zip::read::Config::default()).map_err(internal)?;
            let files = archive.files().map_err(internal)?;
            while let Some(meta) = files.next() {
                let entry = meta
                    .and_then(|m| m.with_reader(files.reader_mut(), Default::default()))
                    .map_err(internal)?;
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
    let (sum, _) = hex_sha256_file(tmp.path()).map_err(internal)?;
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

/// SHA-256 (hex, no prefix) and length of a file.
fn hex_sha256_file(path: &std::path::Path) -> io::Result<(String, u64)> {
    let (digest, n) = crate::layer::hash::sha256_file(path)?;
    Ok((digest.trim_start_matches("sha256:").to_string(), n))
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
