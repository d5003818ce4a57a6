//! Progress events and the observer that receives them.
//!
//! Events are delivered on the thread that called [`crate::pull()`], serially, only while the call
//! runs. Byte progress is throttled to about ten events a second; every other event is sent as it
//! happens. The observer can cancel by returning [`Flow::Cancel`].

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// What the observer wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop as soon as possible; the pull returns [`Error::Cancelled`] and keeps partials.
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

const THROTTLE: Duration = Duration::from_millis(100);

/// Owns the observer and the running totals of one pull; the one place events are sent from.
pub(crate) struct Reporter<'o> {
    observer: &'o mut dyn Observer,
    cancel: Cancel,
    totals: Totals,
    /// Bytes of finished files (plus the current file's start offset is in `file_done`).
    finished_bytes: u64,
    file_done: u64,
    last_emit: Instant,
}

impl<'o> Reporter<'o> {
    pub(crate) fn new(observer: &'o mut dyn Observer, cancel: Cancel) -> Self {
        Reporter {
            observer,
            cancel,
            totals: Totals::default(),
            finished_bytes: 0,
            file_done: 0,
            last_emit: Instant::now(),
        }
    }

    pub(crate) fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    pub(crate) fn totals(&self) -> Totals {
        let mut t = self.totals;
        t.done_bytes = self.finished_bytes + self.file_done;
        t
    }

    /// Sets the plan's totals (files, bytes) before transfers start.
    pub(crate) fn set_plan(&mut self, total_files: u32, total_bytes: u64) {
        self.totals.total_files = total_files;
        self.totals.total_bytes = total_bytes;
    }

    /// Delivers an event; turns a cancel request from any source into `Err(Cancelled)`.
    pub(crate) fn emit(&mut self, event: &Event<'_>) -> Result<()> {
        self.cancel.check()?;
        if self.observer.on_event(event) == Flow::Cancel {
            self.cancel.cancel();
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    /// Delivers an event that reports something already done (after the commit): neither a cancel
    /// request nor the observer's answer can turn a committed pull into a failure.
    pub(crate) fn notify(&mut self, event: &Event<'_>) {
        let _ = self.observer.on_event(event);
    }

    /// Records bytes that this call did not download (complete or partial files already there).
    pub(crate) fn add_reused(&mut self, bytes: u64, salvaged: bool) {
        self.totals.bytes_reused += bytes;
        if salvaged {
            self.totals.bytes_salvaged += bytes;
        }
    }

    /// A file begins with `offset` bytes present.
    pub(crate) fn file_start(&mut self, file: FileInfo<'_>, offset: u64) -> Result<()> {
        self.file_done = offset;
        self.last_emit = Instant::now();
        let totals = self.totals();
        self.emit(&Event::FileStart {
            file,
            offset,
            totals,
        })
    }

    /// `n` new bytes of the current file arrived from the network.
    pub(crate) fn advance(&mut self, file: FileInfo<'_>, n: u64) -> Result<()> {
        self.file_done += n;
        self.totals.bytes_downloaded += n;
        if self.last_emit.elapsed() >= THROTTLE {
            self.last_emit = Instant::now();
            let totals = self.totals();
            let file_done = self.file_done;
            self.emit(&Event::Progress {
                file,
                file_done,
                totals,
            })
        } else {
            self.cancel.check()
        }
    }

    /// The current file's bytes on disk were cut back to `len` (restart or checkpoint rollback).
    pub(crate) fn rewind(&mut self, len: u64) {
        self.file_done = len;
    }

    /// The current file is complete.
    pub(crate) fn file_done(&mut self, file: FileInfo<'_>, reused: bool) -> Result<()> {
        self.finished_bytes += file.size;
        self.file_done = 0;
        let totals = self.totals();
        self.emit(&Event::FileDone {
            file,
            reused,
            totals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observer_cancel_becomes_error_and_latches() {
        let mut calls = 0;
        let mut obs = |_: &Event<'_>| {
            calls += 1;
            Flow::Cancel
        };
        let cancel = Cancel::default();
        let mut r = Reporter::new(&mut obs, cancel.clone());
        let f = FileInfo {
            repo: "a/b",
            path: "x",
            index: 1,
            size: 10,
        };
        assert!(matches!(r.file_start(f, 0), Err(Error::Cancelled)));
        assert!(cancel.is_cancelled());
        assert!(matches!(r.advance(f, 1), Err(Error::Cancelled)));
        drop(r);
        assert_eq!(calls, 1);
    }

    #[test]
    fn totals_include_offset_and_finished_files() {
        let mut obs = Silent;
        let mut r = Reporter::new(&mut obs, Cancel::default());
        r.set_plan(2, 30);
        let a = FileInfo {
            repo: "a/b",
            path: "a",
            index: 1,
            size: 10,
        };
        r.file_start(a, 4).expect("start");
        r.advance(a, 6).expect("advance");
        assert_eq!(r.totals().done_bytes, 10);
        r.file_done(a, false).expect("done");
        let b = FileInfo {
            repo: "a/b",
            path: "b",
            index: 2,
            size: 20,
        };
        r.file_start(b, 0).expect("start");
        r.advance(b, 5).expect("advance");
        let t = r.totals();
        assert_eq!((t.done_bytes, t.bytes_downloaded), (15, 11));
    }
}
