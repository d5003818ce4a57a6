//! Resume across commit changes: salvage from orphaned snapshots, by content id, losing nothing.
//! Every test asserts on the bytes the hub served.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{Seen, TempDir, folders, options, pull_and_pause, pull_recording, tree};
use lemon_pull::{Component, Event, Flow};
use lemon_pull::{Silent, Source};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";
const MB: usize = 1 << 20;

fn snapshots(cache: &Path) -> PathBuf {
    cache.join("models--org--model/snapshots")
}

fn settle_and_reset(hub: &MockHub) {
    // A cancelled transfer's server thread may still count a few in-flight bytes.
    std::thread::sleep(Duration::from_millis(400));
    hub.reset_counters();
}

fn big(seed: u64, n: usize) -> Vec<u8> {
    pseudo_random_bytes(seed, n)
}

#[test]
fn commit_change_during_pause_resumes_unchanged_file_in_new_snapshot() {
    let hub = MockHub::start();
    let weights = big(1, 8 * MB);
    let old = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("README.md", b"v1".to_vec()),
            MockFile::lfs("model.gguf", weights.clone()),
        ],
    );
    hub.set_rate_limit(Some(6 * MB as u64));
    let cache = TempDir::new("salvage-same");
    let o = options(&hub.endpoint(), cache.path(), REPO);
    pull_and_pause(&o, "model.gguf", 3 * MB as u64);
    let partial = fs::metadata(
        snapshots(cache.path())
            .join(&old)
            .join("model.gguf.partial"),
    )
    .expect("partial")
    .len();

    let new = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("README.md", b"v2".to_vec()),
            MockFile::lfs("model.gguf", weights.clone()),
        ],
    );
    hub.set_rate_limit(None);
    settle_and_reset(&hub);
    let (r, seen) = pull_recording(&o);
    let out = r.expect("resume after commit change");
    assert_eq!(out.commit, new);
    assert_eq!(
        hub.bytes_served(REPO, "model.gguf"),
        8 * MB as u64 - partial,
        "only the remainder"
    );
    assert_eq!(out.totals.bytes_salvaged, partial);
    assert!(out.totals.bytes_reused >= partial);
    assert_eq!(
        fs::read(snapshots(cache.path()).join(&new).join("model.gguf")).expect("file"),
        weights
    );
    assert_eq!(
        folders(&snapshots(cache.path())),
        [new.as_str()],
        "old folder is gone"
    );
    assert_eq!(
        fs::read_to_string(cache.path().join("models--org--model/refs/main")).expect("ref"),
        new
    );
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Complete { salvaged, .. } if *salvaged == partial))
    );
}

#[test]
fn changed_content_is_never_resumed_into_a_corrupt_file() {
    let hub = MockHub::start();
    hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", big(1, 8 * MB))],
    );
    hub.set_rate_limit(Some(6 * MB as u64));
    let cache = TempDir::new("salvage-changed");
    let o = options(&hub.endpoint(), cache.path(), REPO);
    pull_and_pause(&o, "model.gguf", 2 * MB as u64);

    let changed = big(2, 8 * MB); // same size, different bytes
    let new = hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", changed.clone())],
    );
    hub.set_rate_limit(None);
    settle_and_reset(&hub);
    let out = lemon_pull::pull(&o, &mut Silent).expect("pull");
    assert_eq!(
        fs::read(snapshots(cache.path()).join(&new).join("model.gguf")).expect("file"),
        changed
    );
    assert_eq!(
        hub.bytes_served(REPO, "model.gguf"),
        8 * MB as u64,
        "whole file: the old partial is other content"
    );
    assert_eq!(out.totals.bytes_salvaged, 0);
    assert_eq!(
        folders(&snapshots(cache.path())),
        [new],
        "superseded orphan removed"
    );
}

/// Writes a lemonade-style orphan: `files` are (name, bytes on disk as partial).
fn lemonade_orphan(
    snap_root: &Path,
    name: &str,
    manifest: &str,
    partials: &[(&str, &[u8])],
) -> PathBuf {
    let dir = snap_root.join(name);
    fs::create_dir_all(&dir).expect("orphan dir");
    fs::write(dir.join(".download_manifest.json"), manifest).expect("manifest");
    for (path, bytes) in partials {
        let p = dir.join(format!("{path}.partial"));
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, bytes).expect("partial");
    }
    dir
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn three_lemonade_orphans_each_file_resumes_from_its_longest_usable_partial() {
    let hub = MockHub::start();
    let a = big(11, 6 * MB);
    let b = big(12, 5 * MB);
    let committed_cfg = b"{\"old\": true}".to_vec();
    // An older, committed snapshot with a config that is no longer in the repo.
    let older = hub.commit(
        REPO,
        "main",
        vec![MockFile::regular("old-config.json", committed_cfg.clone())],
    );
    let new = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::lfs("a.gguf", a.clone()),
            MockFile::lfs("split/b.gguf", b.clone()),
        ],
    );
    let cache = TempDir::new("salvage-three");
    let root = snapshots(cache.path());
    fs::create_dir_all(root.join(&older)).expect("committed dir");
    fs::write(root.join(&older).join("old-config.json"), &committed_cfg).expect("committed file");
    let committed_mtime = fs::metadata(root.join(&older).join("old-config.json"))
        .expect("m")
        .modified()
        .expect("t");
    let dl = root.display();
    // Current schema with hashes: the longest partial of a.gguf, a short one of b.
    let current = format!(
        r#"{{"commit_hash":"{c}","download_path":"{dl}/{c}","files":[
            {{"download_path":"{dl}/{c}","hash":{{"algorithm":"sha256","value":"{ha}"}},"name":"a.gguf","size":{sa},"url":"u"}},
            {{"download_path":"{dl}/{c}","hash":{{"algorithm":"sha256","value":"{hb}"}},"name":"split/b.gguf","size":{sb},"url":"u"}}],
            "files_count":2,"registry_source":"huggingface","repo_id":"org/model"}}"#,
        c = "1".repeat(40),
        ha = sha256_hex(&a),
        hb = sha256_hex(&b),
        sa = a.len(),
        sb = b.len(),
    );
    lemonade_orphan(
        &root,
        &"1".repeat(40),
        &current,
        &[("a.gguf", &a[..4 * MB]), ("split/b.gguf", &b[..MB])],
    );
    // April schema, no hashes: a shorter a, the longest b (tentative: same path, unknown id).
    let april = format!(
        r#"{{"repo_id":"org/model","commit_hash":"{c}","download_path":"{dl}/{c}","files_count":2,"files":[
            {{"name":"a.gguf","url":"https://huggingface.co/org/model/resolve/main/a.gguf","size":0,"download_path":"{dl}/{c}"}},
            {{"name":"split/b.gguf","url":"https://huggingface.co/org/model/resolve/main/split/b.gguf","size":0,"download_path":"{dl}/{c}"}}]}}"#,
        c = "2".repeat(40)
    );
    lemonade_orphan(
        &root,
        &"2".repeat(40),
        &april,
        &[("a.gguf", &a[..2 * MB]), ("split/b.gguf", &b[..3 * MB])],
    );
    // An empty manifest with small partials of both.
    lemonade_orphan(
        &root,
        &"3".repeat(40),
        "{}",
        &[("a.gguf", &a[..MB / 2]), ("split/b.gguf", &b[..MB / 2])],
    );

    let o = options(&hub.endpoint(), cache.path(), REPO);
    let (r, seen) = pull_recording(&o);
    let out = r.expect("pull");
    assert_eq!(out.commit, new);
    let served_a = hub.bytes_served(REPO, "a.gguf");
    let served_b = hub.bytes_served(REPO, "split/b.gguf");
    assert_eq!(
        served_a,
        (6 * MB - 4 * MB) as u64,
        "a.gguf resumed from the 4 MiB partial"
    );
    assert_eq!(
        served_b,
        (5 * MB - 3 * MB) as u64,
        "b.gguf resumed from the 3 MiB partial"
    );
    assert_eq!(out.totals.bytes_salvaged, (4 * MB + 3 * MB) as u64);
    assert_eq!(fs::read(root.join(&new).join("a.gguf")).expect("a"), a);
    assert_eq!(
        fs::read(root.join(&new).join("split/b.gguf")).expect("b"),
        b
    );
    let mut kept = vec![new.clone(), older.clone()];
    kept.sort();
    assert_eq!(
        folders(&root),
        kept,
        "all three orphans cleaned, the committed snapshot kept"
    );
    assert_eq!(
        fs::read(root.join(&older).join("old-config.json")).expect("kept"),
        committed_cfg
    );
    assert_eq!(
        fs::metadata(root.join(&older).join("old-config.json"))
            .expect("m")
            .modified()
            .expect("t"),
        committed_mtime,
        "committed snapshot untouched"
    );
    let salvaged: Vec<_> = seen
        .iter()
        .filter(|s| matches!(s, Seen::Salvaged { .. }))
        .collect();
    assert_eq!(salvaged.len(), 2, "{salvaged:?}");
    assert_eq!(
        seen.iter()
            .filter(|s| matches!(s, Seen::Reclaimed { .. }))
            .count(),
        3
    );
    println!(
        "three-orphan scenario: downloaded {} bytes; a from-scratch download needs {} bytes",
        out.totals.bytes_downloaded,
        a.len() + b.len()
    );
}

#[test]
fn unchanged_complete_file_in_committed_snapshot_is_hardlinked() {
    let hub = MockHub::start();
    let weights = big(21, 4 * MB);
    let old = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("README.md", b"v1".to_vec()),
            MockFile::lfs("model.gguf", weights.clone()),
        ],
    );
    let cache = TempDir::new("salvage-link");
    let o = options(&hub.endpoint(), cache.path(), REPO);
    lemon_pull::pull(&o, &mut Silent).expect("first");
    let new = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("README.md", b"v2".to_vec()),
            MockFile::lfs("model.gguf", weights.clone()),
        ],
    );
    hub.reset_counters();
    let out = lemon_pull::pull(&o, &mut Silent).expect("second");
    assert_eq!(
        hub.bytes_served(REPO, "model.gguf"),
        0,
        "linked, not downloaded"
    );
    assert_eq!(hub.bytes_served(REPO, "README.md"), 2);
    let plan: Vec<_> = out
        .plan
        .iter()
        .map(|p| (p.path.as_str(), p.source))
        .collect();
    assert!(plan.contains(&("model.gguf", Source::Link)), "{plan:?}");
    let root = snapshots(cache.path());
    assert_eq!(
        folders(&root),
        {
            let mut v = vec![new.clone(), old.clone()];
            v.sort();
            v
        },
        "committed snapshot kept"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let a = fs::metadata(root.join(&old).join("model.gguf")).expect("old");
        let b = fs::metadata(root.join(&new).join("model.gguf")).expect("new");
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "a hardlink");
    }
    assert_eq!(
        fs::read(root.join(&old).join("README.md")).expect("old readme"),
        b"v1"
    );
}

#[test]
fn target_and_orphan_partials_collide_the_longer_wins() {
    for target_longer in [false, true] {
        let hub = MockHub::start();
        let data = big(31, 6 * MB);
        let new = hub.commit(
            REPO,
            "main",
            vec![MockFile::lfs("model.gguf", data.clone())],
        );
        let cache = TempDir::new("salvage-collide");
        let root = snapshots(cache.path());
        let (t_len, o_len) = if target_longer {
            (4 * MB, 2 * MB)
        } else {
            (2 * MB, 4 * MB)
        };
        fs::create_dir_all(root.join(&new)).expect("target");
        fs::write(root.join(&new).join("model.gguf.partial"), &data[..t_len])
            .expect("target partial");
        let manifest = format!(
            r#"{{"repo_id":"org/model","commit_hash":"{c}","files":[{{"name":"model.gguf","size":{s},"hash":{{"algorithm":"sha256","value":"{h}"}}}}]}}"#,
            c = "9".repeat(40),
            s = data.len(),
            h = sha256_hex(&data)
        );
        lemonade_orphan(
            &root,
            &"9".repeat(40),
            &manifest,
            &[("model.gguf", &data[..o_len])],
        );
        let out = lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent)
            .expect("pull");
        let longer = t_len.max(o_len) as u64;
        assert_eq!(
            hub.bytes_served(REPO, "model.gguf"),
            data.len() as u64 - longer,
            "target_longer={target_longer}"
        );
        assert_eq!(
            out.totals.bytes_salvaged,
            if target_longer { 0 } else { longer }
        );
        assert_eq!(
            fs::read(root.join(&new).join("model.gguf")).expect("file"),
            data
        );
        assert_eq!(
            folders(&root),
            [new.as_str()],
            "the worse copy went with its orphan"
        );
    }
}

#[test]
fn nested_paths_and_auxiliary_repo_are_salvaged_each_in_its_own_folder() {
    let hub = MockHub::start();
    let unet = big(41, 5 * MB);
    let vae = big(42, 4 * MB);
    hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs(
            "split_files/unet/u.safetensors",
            unet.clone(),
        )],
    );
    hub.commit(
        "org/vae",
        "main",
        vec![MockFile::lfs("split_files/vae/ae.safetensors", vae.clone())],
    );
    hub.set_rate_limit(Some(6 * MB as u64));
    let cache = TempDir::new("salvage-aux");
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.components =
        vec![Component::parse("org/vae:split_files/vae/ae.safetensors").expect("component")];
    // Pause inside the auxiliary file, after the main file completed.
    pull_and_pause(&o, "split_files/vae/ae.safetensors", MB as u64);
    let vae_root = cache.path().join("models--org--vae/snapshots");
    let old_vae = folders(&vae_root).pop().expect("aux snapshot");
    let partial = fs::metadata(
        vae_root
            .join(&old_vae)
            .join("split_files/vae/ae.safetensors.partial"),
    )
    .expect("p")
    .len();
    let new_main = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::lfs("split_files/unet/u.safetensors", unet.clone()),
            MockFile::regular("README.md", b"x".to_vec()),
        ],
    );
    let new_vae = hub.commit(
        "org/vae",
        "main",
        vec![
            MockFile::lfs("split_files/vae/ae.safetensors", vae.clone()),
            MockFile::regular("LICENSE", b"mit".to_vec()),
        ],
    );
    hub.set_rate_limit(None);
    settle_and_reset(&hub);
    let out = lemon_pull::pull(&o, &mut Silent).expect("pull");
    assert_eq!(out.repos.len(), 2);
    assert_eq!(
        (out.repos[1].repo.as_str(), out.repos[1].commit.as_str()),
        ("org/vae", new_vae.as_str())
    );
    assert_eq!(
        hub.bytes_served(REPO, "split_files/unet/u.safetensors"),
        0,
        "main file salvaged complete"
    );
    assert_eq!(
        hub.bytes_served("org/vae", "split_files/vae/ae.safetensors"),
        vae.len() as u64 - partial
    );
    assert_eq!(
        fs::read(
            vae_root
                .join(&new_vae)
                .join("split_files/vae/ae.safetensors")
        )
        .expect("vae"),
        vae
    );
    let main_root = snapshots(cache.path());
    assert_eq!(
        fs::read(
            main_root
                .join(&new_main)
                .join("split_files/unet/u.safetensors")
        )
        .expect("unet"),
        unet
    );
    assert_eq!(folders(&vae_root), [new_vae.as_str()]);
    assert_eq!(folders(&main_root), [new_main.as_str()]);
    assert_eq!(
        fs::read_to_string(cache.path().join("models--org--vae/refs/main")).expect("aux ref"),
        new_vae
    );
    // The main manifest is gone and the aux snapshot never had one.
    assert!(
        tree(cache.path())
            .iter()
            .all(|p| !p.ends_with(".download_manifest.json") && !p.ends_with(".partial"))
    );
}

#[test]
fn dry_run_plans_salvage_and_cleanup_without_writing() {
    let hub = MockHub::start();
    let data = big(51, 3 * MB);
    let new = hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", data.clone())],
    );
    let cache = TempDir::new("salvage-dry");
    let root = snapshots(cache.path());
    let manifest = format!(
        r#"{{"files":[{{"name":"model.gguf","hash":{{"algorithm":"sha256","value":"{}"}}}}]}}"#,
        sha256_hex(&data)
    );
    lemonade_orphan(&root, "old", &manifest, &[("model.gguf", &data[..MB])]);
    let before = tree(cache.path());
    let mut o = options(&hub.endpoint(), cache.path(), REPO);
    o.dry_run = true;
    let out = lemon_pull::pull(&o, &mut Silent).expect("dry run");
    assert_eq!(out.plan[0].source, Source::SalvagePartial);
    assert_eq!(out.plan[0].from.as_deref(), Some("old"));
    assert_eq!(out.plan[0].missing(), (2 * MB) as u64);
    assert_eq!(out.reclaimed.len(), 1);
    // The CLI's dry run says the same.
    let cli = std::process::Command::new(crate::common::resume_pull())
        .args([
            "--endpoint",
            &hub.endpoint(),
            "--token",
            "",
            "--dry-run",
            REPO,
        ])
        .arg("--cache-dir")
        .arg(cache.path())
        .output()
        .expect("resume-pull --dry-run");
    let said = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.status.success(), "{said}");
    assert!(said.contains("salvaged from old (partial"), "{said}");
    assert!(
        said.contains("would remove orphaned snapshot old"),
        "{said}"
    );
    assert_eq!(tree(cache.path()), before, "nothing written");
    assert_eq!(hub.bytes_served_total(), 0);
    assert!(!root.join(&new).exists());
}

#[cfg(unix)]
const CRASH_AFTER: &str = "LEMON_PULL_SALVAGE_CHILD_CRASH_AFTER";
#[cfg(unix)]
const CRASH_ENDPOINT: &str = "LEMON_PULL_SALVAGE_CHILD_ENDPOINT";
#[cfg(unix)]
const CRASH_CACHE: &str = "LEMON_PULL_SALVAGE_CHILD_CACHE";

/// Run by `crash_between_salvage_steps_loses_nothing` in a child process (these variables are read
/// here only, never by the library): pulls, and aborts the process at the `Salvaged` event of
/// the Nth salvage step. A partial's event comes right after its move; a complete copy's after
/// its move and its bookkeeping (stamp saved).
#[cfg(unix)]
#[test]
#[ignore = "helper: run in a child process by crash_between_salvage_steps_loses_nothing"]
fn child_pull_aborting_after_salvage_steps() {
    let Ok(crash_after) = std::env::var(CRASH_AFTER) else {
        return;
    };
    let crash_after: u32 = crash_after.parse().expect("step count");
    let endpoint = std::env::var(CRASH_ENDPOINT).expect("endpoint");
    let cache = PathBuf::from(std::env::var_os(CRASH_CACHE).expect("cache"));
    let mut steps = 0;
    let r = lemon_pull::pull(&options(&endpoint, &cache, REPO), &mut |ev: &Event<'_>| {
        if matches!(ev, Event::Salvaged { .. }) {
            steps += 1;
            if steps >= crash_after {
                std::process::abort();
            }
        }
        Flow::Continue
    });
    panic!("no crash: the pull ended after {steps} salvage steps: {r:?}");
}

/// Runs `child_pull_aborting_after_salvage_steps` and checks that it died by `abort()`.
#[cfg(unix)]
fn pull_crashing_after(endpoint: &str, cache: &Path, crash_after: u32) {
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "salvage::child_pull_aborting_after_salvage_steps",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CRASH_AFTER, crash_after.to_string())
        .env(CRASH_ENDPOINT, endpoint)
        .env(CRASH_CACHE, cache)
        .env_remove("HF_TOKEN")
        .output()
        .expect("run");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "the crash hook fired after step {crash_after}"
    );
    assert_eq!(
        out.status.signal(),
        Some(6),
        "the child aborted (SIGABRT) after step {crash_after}: {said}"
    );
}

#[cfg(unix)]
#[test]
fn crash_between_salvage_steps_loses_nothing() {
    let hub = MockHub::start();
    let a = big(61, 3 * MB);
    let b = big(62, 3 * MB);
    let c = big(63, 2 * MB);
    let new = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::lfs("a.gguf", a.clone()),
            MockFile::lfs("b.gguf", b.clone()),
            MockFile::lfs("c.gguf", c.clone()),
        ],
    );
    let cache = TempDir::new("salvage-crash");
    let root = snapshots(cache.path());
    let manifest = format!(
        r#"{{"files":[{{"name":"a.gguf","hash":{{"algorithm":"sha256","value":"{}"}}}},{{"name":"b.gguf","hash":{{"algorithm":"sha256","value":"{}"}}}},{{"name":"c.gguf","hash":{{"algorithm":"sha256","value":"{}"}}}}]}}"#,
        sha256_hex(&a),
        sha256_hex(&b),
        sha256_hex(&c)
    );
    // Crash after 1, 2 or 3 salvage steps (a's partial, b's partial, then c, a complete copy).
    // c's event follows its bookkeeping (its stamp is saved), so the last case rebuilds what a
    // crash right after c's move leaves: the child crashes after two steps, then c is renamed
    // into the target as `salvage::adopt` renames a complete copy out of an unfinished folder.
    let cases = [(1, false), (2, false), (3, false), (2, true)];
    for (crash_after, then_move_c) in cases {
        let _ = fs::remove_dir_all(cache.path());
        let orphan = lemonade_orphan(
            &root,
            "old",
            &manifest,
            &[("a.gguf", &a[..MB]), ("b.gguf", &b[..2 * MB])],
        );
        fs::write(orphan.join("c.gguf"), &c).expect("complete file in orphan");
        pull_crashing_after(&hub.endpoint(), cache.path(), crash_after);
        let crash_after = if then_move_c {
            assert!(
                !root.join(&new).join("c.gguf").exists(),
                "c is the third step"
            );
            fs::rename(orphan.join("c.gguf"), root.join(&new).join("c.gguf")).expect("move c");
            "3 (before bookkeeping)".to_string()
        } else {
            crash_after.to_string()
        };
        hub.reset_counters();
        let out = lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent)
            .expect("recover");
        assert_eq!(
            hub.bytes_served(REPO, "a.gguf"),
            (2 * MB) as u64,
            "crash after {crash_after}"
        );
        assert_eq!(
            hub.bytes_served(REPO, "b.gguf"),
            MB as u64,
            "crash after {crash_after}"
        );
        assert_eq!(
            hub.bytes_served(REPO, "c.gguf"),
            0,
            "crash after {crash_after}"
        );
        for (name, data) in [("a.gguf", &a), ("b.gguf", &b), ("c.gguf", &c)] {
            assert_eq!(&fs::read(root.join(&new).join(name)).expect(name), data);
        }
        assert_eq!(out.totals.bytes_downloaded, (3 * MB) as u64);
        assert_eq!(folders(&root), [new.as_str()]);
    }
}

/// A committed snapshot written by lemonade (no manifest, so its ids are unknown) holding
/// `files`; returns each file's modification time, to prove later that nothing wrote to it.
fn committed_snapshot(
    snap_root: &Path,
    name: &str,
    files: &[(&str, &[u8])],
) -> Vec<std::time::SystemTime> {
    let dir = snap_root.join(name);
    files
        .iter()
        .map(|(path, bytes)| {
            let p = dir.join(path);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, bytes).expect("committed file");
            fs::metadata(&p).expect("m").modified().expect("t")
        })
        .collect()
}

/// Asserts a committed file is exactly as written: same bytes, same mtime, no second name.
fn assert_committed_untouched(path: &Path, bytes: &[u8], mtime: std::time::SystemTime) {
    let meta = fs::metadata(path).expect("committed file kept");
    assert_eq!(meta.modified().expect("t"), mtime, "mtime of {path:?}");
    assert!(
        fs::read(path).expect("read") == bytes,
        "{path:?} changed content"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.nlink(), 1, "no hardlink of {path:?} survives");
    }
}

/// A current-schema lemonade manifest recording `files` (name, content) with their sha256.
fn manifest_with_hashes(files: &[(&str, &[u8])]) -> String {
    let entries: Vec<String> = files
        .iter()
        .map(|(name, data)| {
            format!(
                r#"{{"name":"{name}","size":{},"hash":{{"algorithm":"sha256","value":"{}"}}}}"#,
                data.len(),
                sha256_hex(data)
            )
        })
        .collect();
    format!(
        r#"{{"repo_id":"org/model","files":[{}]}}"#,
        entries.join(",")
    )
}

/// Issue 12 item 5: an older committed snapshot holds `a.gguf` of the same size but other
/// content (unknown id), and an in-progress orphan holds a 40 MiB partial whose manifest records
/// the new sha256. The known-good partial must be used; the guess must not cost it.
#[test]
fn a_known_good_partial_beats_an_unknown_complete_copy_of_other_content() {
    let hub = MockHub::start();
    let old_a = big(71, 64 * MB);
    let new_a = big(72, 64 * MB);
    let older = hub.commit(REPO, "main", vec![MockFile::lfs("a.gguf", old_a.clone())]);
    let new = hub.commit(REPO, "main", vec![MockFile::lfs("a.gguf", new_a.clone())]);
    let cache = TempDir::new("salvage-sure-thing");
    let root = snapshots(cache.path());
    let mtimes = committed_snapshot(&root, &older, &[("a.gguf", &old_a)]);
    let orphan = "1".repeat(40);
    lemonade_orphan(
        &root,
        &orphan,
        &manifest_with_hashes(&[("a.gguf", &new_a)]),
        &[("a.gguf", &new_a[..40 * MB])],
    );

    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    let out = r.expect("pull");
    let served = hub.bytes_served(REPO, "a.gguf");
    println!(
        "item-5 scenario: a.gguf served {served} bytes of {}",
        64 * MB
    );
    assert!(
        served <= (64 * MB - 40 * MB) as u64 + lemon_pull::CHECKPOINT_INTERVAL,
        "served {served}: the 40 MiB partial was not used"
    );
    assert_eq!(fs::read(root.join(&new).join("a.gguf")).expect("a"), new_a);
    assert_eq!(out.totals.bytes_salvaged, (40 * MB) as u64);
    assert_eq!(out.plan[0].source, Source::SalvagePartial, "{:?}", out.plan);
    assert!(
        seen.iter().any(|s| matches!(s, Seen::Restart { reason, .. }
            if reason.contains(&older) && reason.contains(&format!("using the copy in {orphan} instead")))),
        "the guess was passed over, and said so: {seen:?}"
    );
    assert_eq!(out.plan[0].from.as_deref(), Some(orphan.as_str()));
    assert!(
        seen.iter().any(
            |s| matches!(s, Seen::Salvaged { from, bytes, .. } if *from == orphan && *bytes == (40 * MB) as u64)
        ),
        "{seen:?}"
    );
    assert_committed_untouched(&root.join(&older).join("a.gguf"), &old_a, mtimes[0]);
    let mut kept = vec![new.clone(), older.clone()];
    kept.sort();
    assert_eq!(
        folders(&root),
        kept,
        "the orphan went after the commit, the committed snapshot stayed"
    );
}

/// The fallback order: with no known copy to compare against, each complete copy of unknown id
/// is hashed where it lies; the ones that fail are passed over, untouched, and the next copy (here
/// a partial of unknown id, lemonade's April schema) is used instead of downloading from zero.
#[test]
fn a_failed_guess_passes_the_turn_to_the_next_copy() {
    let hub = MockHub::start();
    let old_a = big(81, 16 * MB);
    let older_a = big(82, 16 * MB);
    let new_a = big(83, 16 * MB);
    let older = hub.commit(REPO, "main", vec![MockFile::lfs("a.gguf", older_a.clone())]);
    let old = hub.commit(REPO, "main", vec![MockFile::lfs("a.gguf", old_a.clone())]);
    let new = hub.commit(REPO, "main", vec![MockFile::lfs("a.gguf", new_a.clone())]);
    let cache = TempDir::new("salvage-fallback");
    let root = snapshots(cache.path());
    let old_mtime = committed_snapshot(&root, &old, &[("a.gguf", &old_a)]);
    let older_mtime = committed_snapshot(&root, &older, &[("a.gguf", &older_a)]);
    let april = r#"{"repo_id":"org/model","files":[{"name":"a.gguf","url":"u","size":0}]}"#;
    let orphan = "2".repeat(40);
    lemonade_orphan(&root, &orphan, april, &[("a.gguf", &new_a[..10 * MB])]);

    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    let out = r.expect("pull");
    assert_eq!(
        hub.bytes_served(REPO, "a.gguf"),
        (16 * MB - 10 * MB) as u64,
        "resumed from the partial after both complete copies failed"
    );
    assert_eq!(fs::read(root.join(&new).join("a.gguf")).expect("a"), new_a);
    let restarts: Vec<&str> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Restart { path, reason } if path == "a.gguf" => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(restarts.len(), 2, "{restarts:?}");
    assert!(
        restarts
            .iter()
            .any(|r| r.contains(old.as_str()) && r.contains("did not verify")),
        "{restarts:?}"
    );
    assert!(
        restarts
            .iter()
            .any(|r| r.contains(older.as_str()) && r.contains("did not verify")),
        "{restarts:?}"
    );
    assert!(
        restarts[1].contains(&format!("using the copy in {orphan} instead")),
        "the second failure hands over to the partial: {restarts:?}"
    );
    assert_eq!(out.plan[0].source, Source::SalvagePartial);
    assert_eq!(out.plan[0].from.as_deref(), Some(orphan.as_str()));
    assert_committed_untouched(&root.join(&old).join("a.gguf"), &old_a, old_mtime[0]);
    assert_committed_untouched(&root.join(&older).join("a.gguf"), &older_a, older_mtime[0]);
}

/// A longer partial of unknown id (April schema) that holds other bytes than a shorter partial
/// whose manifest records the wanted sha256 is passed over: the sure partial is resumed, instead
/// of downloading the rest of the guess, failing its hash and starting again from zero.
#[test]
fn a_longer_partial_of_other_bytes_does_not_displace_a_sure_one() {
    let hub = MockHub::start();
    let stale = big(91, 8 * MB);
    let a = big(92, 8 * MB);
    let new = hub.commit(REPO, "main", vec![MockFile::lfs("a.gguf", a.clone())]);
    let cache = TempDir::new("salvage-partials");
    let root = snapshots(cache.path());
    let april = r#"{"repo_id":"org/model","files":[{"name":"a.gguf","url":"u","size":0}]}"#;
    let (guess, sure) = ("4".repeat(40), "5".repeat(40));
    lemonade_orphan(&root, &guess, april, &[("a.gguf", &stale[..6 * MB])]);
    lemonade_orphan(
        &root,
        &sure,
        &manifest_with_hashes(&[("a.gguf", &a)]),
        &[("a.gguf", &a[..3 * MB])],
    );
    let (r, seen) = pull_recording(&options(&hub.endpoint(), cache.path(), REPO));
    let out = r.expect("pull");
    assert_eq!(
        hub.bytes_served(REPO, "a.gguf"),
        (8 * MB - 3 * MB) as u64,
        "resumed from the sure partial"
    );
    assert_eq!(out.totals.bytes_salvaged, (3 * MB) as u64);
    assert_eq!(fs::read(root.join(&new).join("a.gguf")).expect("a"), a);
    assert!(
        seen.iter().any(|s| matches!(s, Seen::Restart { reason, .. }
            if reason.contains(&guess) && reason.contains(&format!("other bytes than the partial in {sure}")))),
        "{seen:?}"
    );
    assert_eq!(
        folders(&root),
        [new.as_str()],
        "both orphans went after the commit"
    );
}

/// A pull that fails after salvage moved a partial reclaims nothing (the orphan keeps its
/// manifest, the committed snapshot its file), and the next pull still downloads only the rest.
#[test]
fn a_cancelled_pull_reclaims_nothing_and_loses_nothing() {
    let hub = MockHub::start();
    let old_a = big(101, 8 * MB);
    let a = big(102, 8 * MB);
    let older = hub.commit(REPO, "main", vec![MockFile::lfs("a.gguf", old_a.clone())]);
    let new = hub.commit(REPO, "main", vec![MockFile::lfs("a.gguf", a.clone())]);
    let cache = TempDir::new("salvage-cancelled");
    let root = snapshots(cache.path());
    let mtimes = committed_snapshot(&root, &older, &[("a.gguf", &old_a)]);
    let orphan = "6".repeat(40);
    lemonade_orphan(
        &root,
        &orphan,
        &manifest_with_hashes(&[("a.gguf", &a)]),
        &[("a.gguf", &a[..3 * MB])],
    );
    hub.set_rate_limit(Some(4 * MB as u64));
    let o = options(&hub.endpoint(), cache.path(), REPO);
    pull_and_pause(&o, "a.gguf", (4 * MB) as u64);
    let mut all = vec![new.clone(), older.clone(), orphan.clone()];
    all.sort();
    assert_eq!(folders(&root), all, "a cancelled pull removes no folder");
    assert!(root.join(&orphan).join(".download_manifest.json").is_file());
    assert_committed_untouched(&root.join(&older).join("a.gguf"), &old_a, mtimes[0]);
    hub.set_rate_limit(None);
    // A cancelled transfer's server thread may still count a few in-flight bytes.
    std::thread::sleep(Duration::from_millis(400));
    let served_before = hub.bytes_served(REPO, "a.gguf");
    hub.reset_counters();
    lemon_pull::pull(&o, &mut Silent).expect("resume");
    let served = served_before + hub.bytes_served(REPO, "a.gguf");
    println!(
        "cancelled then resumed: served {served_before} + {}",
        served - served_before
    );
    // The rest after the 3 MiB partial, plus what a cancel may lose in flight; a download from
    // zero (the guess taken, the partial passed over) serves 8 MiB.
    assert!(
        served <= (8 * MB - 3 * MB + MB) as u64,
        "served {served} in all"
    );
    assert_eq!(fs::read(root.join(&new).join("a.gguf")).expect("a"), a);
    let mut kept = vec![new.clone(), older.clone()];
    kept.sort();
    assert_eq!(folders(&root), kept);
    assert_committed_untouched(&root.join(&older).join("a.gguf"), &old_a, mtimes[0]);
}

/// lemonade downloads every selected file again when any of them changed, so its committed
/// snapshot (ids unknown) often holds the very bytes its interrupted new download (a partial whose
/// manifest records the sha256) is fetching again. The complete copy agrees with the partial, is
/// hashed, and is linked: nothing is downloaded, where preferring the partial would fetch the rest.
#[test]
fn a_complete_copy_of_the_same_content_is_checked_before_a_partial_is_resumed() {
    let hub = MockHub::start();
    let a = big(111, 16 * MB);
    let older = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::lfs("a.gguf", a.clone()),
            MockFile::regular("README.md", b"v1".to_vec()),
        ],
    );
    let new = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::lfs("a.gguf", a.clone()),
            MockFile::regular("README.md", b"v2".to_vec()),
        ],
    );
    let cache = TempDir::new("salvage-same-bytes");
    let root = snapshots(cache.path());
    let mtimes = committed_snapshot(&root, &older, &[("a.gguf", &a), ("README.md", b"v1")]);
    // lemonade's interrupted download of the new commit, in the target folder itself.
    lemonade_orphan(
        &root,
        &new,
        &manifest_with_hashes(&[("a.gguf", &a), ("README.md", b"v2")]),
        &[("a.gguf", &a[..4 * MB])],
    );
    let out =
        lemon_pull::pull(&options(&hub.endpoint(), cache.path(), REPO), &mut Silent).expect("pull");
    assert_eq!(hub.bytes_served(REPO, "a.gguf"), 0, "linked, not resumed");
    let a_plan = out.plan.iter().find(|p| p.path == "a.gguf").expect("a");
    assert_eq!(
        (a_plan.source, a_plan.from.as_deref()),
        (Source::Link, Some(older.as_str()))
    );
    assert_eq!(fs::read(root.join(&new).join("a.gguf")).expect("a"), a);
    assert!(!root.join(&new).join("a.gguf.partial").exists());
    let meta = fs::metadata(root.join(&older).join("a.gguf")).expect("kept");
    assert_eq!(meta.modified().expect("t"), mtimes[0]);
    assert_eq!(fs::read(root.join(&older).join("a.gguf")).expect("old"), a);
}
