//! ModelScope: the same pull (resume, salvage, verification, offline) against ModelScope's API,
//! into the folders lemonade uses for it. The mock serves both APIs over the same repositories;
//! ModelScope's default branch is `master`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{TempDir, options, pull_and_pause, tree};
use lemon_pull::{Error, PullOptions, Registry, Silent, Source};
use mock_hub::{Fault, ListingShape, MockFile, MockHub, Target, pseudo_random_bytes, sha256_hex};

const REPO: &str = "org/model";
const MB: usize = 1 << 20;
const FOLDER: &str = "modelscope--models--org--model";

fn ms_options(hub: &MockHub, cache: &Path) -> PullOptions {
    let mut o = options(&hub.endpoint(), cache, REPO);
    o.registry = Registry::ModelScope;
    o
}

fn snapshots(cache: &Path) -> PathBuf {
    cache.join(FOLDER).join("snapshots")
}

fn folders(cache: &Path) -> Vec<String> {
    crate::common::folders(&snapshots(cache))
}

fn is_fingerprint(name: &str) -> bool {
    let Some(hex) = name.strip_prefix("modelscope-master-") else {
        return false;
    };
    hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn settle_and_reset(hub: &MockHub) {
    // A cancelled transfer's server thread may still count a few in-flight bytes.
    std::thread::sleep(Duration::from_millis(400));
    hub.reset_counters();
}

fn files(weights: &[u8], config: &[u8]) -> Vec<MockFile> {
    vec![
        MockFile::regular("config.json", config.to_vec()),
        MockFile::lfs("gguf/model-Q4_K_M.gguf", weights.to_vec()),
    ]
}

#[test]
fn a_fresh_pull_lands_where_lemonade_looks() {
    let hub = MockHub::start();
    let weights = pseudo_random_bytes(1, 3 * MB);
    hub.commit(REPO, "master", files(&weights, b"{}"));
    hub.set_private(REPO, Some("ms-secret"));
    let cache = TempDir::new("ms-fresh");
    let mut o = ms_options(&hub, cache.path());
    o.token = Some("ms-secret".into());
    let out = lemon_pull::pull(&o, &mut Silent).expect("pull");

    let names = folders(cache.path());
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(is_fingerprint(&names[0]), "{names:?}");
    assert_eq!(out.commit, names[0]);
    assert_eq!(out.registry, Registry::ModelScope);
    assert_eq!(out.revision, "master");
    assert_eq!(out.snapshot_path, snapshots(cache.path()).join(&names[0]));
    assert_eq!(
        fs::read_to_string(cache.path().join(FOLDER).join("refs/main")).expect("refs/main"),
        names[0],
        "lemonade reads refs/main for the default revision"
    );
    assert_eq!(
        fs::read(out.snapshot_path.join("gguf/model-Q4_K_M.gguf")).expect("weights"),
        weights
    );
    assert!(out.plan.iter().all(|p| p.hash_verified));
    assert_eq!(
        tree(&out.snapshot_path),
        ["config.json", "gguf/model-Q4_K_M.gguf"],
        "no manifest, no partial left"
    );
    let log = hub.requests();
    assert!(
        log.iter().any(|r| r
            .path
            .contains("/api/v1/models/org/model/repo/files?Revision=master")),
        "listed through ModelScope's API"
    );
    assert!(
        !log.iter().any(|r| r.path.contains("/resolve/")),
        "no Hub route"
    );
    for r in log.iter().filter(|r| r.path.starts_with("/api/v1/")) {
        assert_eq!(r.authorization.as_deref(), Some("Bearer ms-secret"));
        assert_eq!(r.cookie.as_deref(), Some("m_session_id=ms-secret"));
    }
    // The same snapshot again: nothing is downloaded.
    hub.reset_counters();
    let again = lemon_pull::pull(&o, &mut Silent).expect("again");
    assert_eq!(again.commit, out.commit);
    assert_eq!(hub.bytes_served_total(), 0);
}

#[test]
fn every_listing_shape_names_the_same_snapshot() {
    let hub = MockHub::start();
    hub.commit(
        REPO,
        "master",
        files(&pseudo_random_bytes(2, 4096), b"{\"a\":1}"),
    );
    let mut seen = Vec::new();
    for shape in [
        ListingShape::Envelope,
        ListingShape::DataArray,
        ListingShape::BareArray,
        ListingShape::LowerFiles,
    ] {
        hub.set_modelscope_listing_shape(shape);
        let cache = TempDir::new("ms-shape");
        let out = lemon_pull::pull(&ms_options(&hub, cache.path()), &mut Silent)
            .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        seen.push(out.commit);
    }
    assert!(seen.iter().all(|c| *c == seen[0]), "{seen:?}");
}

/// Paused in the big file; the tree changes (one small file); the resume fetches the changed
/// file and the big file's remainder only, salvaged from the old fingerprint folder.
#[test]
fn a_tree_change_while_paused_salvages_the_unchanged_weights() {
    let hub = MockHub::start();
    let weights = pseudo_random_bytes(3, 8 * MB);
    hub.commit(REPO, "master", files(&weights, b"{\"v\":1}"));
    hub.set_rate_limit(Some(6 * MB as u64));
    let cache = TempDir::new("ms-tree-change");
    let o = ms_options(&hub, cache.path());
    pull_and_pause(&o, "gguf/model-Q4_K_M.gguf", 3 * MB as u64);
    let old = folders(cache.path());
    assert_eq!(old.len(), 1);
    let partial = fs::metadata(
        snapshots(cache.path())
            .join(&old[0])
            .join("gguf/model-Q4_K_M.gguf.partial"),
    )
    .expect("partial")
    .len();
    assert!(partial > 0);

    let config = b"{\"v\":2}";
    hub.commit(REPO, "master", files(&weights, config));
    hub.set_rate_limit(None);
    settle_and_reset(&hub);
    let out = lemon_pull::pull(&o, &mut Silent).expect("resume across the tree change");
    assert_ne!(
        out.commit, old[0],
        "a changed tree is a new snapshot folder"
    );
    assert!(is_fingerprint(&out.commit));
    let served = hub.bytes_served_total();
    assert!(
        served <= config.len() as u64 + (8 * MB) as u64 - partial,
        "served {served}: more than the changed file and the remainder"
    );
    assert_eq!(out.totals.bytes_salvaged, partial);
    assert_eq!(
        fs::read(out.snapshot_path.join("gguf/model-Q4_K_M.gguf")).expect("weights"),
        weights
    );
    assert_eq!(
        folders(cache.path()),
        std::slice::from_ref(&out.commit),
        "the old folder is gone"
    );
}

/// lemonade's own downloader left a ModelScope snapshot in progress (its manifest, a
/// `.partial`); the library picks up those bytes.
#[test]
fn a_lemonade_modelscope_partial_is_salvaged() {
    let hub = MockHub::start();
    let weights = pseudo_random_bytes(4, 4 * MB);
    hub.commit(REPO, "master", files(&weights, b"{}"));
    let cache = TempDir::new("ms-lemonade");
    // An older tree's folder, as lemonade wrote it.
    let old = "modelscope-master-00000000000000aa";
    let dir = snapshots(cache.path()).join(old);
    fs::create_dir_all(dir.join("gguf")).expect("mkdir");
    let have = 3 * MB;
    fs::write(dir.join("gguf/model-Q4_K_M.gguf.partial"), &weights[..have]).expect("partial");
    let manifest = serde_json::json!({
        "repo_id": REPO,
        "registry_source": "modelscope",
        "commit_hash": old,
        "download_path": dir.display().to_string(),
        "files_count": 1,
        "files": [{
            "name": "gguf/model-Q4_K_M.gguf",
            "url": format!("{}/api/v1/models/org/model/repo?Revision=master&FilePath=gguf%2Fmodel-Q4_K_M.gguf", hub.endpoint()),
            "download_path": dir.display().to_string(),
            "size": weights.len(),
            "hash": {"algorithm": "sha256", "value": sha256_hex(&weights)},
        }],
    });
    fs::write(
        dir.join(".download_manifest.json"),
        serde_json::to_vec(&manifest).expect("json"),
    )
    .expect("manifest");
    let out = lemon_pull::pull(&ms_options(&hub, cache.path()), &mut Silent).expect("pull");
    assert_eq!(out.totals.bytes_salvaged, have as u64);
    assert_eq!(
        hub.bytes_served(REPO, "gguf/model-Q4_K_M.gguf"),
        (4 * MB - have) as u64
    );
    assert_eq!(
        fs::read(out.snapshot_path.join("gguf/model-Q4_K_M.gguf")).expect("weights"),
        weights
    );
}

#[test]
fn a_file_without_sha256_is_checked_by_size_and_said_so() {
    let hub = MockHub::start();
    let weights = pseudo_random_bytes(5, 2 * MB);
    hub.commit(REPO, "master", files(&weights, b"{\"x\":true}"));
    hub.set_modelscope_sha256(REPO, "config.json", None);
    let cache = TempDir::new("ms-size-only");
    let out = lemon_pull::pull(&ms_options(&hub, cache.path()), &mut Silent).expect("pull");
    let config = out
        .plan
        .iter()
        .find(|p| p.path == "config.json")
        .expect("planned");
    assert!(!config.hash_verified);
    assert!(
        out.plan
            .iter()
            .filter(|p| p.path != "config.json")
            .all(|p| p.hash_verified)
    );
    assert_eq!(
        fs::read(out.snapshot_path.join("config.json")).expect("config"),
        b"{\"x\":true}"
    );
    // The same bytes under the same path in a later tree are downloaded again, never guessed.
    hub.commit(
        REPO,
        "master",
        vec![
            MockFile::regular("config.json", b"{\"x\":true}".to_vec()),
            MockFile::lfs("gguf/model-Q4_K_M.gguf", weights.clone()),
            MockFile::regular("README.md", b"new".to_vec()),
        ],
    );
    hub.set_modelscope_sha256(REPO, "config.json", None);
    hub.reset_counters();
    let next = lemon_pull::pull(&ms_options(&hub, cache.path()), &mut Silent).expect("next");
    assert_ne!(next.commit, out.commit);
    assert_eq!(hub.bytes_served(REPO, "config.json"), 10);
    assert_eq!(
        hub.bytes_served(REPO, "gguf/model-Q4_K_M.gguf"),
        0,
        "the hashed file moves over"
    );
}

#[test]
fn failure_answers_are_typed() {
    let hub = MockHub::start();
    hub.commit(REPO, "master", files(&pseudo_random_bytes(6, 1024), b"{}"));
    let cache = TempDir::new("ms-failures");
    let o = ms_options(&hub, cache.path());
    type Case = (u16, &'static str, fn(&Error) -> bool);
    let cases: [Case; 5] = [
        (
            200,
            r#"{"Code":10010205001,"Success":false,"Message":"model not found"}"#,
            |e| matches!(e, Error::RepoNotFound { .. }),
        ),
        (
            200,
            r#"{"Code":500,"Success":false,"Message":"internal trouble"}"#,
            |e| matches!(e, Error::InvalidResponse { .. }),
        ),
        (401, r#"{"Code":401,"Message":"login"}"#, |e| {
            matches!(e, Error::Unauthorized { .. })
        }),
        (403, r#"{"Code":403,"Message":"forbidden"}"#, |e| {
            matches!(e, Error::RepoNotFound { .. })
        }),
        (404, r#"{"Code":404,"Message":"Model not found"}"#, |e| {
            matches!(e, Error::RepoNotFound { .. })
        }),
    ];
    for (status, body, expected) in cases {
        hub.set_modelscope_listing_answer(Some((status, body.to_string())));
        let e = lemon_pull::pull(&o, &mut Silent).expect_err(body);
        assert!(expected(&e), "{status} {body}: {e:?}");
    }
    hub.set_modelscope_listing_answer(None);
    let mut missing = o.clone();
    missing.repo = "org/missing".into();
    let e = lemon_pull::pull(&missing, &mut Silent).expect_err("missing repo");
    assert!(matches!(e, Error::RepoNotFound { .. }), "{e:?}");
    assert!(!cache.path().join(FOLDER).join("snapshots").exists());
}

/// Redirects to the CDN host, several connections per file, a dropped connection: the same
/// engine as on the Hub, and the token stays with ModelScope.
#[test]
fn redirects_parallel_ranges_and_faults_work_the_same() {
    let hub = MockHub::start();
    let weights = pseudo_random_bytes(7, 24 * MB);
    hub.commit(REPO, "master", files(&weights, b"{}"));
    hub.set_modelscope_redirect(true);
    hub.push_fault(
        Target::Resolve("gguf/model-Q4_K_M.gguf".into()),
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    hub.push_fault(
        Target::Cdn("gguf/model-Q4_K_M.gguf".into()),
        Fault::DropAfter(MB as u64),
    );
    let cache = TempDir::new("ms-parallel");
    let mut o = ms_options(&hub, cache.path());
    o.token = Some("tok".into());
    o.connections = 4;
    let out = lemon_pull::pull(&o, &mut Silent).expect("pull");
    assert_eq!(
        fs::read(out.snapshot_path.join("gguf/model-Q4_K_M.gguf")).expect("weights"),
        weights
    );
    let log = hub.requests();
    let cdn: Vec<_> = log
        .iter()
        .filter(|r| r.host.starts_with("localhost"))
        .collect();
    assert!(
        cdn.len() >= 2,
        "ranged requests on the CDN host: {}",
        cdn.len()
    );
    assert!(
        cdn.iter()
            .all(|r| r.authorization.is_none() && r.cookie.is_none()),
        "no token to the CDN"
    );
    assert!(
        cdn.iter().filter(|r| r.range.is_some()).count() >= 2,
        "pieces fetched by range"
    );
}

#[test]
fn offline_answers_from_a_modelscope_snapshot() {
    let hub = MockHub::start();
    let weights = pseudo_random_bytes(8, 1024);
    hub.commit(REPO, "master", files(&weights, b"{}"));
    let cache = TempDir::new("ms-offline");
    let online = lemon_pull::pull(&ms_options(&hub, cache.path()), &mut Silent).expect("pull");
    let mut o = ms_options(&hub, cache.path());
    o.endpoint = Some("http://127.0.0.1:9".into());
    o.offline = true;
    let out = lemon_pull::pull(&o, &mut Silent).expect("offline");
    assert!(out.from_cache);
    assert_eq!(out.commit, online.commit);
    assert!(out.plan.iter().all(|p| p.source == Source::Present));
}

/// A caller that listed the tree itself (lemonade) pins the fingerprint and names the files with
/// their sizes and hashes: no listing call, the folder is the pinned one.
#[test]
fn a_pinned_fingerprint_with_every_file_known_needs_no_listing() {
    let hub = MockHub::start();
    let weights = pseudo_random_bytes(9, 2 * MB);
    hub.commit(REPO, "master", files(&weights, b"{}"));
    let cache = TempDir::new("ms-pinned");
    let mut dry = ms_options(&hub, cache.path());
    dry.dry_run = true;
    let listed = lemon_pull::pull(&dry, &mut Silent).expect("dry run");
    hub.clear_requests();
    let mut o = ms_options(&hub, cache.path());
    o.commit = Some(listed.commit.clone());
    let mut spec = lemon_pull::FileSpec::new("gguf/model-Q4_K_M.gguf");
    spec.size = Some(weights.len() as u64);
    spec.sha256 = Some(sha256_hex(&weights));
    o.files = vec![spec];
    let out = lemon_pull::pull(&o, &mut Silent).expect("pinned pull");
    assert_eq!(out.commit, listed.commit);
    assert!(
        !hub.requests()
            .iter()
            .any(|r| r.path.contains("/repo/files")),
        "no listing call"
    );
    // A pin that is not a fingerprint is the caller's error.
    o.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
    let e = lemon_pull::pull(&o, &mut Silent).expect_err("not a fingerprint");
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
}
