//! Progress events and the observer that receives them.
//!
//! Events are delivered on the thread that called [`crate::pull()`], serially, only while the call
//! runs. Byte progress is throttled to about ten events a second; every other event is sent as it
//! happens, and when nothing happened for a while a [`Event::Tick`] is sent (or the `Progress` the
//! throttle held back, when bytes arrived since the last one), so an observer hears
//! from the pull at least every [`TICK_INTERVAL`] whatever it is waiting for (a stalled
//! connection, a retry backoff, another process's lock). The observer can cancel by returning
//! [`Flow::Cancel`] from any event, ticks included.

mod channel;
mod relay;
mod reporter;

pub(crate) use relay::relay;
pub(crate) use reporter::Reporter;

use std::path::Path;
use std::time::Duration;

/// The longest an observer waits between two events while a pull runs (ticks fill the gaps).
pub const TICK_INTERVAL: Duration = Duration::from_millis(250);

/// What the observer wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop as soon as possible; the pull returns [`Error::Cancelled`](crate::Error::Cancelled) and keeps partials.
    Cancel,
}

/// Where a planned file's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Already complete and verified in the target snapshot.
    Present,
    /// A partial in the target snapshot that will be resumed.
    Resume,
    /// A partial in another, in-progress snapshot folder, moved into the target and resumed.
    SalvagePartial,
    /// A complete file in another, in-progress snapshot folder, verified and moved into the target.
    SalvageFile,
    /// A complete file in a committed snapshot, verified and hardlinked (or copied) into the target.
    Link,
    /// Nothing usable on disk; downloaded from the start.
    Download,
}

impl Source {
    /// Stable snake_case name, as the CLI's JSON and the C API's `PLAN_FILE` message give it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Present => "present",
            Source::Resume => "resume",
            Source::SalvagePartial => "salvage_partial",
            Source::SalvageFile => "salvage_file",
            Source::Link => "link",
            Source::Download => "download",
        }
    }
}

/// What a pull is doing, as [`Event::Tick`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Validating the request and setting up.
    Start,
    /// Asking the Hub which commit and files the revision names.
    Resolve,
    /// Waiting for another process's lock on the repository folder.
    Lock,
    /// Looking through the cache for usable bytes and planning each file.
    Plan,
    /// Moving, linking or verifying bytes found in other snapshot folders.
    Salvage,
    /// Fetching file bytes.
    Transfer,
    /// Waiting before a retry.
    Backoff,
    /// Hashing bytes on disk against their content id.
    Verify,
    /// Writing refs and removing emptied folders.
    Commit,
}

impl Phase {
    /// Stable snake_case name, as the C API's `TICK` message and the CLI's JSON give it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Resolve => "resolve",
            Phase::Lock => "lock",
            Phase::Plan => "plan",
            Phase::Salvage => "salvage",
            Phase::Transfer => "transfer",
            Phase::Backoff => "backoff",
            Phase::Verify => "verify",
            Phase::Commit => "commit",
        }
    }

    const ALL: [Phase; 9] = [
        Phase::Start,
        Phase::Resolve,
        Phase::Lock,
        Phase::Plan,
        Phase::Salvage,
        Phase::Transfer,
        Phase::Backoff,
        Phase::Verify,
        Phase::Commit,
    ];

    fn from_index(i: u8) -> Phase {
        Phase::ALL
            .get(usize::from(i))
            .copied()
            .unwrap_or(Phase::Start)
    }

    fn index(self) -> u8 {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0) as u8
    }
}

/// Running totals over the whole pull, carried by most events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Files in the pull.
    pub total_files: u32,
    /// Sum of all selected files' sizes.
    pub total_bytes: u64,
    /// Bytes of all files that are done or in progress, including bytes that were already on disk.
    pub done_bytes: u64,
    /// Bytes fetched over the network in this call.
    pub bytes_downloaded: u64,
    /// Bytes not downloaded in this call: complete files, resumed partials, salvaged copies.
    pub bytes_reused: u64,
    /// Bytes taken from other snapshot folders (a subset of `bytes_reused`).
    pub bytes_salvaged: u64,
}

/// One file's place in the pull.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo<'a> {
    /// Repository the file belongs to.
    pub repo: &'a str,
    /// Repo-relative path.
    pub path: &'a str,
    /// 1-based position over all files of the pull.
    pub index: u32,
    /// Size in bytes.
    pub size: u64,
}

/// Something that happened during a pull.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The revision resolved to a commit.
    Resolved {
        /// Repository id.
        repo: &'a str,
        /// Revision asked for.
        revision: &'a str,
        /// The commit it names now.
        commit: &'a str,
    },
    /// Another process holds the repo's lock; the pull waits (and stays cancellable).
    WaitingForLock {
        /// Repository id.
        repo: &'a str,
        /// The lock file.
        path: &'a Path,
    },
    /// One planned file: where its bytes come from. Sent once per file before [`Event::Plan`].
    PlanFile {
        /// The file.
        file: FileInfo<'a>,
        /// Where its bytes come from.
        source: Source,
        /// Bytes of it already on disk.
        on_disk: u64,
        /// Totals of the plan (files and bytes; nothing done yet).
        totals: Totals,
    },
    /// The plan is complete: totals before any transfer.
    Plan {
        /// Totals (with `done_bytes` = bytes already on disk).
        totals: Totals,
    },
    /// A file starts (or is found complete).
    FileStart {
        /// The file.
        file: FileInfo<'a>,
        /// Bytes already present (partial length, or the full size when complete).
        offset: u64,
        /// Totals so far.
        totals: Totals,
    },
    /// Bytes arrived.
    Progress {
        /// The file.
        file: FileInfo<'a>,
        /// Bytes of this file present now, including the resume offset.
        file_done: u64,
        /// Totals so far.
        totals: Totals,
    },
    /// A file is complete and verified under its final name.
    FileDone {
        /// The file.
        file: FileInfo<'a>,
        /// Whether no byte of it was downloaded in this call.
        reused: bool,
        /// Totals so far.
        totals: Totals,
    },
    /// Bytes of a file were taken from another snapshot folder.
    Salvaged {
        /// The file.
        file: FileInfo<'a>,
        /// Name of the snapshot folder they came from.
        from: &'a str,
        /// How many bytes.
        bytes: u64,
        /// How they came: [`Source::SalvagePartial`], [`Source::SalvageFile`] or [`Source::Link`].
        how: Source,
    },
    /// After the pull committed, an orphaned snapshot folder with nothing useful left was removed.
    Reclaimed {
        /// Repository id.
        repo: &'a str,
        /// The folder's name.
        snapshot: &'a str,
        /// Bytes it held.
        bytes: u64,
    },
    /// A transfer failed and will be retried after `delay`.
    Retry {
        /// The file, or `None` for an API call.
        file: Option<FileInfo<'a>>,
        /// 1-based number of the retry about to happen.
        attempt: u32,
        /// How long the pull waits first.
        delay: Duration,
        /// What failed.
        reason: &'a str,
    },
    /// A file's bytes on disk were discarded and it restarts from zero.
    Restart {
        /// The file.
        file: FileInfo<'a>,
        /// Why (verification mismatch, server ignored the range, ...).
        reason: &'a str,
    },
    /// The pull committed.
    Complete {
        /// Repository id of the main repo.
        repo: &'a str,
        /// Commit now in `refs/`.
        commit: &'a str,
        /// The snapshot folder.
        snapshot: &'a Path,
        /// Final totals.
        totals: Totals,
    },
    /// The hub could not be reached; the pull answers from a complete cached snapshot if there is
    /// one (else it fails with the network error).
    FromCache {
        /// Why the hub was given up on.
        cause: &'a str,
    },
    /// The pull failed or was cancelled: what it had done. The last event of a failed pull.
    Stopped {
        /// Totals up to the failure (what was downloaded, reused and salvaged).
        totals: Totals,
        /// The main snapshot folder, when the pull got as far as resolving it.
        snapshot: Option<&'a Path>,
        /// Bytes in that folder now: complete files and kept partials, for the next pull to use.
        on_disk: u64,
    },
    /// Nothing else happened for [`TICK_INTERVAL`]: the pull is alive and doing `phase`.
    Tick {
        /// What the pull is doing.
        phase: Phase,
        /// Totals so far.
        totals: Totals,
    },
}

/// Receives progress events. Implemented for every `FnMut(&Event) -> Flow`.
pub trait Observer {
    /// Called for each event, on the pulling thread.
    fn on_event(&mut self, event: &Event<'_>) -> Flow;
}

impl<F: FnMut(&Event<'_>) -> Flow> Observer for F {
    fn on_event(&mut self, event: &Event<'_>) -> Flow {
        self(event)
    }
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {
    fn on_event(&mut self, _: &Event<'_>) -> Flow {
        Flow::Continue
    }
}
