//! Disk space: the preflight refuses a pull that cannot fit, and a disk that fills up mid-transfer
//! ends in `DISK_FULL` with the partial and manifest kept, so the next pull completes.
//!
//! Needs a small file system of its own: a tmpfs, which needs root. Without it the tests say so and
//! pass vacuously (CI runs as root).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{TempDir, options};
use lemon_pull::{Event, Flow, Status};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";
const MB: usize = 1 << 20;

/// A tmpfs of `mib` MiB mounted on a fresh folder, unmounted on drop.
struct SmallDisk {
    _dir: TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    fn new(mib: usize) -> Option<SmallDisk> {
        let dir = TempDir::new("small-disk");
        let mount = dir.path().join("mnt");
        fs::create_dir_all(&mount).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&mount)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("SKIP: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(SmallDisk { _dir: dir, mount })
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

#[test]
fn preflight_refuses_when_missing_bytes_do_not_fit() {
    let Some(disk) = SmallDisk::new(4) else {
        return;
    };
    let hub = MockHub::start();
    hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", pseudo_random_bytes(1, 6 * MB))],
    );
    let err = lemon_pull::pull(
        &options(&hub.endpoint(), disk.path(), REPO),
        &mut lemon_pull::Silent,
    )
    .expect_err("does not fit");
    assert_eq!(err.status(), Status::InsufficientSpace);
    let msg = err.to_string();
    assert!(
        msg.contains(&(6 * MB).to_string()),
        "names the bytes needed: {msg}"
    );
    assert_eq!(hub.bytes_served_total(), 0, "failed before downloading");
}

#[test]
fn disk_full_mid_transfer_keeps_partial_and_next_pull_completes() {
    let Some(disk) = SmallDisk::new(12) else {
        return;
    };
    let hub = MockHub::start();
    let data = pseudo_random_bytes(2, 6 * MB);
    let sha = hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs("model.gguf", data.clone())],
    );
    hub.set_rate_limit(Some(8 * MB as u64));
    let ballast = disk.path().join("ballast");
    let o = options(&hub.endpoint(), disk.path(), REPO);
    // Once bytes flow, something else fills the disk.
    let r = lemon_pull::pull(&o, &mut |ev: &Event<'_>| {
        if matches!(ev, Event::Progress { file_done, .. } if *file_done > MB as u64)
            && !ballast.exists()
        {
            let free = fs4::available_space(disk.path()).expect("free space");
            fs::write(&ballast, vec![0u8; free as usize]).ok();
        }
        Flow::Continue
    });
    let err = r.expect_err("disk full");
    assert_eq!(err.status(), Status::DiskFull, "{err}");
    let snap = disk.path().join("models--org--model/snapshots").join(&sha);
    let partial = fs::metadata(snap.join("model.gguf.partial"))
        .expect("partial kept")
        .len();
    assert!(partial >= MB as u64);
    assert!(
        snap.join(".download_manifest.json").exists(),
        "manifest kept"
    );

    fs::remove_file(&ballast).expect("free the space");
    hub.set_rate_limit(None);
    std::thread::sleep(std::time::Duration::from_millis(300));
    hub.reset_counters();
    lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("completes after space is freed");
    assert_eq!(fs::read(snap.join("model.gguf")).expect("file"), data);
    assert_eq!(
        hub.bytes_served(REPO, "model.gguf"),
        (6 * MB) as u64 - partial
    );
}
