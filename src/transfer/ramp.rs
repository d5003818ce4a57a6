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
//!
//! One window can still lie: where the cores are the limit (a fast link, few cores), the rate of
//! a single window moves as other processes take a core (on a 2-core VM, a second connection on
//! a link one connection fills showed a 23% gain in one window), so a step that adds nothing can
//! look like a gain. A step that gained less than [`CLEAR_GAIN`] is therefore measured over a
//! second window, and kept only if both windows together show [`MIN_GAIN`]. Under a
//! per-connection cap every step roughly doubles the rate, so the search costs no extra window
//! there.

use std::time::{Duration, Instant};

/// How long each step's rate is measured.
pub(super) const WINDOW: Duration = Duration::from_millis(800);
/// A step must raise the rate by this fraction to be kept.
pub(super) const MIN_GAIN: f64 = 0.10;
/// A step that raised the rate by less than this (but by [`MIN_GAIN`] or more) is measured over a
/// second window before it is kept.
pub(super) const CLEAR_GAIN: f64 = 0.50;
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
    /// A first window of the current step that showed a gain below [`CLEAR_GAIN`]: its bytes and
    /// length, added to the second window's.
    first_window: Option<(u64, Duration)>,
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
            first_window: None,
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
        let mut measured = (bytes.saturating_sub(at_start), elapsed);
        let second = self.first_window.take();
        if let Some((more, longer)) = second {
            measured = (measured.0 + more, measured.1 + longer);
        }
        let rate = measured.0 as f64 / measured.1.as_secs_f64();
        self.window = None;
        self.step_began = now;
        match self.before {
            Some((fewer, rate_before)) if rate < rate_before * (1.0 + MIN_GAIN) => {
                self.settled = true;
                self.now = fewer;
                Step::Shrink(fewer)
            }
            Some((_, rate_before))
                if second.is_none() && rate < rate_before * (1.0 + CLEAR_GAIN) =>
            {
                // Every connection of the step delivers already: the second window starts now.
                self.first_window = Some(measured);
                self.window = Some((now, bytes));
                Step::Hold
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

    /// Stops the search where it is (no piece left for more connections). A step not yet judged
    /// is not kept: [`Ramp::connections`] then says the most connections a judged step showed to
    /// pay, not how many happened to run at the end (on a fast link a file can end during the
    /// first step, and "settled on 2" would claim a gain nobody measured).
    pub(super) fn stop(&mut self) {
        if !self.settled
            && let Some((fewer, _)) = self.before
        {
            self.now = fewer;
        }
        self.settled = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a link that gives each connection `per` bytes/s up to `link`
    /// bytes/s in all, and returns the connections it settles on.
    fn settle(limit: usize, per: f64, link: f64) -> usize {
        settle_on(limit, |n, _| (n as f64 * per).min(link)).0
    }

    /// Runs the search against a link whose rate with `n` connections at `t` seconds into the
    /// pass is `rate(n, t)`; returns the connections it settles on and when it settled (s).
    fn settle_on(limit: usize, rate: impl Fn(usize, f64) -> f64) -> (usize, f64) {
        let t0 = Instant::now();
        let mut t = t0;
        let mut ramp = Ramp::new(limit, t);
        let mut bytes = 0.0;
        let tick = Duration::from_millis(50);
        for _ in 0..2000 {
            t += tick;
            let since = (t - t0).as_secs_f64();
            bytes += rate(ramp.connections(), since) * tick.as_secs_f64();
            match ramp.tick(t, bytes as u64, ramp.connections()) {
                Step::Hold | Step::Grow(_) => {}
                Step::Shrink(n) => assert_eq!(n, ramp.connections()),
            }
            if ramp.settled {
                return (ramp.connections(), since);
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
    fn capped_growth_measures_one_window_a_step() {
        // 1, 2, 4, 8, 16: five windows (and a tick to start each), no second window anywhere.
        let (n, at) = settle_on(16, |n, _| n as f64 * 8e6);
        assert_eq!(n, 16);
        let windows = at / WINDOW.as_secs_f64();
        assert!(windows < 5.5, "settled after {windows:.2} windows");
    }

    #[test]
    fn a_single_lucky_window_is_not_kept() {
        // One connection fills the link; the first window with two happens to be 15% faster (the
        // machine's other processes paused). The second window shows the truth.
        let lucky = |n: usize, t: f64| match (n, t) {
            (2, t) if t < 1.75 => 1.15e9,
            _ => 1e9,
        };
        assert_eq!(settle_on(16, lucky).0, 1);
    }

    #[test]
    fn a_modest_real_gain_is_kept_after_a_second_window() {
        // 1 -> 2 gains 30% (below CLEAR_GAIN) in both windows; 2 -> 4 nothing.
        let (n, at) = settle_on(16, |n, _| if n == 1 { 1e9 } else { 1.3e9 });
        assert_eq!(n, 2);
        let windows = at / WINDOW.as_secs_f64();
        assert!(
            windows > 3.9,
            "the 2-connection step was measured twice ({windows:.2})"
        );
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
    fn a_search_cut_short_reports_the_last_judged_step() {
        let t0 = Instant::now();
        let mut ramp = Ramp::new(16, t0);
        assert_eq!(ramp.tick(t0, 0, 1), Step::Hold);
        assert_eq!(ramp.tick(t0 + WINDOW, 1000, 1), Step::Grow(2));
        // The file ends before two connections were measured.
        ramp.stop();
        assert_eq!(ramp.connections(), 1);
        // Once judged, a step stands.
        let mut ramp = Ramp::new(16, t0);
        let _ = ramp.tick(t0, 0, 1);
        let _ = ramp.tick(t0 + WINDOW, 1000, 1);
        let _ = ramp.tick(t0 + WINDOW, 1000, 2);
        assert_eq!(ramp.tick(t0 + WINDOW * 2, 3000, 2), Step::Grow(4));
        ramp.stop();
        assert_eq!(ramp.connections(), 2);
    }

    #[test]
    fn a_limit_of_one_never_searches() {
        let t0 = Instant::now();
        let mut ramp = Ramp::new(1, t0);
        assert_eq!(ramp.tick(t0 + WINDOW * 10, 1 << 30, 1), Step::Hold);
        assert_eq!(ramp.connections(), 1);
    }
}
