//! The first failure of an intake whose entries are written by several threads. Entries are
//! numbered in the source's order (central directory, walk); the failure kept is the one of
//! the lowest entry, so the error reported does not depend on the threads' timing. Once an
//! entry has failed, the entries after it stop (between entries and inside copies, see
//! [`Failure::watch`]); those before it run to their end, as a single thread would.

use super::IntakeError;
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

pub(super) struct Failure {
    /// Index of the lowest failed entry; `usize::MAX` while none has failed.
    at: AtomicUsize,
    first: Mutex<Option<(usize, IntakeError)>>,
}

impl Failure {
    pub(super) fn new() -> Self {
        Failure {
            at: AtomicUsize::new(usize::MAX),
            first: Mutex::new(None),
        }
    }

    /// Entry `index` failed with `e`: kept if no earlier entry failed.
    pub(super) fn record(&self, index: usize, e: IntakeError) {
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        if first.as_ref().is_none_or(|(at, _)| index < *at) {
            *first = Some((index, e));
            self.at.store(index, Relaxed);
        }
    }

    /// Whether work on entry `index` is pointless: an earlier entry failed.
    pub(super) fn stops(&self, index: usize) -> bool {
        self.at.load(Relaxed) < index
    }

    /// Entry `index`'s content, cut short (with an I/O error) once an earlier entry fails.
    pub(super) fn watch<R: Read>(&self, src: R, index: usize) -> Watched<'_, R> {
        Watched {
            src,
            failure: self,
            index,
        }
    }

    /// The error kept, if any.
    pub(super) fn into_result(self) -> Result<(), IntakeError> {
        let first = self.first.into_inner();
        match first.unwrap_or_else(PoisonError::into_inner) {
            None => Ok(()),
            Some((_, e)) => Err(e),
        }
    }
}

/// See [`Failure::watch`].
pub(super) struct Watched<'a, R> {
    src: R,
    failure: &'a Failure,
    index: usize,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.stops(self.index) {
            return Err(io::Error::other("stopped: an earlier entry failed"));
        }
        self.src.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(n: u64) -> IntakeError {
        IntakeError::TooManyFiles {
            path: "app".into(),
            limit: n,
        }
    }

    #[test]
    fn the_lowest_entry_wins_and_stops_the_later_ones() {
        let f = Failure::new();
        assert!(!f.stops(usize::MAX - 1));
        f.record(7, err(7));
        f.record(9, err(9));
        assert!(f.stops(8) && !f.stops(7) && !f.stops(3));
        let mut late = f.watch(&b"data"[..], 8);
        assert!(late.read(&mut [0; 4]).is_err());
        let mut early = f.watch(&b"data"[..], 2);
        assert_eq!(early.read(&mut [0; 4]).unwrap(), 4);
        f.record(3, err(3));
        assert!(f.stops(4));
        let e = f.into_result().unwrap_err().to_string();
        assert!(e.contains("more than 3 entries"), "{e}");
        assert!(Failure::new().into_result().is_ok());
    }
}
