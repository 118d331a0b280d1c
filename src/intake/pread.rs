//! A buffered reader of a shared `File` at its own position (`pread`): any number of them,
//! one per thread, read the same open zip without sharing a file offset. A seek only moves
//! the position, so the buffer survives seeks within it (the zip crate seeks before every
//! central-directory entry it parses, which would empty a `BufReader` each time).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

const BUF: usize = 64 * 1024;

pub(crate) struct PosReader<'f> {
    file: &'f File,
    len: u64,
    pos: u64,
    buf: Box<[u8]>,
    /// File offset of `buf[0]`.
    start: u64,
    filled: usize,
}

impl<'f> PosReader<'f> {
    /// A reader of `file` at offset 0; `len` is the file's size (for `SeekFrom::End`).
    pub(crate) fn new(file: &'f File, len: u64) -> Self {
        PosReader {
            file,
            len,
            pos: 0,
            buf: vec![0; BUF].into_boxed_slice(),
            start: 0,
            filled: 0,
        }
    }

    fn buffered(&self) -> Option<usize> {
        let off = self.pos.checked_sub(self.start)?;
        (off < self.filled as u64).then_some(off as usize)
    }
}

impl Read for PosReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let off = match self.buffered() {
            Some(off) => off,
            None if out.len() >= self.buf.len() => {
                let n = self.file.read_at(out, self.pos)?;
                self.pos += n as u64;
                return Ok(n);
            }
            None => {
                self.filled = 0;
                self.start = self.pos;
                self.filled = self.file.read_at(&mut self.buf, self.pos)?;
                if self.filled == 0 {
                    return Ok(0);
                }
                0
            }
        };
        let n = out.len().min(self.filled - off);
        out[..n].copy_from_slice(&self.buf[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PosReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_what_the_file_holds_wherever_it_seeks() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let mut r = PosReader::new(&f, data.len() as u64);
        let mut other = PosReader::new(&f, data.len() as u64);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        // Seeks inside and outside the buffer, small and large reads, two readers at once.
        for (at, n) in [(10, 5), (12, 100), (70_000, 9), (5, 200_000), (299_990, 50)] {
            let mut got = vec![0; n];
            r.seek(SeekFrom::Start(at)).unwrap();
            let k = (n as u64).min(data.len() as u64 - at) as usize;
            r.read_exact(&mut got[..k]).unwrap();
            assert_eq!(&got[..k], &data[at as usize..at as usize + k], "at {at}");
            other.seek(SeekFrom::End(-3)).unwrap();
            let mut tail = Vec::new();
            other.read_to_end(&mut tail).unwrap();
            assert_eq!(tail, data[data.len() - 3..]);
        }
        assert_eq!(
            r.seek(SeekFrom::Current(-1)).unwrap(),
            data.len() as u64 - 1
        );
        assert!(r.seek(SeekFrom::End(-1_000_000)).is_err());
    }
}
