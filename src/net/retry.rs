//! Backoff schedule for retries: exponential with jitter, honouring `Retry-After`, bounded in count
//! and in total waiting time; and the retry bookkeeping of one stream of attempts at a file
//! ([`Failure`], [`Retrier`]), shared by the sequential and the parallel transfer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result, Unreachable};
use crate::options::RetryPolicy;

/// Whether an HTTP status is worth retrying: timeouts, rate limits and server errors.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// Retry state of one request (or one file transfer).
pub(crate) struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
    waited: Duration,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Backoff {
            policy,
            attempt: 0,
            waited: Duration::ZERO,
            rng: seed | 1,
        }
    }

    /// Progress was made: the next failure starts the schedule over.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
        self.waited = Duration::ZERO;
    }

    /// Retries used since the last reset.
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next retry, or `None` when the budget (count or total wait) is spent.
    /// A server's `Retry-After` replaces the computed delay; it is honoured as given (not capped
    /// by `max_delay`), and a wait beyond the remaining total budget ends the retries instead.
    pub(crate) fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.attempt >= self.policy.max_retries {
            return None;
        }
        let delay = match retry_after {
            Some(d) => d,
            None => {
                let exp = self
                    .policy
                    .initial_delay
                    .saturating_mul(1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX))
                    .min(self.policy.max_delay);
                // Jitter in [50%, 100%] spreads out clients that failed together.
                let frac = 0.5 + (self.next_random() % 1000) as f64 / 2000.0;
                exp.mul_f64(frac)
            }
        };
        // Saturating: a hostile `Retry-After: 18446744073709551615` must end the retries, not
        // overflow the sum.
        let waited = self.waited.saturating_add(delay);
        if waited > self.policy.max_total_wait {
            return None;
        }
        self.attempt += 1;
        self.waited = waited;
        Some(delay)
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: jitter needs spread, not cryptographic quality.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date (IMF-fixdate).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate: a four-digit year).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: u64 = parts[0].parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == parts[1])? as u64 + 1;
    // Four digits, as IMF-fixdate requires; also keeps the day arithmetic far from overflow.
    let year: i64 = parts[2]
        .parse()
        .ok()
        .filter(|y| (1970..=9999).contains(y))?;
    let hms: Vec<u64> = parts[3]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 || day == 0 || day > 31 || hms[0] > 23 || hms[1] > 59 || hms[2] > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let secs = days.checked_mul(86_400)? + hms[0] * 3600 + hms[1] * 60 + hms[2];
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm); `None` before the epoch.
fn days_from_civil(y: i64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

/// Why one attempt ended early.
pub(crate) enum Failure {
    /// Worth another attempt after a backoff.
    Retry {
        error: Error,
        retry_after: Option<Duration>,
        status: Option<u16>,
    },
    /// Give up now.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

impl Failure {
    /// A network error is worth a retry; anything else (cancellation, a refused redirect) is not.
    /// Nor is a host name that did not resolve: the resolver already asked every nameserver as
    /// often as configured, and retrying would turn one clear failure into minutes of waiting
    /// (the partial is kept either way).
    pub(crate) fn network(e: Error) -> Failure {
        match e {
            e @ Error::Network {
                unreachable: Some(Unreachable::NameResolution),
                ..
            } => Failure::Fatal(e),
            e @ Error::Network { .. } => Failure::Retry {
                error: e,
                retry_after: None,
                status: None,
            },
            other => Failure::Fatal(other),
        }
    }
}

/// The next retry of a stream of attempts: how long to wait and what to report.
pub(crate) struct RetryPlan {
    /// 1-based number of the retry.
    pub attempt: u32,
    pub delay: Duration,
    pub reason: String,
}

/// Retry bookkeeping of one stream of attempts at one file (the sequential transfer, or one
/// connection of a parallel one): the backoff schedule, reset whenever bytes arrived, and the
/// last HTTP status, named in the final error.
pub(crate) struct Retrier {
    backoff: Backoff,
    last_status: Option<u16>,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy) -> Retrier {
        Retrier {
            backoff: Backoff::new(policy),
            last_status: None,
        }
    }

    /// Bytes arrived: the next failure starts the backoff schedule over.
    pub(crate) fn progressed(&mut self) {
        self.backoff.reset();
    }

    /// After a failed attempt (which received bytes if `progressed`): the retry to make, or the
    /// error to give up with, naming the file.
    pub(crate) fn next(
        &mut self,
        failure: Failure,
        progressed: bool,
        path: &str,
    ) -> Result<RetryPlan> {
        let (error, retry_after, status) = match failure {
            Failure::Fatal(e) => return Err(with_file(e, path, self.last_status)),
            Failure::Retry {
                error,
                retry_after,
                status,
            } => (error, retry_after, status),
        };
        if status.is_some() {
            self.last_status = status;
        }
        if progressed {
            self.progressed();
        }
        let Some(delay) = self.backoff.next_delay(retry_after) else {
            return Err(with_file(error, path, self.last_status));
        };
        Ok(RetryPlan {
            attempt: self.backoff.attempt(),
            delay,
            reason: error.to_string(),
        })
    }
}

/// Adds the file name and last HTTP status to the error that ended the transfer: a URL alone (a
/// signed CDN URL names a hash, not a file) does not tell the user which file failed.
fn with_file(e: Error, path: &str, last_status: Option<u16>) -> Error {
    match e {
        Error::InvalidResponse { url, message } if !message.contains(path) => {
            Error::InvalidResponse {
                url,
                message: format!("{message} (file {path})"),
            }
        }
        Error::Network {
            url,
            message,
            unreachable,
            ..
        } => Error::Network {
            url,
            file: Some(path.to_string()),
            message,
            last_status,
            unreachable,
        },
        Error::Http {
            url,
            status,
            message,
            ..
        } => Error::Http {
            url,
            file: Some(path.to_string()),
            status,
            message,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:30 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Foo 1994 08:49:30 GMT", now),
            None
        );
        // Found by the property test: a huge year overflowed the day count.
        assert_eq!(
            parse_retry_after("Sun, 01 Jan 25252734927766555 00:00:00 GMT", now),
            None
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Jan 9999 00:00:00 GMT", now).map(|d| d.as_secs() > 0),
            Some(true)
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let policy = RetryPolicy {
            max_retries: 4,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_total_wait: Duration::from_secs(10),
        };
        let mut b = Backoff::new(policy);
        let delays: Vec<_> = std::iter::from_fn(|| b.next_delay(None)).collect();
        assert_eq!(delays.len(), 4);
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_millis(50) && *d <= policy.max_delay)
        );
        b.reset();
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(99))),
            None,
            "beyond the total budget"
        );
    }

    #[test]
    fn total_wait_budget_stops_retries() {
        let policy = RetryPolicy {
            max_retries: 100,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(1),
            max_total_wait: Duration::from_millis(2500),
        };
        let mut b = Backoff::new(policy);
        let n = std::iter::from_fn(|| b.next_delay(Some(Duration::from_secs(1)))).count();
        assert_eq!(n, 2);
    }

    #[test]
    fn absurd_retry_after_ends_the_retries_instead_of_overflowing() {
        let mut b = Backoff::new(RetryPolicy::default());
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(1))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(b.next_delay(Some(Duration::from_secs(u64::MAX))), None);
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s));
        }
        for s in [200, 206, 301, 400, 401, 403, 404, 416] {
            assert!(!is_retryable_status(s));
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const DAYS: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Xyz"];
    const MONTHS: [&str; 13] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Foo",
    ];

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..100).prop_map(|n| format!("{n:02}")),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            "[0-9:+-]{0,8}",
        ]
    }

    fn policy() -> impl Strategy<Value = RetryPolicy> {
        (0u32..50, 0u64..5_000, 0u64..10_000, 0u64..100_000).prop_map(|(n, i, m, t)| RetryPolicy {
            max_retries: n,
            initial_delay: Duration::from_millis(i),
            max_delay: Duration::from_millis(m),
            max_total_wait: Duration::from_millis(t),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn retry_after_never_panics_on_anything(s in any::<String>(), now in any::<u64>()) {
            let now = UNIX_EPOCH.checked_add(Duration::from_secs(now % (1 << 40))).unwrap_or(UNIX_EPOCH);
            let _ = parse_retry_after(&s, now);
        }

        /// HTTP-dates with every field out of range or absurd: `None` or a sane duration.
        #[test]
        fn retry_after_dates_never_panic(
            wd in 0usize..8,
            day in prop_oneof![3 => (1u64..=31).prop_map(|n| format!("{n:02}")), 1 => field()],
            mon in 0usize..13,
            year in prop_oneof![
                2 => (1900i64..2200).prop_map(|y| y.to_string()),
                2 => any::<i64>().prop_map(|y| y.to_string()),
                1 => field(),
            ],
            h in prop_oneof![3 => (0u64..24).prop_map(|n| format!("{n:02}")), 1 => field()],
            m in prop_oneof![3 => (0u64..60).prop_map(|n| format!("{n:02}")), 1 => field()],
            sec in prop_oneof![3 => (0u64..61).prop_map(|n| format!("{n:02}")), 1 => field()],
            now in 0u64..(1 << 36),
        ) {
            let v = format!("{}, {day} {} {year} {h}:{m}:{sec} GMT", DAYS[wd], MONTHS[mon]);
            let now = UNIX_EPOCH + Duration::from_secs(now);
            if let Some(d) = parse_retry_after(&v, now) {
                // At most the distance to the end of year 9999.
                prop_assert!(d.as_secs() < 253_402_300_800, "{v}: {d:?}");
            }
        }

        #[test]
        fn retry_after_seconds_are_taken_as_given(n in any::<u64>()) {
            prop_assert_eq!(
                parse_retry_after(&n.to_string(), UNIX_EPOCH),
                Some(Duration::from_secs(n))
            );
        }

        /// Whatever the policy and the server's `Retry-After`s, the schedule never panics, never
        /// exceeds `max_retries`, and never waits more than `max_total_wait` in total.
        #[test]
        fn backoff_respects_the_budget(
            p in policy(),
            hints in proptest::collection::vec(proptest::option::of(any::<u64>()), 0..60),
        ) {
            let mut b = Backoff::new(p);
            let mut total = Duration::ZERO;
            let mut n = 0;
            for hint in hints {
                match b.next_delay(hint.map(Duration::from_secs)) {
                    Some(d) => {
                        total += d;
                        n += 1;
                    }
                    None => break,
                }
            }
            prop_assert!(n <= p.max_retries);
            prop_assert!(total <= p.max_total_wait);
        }
    }
}
