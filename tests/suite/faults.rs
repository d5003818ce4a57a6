//! The fault-tolerance matrix (issue 5, item 2): every transport or server fault the mock hub can
//! inject that `tests/pull.rs` does not already cover, one test each, plus the cross-process part
//! of item 4 (two `resume-pull` processes on one repo).
//!
//! Each test asserts three things: the end state (the file verifies, or a typed error whose
//! `status()`, `http_status()` and message name the file), that partials were kept through the
//! retries (by counting what the hub served), and that retries stay bounded in count and time.
//! Already covered in `tests/pull.rs`: connection drop ×2, `200` to a `Range`, `416`, wrong
//! `Content-Range` start, `429` + `Retry-After` seconds, `500`/`502`/`503`, stalled body, expired
//! CDN URL (`403`), retries exhausted.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{Seen, TempDir, options, pull_recording, tree};
use lemon_pull::{Error, Event, Flow, RetryPolicy, Status};
use mock_hub::{Fault, MockFile, MockHub, Target, content, pseudo_random_bytes, total_size};
use serde_json::Value;

const REPO: &str = "org/model";
const BIG: usize = 6 << 20;
const TOKENIZER: usize = 2 << 20;

/// Two LFS files (served by the CDN host) and three git files (served by the Hub itself), one of
/// them big enough for mid-body faults.
fn model_files() -> Vec<MockFile> {
    vec![
        MockFile::regular("config.json", br#"{"arch": "llama"}"#.to_vec()),
        MockFile::regular("sub/dir/notes.txt", b"nested\n".to_vec()),
        MockFile::regular("tokenizer.json", pseudo_random_bytes(7, TOKENIZER)),
        MockFile::lfs("model.safetensors", pseudo_random_bytes(1, BIG)),
        MockFile::lfs("small.bin", pseudo_random_bytes(2, 300_000)),
    ]
}

fn snapshot(cache: &Path, sha: &str) -> std::path::PathBuf {
    cache.join("models--org--model").join("snapshots").join(sha)
}

/// Every file present with the right bytes, no partial, no manifest.
fn assert_snapshot_matches(cache: &Path, sha: &str, files: &[MockFile]) {
    let snap = snapshot(cache, sha);
    for f in files {
        let got = fs::read(snap.join(&f.path)).unwrap_or_else(|e| panic!("{}: {e}", f.path));
        assert!(got == content(files, &f.path), "{} differs", f.path);
    }
    let names = tree(&snap);
    assert!(
        names.iter().all(|n| !n.ends_with(".partial")),
        "leftover partials: {names:?}"
    );
    assert!(
        !snap.join(".download_manifest.json").exists(),
        "manifest left behind"
    );
}

/// Every file was served exactly once: no byte fetched twice, so partials survived every retry.
fn assert_served_once(hub: &MockHub, files: &[MockFile]) {
    for f in files {
        let size = content(files, &f.path).len() as u64;
        assert_eq!(
            hub.bytes_served(REPO, &f.path),
            size,
            "{}: bytes served vs size",
            f.path
        );
    }
}

fn retries(seen: &[Seen]) -> usize {
    seen.iter()
        .filter(|s| matches!(s, Seen::Retry { .. }))
        .count()
}

fn restarts(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|s| matches!(s, Seen::Restart { .. }))
        .collect()
}

fn quick_policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_total_wait: Duration::from_secs(10),
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as a server sends in `Retry-After`.
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let days = (secs / 86_400) as i64;
    let (year, month, day) = mock_hub::civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rem = secs % 86_400;
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[test]
fn http_date_helper_matches_the_rfc_example() {
    assert_eq!(
        http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
}

// ---------------------------------------------------------------------------------------------
// Bodies cut short
// ---------------------------------------------------------------------------------------------

/// A body that ends early although its `Content-Length` promised the whole file (the socket
/// closes), at several offsets, on the Hub (git file) and on the CDN (LFS file), including right
/// after the headers: each attempt continues where the last stopped, nothing is fetched twice.
#[test]
fn truncated_bodies_at_several_offsets_resume_without_refetching() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    for cut in [0, 700_000, 1] {
        hub.push_fault(
            Target::Resolve("tokenizer.json".into()),
            Fault::DropAfter(cut),
        );
    }
    for cut in [0, 1, 3_000_000, 1_048_577] {
        hub.push_fault(
            Target::Cdn("model.safetensors".into()),
            Fault::DropAfter(cut),
        );
    }
    let cache = TempDir::new("faults-trunc");
    let started = Instant::now();
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    r.expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_served_once(&hub, &files);
    assert_eq!(hub.pending_faults(), 0, "every fault fired");
    assert!(retries(&seen) >= 7, "one retry per cut: {}", retries(&seen));
    assert!(restarts(&seen).is_empty(), "{:?}", restarts(&seen));
    // Each resumed request asked for exactly the bytes still missing.
    let ranges: Vec<String> = hub
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("tokenizer.json"))
        .filter_map(|r| r.range)
        .collect();
    assert_eq!(ranges, ["bytes=700000-", "bytes=700001-"], "{ranges:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A `206` whose body is shorter than its `Content-Range`: once with the connection then closed,
/// once with a clean end (a `Content-Length` shorter than the range). The partial that was on
/// disk before the pull and every byte received are kept.
#[test]
fn range_response_shorter_than_its_content_range_is_resumed() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let prefix = 1_000_000;
    let cache = TempDir::new("faults-short206");
    let snap = snapshot(cache.path(), &sha);
    fs::create_dir_all(&snap).expect("snapshot dir");
    fs::write(
        snap.join("model.safetensors.partial"),
        &content(&files, "model.safetensors")[..prefix],
    )
    .expect("partial");
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::DropAfter(500_000),
    );
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::ShortBody(700_000),
    );
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    r.expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_eq!(hub.pending_faults(), 0);
    assert_eq!(
        hub.bytes_served(REPO, "model.safetensors"),
        (BIG - prefix) as u64,
        "the pre-existing prefix and every received byte were kept"
    );
    let ranges: Vec<String> = hub
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .filter_map(|r| r.range)
        .collect();
    assert_eq!(
        ranges,
        ["bytes=1000000-", "bytes=1500000-", "bytes=2200000-"],
        "{ranges:?}"
    );
    assert!(retries(&seen) >= 2);
    assert!(restarts(&seen).is_empty(), "{:?}", restarts(&seen));
}

// ---------------------------------------------------------------------------------------------
// Status answers
// ---------------------------------------------------------------------------------------------

/// `429` with `Retry-After` as an HTTP-date (on the API and mid-file on the CDN) is honoured:
/// the pull waits until that instant, then continues from its offset.
#[test]
fn rate_limit_with_an_http_date_retry_after_is_honoured() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    // Whole seconds: the date names a second, so the wait is between 1 and 2 s.
    let at = SystemTime::now() + Duration::from_secs(2);
    hub.push_fault(
        Target::Api,
        Fault::Status {
            code: 429,
            retry_after: Some(http_date(at)),
        },
    );
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::DropAfter(1_000_000),
    );
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::Status {
            code: 429,
            retry_after: Some(http_date(SystemTime::now() + Duration::from_secs(3))),
        },
    );
    let cache = TempDir::new("faults-429date");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    // Longer than any computed backoff, so only the dates can explain the waits.
    o.retry.max_delay = Duration::from_millis(100);
    let started = Instant::now();
    let (r, seen) = pull_recording(&o);
    r.expect("pull");
    let took = started.elapsed();
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_served_once(&hub, &files);
    assert_eq!(hub.pending_faults(), 0);
    assert!(retries(&seen) >= 3);
    assert!(
        took >= Duration::from_millis(1900),
        "dates honoured: {took:?}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
}

/// `408 Request Timeout` and `504 Gateway Timeout`, on the API, on a git file and on the CDN in
/// the middle of a file, are retried; the partial survives.
#[test]
fn request_timeout_and_gateway_timeout_are_retried_everywhere() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    for code in [408, 504] {
        let status = || Fault::Status {
            code,
            retry_after: None,
        };
        hub.push_fault(Target::Api, status());
        hub.push_fault(Target::Resolve("config.json".into()), status());
        hub.push_fault(
            Target::Cdn("model.safetensors".into()),
            Fault::DropAfter(1_500_000),
        );
        hub.push_fault(Target::Cdn("model.safetensors".into()), status());
    }
    let cache = TempDir::new("faults-408-504");
    let started = Instant::now();
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    r.expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_served_once(&hub, &files);
    assert_eq!(hub.pending_faults(), 0);
    assert!(retries(&seen) >= 8, "{}", retries(&seen));
    let statuses: Vec<u16> = hub.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 408).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 504).count(), 3);
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A `504` that outlasts the retries ends in `Status::Http` with `http_status() == 504` and a
/// message naming the file; the partial is kept for the next pull, which completes it.
#[test]
fn gateway_timeouts_outlasting_the_retries_name_file_and_status() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::DropAfter(2_000_000),
    );
    for _ in 0..10 {
        hub.push_fault(
            Target::Cdn("model.safetensors".into()),
            Fault::Status {
                code: 504,
                retry_after: None,
            },
        );
    }
    let cache = TempDir::new("faults-504-exhaust");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.retry = quick_policy(3);
    let started = Instant::now();
    let err = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect_err("gives up");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.status(), Status::Http, "{err}");
    assert_eq!(err.http_status(), Some(504));
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    // The drop made progress, so the budget restarted there: its retry plus two more met a 504,
    // and the third 504 ended the retries. The rest is still queued.
    assert_eq!(hub.pending_faults(), 10 - 3);
    let partial = snapshot(cache.path(), &sha).join("model.safetensors.partial");
    assert_eq!(
        fs::metadata(&partial).expect("partial kept").len(),
        2_000_000
    );

    hub.clear_faults();
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("next pull completes");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_served_once(&hub, &files);
}

// ---------------------------------------------------------------------------------------------
// Silence and unreachable hosts
// ---------------------------------------------------------------------------------------------

/// A server that accepts the connection, reads the request and never answers (API, git file,
/// CDN): the response timeout (the stall watchdog) fires and the request is retried.
#[test]
fn server_that_accepts_but_never_answers_trips_the_watchdog() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let silent = || Fault::NoResponse(Duration::from_secs(30));
    hub.push_fault(Target::Api, silent());
    hub.push_fault(Target::Resolve("config.json".into()), silent());
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::DropAfter(1_000_000),
    );
    hub.push_fault(Target::Cdn("model.safetensors".into()), silent());
    let cache = TempDir::new("faults-silent");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.stall_timeout = Duration::from_millis(600);
    let started = Instant::now();
    let (r, seen) = pull_recording(&o);
    r.expect("pull");
    let took = started.elapsed();
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_served_once(&hub, &files);
    assert_eq!(hub.pending_faults(), 0);
    assert!(retries(&seen) >= 4);
    // Three silences of 0.6 s each, not 30 s.
    assert!(took >= Duration::from_millis(1700), "{took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

/// A server that never answers, every time: the pull gives up after the retry budget with a
/// `Network` error naming the file, having waited about `retries × stall_timeout`.
#[test]
fn silence_outlasting_the_retries_is_a_network_error_naming_the_file() {
    let hub = MockHub::start();
    let files = model_files();
    hub.commit(REPO, "main", files);
    for _ in 0..10 {
        hub.push_fault(
            Target::Cdn("small.bin".into()),
            Fault::NoResponse(Duration::from_secs(30)),
        );
    }
    let cache = TempDir::new("faults-silent-exhaust");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.stall_timeout = Duration::from_millis(400);
    o.retry = quick_policy(2);
    let started = Instant::now();
    let err = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect_err("gives up");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.status(), Status::Network, "{err}");
    assert_eq!(err.http_status(), None);
    assert!(err.to_string().contains("small.bin"), "{err}");
    assert_eq!(hub.pending_faults(), 10 - 3, "1 attempt + 2 retries");
}

/// Nothing listens at the endpoint: connection refused, retried a bounded number of times, then
/// `Status::Network` naming the URL.
#[test]
fn connection_refused_is_a_network_error_after_bounded_retries() {
    let port = closed_port();
    let cache = TempDir::new("faults-refused");
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut o = options(&endpoint, cache.path(), REPO);
    o.retry = quick_policy(2);
    let started = Instant::now();
    let (r, seen) = pull_recording(&o);
    let err = r.expect_err("nobody listens");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.status(), Status::Network, "{err}");
    assert_eq!(err.http_status(), None);
    assert!(err.to_string().contains(&endpoint), "{err}");
    assert_eq!(retries(&seen), 2);
    assert!(
        tree(cache.path()).is_empty(),
        "nothing written: {:?}",
        tree(cache.path())
    );
}

/// The endpoint's host name does not resolve (`.invalid` is reserved for that, RFC 6761):
/// `Status::Network`, bounded.
#[test]
fn dns_failure_is_a_network_error_after_bounded_retries() {
    let cache = TempDir::new("faults-dns");
    let endpoint = "http://hub.lemon-pull-test.invalid:9";
    let mut o = options(endpoint, cache.path(), REPO);
    o.retry = quick_policy(1);
    o.connect_timeout = Duration::from_secs(3);
    let started = Instant::now();
    let err = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect_err("no such host");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(err.status(), Status::Network, "{err}");
    assert!(
        err.to_string().contains("hub.lemon-pull-test.invalid"),
        "{err}"
    );
    assert!(tree(cache.path()).is_empty());
}

/// The Hub answers but its CDN host is down (connection refused), starting in the middle of a
/// file: the pull ends in `Status::Network` naming the file, with the partial kept; once the CDN
/// is back the next pull fetches only the missing bytes.
#[test]
fn cdn_down_while_the_hub_answers_keeps_the_partial() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let dead = format!("http://127.0.0.1:{}", closed_port());
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::DropAfter(2_500_000),
    );
    let cache = TempDir::new("faults-cdn-down");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.retry = quick_policy(3);
    let mut took_down = false;
    let started = Instant::now();
    let r = lemon_pull::pull(&o, &mut |ev: &Event<'_>| {
        // The CDN goes down when the big file's first connection has dropped: every retry
        // re-resolves and is sent to the dead CDN.
        if let Event::Retry {
            file: Some(file), ..
        } = ev
            && file.path == "model.safetensors"
            && !took_down
        {
            hub.set_cdn_base(Some(&dead));
            took_down = true;
        }
        Flow::Continue
    });
    let err = r.expect_err("CDN down");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.status(), Status::Network, "{err}");
    assert!(
        matches!(&err, Error::Network { file: Some(f), .. } if f == "model.safetensors"),
        "{err:?}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    let snap = snapshot(cache.path(), &sha);
    let partial = fs::metadata(snap.join("model.safetensors.partial"))
        .expect("partial kept")
        .len();
    assert_eq!(partial, 2_500_000);
    assert!(
        snap.join(".download_manifest.json").exists(),
        "manifest kept"
    );
    // Every retry went back to the Hub for a fresh URL.
    let resolves = hub
        .requests()
        .iter()
        .filter(|r| r.path.contains("/resolve/") && r.path.ends_with("model.safetensors"))
        .count();
    assert_eq!(resolves, 1 + 3, "the first URL, then one per retry");

    hub.set_cdn_base(None);
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("CDN back");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_served_once(&hub, &files);
}

// ---------------------------------------------------------------------------------------------
// Retry budget
// ---------------------------------------------------------------------------------------------

/// `RetryPolicy::max_total_wait` bounds the time spent waiting, whatever `max_retries` says; a
/// `Retry-After` beyond the remaining budget (even an absurd one) ends the retries at once.
#[test]
fn total_retry_wait_is_bounded_by_the_policy() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", model_files());
    for _ in 0..200 {
        hub.push_fault(
            Target::Cdn("small.bin".into()),
            Fault::Status {
                code: 503,
                retry_after: None,
            },
        );
    }
    let cache = TempDir::new("faults-budget");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.retry = RetryPolicy {
        max_retries: 1000,
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(200),
        max_total_wait: Duration::from_secs(1),
    };
    let started = Instant::now();
    let (r, seen) = pull_recording(&o);
    let err = r.expect_err("budget spent");
    let took = started.elapsed();
    assert_eq!(err.http_status(), Some(503), "{err}");
    assert!(err.to_string().contains("small.bin"), "{err}");
    // Waits of 50..200 ms each until the next one would pass 1 s in total.
    let n = retries(&seen);
    assert!((5..=20).contains(&n), "{n} retries");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");

    // A Retry-After of an hour, or of 2^64-1 seconds after a first 1 s one, does not wait:
    // it is beyond the budget, so the retries end now.
    for retry_after in ["3600", "18446744073709551615"] {
        hub.clear_faults();
        // The first wait is short but not zero, so the absurd one is added to a running sum.
        for ra in ["1", retry_after] {
            hub.push_fault(
                Target::Cdn("small.bin".into()),
                Fault::Status {
                    code: 429,
                    retry_after: Some(ra.into()),
                },
            );
        }
        let started = Instant::now();
        let err = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect_err(retry_after);
        assert!(started.elapsed() < Duration::from_secs(4), "{retry_after}");
        assert_eq!(err.http_status(), Some(429), "{err}");
        assert!(err.to_string().contains("small.bin"), "{err}");
        assert_eq!(hub.pending_faults(), 0);
    }
}

/// The API is retried with the same budget; `503` forever ends in a typed error with the status.
#[test]
fn api_retries_are_bounded_too() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", model_files());
    for _ in 0..50 {
        hub.push_fault(
            Target::Api,
            Fault::Status {
                code: 503,
                retry_after: None,
            },
        );
    }
    let cache = TempDir::new("faults-api-budget");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.retry = quick_policy(4);
    let started = Instant::now();
    let err = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect_err("gives up");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.http_status(), Some(503), "{err}");
    assert_eq!(hub.pending_faults(), 50 - 5);
    assert!(tree(cache.path()).is_empty(), "{:?}", tree(cache.path()));
}

// ---------------------------------------------------------------------------------------------
// Two processes on one repo (issue 5, item 4)
// ---------------------------------------------------------------------------------------------

fn cli(hub: &MockHub, cache: &Path) -> Command {
    let mut c = Command::new(crate::common::resume_pull());
    c.env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN")
        .env_remove("HF_ENDPOINT")
        .env("HF_HOME", cache.join("hf-home"))
        .args(["--token", "", "--json", "--endpoint"])
        .arg(hub.endpoint())
        .arg("--cache-dir")
        .arg(cache.join("cache"));
    c
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Two `resume-pull` processes started together on one repo against a rate-limited hub: one
/// takes the repo lock, the other reports `waiting_for_lock` and then finds the work done. Both
/// exit 0, every file verifies, and the hub served at most 1.25 × the repo size.
#[test]
fn two_cli_processes_on_one_repo_share_the_work() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.set_rate_limit(Some(6 << 20));
    let root = TempDir::new("faults-two-cli");
    let spawn = || {
        cli(&hub, root.path())
            .arg(REPO)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn resume-pull")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    for (name, out) in [("a", &a), ("b", &b)] {
        assert!(
            out.status.success(),
            "{name}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let result = json_lines(&out.stdout).pop().expect("result line");
        assert_eq!(result["status"], "ok", "{name}: {result}");
        assert_eq!(result["commit"], sha.as_str());
    }
    let waited: Vec<bool> = [&a, &b]
        .iter()
        .map(|o| {
            json_lines(&o.stdout)
                .iter()
                .any(|l| l["event"] == "waiting_for_lock")
        })
        .collect();
    assert!(
        waited.iter().any(|w| *w),
        "one process waited for the other"
    );
    // The waiter found everything done: it downloaded nothing.
    for (out, waited) in [&a, &b].iter().zip(&waited) {
        if *waited {
            let result = json_lines(&out.stdout).pop().expect("result");
            assert_eq!(result["bytes_downloaded"], 0, "{result}");
        }
    }
    assert_snapshot_matches(&root.path().join("cache"), &sha, &files);
    let served = hub.bytes_served_total();
    let size = total_size(&files);
    assert!(
        served as f64 <= 1.25 * size as f64,
        "served {served} for {size}"
    );
}

/// While one process holds the repo lock, the waiting one stays cancellable: SIGINT ends it
/// within a second (exit 130, `cancelled`), and the lock holder finishes undisturbed.
#[cfg(unix)]
#[test]
fn a_process_waiting_for_the_lock_stays_cancellable() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.set_rate_limit(Some(3 << 20));
    let root = TempDir::new("faults-lock-cancel");
    let holder = cli(&hub, root.path())
        .arg(REPO)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn holder");
    // Wait until the holder is moving bytes, i.e. holds the lock.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.bytes_served_total() == 0 {
        assert!(Instant::now() < deadline, "holder never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut waiter = cli(&hub, root.path())
        .arg(REPO)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn waiter");
    let mut lines = BufReader::new(waiter.stdout.take().expect("stdout")).lines();
    loop {
        let line = lines
            .next()
            .expect("an event before the end")
            .expect("line");
        let v: Value = serde_json::from_str(&line).expect("json");
        if v["event"] == "waiting_for_lock" {
            break;
        }
        assert_ne!(v["status"], "ok", "the waiter must not finish first");
    }
    let t0 = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &waiter.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = waiter.wait().expect("wait");
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "{:?} to stop",
        t0.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    let result: Value = serde_json::from_str(rest.last().expect("result line")).expect("json");
    assert_eq!(result["status"], "cancelled");

    let out = holder.wait_with_output().expect("holder");
    assert!(out.status.success());
    assert_snapshot_matches(&root.path().join("cache"), &sha, &files);
    assert_served_once(&hub, &files);
}
