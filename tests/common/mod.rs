//! Helpers shared by the integration tests: temporary folders, options pointed at a mock hub, and
//! event recording.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lemon_pull::{Event, Flow, PullOptions, RetryPolicy};

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "lemon-pull-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Retries fast enough for tests, still exercising the backoff path.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 6,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(300),
        max_total_wait: Duration::from_secs(20),
    }
}

/// Options for `repo` against `endpoint`, isolated from the user's environment (no token).
pub fn options(endpoint: &str, cache: &Path, repo: &str) -> PullOptions {
    let mut o = PullOptions::new(repo);
    o.endpoint = Some(endpoint.to_string());
    o.cache_dir = Some(cache.to_path_buf());
    o.token = Some(String::new());
    o.retry = fast_retry();
    o.stall_timeout = Duration::from_secs(5);
    o.connect_timeout = Duration::from_secs(5);
    o
}

/// A compact, owned record of an event, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Resolved(String),
    Plan {
        files: u32,
        bytes: u64,
        on_disk: u64,
    },
    Start {
        path: String,
        offset: u64,
    },
    Progress {
        path: String,
        done: u64,
    },
    Done {
        path: String,
        reused: bool,
    },
    Retry {
        reason: String,
    },
    Restart {
        path: String,
        reason: String,
    },
    Waiting,
    Salvaged {
        path: String,
        from: String,
        bytes: u64,
    },
    Reclaimed {
        snapshot: String,
    },
    Complete {
        downloaded: u64,
        reused: u64,
        salvaged: u64,
    },
    Other,
}

pub fn record(ev: &Event<'_>) -> Seen {
    match ev {
        Event::Resolved { commit, .. } => Seen::Resolved(commit.to_string()),
        Event::Plan { totals } => Seen::Plan {
            files: totals.total_files,
            bytes: totals.total_bytes,
            on_disk: totals.done_bytes,
        },
        Event::FileStart { file, offset, .. } => Seen::Start {
            path: file.path.into(),
            offset: *offset,
        },
        Event::Progress {
            file, file_done, ..
        } => Seen::Progress {
            path: file.path.into(),
            done: *file_done,
        },
        Event::FileDone { file, reused, .. } => Seen::Done {
            path: file.path.into(),
            reused: *reused,
        },
        Event::Retry { reason, .. } => Seen::Retry {
            reason: reason.to_string(),
        },
        Event::Restart { file, reason } => Seen::Restart {
            path: file.path.into(),
            reason: reason.to_string(),
        },
        Event::WaitingForLock { .. } => Seen::Waiting,
        Event::Salvaged {
            file, from, bytes, ..
        } => Seen::Salvaged {
            path: file.path.into(),
            from: from.to_string(),
            bytes: *bytes,
        },
        Event::Reclaimed { snapshot, .. } => Seen::Reclaimed {
            snapshot: snapshot.to_string(),
        },
        Event::Complete { totals, .. } => Seen::Complete {
            downloaded: totals.bytes_downloaded,
            reused: totals.bytes_reused,
            salvaged: totals.bytes_salvaged,
        },
        _ => Seen::Other,
    }
}

/// Runs a pull, collecting its events.
pub fn pull_recording(
    opts: &PullOptions,
) -> (lemon_pull::Result<lemon_pull::PullOutcome>, Vec<Seen>) {
    let mut seen = Vec::new();
    let r = lemon_pull::pull(opts, &mut |ev: &Event<'_>| {
        seen.push(record(ev));
        Flow::Continue
    });
    (r, seen)
}

/// Every file under `dir`, relative, sorted (folders not listed).
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The `resume-pull` binary of the workspace's CLI crate, which `cargo test` (whose default
/// members include `cli/`) builds next to the test executables: `target/<profile>/resume-pull`.
pub fn resume_pull() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test> -> target/<profile>/resume-pull
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target folder");
    let bin = dir.join(format!("resume-pull{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test` at the workspace root (it builds the CLI), \
         or `cargo build -p resume-pull` first",
        bin.display()
    );
    bin
}
