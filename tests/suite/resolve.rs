//! Name resolution in a whole pull (issue 15, item 1): bounded by `dns_timeout`, cancellable
//! within 500 ms, and resolving through the configured nameservers. The nameservers are local UDP
//! sockets named by an injected `ResolverConfig`: one swallows every query (a DNS server that never
//! answers), one answers A queries with 127.0.0.1 for a made-up name.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{TempDir, options};
use lemon_pull::{Error, Event, Flow, PullOptions, ResolverConfig, Status, Unreachable};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";

/// A nameserver on a local UDP port. `answer_a` = reply to A queries with 127.0.0.1 (and to
/// others with no data); otherwise every query is swallowed. Counts the queries it received.
struct Nameserver {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Nameserver {
    fn start(answer_a: bool) -> Nameserver {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("addr");
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (queries.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                if answer_a && n > 16 {
                    let _ = socket.send_to(&reply_a(&buf[..n]), from);
                }
            }
        });
        Nameserver {
            addr,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    /// A configuration that asks only this server, with an empty hosts table.
    fn config(&self) -> ResolverConfig {
        ResolverConfig::parse(&format!("nameserver {}", self.addr), "")
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for Nameserver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The answer to `query`: for type A one record, 127.0.0.1; for any other type none.
fn reply_a(query: &[u8]) -> Vec<u8> {
    let qtype = u16::from_be_bytes([query[query.len() - 4], query[query.len() - 3]]);
    let mut msg = query.to_vec();
    msg[2] |= 0x80; // a response
    msg[3] = 0x80; // recursion available, NOERROR
    if qtype == 1 {
        msg[7] = 1; // one answer
        // Owner: a pointer to the question's name; A, IN, TTL 60, 4 bytes of address.
        msg.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    msg
}

/// Options for a pull from `endpoint` resolving through `ns`, with the library's retry policy
/// (as tests/unreachable.rs: the give-up time must not depend on a test's fast retries).
fn via(ns: &Nameserver, endpoint: &str, cache: &TempDir) -> PullOptions {
    let mut o = options(endpoint, cache.path(), REPO);
    o.retry = lemon_pull::RetryPolicy::default();
    o.resolver = Some(ns.config());
    o
}

/// What a pull did: its result, when it ended, and when the first retry was announced.
struct Timed {
    result: lemon_pull::Result<lemon_pull::PullOutcome>,
    took: Duration,
    first_retry: Option<(Duration, String)>,
}

fn timed(opts: &PullOptions) -> Timed {
    let started = Instant::now();
    let mut first_retry = None;
    let result = lemon_pull::pull(opts, &mut |e: &Event<'_>| {
        if let Event::Retry { reason, .. } = e {
            first_retry.get_or_insert((started.elapsed(), reason.to_string()));
        }
        Flow::Continue
    });
    Timed {
        result,
        took: started.elapsed(),
        first_retry,
    }
}

fn assert_name_resolution(e: &Error) {
    assert_eq!(e.status(), Status::Network, "{e}");
    assert!(
        matches!(
            e,
            Error::Network {
                unreachable: Some(Unreachable::NameResolution),
                ..
            }
        ),
        "{e:?}"
    );
}

/// What a failed lookup may take beyond the DNS timeout: the pull does not retry a name that did
/// not resolve (the resolver already asked every nameserver), so only set-up and scheduling.
const SLACK: Duration = Duration::from_millis(1500);

#[test]
fn a_nameserver_that_never_answers_fails_the_pull_after_the_dns_timeout() {
    let ns = Nameserver::start(false);
    let tmp = TempDir::new("resolve-silent");
    let mut opts = via(&ns, "http://hub.example.test:9", &tmp);
    opts.dns_timeout = Duration::from_millis(1500);
    let t = timed(&opts);
    let e = t.result.expect_err("no answer");
    assert!(
        t.first_retry.is_none(),
        "a name that did not resolve is not retried"
    );
    let (at, reason) = (t.took, e.to_string());
    println!("silent nameserver, dns_timeout 1.5 s: pull failed in {at:?}: {e}");
    assert_name_resolution(&e);
    assert!(
        e.to_string().contains(&ns.addr.to_string()),
        "names the server: {e}"
    );
    assert!(reason.contains("no answer"), "{reason}");
    // The lookup ends at the DNS timeout, not at glibc's schedule.
    assert!(
        at >= Duration::from_millis(1400) && at < Duration::from_millis(2500),
        "{at:?}"
    );
    assert!(t.took < opts.dns_timeout + SLACK, "{:?}", t.took);
    // One lookup: A and AAAA, two tries each (resolv.conf's default `attempts:2`).
    let asked = ns.queries();
    assert!((2..=4).contains(&asked), "{asked} queries");
}

#[test]
fn with_the_default_dns_timeout_a_silent_nameserver_fails_within_30_s() {
    let ns = Nameserver::start(false);
    let tmp = TempDir::new("resolve-silent-default");
    let opts = via(&ns, "http://hub.example.test:9", &tmp);
    assert_eq!(opts.dns_timeout, Duration::from_secs(10), "the default");
    let t = timed(&opts);
    let e = t.result.expect_err("no answer");
    println!("silent nameserver, defaults: failed in {:?}", t.took);
    assert_name_resolution(&e);
    assert!(t.took <= Duration::from_secs(30), "{:?}", t.took);
}

#[test]
fn a_silent_nameserver_with_a_cached_snapshot_falls_back() {
    let tmp = TempDir::new("resolve-silent-cached");
    let sha = crate::common::cached_snapshot(tmp.path(), REPO, 1 << 20);
    let ns = Nameserver::start(false);
    let mut opts = via(&ns, "http://hub.example.test:9", &tmp);
    opts.dns_timeout = Duration::from_secs(2);
    let t = timed(&opts);
    let outcome = t.result.expect("answered from the cache");
    println!(
        "silent nameserver, dns_timeout 2 s, cached: answered in {:?}",
        t.took
    );
    assert!(outcome.from_cache && outcome.commit == sha);
    assert!(t.took < opts.dns_timeout + SLACK, "{:?}", t.took);
}

#[test]
fn cancel_from_the_observer_ends_a_stalled_lookup_within_500_ms() {
    let ns = Nameserver::start(false);
    let tmp = TempDir::new("resolve-cancel");
    let opts = via(&ns, "http://hub.example.test:9", &tmp);
    let started = Instant::now();
    let mut cancelled_at = None;
    let mut phases = Vec::new();
    let r = lemon_pull::pull(&opts, &mut |e: &Event<'_>| {
        if let Event::Tick { phase, .. } = e {
            phases.push(*phase);
        }
        if started.elapsed() >= Duration::from_secs(1) {
            cancelled_at.get_or_insert_with(Instant::now);
            return Flow::Cancel;
        }
        Flow::Continue
    });
    let returned = Instant::now();
    let cancelled_at = cancelled_at.expect("the observer was called after 1 s");
    let latency = returned.duration_since(cancelled_at);
    println!("cancel 1 s into a stalled lookup: returned {latency:?} after the cancel");
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert!(latency <= Duration::from_millis(500), "{latency:?}");
    assert!(
        phases.contains(&lemon_pull::Phase::Resolve),
        "ticks during the lookup: {phases:?}"
    );
}

#[test]
fn a_made_up_name_resolves_through_the_configured_nameserver() {
    let hub = MockHub::start();
    let files = vec![
        MockFile::regular("config.json", br#"{"arch": "llama"}"#.to_vec()),
        MockFile::lfs("model.gguf", pseudo_random_bytes(4, 1 << 20)),
    ];
    let sha = hub.commit(REPO, "main", files);
    let ns = Nameserver::start(true);
    let tmp = TempDir::new("resolve-made-up");
    let endpoint = format!("http://hub.lemon-pull-made-up.example:{}", hub.port());
    let outcome = lemon_pull::pull(&via(&ns, &endpoint, &tmp), &mut lemon_pull::Silent)
        .expect("pulled through the made-up name");
    assert_eq!(outcome.commit, sha);
    assert!(outcome.snapshot_path.join("model.gguf").is_file());
    assert!(!outcome.from_cache);
    assert!(ns.queries() >= 1, "the nameserver was asked");
    assert!(!hub.requests().is_empty());
}
