//! The heartbeat (issue 12, item 1): while a pull runs, its observer hears from it at least every
//! 250 ms in every phase, and a cancel answered to any event — a tick included — ends the pull
//! promptly with the partial and the manifest kept. lemonade cancels only through its progress
//! callback, so these are the paths it depends on.

use std::fs::{self, OpenOptions};
use std::time::{Duration, Instant};

use crate::common::{TempDir, options};
use lemon_pull::{Error, Event, Flow, Phase, PullOptions};
use mock_hub::{Fault, MockFile, MockHub, Target, pseudo_random_bytes};

const REPO: &str = "org/model";
const BIG: usize = 8 << 20;

fn hub_with_model() -> (MockHub, String) {
    let hub = MockHub::start();
    let sha = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", br#"{"arch": "llama"}"#.to_vec()),
            MockFile::lfs("model.gguf", pseudo_random_bytes(3, BIG)),
        ],
    );
    (hub, sha)
}

/// What one pull showed its observer: when each event came, and when the observer said cancel.
struct Run {
    result: lemon_pull::Result<lemon_pull::PullOutcome>,
    /// (time, tick phase or None for another event)
    events: Vec<(Instant, Option<Phase>)>,
    cancelled_at: Option<Instant>,
    returned_at: Instant,
    /// The `Stopped` event of a failed pull: (snapshot, bytes on disk).
    stopped: Option<(Option<std::path::PathBuf>, u64)>,
}

impl Run {
    fn ticks_in(&self, phase: Phase) -> usize {
        self.events.iter().filter(|e| e.1 == Some(phase)).count()
    }

    /// The longest silence the observer had to bear between two events (or from the last to the
    /// return), up to the cancel.
    fn longest_gap(&self) -> Duration {
        let end = self.cancelled_at.unwrap_or(self.returned_at);
        let times: Vec<Instant> = self
            .events
            .iter()
            .map(|e| e.0)
            .filter(|t| *t <= end)
            .collect();
        times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    }

    fn cancel_latency(&self) -> Duration {
        self.returned_at - self.cancelled_at.expect("the observer cancelled")
    }
}

/// Pulls with an observer that cancels once `cancel_when` says so for an event at an instant.
fn run(opts: &PullOptions, mut cancel_when: impl FnMut(&Event<'_>, Instant) -> bool) -> Run {
    let mut events = Vec::new();
    let mut cancelled_at = None;
    let mut stopped = None;
    let result = lemon_pull::pull(opts, &mut |e: &Event<'_>| {
        let now = Instant::now();
        if let Event::Stopped {
            snapshot, on_disk, ..
        } = e
        {
            stopped = Some((snapshot.map(std::path::Path::to_path_buf), *on_disk));
        }
        events.push((
            now,
            if let Event::Tick { phase, .. } = e {
                Some(*phase)
            } else {
                None
            },
        ));
        if cancelled_at.is_none() && cancel_when(e, now) {
            cancelled_at = Some(now);
            return Flow::Cancel;
        }
        Flow::Continue
    });
    Run {
        result,
        events,
        cancelled_at,
        returned_at: Instant::now(),
        stopped,
    }
}

fn assert_cancelled_promptly(run: &Run, what: &str) {
    assert!(
        matches!(run.result, Err(Error::Cancelled)),
        "{what}: {:?}",
        run.result
    );
    let latency = run.cancel_latency();
    println!(
        "{what}: cancel latency {latency:?}, longest silence {:?}",
        run.longest_gap()
    );
    // The design bound is 500 ms; the assertion leaves room for a loaded test machine.
    assert!(
        latency < Duration::from_secs(2),
        "{what}: cancel took {latency:?}"
    );
}

#[test]
fn a_stalled_connection_ticks_and_a_cancel_from_a_tick_keeps_the_partial() {
    let (hub, sha) = hub_with_model();
    hub.push_fault(
        Target::Cdn("model.gguf".into()),
        Fault::StallAfter {
            bytes: 2 << 20,
            stall: Duration::from_secs(30),
        },
    );
    let tmp = TempDir::new("heartbeat-stall");
    let mut opts = options(&hub.endpoint(), tmp.path(), REPO);
    opts.stall_timeout = Duration::from_secs(60);
    let mut last_bytes = Instant::now();
    let run = run(&opts, |e, now| {
        if let Event::Progress { .. } | Event::FileStart { .. } = e {
            last_bytes = now;
        }
        // 2 s into the silence, as lemonade's user pressing cancel would.
        matches!(e, Event::Tick { .. }) && now - last_bytes >= Duration::from_secs(2)
    });
    assert_cancelled_promptly(&run, "stalled read");
    // What the failed pull left, as its last event said.
    let snap = tmp.path().join("models--org--model/snapshots").join(&sha);
    let kept: u64 = ["config.json", "model.gguf.partial"]
        .iter()
        .filter_map(|f| fs::metadata(snap.join(f)).ok())
        .map(|m| m.len())
        .sum();
    assert_eq!(
        run.stopped,
        Some((Some(snap.clone()), kept)),
        "Stopped event"
    );
    assert!(
        run.ticks_in(Phase::Transfer) >= 5,
        "ticks: {:?}",
        run.events
    );
    assert!(
        run.longest_gap() <= Duration::from_secs(1),
        "silence {:?}",
        run.longest_gap()
    );
    let snap = tmp.path().join("models--org--model/snapshots").join(&sha);
    let partial = fs::metadata(snap.join("model.gguf.partial")).expect("partial kept");
    assert!(
        partial.len() >= 1 << 20,
        "partial holds {} bytes",
        partial.len()
    );
    assert!(
        snap.join(".download_manifest.json").exists(),
        "manifest kept"
    );
}

#[test]
fn a_retry_after_wait_ticks_as_backoff_and_is_cancellable() {
    let (hub, _) = hub_with_model();
    hub.push_fault(
        Target::Api,
        Fault::Status {
            code: 429,
            retry_after: Some("30".into()),
        },
    );
    let tmp = TempDir::new("heartbeat-backoff");
    let mut opts = options(&hub.endpoint(), tmp.path(), REPO);
    opts.retry.max_total_wait = Duration::from_secs(120);
    opts.retry.max_delay = Duration::from_secs(120);
    let mut retry_at = None;
    let run = run(&opts, |e, now| {
        if let Event::Retry { delay, .. } = e {
            assert!(
                *delay >= Duration::from_secs(29),
                "Retry-After honoured: {delay:?}"
            );
            retry_at = Some(now);
        }
        matches!(e, Event::Tick { .. })
            && retry_at.is_some_and(|t| now - t >= Duration::from_secs(1))
    });
    assert_cancelled_promptly(&run, "Retry-After wait");
    assert!(run.ticks_in(Phase::Backoff) >= 3, "ticks: {:?}", run.events);
}

#[test]
fn a_lock_wait_ticks_as_lock_and_is_cancellable() {
    let (hub, _) = hub_with_model();
    let tmp = TempDir::new("heartbeat-lock");
    // Another process's pull holds the repository's lock (a lock on another open file
    // description conflicts in this process too).
    let state = tmp.path().join("models--org--model/.lemon-pull");
    fs::create_dir_all(&state).expect("state dir");
    let held = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.join("lock"))
        .expect("lock file");
    held.lock().expect("hold the lock");
    let opts = options(&hub.endpoint(), tmp.path(), REPO);
    let mut waiting_at = None;
    let run = run(&opts, |e, now| {
        if let Event::WaitingForLock { .. } = e {
            waiting_at = Some(now);
        }
        matches!(e, Event::Tick { .. })
            && waiting_at.is_some_and(|t| now - t >= Duration::from_secs(1))
    });
    assert_cancelled_promptly(&run, "lock wait");
    assert!(run.ticks_in(Phase::Lock) >= 3, "ticks: {:?}", run.events);
    drop(held);
}

#[test]
fn a_pull_that_never_waits_still_ends_with_complete_and_ticks_carry_totals() {
    let (hub, _) = hub_with_model();
    hub.set_rate_limit(Some(4 << 20));
    let tmp = TempDir::new("heartbeat-totals");
    let opts = options(&hub.endpoint(), tmp.path(), REPO);
    let mut tick_done = Vec::new();
    let mut last_was_complete = false;
    let result = lemon_pull::pull(&opts, &mut |e: &Event<'_>| {
        if let Event::Tick { totals, .. } = e {
            tick_done.push(totals.done_bytes);
        }
        last_was_complete = matches!(e, Event::Complete { .. });
        Flow::Continue
    });
    result.expect("pull");
    assert!(last_was_complete, "Complete is the last event");
    // Progress events come ten a second while bytes flow, so ticks are rare here; any that came
    // carry totals that never go backwards.
    assert!(tick_done.windows(2).all(|w| w[0] <= w[1]), "{tick_done:?}");
}

/// Bytes that arrive in a burst just before a stall are reported during the stall: the throttle
/// may hold back the last `Progress` event, but the quiet that follows sends it instead of a tick,
/// so a UI shows what is on disk, not the count of the last event before the burst ended.
#[test]
fn a_burst_before_a_stall_is_reported_while_the_stall_lasts() {
    let (hub, _) = hub_with_model();
    let burst = 2u64 << 20;
    hub.push_fault(
        Target::Cdn("model.gguf".into()),
        Fault::StallAfter {
            bytes: burst,
            stall: Duration::from_secs(30),
        },
    );
    let tmp = TempDir::new("heartbeat-burst");
    let mut opts = options(&hub.endpoint(), tmp.path(), REPO);
    opts.stall_timeout = Duration::from_secs(60);
    let mut seen = 0;
    let mut quiet_since = None;
    let run = run(&opts, |e, now| {
        match e {
            Event::Progress {
                file, file_done, ..
            } if file.path == "model.gguf" => seen = seen.max(*file_done),
            Event::Tick { .. } => {
                quiet_since.get_or_insert(now);
            }
            _ => {}
        }
        // Give the quiet a second, then stop.
        quiet_since.is_some_and(|t| now - t >= Duration::from_secs(1))
    });
    assert_cancelled_promptly(&run, "burst then stall");
    assert_eq!(
        seen, burst,
        "the observer heard of every byte before the stall"
    );
}
