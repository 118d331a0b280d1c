//! The proxy's HTTP/1.1 side: reading a request, answering a fault, forwarding upstream.

use super::*;

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads up to the end of the head; returns (head, bytes read past it), or `None` on a
/// connection closed before any byte.
pub(super) fn read_head(s: &mut TcpStream) -> Result<Option<(String, Vec<u8>)>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            return Ok(Some((head, buf[i + 4..].to_vec())));
        }
        if buf.len() > 64 * 1024 {
            return Err("request head larger than 64 KiB".into());
        }
        let n = s
            .read(&mut chunk)
            .map_err(|e| format!("reading a request head: {e}"))?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err("connection closed mid-head".into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

type Head = (String, String, Vec<(String, String)>);

/// Method, target and headers of a request head.
pub(super) fn parse_head(head: &str) -> Result<Head, String> {
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => (m.to_string(), t.to_string()),
        _ => return Err(format!("bad request line {line:?}")),
    };
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .ok_or_else(|| format!("bad header line {l:?}"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect::<Result<_, String>>()?;
    Ok((method, target, headers))
}

/// Closes with RST (SO_LINGER 0) instead of FIN.
pub(super) fn reset(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an fd we own, with a valid `linger` of the size we pass.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

pub(super) fn reason(code: u16) -> &'static str {
    match code {
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Injected",
    }
}

pub(super) fn serve(shared: &Shared, mut client: TcpStream) -> Result<(), String> {
    client.set_nonblocking(false).map_err(|e| e.to_string())?;
    client
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    client
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let Some((head, mut body)) = read_head(&mut client)? else {
        return Ok(());
    };
    let (method, target, headers) = parse_head(&head)?;
    let mut req = Request {
        method,
        original: target.clone(),
        target,
        headers,
        body: Vec::new(),
    };
    if let Some(te) = req.header("transfer-encoding") {
        let msg = format!(
            "{} {}: Transfer-Encoding {te} is not supported by the test proxy",
            req.method, req.target
        );
        let _ = client.write_all(
            b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return Err(msg);
    }
    let len: usize = match req.header("content-length") {
        Some(v) => v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?,
        None => 0,
    };
    let path = req.target.split('?').next().unwrap_or_default().to_string();
    let fault = shared.fault_for(&req.method, &path, req.header("content-range"));
    if let Some(Fault::ResetEarly) = fault {
        req.body = body;
        shared.record(&req, fault, None);
        reset(client);
        return Ok(());
    }
    // The rest of the body.
    let mut chunk = vec![0u8; 64 * 1024];
    while body.len() < len {
        let n = client
            .read(&mut chunk)
            .map_err(|e| format!("{} {}: reading the body: {e}", req.method, req.target))?;
        if n == 0 {
            return Err(format!(
                "{} {}: body ended after {} of {len} bytes",
                req.method,
                req.target,
                body.len()
            ));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if body.len() > len {
        return Err(format!(
            "{} {}: {} bytes past the body (pipelining?)",
            req.method,
            req.target,
            body.len() - len
        ));
    }
    req.body = body;
    match &fault {
        Some(Fault::Status(code)) => {
            shared.record(&req, fault.clone(), Some(*code));
            let payload = format!(
                "{{\"errors\":[{{\"code\":\"INJECTED\",\"message\":\"injected fault: {code} {}\"}}]}}",
                reason(*code)
            );
            let mut resp = format!(
                "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\nConnection: close\r\n\r\n",
                reason(*code),
                payload.len()
            )
            .into_bytes();
            if !req.method.eq_ignore_ascii_case("HEAD") {
                resp.extend_from_slice(payload.as_bytes());
            }
            let _ = client.write_all(&resp);
            let _ = client.shutdown(Shutdown::Write);
            return Ok(());
        }
        Some(Fault::Reset) => {
            shared.record(&req, fault, None);
            reset(client);
            return Ok(());
        }
        Some(Fault::Delay(d)) => std::thread::sleep(*d),
        Some(Fault::DeclineMount) => {
            let kept: Vec<&str> = req
                .target
                .split_once('?')
                .map(|(_, q)| {
                    q.split('&')
                        .filter(|kv| !kv.starts_with("mount=") && !kv.starts_with("from="))
                        .collect()
                })
                .unwrap_or_default();
            req.target = if kept.is_empty() {
                path.clone()
            } else {
                format!("{path}?{}", kept.join("&"))
            };
        }
        Some(Fault::ResetEarly) | Some(Fault::LoseAnswer) | None => {}
    }
    let (status, resp) = forward(shared, &req)?;
    if let Some(Fault::LoseAnswer) = fault {
        shared.record(&req, fault, None);
        reset(client);
        return Ok(());
    }
    shared.record(&req, fault, Some(status));
    client
        .write_all(&resp)
        .map_err(|e| format!("{} {}: writing the answer: {e}", req.method, req.target))?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}

/// Sends `req` to the registry on a new connection; returns its answer, rewritten for the client.
pub(super) fn forward(shared: &Shared, req: &Request) -> Result<(u16, Vec<u8>), String> {
    let what = format!("{} {}", req.method, req.target);
    let mut up = TcpStream::connect(("127.0.0.1", shared.upstream))
        .map_err(|e| format!("{what}: connecting upstream: {e}"))?;
    up.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    up.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut out = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if !["connection", "keep-alive", "proxy-connection"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
        {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&req.body);
    up.write_all(&bytes)
        .map_err(|e| format!("{what}: writing upstream: {e}"))?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)
        .map_err(|e| format!("{what}: reading upstream: {e}"))?;
    let i = find(&resp, b"\r\n\r\n")
        .ok_or_else(|| format!("{what}: upstream answer without a head"))?;
    let head = String::from_utf8_lossy(&resp[..i]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{what}: bad status line {status_line:?}"))?;
    let mut new_head = format!("{status_line}\r\n");
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if k.eq_ignore_ascii_case("location") {
            let mut loc = v.to_string();
            for host in ["127.0.0.1", "localhost"] {
                let from = format!("//{host}:{}/", shared.upstream);
                if loc.contains(&from) {
                    loc = loc.replace(&from, &format!("//127.0.0.1:{}/", shared.port));
                    shared.location_rewrites.fetch_add(1, Ordering::SeqCst);
                }
            }
            new_head.push_str(&format!("{k}: {loc}\r\n"));
        } else {
            new_head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    new_head.push_str("Connection: close\r\n\r\n");
    let mut answer = new_head.into_bytes();
    answer.extend_from_slice(&resp[i + 4..]);
    Ok((status, answer))
}
