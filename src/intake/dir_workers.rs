//! The copy of a directory app on several threads. The walk stays on the calling thread: it
//! charges every entry to the budget, makes the directories and records the symlinks in
//! order, and hands each file to a worker through a bounded queue, or copies it itself when
//! the queue is full (then helps empty the queue once the walk is over). Failures are kept by
//! [`Failure`]: the error of the lowest entry of the walk, later entries stopped at once.

use super::dir::open_file;
use super::failure::Failure;
use super::out::{dir_mode, file_mode, Output};
use super::IntakeError;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, RecvError, SyncSender, TrySendError};
use std::sync::{Mutex, PoisonError};
use std::thread;
use walkdir::DirEntry;

/// Files waiting in the queue, per worker.
const QUEUE: usize = 16;

/// One file to copy: entry `index` of the walk, at `path`, to `rel` in the app.
struct Copy {
    index: usize,
    path: PathBuf,
    rel: PathBuf,
}

/// Writes the walked `entries` through `out`, files by `workers` threads (the calling one
/// included).
pub(super) fn copy_entries(
    entries: impl Iterator<Item = Result<(DirEntry, PathBuf), IntakeError>>,
    out: &Output,
    workers: usize,
) -> Result<(), IntakeError> {
    let failure = Failure::new();
    let helpers = workers.max(1) - 1;
    let (tx, rx) = sync_channel::<Copy>(helpers * QUEUE);
    let rx = Mutex::new(rx);
    thread::scope(|s| {
        for _ in 0..helpers {
            let (rx, failure) = (&rx, &failure);
            // Without helpers the calling thread still copies everything.
            let _ = thread::Builder::new()
                .name("intake".into())
                .spawn_scoped(s, move || {
                    while let Ok(copy) = next(rx) {
                        copy.run(out, failure);
                    }
                });
        }
        walk(entries, out, &failure, tx);
        while let Ok(copy) = next(&rx) {
            copy.run(out, &failure);
        }
    });
    failure.into_result()
}

fn next(rx: &Mutex<Receiver<Copy>>) -> Result<Copy, RecvError> {
    rx.lock().unwrap_or_else(PoisonError::into_inner).recv()
}

/// The walk, until its end or an entry before it fails; `tx` is dropped at the end, so the
/// workers stop once the queue is empty.
fn walk(
    entries: impl Iterator<Item = Result<(DirEntry, PathBuf), IntakeError>>,
    out: &Output,
    failure: &Failure,
    tx: SyncSender<Copy>,
) {
    for (index, entry) in entries.enumerate() {
        if failure.stops(index) {
            return;
        }
        match entry.and_then(|(entry, rel)| walk_one(index, entry, rel, out)) {
            Ok(None) => {}
            Ok(Some(copy)) => match tx.try_send(copy) {
                Ok(()) => {}
                Err(TrySendError::Full(copy) | TrySendError::Disconnected(copy)) => {
                    copy.run(out, failure)
                }
            },
            Err(e) => return failure.record(index, e),
        }
    }
}

/// Entry `index` charged and, unless it is a file (returned, to copy), written or recorded.
fn walk_one(
    index: usize,
    entry: DirEntry,
    rel: PathBuf,
    out: &Output,
) -> Result<Option<Copy>, IntakeError> {
    let path = entry.path();
    let io_err = |e| IntakeError::io(path, e);
    let ft = entry.file_type();
    if ft.is_dir() {
        out.budget.entry()?;
        let mode = entry.metadata().map_err(|e| io_err(e.into()))?.mode();
        out.dir(&rel, dir_mode(Some(mode)))?;
    } else if ft.is_file() {
        out.budget.entry()?;
        let path = entry.into_path();
        return Ok(Some(Copy { index, path, rel }));
    } else if ft.is_symlink() {
        out.budget.entry()?;
        let target = fs::read_link(path).map_err(io_err)?;
        out.symlink(&rel, &target);
    }
    // Sockets, FIFOs and devices: skipped.
    Ok(None)
}

impl Copy {
    fn run(self, out: &Output, failure: &Failure) {
        if failure.stops(self.index) {
            return;
        }
        if let Err(e) = self.copy(out, failure) {
            failure.record(self.index, e);
        }
    }

    fn copy(&self, out: &Output, failure: &Failure) -> Result<(), IntakeError> {
        let (f, meta) = open_file(&self.path)?;
        let mut src = failure.watch(f, self.index);
        let io_err = |e| IntakeError::io(&self.path, e);
        let written = out.file(&self.rel, file_mode(Some(meta.mode())), &mut src, &io_err);
        if written.is_err() && failure.stops(self.index) {
            // Abandoned for an earlier failure: a single thread would not have begun it.
            out.discard(&self.rel);
        }
        written
    }
}
