//! The last pass of a zip extraction: every file entry decompressed into place by several
//! threads. Each worker walks the central directory with its own reader of the same open
//! file ([`PosReader`]) and takes the entries one at a time from a shared counter, in the
//! archive's order, so the work stays balanced whatever the sizes. The budget is shared
//! (see [`Output`]); failures are kept by [`Failure`] (the lowest entry's error, later
//! entries stopped at once).

use super::failure::Failure;
use super::out::{file_mode, Output};
use super::pread::PosReader;
use super::zip::{classify, open, zip_error, Archive, Kind};
use super::IntakeError;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::thread;
use zip::read::{ZipFileEntry, ZipReadOptions};

/// Most threads extracting one zip.
pub const MAX_WORKERS: usize = 8;

/// The number of workers for an extraction: the cores available, at most [`MAX_WORKERS`].
pub fn default_workers() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
}

/// What the workers share.
struct Job<'a, 'o> {
    zip: &'a File,
    size: u64,
    path: &'a str,
    out: &'a Output<'o>,
    entries: usize,
    next: AtomicUsize,
    failure: Failure,
}

/// Writes every file entry of the zip `zip` (`size` bytes, already vetted) through `out`
/// with `workers` threads (the calling one included).
pub(super) fn extract_files(
    zip: &File,
    size: u64,
    path: &str,
    out: &Output,
    workers: usize,
) -> Result<(), IntakeError> {
    let mut archives = Vec::with_capacity(workers.max(1));
    for _ in 0..workers.max(1) {
        archives.push(open(zip, size, path)?);
    }
    let job = Job {
        zip,
        size,
        path,
        out,
        entries: archives[0].len(),
        next: AtomicUsize::new(0),
        failure: Failure::new(),
    };
    let mine = archives.pop().expect("at least one worker");
    thread::scope(|s| {
        for archive in archives {
            let job = &job;
            // Without another thread the calling one still does all the work.
            let _ = thread::Builder::new()
                .name("intake".into())
                .spawn_scoped(s, move || job.run(archive));
        }
        job.run(mine);
    });
    job.failure.into_result()
}

impl Job<'_, '_> {
    /// One worker: claims entries in order until none is left or an earlier one failed.
    fn run(&self, mut archive: Archive) {
        let mut body = PosReader::new(self.zip, self.size);
        let files = match archive.files() {
            Ok(files) => files,
            Err(e) => return self.failure.record(0, zip_error(self.path)(e)),
        };
        let mut yielded = 0;
        loop {
            let index = self.next.fetch_add(1, Relaxed);
            if index >= self.entries || self.failure.stops(index) {
                return;
            }
            let meta = loop {
                match files.next() {
                    None => return,
                    Some(Err(e)) => return self.failure.record(yielded, zip_error(self.path)(e)),
                    Some(Ok(meta)) if yielded == index => break meta,
                    Some(Ok(_)) => yielded += 1,
                }
            };
            yielded += 1;
            if let Err(e) = self.entry(meta, &mut body, index) {
                self.failure.record(index, e);
            }
        }
    }

    /// Entry `index`, written if it is a file (directories and symlinks are made elsewhere).
    fn entry(
        &self,
        meta: ZipFileEntry,
        body: &mut PosReader,
        index: usize,
    ) -> Result<(), IntakeError> {
        let Some(e) = classify(&meta, self.path)? else {
            return Ok(());
        };
        if e.kind != Kind::File {
            return Ok(());
        }
        let corrupt = |detail: String| IntakeError::Corrupt {
            path: self.path.into(),
            entry: e.name.clone(),
            detail,
        };
        let src = meta
            .with_reader(body, ZipReadOptions::new())
            .map_err(|z| corrupt(z.to_string()))?;
        let mut src = self.failure.watch(src, index);
        let written = self.out.file(&e.rel, file_mode(e.mode), &mut src, &|io| {
            corrupt(io.to_string())
        });
        if written.is_err() && self.failure.stops(index) {
            // Abandoned for an earlier failure: a single thread would not have begun it.
            self.out.discard(&e.rel);
        }
        written
    }
}
