//! A fault-injecting HTTP proxy between the `dropship` binary and a real registry (std only):
//! rules pick requests by method and path and answer them with a status, a reset, a delay, a
//! lost answer or a declined mount; everything else is relayed (`relay.rs`).
//!
//! The proxy serves one request per client connection: it reads the request (head, then
//! exactly Content-Length body bytes), applies the first matching fault rule or forwards it on
//! a new upstream connection with `Connection: close`, relays the answer until EOF (pointing
//! absolute `Location`s at itself) and closes the client connection.

mod relay;

use relay::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub enum Fault {
    /// Read the whole request, answer with this status (and a small JSON error body).
    Status(u16),
    /// Read the request head only, then reset the connection while the client sends the body.
    ResetEarly,
    /// Read the whole request, then reset the connection without answering.
    Reset,
    /// Wait, then forward.
    Delay(Duration),
    /// Forward, let the registry act on the request, then reset the connection instead of
    /// relaying its answer (a commit the client never hears about).
    LoseAnswer,
    /// Forward a cross-repository mount POST without its `mount`/`from` query: the registry
    /// opens an ordinary upload session and answers 202 ("not mounted"), as the spec allows.
    DeclineMount,
}

pub struct Rule {
    pub methods: Vec<&'static str>,
    pub path_contains: String,
    /// Matching requests let through before the fault applies.
    pub skip: usize,
    /// How many matching requests (after `skip`) get the fault.
    pub times: usize,
    pub fault: Fault,
    pub seen: AtomicUsize,
    /// Only requests carrying a Content-Range that does not start at 0 (a blob's later chunks).
    pub later_chunks_only: bool,
}

impl Rule {
    /// Every request with one of `methods` whose path contains `path_contains`.
    pub fn on(methods: &[&'static str], path_contains: &str, fault: Fault) -> Rule {
        Rule {
            methods: methods.to_vec(),
            path_contains: path_contains.to_string(),
            skip: 0,
            times: usize::MAX,
            fault,
            seen: AtomicUsize::new(0),
            later_chunks_only: false,
        }
    }
    pub fn later_chunks(mut self) -> Rule {
        self.later_chunks_only = true;
        self
    }
    pub fn first(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }
    pub fn skip(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }
}

/// One request the proxy saw, and what became of it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body_len: usize,
    pub content_range: Option<String>,
    pub fault: Option<Fault>,
    /// The status the client got (`None`: the connection was reset).
    pub status: Option<u16>,
    pub at: Instant,
}

pub struct Shared {
    pub port: u16,
    pub upstream: u16,
    pub rules: Vec<Rule>,
    pub log: Mutex<Vec<Seen>>,
    pub errors: Mutex<Vec<String>>,
    pub location_rewrites: AtomicUsize,
}

pub struct Proxy {
    pub port: u16,
    pub shared: Arc<Shared>,
    pub stop: Arc<AtomicBool>,
    pub accept: Option<JoinHandle<()>>,
    pub conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(60);

impl Proxy {
    pub fn start(upstream: u16, rules: Vec<Rule>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            port,
            upstream,
            rules,
            log: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
            location_rewrites: AtomicUsize::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (shared, stop, conns) = (shared.clone(), stop.clone(), conns.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let shared = shared.clone();
                            let h = std::thread::spawn(move || {
                                if let Err(e) = serve(&shared, client) {
                                    shared.errors.lock().unwrap().push(e);
                                }
                            });
                            conns.lock().unwrap().push(h);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(e) => {
                            shared.errors.lock().unwrap().push(format!("accept: {e}"));
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })
        };
        Proxy {
            port,
            shared,
            stop,
            accept: Some(accept),
            conns,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn count(&self, pred: impl Fn(&Seen) -> bool) -> usize {
        self.log().iter().filter(|s| pred(s)).count()
    }

    pub fn faults(&self) -> usize {
        self.count(|s| s.fault.is_some())
    }

    /// The request log, one line per request, for assertion messages.
    pub fn dump(&self) -> String {
        let log = self.log();
        let t0 = log.first().map(|s| s.at);
        log.iter()
            .map(|s| {
                format!(
                    "  +{:6.2}s {:5} {}{}{} body={} -> {} {}\n",
                    t0.map(|t| s.at.duration_since(t).as_secs_f64())
                        .unwrap_or(0.0),
                    s.method,
                    s.path,
                    if s.query.is_empty() { "" } else { "?" },
                    s.query.chars().take(40).collect::<String>(),
                    s.body_len,
                    s.status
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "reset".into()),
                    s.fault
                        .as_ref()
                        .map(|f| format!("[{f:?}]"))
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    /// Waits until every connection the proxy accepted has been handled and recorded: dropship
    /// may be done before the thread of a connection it gave up on (it retried elsewhere) is.
    pub fn settle(&self) {
        let deadline = Instant::now() + IO_TIMEOUT + Duration::from_secs(5);
        while self.conns.lock().unwrap().iter().any(|h| !h.is_finished()) {
            assert!(
                Instant::now() < deadline,
                "proxy connections never finished"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Protocol problems the proxy met (e.g. a chunked request): none expected.
    pub fn assert_clean(&self) {
        let errors = self.shared.errors.lock().unwrap().clone();
        assert!(
            errors.is_empty(),
            "proxy errors: {errors:#?}\nrequests:\n{}",
            self.dump()
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        // Connection threads end by themselves (every socket has a timeout).
        for h in self.conns.lock().unwrap().drain(..) {
            let _ = h.join();
        }
    }
}

impl Shared {
    /// The fault for this request, if a rule fires (every matching rule counts the request).
    pub fn fault_for(&self, method: &str, path: &str, range: Option<&str>) -> Option<Fault> {
        let mut fault = None;
        let later = range.is_some_and(|c| !c.starts_with("0-"));
        for r in &self.rules {
            if r.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
                && path.contains(&r.path_contains)
                && (!r.later_chunks_only || later)
            {
                let n = r.seen.fetch_add(1, Ordering::SeqCst);
                if fault.is_none() && n >= r.skip && n - r.skip < r.times {
                    fault = Some(r.fault.clone());
                }
            }
        }
        fault
    }

    fn record(&self, req: &Request, fault: Option<Fault>, status: Option<u16>) {
        let (path, query) = req.original.split_once('?').unwrap_or((&req.original, ""));
        self.log.lock().unwrap().push(Seen {
            method: req.method.clone(),
            path: path.to_string(),
            query: query.to_string(),
            body_len: req.body.len(),
            content_range: req.header("content-range").map(str::to_string),
            fault,
            status,
            at: Instant::now(),
        });
    }
}

struct Request {
    method: String,
    /// The request target as the client sent it.
    original: String,
    /// The request target sent upstream.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
