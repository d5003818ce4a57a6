//! `status` and `gc` of a repository's cache folder.

use std::fs;

use crate::common::{TempDir, options};
use lemon_pull::Cancel;
use lemon_pull::Silent;
use lemon_pull::{Event, Flow};
use lemon_pull::{Registry, gc, status};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";

#[test]
fn status_and_gc_of_committed_superseded_and_in_progress_snapshots() {
    let hub = MockHub::start();
    let cache = TempDir::new("housekeeping");
    let o = options(&hub.endpoint(), cache.path(), REPO);
    let v1 = hub.commit(
        REPO,
        "main",
        vec![MockFile::regular("config.json", b"1".to_vec())],
    );
    lemon_pull::pull(&o, &mut Silent).expect("v1");
    let v2 = hub.commit(
        REPO,
        "main",
        vec![MockFile::regular("config.json", b"22".to_vec())],
    );
    lemon_pull::pull(&o, &mut Silent).expect("v2");
    let v3 = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", b"333".to_vec()),
            MockFile::lfs("m.gguf", pseudo_random_bytes(1, 4 << 20)),
        ],
    );
    hub.set_rate_limit(Some(2 << 20));
    let paused = lemon_pull::pull(&o, &mut |ev: &Event<'_>| match ev {
        Event::Progress { file_done, .. } if *file_done > 500_000 => Flow::Cancel,
        _ => Flow::Continue,
    });
    assert!(paused.is_err());

    let st = status(cache.path(), REPO, Registry::HuggingFace).expect("status");
    let by = |sha: &str| {
        st.snapshots
            .iter()
            .find(|s| s.name == sha)
            .expect(sha)
            .clone()
    };
    let (s1, s2, s3) = (by(&v1), by(&v2), by(&v3));
    assert!(s1.committed && s1.refs.is_empty());
    assert!(s2.committed && s2.refs == ["main"]);
    assert!(!s3.committed && s3.refs.is_empty());
    assert_eq!((s3.files, s3.partials), (1, 1));
    assert!(s3.bytes_partial > 500_000);
    assert_eq!(
        s3.bytes_missing,
        Some(3 + (4 << 20) - s3.bytes_complete - s3.bytes_partial)
    );
    assert_eq!(s3.bytes_salvageable, s3.bytes_complete + s3.bytes_partial);

    let dry = gc(
        cache.path(),
        REPO,
        Registry::HuggingFace,
        false,
        &Cancel::default(),
    )
    .expect("dry run");
    let mut names: Vec<_> = dry.snapshots.iter().map(|s| s.0.clone()).collect();
    names.sort();
    let mut want = vec![v1.clone(), v3.clone()];
    want.sort();
    assert_eq!(names, want);
    assert!(!dry.applied);
    let root = cache.path().join("models--org--model/snapshots");
    assert!(
        root.join(&v1).exists() && root.join(&v3).exists(),
        "dry run removes nothing"
    );

    let stamps = cache.path().join("models--org--model/.lemon-pull/verified");
    assert!(stamps.join(format!("{v1}.json")).exists());
    let done = gc(
        cache.path(),
        REPO,
        Registry::HuggingFace,
        true,
        &Cancel::default(),
    )
    .expect("gc");
    assert!(done.applied);
    assert!(!root.join(&v1).exists() && !root.join(&v3).exists());
    assert!(
        !stamps.join(format!("{v1}.json")).exists() && stamps.join(format!("{v2}.json")).exists(),
        "the stamps of a removed snapshot go with it"
    );
    assert_eq!(
        fs::read(root.join(&v2).join("config.json")).expect("kept"),
        b"22"
    );
}

#[test]
fn gc_removes_nothing_without_a_committed_ref() {
    let cache = TempDir::new("housekeeping-none");
    let snap = cache.path().join("models--org--model/snapshots/abc");
    fs::create_dir_all(&snap).expect("snap");
    fs::write(snap.join("m.gguf.partial"), b"xx").expect("partial");
    let r = gc(
        cache.path(),
        REPO,
        Registry::HuggingFace,
        true,
        &Cancel::default(),
    )
    .expect("gc");
    assert!(r.snapshots.is_empty() && r.note.is_some());
    assert!(snap.join("m.gguf.partial").exists());
}

/// A main repo's manifest also lists the component files it placed in another repo's folder:
/// only this folder's own files count as missing here.
#[test]
fn missing_bytes_count_only_the_folders_own_files() {
    let cache = TempDir::new("housekeeping-components");
    let snap = cache.path().join("models--org--model/snapshots/abc");
    fs::create_dir_all(&snap).expect("snap");
    fs::write(snap.join("m.gguf.partial"), b"xx").expect("partial");
    let own = snap.display().to_string();
    let manifest = serde_json::json!({
        "repo_id": REPO, "commit_hash": "abc", "download_path": own, "files_count": 2,
        "files": [
            {"name": "m.gguf", "size": 10, "download_path": own},
            {"name": "vae.safetensors", "size": 1000,
             "download_path": cache.path().join("models--org--vae/snapshots/def").display().to_string()},
        ]
    });
    fs::write(snap.join(".download_manifest.json"), manifest.to_string()).expect("manifest");
    let st = status(cache.path(), REPO, Registry::HuggingFace).expect("status");
    assert_eq!(st.snapshots[0].bytes_missing, Some(8));
}
