//! Loopback ports and plain HTTP checks (no client library).

use super::*;

/// A loopback port that was free a moment ago and that no other test of this process was
/// given: tests run in parallel, and two of them handed the same port made one test talk to
/// the other's registry until that one stopped.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Status of a plain HTTP GET on loopback.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(s, _)| s)
}

/// A minimal HTTP/1.0 GET on 127.0.0.1 (no client library needed).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_request(port, "GET", path)
}

/// A minimal HTTP/1.0 request without a body on 127.0.0.1: status and body.
pub fn http_request(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Polls until GET answers 200 (or `wait` passes); returns the body.
pub fn wait_for_page(port: u16, path: &str, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some((200, body)) = http_get(port, path) {
            return Some(body);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}
