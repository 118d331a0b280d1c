//! A process's slot in its data dir: `replica/<n>.lock`, held with `flock` while the process
//! runs, and `replica/<n>.id`, the slot's id (random, made once). A process takes the first
//! slot no live process holds, so a restarted dropship gets its previous process's id (and
//! knows that process is dead), while processes sharing one data dir get different ids.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// At most this many processes on one data dir.
const SLOTS: usize = 64;

/// The first free slot's id and its locked file (the lock lasts as long as the file is open).
pub fn take(data_dir: &Path) -> io::Result<(String, File)> {
    let dir = data_dir.join("replica");
    std::fs::create_dir_all(&dir)?;
    for n in 0..SLOTS {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{n}.lock")))?;
        // SAFETY: flock on a descriptor this function owns.
        let taken = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if taken {
            return Ok((id(&dir.join(format!("{n}.id")))?, lock));
        }
    }
    Err(io::Error::other(format!("all {SLOTS} slots are held")))
}

/// The slot's id, made (8 hex digits) the first time.
fn id(path: &Path) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let random = uuid::Uuid::new_v4().simple().to_string();
    let id = random[..8].to_string();
    let tmp = path.with_extension("id.tmp");
    std::fs::write(&tmp, &id)?;
    std::fs::rename(&tmp, path)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_slot_is_one_process_s_and_keeps_its_id_for_the_next() {
        let d = tempfile::tempdir().unwrap();
        let (a, held) = super::take(d.path()).unwrap();
        let (b, _other) = super::take(d.path()).unwrap();
        assert_ne!(a, b, "two holders, two slots");
        drop(held);
        let (again, _) = super::take(d.path()).unwrap();
        assert_eq!(again, a, "the freed slot, with its id");
    }
}
