//! Plain-HTTP helpers for the login tests: requests with headers and a body, the password
//! grant as the cf CLI sends it, JWT payloads, tampered tokens and CF error checks.

use super::Service;
use base64::Engine;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// One HTTP/1.0 request: status and body (JSON, or the text as a JSON string).
pub fn request(
    svc: &Service,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", svc.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    for h in headers {
        head.push_str(&format!("{h}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let v = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, v)
}

pub const FORM: &str = "Content-Type: application/x-www-form-urlencoded";
pub const CF_CLIENT: &str = "Authorization: Basic Y2Y6"; // cf: (empty secret)

pub fn password_grant(svc: &Service, user: &str, pw: &str) -> (u16, Value) {
    let body = format!("grant_type=password&username={user}&password={pw}");
    request(svc, "POST", "/oauth/token", &[FORM, CF_CLIENT], &body)
}

pub fn get(svc: &Service, path: &str, token: &str) -> (u16, Value) {
    request(
        svc,
        "GET",
        path,
        &[&format!("Authorization: Bearer {token}")],
        "",
    )
}

/// The payload of a JWT, decoded (not verified).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub fn assert_cf_error(reply: &(u16, Value), code: u64, title: &str) {
    assert_eq!(reply.0, 401, "{reply:?}");
    assert_eq!(reply.1["errors"][0]["code"], code, "{reply:?}");
    assert_eq!(reply.1["errors"][0]["title"], title, "{reply:?}");
}

/// A copy of `jwt` with one character of its payload changed.
pub fn tampered(jwt: &str) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut payload: Vec<u8> = parts[1].bytes().collect();
    payload[10] = if payload[10] == b'A' { b'B' } else { b'A' };
    format!(
        "{}.{}.{}",
        parts[0],
        String::from_utf8(payload).unwrap(),
        parts[2]
    )
}

pub fn argon2_hash(pw: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

pub fn config_file(dir: &Path, text: &str) -> String {
    let p = dir.join("dropship.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}
