//! huggingface_hub (the real Python package) reads what we write: `hf_hub_download(...,
//! local_files_only=True)` returns our file and `scan_cache_dir()` lists the repo, also while an
//! interrupted download of another commit sits beside it.
//!
//! Needs a Python with huggingface_hub: `LEMON_PULL_HF_PYTHON` names it (`.ci/run` makes a venv
//! from PyPI), else `python3` is tried. Without one the test says SKIP and passes.

use std::fs;
use std::process::Command;

use crate::common::{TempDir, options};
use lemon_pull::Silent;
use lemon_pull::{Event, Flow};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";

/// Oldest huggingface_hub these tests expect: `trees/<commit>.json` and `.<8 hex>.incomplete`
/// partials came with 1.22 and 1.18.
const MIN_VERSION: (u32, u32) = (1, 22);

fn python() -> Option<String> {
    let candidates = std::env::var("LEMON_PULL_HF_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_string()]);
    let mut too_old = None;
    for py in candidates {
        let Ok(out) = Command::new(&py)
            .args([
                "-c",
                "import huggingface_hub; print(huggingface_hub.__version__)",
            ])
            .output()
        else {
            continue;
        };
        if !out.status.success() {
            continue;
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        if (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= MIN_VERSION {
            return Some(py);
        }
        too_old = Some(version);
    }
    match too_old {
        Some(v) => eprintln!(
            "SKIP: huggingface_hub {v} is older than {}.{} (.ci/run installs 2.4.0 from PyPI)",
            MIN_VERSION.0, MIN_VERSION.1
        ),
        None => eprintln!(
            "SKIP: no Python with huggingface_hub (set LEMON_PULL_HF_PYTHON; .ci/run installs it from PyPI)"
        ),
    }
    None
}

/// `script` run by the package against `cache`: online against `endpoint`, or offline (`None`),
/// with the user's own token and endpoint out of the way.
fn huggingface_hub(
    py: &str,
    cache: &std::path::Path,
    endpoint: Option<&str>,
    script: &str,
    args: &[&str],
) -> Command {
    let mut c = Command::new(py);
    c.env("HF_HUB_CACHE", cache)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN")
        .env_remove("HF_ENDPOINT")
        .env_remove("HF_HUB_OFFLINE");
    match endpoint {
        Some(e) => c.env("HF_ENDPOINT", e),
        None => c.env("HF_HUB_OFFLINE", "1"),
    };
    c.args(["-c", script]).args(args);
    c
}

const SCRIPT: &str = r#"
import json, sys
from huggingface_hub import hf_hub_download, scan_cache_dir
repo, files = sys.argv[1], sys.argv[2:]
paths = {f: hf_hub_download(repo, f, local_files_only=True) for f in files}
info = scan_cache_dir()
repos = {r.repo_id: {"refs": sorted(r.refs), "revisions": {rev.commit_hash: sorted(f.file_name for f in rev.files) for rev in r.revisions}} for r in info.repos}
print(json.dumps({"version": __import__("huggingface_hub").__version__, "paths": paths, "repos": repos, "warnings": [str(w) for w in info.warnings]}))
"#;

#[test]
fn huggingface_hub_reads_our_cache() {
    let Some(py) = python() else { return };
    let hub = MockHub::start();
    let sha = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", b"{\"a\": 1}".to_vec()),
            MockFile::lfs("sub/model.gguf", pseudo_random_bytes(1, 300_000)),
        ],
    );
    let cache = TempDir::new("hf-python");
    lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent).expect("pull");

    // An interrupted download of a newer commit beside the committed one.
    hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs(
            "sub/model.gguf",
            pseudo_random_bytes(2, 4 << 20),
        )],
    );
    hub.set_rate_limit(Some(2 << 20));
    let r = lemon_pull::pull(
        &options(&hub.endpoint(), cache.path(), REPO),
        &mut |ev: &Event<'_>| match ev {
            Event::Progress { file_done, .. } if *file_done > 100_000 => Flow::Cancel,
            _ => Flow::Continue,
        },
    );
    assert!(r.is_err(), "paused");

    let files = [REPO, "config.json", "sub/model.gguf"];
    let out = huggingface_hub(&py, cache.path(), None, SCRIPT, &files)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    println!("huggingface_hub {} read the cache", v["version"]);
    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    assert_eq!(
        v["paths"]["config.json"],
        snap.join("config.json").display().to_string()
    );
    assert_eq!(
        v["paths"]["sub/model.gguf"],
        snap.join("sub/model.gguf").display().to_string()
    );
    let repo = &v["repos"][REPO];
    assert_eq!(repo["refs"], serde_json::json!(["main"]));
    assert!(
        repo["revisions"][&sha]
            .as_array()
            .is_some_and(|f| f.len() == 2),
        "{repo}"
    );
    assert_eq!(v["warnings"], serde_json::json!([]));
}

const SNAPSHOT_DOWNLOAD: &str = r#"
import sys
from huggingface_hub import snapshot_download
print(snapshot_download(sys.argv[1]))
"#;

/// The other direction, with the real package making the cache state: huggingface_hub's
/// `snapshot_download` fills `blobs/` + symlinks + `trees/<commit>.json`; we answer offline from
/// it (and see a file it never downloaded), and an online pull of the same commit takes every byte
/// from its blobs instead of the network, leaving its blobs in place.
#[cfg(unix)] // re-creates one of its symlinks
#[test]
fn we_use_what_huggingface_hub_downloaded() {
    let Some(py) = python() else { return };
    let hub = MockHub::start();
    let sha = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", b"{\"b\": 2}".to_vec()),
            MockFile::lfs("sub/model.gguf", pseudo_random_bytes(3, 3 << 20)),
            MockFile::lfs("extra.gguf", pseudo_random_bytes(4, 1 << 20)),
        ],
    );
    let cache = TempDir::new("hf-python-made");
    let endpoint = hub.endpoint();
    let out = huggingface_hub(
        &py,
        cache.path(),
        Some(&endpoint),
        SNAPSHOT_DOWNLOAD,
        &[REPO],
    )
    .output()
    .expect("python");
    assert!(
        out.status.success(),
        "snapshot_download failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let repo_dir = cache.path().join("models--org--model");
    let snap = repo_dir.join("snapshots").join(&sha);
    assert!(
        fs::symlink_metadata(snap.join("sub/model.gguf"))
            .expect("python's snapshot")
            .file_type()
            .is_symlink(),
        "huggingface_hub links snapshots into blobs/"
    );
    assert!(
        repo_dir.join("trees").join(format!("{sha}.json")).is_file(),
        "huggingface_hub cached the tree listing"
    );

    let mut offline = options("http://127.0.0.1:9", cache.path(), REPO);
    offline.offline = true;
    let o = lemon_pull::pull(&offline, &mut Silent).expect("offline from python's snapshot");
    assert_eq!((o.commit.as_str(), o.files), (sha.as_str(), 3));

    // As if its download had stopped before extra.gguf: the folder alone would look complete.
    let link = snap.join("extra.gguf");
    let target = fs::read_link(&link).expect("link");
    fs::remove_file(&link).expect("unlink");
    let err = lemon_pull::pull(&offline, &mut Silent).expect_err("extra.gguf never downloaded");
    assert_eq!(err.status(), lemon_pull::Status::NotCached, "{err}");
    assert!(err.to_string().contains("extra.gguf"), "{err}");
    std::os::unix::fs::symlink(&target, &link).expect("relink");

    // Online, same commit: every byte comes from huggingface_hub's blobs.
    hub.reset_counters();
    let o = lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent)
        .expect("online pull over python's cache");
    assert_eq!(o.totals.bytes_downloaded, 0, "{:?}", o.plan);
    assert_eq!(hub.bytes_served_total(), 0);
    for (path, len) in [
        ("config.json", 8),
        ("sub/model.gguf", 3 << 20),
        ("extra.gguf", 1 << 20),
    ] {
        assert_eq!(
            fs::metadata(snap.join(path)).expect(path).len(),
            len,
            "{path}"
        );
    }
    // Its complete snapshot is verified in place and left as it is, links and all.
    assert!(
        fs::symlink_metadata(snap.join("sub/model.gguf"))
            .expect("still there")
            .file_type()
            .is_symlink()
    );
    let blobs = fs::read_dir(repo_dir.join("blobs")).expect("blobs").count();
    assert_eq!(blobs, 3, "huggingface_hub's blobs are left alone");

    // A new commit changes only config.json: the weights come from huggingface_hub's blobs into
    // our snapshot (hardlinks), and only the new config crosses the network.
    let new_config = b"{\"b\": 3, \"c\": true}".to_vec();
    let sha2 = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", new_config.clone()),
            MockFile::lfs("sub/model.gguf", pseudo_random_bytes(3, 3 << 20)),
            MockFile::lfs("extra.gguf", pseudo_random_bytes(4, 1 << 20)),
        ],
    );
    hub.reset_counters();
    let o = lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent)
        .expect("pull of the new commit");
    assert_eq!(o.commit, sha2);
    assert_eq!(hub.bytes_served_total(), new_config.len() as u64);
    let snap2 = repo_dir.join("snapshots").join(&sha2);
    let weights = fs::symlink_metadata(snap2.join("sub/model.gguf")).expect("weights");
    assert!(weights.is_file() && weights.len() == 3 << 20);
    assert!(
        snap.join("sub/model.gguf").exists(),
        "huggingface_hub's snapshot of the old commit still resolves"
    );
}

const HF_HUB_DOWNLOAD: &str = r#"
import sys
from huggingface_hub import hf_hub_download
hf_hub_download(sys.argv[1], sys.argv[2])
"#;

/// A partial made by the real huggingface_hub: its download is killed (SIGKILL, so it cannot
/// clean up), the partial sits untouched for a while, and our pull resumes from it instead of
/// starting over.
#[test]
fn a_partial_left_by_a_killed_huggingface_hub_is_resumed() {
    let Some(py) = python() else { return };
    let hub = MockHub::start();
    // huggingface_hub writes in chunks of 10 MiB (`DOWNLOAD_CHUNK_SIZE`): the file must be
    // several chunks long for a partial to exist on disk while the download still runs.
    let data = pseudo_random_bytes(5, 32 << 20);
    let sha = hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", data.clone())],
    );
    // At 4 MiB/s its first chunk lands after 2.5 s and the download ends after 8 s.
    hub.set_rate_limit(Some(4 << 20));
    let cache = TempDir::new("hf-python-killed");
    let endpoint = hub.endpoint();
    let args = [REPO, "model.gguf"];
    let mut child = huggingface_hub(&py, cache.path(), Some(&endpoint), HF_HUB_DOWNLOAD, &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python");
    let blobs = cache.path().join("models--org--model/blobs");
    let started = std::time::Instant::now();
    let incomplete = loop {
        let found = fs::read_dir(&blobs).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(".incomplete"))
        });
        if let Some(p) = found
            && fs::metadata(&p).is_ok_and(|m| m.len() >= 1 << 20)
        {
            break p;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "huggingface_hub wrote no .incomplete in blobs/"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let kept = fs::metadata(&incomplete).expect("left behind").len();
    println!(
        "huggingface_hub left {} ({kept} bytes)",
        incomplete
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    // As if the user came back later: the partial has not changed for an hour.
    fs::OpenOptions::new()
        .write(true)
        .open(&incomplete)
        .expect("open")
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .expect("age");

    hub.set_rate_limit(None);
    // Let the hub notice the dead connection before counting afresh.
    std::thread::sleep(std::time::Duration::from_millis(300));
    hub.reset_counters();
    let o =
        lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent).expect("pull");
    assert_eq!(o.totals.bytes_salvaged, kept);
    assert_eq!(
        hub.bytes_served(REPO, "model.gguf"),
        data.len() as u64 - kept
    );
    let ours = cache
        .path()
        .join("models--org--model/snapshots")
        .join(&sha)
        .join("model.gguf");
    assert_eq!(fs::read(ours).expect("file"), data);
}
