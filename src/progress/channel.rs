//! What crosses between a pull's worker thread and the calling thread (see `relay`): events
//! made owned, the observer's answers, and the phase and totals that ticks report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Event, FileInfo, Flow, Phase, Source, Totals};
use crate::cancel::Cancel;

/// What ticks report: the phase and totals the worker last published, and the file being
/// transferred with the bytes of it that no event has reported yet.
#[derive(Default)]
pub(super) struct State {
    phase: AtomicU8,
    totals: Mutex<Totals>,
    current: Mutex<Option<Current>>,
}

/// The file in transfer; `unreported` is its byte count when bytes arrived since the last
/// `Progress` event (throttled away), so a tick can report them instead of going silent.
struct Current {
    file: OwnedFile,
    unreported: Option<u64>,
}

impl State {
    pub(super) fn snapshot(&self) -> (Phase, Totals) {
        let phase = Phase::from_index(self.phase.load(Ordering::Relaxed));
        // A poisoned lock only means a panic elsewhere; the totals inside are still plain numbers.
        let totals = *self.totals.lock().unwrap_or_else(|p| p.into_inner());
        (phase, totals)
    }

    /// The `Progress` event the throttle held back, if bytes arrived since the last one: sent
    /// when the transfer then goes quiet (a stall right after a burst), so the observer sees the
    /// bytes on disk rather than the count of the last event.
    pub(super) fn take_unreported(&self) -> Option<OwnedEvent> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let c = current.as_mut()?;
        let file_done = c.unreported.take()?;
        let (_, totals) = self.snapshot();
        Some(OwnedEvent::Progress {
            file: c.file.clone(),
            file_done,
            totals,
        })
    }
}

pub(super) enum Message {
    /// An event whose answer the worker waits for.
    Ask(OwnedEvent),
    /// An event whose answer does not matter (after the commit).
    Tell(OwnedEvent),
}

/// The worker's side of the relay, held by its [`Reporter`].
pub(crate) struct RelayEnd {
    events: SyncSender<Message>,
    answers: Receiver<Flow>,
    state: Arc<State>,
    cancel: Cancel,
}

impl RelayEnd {
    pub(super) fn new(
        events: SyncSender<Message>,
        answers: Receiver<Flow>,
        state: Arc<State>,
        cancel: Cancel,
    ) -> Self {
        RelayEnd {
            events,
            answers,
            state,
            cancel,
        }
    }

    /// Sends `event` to the calling thread and returns the observer's answer.
    pub(super) fn ask(&self, event: &Event<'_>) -> Flow {
        if self
            .events
            .send(Message::Ask(OwnedEvent::of(event)))
            .is_err()
        {
            // The calling thread stopped listening: it is unwinding. Stop the pull.
            self.cancel.cancel();
            return Flow::Cancel;
        }
        self.answers.recv().unwrap_or(Flow::Cancel)
    }

    /// Sends `event` without waiting for an answer that would be ignored anyway.
    pub(super) fn tell(&self, event: &Event<'_>) {
        let _ = self.events.send(Message::Tell(OwnedEvent::of(event)));
    }

    pub(super) fn publish(&self, totals: Totals) {
        *self.state.totals.lock().unwrap_or_else(|p| p.into_inner()) = totals;
    }

    pub(super) fn show_phase(&self, phase: Phase) {
        self.state.phase.store(phase.index(), Ordering::Relaxed);
    }

    /// `file` is in transfer (`None`: no file is), everything of it reported so far.
    pub(super) fn set_current(&self, file: Option<&FileInfo<'_>>) {
        *self.state.current.lock().unwrap_or_else(|p| p.into_inner()) = file.map(|f| Current {
            file: OwnedFile::of(f),
            unreported: None,
        });
    }

    /// The current file has `file_done` bytes, which no event has reported (`None`: all are).
    pub(super) fn set_unreported(&self, file_done: Option<u64>) {
        if let Some(c) = self
            .state
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            c.unreported = file_done;
        }
    }
}

/// A file named by an event, owned so it can cross to the calling thread.
#[derive(Clone)]
pub(super) struct OwnedFile {
    repo: String,
    path: String,
    index: u32,
    size: u64,
}

impl OwnedFile {
    fn of(f: &FileInfo<'_>) -> Self {
        OwnedFile {
            repo: f.repo.to_string(),
            path: f.path.to_string(),
            index: f.index,
            size: f.size,
        }
    }

    fn info(&self) -> FileInfo<'_> {
        FileInfo {
            repo: &self.repo,
            path: &self.path,
            index: self.index,
            size: self.size,
        }
    }
}

/// An [`Event`] with its borrowed parts owned. The worker waits while the calling thread delivers
/// it, but a channel cannot carry the worker's borrows, so they are copied (a few events a second).
pub(super) enum OwnedEvent {
    Resolved {
        repo: String,
        revision: String,
        commit: String,
    },
    WaitingForLock {
        repo: String,
        path: PathBuf,
    },
    PlanFile {
        file: OwnedFile,
        source: Source,
        on_disk: u64,
        totals: Totals,
    },
    Plan {
        totals: Totals,
    },
    FileStart {
        file: OwnedFile,
        offset: u64,
        totals: Totals,
    },
    Progress {
        file: OwnedFile,
        file_done: u64,
        totals: Totals,
    },
    FileDone {
        file: OwnedFile,
        reused: bool,
        totals: Totals,
    },
    Salvaged {
        file: OwnedFile,
        from: String,
        bytes: u64,
        how: Source,
    },
    Reclaimed {
        repo: String,
        snapshot: String,
        bytes: u64,
    },
    Retry {
        file: Option<OwnedFile>,
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    Restart {
        file: OwnedFile,
        reason: String,
    },
    Complete {
        repo: String,
        commit: String,
        snapshot: PathBuf,
        totals: Totals,
    },
    FromCache {
        cause: String,
    },
    Stopped {
        totals: Totals,
        snapshot: Option<PathBuf>,
        on_disk: u64,
    },
    Tick {
        phase: Phase,
        totals: Totals,
    },
}

impl OwnedEvent {
    pub(super) fn of(event: &Event<'_>) -> Self {
        let s = |v: &str| v.to_string();
        match *event {
            Event::PlanFile {
                file,
                source,
                on_disk,
                totals,
            } => OwnedEvent::PlanFile {
                file: OwnedFile::of(&file),
                source,
                on_disk,
                totals,
            },
            Event::FileStart {
                file,
                offset,
                totals,
            } => OwnedEvent::FileStart {
                file: OwnedFile::of(&file),
                offset,
                totals,
            },
            Event::Progress {
                file,
                file_done,
                totals,
            } => OwnedEvent::Progress {
                file: OwnedFile::of(&file),
                file_done,
                totals,
            },
            Event::FileDone {
                file,
                reused,
                totals,
            } => OwnedEvent::FileDone {
                file: OwnedFile::of(&file),
                reused,
                totals,
            },
            Event::Salvaged {
                file,
                from,
                bytes,
                how,
            } => OwnedEvent::Salvaged {
                file: OwnedFile::of(&file),
                from: s(from),
                bytes,
                how,
            },
            Event::Retry {
                file,
                attempt,
                delay,
                reason,
            } => OwnedEvent::Retry {
                file: file.as_ref().map(OwnedFile::of),
                attempt,
                delay,
                reason: s(reason),
            },
            Event::Restart { file, reason } => OwnedEvent::Restart {
                file: OwnedFile::of(&file),
                reason: s(reason),
            },
            _ => Self::of_other(event),
        }
    }

    /// The events that name no file.
    fn of_other(event: &Event<'_>) -> Self {
        let s = |v: &str| v.to_string();
        match *event {
            Event::Resolved {
                repo,
                revision,
                commit,
            } => OwnedEvent::Resolved {
                repo: s(repo),
                revision: s(revision),
                commit: s(commit),
            },
            Event::WaitingForLock { repo, path } => OwnedEvent::WaitingForLock {
                repo: s(repo),
                path: path.to_path_buf(),
            },
            Event::Plan { totals } => OwnedEvent::Plan { totals },
            Event::Reclaimed {
                repo,
                snapshot,
                bytes,
            } => OwnedEvent::Reclaimed {
                repo: s(repo),
                snapshot: s(snapshot),
                bytes,
            },
            Event::Complete {
                repo,
                commit,
                snapshot,
                totals,
            } => OwnedEvent::Complete {
                repo: s(repo),
                commit: s(commit),
                snapshot: snapshot.to_path_buf(),
                totals,
            },
            Event::FromCache { cause } => OwnedEvent::FromCache { cause: s(cause) },
            Event::Stopped {
                totals,
                snapshot,
                on_disk,
            } => OwnedEvent::Stopped {
                totals,
                snapshot: snapshot.map(std::path::Path::to_path_buf),
                on_disk,
            },
            Event::Tick { phase, totals } => OwnedEvent::Tick { phase, totals },
            _ => unreachable!("events naming a file are converted by the caller"),
        }
    }

    pub(super) fn as_event(&self) -> Event<'_> {
        match self {
            OwnedEvent::PlanFile {
                file,
                source,
                on_disk,
                totals,
            } => Event::PlanFile {
                file: file.info(),
                source: *source,
                on_disk: *on_disk,
                totals: *totals,
            },
            OwnedEvent::FileStart {
                file,
                offset,
                totals,
            } => Event::FileStart {
                file: file.info(),
                offset: *offset,
                totals: *totals,
            },
            OwnedEvent::Progress {
                file,
                file_done,
                totals,
            } => Event::Progress {
                file: file.info(),
                file_done: *file_done,
                totals: *totals,
            },
            OwnedEvent::FileDone {
                file,
                reused,
                totals,
            } => Event::FileDone {
                file: file.info(),
                reused: *reused,
                totals: *totals,
            },
            OwnedEvent::Salvaged {
                file,
                from,
                bytes,
                how,
            } => Event::Salvaged {
                file: file.info(),
                from,
                bytes: *bytes,
                how: *how,
            },
            OwnedEvent::Retry {
                file,
                attempt,
                delay,
                reason,
            } => Event::Retry {
                file: file.as_ref().map(OwnedFile::info),
                attempt: *attempt,
                delay: *delay,
                reason,
            },
            OwnedEvent::Restart { file, reason } => Event::Restart {
                file: file.info(),
                reason,
            },
            _ => self.as_other_event(),
        }
    }

    /// The events that name no file.
    fn as_other_event(&self) -> Event<'_> {
        match self {
            OwnedEvent::Resolved {
                repo,
                revision,
                commit,
            } => Event::Resolved {
                repo,
                revision,
                commit,
            },
            OwnedEvent::WaitingForLock { repo, path } => Event::WaitingForLock { repo, path },
            OwnedEvent::Plan { totals } => Event::Plan { totals: *totals },
            OwnedEvent::Reclaimed {
                repo,
                snapshot,
                bytes,
            } => Event::Reclaimed {
                repo,
                snapshot,
                bytes: *bytes,
            },
            OwnedEvent::Complete {
                repo,
                commit,
                snapshot,
                totals,
            } => Event::Complete {
                repo,
                commit,
                snapshot,
                totals: *totals,
            },
            OwnedEvent::FromCache { cause } => Event::FromCache { cause },
            OwnedEvent::Stopped {
                totals,
                snapshot,
                on_disk,
            } => Event::Stopped {
                totals: *totals,
                snapshot: snapshot.as_deref(),
                on_disk: *on_disk,
            },
            OwnedEvent::Tick { phase, totals } => Event::Tick {
                phase: *phase,
                totals: *totals,
            },
            _ => unreachable!("events naming a file are converted by the caller"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_the_trip() {
        let file = FileInfo {
            repo: "o/r",
            path: "a b.gguf",
            index: 2,
            size: 9,
        };
        let totals = Totals {
            total_files: 3,
            total_bytes: 30,
            ..Totals::default()
        };
        let events = [
            Event::Resolved {
                repo: "o/r",
                revision: "main",
                commit: "c",
            },
            Event::WaitingForLock {
                repo: "o/r",
                path: std::path::Path::new("/l"),
            },
            Event::PlanFile {
                file,
                source: Source::Resume,
                on_disk: 4,
                totals,
            },
            Event::Plan { totals },
            Event::FileStart {
                file,
                offset: 4,
                totals,
            },
            Event::Progress {
                file,
                file_done: 5,
                totals,
            },
            Event::FileDone {
                file,
                reused: true,
                totals,
            },
            Event::Salvaged {
                file,
                from: "old",
                bytes: 4,
                how: Source::SalvagePartial,
            },
            Event::Reclaimed {
                repo: "o/r",
                snapshot: "old",
                bytes: 4,
            },
            Event::Retry {
                file: Some(file),
                attempt: 1,
                delay: Duration::from_secs(1),
                reason: "x",
            },
            Event::Restart { file, reason: "y" },
            Event::Complete {
                repo: "o/r",
                commit: "c",
                snapshot: std::path::Path::new("/s"),
                totals,
            },
            Event::FromCache { cause: "refused" },
            Event::Stopped {
                totals,
                snapshot: Some(std::path::Path::new("/s")),
                on_disk: 3,
            },
            Event::Tick {
                phase: Phase::Verify,
                totals,
            },
        ];
        for e in &events {
            assert_eq!(
                format!("{:?}", OwnedEvent::of(e).as_event()),
                format!("{e:?}")
            );
        }
    }
}
