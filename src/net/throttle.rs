//! Bandwidth limit: a token bucket shared by every connection of a pull.
//!
//! Tokens (bytes) refill at the configured rate up to a burst of a tenth of a second's worth, so the
//! average over any window of a few seconds stays within a few percent of the rate while single
//! reads are never delayed for long. Waiting goes through [`Cancel::sleep`], so a throttled pull
//! still cancels within ~100 ms.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::error::Result;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A shared byte-rate limiter.
#[derive(Debug)]
pub struct Throttle {
    rate: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

impl Throttle {
    /// A limiter of `bytes_per_sec` (must be > 0).
    pub fn new(bytes_per_sec: u64) -> Throttle {
        let rate = bytes_per_sec.max(1) as f64;
        // A read larger than the burst simply runs the bucket into debt, repaid by the next wait.
        let burst = rate / 10.0;
        Throttle {
            rate,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// How long a caller that just received `n` bytes at `now` must wait before reading on.
    fn debit(&self, n: u64, now: Instant) -> Duration {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = now;
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst) - n as f64;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }

    /// Accounts for `n` bytes just received and sleeps (cancellably) until the rate allows more.
    pub fn consume(&self, n: u64, cancel: &Cancel) -> Result<()> {
        let wait = self.debit(n, Instant::now());
        if wait.is_zero() {
            cancel.check()
        } else {
            cancel.sleep(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a reader that gets `chunk` bytes instantly whenever allowed, for `secs` seconds of
    /// simulated time, and returns the average rate.
    fn simulate(rate: u64, chunk: u64, secs: f64) -> f64 {
        let t = Throttle::new(rate);
        let start = Instant::now();
        let mut now = start;
        let mut total = 0u64;
        while now.duration_since(start).as_secs_f64() < secs {
            total += chunk;
            now += t.debit(chunk, now);
        }
        total as f64 / now.duration_since(start).as_secs_f64()
    }

    #[test]
    fn average_rate_is_within_a_few_percent_over_ten_seconds() {
        for (rate, chunk) in [
            (50 << 20, 1 << 20),
            (1 << 20, 256 << 10),
            (100_000, 16 << 10),
            (10 << 20, 1 << 20),
        ] {
            let got = simulate(rate, chunk, 10.0);
            let err = (got - rate as f64).abs() / rate as f64;
            assert!(
                err < 0.03,
                "rate {rate} chunk {chunk}: got {got:.0} ({:.1}% off)",
                err * 100.0
            );
        }
    }

    #[test]
    fn idle_time_does_not_bank_more_than_a_burst() {
        let t = Throttle::new(1 << 20);
        let now = Instant::now() + Duration::from_secs(100);
        // After a long idle period only ~0.1 s worth may pass without waiting.
        assert_eq!(t.debit(100 << 10, now), Duration::ZERO);
        assert!(t.debit(100 << 10, now) > Duration::ZERO);
    }
}
