//! A TCP relay in front of a registry that keeps everything clients send, to check what a
//! registry was shown (e.g. that no `Authorization` header ever reached it).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct Tap {
    pub port: u16,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Tap {
    /// Relays 127.0.0.1:<port> to 127.0.0.1:<upstream>, for the life of the test process.
    pub fn start(upstream: u16) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent: Arc<Mutex<Vec<u8>>> = Default::default();
        let keep = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let keep = keep.clone();
                std::thread::spawn(move || relay(client, upstream, keep));
            }
        });
        Tap { port, sent }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What clients sent so far, as text (bodies included, lossily).
    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }
}

fn relay(mut client: TcpStream, upstream: u16, keep: Arc<Mutex<Vec<u8>>>) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (Ok(mut back_from), Ok(mut back_to)) = (server.try_clone(), client.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 << 10];
    while let Ok(n) = client.read(&mut buf) {
        if n == 0 {
            break;
        }
        keep.lock().unwrap().extend_from_slice(&buf[..n]);
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}
