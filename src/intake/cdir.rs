//! The zip's End Of Central Directory record, read by hand before the zip crate walks the
//! directory: a missing record, too many entries or too large a directory are refused before
//! any entry is read.

use super::{IntakeError, Limits};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

const EOCD_SIG: u64 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u64 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u64 = 0x0606_4b50;
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR_LEN: usize = 20;
const ZIP64_EOCD_LEN: usize = 56;
/// The EOCD record plus the longest possible comment.
const EOCD_SEARCH: u64 = EOCD_LEN as u64 + 0xFFFF;
/// Largest central directory accepted (it is read once per pass, never held).
pub const MAX_CDIR_BYTES: u64 = 256 * 1024 * 1024;

/// What the End Of Central Directory record declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Eocd {
    pub entries: u64,
    pub cdir_size: u64,
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes([b[at], b[at + 1]]).into()
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()).into()
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Reads the EOCD (and the zip64 EOCD when the classic fields overflow) from the end of
/// `file`. `Ok(None)` when there is no EOCD: a truncated file, or not a zip.
pub(crate) fn read_eocd(file: &mut (impl Read + Seek)) -> io::Result<Option<Eocd>> {
    let len = file.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(EOCD_SEARCH);
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.seek(SeekFrom::Start(start))?;
    file.take(len - start).read_to_end(&mut tail)?;
    let Some(pos) = (0..tail.len().saturating_sub(EOCD_LEN - 1))
        .rev()
        .find(|&p| u32_at(&tail, p) == EOCD_SIG)
    else {
        return Ok(None);
    };
    let eocd = &tail[pos..];
    let mut found = Eocd {
        entries: u16_at(eocd, 10),
        cdir_size: u32_at(eocd, 12),
    };
    let overflow = found.entries == 0xFFFF
        || found.cdir_size == 0xFFFF_FFFF
        || u32_at(eocd, 16) == 0xFFFF_FFFF;
    let eocd_offset = start + pos as u64;
    if overflow && eocd_offset >= ZIP64_LOCATOR_LEN as u64 {
        let mut loc = [0u8; ZIP64_LOCATOR_LEN];
        file.seek(SeekFrom::Start(eocd_offset - ZIP64_LOCATOR_LEN as u64))?;
        file.read_exact(&mut loc)?;
        if u32_at(&loc, 0) == ZIP64_LOCATOR_SIG {
            // Where the locator says, else right before it (data prepended to the zip).
            let declared = u64_at(&loc, 8);
            let adjacent =
                (eocd_offset - ZIP64_LOCATOR_LEN as u64).checked_sub(ZIP64_EOCD_LEN as u64);
            let mut rec = [0u8; ZIP64_EOCD_LEN];
            let mut ok = false;
            for at in [Some(declared), adjacent].into_iter().flatten() {
                if at.saturating_add(ZIP64_EOCD_LEN as u64) <= len {
                    file.seek(SeekFrom::Start(at))?;
                    file.read_exact(&mut rec)?;
                    if u32_at(&rec, 0) == ZIP64_EOCD_SIG {
                        ok = true;
                        break;
                    }
                }
            }
            if !ok {
                return Ok(None);
            }
            found = Eocd {
                entries: u64_at(&rec, 32),
                cdir_size: u64_at(&rec, 40),
            };
        }
    }
    Ok(Some(found))
}

/// Refuses a zip whose EOCD is missing, declares more than `max_files` entries, or a
/// central directory too large to load.
pub(crate) fn precheck(zip: &Path, file: &mut File, limits: &Limits) -> Result<(), IntakeError> {
    let path = zip.display().to_string();
    let eocd = read_eocd(file)
        .map_err(|e| IntakeError::io(zip, e))?
        .ok_or_else(|| IntakeError::NotAZip {
            path: path.clone(),
            reason: "no end of central directory record".into(),
        })?;
    if eocd.entries > limits.max_files {
        return Err(IntakeError::TooManyFiles {
            path,
            limit: limits.max_files,
        });
    }
    if eocd.cdir_size > MAX_CDIR_BYTES {
        return Err(IntakeError::CentralDirectoryTooLarge {
            path,
            size: eocd.cdir_size,
            limit: MAX_CDIR_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn eocd(entries: u16, size: u32, offset: u32, comment: &[u8]) -> Vec<u8> {
        let mut v = (EOCD_SIG as u32).to_le_bytes().to_vec();
        v.extend([0, 0, 0, 0]);
        v.extend(entries.to_le_bytes());
        v.extend(entries.to_le_bytes());
        v.extend(size.to_le_bytes());
        v.extend(offset.to_le_bytes());
        v.extend((comment.len() as u16).to_le_bytes());
        v.extend(comment);
        v
    }

    #[test]
    fn classic_eocd_with_comment() {
        let mut bytes = vec![7u8; 100];
        bytes.extend(eocd(12, 3456, 100, b"a comment PK\x05 not a signature"));
        let got = read_eocd(&mut Cursor::new(bytes)).unwrap();
        assert_eq!(
            got,
            Some(Eocd {
                entries: 12,
                cdir_size: 3456
            })
        );
    }

    #[test]
    fn zip64_eocd_is_followed() {
        let mut bytes = vec![0u8; 64];
        let rec_at = bytes.len() as u64;
        bytes.extend((ZIP64_EOCD_SIG as u32).to_le_bytes());
        bytes.extend(44u64.to_le_bytes()); // size of the rest of the record
        bytes.extend([45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend(200_000u64.to_le_bytes()); // entries on this disk
        bytes.extend(200_000u64.to_le_bytes()); // entries in total
        bytes.extend((300u64 << 20).to_le_bytes()); // central directory size
        bytes.extend(64u64.to_le_bytes());
        bytes.extend((ZIP64_LOCATOR_SIG as u32).to_le_bytes());
        bytes.extend([0, 0, 0, 0]);
        bytes.extend(rec_at.to_le_bytes());
        bytes.extend([1, 0, 0, 0]);
        bytes.extend(eocd(0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, b""));
        let got = read_eocd(&mut Cursor::new(bytes)).unwrap().unwrap();
        assert_eq!(
            got,
            Eocd {
                entries: 200_000,
                cdir_size: 300 << 20
            }
        );
    }

    #[test]
    fn no_eocd_is_none() {
        assert_eq!(
            read_eocd(&mut Cursor::new(vec![0u8; 70_000])).unwrap(),
            None
        );
        assert_eq!(
            read_eocd(&mut Cursor::new(b"PK\x05\x06".to_vec())).unwrap(),
            None
        );
        assert_eq!(read_eocd(&mut Cursor::new(Vec::new())).unwrap(), None);
    }
}
