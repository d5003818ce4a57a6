//! Crash safety: what a crash or power loss can leave on disk is handled, never trusted blindly.

use std::fs;
use std::io::Write;
use std::time::Duration;

use crate::common::{TempDir, options, tree};
use lemon_pull::Silent;
use lemon_pull::{Event, Flow};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";
const MB: usize = 1 << 20;

fn pause_at(o: &lemon_pull::PullOptions, bytes: u64) {
    let r = lemon_pull::pull(o, &mut |ev: &Event<'_>| match ev {
        Event::Progress { file_done, .. } if *file_done > bytes => Flow::Cancel,
        _ => Flow::Continue,
    });
    assert!(matches!(r, Err(lemon_pull::Error::Cancelled)));
}

/// A pull of one LFS file of `size` bytes, paused past 2 MiB: what a crash test then damages.
struct Paused {
    hub: MockHub,
    data: Vec<u8>,
    /// Kept for its lifetime: the cache is removed when the test ends.
    _cache: TempDir,
    options: lemon_pull::PullOptions,
    /// `snapshots/<commit>/`.
    snap: std::path::PathBuf,
    partial: std::path::PathBuf,
}

impl Paused {
    fn new(tag: &str, seed: u64, size: usize) -> Paused {
        let hub = MockHub::start();
        let data = pseudo_random_bytes(seed, size);
        let sha = hub.commit(
            REPO,
            "main",
            vec![MockFile::lfs("model.gguf", data.clone())],
        );
        hub.set_rate_limit(Some(8 * MB as u64));
        let cache = TempDir::new(tag);
        let options = options(&hub.endpoint(), cache.path(), REPO);
        pause_at(&options, 2 * MB as u64);
        let snap = cache.path().join("models--org--model/snapshots").join(&sha);
        let partial = snap.join("model.gguf.partial");
        Paused {
            hub,
            data,
            _cache: cache,
            options,
            snap,
            partial,
        }
    }

    /// Full speed again, counting afresh once the hub has noticed the dropped connection.
    fn unthrottle(&self) {
        self.hub.set_rate_limit(None);
        std::thread::sleep(Duration::from_millis(300));
        self.hub.reset_counters();
    }
}

#[test]
fn zero_filled_tail_after_power_loss_is_cut_back_to_the_checkpoint() {
    let p = Paused::new("crash-zeros", 1, 8 * MB);
    let partial = &p.partial;
    let checkpointed = fs::metadata(partial).expect("partial").len();
    // What a power loss can leave: the file grew, but the new pages never reached the disk.
    fs::OpenOptions::new()
        .append(true)
        .open(partial)
        .and_then(|mut f| f.write_all(&vec![0u8; MB]))
        .expect("zero tail");
    p.unthrottle();
    let out = lemon_pull::pull(&p.options, &mut Silent).expect("pull");
    assert_eq!(fs::read(p.snap.join("model.gguf")).expect("file"), p.data);
    assert_eq!(
        p.hub.bytes_served(REPO, "model.gguf"),
        (8 * MB) as u64 - checkpointed,
        "resumed at the checkpoint"
    );
    assert_eq!(out.totals.bytes_reused, checkpointed);
}

#[test]
fn corrupted_bytes_before_the_checkpoint_restart_the_file() {
    let p = Paused::new("crash-flip", 2, 6 * MB);
    let mut bytes = fs::read(&p.partial).expect("partial");
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff; // inside the checkpointed tail block
    fs::write(&p.partial, &bytes).expect("corrupt");
    p.unthrottle();
    lemon_pull::pull(&p.options, &mut Silent).expect("pull");
    assert_eq!(fs::read(p.snap.join("model.gguf")).expect("file"), p.data);
    assert_eq!(
        p.hub.bytes_served(REPO, "model.gguf"),
        (6 * MB) as u64,
        "untrustworthy partial discarded"
    );
}

#[test]
fn partial_longer_than_the_file_is_not_trusted() {
    let hub = MockHub::start();
    let data = pseudo_random_bytes(3, 2 * MB);
    let sha = hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", data.clone())],
    );
    let cache = TempDir::new("crash-long");
    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    fs::create_dir_all(&snap).expect("snap");
    let mut long = data.clone();
    long.extend_from_slice(b"trailing garbage");
    fs::write(snap.join("model.gguf.partial"), &long).expect("partial");
    lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent).expect("pull");
    assert_eq!(fs::read(snap.join("model.gguf")).expect("file"), data);
    assert_eq!(hub.bytes_served(REPO, "model.gguf"), (2 * MB) as u64);
}

#[test]
fn manifest_pointing_elsewhere_never_steers_writes() {
    let hub = MockHub::start();
    let data = pseudo_random_bytes(4, MB);
    let sha = hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", data.clone())],
    );
    let root = TempDir::new("crash-elsewhere");
    let cache = root.path().join("cache");
    let elsewhere = root.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).expect("elsewhere");
    let snap = cache.join("models--org--model/snapshots").join(&sha);
    fs::create_dir_all(&snap).expect("snap");
    // A manifest (from a bug, a hand edit or another tool) that claims the files live elsewhere.
    let manifest = format!(
        r#"{{"repo_id":"org/model","commit_hash":"{sha}","download_path":"{e}","files":[{{"name":"model.gguf","download_path":"{e}","size":1}}]}}"#,
        e = elsewhere.display()
    );
    fs::write(snap.join(".download_manifest.json"), manifest).expect("manifest");
    lemon_pull::pull(&options(&hub.endpoint(), &cache, REPO), &mut Silent).expect("pull");
    assert_eq!(fs::read(snap.join("model.gguf")).expect("file"), data);
    assert!(
        tree(&elsewhere).is_empty(),
        "nothing written where the manifest pointed"
    );
    assert!(!snap.join(".download_manifest.json").exists());
}
