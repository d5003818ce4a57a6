//! `connections` = auto: how many connections one file's parallel pass uses, found while it runs.
//!
//! The pass starts with one connection and measures the rate over a [`WINDOW`]; then it doubles
//! the connections and measures again, as long as each step raised the rate by at least
//! [`MIN_GAIN`] and the limit is not reached. A step that gained less is undone (the connections
//! it added are retired) and the count settles. A window starts only once every connection of the
//! step has delivered bytes, so connection set-up (the redirect, the TLS handshake) does not count
//! against a step.
//!
//! Doubling keeps the search short (1, 2, 4, 8, 16: four windows) and makes a real gain stand out
//! from noise: under a per-connection cap a step doubles the rate, on a link that one connection
//! already fills it adds nothing. Extra connections are not free (threads, requests, and bytes
//! that arrive too far ahead of the hash are read back from disk), so a useless step is undone
//! rather than kept.

use std::time::{Duration, Instant};

/// How long each step's rate is measured.
pub(super) const WINDOW: Duration = Duration::from_millis(800);
/// A step must raise the rate by this fraction to be kept.
pub(super) const MIN_GAIN: f64 = 0.10;
/// How long a step waits for all its connections to deliver before measuring anyway (a
/// connection backing off after a failure must not hold the search).
const START_WAIT: Duration = Duration::from_secs(3);

/// What the pass should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Keep going as is.
    Hold,
    /// Use this many connections from now on (more than now).
    Grow(usize),
    /// Settle at this many connections (fewer than now: retire the rest).
    Shrink(usize),
}

/// The search for one pass.
#[derive(Debug)]
pub(super) struct Ramp {
    limit: usize,
    /// Connections of the current step.
    now: usize,
    /// The rate measured with the previous step's connections.
    before: Option<(usize, f64)>,
    /// When the current step began (connections added), and when its window began with the bytes
    /// received by then.
    step_began: Instant,
    window: Option<(Instant, u64)>,
    settled: bool,
}

impl Ramp {
    /// A search up to `limit` connections, starting now with one.
    pub(super) fn new(limit: usize, now: Instant) -> Ramp {
        Ramp {
            limit: limit.max(1),
            now: 1,
            before: None,
            step_began: now,
            window: None,
            settled: limit <= 1,
        }
    }

    /// Connections in use now (the settled count once the search is over).
    pub(super) fn connections(&self) -> usize {
        self.now
    }

    /// Called regularly: `bytes` received so far by the pass, `delivering` how many connections
    /// of the current step have received bytes since they were started.
    pub(super) fn tick(&mut self, now: Instant, bytes: u64, delivering: usize) -> Step {
        if self.settled {
            return Step::Hold;
        }
        let Some((began, at_start)) = self.window else {
            let waited = now.saturating_duration_since(self.step_began);
            if delivering >= self.now || waited >= START_WAIT {
                self.window = Some((now, bytes));
            }
            return Step::Hold;
        };
        let elapsed = now.saturating_duration_since(began);
        if elapsed < WINDOW {
            return Step::Hold;
        }
        let rate = bytes.saturating_sub(at_start) as f64 / elapsed.as_secs_f64();
        self.window = None;
        self.step_began = now;
        match self.before {
            Some((fewer, rate_before)) if rate < rate_before * (1.0 + MIN_GAIN) => {
                self.settled = true;
                self.now = fewer;
                Step::Shrink(fewer)
            }
            _ if self.now >= self.limit => {
                self.settled = true;
                Step::Hold
            }
            _ => {
                self.before = Some((self.now, rate));
                self.now = (self.now * 2).min(self.limit);
                Step::Grow(self.now)
            }
        }
    }

    /// Stops the search where it is (no piece left for more connections).
    pub(super) fn stop(&mut self) {
        self.settled = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a link that gives each connection `per` bytes/s up to `link`
    /// bytes/s in all, and returns the connections it settles on.
    fn settle(limit: usize, per: f64, link: f64) -> usize {
        let mut t = Instant::now();
        let mut ramp = Ramp::new(limit, t);
        let mut bytes = 0.0;
        let tick = Duration::from_millis(50);
        for _ in 0..2000 {
            t += tick;
            bytes += (ramp.connections() as f64 * per).min(link) * tick.as_secs_f64();
            match ramp.tick(t, bytes as u64, ramp.connections()) {
                Step::Hold | Step::Grow(_) => {}
                Step::Shrink(n) => assert_eq!(n, ramp.connections()),
            }
            if ramp.settled {
                return ramp.connections();
            }
        }
        panic!("never settled")
    }

    #[test]
    fn capped_connections_grow_to_the_limit() {
        assert_eq!(settle(16, 8e6, f64::INFINITY), 16);
        assert_eq!(settle(5, 8e6, f64::INFINITY), 5);
    }

    #[test]
    fn a_link_one_connection_fills_keeps_one() {
        assert_eq!(settle(16, 1e9, 1e9), 1);
    }

    #[test]
    fn growth_stops_where_the_link_is_full() {
        // Five connections fill it: 4 -> 8 still gains 25%, 8 -> 16 nothing.
        assert_eq!(settle(16, 8e6, 40e6), 8);
        // 4.2: 4 -> 8 gains 5%, undone.
        assert_eq!(settle(16, 8e6, 33.6e6), 4);
    }

    #[test]
    fn a_window_waits_for_the_new_connections_to_deliver() {
        let t0 = Instant::now();
        let mut ramp = Ramp::new(4, t0);
        // One connection, not yet delivering: no window starts.
        assert_eq!(ramp.tick(t0 + WINDOW * 2, 0, 0), Step::Hold);
        assert!(ramp.window.is_none());
        assert_eq!(ramp.tick(t0 + WINDOW * 2, 0, 1), Step::Hold);
        assert_eq!(ramp.tick(t0 + WINDOW * 3, 1000, 1), Step::Grow(2));
        // The new step waits for both, up to START_WAIT.
        let t1 = t0 + WINDOW * 3;
        assert_eq!(ramp.tick(t1 + START_WAIT / 2, 2000, 1), Step::Hold);
        assert!(ramp.window.is_none());
        assert_eq!(ramp.tick(t1 + START_WAIT, 2000, 1), Step::Hold);
        assert!(ramp.window.is_some(), "measured anyway after START_WAIT");
    }

    #[test]
    fn a_limit_of_one_never_searches() {
        let t0 = Instant::now();
        let mut ramp = Ramp::new(1, t0);
        assert_eq!(ramp.tick(t0 + WINDOW * 10, 1 << 30, 1), Step::Hold);
        assert_eq!(ramp.connections(), 1);
    }
}
