//! Helpers shared by the integration tests (the `suite` binary and the few that need a process of
//! their own): options pointed at a mock hub, event recording, the CLI's path, and (from the mock
//! hub's crate) temporary folders; `tls_front` puts a TLS front end before the mock.
#![allow(dead_code)]

pub mod tls_front;

// Not every binary lists folders.
#[allow(unused_imports)]
pub use mock_hub::{TempDir, tree};

use std::path::Path;
use std::time::Duration;

use lemon_pull::{Event, Flow, PullOptions, RetryPolicy};

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

/// Pulls until `path` has more than `at` bytes, then cancels, like a user pausing lemonade.
pub fn pull_and_pause(o: &PullOptions, path: &str, at: u64) {
    let r = lemon_pull::pull(o, &mut |ev: &Event<'_>| match ev {
        Event::Progress {
            file, file_done, ..
        } if file.path == path && *file_done > at => Flow::Cancel,
        _ => Flow::Continue,
    });
    assert!(matches!(r, Err(lemon_pull::Error::Cancelled)), "{r:?}");
}

/// The names of the folders directly in `dir`, sorted (none when it does not exist).
pub fn folders(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Fills `cache` with a complete snapshot of `repo` at `main` (a config and a `weights`-byte
/// GGUF, pulled from a mock hub that is gone afterwards) and returns its commit.
pub fn cached_snapshot(cache: &Path, repo: &str, weights: usize) -> String {
    let hub = mock_hub::MockHub::start();
    let sha = hub.commit(
        repo,
        "main",
        vec![
            mock_hub::MockFile::regular("config.json", br#"{"arch": "llama"}"#.to_vec()),
            mock_hub::MockFile::lfs("model.gguf", mock_hub::pseudo_random_bytes(9, weights)),
        ],
    );
    lemon_pull::pull(
        &options(&hub.endpoint(), cache, repo),
        &mut lemon_pull::Silent,
    )
    .expect("first pull");
    sha
}

/// The `resume-pull` binary of the workspace's CLI crate, which `cargo test` at the root (the
/// default members include `cli/`) builds next to the test executables: `target/<profile>/resume-pull`.
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
        "{} is missing: run the tests with `cargo test --workspace` at the root (it builds the CLI), \
         or `cargo build -p resume-pull` first",
        bin.display()
    );
    bin
}
