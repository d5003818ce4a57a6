//! End-to-end pulls against the mock hub: layout, selection, resume, faults, verification, auth,
//! cancellation. Every test asserts on what the hub actually served, not only on the final bytes.

use std::fs;
use std::time::Duration;

use crate::common::{Seen, TempDir, options, pull_recording, tree};
use lemon_pull::{CancelToken, Error, Event, Flow, Status};
use mock_hub::{Fault, MockFile, MockHub, Target, content, pseudo_random_bytes, total_size};

const REPO: &str = "org/model";
const BIG: usize = 6 << 20;

/// A repo with a small git file, a nested git file and two LFS files.
fn model_files() -> Vec<MockFile> {
    vec![
        MockFile::regular("config.json", br#"{"arch": "llama"}"#.to_vec()),
        MockFile::regular("sub/dir/notes.txt", b"nested\n".to_vec()),
        MockFile::lfs("model.safetensors", pseudo_random_bytes(1, BIG)),
        MockFile::lfs("small.bin", pseudo_random_bytes(2, 300_000)),
    ]
}

fn assert_snapshot_matches(cache: &std::path::Path, sha: &str, files: &[MockFile]) {
    let snap = cache.join("models--org--model").join("snapshots").join(sha);
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

#[test]
fn fresh_pull_lands_in_lemonade_layout_and_verifies() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let cache = TempDir::new("fresh");
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    let out = r.expect("pull");
    assert_eq!(out.commit, sha);
    assert_eq!(out.files, 4);
    assert_snapshot_matches(cache.path(), &sha, &files);
    let refs = fs::read(cache.path().join("models--org--model/refs/main")).expect("refs/main");
    assert_eq!(
        refs,
        sha.as_bytes(),
        "refs/main is the bare sha, no newline"
    );
    let tag = fs::read_to_string(cache.path().join("CACHEDIR.TAG")).expect("cache root tagged");
    assert!(tag.starts_with("Signature: 8a477f597d28d172789f06886806bc55\n"));
    assert_eq!(out.totals.bytes_downloaded, total_size(&files));
    assert_eq!(hub.bytes_served_total(), total_size(&files));
    assert!(seen.contains(&Seen::Resolved(sha.clone())));
    assert!(matches!(seen.last(), Some(Seen::Complete { .. })));
    // Only the snapshot, refs and our own state folder exist.
    let top: Vec<_> = fs::read_dir(cache.path().join("models--org--model"))
        .expect("repo dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for t in &top {
        assert!(
            ["refs", "snapshots", ".lemon-pull"].contains(&t.as_str()),
            "unexpected {t}"
        );
    }
}

#[test]
fn lfs_goes_through_cdn_host_and_token_stays_on_hub() {
    let hub = MockHub::start();
    let files = model_files();
    hub.commit(REPO, "main", files);
    hub.set_private(REPO, Some("hf_secret"));
    let cache = TempDir::new("token");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.token = Some("hf_secret".into());
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("pull");
    let log = hub.requests();
    let cdn: Vec<_> = log.iter().filter(|r| r.path.starts_with("/cdn/")).collect();
    assert!(!cdn.is_empty(), "LFS files must come from the CDN host");
    for r in &cdn {
        assert!(r.host.starts_with("localhost"), "CDN host: {}", r.host);
        assert_eq!(r.authorization, None, "token leaked to the CDN: {}", r.path);
    }
    for r in log.iter().filter(|r| !r.path.starts_with("/cdn/")) {
        assert_eq!(
            r.authorization.as_deref(),
            Some("Bearer hf_secret"),
            "{}",
            r.path
        );
        let ua = r.user_agent.as_deref().unwrap_or("");
        assert!(ua.starts_with("lemon-pull/"), "user agent {ua}");
    }
}

#[test]
fn variant_selection_takes_only_that_quantization() {
    let hub = MockHub::start();
    hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", b"{}".to_vec()),
            MockFile::regular("README.md", b"# m".to_vec()),
            MockFile::lfs("m-Q4_K_M.gguf", pseudo_random_bytes(3, 10_000)),
            MockFile::lfs("m-Q8_0.gguf", pseudo_random_bytes(4, 20_000)),
            MockFile::lfs(
                "Q6_K/m-Q6_K-00001-of-00002.gguf",
                pseudo_random_bytes(5, 5_000),
            ),
            MockFile::lfs(
                "Q6_K/m-Q6_K-00002-of-00002.gguf",
                pseudo_random_bytes(6, 5_000),
            ),
        ],
    );
    let cache = TempDir::new("variant");
    let out = lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), "org/model:Q4_K_M"),
        &mut lemon_pull::Silent,
    )
    .expect("pull Q4_K_M");
    assert_eq!(tree(&out.snapshot_path), ["config.json", "m-Q4_K_M.gguf"]);
    assert_eq!(hub.bytes_served(REPO, "m-Q8_0.gguf"), 0);

    let out = lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), "org/model:Q6_K"),
        &mut lemon_pull::Silent,
    )
    .expect("pull Q6_K");
    let t = tree(&out.snapshot_path);
    assert!(t.contains(&"Q6_K/m-Q6_K-00001-of-00002.gguf".to_string()));
    assert!(t.contains(&"Q6_K/m-Q6_K-00002-of-00002.gguf".to_string()));

    let err = lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), "org/model:Q5_K_M"),
        &mut lemon_pull::Silent,
    )
    .expect_err("no such variant");
    assert_eq!(err.status(), Status::FileNotFound);
    let msg = err.to_string();
    assert!(
        msg.contains("Q4_K_M") && msg.contains("Q8_0"),
        "lists variants: {msg}"
    );
}

#[test]
fn include_and_exclude_globs() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", model_files());
    let cache = TempDir::new("globs");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.include = vec!["*.json".into(), "sub/*".into()];
    o.exclude = vec!["*.txt".into()];
    let out = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("pull");
    assert_eq!(tree(&out.snapshot_path), ["config.json"]);
    o.include = vec!["nothing-*".into()];
    let err = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect_err("empty");
    assert_eq!(err.status(), Status::NoFilesSelected);
}

#[test]
fn dropped_connection_resumes_within_the_call() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::DropAfter(1_500_000),
    );
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::DropAfter(2_000_000),
    );
    let cache = TempDir::new("drop");
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    r.expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert!(
        seen.iter()
            .filter(|s| matches!(s, Seen::Retry { .. }))
            .count()
            >= 2
    );
    // Re-served bytes: nothing beyond what the dropped connections had sent (no restart from 0).
    let served = hub.bytes_served(REPO, "model.safetensors");
    assert_eq!(served, BIG as u64, "served {served} for a {BIG}-byte file");
}

#[test]
fn partial_left_by_another_process_is_continued() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let cache = TempDir::new("xproc");
    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    fs::create_dir_all(&snap).expect("snap");
    let prefix = 4_000_000;
    fs::write(
        snap.join("model.safetensors.partial"),
        &content(&files, "model.safetensors")[..prefix],
    )
    .expect("partial");
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    let out = r.expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_eq!(
        hub.bytes_served(REPO, "model.safetensors"),
        (BIG - prefix) as u64
    );
    assert!(seen.contains(&Seen::Start {
        path: "model.safetensors".into(),
        offset: prefix as u64
    }));
    assert!(out.totals.bytes_reused >= prefix as u64);
    let ranges: Vec<_> = hub.requests().into_iter().filter_map(|r| r.range).collect();
    assert!(
        ranges.contains(&format!("bytes={prefix}-")),
        "ranges sent: {ranges:?}"
    );
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.push_fault(Target::Cdn("model.safetensors".into()), Fault::IgnoreRange);
    let cache = TempDir::new("ignore-range");
    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    fs::create_dir_all(&snap).expect("snap");
    fs::write(
        snap.join("model.safetensors.partial"),
        &content(&files, "model.safetensors")[..1000],
    )
    .expect("partial");
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    r.expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Restart { reason, .. } if reason.contains("Range")))
    );
}

#[test]
fn range_not_satisfiable_restarts_cleanly() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::Status {
            code: 416,
            retry_after: None,
        },
    );
    let cache = TempDir::new("416");
    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    fs::create_dir_all(&snap).expect("snap");
    fs::write(
        snap.join("model.safetensors.partial"),
        &content(&files, "model.safetensors")[..5000],
    )
    .expect("partial");
    lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), REPO),
        &mut lemon_pull::Silent,
    )
    .expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
}

#[test]
fn wrong_content_range_is_never_appended() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::WrongContentRange,
    );
    let cache = TempDir::new("bad-cr");
    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    fs::create_dir_all(&snap).expect("snap");
    fs::write(
        snap.join("model.safetensors.partial"),
        &content(&files, "model.safetensors")[..5000],
    )
    .expect("partial");
    lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), REPO),
        &mut lemon_pull::Silent,
    )
    .expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
}

#[test]
fn rate_limits_and_server_errors_are_retried_keeping_the_partial() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let t = || Target::Cdn("model.safetensors".into());
    hub.push_fault(t(), Fault::DropAfter(3_000_000));
    hub.push_fault(
        t(),
        Fault::Status {
            code: 429,
            retry_after: Some("1".into()),
        },
    );
    hub.push_fault(
        t(),
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    hub.push_fault(
        t(),
        Fault::Status {
            code: 500,
            retry_after: None,
        },
    );
    hub.push_fault(
        Target::Api,
        Fault::Status {
            code: 502,
            retry_after: None,
        },
    );
    let cache = TempDir::new("retry");
    let started = std::time::Instant::now();
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    r.expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_eq!(
        hub.bytes_served(REPO, "model.safetensors"),
        BIG as u64,
        "partial kept through retries"
    );
    assert!(
        seen.iter()
            .filter(|s| matches!(s, Seen::Retry { .. }))
            .count()
            >= 5
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 honoured"
    );
}

#[test]
fn retries_end_in_a_typed_error_naming_file_and_status() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", model_files());
    for _ in 0..20 {
        hub.push_fault(
            Target::Cdn("model.safetensors".into()),
            Fault::Status {
                code: 503,
                retry_after: None,
            },
        );
    }
    let cache = TempDir::new("exhaust");
    let err = lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), REPO),
        &mut lemon_pull::Silent,
    )
    .expect_err("must give up");
    assert_eq!(err.http_status(), Some(503));
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    hub.clear_faults();
    lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), REPO),
        &mut lemon_pull::Silent,
    )
    .expect("then succeeds");
}

#[test]
fn stalled_body_is_abandoned_and_resumed() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::StallAfter {
            bytes: 2_000_000,
            stall: Duration::from_secs(10),
        },
    );
    let cache = TempDir::new("stall");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.stall_timeout = Duration::from_millis(700);
    let started = std::time::Instant::now();
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("pull");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "watchdog must not wait for the stall to end"
    );
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_eq!(hub.bytes_served(REPO, "model.safetensors"), BIG as u64);
}

#[test]
fn expired_cdn_url_is_re_resolved() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::DropAfter(1_000_000),
    );
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::Status {
            code: 403,
            retry_after: None,
        },
    );
    let cache = TempDir::new("expired");
    lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), REPO),
        &mut lemon_pull::Silent,
    )
    .expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    let resolves = hub
        .requests()
        .iter()
        .filter(|r| r.path.contains("/resolve/") && r.path.ends_with("model.safetensors"))
        .count();
    assert!(
        resolves >= 3,
        "each attempt starts from /resolve: {resolves}"
    );
}

#[test]
fn corrupted_file_is_detected_and_downloaded_again() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let cache = TempDir::new("corrupt");
    let o = options(&hub.endpoint(), cache.path(), REPO);
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("first pull");
    let f = cache
        .path()
        .join("models--org--model/snapshots")
        .join(&sha)
        .join("small.bin");
    let mut bytes = fs::read(&f).expect("read");
    bytes[1234] ^= 0x40;
    fs::write(&f, &bytes).expect("flip a byte");
    hub.reset_counters();
    let out = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("second pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_eq!(hub.bytes_served(REPO, "small.bin"), 300_000);
    assert_eq!(hub.bytes_served_total(), 300_000, "only the corrupted file");
    assert_eq!(out.totals.bytes_downloaded, 300_000);
}

#[test]
fn corrupted_download_is_restarted_once_then_reported() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let cache = TempDir::new("bad-partial");
    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    fs::create_dir_all(&snap).expect("snap");
    // A partial whose bytes are not a prefix of the file: verification must catch it.
    fs::write(snap.join("model.safetensors.partial"), vec![7u8; 100_000]).expect("partial");
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    r.expect("pull recovers by restarting the file");
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Restart { reason, .. } if reason.contains("verify")))
    );
}

#[test]
fn no_op_pull_costs_one_api_call_and_no_hashing() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let cache = TempDir::new("noop");
    let o = options(&hub.endpoint(), cache.path(), REPO);
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("first pull");

    // Change the bytes in place but restore size and mtime: a re-hash would notice, a stamp does not.
    let f = cache
        .path()
        .join("models--org--model/snapshots")
        .join(&sha)
        .join("model.safetensors");
    let meta = fs::metadata(&f).expect("meta");
    let original = fs::read(&f).expect("read");
    let mut changed = original.clone();
    changed[10] ^= 1;
    {
        use std::io::Write;
        let mut h = fs::OpenOptions::new().write(true).open(&f).expect("open");
        h.write_all(&changed).expect("write");
        h.set_modified(meta.modified().expect("mtime"))
            .expect("restore mtime");
    }
    hub.reset_counters();
    let before = hub.requests().len();
    let out = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("no-op pull");
    assert_eq!(out.totals.bytes_downloaded, 0);
    assert_eq!(hub.bytes_served_total(), 0);
    let new: Vec<_> = hub.requests().into_iter().skip(before).collect();
    assert_eq!(new.len(), 1, "one API call: {new:?}");
    assert!(
        new[0]
            .path
            .starts_with("/api/models/org/model/revision/main")
    );
    assert_eq!(
        fs::read(&f).expect("read"),
        changed,
        "stamp trusted: file not re-hashed nor rewritten"
    );
}

#[test]
fn hostile_names_are_rejected_and_nothing_escapes() {
    for evil in [
        "../evil.txt",
        "/abs.txt",
        "a\\..\\b.txt",
        "C:/x.txt",
        "ok/../../up.txt",
    ] {
        let hub = MockHub::start();
        hub.commit(
            REPO,
            "main",
            vec![
                MockFile::regular("config.json", b"{}".to_vec()),
                MockFile::regular(evil, b"pwned".to_vec()),
            ],
        );
        let root = TempDir::new("hostile");
        let cache = root.path().join("cache");
        let err = lemon_pull::pull(
            &options(&hub.endpoint(), &cache, REPO),
            &mut lemon_pull::Silent,
        )
        .expect_err(evil);
        assert_eq!(err.status(), Status::InvalidResponse, "{evil}: {err}");
        let everything = tree(root.path());
        assert!(
            everything
                .iter()
                .all(|p| !p.contains("evil") && !p.contains("up.txt") && !p.contains("abs"))
        );
        assert!(!std::path::Path::new("/abs.txt").exists());
    }
}

#[test]
fn hub_errors_map_to_typed_statuses() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", model_files());
    hub.commit("org/private", "main", model_files());
    hub.set_private("org/private", Some("hf_good"));
    hub.commit("org/gated", "main", model_files());
    hub.set_gated("org/gated", Some("hf_good"));
    let cache = TempDir::new("errors");
    let run = |repo: &str, token: &str, rev: Option<&str>| {
        let mut o = options(&hub.endpoint(), cache.path(), repo);
        o.token = Some(token.into());
        o.revision = rev.map(str::to_string);
        lemon_pull::pull(&o, &mut lemon_pull::Silent)
            .expect_err(repo)
            .status()
    };
    assert_eq!(run("org/missing", "", None), Status::RepoNotFound);
    assert_eq!(run("org/private", "", None), Status::RepoNotFound);
    assert_eq!(run("org/private", "hf_bogus", None), Status::Unauthorized);
    assert_eq!(run("org/gated", "", None), Status::Gated);
    assert_eq!(
        run(REPO, "", Some("no-such-branch")),
        Status::RevisionNotFound
    );
    assert_eq!(run("bad--id", "", None), Status::InvalidArgument);
    let mut o = options(&hub.endpoint(), cache.path(), "org/private");
    o.token = Some("hf_good".into());
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("private with token");
}

#[test]
fn tree_listing_fills_in_missing_sizes_across_pages() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.set_listing_sizes(false);
    hub.set_tree_page_size(2);
    let cache = TempDir::new("tree");
    lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), REPO),
        &mut lemon_pull::Silent,
    )
    .expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    let pages = hub
        .requests()
        .iter()
        .filter(|r| r.path.contains("/tree/"))
        .count();
    assert!(pages >= 3, "followed Link pagination: {pages} pages");
}

#[test]
fn revisions_tags_and_shas() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.set_ref(REPO, "v1.0", &sha);
    hub.set_ref(REPO, "refs/pr/1", &sha);
    let cache = TempDir::new("revs");
    let repo_dir = cache.path().join("models--org--model");
    for (rev, ref_file) in [
        ("v1.0", Some("refs/v1.0")),
        ("refs/pr/1", Some("refs/refs/pr/1")),
        (sha.as_str(), None),
    ] {
        let mut o = options(&hub.endpoint(), cache.path(), REPO);
        o.revision = Some(rev.into());
        let out = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect(rev);
        assert_eq!(out.commit, sha);
        if let Some(r) = ref_file {
            assert_eq!(fs::read_to_string(repo_dir.join(r)).expect(r), sha);
        }
    }
    assert!(
        !repo_dir.join("refs").join(&sha).exists(),
        "a sha revision writes no ref"
    );
}

#[test]
fn cancel_from_observer_keeps_partial_and_next_pull_completes() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.set_rate_limit(Some(4 << 20));
    let cache = TempDir::new("cancel");
    let o = options(&hub.endpoint(), cache.path(), REPO);
    let mut cancelled_at = None;
    let r = lemon_pull::pull(&o, &mut |ev: &Event<'_>| {
        if let Event::Progress {
            file, file_done, ..
        } = ev
            && file.path == "model.safetensors"
            && *file_done > 1_000_000
        {
            cancelled_at.get_or_insert(std::time::Instant::now());
            return Flow::Cancel;
        }
        Flow::Continue
    });
    let err = r.expect_err("cancelled");
    assert!(matches!(err, Error::Cancelled));
    assert_eq!(err.to_string(), "Download cancelled");
    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    let partial = fs::metadata(snap.join("model.safetensors.partial"))
        .expect("partial kept")
        .len();
    assert!(partial > 1_000_000);
    assert!(
        snap.join(".download_manifest.json").exists(),
        "manifest kept"
    );
    assert!(
        !cache.path().join("models--org--model/refs/main").exists(),
        "no ref before success"
    );

    hub.set_rate_limit(None);
    // Let the hub notice the abandoned connection before counting afresh.
    std::thread::sleep(Duration::from_millis(500));
    hub.reset_counters();
    let out = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("resume");
    assert_snapshot_matches(cache.path(), &sha, &files);
    let second = hub.bytes_served(REPO, "model.safetensors");
    assert_eq!(
        second,
        BIG as u64 - partial,
        "resumed from the kept partial"
    );
    let last_range = hub.requests().into_iter().rev().find_map(|r| r.range);
    assert_eq!(last_range, Some(format!("bytes={partial}-")));
    assert!(out.totals.bytes_reused >= partial);
}

#[test]
fn cancel_token_interrupts_a_stalled_read_quickly() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", model_files());
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::StallAfter {
            bytes: 500_000,
            stall: Duration::from_secs(30),
        },
    );
    let cache = TempDir::new("cancel-stall");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.stall_timeout = Duration::from_secs(60);
    let token = CancelToken::new();
    o.cancel = Some(token.clone());
    let handle = std::thread::spawn(move || lemon_pull::pull(&o, &mut lemon_pull::Silent));
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = std::time::Instant::now();
    token.cancel();
    let r = handle.join().expect("thread");
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "cancel took {:?}",
        t0.elapsed()
    );
}

#[test]
fn two_threads_on_one_repo_serialize_through_the_lock() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.set_rate_limit(Some(8 << 20));
    let cache = TempDir::new("lock");
    let o = options(&hub.endpoint(), cache.path(), REPO);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| pull_recording(&o));
        std::thread::sleep(Duration::from_millis(200));
        let b = s.spawn(|| pull_recording(&o));
        (a.join().expect("a"), b.join().expect("b"))
    });
    a.0.expect("first");
    b.0.expect("second");
    assert!(
        b.1.contains(&Seen::Waiting) || a.1.contains(&Seen::Waiting),
        "one of them waited"
    );
    assert_snapshot_matches(cache.path(), &sha, &files);
    assert_eq!(
        hub.bytes_served_total(),
        total_size(&files),
        "the second found the work done"
    );
}

#[test]
fn renamed_repo_is_followed_through_relative_redirects() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.rename_repo(REPO, "org/new-name");
    let cache = TempDir::new("renamed");
    let out = lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), REPO),
        &mut lemon_pull::Silent,
    )
    .expect("pull through the rename");
    assert_eq!(out.commit, sha);
    // Cached under the name asked for, as huggingface_hub does.
    assert_snapshot_matches(cache.path(), &sha, &files);
    let redirected = hub.requests().iter().filter(|r| r.status == 307).count();
    assert!(
        redirected >= 2,
        "API and /resolve answered 307: {redirected}"
    );
}

/// Every request (API, `/tree`, `/resolve`, CDN; whole or ranged, first try or resume) asks for
/// the stored bytes with `Accept-Encoding: identity` and never advertises gzip: a compressed body
/// would be hashed and resumed as if it were the file.
#[test]
fn every_request_asks_for_identity_encoding() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    // Sizes only from `/tree`, so the listing API is exercised too.
    hub.set_listing_sizes(false);
    // A cut connection, so the download resumes with a ranged request.
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::DropAfter(1_000_000),
    );
    let cache = TempDir::new("identity");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("pull");
    assert_snapshot_matches(cache.path(), &sha, &files);
    // A second repo pulled over parallel ranged connections.
    let big = vec![MockFile::lfs("weights.bin", pseudo_random_bytes(3, BIG))];
    hub.commit("org/par", "main", big);
    o.repo = "org/par".into();
    o.connections = 4;
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("parallel pull");

    let requests = hub.requests();
    let has = |pred: &dyn Fn(&mock_hub::RequestLog) -> bool| requests.iter().any(pred);
    // The log covers every kind of request the assertion below is about.
    assert!(
        has(&|r| r.path.contains("/revision/")),
        "no revision request"
    );
    assert!(has(&|r| r.path.contains("/tree/")), "no /tree request");
    assert!(
        has(&|r| r.path.contains("/resolve/") && r.range.is_none()),
        "no whole /resolve request"
    );
    assert!(has(&|r| r.host.starts_with("localhost")), "no CDN request");
    assert!(
        requests.iter().filter(|r| r.range.is_some()).count() >= 2,
        "resume and parallel pieces send ranges"
    );
    for r in &requests {
        let accepted = r.header("accept-encoding");
        assert_eq!(
            accepted,
            Some("identity"),
            "{} {} asked for {accepted:?}",
            r.method,
            r.path
        );
        let all: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("accept-encoding"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(
            all.iter().all(|v| !v.to_ascii_lowercase().contains("gzip")),
            "{} {} advertised gzip: {all:?}",
            r.method,
            r.path
        );
    }
}
