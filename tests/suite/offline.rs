//! Offline mode: answer from the cache alone, never touching the network, failing clearly when the
//! cache cannot answer.

use std::fs;

use crate::common::{TempDir, options};
use lemon_pull::Silent;
use lemon_pull::Status;
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

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
    let out = std::process::Command::new(crate::common::resume_pull())
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

/// Writes `trees/<sha>.json` as huggingface_hub (>= 1.22) does after a `snapshot_download`.
fn write_tree_listing(cache: &std::path::Path, sha: &str, format_version: u32) {
    let listing = serde_json::json!({
        "format_version": format_version,
        "files": {
            "config.json": {"size": 2, "blob_id": "9e26dfeeb6e641a33dae4961196235bdb965b21b"},
            "m-Q4_K_M.gguf": {"size": 200_000, "blob_id": "1111111111111111111111111111111111111111",
                "lfs_sha256": "a".repeat(64), "lfs_size": 200_000},
            "m-Q8_0.gguf": {"size": 300_000, "blob_id": "2222222222222222222222222222222222222222",
                "lfs_sha256": "b".repeat(64), "lfs_size": 300_000},
        }
    });
    let trees = cache.join("models--org--model/trees");
    fs::create_dir_all(&trees).expect("trees");
    fs::write(
        trees.join(format!("{sha}.json")),
        serde_json::to_string_pretty(&listing).expect("json"),
    )
    .expect("write listing");
}

/// A snapshot folder cannot show a file whose download never started (huggingface_hub leaves no
/// manifest); its cached tree listing can. With it, a selected file missing on disk is
/// `NotCached`, not "no such variant", and a file of the wrong size is caught.
#[test]
fn huggingface_hubs_tree_listing_tells_what_is_missing() {
    let (_hub, sha, cache) = setup();
    let status = |repo: &str| {
        lemon_pull::pull(&offline(cache.path(), repo), &mut Silent)
            .err()
            .map(|e| (e.status(), e.to_string()))
    };
    write_tree_listing(cache.path(), &sha, 1);
    assert_eq!(
        status("org/model:Q4_K_M"),
        None,
        "what was pulled is complete"
    );
    let (st, msg) = status("org/model:Q8_0").expect("never downloaded");
    assert_eq!(st, Status::NotCached, "{msg}");
    assert!(
        msg.contains("m-Q8_0.gguf") && msg.contains("missing"),
        "{msg}"
    );
    let (st, msg) = status(REPO).expect("the whole repo was never downloaded");
    assert_eq!(st, Status::NotCached, "{msg}");

    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    let f = fs::OpenOptions::new()
        .write(true)
        .open(snap.join("m-Q4_K_M.gguf"))
        .expect("open");
    f.set_len(150_000).expect("cut");
    let (st, msg) = status("org/model:Q4_K_M").expect("cut short");
    assert_eq!(st, Status::NotCached, "{msg}");
    assert!(
        msg.contains("150000 bytes") && msg.contains("200000"),
        "{msg}"
    );

    // A listing in a format this version does not know is ignored: the folder answers alone.
    write_tree_listing(cache.path(), &sha, 2);
    assert_eq!(
        status("org/model:Q8_0").map(|(s, _)| s),
        Some(Status::FileNotFound)
    );
}

/// huggingface_hub records a 404 as `.no_exist/<commit>/<path>`: such a component is not in the
/// repository (`FileNotFound`); without the marker it is merely not cached.
#[test]
fn no_exist_marker_says_a_component_is_not_in_the_repository() {
    let (_hub, sha, cache) = setup();
    let mut o = offline(cache.path(), "org/model:Q4_K_M");
    o.components = vec![lemon_pull::Component {
        repo: REPO.to_string(),
        path: "sub/missing.txt".to_string(),
        revision: None,
    }];
    let err = lemon_pull::pull(&o, &mut Silent).expect_err("not there");
    assert_eq!(err.status(), Status::NotCached, "{err}");
    let marker = cache
        .path()
        .join("models--org--model/.no_exist")
        .join(&sha)
        .join("sub/missing.txt");
    fs::create_dir_all(marker.parent().expect("parent")).expect("mkdir");
    fs::write(&marker, b"").expect("marker");
    let err = lemon_pull::pull(&o, &mut Silent).expect_err("known absent");
    assert_eq!(err.status(), Status::FileNotFound, "{err}");
    assert!(err.to_string().contains("sub/missing.txt"), "{err}");
}
