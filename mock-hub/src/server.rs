//! Connections: accept, read requests, hand each to the routes, and write the answer out
//! (rate-limited, counted, or cut short by a fault).

use crate::admin::admin;
use crate::api::{info, tree_listing};
use crate::download::{cdn, resolve, resolve_cache};
use crate::encode::unix_secs;
use crate::faults::{Cut, Outcome, inject_fault};
use crate::http::{
    Body, ContentSlice, MAX_REQUEST_BODY, ReadError, Request, Response, header_safe, hub_error,
    read_request, reason,
};
use crate::model::Content;
use crate::modelscope;
use crate::routes::{Endpoint, HostKind, host_kind, route};
use crate::state::Shared;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Body bytes per `write` call; large writes keep the mock from being the bottleneck of a benchmark.
const CHUNK: usize = 1 << 20;
/// Idle keep-alive connections are closed after this, like any real server does eventually.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn accept_loop(shared: &Arc<Shared>, listener: TcpListener) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // Out of file descriptors and the like: back off instead of spinning.
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        let shared = Arc::clone(shared);
        // If the thread cannot be spawned the stream is dropped, which closes the connection.
        let _ = thread::Builder::new()
            .name("mock-hub-conn".into())
            .spawn(move || serve_connection(&shared, stream));
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let id = shared.register(&stream);
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    // Checked after registering, so that a concurrent Drop either sees this connection or we see it.
    while !shared.stop.load(Ordering::SeqCst) {
        let keep_alive = match read_request(&mut reader) {
            Ok(req) => handle(shared, &mut out, &req),
            Err(ReadError::Closed) => false,
            Err(ReadError::Bad(msg)) => {
                let resp = hub_error(400, None, msg);
                let delivery = Delivery {
                    head_only: false,
                    close: true,
                    cut: None,
                    seq: None,
                };
                let _ = deliver(shared, &mut out, resp, &delivery);
                false
            }
        };
        if !keep_alive {
            break;
        }
    }
    let _ = out.shutdown(Shutdown::Write);
    // Closing with unread input makes the kernel send RST, which can destroy the answer we just
    // sent (e.g. a 400 for an oversized head) before the client reads it. Drain briefly first.
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)));
    let _ = io::copy(&mut reader.by_ref().take(MAX_REQUEST_BODY), &mut io::sink());
    if let Some(id) = id {
        shared.conns().remove(&id);
    }
}

/// Answers one request; returns whether the connection stays open.
pub(crate) fn handle(shared: &Shared, out: &mut TcpStream, req: &Request) -> bool {
    let keep_alive = req.keep_alive();
    let head_only = req.method == "HEAD";
    if req.path == "/admin" || req.path.starts_with("/admin/") {
        let resp = admin(shared, req);
        let delivery = Delivery {
            head_only,
            close: !keep_alive,
            cut: None,
            seq: None,
        };
        return deliver(shared, out, resp, &delivery).is_ok() && keep_alive;
    }
    let seq = shared.log_request(req);
    let host = host_kind(shared.port, req);
    match respond(shared, req, host) {
        Outcome::Silent(wait) => {
            thread::sleep(wait);
            let _ = out.shutdown(Shutdown::Both);
            false
        }
        Outcome::Reply(mut resp, cut) => {
            if host == HostKind::Hub {
                resp.headers.push(("X-Request-Id", request_id(seq, req)));
                let st = shared.lock();
                let omit = &st.knobs.omit_headers;
                if !omit.is_empty() {
                    resp.headers
                        .retain(|(name, _)| !omit.contains(&name.to_ascii_lowercase()));
                }
            }
            let close = !keep_alive && cut.is_none();
            let delivery = Delivery {
                head_only,
                close,
                cut,
                seq: Some(seq),
            };
            deliver(shared, out, resp, &delivery).is_ok() && keep_alive && cut.is_none()
        }
    }
}

/// The answer to one (non-admin) request, with the first queued fault that applies to it.
fn respond(shared: &Shared, req: &Request, host: HostKind) -> Outcome {
    let route = match route(shared, req, host) {
        Ok(route) => route,
        Err(resp) => return Outcome::Reply(resp, None),
    };
    let is_get = req.method == "GET";
    // The real answer is computed first (minting a signed URL is its only side effect) so that
    // the queue can be searched in order: the first queued fault that applies wins, whether it
    // replaces the answer (`Status`, `NoResponse`, ...) or alters its body (`DropAfter`, ...).
    let resp = {
        let mut st = shared.lock();
        let answer = match &route.endpoint {
            Endpoint::Info { repo, rev } => info(&st, req, &route, repo, rev.as_deref()),
            Endpoint::Tree { repo, rev, path } => {
                tree_listing(&st, shared.port, req, &route, repo, rev, path)
            }
            Endpoint::Resolve { repo, rev, path } => {
                resolve(&mut st, shared.port, req, repo, rev, path)
            }
            Endpoint::ResolveCache { repo, sha, path } => {
                resolve_cache(&mut st, shared.port, req, repo, sha, path)
            }
            Endpoint::Cdn { sha256 } => Ok(cdn(&mut st, req, &route, sha256)),
            Endpoint::MsListing { repo } => modelscope::listing(&st, req, &route, repo),
            Endpoint::MsFile { repo, path } => {
                modelscope::file(&mut st, shared.port, req, &route, repo, path)
            }
        };
        match answer {
            Ok(resp) | Err(resp) => resp,
        }
    };
    inject_fault(shared, &route, is_get, resp)
}

fn request_id(seq: u64, req: &Request) -> String {
    let secs = unix_secs(SystemTime::now());
    let id = format!("Root=1-{:08x}-{seq:024x}", secs as u32);
    match req.header("x-amzn-trace-id") {
        Some(trace) => format!("{id};{trace}"),
        None => id,
    }
}

/// How a response goes out.
struct Delivery {
    head_only: bool,
    /// Announce `Connection: close` and close after the response.
    pub(crate) close: bool,
    pub(crate) cut: Option<Cut>,
    /// Request-log entry to stamp with the status.
    pub(crate) seq: Option<u64>,
}

fn deliver(shared: &Shared, out: &mut TcpStream, resp: Response, d: &Delivery) -> io::Result<()> {
    if let Some(seq) = d.seq {
        shared.set_status(seq, resp.status);
    }
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (name, value) in &resp.headers {
        let _ = write!(head, "{name}: {}\r\n", header_safe(value));
    }
    if resp.status != 304 {
        let _ = write!(head, "Content-Length: {}\r\n", resp.body_len());
    }
    if d.close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    match resp.body {
        Body::Bytes(body) => {
            let mut buf = head.into_bytes();
            if !d.head_only {
                buf.extend_from_slice(&body);
            }
            out.write_all(&buf)?;
        }
        Body::Content(slice) => {
            out.write_all(head.as_bytes())?;
            if !d.head_only {
                let send = d.cut.map_or(slice.len, |cut| cut.after().min(slice.len));
                let rate = shared.lock().knobs.rate_limit;
                stream_content(out, &slice, send, rate, &shared.total_served)?;
                if d.cut.is_none() {
                    stream_filler(out, slice.junk, 0xAA, None)?;
                }
            }
        }
        Body::Padded { pad, body } => {
            out.write_all(head.as_bytes())?;
            if !d.head_only {
                stream_filler(out, pad, b' ', Some(&shared.padding_served))?;
                out.write_all(&body)?;
            }
        }
    }
    match d.cut {
        Some(Cut::Drop(_)) => out.shutdown(Shutdown::Both),
        Some(Cut::Stall(_, stall)) => {
            thread::sleep(stall);
            out.shutdown(Shutdown::Both)
        }
        None => Ok(()),
    }
}

/// Keeps the body rate at or below `bps` by sleeping between writes.
struct Pacer {
    pub(crate) bps: Option<u64>,
    pub(crate) started: Instant,
    pub(crate) sent: u64,
}

impl Pacer {
    pub(crate) fn sent(&mut self, n: usize) {
        self.sent += n as u64;
        let Some(bps) = self.bps else { return };
        let due = Duration::from_secs_f64(self.sent as f64 / bps as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            thread::sleep(due - elapsed);
        }
    }
}

fn stream_content(
    out: &mut TcpStream,
    slice: &ContentSlice,
    send: u64,
    rate: Option<u64>,
    total: &AtomicU64,
) -> io::Result<()> {
    // Small writes under a rate limit keep the pace smooth instead of bursty.
    let chunk = rate.map_or(CHUNK, |bps| (bps / 20).clamp(1, CHUNK as u64) as usize);
    let mut pacer = Pacer {
        bps: rate,
        started: Instant::now(),
        sent: 0,
    };
    let counters = [total, &*slice.counter];
    match &slice.content {
        Content::Bytes(bytes) => {
            let range = to_usize(slice.start)?..to_usize(slice.start + send)?;
            let data = bytes
                .get(range)
                .ok_or_else(|| io::Error::other("content shrank"))?;
            for piece in data.chunks(chunk) {
                write_counted(out, piece, &counters)?;
                pacer.sent(piece.len());
            }
        }
        Content::File(path) => {
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(slice.start))?;
            let mut buf = vec![0; chunk.min(to_usize(send)?)];
            let mut left = send;
            while left > 0 {
                let n = buf.len().min(to_usize(left)?);
                // A file that shrank since it was committed breaks the promised length: the
                // error closes the connection, which is what a real server would do too.
                file.read_exact(&mut buf[..n])?;
                write_counted(out, &buf[..n], &counters)?;
                pacer.sent(n);
                left -= n as u64;
            }
        }
    }
    Ok(())
}

/// Writes `n` copies of `byte`, counting every byte the socket accepted into `counter`.
fn stream_filler(
    out: &mut TcpStream,
    n: u64,
    byte: u8,
    counter: Option<&AtomicU64>,
) -> io::Result<()> {
    let chunk = vec![byte; CHUNK];
    let mut left = n;
    while left > 0 {
        let piece = &chunk[..to_usize(left.min(CHUNK as u64))?];
        match out.write(piece) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                if let Some(counter) = counter {
                    counter.fetch_add(written as u64, Ordering::SeqCst);
                }
                left -= written as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(io::Error::other)
}

/// Counts the bytes before writing them: the client may read them, and a test read the counter,
/// before `write` returns here. Bytes that could not be written are taken back out.
fn write_counted(out: &mut TcpStream, data: &[u8], counters: &[&AtomicU64]) -> io::Result<()> {
    let add = |n: usize| {
        counters.iter().for_each(|c| {
            c.fetch_add(n as u64, Ordering::SeqCst);
        })
    };
    let sub = |n: usize| {
        counters.iter().for_each(|c| {
            c.fetch_sub(n as u64, Ordering::SeqCst);
        })
    };
    add(data.len());
    let mut written = 0;
    while written < data.len() {
        match out.write(&data[written..]) {
            Ok(0) => {
                sub(data.len() - written);
                return Err(io::ErrorKind::WriteZero.into());
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                sub(data.len() - written);
                return Err(e);
            }
        }
    }
    Ok(())
}
