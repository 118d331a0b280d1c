//! Helpers for the tests of the service's bounds (`tests/service_bounds.rs`): peak RSS of a
//! process, a buildpack that prints, a small tmpfs, a raw upload, a zip of many long names.

use super::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;

/// VmHWM (peak RSS) of a process, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

pub fn buildpack(dir: &Path, name: &str, finalize: &str) {
    let bin = dir.join(name).join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (script, body) in [
        ("detect", format!("echo {name}")),
        ("finalize", finalize.to_string()),
        (
            "release",
            "printf -- '---\\ndefault_process_types:\\n  web: sleep 1000\\n'".to_string(),
        ),
    ] {
        let p = bin.join(script);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A tmpfs mounted at a path, lazily unmounted when dropped.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount -t tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }

    pub fn free(&self) -> u64 {
        let c = std::ffi::CString::new(self.0.to_str().unwrap()).unwrap();
        // SAFETY: statvfs fills the struct for a valid C path.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
        s.f_bavail as u64 * s.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// POSTs a multipart upload of `bits` over a raw connection, writing on a thread while the
/// answer is read (the server may answer before the body is all sent).
pub fn raw_upload(port: u16, path: &str, bits: Vec<u8>) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = "--B\r\nContent-Disposition: form-data; name=\"bits\"; filename=\"a.zip\"\r\n\r\n";
    let tail = "\r\n--B--\r\n";
    let len = head.len() + bits.len() + tail.len();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n{head}"
    )
    .unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for c in bits.chunks(64 << 10) {
            if w.write_all(c).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = w.write_all(tail.as_bytes());
    });
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let _ = writer.join();
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").expect("an answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A zip file of `n` one-byte files whose names are about 200 bytes long (in 100
/// directories); with `conflict`, a last entry nested under a file makes it refused once its
/// whole central directory has been read.
pub fn long_names_zip(path: &Path, n: usize, conflict: bool) {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::BufWriter::new(
        std::fs::File::create(path).unwrap(),
    ));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let long = "n".repeat(185);
    for i in 0..n {
        w.start_file(format!("d{:03}/{long}-{i:08}.txt", i % 100), opts)
            .unwrap();
        w.write_all(b"x").unwrap();
    }
    if conflict {
        w.start_file(format!("d000/{long}-{:08}.txt/inside", 0), opts)
            .unwrap();
    }
    w.finish().unwrap();
}

/// Sends only the headers of a POST declaring a `len`-byte body, then reads the answer
/// (a server refusing on Content-Length answers at once).
pub fn raw_declared_post(port: u16, path: &str, len: u64) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").expect("an answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}
