//! The `mock-hub` binary, as the README's demo, `ffi-tests/run.sh` and `bench/run.sh` drive it:
//! `--generate` writes a small model, the first line of stdout says where it listens and which
//! commit it serves, and `/admin/commit` re-scans the folder as a new commit.

use super::*;
use mock_hub::TempDir;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The running binary, killed on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `mock-hub ARGS` and returns it with its first stdout line.
fn start(args: &[&str], dir: &std::path::Path) -> (Served, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-hub"))
        .args(args)
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mock-hub");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the first line");
    (Served(child), line)
}

#[test]
fn the_binary_serves_a_generated_model_and_commits_edits() {
    let tmp = TempDir::new("mock-hub-bin");
    let dir = tmp.path().join("model");
    let (_served, line) = start(&["--repo", "demo/model", "--generate", "100000"], &dir);
    // `mock-hub listening on http://127.0.0.1:PORT (repo demo/model, commit <sha>)`
    let endpoint = line
        .strip_prefix("mock-hub listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{line}");
    let commit = line
        .trim_end()
        .strip_suffix(')')
        .and_then(|l| l.rsplit_once("commit "))
        .map(|(_, sha)| sha.to_owned())
        .unwrap_or_else(|| panic!("no commit in {line:?}"));
    assert!(line.contains("(repo demo/model, "), "{line}");
    assert_eq!(commit.len(), 40, "{line}");

    let info = get(&format!("{endpoint}/api/models/demo/model?blobs=true"), &[]);
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["sha"], commit.as_str());
    let listed = siblings(&info.json());
    for (name, size) in [("model-Q4_K_M.gguf", 100_000), ("model-Q8_0.gguf", 100_000)] {
        let s = sibling(&listed, name);
        assert_eq!(s["size"], size, "{s}");
        assert!(s["lfs"].is_object(), "weights are LFS files: {s}");
    }
    let weights = std::fs::read(dir.join("model-Q4_K_M.gguf")).expect("generated weights");
    assert!(weights.starts_with(b"GGUF"), "a GGUF header");
    assert_eq!(
        sibling(&listed, "model-Q4_K_M.gguf")["lfs"]["sha256"],
        sha256_hex(&weights).as_str()
    );

    let ms_listing =
        format!("{endpoint}/api/v1/models/demo/model/repo/files?Revision=master&Recursive=True");
    let ms_revision = |listing: &serde_json::Value| {
        let files = listing["Data"]["Files"].as_array().expect("files").clone();
        let config = files.iter().find(|f| f["Path"] == "config.json");
        config.expect("config.json listed")["Revision"].clone()
    };
    let listing = get(&ms_listing, &[]);
    assert_eq!(
        listing.status, 200,
        "ModelScope's default revision is served"
    );
    assert_eq!(ms_revision(&listing.json()), commit.as_str());

    std::fs::write(dir.join("config.json"), "{\"changed\": true}\n").expect("edit");
    let reply = agent()
        .post(&format!("{endpoint}/admin/commit"))
        .send_empty()
        .expect("admin commit");
    assert_eq!(reply.status(), 200);
    let moved = get(&format!("{endpoint}/api/models/demo/model"), &[]).json();
    assert_ne!(moved["sha"], commit.as_str(), "a new commit of main");
    assert_eq!(
        ms_revision(&get(&ms_listing, &[]).json()),
        moved["sha"],
        "master follows main"
    );
}

#[test]
fn the_binary_explains_its_usage() {
    let help = Command::new(env!("CARGO_BIN_EXE_mock-hub"))
        .arg("--help")
        .output()
        .expect("run mock-hub --help");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: mock-hub "));
    let bad = Command::new(env!("CARGO_BIN_EXE_mock-hub"))
        .arg("--bogus")
        .output()
        .expect("run mock-hub --bogus");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown option --bogus"));
}
