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

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use super::channel::{Message, RelayEnd, State};
use super::reporter::Reporter;
use super::{Event, Flow, Observer};
use crate::cancel::Cancel;

/// How long the calling thread waits for an event before it ticks. Below [`TICK_INTERVAL`] so
/// scheduling delays do not push an interval over it.
const TICK_AFTER: Duration = Duration::from_millis(200);

/// Runs `work` on a scoped worker with a [`Reporter`] whose events reach `observer` on this
/// thread, ticking while nothing happens. A panic in `work` resumes on this thread.
pub(crate) fn relay<T: Send>(
    observer: &mut dyn Observer,
    cancel: &Cancel,
    work: impl FnOnce(&mut Reporter) -> T + Send,
) -> T {
    let state = Arc::new(State::default());
    let (events, inbox) = sync_channel::<Message>(0);
    let (answers, answer_inbox) = sync_channel::<Flow>(1);
    let end = RelayEnd::new(events, answer_inbox, state.clone(), cancel.clone());
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
                    let flow = match state.take_unreported() {
                        Some(progress) => observer.on_event(&progress.as_event()),
                        None => {
                            let (phase, totals) = state.snapshot();
                            observer.on_event(&Event::Tick { phase, totals })
                        }
                    };
                    if flow == Flow::Cancel {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use crate::progress::{Phase, TICK_INTERVAL, Totals};

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
}
