//! Hostile or broken servers (issue 5, item 6): unsafe file names, sizes that lie, negative and
//! huge sizes, malformed and huge JSON, redirect loops, redirects to other schemes, hosts and
//! ports, a Hub that is not one. Each case must end in a clear typed error (or, where the lie is
//! harmless, in a verified file), with nothing written outside `snapshots/<sha>/` (and the
//! library's own `.lemon-pull/` state), memory bounded, and the token sent only to the endpoint's
//! origin.
//!
//! Not testable end to end here: an https→http downgrade, because the mock speaks plain HTTP and
//! the client verifies certificates against the system roots; `src/http.rs` tests the rule on the
//! redirect step itself (`next_hop`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{TempDir, options};
use lemon_pull::{Error, PullOptions, Status};
use mock_hub::{Fault, MockFile, MockHub, Target, content, pseudo_random_bytes};

const REPO: &str = "org/model";
const BIG: usize = 3 << 20;

fn model_files() -> Vec<MockFile> {
    vec![
        MockFile::regular("config.json", br#"{"arch": "llama"}"#.to_vec()),
        MockFile::regular("tokenizer.json", pseudo_random_bytes(7, 200_000)),
        MockFile::lfs("model.safetensors", pseudo_random_bytes(1, BIG)),
    ]
}

/// A sandbox: `root/cache` is the cache, `root/outside.txt` and `root/etc/passwd` are bait.
/// `check` compares the whole tree (files and folders, with contents) before and after a pull.
struct Sandbox {
    root: TempDir,
    before: BTreeMap<String, Option<Vec<u8>>>,
}

impl Sandbox {
    fn new(tag: &str) -> Sandbox {
        let root = TempDir::new(tag);
        fs::create_dir_all(root.path().join("cache")).expect("cache");
        fs::create_dir_all(root.path().join("etc")).expect("etc");
        fs::write(root.path().join("outside.txt"), b"keep").expect("bait");
        fs::write(root.path().join("etc/passwd"), b"root:x:0:0").expect("bait");
        let before = snapshot_tree(root.path());
        Sandbox { root, before }
    }

    fn cache(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    fn options(&self, hub: &MockHub) -> PullOptions {
        options(&hub.endpoint(), &self.cache(), REPO)
    }

    /// Nothing changed except under `snapshots/<sha>/` (when given) and the library's state dir.
    fn check(&self, sha: Option<&str>) {
        self.check_inner(sha, false);
    }

    /// After a successful pull: [`Sandbox::check`], and `refs/main` may have been written.
    fn check_committed(&self, sha: &str) {
        self.check_inner(Some(sha), true);
    }

    fn check_inner(&self, sha: Option<&str>, committed: bool) {
        let after = snapshot_tree(self.root.path());
        let repo = "cache/models--org--model";
        let allowed = |p: &str| {
            p == "cache/"
                // The cache-directory tag every pull leaves at the root (fixed name and text).
                || p == "cache/CACHEDIR.TAG"
                || p == format!("{repo}/")
                || p == format!("{repo}/snapshots/")
                || p.starts_with(&format!("{repo}/.lemon-pull/"))
                || sha.is_some_and(|s| p.starts_with(&format!("{repo}/snapshots/{s}/")))
                || (committed && (p == format!("{repo}/refs/") || p == format!("{repo}/refs/main")))
        };
        for (p, data) in &after {
            if self.before.get(p) != Some(data) {
                assert!(allowed(p), "written outside the snapshot: {p}");
            }
        }
        for p in self.before.keys() {
            assert!(after.contains_key(p), "removed: {p}");
        }
    }

    /// No final file of the repo exists (nothing was committed under a trusted name).
    fn assert_no_final_files(&self, sha: &str, files: &[MockFile]) {
        let snap = self.cache().join("models--org--model/snapshots").join(sha);
        for f in files {
            assert!(!snap.join(&f.path).exists(), "{} exists", f.path);
        }
        assert!(!self.cache().join("models--org--model/refs/main").exists());
    }
}

/// Every file and folder under `root` (folders end in `/`), files with their bytes.
fn snapshot_tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .replace('\\', "/");
            let meta = fs::symlink_metadata(&p).expect("metadata");
            if meta.is_dir() {
                out.insert(format!("{rel}/"), None);
                walk(base, &p, out);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap_or_default()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn pull(o: &PullOptions) -> lemon_pull::Result<lemon_pull::PullOutcome> {
    lemon_pull::pull(o, &mut lemon_pull::Silent)
}

fn hex40() -> String {
    "0123456789abcdef0123456789abcdef01234567".to_string()
}

// ---------------------------------------------------------------------------------------------
// File names
// ---------------------------------------------------------------------------------------------

fn evil_names() -> Vec<String> {
    let mut v: Vec<String> = [
        "../evil.txt",
        "/abs.txt",
        "a\\..\\b.txt",
        "C:/x.txt",
        "ok/../../up.txt",
        "./dot.txt",
        "a//b.txt",
        "trailing/",
        "nul\0byte.txt",
        "esc\x1b[2Jape.txt",
        "new\nline.txt",
        "model.safetensors.partial",
        ".download_manifest.json",
        "sub/.DOWNLOAD_MANIFEST.JSON",
        "CON",
        "aux.txt",
        "dot.",
        "stream:ads",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(300));
    v.push(format!("{}/f.bin", ["d"; 600].join("/")));
    v
}

/// Unsafe names in the `?blobs=true` listing: `UnsafePath` (status `InvalidResponse`) before any
/// byte is written, with the name escaped in the message.
#[test]
fn unsafe_names_in_the_listing_are_refused() {
    let hub = MockHub::start();
    let sandbox = Sandbox::new("hostile-names");
    for evil in evil_names() {
        hub.commit(
            REPO,
            "main",
            vec![
                MockFile::regular("config.json", b"{}".to_vec()),
                MockFile::regular(&evil, b"pwned".to_vec()),
            ],
        );
        let err = pull(&sandbox.options(&hub)).expect_err(&evil);
        assert_eq!(err.status(), Status::InvalidResponse, "{evil:?}: {err}");
        assert!(matches!(err, Error::UnsafePath { .. }), "{evil:?}: {err:?}");
        let msg = err.to_string();
        assert!(
            !msg.contains(['\0', '\x1b', '\n']),
            "control characters reach the message: {msg:?}"
        );
        assert!(
            msg.len() < 1000,
            "message not shortened: {} bytes",
            msg.len()
        );
        sandbox.check(None);
    }
    assert_eq!(hub.bytes_served_total(), 0);
}

/// The same names arriving through the `/tree` fallback (the listing lacks sizes).
#[test]
fn unsafe_names_in_the_tree_listing_are_refused() {
    let hub = MockHub::start();
    let sandbox = Sandbox::new("hostile-tree-names");
    let sha = hex40();
    for evil in evil_names() {
        hub.push_fault(
            Target::Api,
            Fault::Json(format!(
                r#"{{"sha":"{sha}","siblings":[{{"rfilename":"config.json"}}]}}"#
            )),
        );
        let entry = serde_json::json!([
            {"type": "file", "oid": hex40(), "size": 2, "path": "config.json"},
            {"type": "file", "oid": hex40(), "size": 5, "path": evil},
        ]);
        hub.push_fault(Target::Tree, Fault::Json(entry.to_string()));
        let err = pull(&sandbox.options(&hub)).expect_err(&evil);
        assert!(matches!(err, Error::UnsafePath { .. }), "{evil:?}: {err:?}");
        assert_eq!(err.status(), Status::InvalidResponse);
        sandbox.check(None);
    }
    assert_eq!(hub.pending_faults(), 0);
}

/// A file and a folder of the same name (`a` and `a/b`), which git cannot hold: refused when the
/// listing arrives, before anything is written (not half-way, when `a/` cannot be created).
#[test]
fn a_file_and_a_folder_of_the_same_name_are_refused() {
    let hub = MockHub::start();
    let sandbox = Sandbox::new("hostile-file-dir");
    for paths in [["a", "a/b"], ["x/y", "x/y/z"]] {
        hub.commit(
            REPO,
            "main",
            vec![
                MockFile::regular(paths[0], b"file".to_vec()),
                MockFile::regular("a-sorts-between", b"x".to_vec()),
                MockFile::regular(paths[1], b"inside".to_vec()),
            ],
        );
        let err = pull(&sandbox.options(&hub)).expect_err("collision");
        assert_eq!(err.status(), Status::InvalidResponse, "{err}");
        assert!(
            err.to_string().contains("as a file and as the folder"),
            "{err}"
        );
        sandbox.check(None);
    }
    assert_eq!(hub.bytes_served_total(), 0);
}

// ---------------------------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------------------------

/// The metadata says more or fewer bytes than the server sends (`Content-Length`, `Content-Range`
/// tell the truth): refused with `InvalidResponse` naming the file, before a byte is written; a
/// partial that was on disk is kept.
#[test]
fn sizes_that_lie_are_refused_naming_the_file() {
    let files = model_files();
    for (path, delta) in [
        ("model.safetensors", 1000),
        ("model.safetensors", -1000),
        ("tokenizer.json", 1),
        ("tokenizer.json", -1),
    ] {
        let hub = MockHub::start();
        let sha = hub.commit(REPO, "main", files.clone());
        hub.set_size_lie(REPO, path, delta);
        let sandbox = Sandbox::new("hostile-size-lie");
        let started = Instant::now();
        let err = pull(&sandbox.options(&hub)).expect_err(path);
        assert_eq!(
            err.status(),
            Status::InvalidResponse,
            "{path} {delta}: {err}"
        );
        assert!(err.to_string().contains(path), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        sandbox.check(Some(&sha));
        let snap = sandbox
            .cache()
            .join("models--org--model/snapshots")
            .join(&sha);
        assert!(!snap.join(path).exists(), "{path} got its final name");
        let partial = snap.join(format!("{path}.partial"));
        assert_eq!(fs::metadata(&partial).map(|m| m.len()).unwrap_or(0), 0);
        assert!(
            !sandbox
                .cache()
                .join("models--org--model/refs/main")
                .exists()
        );
    }

    // Resuming: the 206's Content-Range total disagrees with the listing. The partial stays.
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.set_size_lie(REPO, "model.safetensors", 5000);
    let sandbox = Sandbox::new("hostile-size-lie-resume");
    let snap = sandbox
        .cache()
        .join("models--org--model/snapshots")
        .join(&sha);
    fs::create_dir_all(&snap).expect("snap");
    let prefix = &content(&files, "model.safetensors")[..100_000];
    fs::write(snap.join("model.safetensors.partial"), prefix).expect("partial");
    let sandbox = Sandbox {
        before: snapshot_tree(sandbox.root.path()),
        ..sandbox
    };
    let err = pull(&sandbox.options(&hub)).expect_err("resume with a lying total");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    assert!(err.to_string().contains("Content-Range"), "{err}");
    assert_eq!(
        fs::read(snap.join("model.safetensors.partial")).expect("partial kept"),
        prefix
    );
    sandbox.check(Some(&sha));
}

/// A server that lies consistently (listing, `X-Linked-Size` and the body all say 100 000 bytes
/// fewer): only the content id can tell. The file restarts once, then fails with
/// `VerificationFailed` naming it, and never gets its final name.
#[test]
fn a_consistent_size_lie_is_caught_by_verification() {
    let hub = MockHub::start();
    let files = model_files();
    let sha = hub.commit(REPO, "main", files.clone());
    let short = BIG as u64 - 100_000;
    hub.set_size_lie(REPO, "model.safetensors", -100_000);
    for _ in 0..2 {
        hub.push_fault(
            Target::Cdn("model.safetensors".into()),
            Fault::ShortBody(short),
        );
    }
    let sandbox = Sandbox::new("hostile-consistent-lie");
    let err = pull(&sandbox.options(&hub)).expect_err("does not verify");
    assert_eq!(err.status(), Status::VerificationFailed, "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    assert_eq!(hub.pending_faults(), 0, "restarted exactly once");
    assert_eq!(hub.bytes_served(REPO, "model.safetensors"), 2 * short);
    let snap = sandbox
        .cache()
        .join("models--org--model/snapshots")
        .join(&sha);
    assert!(!snap.join("model.safetensors").exists());
    sandbox.check(Some(&sha));
}

/// More bytes than announced: bytes past the file's size are never read into the partial (a
/// `206` whose body runs on), and a `200` whose `Content-Length` exceeds the listed size is
/// refused before a byte is written.
#[test]
fn bytes_beyond_the_file_are_never_written() {
    let files = model_files();
    // 206 with junk after the range: the file still verifies.
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", files.clone());
    let sandbox = Sandbox::new("hostile-long-206");
    let snap = sandbox
        .cache()
        .join("models--org--model/snapshots")
        .join(&sha);
    fs::create_dir_all(&snap).expect("snap");
    fs::write(
        snap.join("model.safetensors.partial"),
        &content(&files, "model.safetensors")[..1000],
    )
    .expect("partial");
    hub.push_fault(
        Target::Cdn("model.safetensors".into()),
        Fault::LongBody(1 << 20),
    );
    pull(&sandbox.options(&hub)).expect("extra bytes ignored");
    assert_eq!(
        fs::read(snap.join("model.safetensors")).expect("file"),
        content(&files, "model.safetensors")
    );
    assert_eq!(hub.pending_faults(), 0);
    sandbox.check_committed(&sha);

    // 200 announcing more than the listing: refused.
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", files.clone());
    let sandbox = Sandbox::new("hostile-long-200");
    hub.push_fault(
        Target::Resolve("tokenizer.json".into()),
        Fault::LongBody(10),
    );
    let err = pull(&sandbox.options(&hub)).expect_err("longer than listed");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
    sandbox.check(Some(&sha));
    // ... and so is one announcing fewer.
    hub.push_fault(
        Target::Resolve("tokenizer.json".into()),
        Fault::ShortBody(10),
    );
    let err = pull(&sandbox.options(&hub)).expect_err("shorter than listed");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    sandbox.check(Some(&sha));
}

/// Negative, fractional, quoted, 2^63, 2^64 and > 1 PiB sizes, in the listing and in the tree:
/// `InvalidResponse` before anything is written. A plausible but enormous size (2^49) passes the
/// parser and is stopped by the free-space preflight, still before a byte is fetched.
#[test]
fn negative_and_huge_sizes_are_refused() {
    let files = model_files();
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", files);
    let sandbox = Sandbox::new("hostile-sizes");
    for tree in [false, true] {
        hub.set_listing_sizes(!tree);
        for raw in [
            "-1",
            "-9223372036854775808",
            "1e3",
            "1.5",
            "\"12\"",
            "true",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "1125899906842625",
        ] {
            hub.set_listed_size_raw(REPO, "model.safetensors", Some(raw));
            let err = pull(&sandbox.options(&hub)).expect_err(raw);
            assert_eq!(
                err.status(),
                Status::InvalidResponse,
                "{raw} tree={tree}: {err}"
            );
            sandbox.check(None);
        }
        hub.set_listed_size_raw(REPO, "model.safetensors", Some("562949953421312"));
        let err = pull(&sandbox.options(&hub)).expect_err("2^49");
        assert_eq!(
            err.status(),
            Status::InsufficientSpace,
            "tree={tree}: {err}"
        );
        sandbox.check(Some(&sha));
    }
    assert_eq!(hub.bytes_served_total(), 0);
}

/// `X-Linked-Size` that disagrees with the listing is refused naming the file; one that is not a
/// number is ignored (the body's length is checked anyway) and the pull succeeds.
#[test]
fn x_linked_size_disagreeing_with_the_listing_is_refused() {
    let files = model_files();
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", files.clone());
    let sandbox = Sandbox::new("hostile-linked-size");
    for raw in [(BIG + 1).to_string(), "0".to_string()] {
        hub.set_linked_size_raw(REPO, "model.safetensors", Some(&raw));
        let err = pull(&sandbox.options(&hub)).expect_err(&raw);
        assert_eq!(err.status(), Status::InvalidResponse, "{err}");
        let msg = err.to_string();
        assert!(msg.contains("X-Linked-Size"), "{msg}");
        assert!(msg.contains("model.safetensors"), "{msg}");
        sandbox.check(Some(&sha));
        assert_no_partial_bytes(&sandbox, &sha);
        assert!(
            !sandbox
                .cache()
                .join("models--org--model/snapshots")
                .join(&sha)
                .join("model.safetensors")
                .exists()
        );
    }
    for raw in ["abc", "-1", ""] {
        hub.set_linked_size_raw(REPO, "model.safetensors", Some(raw));
    }
    pull(&sandbox.options(&hub)).expect("unparseable X-Linked-Size ignored");
    sandbox.check_committed(&sha);
}

/// A server without `X-Repo-Commit` is not a Hub: refused naming the file, nothing written.
#[test]
fn missing_x_repo_commit_is_refused() {
    let files = model_files();
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", files.clone());
    hub.omit_header("X-Repo-Commit");
    let sandbox = Sandbox::new("hostile-no-commit");
    let err = pull(&sandbox.options(&hub)).expect_err("not a hub");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("X-Repo-Commit"), "{msg}");
    assert!(msg.contains("config.json"), "{msg}");
    sandbox.check(Some(&sha));
    sandbox.assert_no_final_files(&sha, &files);
    assert_no_partial_bytes(&sandbox, &sha);
}

/// The refused answers' bodies were not appended anywhere: every partial is empty.
fn assert_no_partial_bytes(sandbox: &Sandbox, sha: &str) {
    let snap = sandbox
        .cache()
        .join("models--org--model/snapshots")
        .join(sha);
    for (p, data) in snapshot_tree(&snap) {
        if p.ends_with(".partial") {
            assert_eq!(data.map(|d| d.len()), Some(0), "{p} has bytes");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// Malformed or wrongly shaped JSON on the API and on the tree: `InvalidResponse`.
#[test]
fn malformed_json_is_refused() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", model_files());
    let sandbox = Sandbox::new("hostile-json");
    let sha = hex40();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let api_bodies = [
        String::new(),
        "{".into(),
        r#"{"sha":"#.into(),
        "null".into(),
        "[]".into(),
        "42".into(),
        "\"\u{0}\"".into(),
        r#"{"sha": 5}"#.into(),
        r#"{"sha": "zz"}"#.into(),
        format!(r#"{{"sha":"{sha}","siblings":"nope"}}"#),
        format!(r#"{{"sha":"{sha}","siblings":[{{"size":5}}]}}"#),
        format!(r#"{{"sha":"{sha}","siblings":[{{"rfilename":7}}]}}"#),
        format!(
            r#"{{"sha":"{sha}","siblings":[{{"rfilename":"a","size":1,"blobId":"{sha}"}},{{"rfilename":"a","size":1,"blobId":"{sha}"}}]}}"#
        ),
        deep.clone(),
    ];
    for body in &api_bodies {
        hub.push_fault(Target::Api, Fault::Json(body.clone()));
        let err = pull(&sandbox.options(&hub)).expect_err(body);
        assert_eq!(err.status(), Status::InvalidResponse, "{:.80}: {err}", body);
        sandbox.check(None);
    }
    let tree_bodies = [
        "{}".to_string(),
        "[{".into(),
        r#"[{"type":"file","path":"a"}]"#.into(),
        format!(r#"[{{"type":"file","oid":"{sha}","size":-1,"path":"a"}}]"#),
        format!(
            r#"[{{"type":"file","oid":"{sha}","size":1,"path":"a"}},{{"type":"file","oid":"{sha}","size":1,"path":"a"}}]"#
        ),
        deep,
    ];
    for body in &tree_bodies {
        hub.push_fault(
            Target::Api,
            Fault::Json(format!(
                r#"{{"sha":"{sha}","siblings":[{{"rfilename":"a"}}]}}"#
            )),
        );
        hub.push_fault(Target::Tree, Fault::Json(body.clone()));
        let err = pull(&sandbox.options(&hub)).expect_err(body);
        assert_eq!(err.status(), Status::InvalidResponse, "{:.80}: {err}", body);
        sandbox.check(None);
    }
    assert_eq!(hub.pending_faults(), 0);
}

/// A 100 MB JSON answer (a valid document: the real listing after 100 MB of whitespace) on the
/// API and on a tree page is refused from its `Content-Length`, without being read: the mock
/// managed to push only what the kernel buffers before the client hung up.
#[test]
fn huge_json_is_refused_without_being_read() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", model_files());
    let sandbox = Sandbox::new("hostile-huge-json");
    let huge = 100 << 20;
    hub.push_fault(Target::Api, Fault::PaddedJson(huge));
    let started = Instant::now();
    let err = pull(&sandbox.options(&hub)).expect_err("too big");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    sandbox.check(None);

    hub.set_listing_sizes(false);
    hub.push_fault(Target::Tree, Fault::PaddedJson(huge));
    let err = pull(&sandbox.options(&hub)).expect_err("tree too big");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    assert_eq!(hub.pending_faults(), 0);
    // Give the mock's writer a moment to notice the closed sockets.
    std::thread::sleep(Duration::from_millis(300));
    let pushed = hub.padding_bytes_served();
    // Reading the bodies up to the 64 MiB limit would have pulled at least 2 × 64 MiB out of
    // the mock; refusing on `Content-Length` leaves only what the socket buffers took.
    assert!(
        pushed < 32 << 20,
        "the client let {pushed} bytes of padding through"
    );
    sandbox.check(None);

    // The limit is not a ban on big listings: 1 MB of padding is fine.
    hub.push_fault(Target::Api, Fault::PaddedJson(1 << 20));
    pull(&sandbox.options(&hub)).expect("padded but small enough");
}

/// A tree whose `rel="next"` loops back to its first page, or points at `file:`, is refused at
/// once rather than followed 10 000 times.
#[test]
fn tree_pagination_loops_and_bad_links_are_refused() {
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", model_files());
    hub.set_listing_sizes(false);
    let sandbox = Sandbox::new("hostile-tree-loop");
    let first = format!(
        "{}/api/models/{REPO}/tree/{sha}?recursive=true&expand=false",
        hub.endpoint()
    );
    hub.set_tree_next_link(Some(&first));
    let err = pull(&sandbox.options(&hub)).expect_err("loop");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    assert!(err.to_string().contains("loops"), "{err}");
    let pages = hub
        .requests()
        .iter()
        .filter(|r| r.path.contains("/tree/"))
        .count();
    assert_eq!(pages, 1, "the loop is seen before the second fetch");
    hub.set_tree_next_link(Some("file:///etc/passwd"));
    let err = pull(&sandbox.options(&hub)).expect_err("file link");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    sandbox.check(None);
}

// ---------------------------------------------------------------------------------------------
// Redirects and the token
// ---------------------------------------------------------------------------------------------

/// A redirect loop on `/resolve` (and on the API) is cut after 5 hops with `InvalidResponse`.
#[test]
fn redirect_loops_are_cut_after_five_hops() {
    let files = model_files();
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", files.clone());
    let sandbox = Sandbox::new("hostile-loop");
    let me = format!("/{REPO}/resolve/{sha}/config.json");
    for _ in 0..20 {
        hub.push_fault(
            Target::Resolve("config.json".into()),
            Fault::Redirect {
                status: 302,
                location: me.clone(),
            },
        );
    }
    let err = pull(&sandbox.options(&hub)).expect_err("loop");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    assert!(err.to_string().contains("more than 5 redirects"), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
    let hops = hub
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/config.json"))
        .count();
    assert_eq!(hops, 6, "the first request and 5 redirects followed");
    sandbox.check(Some(&sha));
    sandbox.assert_no_final_files(&sha, &files);

    hub.clear_faults();
    hub.clear_requests();
    let api = format!("/api/models/{REPO}/revision/main?blobs=true");
    for _ in 0..10 {
        hub.push_fault(
            Target::Api,
            Fault::Redirect {
                status: 307,
                location: api.clone(),
            },
        );
    }
    let err = pull(&sandbox.options(&hub)).expect_err("api loop");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    assert_eq!(hub.requests().len(), 6);
}

/// Redirects to `file:`, `ftp:` and other schemes (from the Hub and from the CDN), to a URL
/// without authority, or with an empty or broken `Location`, are refused: `InvalidResponse`, no
/// request leaves for them, nothing is written outside the snapshot.
#[test]
fn redirects_to_other_schemes_are_refused() {
    let files = model_files();
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", files.clone());
    for location in [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "ftp://127.0.0.1/model.safetensors",
        "javascript:alert(1)",
        "data:text/plain,pwned",
        "gopher://127.0.0.1:70/",
        "http:/no-authority",
        "http://",
        "",
        "/with space",
    ] {
        for target in [
            Target::Resolve("config.json".into()),
            Target::Cdn("model.safetensors".into()),
        ] {
            let sandbox = Sandbox::new("hostile-schemes");
            hub.push_fault(
                target.clone(),
                Fault::Redirect {
                    status: 302,
                    location: location.into(),
                },
            );
            let err = pull(&sandbox.options(&hub)).expect_err(location);
            assert_eq!(
                err.status(),
                Status::InvalidResponse,
                "{location:?} {target:?}: {err}"
            );
            let file = match &target {
                Target::Resolve(f) | Target::Cdn(f) => f.clone(),
                _ => unreachable!(),
            };
            assert!(err.to_string().contains(&file), "{err}");
            assert_eq!(hub.pending_faults(), 0);
            sandbox.check(Some(&sha));
            assert_no_partial_bytes(&sandbox, &sha);
        }
    }
}

/// The token goes to the endpoint's origin only: a redirect from the Hub to another port on the
/// same host (for a git file and for an LFS file), or a tree page linked on another port, gets
/// no `Authorization`; a same-origin redirect keeps it.
#[test]
fn token_goes_only_to_the_endpoint_origin_across_redirects() {
    let files = model_files();
    let hub = MockHub::start();
    let other = MockHub::start();
    let sha = hub.commit(REPO, "main", files.clone());
    assert_eq!(
        other.commit(REPO, "main", files.clone()),
        sha,
        "same commit on both"
    );
    hub.set_private(REPO, Some("hf_secret"));
    let elsewhere = |path: &str| format!("{}/{REPO}/resolve/{sha}/{path}", other.endpoint());
    hub.push_fault(
        Target::Resolve("config.json".into()),
        Fault::Redirect {
            status: 302,
            location: elsewhere("config.json"),
        },
    );
    hub.push_fault(
        Target::Resolve("model.safetensors".into()),
        Fault::Redirect {
            status: 307,
            location: elsewhere("model.safetensors"),
        },
    );
    // Same origin, relative: the token must still be sent (the repo is private).
    hub.push_fault(
        Target::Resolve("tokenizer.json".into()),
        Fault::Redirect {
            status: 307,
            location: format!("/{REPO}/resolve/{sha}/tokenizer.json"),
        },
    );
    let sandbox = Sandbox::new("hostile-token");
    let mut o = sandbox.options(&hub);
    o.token = Some("hf_secret".into());
    pull(&o).expect("pull through the other port");
    assert_eq!(hub.pending_faults(), 0);
    let snap = sandbox
        .cache()
        .join("models--org--model/snapshots")
        .join(&sha);
    for f in &files {
        assert_eq!(
            fs::read(snap.join(&f.path)).expect("file"),
            content(&files, &f.path)
        );
    }
    let away = other.requests();
    assert!(away.len() >= 3, "{away:?}");
    for r in &away {
        assert_eq!(
            r.authorization, None,
            "token leaked to {} {}",
            r.host, r.path
        );
    }
    for r in hub
        .requests()
        .iter()
        .filter(|r| !r.path.starts_with("/cdn/"))
    {
        assert_eq!(
            r.authorization.as_deref(),
            Some("Bearer hf_secret"),
            "{}",
            r.path
        );
    }
    sandbox.check_committed(&sha);

    // A tree page on another port: listed without the token (and answered: public there).
    let hub = MockHub::start();
    hub.commit(REPO, "main", files.clone());
    hub.set_private(REPO, Some("hf_secret"));
    hub.set_listing_sizes(false);
    other.clear_requests();
    let next = format!(
        "{}/api/models/{REPO}/tree/{sha}?recursive=true&expand=false",
        other.endpoint()
    );
    hub.set_tree_next_link(Some(&next));
    let sandbox = Sandbox::new("hostile-token-tree");
    let mut o = sandbox.options(&hub);
    o.token = Some("hf_secret".into());
    // The other host's page repeats the first page's paths: refused as listed twice.
    let err = pull(&o).expect_err("duplicate listing");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    let away = other.requests();
    assert_eq!(away.len(), 1, "{away:?}");
    assert_eq!(away[0].authorization, None, "token leaked to the tree link");
}
