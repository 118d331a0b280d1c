//! The log cache's lines: found in the stamps of a build's chunks in the database (`LEN NANOS
//! STREAM` per line, see `store::log_chunks`) or, for logs from before the chunks, in the
//! `.stamps` file beside the log (`OFFSET NANOS STREAM`); the best `limit` of them kept while
//! reading, then their payloads read from the chunk or the file.

use super::log_cache::{Stream, MAX_PAYLOAD};
use crate::store::Connection;
use crate::store::{self, StoreError};
use std::collections::BinaryHeap;
use std::io::{BufRead, Read, Seek, SeekFrom};

/// The time window, how many lines and in which order.
#[derive(Debug, Clone)]
pub struct Window {
    pub start: u64,
    pub end: u64,
    pub limit: usize,
    pub descending: bool,
}

/// One line: ordered by time (then where it is, for ties).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    pub ns: u64,
    /// The build's index in the list read.
    pub build: usize,
    /// The chunk it is in (0 in a file).
    pub seq: u64,
    /// Where it starts in the chunk or the file, and its length with its newline.
    pub offset: u64,
    pub len: u64,
    pub stream: Stream,
}

/// Keeps the first (or last, descending) `limit` lines seen.
pub struct Best {
    heap: BinaryHeap<std::cmp::Reverse<Line>>,
    heap_max: BinaryHeap<Line>,
    w: Window,
}

impl Best {
    pub fn new(w: Window) -> Best {
        Best {
            heap: BinaryHeap::new(),
            heap_max: BinaryHeap::new(),
            w,
        }
    }

    fn offer(&mut self, line: Line) {
        if line.ns < self.w.start || line.ns >= self.w.end {
            return;
        }
        if self.w.descending {
            self.heap.push(std::cmp::Reverse(line));
            if self.heap.len() > self.w.limit {
                self.heap.pop(); // the oldest
            }
        } else {
            self.heap_max.push(line);
            if self.heap_max.len() > self.w.limit {
                self.heap_max.pop(); // the newest
            }
        }
    }

    pub fn sorted(self) -> Vec<Line> {
        let mut out: Vec<Line> = if self.w.descending {
            self.heap.into_iter().map(|r| r.0).collect()
        } else {
            self.heap_max.into_vec()
        };
        out.sort();
        if self.w.descending {
            out.reverse();
        }
        out
    }
}

/// Three fields of a stamp record: two numbers and a stream. Records are short: a longer or
/// malformed one is not ours, reading stops there.
fn record(text: &str) -> Option<(u64, u64, Stream)> {
    let mut f = text.split(' ');
    let a = f.next()?.parse().ok()?;
    let ns = f.next()?.parse().ok()?;
    let stream = Stream::from_letter(f.next()?)?;
    Some((a, ns, stream))
}

/// The stamps of chunk `seq` of build `build`, offered to `best`.
pub fn scan_chunk(stamps: &str, build: usize, seq: u64, best: &mut Best) {
    let mut offset = 0;
    for text in stamps.lines() {
        let Some((len, ns, stream)) = record(text) else {
            break;
        };
        best.offer(Line {
            ns,
            build,
            seq,
            offset,
            len,
            stream,
        });
        offset += len;
    }
}

/// The stamps file of one build's log (`log_len` bytes long), offered to `best`.
pub fn scan_file(stamps: &std::path::Path, log_len: u64, build: usize, best: &mut Best) {
    let Ok(file) = std::fs::File::open(stamps) else {
        return;
    };
    let mut prev: Option<(u64, u64, Stream)> = None;
    let emit = |p: (u64, u64, Stream), end: u64, best: &mut Best| {
        best.offer(Line {
            ns: p.1,
            build,
            seq: 0,
            offset: p.0,
            len: end.saturating_sub(p.0),
            stream: p.2,
        })
    };
    for rec in std::io::BufReader::new(file).split(b'\n') {
        let Ok(rec) = rec else { break };
        let Some((off, ns, stream)) = record(&String::from_utf8_lossy(&rec)) else {
            break;
        };
        if let Some(p) = prev.replace((off, ns, stream)) {
            emit(p, off, best);
        }
    }
    if let Some(p) = prev {
        emit(p, log_len, best);
    }
}

/// A line's bytes without its newline, at most [`MAX_PAYLOAD`].
fn trimmed(mut buf: Vec<u8>) -> Vec<u8> {
    buf.truncate(MAX_PAYLOAD as usize);
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    buf
}

/// The payload of `line` in the log file `log`.
pub fn file_payload(log: &std::path::Path, line: &Line) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        if f.seek(SeekFrom::Start(line.offset)).is_ok() {
            let _ = f.take(line.len.min(MAX_PAYLOAD)).read_to_end(&mut buf);
        }
    }
    trimmed(buf)
}

/// The payloads of `lines` that are in chunks (`builds` names the builds by index; lines
/// of files get an empty one here). Each chunk is read once for the lines that follow in it.
pub fn chunk_payloads(
    c: &Connection,
    builds: &[String],
    from_file: &[bool],
    lines: &[Line],
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut held: Option<(usize, u64, String)> = None;
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        if from_file[line.build] {
            out.push(Vec::new());
            continue;
        }
        let fresh = !matches!(&held, Some((b, s, _)) if *b == line.build && *s == line.seq);
        if fresh {
            let body = store::log_chunk(c, &builds[line.build], line.seq)?.unwrap_or_default();
            held = Some((line.build, line.seq, body));
        }
        let body = held.as_ref().map_or("", |h| h.2.as_str()).as_bytes();
        let start = (line.offset as usize).min(body.len());
        let end = (line.offset + line.len).min(body.len() as u64) as usize;
        out.push(trimmed(body[start..end.max(start)].to_vec()));
    }
    Ok(out)
}
