//! The one place a pull's events are sent from; it also keeps the running totals.

use std::time::{Duration, Instant};

use super::channel::RelayEnd;
use super::{Event, FileInfo, Flow, Phase, Totals};
use crate::cancel::Cancel;
use crate::error::{Error, Result};

const THROTTLE: Duration = Duration::from_millis(100);

/// Sends a pull's events to the calling thread, which delivers them to the observer (see
/// [`relay`](super::relay)), and keeps the running totals of the pull.
pub(crate) struct Reporter {
    relay: RelayEnd,
    cancel: Cancel,
    totals: Totals,
    /// Bytes of finished files (plus the current file's start offset is in `file_done`).
    finished_bytes: u64,
    file_done: u64,
    last_emit: Instant,
    /// The phase the pipeline is in; events such as a retry show a passing phase on top of it.
    phase: Phase,
    /// The main snapshot folder, once known: a failure reports what it holds.
    snapshot: Option<std::path::PathBuf>,
}

impl Reporter {
    /// A reporter on a pull's worker thread, whose events the calling thread delivers.
    pub(super) fn new(relay: RelayEnd, cancel: Cancel) -> Self {
        Reporter {
            relay,
            cancel,
            totals: Totals::default(),
            finished_bytes: 0,
            file_done: 0,
            last_emit: Instant::now(),
            phase: Phase::Start,
            snapshot: None,
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

    /// The pipeline enters `phase` (what ticks report until the next change).
    pub(crate) fn set_phase(&mut self, phase: Phase) {
        self.phase = phase;
        self.show_phase(phase);
    }

    /// Shows `phase` in ticks without making it the pipeline's phase (a backoff, a verification).
    fn show_phase(&self, phase: Phase) {
        self.relay.show_phase(phase);
    }

    /// Lets ticks see the current totals.
    fn publish(&self) {
        self.relay.publish(self.totals());
    }

    /// Sets the plan's totals (files, bytes) before transfers start.
    pub(crate) fn set_plan(&mut self, total_files: u32, total_bytes: u64) {
        self.totals.total_files = total_files;
        self.totals.total_bytes = total_bytes;
        self.publish();
    }

    /// Delivers an event; turns a cancel request from any source into `Err(Cancelled)`.
    pub(crate) fn emit(&mut self, event: &Event<'_>) -> Result<()> {
        self.cancel.check()?;
        self.show_phase(match event {
            Event::WaitingForLock { .. } => Phase::Lock,
            Event::Retry { .. } => Phase::Backoff,
            _ => self.phase,
        });
        if self.relay.ask(event) == Flow::Cancel {
            self.cancel.cancel();
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    /// Delivers an event that reports something already done (after the commit): neither a cancel
    /// request nor the observer's answer can turn a committed pull into a failure.
    pub(crate) fn notify(&mut self, event: &Event<'_>) {
        self.relay.tell(event);
    }

    /// The main snapshot folder the pull fills.
    pub(crate) fn set_snapshot(&mut self, dir: std::path::PathBuf) {
        self.snapshot = Some(dir);
    }

    /// The main snapshot folder, once known.
    pub(crate) fn snapshot(&self) -> Option<&std::path::Path> {
        self.snapshot.as_deref()
    }

    /// Tells the observer what a failed pull leaves behind (its answer cannot undo the failure):
    /// `on_disk` bytes in the main snapshot folder.
    pub(crate) fn stopped(&mut self, on_disk: u64) {
        let totals = self.totals();
        let snapshot = self.snapshot.clone();
        self.notify(&Event::Stopped {
            totals,
            snapshot: snapshot.as_deref(),
            on_disk,
        });
    }

    /// A wait that started after a [`Event::Retry`] is over: ticks show the pipeline's phase again.
    pub(crate) fn backoff_over(&self) {
        self.show_phase(self.phase);
    }

    /// Records bytes that this call did not download (complete or partial files already there).
    pub(crate) fn add_reused(&mut self, bytes: u64, salvaged: bool) {
        self.totals.bytes_reused += bytes;
        if salvaged {
            self.totals.bytes_salvaged += bytes;
        }
        self.publish();
    }

    /// A file begins with `offset` bytes present.
    pub(crate) fn file_start(&mut self, file: FileInfo<'_>, offset: u64) -> Result<()> {
        self.file_done = offset;
        self.last_emit = Instant::now();
        self.relay.set_current(Some(&file));
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
            self.relay.set_unreported(None);
            self.emit(&Event::Progress {
                file,
                file_done,
                totals,
            })
        } else {
            self.publish();
            self.relay.set_unreported(Some(self.file_done));
            self.cancel.check()
        }
    }

    /// The current file's bytes on disk were cut back to `len` (restart or checkpoint rollback).
    pub(crate) fn rewind(&mut self, len: u64) {
        self.file_done = len;
        self.publish();
        self.relay.set_unreported(Some(len));
    }

    /// The current file is complete.
    pub(crate) fn file_done(&mut self, file: FileInfo<'_>, reused: bool) -> Result<()> {
        self.finished_bytes += file.size;
        self.file_done = 0;
        // Cleared before the event is sent: a tick never reports a file after its end.
        self.relay.set_current(None);
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
    use crate::progress::{Observer, Silent, relay};

    #[test]
    fn observer_cancel_becomes_error_and_latches() {
        let mut calls = 0;
        let mut obs = |_: &Event<'_>| {
            calls += 1;
            Flow::Cancel
        };
        let cancel = Cancel::default();
        let f = FileInfo {
            repo: "a/b",
            path: "x",
            index: 1,
            size: 10,
        };
        relay(&mut obs, &cancel, |r| {
            assert!(matches!(r.file_start(f, 0), Err(Error::Cancelled)));
            assert!(r.cancel().is_cancelled());
            assert!(matches!(r.advance(f, 1), Err(Error::Cancelled)));
        });
        assert!(cancel.is_cancelled());
        assert_eq!(calls, 1);
    }

    #[test]
    fn totals_include_offset_and_finished_files() {
        let mut obs = Silent;
        let obs: &mut dyn Observer = &mut obs;
        relay(obs, &Cancel::default(), |r| {
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
        });
    }
}
