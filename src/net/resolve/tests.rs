//! The resolver against nameservers on local UDP sockets: answering, silent, failing, lying.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use super::*;
use crate::cancel::CancelToken;

/// A nameserver on a local port that answers each query with what `answer` returns (datagrams to
/// send back), until dropped.
struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    queries: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeServer {
    fn start(answer: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static) -> FakeServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let (stop2, queries2) = (stop.clone(), queries.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop2.load(Ordering::SeqCst) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    queries2.fetch_add(1, Ordering::SeqCst);
                    for reply in answer(&buf[..n]) {
                        let _ = socket.send_to(&reply, from);
                    }
                }
            }
        });
        FakeServer {
            addr,
            stop,
            queries,
            thread: Some(thread),
        }
    }

    fn silent() -> FakeServer {
        FakeServer::start(|_| Vec::new())
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The query's type (the last 4 bytes are type and class).
fn qtype(query: &[u8]) -> u16 {
    u16::from_be_bytes([query[query.len() - 4], query[query.len() - 3]])
}

/// The asked name, lower-case.
fn qname(query: &[u8]) -> String {
    let mut name = Vec::new();
    let mut pos = 12;
    while query[pos] != 0 {
        let len = usize::from(query[pos]);
        name.push(String::from_utf8_lossy(&query[pos + 1..pos + 1 + len]).to_lowercase());
        pos += 1 + len;
    }
    name.join(".")
}

/// An answer to `query` with `rcode` and address records for the asked name.
fn reply(query: &[u8], rcode: u8, addrs: &[IpAddr]) -> Vec<u8> {
    let mut msg = query.to_vec();
    msg[2] |= 0x80; // QR
    msg[3] = 0x80 | rcode; // RA
    let records: Vec<&IpAddr> = addrs
        .iter()
        .filter(|ip| ip.is_ipv4() == (qtype(query) == dns::TYPE_A))
        .collect();
    msg[7] = records.len() as u8;
    for ip in records {
        msg.extend_from_slice(&[0xC0, 12]);
        msg.extend_from_slice(&qtype(query).to_be_bytes());
        msg.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        let data = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        msg.extend_from_slice(&(data.len() as u16).to_be_bytes());
        msg.extend_from_slice(&data);
    }
    msg
}

fn config(servers: &[SocketAddr], extra: &str) -> ResolverConfig {
    let lines: Vec<String> = servers.iter().map(|s| format!("nameserver {s}")).collect();
    ResolverConfig::parse(&format!("{}\n{extra}", lines.join("\n")), "")
}

fn resolve(
    res: &Resolution,
    host: &str,
    cancel: &Cancel,
) -> (Result<Vec<IpAddr>, ureq::Error>, Duration) {
    let started = Instant::now();
    let r = res.lookup(host, 443, &NextTimeout::default(), cancel);
    (r, started.elapsed())
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn an_answering_server_gives_ipv4_then_ipv6() {
    let server = FakeServer::start(|q| vec![reply(q, 0, &[ip("::1"), ip("127.0.0.7")])]);
    let res = Resolution::new(Some(&config(&[server.addr], "")), Duration::from_secs(5));
    let (r, took) = resolve(&res, "hub.example.test", &Cancel::default());
    assert_eq!(r.expect("resolved"), vec![ip("127.0.0.7"), ip("::1")]);
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Cached: no second exchange.
    let asked = server.queries();
    let (r, _) = resolve(&res, "HUB.example.test", &Cancel::default());
    assert_eq!(r.expect("cached").len(), 2);
    assert_eq!(server.queries(), asked);
}

#[test]
fn a_silent_server_fails_within_the_timeout_and_is_remembered() {
    let server = FakeServer::silent();
    let res = Resolution::new(
        Some(&config(&[server.addr], "")),
        Duration::from_millis(600),
    );
    let (r, took) = resolve(&res, "hub.example.test", &Cancel::default());
    let e = r.expect_err("no answer");
    println!("silent server: failed in {took:?}: {e}");
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(900),
        "{took:?}"
    );
    assert!(
        matches!(&e, ureq::Error::Io(io) if is_resolve_error(io)),
        "{e:?}"
    );
    assert!(e.to_string().contains("no answer from nameserver"), "{e}");
    assert!(server.queries() >= 2, "A and AAAA asked");
    // The failure is remembered: the next lookup fails at once.
    let (r, took) = resolve(&res, "hub.example.test", &Cancel::default());
    assert!(r.is_err());
    assert!(took < Duration::from_millis(50), "{took:?}");
}

#[test]
fn cancel_ends_a_silent_lookup_within_a_poll() {
    let server = FakeServer::silent();
    let res = Resolution::new(Some(&config(&[server.addr], "")), Duration::from_secs(30));
    let token = CancelToken::new();
    let cancel = Cancel::new(Some(token.clone()), None);
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        token.cancel();
        Instant::now()
    });
    let (r, _) = resolve(&res, "hub.example.test", &cancel);
    let returned = Instant::now();
    let cancelled_at = canceller.join().expect("canceller");
    let latency = returned.duration_since(cancelled_at);
    println!("cancel latency in a silent lookup: {latency:?}");
    assert!(
        matches!(r, Err(ureq::Error::Io(ref io)) if io.kind() == io::ErrorKind::Interrupted),
        "{r:?}"
    );
    assert!(latency < Duration::from_millis(150), "{latency:?}");
    // A cancelled lookup is not remembered as a failure.
    assert!(res.cached("hub.example.test").is_none());
}

#[test]
fn nxdomain_tries_the_search_list_then_fails_fast() {
    let server = FakeServer::start(|q| {
        let found = qname(q) == "hub.corp.example";
        vec![reply(q, if found { 0 } else { 3 }, &[ip("10.9.8.7")])]
    });
    let cfg = config(&[server.addr], "search lab.example corp.example");
    let res = Resolution::new(Some(&cfg), Duration::from_secs(5));
    let (r, _) = resolve(&res, "hub", &Cancel::default());
    assert_eq!(r.expect("found via search"), vec![ip("10.9.8.7")]);
    let (r, took) = resolve(&res, "nothing.example", &Cancel::default());
    let e = r.expect_err("nxdomain");
    assert!(e.to_string().contains("no such host"), "{e}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn a_failing_or_refusing_server_passes_the_turn_to_the_next() {
    // SERVFAIL from the first, an answer from the second: no waiting for the first's turn to end.
    let failing = FakeServer::start(|q| vec![reply(q, 2, &[])]);
    let good = FakeServer::start(|q| vec![reply(q, 0, &[ip("10.0.0.3")])]);
    let cfg = config(&[failing.addr, good.addr], "options timeout:5");
    let res = Resolution::new(Some(&cfg), Duration::from_secs(10));
    let (r, took) = resolve(&res, "a.example", &Cancel::default());
    assert_eq!(r.expect("second server"), vec![ip("10.0.0.3")]);
    assert!(took < Duration::from_secs(1), "{took:?}");
    // A port where nothing listens: the ICMP error (or the turn's end) passes to the next server.
    let closed = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let cfg = config(&[closed_addr, good.addr], "options timeout:1");
    let res = Resolution::new(Some(&cfg), Duration::from_secs(10));
    let (r, took) = resolve(&res, "b.example", &Cancel::default());
    assert_eq!(r.expect("second server"), vec![ip("10.0.0.3")]);
    println!("refused first server, answered by the second in {took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn a_refusing_nameserver_fails_at_once_naming_the_refusal() {
    let closed = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let res = Resolution::new(Some(&config(&[addr], "")), Duration::from_secs(10));
    let (r, took) = resolve(&res, "hub.example.test", &Cancel::default());
    let e = r.expect_err("refused");
    println!("refusing nameserver: failed in {took:?}: {e}");
    assert!(
        matches!(&e, ureq::Error::Io(io) if is_resolve_error(io)),
        "{e:?}"
    );
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn forged_answers_are_ignored() {
    // First a reply with another id, then one for another name, then the real one.
    let server = FakeServer::start(|q| {
        let mut wrong_id = reply(q, 0, &[ip("6.6.6.6")]);
        wrong_id[0] ^= 0xFF;
        let mut other = q.to_vec();
        let at = other.len() - 6; // the last letter of the name
        other[at] ^= 0x01;
        vec![
            wrong_id,
            reply(&other, 0, &[ip("6.6.6.7")]),
            reply(q, 0, &[ip("10.1.2.3")]),
        ]
    });
    let res = Resolution::new(Some(&config(&[server.addr], "")), Duration::from_secs(5));
    let (r, _) = resolve(&res, "hub.example", &Cancel::default());
    assert_eq!(r.expect("the real answer"), vec![ip("10.1.2.3")]);
}

#[test]
fn literals_and_the_hosts_table_need_no_server() {
    let server = FakeServer::silent();
    let cfg = ResolverConfig::parse(
        &format!("nameserver {}", server.addr),
        "10.4.4.4 mirror.corp\n",
    );
    let res = Resolution::new(Some(&cfg), Duration::from_secs(5));
    let cancel = Cancel::default();
    assert_eq!(
        resolve(&res, "127.0.0.1", &cancel).0.expect("v4"),
        vec![ip("127.0.0.1")]
    );
    assert_eq!(
        resolve(&res, "[::1]", &cancel).0.expect("v6"),
        vec![ip("::1")]
    );
    assert_eq!(
        resolve(&res, "MIRROR.corp", &cancel).0.expect("hosts"),
        vec![ip("10.4.4.4")]
    );
    assert_eq!(
        resolve(&res, "localhost", &cancel).0.expect("localhost"),
        vec![ip("127.0.0.1"), ip("::1")]
    );
    assert_eq!(server.queries(), 0);
}

#[test]
fn a_shorter_request_deadline_is_a_ureq_timeout_and_not_remembered() {
    let server = FakeServer::silent();
    let res = Resolution::new(Some(&config(&[server.addr], "")), Duration::from_secs(30));
    let limit = NextTimeout {
        after: ureq::unversioned::transport::time::Duration::Exact(Duration::from_millis(300)),
        reason: ureq::Timeout::Global,
        ..NextTimeout::default()
    };
    let started = Instant::now();
    let r = res.lookup("hub.example.test", 80, &limit, &Cancel::default());
    assert!(
        matches!(r, Err(ureq::Error::Timeout(ureq::Timeout::Global))),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(res.cached("hub.example.test").is_none());
}
