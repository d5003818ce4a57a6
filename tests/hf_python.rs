//! huggingface_hub (the real Python package) reads what we write: `hf_hub_download(...,
//! local_files_only=True)` returns our file and `scan_cache_dir()` lists the repo, also while an
//! interrupted download of another commit sits beside it.
//!
//! Needs a Python with huggingface_hub: `LEMON_PULL_HF_PYTHON` names it (`.ci/run` makes a venv
//! from PyPI), else `python3` is tried. Without one the test says SKIP and passes.

mod common;
mod support;

use std::process::Command;

use common::{TempDir, options};
use lemon_pull::progress::Silent;
use lemon_pull::{Event, Flow};
use support::mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";

fn python() -> Option<String> {
    let candidates = std::env::var("LEMON_PULL_HF_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_string()]);
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-c", "import huggingface_hub"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(py);
        }
    }
    eprintln!(
        "SKIP: no Python with huggingface_hub (set LEMON_PULL_HF_PYTHON; .ci/run installs it from PyPI)"
    );
    None
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

    let out = Command::new(&py)
        .env("HF_HUB_CACHE", cache.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .args(["-c", SCRIPT, REPO, "config.json", "sub/model.gguf"])
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
