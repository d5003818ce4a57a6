//! Brings one file to its final, verified name: resume the partial, fetch the rest with `Range`,
//! retry what is transient, hash while streaming, and rename only after the content id matched.
//!
//! This module chooses the pass, verifies, restarts and renames into place. Two passes fetch the
//! bytes and share everything but the streaming: [`sequential`] (one connection appending to a
//! prefix) and [`parallel`] (several ranged connections writing at their offsets). Both build on
//! [`partial`] (the task, opening and resuming the partial) and [`wire`] (the request and what its
//! answer must say). The segmented pass is used when `connections` > 1 for a large file, and always
//! when a segments sidecar says the partial has holes: such a partial is never read as a prefix.
//!
//! Rules that keep data safe:
//! - a `206` is accepted only when its `Content-Range` starts at our length and its total is the
//!   expected size; a `200` to a range request means the server ignored the range: restart at 0;
//! - an error body is never appended: only `200`/`206` bodies are written;
//! - transient failures (network, 408, 429, 5xx, an expired CDN URL) keep the partial and retry
//!   from the current length after a backoff; every retry starts again at the pinned `/resolve` URL,
//!   so an expired signed CDN URL is replaced by a fresh one;
//! - the partial is fsync'd and checkpointed every [`checkpoint::INTERVAL`] bytes and when the
//!   transfer stops for any reason, so a crash loses at most one interval;
//! - a content mismatch restarts the file once; a second mismatch is an error.

pub(crate) mod checkpoint;
pub(crate) mod hash_thread;
pub(crate) mod parallel;
pub(crate) mod partial;
pub(crate) mod pieces;
pub(crate) mod ramp;
pub(crate) mod segments;
pub(crate) mod sequential;
pub(crate) mod wire;
pub(crate) mod worker;

use std::fs::File;

use crate::cache::{create_dir_all, fsync_dir, remove_file_if_exists};
use crate::error::{Error, Result};
use crate::net::http::Http;
use crate::options::RetryPolicy;
use crate::progress::{Event, Reporter};
use parallel::Pass;
use partial::Complete;
pub(crate) use partial::{Connections, Task};

/// What a finished transfer reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fetched {
    /// Bytes that were on disk already when the successful attempt started.
    pub reused: u64,
    /// Connections the successful pass ended with (for auto: what it settled on).
    pub connections: u32,
}

/// Downloads (or resumes) `task` until the final file exists and verified.
pub(crate) fn fetch(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter,
    task: &Task<'_>,
) -> Result<Fetched> {
    if let Some(parent) = task.partial_path.parent() {
        create_dir_all(parent)?;
    }
    let mut mismatches = 0;
    loop {
        let complete = fetch_bytes(http, retry, reporter, task)?;
        let actual = complete.actual;
        if actual == *task.id {
            promote(task, complete.file)?;
            return Ok(Fetched {
                reused: complete.reused,
                connections: complete.connections,
            });
        }
        mismatches += 1;
        drop(complete.file);
        discard(task)?;
        if mismatches >= 2 {
            return Err(Error::VerificationFailed {
                repo: task.file.repo.to_string(),
                file: task.file.path.to_string(),
                expected: task.id.to_string(),
                actual: actual.to_string(),
            });
        }
        let reason = format!(
            "content did not verify (expected {}, got {actual}); restarting",
            task.id
        );
        reporter.rewind(0);
        reporter.emit(&Event::Restart {
            file: task.file,
            reason: &reason,
        })?;
    }
}

/// One pass over the file: every byte on disk and hashed, by the segmented machinery when it
/// applies, else (or when the server turns out to ignore ranges) sequentially.
fn fetch_bytes(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter,
    task: &Task<'_>,
) -> Result<Complete> {
    let mut reused_before = None;
    if parallel::applies(task) {
        match parallel::fetch(http, retry, reporter, task)? {
            Pass::Complete(complete) => return Ok(complete),
            Pass::NoRanges { reused } => reused_before = Some(reused),
        }
    }
    sequential::fetch(http, retry, reporter, task, reused_before)
}

/// Deletes the partial and everything recorded about it: the next pass starts at byte 0.
fn discard(task: &Task<'_>) -> Result<()> {
    remove_file_if_exists(&task.partial_path)?;
    task.checkpoint.clear();
    task.segments.clear();
    Ok(())
}

/// Flushes the verified partial and gives it its final name.
fn promote(task: &Task<'_>, file: File) -> Result<()> {
    file.sync_all()
        .map_err(Error::io_at("sync", &task.partial_path))?;
    drop(file);
    // A scanner opening the just-closed partial must not fail the pull on Windows.
    crate::platform::rename(&task.partial_path, &task.final_path)
        .map_err(Error::io_at("rename", &task.final_path))?;
    if let Some(dir) = task.final_path.parent() {
        fsync_dir(dir)?;
    }
    task.checkpoint.clear();
    task.segments.clear();
    Ok(())
}
