//! A writer that hands a copy of every byte it writes to a second writer, when one is set:
//! the compressed side of a layer goes to its file and, streamed, to a registry.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// A copy of the bytes as they are written (e.g. a streamed upload of a layer).
pub type Copy = Box<dyn Write + Send>;

/// Where a [`Tee`]'s copy is set, from outside the writers that wrap it (a compressor).
pub type Slot = Arc<Mutex<Option<Copy>>>;

/// Bytes written before a copy is set that are kept for it (a compressor's header).
const EARLY: usize = 4096;

/// Writes to `inner`; the bytes `inner` took also go to the copy in the slot, if any, from
/// the first byte (the first few KiB are kept until a copy is set; a copy set later than that
/// is dropped). A failing copy is dropped too (the copy is a shortcut, the file is what
/// counts): it never fails the write.
pub struct Tee<W> {
    inner: W,
    copy: Slot,
    start: Start,
}

/// What became of the bytes written before a copy was set.
enum Start {
    /// Kept, all of them (at most [`EARLY`]).
    Kept(Vec<u8>),
    /// More than [`EARLY`] went by: a copy set now would miss its start.
    Lost,
    /// Given to the copy.
    Sent,
}

impl<W: Write> Tee<W> {
    pub fn new(inner: W) -> (Self, Slot) {
        let copy = Slot::default();
        (
            Tee {
                inner,
                copy: copy.clone(),
                start: Start::Kept(Vec::new()),
            },
            copy,
        )
    }

    /// The inner writer; the copy is dropped (its end).
    pub fn into_inner(self) -> W {
        self.copy.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.inner
    }
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = &buf[..n];
        let mut copy = self.copy.lock().unwrap_or_else(|p| p.into_inner());
        let Some(c) = copy.as_mut() else {
            if let Start::Kept(early) = &mut self.start {
                match early.len() + n <= EARLY {
                    true => early.extend_from_slice(written),
                    false => self.start = Start::Lost,
                }
            }
            return Ok(n);
        };
        let sent = match std::mem::replace(&mut self.start, Start::Sent) {
            Start::Sent => c.write_all(written),
            Start::Kept(early) => c.write_all(&early).and_then(|_| c.write_all(written)),
            Start::Lost => Err(io::Error::other("the copy was set too late")),
        };
        if sent.is_err() {
            *copy = None;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("gone"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_copy_gets_what_the_inner_writer_took() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut t, slot) = Tee::new(Vec::new());
        t.write_all(b"before ").unwrap();
        *slot.lock().unwrap() = Some(Box::new(Shared(seen.clone())));
        t.write_all(b"after").unwrap();
        t.write_all(b" more").unwrap();
        assert_eq!(t.into_inner(), b"before after more");
        assert_eq!(*seen.lock().unwrap(), b"before after more");
    }

    #[test]
    fn a_copy_set_too_late_gets_nothing() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut t, slot) = Tee::new(Vec::new());
        t.write_all(&vec![1; EARLY + 1]).unwrap();
        *slot.lock().unwrap() = Some(Box::new(Shared(seen.clone())));
        t.write_all(b"more").unwrap();
        assert_eq!(t.into_inner().len(), EARLY + 5);
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn a_failing_copy_does_not_fail_the_write() {
        let (mut t, slot) = Tee::new(Vec::new());
        *slot.lock().unwrap() = Some(Box::new(Broken));
        t.write_all(b"one").unwrap();
        t.write_all(b"two").unwrap();
        assert_eq!(t.into_inner(), b"onetwo");
    }
}
