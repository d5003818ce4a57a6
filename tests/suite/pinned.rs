//! Pinned pulls with exact file lists (issue 12, item 2): lemonade lists the repository and
//! selects the files itself, then asks for exactly those files at exactly that commit — even if
//! the branch moves in between — and for `refs/main` to name that commit afterwards. When it
//! passes sizes and content ids, no listing call is needed; every byte is still verified.

use std::fs;

use crate::common::{TempDir, options};
use lemon_pull::{Error, FileSpec, PullOptions, RepoSpec, Silent, Status};
use mock_hub::{MockFile, MockHub, content, pseudo_random_bytes};
use sha2::{Digest, Sha256};

const REPO: &str = "org/model";

fn files_v1() -> Vec<MockFile> {
    vec![
        MockFile::regular("config.json", br#"{"v": 1}"#.to_vec()),
        MockFile::lfs("model-[Q4] final (1).gguf", pseudo_random_bytes(1, 2 << 20)),
        MockFile::lfs("other.gguf", pseudo_random_bytes(2, 1 << 20)),
    ]
}

fn files_v2() -> Vec<MockFile> {
    vec![
        MockFile::regular("config.json", br#"{"v": 2}"#.to_vec()),
        MockFile::lfs("model-[Q4] final (1).gguf", pseudo_random_bytes(3, 2 << 20)),
    ]
}

fn read_ref(cache: &std::path::Path, repo_dir: &str) -> String {
    fs::read_to_string(cache.join(repo_dir).join("refs/main")).expect("refs/main")
}

fn exact(paths: &[&str]) -> Vec<FileSpec> {
    paths.iter().map(|p| FileSpec::new(*p)).collect()
}

#[test]
fn the_pinned_commit_lands_even_after_main_moved_and_refs_main_names_it() {
    let hub = MockHub::start();
    let v1 = files_v1();
    let pinned = hub.commit(REPO, "main", v1.clone());
    // lemonade listed v1 and chose its files; then the repository moved on.
    let moved = hub.commit(REPO, "main", files_v2());
    assert_ne!(pinned, moved);
    let tmp = TempDir::new("pinned-moved");
    let mut opts = options(&hub.endpoint(), tmp.path(), REPO);
    opts.commit = Some(pinned.clone());
    opts.files = exact(&["config.json", "model-[Q4] final (1).gguf"]);
    let outcome = lemon_pull::pull(&opts, &mut Silent).expect("pinned pull");
    assert_eq!(outcome.commit, pinned);
    assert_eq!(outcome.files, 2, "exactly the two files, no glob meaning");
    let snap = tmp
        .path()
        .join("models--org--model/snapshots")
        .join(&pinned);
    for path in ["config.json", "model-[Q4] final (1).gguf"] {
        assert!(
            fs::read(snap.join(path)).expect(path) == content(&v1, path),
            "{path}"
        );
    }
    assert!(!snap.join("other.gguf").exists());
    assert_eq!(read_ref(tmp.path(), "models--org--model"), pinned);
}

#[test]
fn a_missing_exact_file_is_file_not_found_naming_it() {
    let hub = MockHub::start();
    let sha = hub.commit(REPO, "main", files_v1());
    let tmp = TempDir::new("pinned-missing");
    let mut opts = options(&hub.endpoint(), tmp.path(), REPO);
    opts.commit = Some(sha);
    // As a glob, `[o]ther.gguf` would match `other.gguf`: an exact list gives it no meaning.
    opts.files = exact(&["config.json", "[o]ther.gguf"]);
    let e = lemon_pull::pull(&opts, &mut Silent).expect_err("no file is named [o]ther.gguf");
    assert_eq!(e.status(), Status::FileNotFound, "{e}");
    assert!(e.to_string().contains("[o]ther.gguf"), "{e}");
    assert!(!tmp.path().join("models--org--model/refs/main").exists());
}

#[test]
fn caller_metadata_spares_the_listing_and_a_lying_size_is_caught() {
    let hub = MockHub::start();
    let v1 = files_v1();
    let sha = hub.commit(REPO, "main", v1.clone());
    let model = content(&v1, "model-[Q4] final (1).gguf");
    let spec = |size: u64| FileSpec {
        path: "model-[Q4] final (1).gguf".into(),
        size: Some(size),
        sha256: Some(hex(&Sha256::digest(&model))),
        git_sha1: None,
    };
    let pinned = |tmp: &TempDir, size: u64| -> PullOptions {
        let mut o = options(&hub.endpoint(), tmp.path(), REPO);
        o.commit = Some(sha.clone());
        o.files = vec![spec(size)];
        o
    };

    hub.clear_requests();
    let tmp = TempDir::new("pinned-given");
    lemon_pull::pull(&pinned(&tmp, model.len() as u64), &mut Silent).expect("pull");
    let api_calls = hub
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .count();
    assert_eq!(api_calls, 0, "sizes and ids were given: no listing");

    let lying = TempDir::new("pinned-lying");
    let e = lemon_pull::pull(&pinned(&lying, model.len() as u64 - 1000), &mut Silent)
        .expect_err("the size lies");
    assert!(
        matches!(
            e.status(),
            Status::VerificationFailed | Status::InvalidResponse
        ),
        "{e}"
    );
    let snap = lying.path().join("models--org--model/snapshots").join(&sha);
    assert!(
        !snap.join("model-[Q4] final (1).gguf").exists(),
        "never under its final name"
    );
}

#[test]
fn extra_repositories_are_pulled_exactly_at_their_commits() {
    let hub = MockHub::start();
    let main = hub.commit(REPO, "main", files_v1());
    let vae_files = vec![
        MockFile::lfs("split/vae.safetensors", pseudo_random_bytes(9, 1 << 20)),
        MockFile::regular("README.md", b"vae".to_vec()),
    ];
    let vae = hub.commit("org/vae", "main", vae_files.clone());
    hub.commit(
        "org/vae",
        "main",
        vec![MockFile::regular("README.md", b"moved".to_vec())],
    );
    let tmp = TempDir::new("pinned-repos");
    let mut opts = options(&hub.endpoint(), tmp.path(), REPO);
    opts.commit = Some(main.clone());
    opts.files = exact(&["config.json"]);
    opts.repos = vec![RepoSpec {
        repo: "org/vae".into(),
        revision: None,
        commit: Some(vae.clone()),
        files: exact(&["split/vae.safetensors"]),
    }];
    let outcome = lemon_pull::pull(&opts, &mut Silent).expect("pull");
    assert_eq!(outcome.repos.len(), 2);
    assert_eq!(outcome.repos[1].commit, vae);
    let got = fs::read(
        tmp.path()
            .join("models--org--vae/snapshots")
            .join(&vae)
            .join("split/vae.safetensors"),
    )
    .expect("vae file");
    assert!(got == content(&vae_files, "split/vae.safetensors"));
    assert_eq!(read_ref(tmp.path(), "models--org--vae"), vae);
}

#[test]
fn bad_pins_and_mixed_selections_are_invalid_arguments() {
    let tmp = TempDir::new("pinned-invalid");
    let mut opts = options("http://127.0.0.1:9", tmp.path(), REPO);
    opts.commit = Some("main".into());
    let e = lemon_pull::pull(&opts, &mut Silent).expect_err("not a sha");
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let mut opts = options("http://127.0.0.1:9", tmp.path(), REPO);
    opts.files = exact(&["a.gguf"]);
    opts.include = vec!["*.json".into()];
    let e = lemon_pull::pull(&opts, &mut Silent).expect_err("files and globs");
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let mut opts = options("http://127.0.0.1:9", tmp.path(), REPO);
    opts.files = vec![FileSpec {
        sha256: Some("xyz".into()),
        ..FileSpec::new("a.gguf")
    }];
    let e = lemon_pull::pull(&opts, &mut Silent).expect_err("bad sha256");
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let mut opts = options("http://127.0.0.1:9", tmp.path(), REPO);
    opts.files = exact(&["../escape.gguf"]);
    let e = lemon_pull::pull(&opts, &mut Silent).expect_err("unsafe path from the caller");
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// lemonade's keep-previous-snapshot rule (issue 12, item 6).
mod keep_previous {
    use super::*;

    fn model(readme: &str) -> Vec<MockFile> {
        vec![
            MockFile::regular("README.md", readme.as_bytes().to_vec()),
            MockFile::regular("config.json", br#"{"v": 1}"#.to_vec()),
            MockFile::lfs("model-Q4_K_M.gguf", pseudo_random_bytes(4, 2 << 20)),
        ]
    }

    fn opts(hub: &MockHub, tmp: &TempDir) -> PullOptions {
        let mut o = options(&hub.endpoint(), tmp.path(), REPO);
        o.variant = Some("Q4_K_M".into());
        o.keep_unchanged_snapshot = true;
        o
    }

    fn folders(tmp: &TempDir) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(tmp.path().join("models--org--model/snapshots"))
            .expect("snapshots")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_commit_that_changed_only_an_unselected_file_keeps_the_snapshot() {
        let hub = MockHub::start();
        let first = hub.commit(REPO, "main", model("v1"));
        let tmp = TempDir::new("keep-unchanged");
        lemon_pull::pull(&opts(&hub, &tmp), &mut Silent).expect("first pull");
        let gguf = tmp
            .path()
            .join("models--org--model/snapshots")
            .join(&first)
            .join("model-Q4_K_M.gguf");
        let mtime = fs::metadata(&gguf)
            .and_then(|m| m.modified())
            .expect("mtime");
        let moved = hub.commit(REPO, "main", model("v2: only the README changed"));
        assert_ne!(first, moved);
        hub.reset_counters();
        let outcome = lemon_pull::pull(&opts(&hub, &tmp), &mut Silent).expect("second pull");
        assert_eq!(outcome.commit, first, "the kept snapshot is the active one");
        assert!(outcome.snapshot_path.ends_with(&first));
        assert_eq!(read_ref(tmp.path(), "models--org--model"), first);
        assert_eq!(folders(&tmp), vec![first.clone()], "no new folder");
        assert_eq!(hub.bytes_served_total(), 0, "nothing downloaded");
        assert_eq!(
            fs::metadata(&gguf)
                .and_then(|m| m.modified())
                .expect("mtime"),
            mtime
        );
    }

    #[test]
    fn a_changed_selected_file_moves_the_ref_as_usual() {
        let hub = MockHub::start();
        hub.commit(REPO, "main", model("v1"));
        let tmp = TempDir::new("keep-changed");
        lemon_pull::pull(&opts(&hub, &tmp), &mut Silent).expect("first pull");
        let mut changed = model("v1");
        changed[1] = MockFile::regular("config.json", br#"{"v": 2}"#.to_vec());
        let moved = hub.commit(REPO, "main", changed);
        let outcome = lemon_pull::pull(&opts(&hub, &tmp), &mut Silent).expect("second pull");
        assert_eq!(outcome.commit, moved);
        assert_eq!(read_ref(tmp.path(), "models--org--model"), moved);
    }

    #[test]
    fn without_the_option_the_ref_moves_even_when_nothing_selected_changed() {
        let hub = MockHub::start();
        hub.commit(REPO, "main", model("v1"));
        let tmp = TempDir::new("keep-off");
        let mut o = opts(&hub, &tmp);
        o.keep_unchanged_snapshot = false;
        lemon_pull::pull(&o, &mut Silent).expect("first pull");
        let moved = hub.commit(REPO, "main", model("v2"));
        let outcome = lemon_pull::pull(&o, &mut Silent).expect("second pull");
        assert_eq!(outcome.commit, moved);
    }
}
