//! A directory app: listed as `dropship build` lists it (`.cfignore`, the cf CLI's default
//! ignores) and every regular file hashed (SHA-1, size) for resource matching, on a few threads.

use anyhow::{Context, Result};
use dropship::cfapi as cf;
use dropship::intake::dir::{self, AppEntryKind};
use sha1::{Digest, Sha1};
use std::io::Read;
use std::path::Path;

/// One regular file of a directory app, hashed.
pub(super) struct Resource {
    pub(super) path: String,
    pub(super) mode: u32,
    pub(super) size: u64,
    pub(super) sha1: String,
}

impl Resource {
    /// As resource matching and the upload's `resources` name it.
    pub(super) fn cf(&self) -> cf::Resource {
        cf::Resource {
            checksum: cf::resource::Sha1 {
                value: self.sha1.clone(),
            },
            size_in_bytes: self.size,
            path: Some(self.path.clone()),
            mode: Some(format!("{:o}", self.mode & 0o777)),
        }
    }
}

/// A directory app's entries in walk order, regular files hashed.
pub(super) struct Scanned {
    pub(super) entries: Vec<Entry>,
    pub(super) files: Vec<Resource>,
}

pub(super) enum Entry {
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
pub(super) fn scan(src: &Path) -> Result<Scanned> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_in_chunks() {
        let data = vec![b'x'; 600 * 1024];
        let (sha1, n) = sha1_of(&data[..]).unwrap();
        assert_eq!(sha1, hex::encode(Sha1::digest(&data)));
        assert_eq!(n, 600 * 1024);
        let (sha1, _) = sha1_of(&b"hello\n"[..]).unwrap();
        assert_eq!(sha1, "f572d396fae9206628714fb2ce00f72e94f2258f");
    }
}
