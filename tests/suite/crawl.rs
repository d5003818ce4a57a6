//! No endless crawl (issue 15, item 2): a server that drops every connection after a few bytes
//! used to keep a pull going forever, because bytes arriving reset the retry budget. An attempt
//! that ends after little progress (less than 1 MiB and less than 2 s of data flow) now counts
//! against the budget: the pull ends with a network error naming the file and the pattern, and
//! keeps what it got for a later resume. A slow but steady link, whose attempts each bring real
//! progress (however little data), still completes, over one connection and over four.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Seen, TempDir, options, pull_recording};
use lemon_pull::{Error, RetryPolicy, Status};
use mock_hub::{Fault, MockFile, MockHub, Target, pseudo_random_bytes};

const REPO: &str = "org/model";
const FILE: &str = "model.safetensors";
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// Enough queued cuts that the CDN never runs out of them during one pull.
const EVERY_TIME: usize = 5_000;

fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total_wait: Duration::from_secs(30),
    }
}

fn partial_path(cache: &Path, sha: &str) -> PathBuf {
    cache
        .join("models--org--model/snapshots")
        .join(sha)
        .join(format!("{FILE}.partial"))
}

fn cdn_gets(hub: &MockHub) -> usize {
    hub.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/cdn/"))
        .count()
}

fn retries(seen: &[Seen]) -> usize {
    seen.iter()
        .filter(|s| matches!(s, Seen::Retry { .. }))
        .count()
}

/// The CDN cuts every answer after 64 KiB. Before the fix each cut reset the budget, so the pull
/// crawled on 64 KiB at a time until the file was complete.
fn cut_every_time(connections: u32, size: u64) {
    let hub = MockHub::start();
    let bytes = pseudo_random_bytes(3, size as usize);
    let sha = hub.commit(REPO, "main", vec![MockFile::lfs(FILE, bytes)]);
    for _ in 0..EVERY_TIME {
        hub.push_fault(Target::Cdn(FILE.into()), Fault::DropAfter(64 * KIB));
    }
    let cache = TempDir::new("crawl-cut");
    let mut opts = options(&hub.endpoint(), cache.path(), REPO);
    let max_retries = 5;
    opts.retry = policy(max_retries);
    opts.connections = connections;
    let started = Instant::now();
    let (r, seen) = pull_recording(&opts);
    let elapsed = started.elapsed();

    let err = match r {
        Ok(_) => panic!(
            "the pull crawled to the end over {} cut connections instead of giving up",
            cdn_gets(&hub)
        ),
        Err(e) => e,
    };
    assert_eq!(err.status(), Status::Network, "{err}");
    let message = err.to_string();
    assert!(
        matches!(&err, Error::LowProgress { file, drops, .. } if file == FILE && *drops > max_retries),
        "{err:?}"
    );
    for needle in [
        FILE,
        "dropped",
        "times after less than 1 MiB",
        "partial kept",
    ] {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
    // Bounded: every connection gave up after its budget (plus the attempts in flight when the
    // first one did), well before the file could have crawled to its end.
    let per_connection = max_retries as usize + 1;
    let gets = cdn_gets(&hub);
    assert!(
        gets <= per_connection * connections as usize + connections as usize,
        "{gets} requests"
    );
    assert!(retries(&seen) >= max_retries as usize, "{seen:?}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    // What arrived is kept for a later resume.
    let on_disk = fs::metadata(partial_path(cache.path(), &sha))
        .expect("partial kept")
        .len();
    assert!(on_disk > 0, "partial is empty");
    let served = hub.bytes_served(REPO, FILE);
    assert!(served < size / 2, "{served} of {size} bytes served");
}

#[test]
fn a_cdn_that_cuts_every_answer_after_64_kib_ends_with_a_clear_error() {
    cut_every_time(1, 8 * MIB);
}

#[test]
fn a_cdn_that_cuts_every_answer_ends_with_a_clear_error_over_four_connections() {
    cut_every_time(4, 20 * MIB);
}

/// A rate-capped CDN that also cuts every answer after 960 KiB: each attempt brings less than
/// 1 MiB but flows for about 2.5 s, which is real progress, so a budget of two retries (far fewer
/// than the cuts) is never spent and the file completes.
fn slow_but_steady(connections: u32, size: u64, bps: u64) {
    let hub = MockHub::start();
    let bytes = pseudo_random_bytes(4, size as usize);
    let sha = hub.commit(REPO, "main", vec![MockFile::lfs(FILE, bytes.clone())]);
    hub.set_rate_limit(Some(bps));
    let cut = 960 * KIB;
    for _ in 0..EVERY_TIME {
        hub.push_fault(Target::Cdn(FILE.into()), Fault::DropAfter(cut));
    }
    let cache = TempDir::new("crawl-steady");
    let mut opts = options(&hub.endpoint(), cache.path(), REPO);
    opts.retry = policy(2);
    opts.connections = connections;
    let (r, seen) = pull_recording(&opts);
    let outcome = r.unwrap_or_else(|e| panic!("a slow but steady link must complete: {e}"));
    assert_eq!(outcome.commit, sha);
    let got = fs::read(
        cache
            .path()
            .join("models--org--model/snapshots")
            .join(&sha)
            .join(FILE),
    )
    .expect("file");
    assert!(got == bytes, "content differs");
    // Many attempts, each of them cut with less than 1 MiB received.
    let drops = retries(&seen);
    let want = (size / cut) as usize - 1;
    assert!(drops >= want, "{drops} retries, expected at least {want}");
    assert_eq!(hub.bytes_served(REPO, FILE), size, "no byte fetched twice");
}

#[test]
fn a_slow_steady_link_that_drops_every_960_kib_completes() {
    slow_but_steady(1, 4 * MIB, 384 * KIB);
}

#[test]
fn a_slow_steady_link_that_drops_every_960_kib_completes_over_four_connections() {
    slow_but_steady(4, 16 * MIB, 384 * KIB);
}
