//! Parallel ranged downloads (`connections` > 1): the file verifies, every byte is served once,
//! the connections really overlap, a partial with holes survives cancellation and resumes with any
//! number of connections, faults on single pieces are retried, a server that ignores ranges makes
//! the transfer fall back to one stream, a slow connection's piece is split, and a paused parallel
//! partial is salvaged into a new commit. Every test asserts on the bytes the hub served.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{Seen, TempDir, options, pull_and_pause, pull_recording, tree};
use lemon_pull::{Event, Flow, PullOptions};
use lemon_pull::{Silent, Source};
use mock_hub::{Fault, MockFile, MockHub, Target, pseudo_random_bytes};
use serde_json::Value;

const REPO: &str = "org/model";
const MB: u64 = 1 << 20;
/// Above the 16 MiB threshold, not a multiple of a piece, so the last piece is short.
const BIG: u64 = 24 * MB + 12_345;
const BIG_PATH: &str = "model.gguf";
const CONFIG: &[u8] = br#"{"arch": "llama"}"#;

fn model(seed: u64) -> (Vec<MockFile>, Vec<u8>) {
    let weights = pseudo_random_bytes(seed, BIG as usize);
    let files = vec![
        MockFile::regular("config.json", CONFIG.to_vec()),
        MockFile::lfs(BIG_PATH, weights.clone()),
    ];
    (files, weights)
}

fn parallel_options(hub: &MockHub, cache: &Path, connections: u32) -> PullOptions {
    let mut o = options(&hub.endpoint(), cache, REPO);
    o.connections = connections;
    o
}

fn snapshot(cache: &Path, sha: &str) -> PathBuf {
    cache.join("models--org--model/snapshots").join(sha)
}

fn partials_dir(cache: &Path) -> PathBuf {
    cache.join("models--org--model/.lemon-pull/partials")
}

/// The done ranges recorded in the one segments sidecar of the cache, if any.
fn sidecar_ranges(cache: &Path) -> Option<Vec<(u64, u64)>> {
    let dir = partials_dir(cache);
    let path = fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".segments.json"))?;
    let v: Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    let done = v["done"].as_array()?;
    Some(
        done.iter()
            .map(|r| {
                (
                    r["start"].as_u64().unwrap_or(0),
                    r["end"].as_u64().unwrap_or(0),
                )
            })
            .collect(),
    )
}

fn recorded_bytes(ranges: &[(u64, u64)]) -> u64 {
    ranges.iter().map(|(a, b)| b - a).sum()
}

/// The closed ranges (`bytes=a-b`) the CDN was asked for, in order.
fn closed_ranges(hub: &MockHub) -> Vec<(u64, u64)> {
    hub.requests()
        .iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .filter_map(|r| {
            let spec = r.range.as_deref()?.strip_prefix("bytes=")?;
            let (a, b) = spec.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

fn assert_complete(cache: &Path, sha: &str, weights: &[u8]) {
    let snap = snapshot(cache, sha);
    assert!(
        fs::read(snap.join(BIG_PATH)).expect("weights") == weights,
        "weights verify"
    );
    let names = tree(&snap);
    assert!(
        names.iter().all(|n| !n.ends_with(".partial")),
        "leftover partials: {names:?}"
    );
    assert!(!snap.join(".download_manifest.json").exists());
    assert_eq!(
        tree(&partials_dir(cache)),
        Vec::<String>::new(),
        "no checkpoint or sidecar left"
    );
}

fn settle_and_reset(hub: &MockHub) {
    // A cancelled transfer's server threads may still count a few in-flight bytes.
    std::thread::sleep(Duration::from_millis(400));
    hub.reset_counters();
    hub.clear_requests();
}

/// Pulls with 8 connections until `at` bytes of the weights are on disk, then cancels. The first
/// range asked for stalls after 100 kB, so the others go on past it: the partial has holes.
fn pause_parallel_pull(hub: &MockHub, cache: &Path, at: u64) {
    hub.set_rate_limit(Some(4 * MB));
    hub.push_fault(
        Target::Cdn(BIG_PATH.into()),
        Fault::StallAfter {
            bytes: 100_000,
            stall: Duration::from_secs(3),
        },
    );
    pull_and_pause(&parallel_options(hub, cache, 8), BIG_PATH, at);
    hub.set_rate_limit(None);
    settle_and_reset(hub);
}

#[test]
fn eight_connections_verify_and_fetch_every_byte_once_over_overlapping_ranges() {
    let hub = MockHub::start();
    let (files, weights) = model(1);
    let sha = hub.commit(REPO, "main", files);
    // Slow connections at first, so no piece can be complete when the first progress arrives:
    // every range the CDN has been asked for by then was asked for by a connection of its own.
    hub.set_rate_limit(Some(MB));
    let cache = TempDir::new("parallel");
    let o = parallel_options(&hub, cache.path(), 8);
    let mut overlapping = None;
    let mut seen = Vec::new();
    let r = lemon_pull::pull(&o, &mut |ev: &Event<'_>| {
        if let Event::Progress { file, .. } = ev
            && file.path == BIG_PATH
            && overlapping.is_none()
        {
            overlapping = Some(closed_ranges(&hub).into_iter().collect::<BTreeSet<_>>());
            hub.set_rate_limit(None);
        }
        seen.push(crate::common::record(ev));
        Flow::Continue
    });
    r.expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    assert_eq!(
        hub.bytes_served(REPO, BIG_PATH),
        BIG,
        "every byte exactly once"
    );
    let overlapping = overlapping.expect("a progress event");
    assert!(
        overlapping.len() >= 2,
        "ranges in flight at once: {overlapping:?}"
    );
    // The pieces the CDN was asked for tile the file.
    let mut ranges = closed_ranges(&hub);
    ranges.sort();
    assert_eq!(ranges.first().map(|r| r.0), Some(0));
    assert_eq!(ranges.last().map(|r| r.1), Some(BIG - 1));
    assert!(
        ranges.windows(2).all(|w| w[0].1 + 1 == w[1].0),
        "{ranges:?}"
    );
    assert!(!seen.iter().any(|s| matches!(s, Seen::Retry { .. })));
}

#[test]
fn small_files_and_one_connection_stay_sequential() {
    let hub = MockHub::start();
    let (files, weights) = model(2);
    let sha = hub.commit(REPO, "main", files);
    let cache = TempDir::new("parallel-seq");
    let o = parallel_options(&hub, cache.path(), 1);
    lemon_pull::pull(&o, &mut Silent).expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    assert!(
        closed_ranges(&hub).is_empty(),
        "one connection asks for no ranges"
    );
}

#[test]
fn cancelled_parallel_partial_keeps_its_holes_and_resumes_with_eight_or_one_connection() {
    let hub = MockHub::start();
    let (files, weights) = model(3);
    let sha = hub.commit(REPO, "main", files);
    let cache = TempDir::new("parallel-cancel");
    pause_parallel_pull(&hub, cache.path(), BIG / 3);

    let partial = snapshot(cache.path(), &sha).join(format!("{BIG_PATH}.partial"));
    let on_disk = fs::metadata(&partial).expect("partial kept").len();
    let ranges = sidecar_ranges(cache.path()).expect("sidecar kept");
    let done = recorded_bytes(&ranges);
    assert!(done > BIG / 3, "recorded {done}");
    assert!(
        ranges.len() >= 2 && on_disk > ranges[0].1,
        "the partial has holes: {ranges:?}, {on_disk} bytes on disk"
    );

    // The same holey state, resumed once with 8 connections and once with 1.
    let copy = TempDir::new("parallel-cancel-copy");
    copy_tree(cache.path(), copy.path());
    for (dir, connections) in [(cache.path(), 8), (copy.path(), 1)] {
        hub.reset_counters();
        hub.clear_requests();
        let o = parallel_options(&hub, dir, connections);
        let (r, seen) = pull_recording(&o);
        let out = r.expect("resume");
        assert_complete(dir, &sha, &weights);
        assert_eq!(
            hub.bytes_served(REPO, BIG_PATH),
            BIG - done,
            "{connections} connection(s): only the missing bytes"
        );
        assert_eq!(out.totals.bytes_reused, done + CONFIG.len() as u64);
        assert!(
            seen.contains(&Seen::Start {
                path: BIG_PATH.into(),
                offset: done
            }),
            "{seen:?}"
        );
        // Even one connection resumes the holes by ranges, never as a prefix.
        assert!(!closed_ranges(&hub).is_empty());
        assert!(
            hub.requests()
                .iter()
                .filter_map(|r| r.range.as_deref())
                .all(|r| !r.ends_with('-')),
            "no open-ended range: the partial is not a prefix"
        );
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for rel in tree(from) {
        let dest = to.join(&rel);
        fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        fs::copy(from.join(&rel), &dest).expect("copy");
    }
}

#[test]
fn dropped_and_failing_pieces_are_retried_from_where_they_stopped() {
    let hub = MockHub::start();
    let (files, weights) = model(4);
    let sha = hub.commit(REPO, "main", files);
    let target = Target::Cdn(BIG_PATH.into());
    // Both within the shortest request (256 KiB: what is left of a piece after a request of
    // 512 KiB was cut from it), so that both cut a request short.
    hub.push_fault(target.clone(), Fault::DropAfter(100_000));
    hub.push_fault(target.clone(), Fault::DropAfter(200_000));
    hub.push_fault(
        target,
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    hub.push_fault(
        Target::Resolve(BIG_PATH.into()),
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    let cache = TempDir::new("parallel-faults");
    let o = parallel_options(&hub, cache.path(), 8);
    let (r, seen) = pull_recording(&o);
    r.expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    assert_eq!(hub.pending_faults(), 0);
    assert_eq!(
        hub.bytes_served(REPO, BIG_PATH),
        BIG,
        "what a dropped connection delivered is kept"
    );
    let retries = seen
        .iter()
        .filter(|s| matches!(s, Seen::Retry { .. }))
        .count();
    assert!(retries >= 4, "{seen:?}");
}

#[test]
fn a_piece_with_the_wrong_content_range_is_refused_and_fetched_again() {
    let hub = MockHub::start();
    let (files, weights) = model(5);
    let sha = hub.commit(REPO, "main", files);
    hub.push_fault(Target::Cdn(BIG_PATH.into()), Fault::WrongContentRange);
    let cache = TempDir::new("parallel-wrong-range");
    let o = parallel_options(&hub, cache.path(), 8);
    let (r, seen) = pull_recording(&o);
    r.expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Retry { reason } if reason.contains("Content-Range")))
    );
}

#[test]
fn a_server_ignoring_ranges_makes_the_transfer_fall_back_to_one_stream() {
    let hub = MockHub::start();
    let (files, weights) = model(6);
    let sha = hub.commit(REPO, "main", files);
    hub.push_fault(Target::Cdn(BIG_PATH.into()), Fault::IgnoreRange);
    let cache = TempDir::new("parallel-ignore-range");
    let o = parallel_options(&hub, cache.path(), 8);
    let out = lemon_pull::pull(&o, &mut Silent).expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    assert_eq!(out.totals.bytes_reused, 0, "nothing was on disk before");
    // After the `200` (and the pieces already in flight), one stream from the kept prefix: once
    // a request without a range or with an open-ended one is sent, no closed range is any more.
    let ranges: Vec<Option<String>> = hub
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .map(|r| r.range)
        .collect();
    let sequential = |r: &Option<String>| r.as_ref().is_none_or(|r| r.ends_with('-'));
    let first = ranges
        .iter()
        .position(sequential)
        .expect("a sequential request");
    assert!(
        ranges[first..].iter().all(sequential),
        "sequential after the fallback: {ranges:?}"
    );
    let served = hub.bytes_served(REPO, BIG_PATH);
    assert!(served <= 2 * BIG, "served {served}");
}

#[test]
fn a_stalled_connection_gives_half_its_piece_to_an_idle_one() {
    let hub = MockHub::start();
    let (files, weights) = model(7);
    let sha = hub.commit(REPO, "main", files);
    // Two connections make 3 MiB pieces; one of the first two answers stalls after 512 KiB.
    hub.push_fault(
        Target::Cdn(BIG_PATH.into()),
        Fault::StallAfter {
            bytes: MB / 2,
            stall: Duration::from_secs(3),
        },
    );
    let cache = TempDir::new("parallel-steal");
    let mut o = parallel_options(&hub, cache.path(), 2);
    o.stall_timeout = Duration::from_secs(20);
    lemon_pull::pull(&o, &mut Silent).expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    let ranges = closed_ranges(&hub);
    // The first pieces tile the file, so a range starting inside another one is a split.
    let split = ranges
        .iter()
        .any(|&(a, _)| ranges.iter().any(|&(start, end)| start < a && a <= end));
    assert!(split, "a piece was split: {ranges:?}");
    let served = hub.bytes_served(REPO, BIG_PATH);
    assert!(served <= BIG + 2 * MB, "served {served}");
}

#[test]
fn a_paused_parallel_partial_is_salvaged_into_a_new_commit_by_the_bytes_it_holds() {
    let hub = MockHub::start();
    let (files, weights) = model(8);
    let old = hub.commit(REPO, "main", files);
    let cache = TempDir::new("parallel-salvage");
    pause_parallel_pull(&hub, cache.path(), BIG / 2);
    let ranges = sidecar_ranges(cache.path()).expect("sidecar");
    let done = recorded_bytes(&ranges);
    let on_disk = fs::metadata(snapshot(cache.path(), &old).join(format!("{BIG_PATH}.partial")))
        .expect("partial")
        .len();

    // The repo moves on: new config, same weights.
    let new = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", br#"{"arch": "llama", "v": 2}"#.to_vec()),
            MockFile::lfs(BIG_PATH, weights.clone()),
        ],
    );
    assert_ne!(old, new);
    let o = parallel_options(&hub, cache.path(), 8);
    let (r, seen) = pull_recording(&o);
    let out = r.expect("resume");
    assert_complete(cache.path(), &new, &weights);
    let planned = out
        .plan
        .iter()
        .find(|p| p.path == BIG_PATH)
        .expect("planned");
    assert_eq!(planned.source, Source::SalvagePartial);
    assert_eq!(
        planned.on_disk, done,
        "ranked by the bytes it holds ({on_disk} on disk)"
    );
    assert!(seen.contains(&Seen::Salvaged {
        path: BIG_PATH.into(),
        from: old.clone(),
        bytes: done
    }));
    assert_eq!(
        hub.bytes_served(REPO, BIG_PATH),
        BIG - done,
        "only the missing bytes"
    );
    assert_eq!(out.totals.bytes_salvaged, done);
    assert!(
        !snapshot(cache.path(), &old).exists(),
        "the emptied orphan is gone"
    );
}

#[test]
fn expired_signed_urls_are_resolved_again() {
    let hub = MockHub::start();
    let (files, weights) = model(9);
    let sha = hub.commit(REPO, "main", files);
    // Each connection reuses the URL it was redirected to until the CDN refuses it.
    hub.set_cdn_ttl(Some(Duration::from_millis(300)));
    hub.set_rate_limit(Some(8 * MB));
    let cache = TempDir::new("parallel-expired");
    let o = parallel_options(&hub, cache.path(), 4);
    let (r, seen) = pull_recording(&o);
    r.expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    let refused = hub
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/cdn/") && r.status == 403)
        .count();
    assert!(refused > 0, "some signed URL expired");
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Retry { reason } if reason.contains("re-resolving")))
    );
    assert_eq!(hub.bytes_served(REPO, BIG_PATH), BIG);
}

#[test]
fn a_connection_told_to_wait_does_not_hold_the_file_once_the_others_took_every_byte() {
    let hub = MockHub::start();
    let (files, weights) = model(10);
    let sha = hub.commit(REPO, "main", files);
    hub.push_fault(
        Target::Cdn(BIG_PATH.into()),
        Fault::Status {
            code: 429,
            retry_after: Some("10".into()),
        },
    );
    let cache = TempDir::new("parallel-retry-after");
    let o = parallel_options(&hub, cache.path(), 4);
    let started = std::time::Instant::now();
    let (r, seen) = pull_recording(&o);
    r.expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    assert!(seen.iter().any(|s| matches!(s, Seen::Retry { .. })));
    // The other connections fetch the refused piece too; nobody waits out the 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(hub.bytes_served(REPO, BIG_PATH), BIG);
}

/// A server that stops honouring ranges half-way: the bytes the ranged connections fetched before
/// count as downloaded, not as reused, when the sequential fallback continues from them.
#[test]
fn bytes_fetched_before_a_fallback_are_not_counted_as_reused() {
    let hub = MockHub::start();
    let (files, weights) = model(11);
    let sha = hub.commit(REPO, "main", files);
    hub.set_rate_limit(Some(16 * MB));
    let cache = TempDir::new("parallel-late-fallback");
    let o = parallel_options(&hub, cache.path(), 2);
    let mut armed = false;
    let out = lemon_pull::pull(&o, &mut |ev: &Event<'_>| {
        // The next request (a stolen half piece) gets a `200` for its range.
        if let Event::Progress {
            file, file_done, ..
        } = ev
            && file.path == BIG_PATH
            && *file_done > 4 * MB
            && !armed
        {
            hub.push_fault(Target::Cdn(BIG_PATH.into()), Fault::IgnoreRange);
            armed = true;
        }
        Flow::Continue
    })
    .expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    assert_eq!(hub.pending_faults(), 0, "the fallback happened");
    assert_eq!(out.totals.bytes_reused, 0, "nothing was on disk before");
}

/// `connections` = auto, under a per-connection cap: every connection added raises the rate, so
/// the transfer grows past one connection (and reports what it settled on).
#[test]
fn auto_connections_grow_past_one_under_a_per_connection_cap() {
    let hub = MockHub::start();
    let (files, weights) = model(12);
    let sha = hub.commit(REPO, "main", files);
    hub.set_rate_limit(Some(2 * MB));
    let cache = TempDir::new("parallel-auto-capped");
    let o = parallel_options(&hub, cache.path(), lemon_pull::AUTO_CONNECTIONS);
    let started = std::time::Instant::now();
    let out = lemon_pull::pull(&o, &mut Silent).expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    assert_eq!(hub.bytes_served(REPO, BIG_PATH), BIG, "every byte once");
    assert!(
        (2..=lemon_pull::AUTO_MAX_CONNECTIONS).contains(&out.connections),
        "settled on {}",
        out.connections
    );
    // One connection alone would need 12 s; the bound only catches a search that never grew.
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// `connections` = auto without a cap: whatever it settles on, the file completes and verifies,
/// every byte served once; and a partial it leaves with holes resumes by ranges.
#[test]
fn auto_connections_complete_uncapped_and_resume_a_holey_partial() {
    let hub = MockHub::start();
    let (files, weights) = model(13);
    let sha = hub.commit(REPO, "main", files);
    let cache = TempDir::new("parallel-auto");
    let o = parallel_options(&hub, cache.path(), lemon_pull::AUTO_CONNECTIONS);
    let out = lemon_pull::pull(&o, &mut Silent).expect("pull");
    assert_complete(cache.path(), &sha, &weights);
    assert_eq!(hub.bytes_served(REPO, BIG_PATH), BIG);
    assert!((1..=lemon_pull::AUTO_MAX_CONNECTIONS).contains(&out.connections));

    let (files, weights) = model(14);
    let sha = hub.commit(REPO, "main", files);
    let cache = TempDir::new("parallel-auto-resume");
    pause_parallel_pull(&hub, cache.path(), BIG / 3);
    let done = recorded_bytes(&sidecar_ranges(cache.path()).expect("sidecar"));
    let o = parallel_options(&hub, cache.path(), lemon_pull::AUTO_CONNECTIONS);
    lemon_pull::pull(&o, &mut Silent).expect("resume");
    assert_complete(cache.path(), &sha, &weights);
    assert_eq!(
        hub.bytes_served(REPO, BIG_PATH),
        BIG - done,
        "only the missing bytes"
    );
}
