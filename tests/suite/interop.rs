//! Other tools' caches: reuse huggingface_hub / hf-hub / llama.cpp blobs and adopt their abandoned
//! partials by content id, never disturbing a live download or another tool's complete blob.
//! The fixtures are byte-exact recreations of those layouts (see shared/reference/anchors.md).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::{TempDir, options};
use lemon_pull::{Silent, Source};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";
const MB: usize = 1 << 20;

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn age(path: &Path, secs: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).expect("open");
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .expect("mtime");
}

#[cfg(unix)]
#[test]
fn huggingface_hub_blob_layout_is_reused_by_hardlink() {
    use std::os::unix::fs::MetadataExt;
    let hub = MockHub::start();
    let data = pseudo_random_bytes(1, 3 * MB);
    let sha = hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", data.clone())],
    );
    let cache = TempDir::new("interop-blobs");
    let repo_dir = cache.path().join("models--org--model");
    let etag = sha256_hex(&data);
    // huggingface_hub's layout for an older commit: the blob, and a relative symlink to it.
    fs::create_dir_all(repo_dir.join("blobs")).expect("blobs");
    fs::write(repo_dir.join("blobs").join(&etag), &data).expect("blob");
    let old = repo_dir.join("snapshots").join("a".repeat(40));
    fs::create_dir_all(&old).expect("old snapshot");
    std::os::unix::fs::symlink(format!("../../blobs/{etag}"), old.join("model.gguf"))
        .expect("symlink");
    fs::create_dir_all(repo_dir.join("refs")).expect("refs");
    fs::write(repo_dir.join("refs/main"), "a".repeat(40)).expect("ref");

    let out =
        lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent).expect("pull");
    assert_eq!(hub.bytes_served(REPO, "model.gguf"), 0, "reused the blob");
    assert_eq!(out.plan[0].source, Source::Link);
    let ours = repo_dir.join("snapshots").join(&sha).join("model.gguf");
    let meta = fs::symlink_metadata(&ours).expect("file");
    assert!(
        meta.file_type().is_file(),
        "a real file, as lemonade expects"
    );
    assert_eq!(
        meta.ino(),
        fs::metadata(repo_dir.join("blobs").join(&etag))
            .expect("blob")
            .ino()
    );
    assert_eq!(fs::read(&ours).expect("read"), data);
    assert!(
        repo_dir.join("blobs").join(&etag).exists(),
        "another tool's blob is never removed"
    );
    assert!(
        fs::symlink_metadata(old.join("model.gguf")).is_ok(),
        "its snapshot is untouched"
    );
}

#[cfg(unix)]
#[test]
fn shared_store_symlinked_blob_is_followed() {
    let hub = MockHub::start();
    let data = pseudo_random_bytes(2, 2 * MB);
    let sha = hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", data.clone())],
    );
    let cache = TempDir::new("interop-shared");
    let store = cache.path().join("blobs/ab");
    fs::create_dir_all(&store).expect("store");
    fs::write(store.join("xethash"), &data).expect("shared blob");
    let blobs = cache.path().join("models--org--model/blobs");
    fs::create_dir_all(&blobs).expect("blobs");
    std::os::unix::fs::symlink(store.join("xethash"), blobs.join(sha256_hex(&data))).expect("link");
    lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent).expect("pull");
    assert_eq!(hub.bytes_served(REPO, "model.gguf"), 0);
    let ours = cache
        .path()
        .join("models--org--model/snapshots")
        .join(&sha)
        .join("model.gguf");
    assert!(
        fs::symlink_metadata(&ours)
            .expect("file")
            .file_type()
            .is_file()
    );
    assert_eq!(fs::read(&ours).expect("read"), data);
}

#[test]
fn abandoned_partials_of_other_tools_are_adopted() {
    for (tool, name) in [
        ("huggingface_hub <= 1.17", "{etag}.incomplete"),
        ("huggingface_hub >= 1.18", "{etag}.1a2b3c4d.incomplete"),
        ("hf-hub", "{etag}.part"),
        ("llama.cpp", "{etag}.downloadInProgress"),
    ] {
        let hub = MockHub::start();
        let data = pseudo_random_bytes(3, 4 * MB);
        let sha = hub.commit(
            REPO,
            "main",
            vec![MockFile::lfs("model.gguf", data.clone())],
        );
        let cache = TempDir::new("interop-partial");
        let blobs = cache.path().join("models--org--model/blobs");
        fs::create_dir_all(&blobs).expect("blobs");
        let partial = blobs.join(name.replace("{etag}", &sha256_hex(&data)));
        fs::write(&partial, &data[..3 * MB]).expect("partial");
        age(&partial, 3600);
        let out = lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent)
            .expect(tool);
        assert_eq!(
            hub.bytes_served(REPO, "model.gguf"),
            MB as u64,
            "{tool}: resumed its partial"
        );
        assert_eq!(out.totals.bytes_salvaged, (3 * MB) as u64, "{tool}");
        let ours = cache
            .path()
            .join("models--org--model/snapshots")
            .join(&sha)
            .join("model.gguf");
        assert_eq!(fs::read(ours).expect("file"), data, "{tool}");
    }
}

#[test]
fn live_or_fresh_partials_of_other_tools_are_left_alone() {
    let hub = MockHub::start();
    let data = pseudo_random_bytes(4, 2 * MB);
    hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", data.clone())],
    );
    let cache = TempDir::new("interop-live");
    let etag = sha256_hex(&data);
    let blobs = cache.path().join("models--org--model/blobs");
    fs::create_dir_all(&blobs).expect("blobs");
    // Held by a live huggingface_hub process: its lock is taken.
    let held = blobs.join(format!("{etag}.incomplete"));
    fs::write(&held, &data[..MB]).expect("partial");
    age(&held, 3600);
    let locks = cache.path().join(".locks/models--org--model");
    fs::create_dir_all(&locks).expect("locks");
    let lock = fs::File::create(locks.join(format!("{etag}.lock"))).expect("lock file");
    lock.lock().expect("hold the lock");
    // Written a moment ago by a tool that takes no lock.
    let fresh = blobs.join(format!("{etag}.downloadInProgress"));
    fs::write(&fresh, &data[..MB / 2]).expect("fresh partial");

    lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent).expect("pull");
    assert_eq!(
        hub.bytes_served(REPO, "model.gguf"),
        (2 * MB) as u64,
        "downloaded in full"
    );
    assert_eq!(fs::metadata(&held).expect("still there").len(), MB as u64);
    assert_eq!(
        fs::metadata(&fresh).expect("still there").len(),
        (MB / 2) as u64
    );
    drop(lock);
}
