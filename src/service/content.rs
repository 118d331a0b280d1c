//! The content store behind resource matching: every file `cf push` uploaded, by SHA-1, so that
//! later pushes send only what the service does not have (`POST /v3/resource_matches`, then the
//! matched files named in the upload's `resources` field).
//!
//! Files live at `resources/<aa>/<sha1>` (`aa`: the first two hex digits), one row each in the
//! `resources` table (sha1, size, last_used in unix seconds); with a shared blob store, in it
//! too under the same key (`content_blobs.rs`: local files are then caches). The store is bounded by
//! `limits.resource_cache`: after every put, least-recently-used files go until the total fits.
//!
//! Consistency rules:
//! - a row exists only for a complete file: files are renamed into place, then the row is written
//!   (a crash in between leaves an orphan file, never a row without its file);
//! - put, reserve and evict run under one store lock, held for bookkeeping only (renames, a few
//!   queries, unlinks), never while an upload streams or a package is written;
//! - files reserved for a package being assembled are pinned: eviction skips them until the
//!   reservation is dropped;
//! - readers check what they read ([`verify_copy`]): a file damaged on disk (a crash before the
//!   page cache reached it, a stray edit) is never put into a package, it is forgotten instead.
//!
//! Files smaller than [`MIN_SIZE`] are neither stored nor matched: the cf CLI never asks about
//! empty files (it leaves size-0 entries out of resource matching), and they cost nothing to send.
//! Cloud Controller only pools files over 64 KiB because each match is a blobstore round trip;
//! here a match is a local file, so small files are worth matching too.

use super::blobs::Blobs;
use crate::store::{params, OptionalExtension};
use crate::store::{Db, Paths, StoreError};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

/// Smallest file stored and matched.
pub const MIN_SIZE: u64 = 1;

/// SHA-1 of the empty file.
pub const EMPTY_SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";

/// Serialises put, reserve and evict (bookkeeping only).
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Files reserved by packages being assembled, with how many reservations hold each.
static PINS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

const BUF: usize = 256 * 1024;

/// Is `s` a SHA-1 in lowercase hex?
pub fn is_sha1(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// SHA-1 (hex) and length of the file at `path`.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; BUF];
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

/// Copies the stored file `src` into `out`, checking on the way that it is `size` bytes with
/// SHA-1 `sha1`. `Ok(false)`: it is not (nothing more than `size + 1` bytes is read).
pub fn verify_copy(src: &Path, sha1: &str, size: u64, out: &mut dyn Write) -> io::Result<bool> {
    let f = File::open(src)?;
    let mut f = f.take(size + 1);
    let mut h = Sha1::new();
    let mut buf = vec![0u8; BUF];
    let mut n = 0u64;
    loop {
        let k = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        n += k as u64;
        if n > size {
            return Ok(false);
        }
        h.update(&buf[..k]);
        out.write_all(&buf[..k])?;
    }
    Ok(n == size && hex::encode(h.finalize()) == sha1)
}

/// A file to put into the store, already hashed.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Moved into the store (copied when it is on another file system): callers hand over files
    /// they no longer need, such as an extracted upload.
    pub path: PathBuf,
    pub sha1: String,
    pub size: u64,
}

/// Files reserved for reading: eviction leaves them alone until this is dropped.
#[derive(Debug)]
pub struct Reservation {
    sha1s: Vec<String>,
    /// Where each requested file is, in the order asked for.
    pub paths: Vec<PathBuf>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut pins = PINS.lock().unwrap_or_else(|p| p.into_inner());
        for s in &self.sha1s {
            if let Some(n) = pins.get_mut(s) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(s);
                }
            }
        }
    }
}

/// What an eviction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub files: u64,
    pub bytes: u64,
}

/// The store of one data directory.
#[derive(Clone)]
pub struct Store {
    paths: Paths,
    db: Db,
    /// Most bytes kept (`limits.resource_cache`).
    limit: u64,
    /// A blob store shared by replicas (`content_blobs.rs`); None: the data dir's files.
    shared: Option<Blobs>,
}

impl Store {
    pub fn new(paths: Paths, db: Db, limit: u64) -> Store {
        Store {
            paths,
            db,
            limit,
            shared: None,
        }
    }

    pub fn of(state: &crate::service::State) -> Store {
        let mut s = Store::new(
            state.paths.clone(),
            state.db.clone(),
            state.config.resource_cache,
        );
        s.shared = Some(state.blobs.clone()).filter(|b| b.is_shared());
        s
    }

    /// Where the file with this SHA-1 is (or would be).
    pub fn path_of(&self, sha1: &str) -> PathBuf {
        file_path(&self.paths.resources(), sha1)
    }

    /// For each `(sha1, size)`: does the store have it (same SHA-1 and same size)? Those it has
    /// count as used now (they are about to be asked for). One transaction, no file access.
    pub async fn known(&self, wanted: Vec<(String, u64)>) -> Result<Vec<bool>, StoreError> {
        self.db
            .call(move |c| {
                let t = unix_now();
                let tx = c.transaction()?;
                let mut found = Vec::with_capacity(wanted.len());
                {
                    let mut get = tx.prepare("SELECT size FROM resources WHERE sha1 = ?1")?;
                    let mut touch =
                        tx.prepare("UPDATE resources SET last_used = ?2 WHERE sha1 = ?1")?;
                    for (sha1, size) in &wanted {
                        let stored: Option<i64> =
                            get.query_row(params![sha1], |r| r.get(0)).optional()?;
                        let hit = *size >= MIN_SIZE && stored == Some(*size as i64);
                        if hit {
                            touch.execute(params![sha1, t])?;
                        }
                        found.push(hit);
                    }
                }
                tx.commit()?;
                Ok(found)
            })
            .await
    }

    /// Reserves the files `(sha1, size)` for reading: each must be in the store with that size,
    /// on disk. `Ok(Err(i))`: the `i`-th is not (a row whose file is gone is forgotten).
    /// Reserved files count as used now and are pinned until the reservation is dropped.
    pub async fn reserve(
        &self,
        wanted: Vec<(String, u64)>,
    ) -> Result<Result<Reservation, usize>, StoreError> {
        if let Some(blobs) = &self.shared {
            let sha1s = wanted.iter().map(|(s, _)| s.clone()).collect();
            super::content_blobs::fetch_missing(blobs, sha1s).await;
        }
        let _lock = LOCK.lock().await;
        let root = self.paths.resources();
        let w = wanted.clone();
        let missing = self
            .db
            .call(move |c| {
                let t = unix_now();
                let tx = c.transaction()?;
                let mut missing = None;
                {
                    let mut get = tx.prepare("SELECT size FROM resources WHERE sha1 = ?1")?;
                    let mut touch =
                        tx.prepare("UPDATE resources SET last_used = ?2 WHERE sha1 = ?1")?;
                    let mut forget = tx.prepare("DELETE FROM resources WHERE sha1 = ?1")?;
                    for (i, (sha1, size)) in w.iter().enumerate() {
                        let stored: Option<i64> =
                            get.query_row(params![sha1], |r| r.get(0)).optional()?;
                        let on_disk = fs::metadata(file_path(&root, sha1))
                            .ok()
                            .filter(|m| m.is_file())
                            .map(|m| m.len());
                        if let Some(s) = stored {
                            if on_disk != Some(s as u64) {
                                forget.execute(params![sha1])?;
                                missing = Some(i);
                                break;
                            }
                        }
                        if stored != Some(*size as i64) || *size < MIN_SIZE {
                            missing = Some(i);
                            break;
                        }
                        touch.execute(params![sha1, t])?;
                    }
                }
                tx.commit()?;
                Ok(missing)
            })
            .await?;
        if let Some(i) = missing {
            return Ok(Err(i));
        }
        let sha1s: Vec<String> = wanted.into_iter().map(|(s, _)| s).collect();
        {
            let mut pins = PINS.lock().unwrap_or_else(|p| p.into_inner());
            for s in &sha1s {
                *pins.entry(s.clone()).or_default() += 1;
            }
        }
        let paths = sha1s.iter().map(|s| self.path_of(s)).collect();
        Ok(Ok(Reservation { sha1s, paths }))
    }

    /// Forgets a file found damaged (row and file), so it is no longer matched.
    pub async fn forget(&self, sha1: &str) -> Result<(), StoreError> {
        let _lock = LOCK.lock().await;
        let s = sha1.to_string();
        self.db
            .call(move |c| {
                c.execute("DELETE FROM resources WHERE sha1 = ?1", params![s])?;
                Ok(())
            })
            .await?;
        let _ = fs::remove_file(self.path_of(sha1));
        if let Some(blobs) = &self.shared {
            super::content_blobs::delete(blobs, vec![sha1.to_string()]).await;
        }
        Ok(())
    }

    /// Moves `files` into the store (rows inserted or refreshed), then evicts down to the limit.
    /// Files under [`MIN_SIZE`] or over the whole limit are skipped; a file that cannot be moved
    /// is skipped with a log line. Returns how many files were stored.
    pub async fn put(&self, files: Vec<Incoming>) -> Result<usize, StoreError> {
        let limit = self.limit;
        let files: Vec<Incoming> = files
            .into_iter()
            .filter(|f| f.size >= MIN_SIZE && f.size <= limit && is_sha1(&f.sha1))
            .collect();
        let files = match &self.shared {
            Some(blobs) => super::content_blobs::upload(blobs, files).await,
            None => files,
        };
        if files.is_empty() {
            return Ok(0);
        }
        let _lock = LOCK.lock().await;
        let root = self.paths.resources();
        let placed = tokio::task::spawn_blocking(move || {
            let mut placed = Vec::with_capacity(files.len());
            for f in files {
                match place(&root, &f) {
                    Ok(()) => placed.push((f.sha1, f.size)),
                    Err(e) => tracing::warn!(
                        "content store: keeping {} ({}) failed: {e}",
                        f.sha1,
                        f.path.display()
                    ),
                }
            }
            placed
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?;
        let n = placed.len();
        self.db
            .call(move |c| {
                let t = unix_now();
                let tx = c.transaction()?;
                {
                    let mut up = tx.prepare(
                        "INSERT INTO resources (sha1, size, last_used) VALUES (?1, ?2, ?3)
                         ON CONFLICT(sha1) DO UPDATE SET size = excluded.size,
                         last_used = excluded.last_used",
                    )?;
                    for (sha1, size) in &placed {
                        up.execute(params![sha1, *size as i64, t])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        self.evict_locked().await?;
        Ok(n)
    }

    /// Evicts least-recently-used files (pinned ones excepted) until the store fits its limit
    /// (`put` does it after every batch; tests call it alone).
    #[cfg(test)]
    pub async fn evict(&self) -> Result<Evicted, StoreError> {
        let _lock = LOCK.lock().await;
        self.evict_locked().await
    }

    /// [`Store::evict`], the lock already held.
    async fn evict_locked(&self) -> Result<Evicted, StoreError> {
        let limit = self.limit;
        let victims = self
            .db
            .call(move |c| {
                let mut total: i64 = c.query_row(
                    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM resources",
                    params![],
                    |r| r.get(0),
                )?;
                if total as u64 <= limit {
                    return Ok(Vec::new());
                }
                let mut victims = Vec::new();
                {
                    let pins = PINS.lock().unwrap_or_else(|p| p.into_inner());
                    // Least recently used first, a page at a time (the index may be large).
                    let mut after = (i64::MIN, String::new());
                    'pages: while total as u64 > limit {
                        let page = c.query_map(
                            "SELECT sha1, size, last_used FROM resources
                             WHERE (last_used, sha1) > (?1, ?2)
                             ORDER BY last_used, sha1 LIMIT 1000",
                            params![after.0, after.1],
                            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?)),
                        )?;
                        let Some(last) = page.last() else { break };
                        after = (last.2, last.0.clone());
                        for (sha1, size, _) in page {
                            if total as u64 <= limit {
                                break 'pages;
                            }
                            if pins.contains_key(&sha1) {
                                continue;
                            }
                            total -= size;
                            victims.push((sha1, size as u64));
                        }
                    }
                }
                let tx = c.transaction()?;
                {
                    let mut del = tx.prepare("DELETE FROM resources WHERE sha1 = ?1")?;
                    for (sha1, _) in &victims {
                        del.execute(params![sha1])?;
                    }
                }
                tx.commit()?;
                Ok(victims)
            })
            .await?;
        let mut done = Evicted::default();
        if victims.is_empty() {
            return Ok(done);
        }
        if let Some(blobs) = &self.shared {
            let gone = victims.iter().map(|(s, _)| s.clone()).collect();
            super::content_blobs::delete(blobs, gone).await;
        }
        let root = self.paths.resources();
        done = tokio::task::spawn_blocking(move || {
            let mut done = Evicted::default();
            for (sha1, size) in victims {
                match fs::remove_file(file_path(&root, &sha1)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!("content store: removing {sha1}: {e}"),
                }
                done.files += 1;
                done.bytes += size;
            }
            done
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?;
        Ok(done)
    }
}

fn file_path(root: &Path, sha1: &str) -> PathBuf {
    root.join(sha1.get(..2).unwrap_or("xx")).join(sha1)
}

/// Moves `f` to its place in the store: a rename (atomic; replacing an existing copy is
/// harmless, the content is the same), or a copy then rename across file systems.
fn place(root: &Path, f: &Incoming) -> io::Result<()> {
    let dest = file_path(root, &f.sha1);
    let dir = dest.parent().expect("two levels under the root");
    fs::create_dir_all(dir)?;
    fs::set_permissions(&f.path, fs::Permissions::from_mode(0o644))?;
    match fs::rename(&f.path, &dest) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let mut tmp = tempfile::Builder::new().prefix(".put-").tempfile_in(dir)?;
            io::copy(&mut File::open(&f.path)?, tmp.as_file_mut())?;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o644))?;
            tmp.persist(&dest).map_err(|e| e.error)?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(limit: u64) -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: d.path().to_path_buf(),
        };
        paths.create().unwrap();
        let db = Db::open(&paths.db()).unwrap();
        (d, Store::new(paths, db, limit))
    }

    fn incoming(dir: &Path, name: &str, content: &[u8]) -> Incoming {
        let path = dir.join(name);
        fs::write(&path, content).unwrap();
        let (sha1, size) = hash_file(&path).unwrap();
        Incoming { path, sha1, size }
    }

    #[tokio::test]
    async fn put_match_reserve_and_evict_least_recently_used() {
        let (d, s) = store(250);
        let a = incoming(d.path(), "a", &[b'a'; 100]);
        let b = incoming(d.path(), "b", &[b'b'; 100]);
        let empty = incoming(d.path(), "e", b"");
        assert_eq!(empty.sha1, EMPTY_SHA1);
        assert_eq!(
            s.put(vec![a.clone(), b.clone(), empty.clone()])
                .await
                .unwrap(),
            2
        );
        assert!(s.path_of(&a.sha1).is_file() && !a.path.exists(), "moved in");
        let found = s
            .known(vec![
                (a.sha1.clone(), 100),
                (b.sha1.clone(), 99),
                (empty.sha1.clone(), 0),
            ])
            .await
            .unwrap();
        assert_eq!(found, vec![true, false, false]);
        // `a` is now more recently used than `b`: rows of the same second are ordered by
        // insertion, so make the difference explicit.
        s.db.call({
            let b = b.sha1.clone();
            move |c| {
                c.execute(
                    "UPDATE resources SET last_used = last_used - 10 WHERE sha1 = ?1",
                    params![b],
                )?;
                Ok(())
            }
        })
        .await
        .unwrap();
        let r = s
            .reserve(vec![(a.sha1.clone(), 100)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.paths, vec![s.path_of(&a.sha1)]);
        let c = incoming(d.path(), "c", &[b'c'; 100]);
        s.put(vec![c.clone()]).await.unwrap();
        let found = s
            .known(vec![
                (a.sha1.clone(), 100),
                (b.sha1.clone(), 100),
                (c.sha1.clone(), 100),
            ])
            .await
            .unwrap();
        assert_eq!(found, vec![true, false, true], "b was least recently used");
        assert!(!s.path_of(&b.sha1).exists());
        // Pinned files survive even when they are the oldest (and `c` is older than what
        // comes next: rows of the same second are ordered by their sha1).
        s.db.call({
            let (a, cs) = (a.sha1.clone(), c.sha1.clone());
            move |c| {
                c.execute(
                    "UPDATE resources SET last_used = 0 WHERE sha1 = ?1",
                    params![a],
                )?;
                c.execute(
                    "UPDATE resources SET last_used = last_used - 5 WHERE sha1 = ?1",
                    params![cs],
                )?;
                Ok(())
            }
        })
        .await
        .unwrap();
        let e = incoming(d.path(), "e2", &[b'e'; 100]);
        s.put(vec![e.clone()]).await.unwrap();
        assert!(s.path_of(&a.sha1).is_file(), "pinned");
        assert!(!s.path_of(&c.sha1).exists(), "the oldest unpinned went");
        drop(r);
        assert_eq!(s.evict().await.unwrap(), Evicted::default(), "fits already");
    }

    #[tokio::test]
    async fn reserve_forgets_files_gone_from_disk_and_verify_copy_checks_content() {
        let (d, s) = store(1 << 20);
        let a = incoming(d.path(), "a", b"hello");
        s.put(vec![a.clone()]).await.unwrap();
        let mut out = Vec::new();
        assert!(verify_copy(&s.path_of(&a.sha1), &a.sha1, 5, &mut out).unwrap());
        assert_eq!(out, b"hello");
        fs::write(s.path_of(&a.sha1), b"hellO").unwrap();
        assert!(!verify_copy(&s.path_of(&a.sha1), &a.sha1, 5, &mut Vec::new()).unwrap());
        assert!(!verify_copy(&s.path_of(&a.sha1), &a.sha1, 4, &mut Vec::new()).unwrap());
        fs::remove_file(s.path_of(&a.sha1)).unwrap();
        assert_eq!(
            s.reserve(vec![(a.sha1.clone(), 5)])
                .await
                .unwrap()
                .unwrap_err(),
            0
        );
        assert_eq!(
            s.known(vec![(a.sha1.clone(), 5)]).await.unwrap(),
            vec![false]
        );
    }
}
