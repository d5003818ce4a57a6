//! Offline mode: answer from the cache alone, never touching the network, failing clearly when the
//! cache cannot answer.

mod common;
mod support;

use std::fs;

use common::{TempDir, options};
use lemon_pull::Status;
use lemon_pull::progress::Silent;
use support::mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";

/// An endpoint nothing listens on: any network call would fail.
const DEAD: &str = "http://127.0.0.1:9";

fn offline(cache: &std::path::Path, repo: &str) -> lemon_pull::PullOptions {
    let mut o = options(DEAD, cache, repo);
    o.offline = true;
    o
}

fn setup() -> (MockHub, String, TempDir) {
    let hub = MockHub::start();
    let sha = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", b"{}".to_vec()),
            MockFile::lfs("m-Q4_K_M.gguf", pseudo_random_bytes(1, 200_000)),
            MockFile::lfs("m-Q8_0.gguf", pseudo_random_bytes(2, 300_000)),
        ],
    );
    let cache = TempDir::new("offline");
    lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), "org/model:Q4_K_M"),
        &mut Silent,
    )
    .expect("online pull");
    (hub, sha, cache)
}

#[test]
fn complete_snapshot_resolves_without_network() {
    let (hub, sha, cache) = setup();
    let before = hub.requests().len();
    let out =
        lemon_pull::pull(&offline(cache.path(), "org/model:Q4_K_M"), &mut Silent).expect("offline");
    assert_eq!(out.commit, sha);
    assert_eq!(out.files, 2);
    assert_eq!(out.totals.bytes_downloaded, 0);
    assert_eq!(hub.requests().len(), before, "no request reached the hub");
    // A full sha needs no ref.
    let mut o = offline(cache.path(), "org/model:Q4_K_M");
    o.revision = Some(sha.clone());
    assert_eq!(
        lemon_pull::pull(&o, &mut Silent).expect("by sha").commit,
        sha
    );
}

#[test]
fn what_the_cache_cannot_answer_is_not_cached() {
    let (_hub, sha, cache) = setup();
    let status = |o: &lemon_pull::PullOptions| {
        lemon_pull::pull(o, &mut Silent)
            .expect_err("must fail")
            .status()
    };
    assert_eq!(
        status(&offline(cache.path(), "org/other")),
        Status::NotCached,
        "never pulled"
    );
    let mut o = offline(cache.path(), REPO);
    o.revision = Some("v2".into());
    assert_eq!(status(&o), Status::NotCached, "unknown ref");
    assert_eq!(
        status(&offline(cache.path(), "org/model:Q8_0")),
        Status::FileNotFound,
        "variant not in the cached snapshot"
    );
    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    fs::write(snap.join("extra.bin.partial"), b"x").expect("partial");
    assert_eq!(
        status(&offline(cache.path(), "org/model:Q4_K_M")),
        Status::NotCached,
        "in progress"
    );
    fs::remove_file(snap.join("extra.bin.partial")).expect("rm");
    let f = snap.join("m-Q4_K_M.gguf");
    let mut bytes = fs::read(&f).expect("read");
    bytes[7] ^= 1;
    fs::write(&f, bytes).expect("tamper");
    let err = lemon_pull::pull(&offline(cache.path(), "org/model:Q4_K_M"), &mut Silent)
        .expect_err("tampered");
    assert_eq!(err.status(), Status::NotCached);
    assert!(err.to_string().contains("m-Q4_K_M.gguf"), "{err}");
}

#[test]
fn hf_hub_offline_environment_variable_is_honoured_by_the_cli() {
    let (_hub, sha, cache) = setup();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resume-pull"))
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_TOKEN")
        .args(["--json", "--endpoint", DEAD, "--cache-dir"])
        .arg(cache.path())
        .arg("org/model:Q4_K_M")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&last).expect("json");
    assert_eq!(v["commit"], sha.as_str());
}
