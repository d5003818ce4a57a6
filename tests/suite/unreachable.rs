//! A hub that cannot be reached (issue 12, item 4): the metadata phase gives up within seconds,
//! and a complete cached snapshot of the revision answers instead, as huggingface_hub does; with
//! nothing cached, or the fallback turned off, the pull fails with a network error that names the
//! endpoint and the cause.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::{TempDir, options};
use lemon_pull::{Error, Event, Flow, PullOptions, Status, Unreachable};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";

/// An endpoint on a local port where nothing listens: every connection is refused at once.
fn refusing_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Pulls, returning the result, the causes of `FromCache` events, and how long it took.
fn timed(
    opts: &PullOptions,
) -> (
    lemon_pull::Result<lemon_pull::PullOutcome>,
    Vec<String>,
    Duration,
) {
    let mut causes = Vec::new();
    let started = Instant::now();
    let r = lemon_pull::pull(opts, &mut |e: &Event<'_>| {
        if let Event::FromCache { cause } = e {
            causes.push(cause.to_string());
        }
        Flow::Continue
    });
    (r, causes, started.elapsed())
}

/// The options tests use, with the library's own retry policy: the quick give-up for an
/// unreachable hub must not depend on a test's fast retries.
fn default_retry_options(endpoint: &str, tmp: &TempDir) -> PullOptions {
    let mut o = options(endpoint, tmp.path(), REPO);
    o.retry = lemon_pull::RetryPolicy::default();
    o
}

#[test]
fn a_refusing_hub_is_answered_from_the_cached_snapshot_within_seconds() {
    let tmp = TempDir::new("unreachable-fallback");
    let sha = crate::common::cached_snapshot(tmp.path(), REPO, 3 << 20);
    let (r, causes, took) = timed(&default_retry_options(&refusing_endpoint(), &tmp));
    let outcome = r.expect("answered from the cache");
    println!("refused, cached: answered in {took:?}");
    assert!(outcome.from_cache);
    assert_eq!(outcome.commit, sha);
    assert_eq!(outcome.totals.bytes_downloaded, 0);
    assert!(outcome.snapshot_path.join("model.gguf").is_file());
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert!(causes[0].contains("connection refused"), "{causes:?}");
    assert!(took <= Duration::from_secs(5), "took {took:?}");
}

#[test]
fn without_the_fallback_or_a_cached_snapshot_the_network_error_comes_within_seconds() {
    let tmp = TempDir::new("unreachable-strict");
    crate::common::cached_snapshot(tmp.path(), REPO, 3 << 20);
    let endpoint = refusing_endpoint();
    let mut strict = default_retry_options(&endpoint, &tmp);
    strict.cache_fallback = false;
    let (r, causes, took) = timed(&strict);
    println!("refused, fallback off: failed in {took:?}");
    let e = r.expect_err("strict freshness");
    assert!(causes.is_empty());
    assert_network_unreachable(&e, &endpoint, Unreachable::Refused);
    assert!(took <= Duration::from_secs(30), "took {took:?}");

    let empty = TempDir::new("unreachable-empty");
    let (r, causes, took) = timed(&default_retry_options(&endpoint, &empty));
    println!("refused, nothing cached: failed in {took:?}");
    let e = r.expect_err("nothing cached");
    assert_eq!(causes.len(), 1, "the fallback was tried: {causes:?}");
    assert_network_unreachable(&e, &endpoint, Unreachable::Refused);
    assert!(took <= Duration::from_secs(30), "took {took:?}");
}

#[test]
fn a_host_name_that_does_not_resolve_falls_back_too() {
    let tmp = TempDir::new("unreachable-dns");
    let sha = crate::common::cached_snapshot(tmp.path(), REPO, 3 << 20);
    // `.invalid` never resolves (RFC 6761). The system's configuration is used: where its
    // nameserver answers NXDOMAIN this is the quick path; a nameserver that never answers is
    // tests/resolve.rs's case (bounded by `dns_timeout`).
    let endpoint = "http://hub.lemon-pull-test.invalid";
    let (r, causes, took) = timed(&default_retry_options(endpoint, &tmp));
    println!("unresolvable, cached: answered in {took:?}");
    let outcome = r.expect("answered from the cache");
    assert!(outcome.from_cache && outcome.commit == sha);
    assert!(causes[0].contains("host name not resolved"), "{causes:?}");
    assert!(took <= Duration::from_secs(5), "took {took:?}");

    let empty = TempDir::new("unreachable-dns-empty");
    let (r, _, took) = timed(&default_retry_options(endpoint, &empty));
    println!("unresolvable, nothing cached: failed in {took:?}");
    assert_network_unreachable(
        &r.expect_err("nothing cached"),
        endpoint,
        Unreachable::NameResolution,
    );
    assert!(took <= Duration::from_secs(30), "took {took:?}");
}

fn assert_network_unreachable(e: &Error, endpoint: &str, cause: Unreachable) {
    assert_eq!(e.status(), Status::Network, "{e}");
    assert!(
        matches!(e, Error::Network { unreachable: Some(c), .. } if *c == cause),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains(endpoint), "names the endpoint: {text}");
}

#[test]
fn a_cdn_host_name_that_does_not_resolve_fails_the_transfer_at_once_naming_the_file() {
    let hub = MockHub::start();
    hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", pseudo_random_bytes(6, 1 << 20))],
    );
    // The hub answers, but its downloads redirect to a CDN whose name never resolves (RFC 6761).
    hub.set_cdn_base(Some(&format!(
        "http://cdn.lemon-pull-test.invalid:{}",
        hub.port()
    )));
    let tmp = TempDir::new("unreachable-cdn-dns");
    let (r, _, took) = timed(&default_retry_options(&hub.endpoint(), &tmp));
    println!("CDN name not resolved: failed in {took:?}");
    let e = r.expect_err("the CDN cannot be reached");
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
    assert!(e.to_string().contains("model.gguf"), "names the file: {e}");
    assert!(
        took <= Duration::from_secs(30),
        "not minutes of retries: {took:?}"
    );
}

/// A pinned pull with every file known makes no listing call, so a hub that is down is first met
/// by a download: a few quick tries, then the network error, not the minutes of backoff meant for
/// a server that answers badly.
#[test]
fn a_refusing_hub_fails_a_pinned_download_within_seconds() {
    let tmp = TempDir::new("unreachable-pinned");
    let endpoint = refusing_endpoint();
    let mut o = default_retry_options(&endpoint, &tmp);
    o.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
    let mut spec = lemon_pull::FileSpec::new("model.gguf");
    spec.size = Some(1 << 20);
    spec.sha256 = Some("ab".repeat(32));
    o.files = vec![spec];
    let (r, _, took) = timed(&o);
    println!("refused, pinned download: failed in {took:?}");
    let e = r.expect_err("nothing answers");
    assert_network_unreachable(&e, &endpoint, Unreachable::Refused);
    assert!(e.to_string().contains("model.gguf"), "names the file: {e}");
    assert!(
        took <= Duration::from_secs(30),
        "not minutes of retries: {took:?}"
    );
}
