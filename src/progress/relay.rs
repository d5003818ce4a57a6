//! Runs a pull on a scoped worker thread while the calling thread delivers its events.
//!
//! Why: a callback-only caller (lemonade cancels by returning `false` from its progress callback)
//! must hear from the pull at least every [`TICK_INTERVAL`], also while the pull is blocked in a
//! stalled read, a name lookup, a retry backoff or a lock wait. The pipeline's blocking points
//! already poll [`Cancel`] every 50 ms, but they cannot call the observer: it lives on the calling
//! thread and is not `Send`. So the pipeline runs on a worker, and the calling thread waits for its
//! events with a timeout; when the wait times out it sends an [`Event::Tick`]. An event is a
//! rendezvous: the worker waits for the observer's answer, so events keep their order and a
//! `Flow::Cancel` takes effect at the event that asked for it, exactly as with a direct call.
//! The worker is scoped: it ends before [`relay`] returns.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::reporter::Reporter;
use super::{Event, FileInfo, Flow, Observer, Phase, Source, Totals};
use crate::cancel::Cancel;

/// How long the calling thread waits for an event before it ticks. Below [`TICK_INTERVAL`] so
/// scheduling delays do not push an interval over it.
const TICK_AFTER: Duration = Duration::from_millis(200);

/// Runs `work` on a scoped worker with a [`Reporter`] whose events reach `observer` on this
/// thread, ticking while nothing happens. A panic in `work` resumes on this thread.
pub(crate) fn relay<T: Send>(
    observer: &mut dyn Observer,
    cancel: &Cancel,
    work: impl FnOnce(&mut Reporter<'static>) -> T + Send,
) -> T {
    let state = Arc::new(State::default());
    let (events, inbox) = sync_channel::<Message>(0);
    let (answers, answer_inbox) = sync_channel::<Flow>(1);
    let end = RelayEnd {
        events,
        answers: answer_inbox,
        state: state.clone(),
        cancel: cancel.clone(),
    };
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let mut reporter = Reporter::new(end, cancel.clone());
            work(&mut reporter)
        });
        // If the observer panics, the worker must stop too, or the scope would wait for it.
        let _stop_on_unwind = CancelOnUnwind(cancel);
        deliver(inbox, answers, observer, cancel, &state);
        match worker.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Delivers the worker's events and ticks until the worker is done (its sender is dropped).
fn deliver(
    inbox: Receiver<Message>,
    answers: SyncSender<Flow>,
    observer: &mut dyn Observer,
    cancel: &Cancel,
    state: &State,
) {
    let mut last = Instant::now();
    loop {
        let wait = TICK_AFTER.saturating_sub(last.elapsed());
        match inbox.recv_timeout(wait) {
            Ok(Message::Ask(event)) => {
                let flow = observer.on_event(&event.as_event());
                // The worker waits for this answer; it is gone only if it ended (then no one asks).
                let _ = answers.send(flow);
            }
            Ok(Message::Tell(event)) => {
                let _ = observer.on_event(&event.as_event());
            }
            Err(RecvTimeoutError::Timeout) => {
                // After a cancel the worker is winding down; ticks would only invite a second answer.
                if !cancel.is_cancelled() {
                    let (phase, totals) = state.snapshot();
                    if observer.on_event(&Event::Tick { phase, totals }) == Flow::Cancel {
                        cancel.cancel();
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        last = Instant::now();
    }
}

/// Cancels the pull if the calling thread unwinds (a panicking observer), so the worker stops.
struct CancelOnUnwind<'a>(&'a Cancel);

impl Drop for CancelOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.cancel();
        }
    }
}

/// What ticks report: the phase and totals the worker last published.
#[derive(Default)]
struct State {
    phase: AtomicU8,
    totals: Mutex<Totals>,
}

impl State {
    fn snapshot(&self) -> (Phase, Totals) {
        let phase = Phase::from_index(self.phase.load(Ordering::Relaxed));
        // A poisoned lock only means a panic elsewhere; the totals inside are still plain numbers.
        let totals = *self.totals.lock().unwrap_or_else(|p| p.into_inner());
        (phase, totals)
    }
}

enum Message {
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
}

/// A file named by an event, owned so it can cross to the calling thread.
struct OwnedFile {
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
enum OwnedEvent {
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
    fn of(event: &Event<'_>) -> Self {
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

    fn as_event(&self) -> Event<'_> {
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
    use crate::error::{Error, Result};
    use crate::progress::TICK_INTERVAL;

    /// Records what the observer saw and when, and answers with `answer` for each event.
    fn run_with(
        work_for: Duration,
        answer: impl Fn(&Event<'_>) -> Flow,
    ) -> (Result<()>, Vec<(Instant, String)>, Duration) {
        let mut seen = Vec::new();
        let mut observer = |e: &Event<'_>| {
            let name = match e {
                Event::Tick { phase, .. } => format!("tick {}", phase.name()),
                Event::Plan { .. } => "plan".to_string(),
                _ => "other".to_string(),
            };
            seen.push((Instant::now(), name));
            answer(e)
        };
        let cancel = Cancel::default();
        let started = Instant::now();
        let result = relay(&mut observer, &cancel, |reporter| {
            reporter.set_phase(Phase::Lock);
            reporter.emit(&Event::Plan {
                totals: Totals::default(),
            })?;
            // A blocking step that polls only the cancel state, as the pipeline's waits do.
            reporter.cancel().sleep(work_for)?;
            reporter.set_phase(Phase::Commit);
            reporter.emit(&Event::Plan {
                totals: Totals::default(),
            })
        });
        (result, seen, started.elapsed())
    }

    #[test]
    fn ticks_fill_a_silent_wait_and_name_its_phase() {
        let (result, seen, _) = run_with(Duration::from_millis(1100), |_| Flow::Continue);
        result.expect("pull");
        assert_eq!(seen.first().map(|s| s.1.as_str()), Some("plan"));
        assert_eq!(seen.last().map(|s| s.1.as_str()), Some("plan"));
        let ticks = seen.iter().filter(|s| s.1 == "tick lock").count();
        assert!(ticks >= 4, "a 1.1 s wait gave only {ticks} ticks: {seen:?}");
        for pair in seen.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!(gap <= TICK_INTERVAL, "{gap:?} between events");
        }
    }

    #[test]
    fn a_cancel_answered_to_a_tick_stops_the_worker_promptly() {
        let (result, seen, took) = run_with(Duration::from_secs(30), |e| match e {
            Event::Tick { .. } => Flow::Cancel,
            _ => Flow::Continue,
        });
        assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(seen.iter().filter(|s| s.1.starts_with("tick")).count(), 1);
    }

    #[test]
    fn a_cancel_answered_to_an_event_is_that_events_error() {
        let (result, seen, took) = run_with(Duration::from_secs(30), |_| Flow::Cancel);
        assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(seen.len(), 1, "{seen:?}");
    }

    #[test]
    fn a_panicking_observer_stops_the_worker_and_the_panic_reaches_the_caller() {
        let outcome = std::panic::catch_unwind(|| {
            run_with(Duration::from_secs(30), |e| match e {
                Event::Tick { .. } => panic!("observer bug"),
                _ => Flow::Continue,
            })
        });
        assert!(outcome.is_err());
    }

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
