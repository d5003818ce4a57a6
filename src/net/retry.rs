//! Backoff schedule for retries: exponential with jitter, honouring `Retry-After`, bounded in count
//! and in total waiting time; and the retry bookkeeping of one stream of attempts at a file
//! ([`Failure`], [`Retrier`]), shared by the sequential and the parallel transfer.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result, Unreachable};
use crate::options::RetryPolicy;

/// Retries of a request whose host could not be reached at all (connection refused, connect
/// timeout, TLS handshake failure), and the longest wait before each: together a few seconds, so
/// a caller hears of an unreachable hub quickly (metadata calls then answer from the cache).
const UNREACHABLE_RETRIES: u32 = 2;
const UNREACHABLE_DELAY: Duration = Duration::from_secs(2);

/// Failures in a row that could not reach the host at all, and what they allow: one rule for
/// metadata calls and downloads alike.
#[derive(Debug, Default)]
pub(crate) struct UnreachableStreak(u32);

impl UnreachableStreak {
    /// The wait before retrying after `error`, given the backoff's `delay` (`None`: give up). A
    /// host that cannot be reached rarely comes back within minutes: a few quick tries, then the
    /// error. A name that did not resolve is not tried again: the resolver already asked every
    /// nameserver as often as configured. Any other failure leaves `delay` as it is.
    pub(crate) fn delay(&mut self, error: &Error, delay: Option<Duration>) -> Option<Duration> {
        match error {
            Error::Network {
                unreachable: Some(Unreachable::NameResolution),
                ..
            } => None,
            Error::Network {
                unreachable: Some(_),
                ..
            } => {
                self.0 += 1;
                delay
                    .filter(|_| self.0 <= UNREACHABLE_RETRIES)
                    .map(|d| d.min(UNREACHABLE_DELAY))
            }
            _ => {
                self.0 = 0;
                delay
            }
        }
    }
}

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
    /// How often a host that cannot be reached at all is tried again is [`UnreachableStreak`]'s
    /// rule, the same for metadata calls and downloads.
    pub(crate) fn network(e: Error) -> Failure {
        match e {
            e @ Error::Network { .. } => Failure::Retry {
                error: e,
                retry_after: None,
                status: None,
            },
            other => Failure::Fatal(other),
        }
    }
}

/// An attempt that ends with less than this much data made little progress (unless its data
/// flowed for [`LOW_PROGRESS_FLOW`]).
pub(crate) const LOW_PROGRESS_BYTES: u64 = 1 << 20;
/// An attempt whose data flowed for less than this made little progress (unless it brought
/// [`LOW_PROGRESS_BYTES`]).
pub(crate) const LOW_PROGRESS_FLOW: Duration = Duration::from_secs(2);

/// What one attempt received: its bytes and how long they flowed (first to last byte).
///
/// Little progress is "fewer than 1 MiB **and** less than 2 s of data flow". Both conditions,
/// because each alone misjudges a real link: bytes alone would fail a slow but steady link whose
/// proxy cuts connections after a while (300 KiB in 30 s is progress; such a pull completes),
/// and time alone would fail a fast link cut every second (50 MiB a time is progress). What is
/// left is the crawl: a server that cuts every answer after a few KiB, where reconnecting costs
/// more than the data it brings. The flow is measured from the first to the last byte, not to
/// the failure: a connection that sends 64 KiB and then stalls until the watchdog fires has not
/// been flowing for those seconds.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Received {
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Received {
    /// `n` bytes arrived just now.
    pub(crate) fn add(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.bytes += n;
    }

    /// Bytes received by the attempt.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the attempt brought real progress, which starts the retry budget over.
    fn is_real(&self) -> bool {
        let flow = match (self.first, self.last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        self.bytes >= LOW_PROGRESS_BYTES || flow >= LOW_PROGRESS_FLOW
    }
}

/// The next retry of a stream of attempts: how long to wait and what to report.
#[derive(Debug)]
pub(crate) struct RetryPlan {
    /// 1-based number of the retry.
    pub attempt: u32,
    pub delay: Duration,
    pub reason: String,
}

/// Retry bookkeeping of one stream of attempts at one file (the sequential transfer, or one
/// connection of a parallel one): the backoff schedule, and the last HTTP status, named in the
/// final error.
///
/// The budget ([`RetryPolicy::max_retries`], `max_total_wait`) covers the failures since the last
/// attempt that made real progress (see [`Received`]); such an attempt starts it over. An attempt
/// that failed after little progress is a failure like one that got nothing (its bytes are kept
/// all the same), so a server that cuts every answer short ends the transfer after the same
/// number of retries, and in the same time, as one that refuses every answer. No separate limit:
/// the policy's own count already says how many fruitless attempts a caller tolerates. When most
/// of the failures of that run received some bytes, the error names the pattern
/// ([`Error::LowProgress`]).
pub(crate) struct Retrier {
    backoff: Backoff,
    last_status: Option<u16>,
    /// Failures in a row that could not reach the host at all.
    unreachable: UnreachableStreak,
    /// Failures since the last real progress, those of them that received bytes, and their bytes.
    failures: u32,
    drops: u32,
    dropped_bytes: u64,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy) -> Retrier {
        Retrier {
            backoff: Backoff::new(policy),
            last_status: None,
            unreachable: UnreachableStreak::default(),
            failures: 0,
            drops: 0,
            dropped_bytes: 0,
        }
    }

    /// An attempt ended well: if it brought real progress, the budget starts over. A short
    /// request that completed (a small piece) changes nothing: it neither fails nor proves the
    /// link healthy, so it cannot hide a run of cut answers.
    pub(crate) fn succeeded(&mut self, got: &Received) {
        // The host answered: it is reachable again.
        self.unreachable = UnreachableStreak::default();
        if got.is_real() {
            self.start_over();
        }
    }

    fn start_over(&mut self) {
        self.backoff.reset();
        self.failures = 0;
        self.drops = 0;
        self.dropped_bytes = 0;
    }

    /// After a failed attempt that received `got`: the retry to make, or the error to give up
    /// with, naming the file.
    pub(crate) fn next(
        &mut self,
        failure: Failure,
        got: &Received,
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
        if got.is_real() {
            self.start_over();
        }
        self.failures += 1;
        if got.bytes() > 0 {
            self.drops += 1;
            self.dropped_bytes += got.bytes();
        }
        let delay = self.backoff.next_delay(retry_after);
        // The partial is kept when this gives up.
        let Some(delay) = self.unreachable.delay(&error, delay) else {
            return Err(self.give_up(error, path));
        };
        Ok(RetryPlan {
            attempt: self.backoff.attempt(),
            delay,
            reason: error.to_string(),
        })
    }

    /// The error that ends the retries: the pattern when most failures were cut-short answers,
    /// else the last failure itself.
    fn give_up(&self, error: Error, path: &str) -> Error {
        if self.drops == 0 || self.drops * 2 < self.failures {
            return with_file(error, path, self.last_status);
        }
        // The URL once, in the pattern's message; the last failure without it.
        let (url, last_error) = match error {
            Error::Network { url, message, .. } | Error::InvalidResponse { url, message } => {
                (url, message)
            }
            Error::Http {
                url,
                status,
                message,
                ..
            } if message.is_empty() => (url, format!("HTTP {status}")),
            Error::Http {
                url,
                status,
                message,
                ..
            } => (url, format!("HTTP {status}: {message}")),
            other => (String::new(), other.to_string()),
        };
        Error::LowProgress {
            url,
            file: path.to_string(),
            drops: self.drops,
            bytes: self.dropped_bytes,
            last_error,
            last_status: self.last_status,
        }
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
    fn an_unreachable_host_gets_two_quick_tries_and_a_name_that_did_not_resolve_none() {
        let refused = Error::Network {
            url: "u".into(),
            file: None,
            message: "refused".into(),
            last_status: None,
            unreachable: Some(Unreachable::Refused),
        };
        let long = Some(Duration::from_secs(60));
        let mut streak = UnreachableStreak::default();
        assert_eq!(streak.delay(&refused, long), Some(UNREACHABLE_DELAY));
        assert_eq!(streak.delay(&refused, long), Some(UNREACHABLE_DELAY));
        assert_eq!(streak.delay(&refused, long), None, "a third is the error");
        let other = Error::Internal("x".into());
        assert_eq!(
            streak.delay(&other, long),
            long,
            "another failure resets the streak"
        );
        assert_eq!(
            streak.delay(&refused, None),
            None,
            "never beyond the budget"
        );
        let unresolved = Error::Network {
            url: "u".into(),
            file: None,
            message: "not resolved".into(),
            last_status: None,
            unreachable: Some(Unreachable::NameResolution),
        };
        assert_eq!(UnreachableStreak::default().delay(&unresolved, long), None);
    }

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

    fn policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            max_total_wait: Duration::from_secs(60),
        }
    }

    fn dropped() -> Failure {
        Failure::network(Error::Network {
            url: "http://cdn/x".into(),
            file: None,
            message: "connection closed".into(),
            last_status: None,
            unreachable: None,
        })
    }

    fn got(bytes: u64, flow: Duration) -> Received {
        let now = Instant::now();
        Received {
            bytes,
            first: (bytes > 0).then_some(now),
            last: (bytes > 0).then(|| now + flow),
        }
    }

    #[test]
    fn cut_short_attempts_spend_the_budget_and_name_the_pattern() {
        let mut r = Retrier::new(policy(3));
        let little = got(64 << 10, Duration::from_millis(30));
        for attempt in 1..=3 {
            let plan = r.next(dropped(), &little, "m.gguf").expect("retry");
            assert_eq!(plan.attempt, attempt);
        }
        let e = r
            .next(dropped(), &little, "m.gguf")
            .expect_err("budget spent");
        assert_eq!(e.status(), crate::error::Status::Network);
        assert!(
            matches!(&e, Error::LowProgress { file, drops: 4, bytes, .. }
                if file == "m.gguf" && *bytes == 4 * (64 << 10)),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("connection dropped 4 times after less than 1 MiB each")
                && text.contains("m.gguf")
                && text.contains("partial kept"),
            "{text}"
        );
    }

    #[test]
    fn real_progress_by_bytes_or_by_time_starts_the_budget_over() {
        let mut r = Retrier::new(policy(3));
        for real in [
            got(1 << 20, Duration::ZERO),
            got(10 << 10, Duration::from_secs(2)),
        ] {
            for _ in 0..50 {
                assert_eq!(r.next(dropped(), &real, "f").expect("retry").attempt, 1);
            }
        }
        // A completed small request neither spends nor restores the budget; a real one restores.
        assert_eq!(
            r.next(dropped(), &got(1, Duration::ZERO), "f")
                .expect("retry")
                .attempt,
            2
        );
        r.succeeded(&got(100, Duration::ZERO));
        assert_eq!(
            r.next(dropped(), &got(1, Duration::ZERO), "f")
                .expect("retry")
                .attempt,
            3
        );
        r.succeeded(&got(1 << 20, Duration::ZERO));
        assert_eq!(
            r.next(dropped(), &got(1, Duration::ZERO), "f")
                .expect("retry")
                .attempt,
            1
        );
    }

    #[test]
    fn failures_without_bytes_keep_their_own_error() {
        let mut r = Retrier::new(policy(1));
        r.next(dropped(), &Received::default(), "f").expect("retry");
        let e = r
            .next(dropped(), &Received::default(), "f")
            .expect_err("budget spent");
        assert!(
            matches!(&e, Error::Network { file: Some(f), .. } if f == "f"),
            "{e:?}"
        );
        // Mostly refusals with one cut answer: still the refusal.
        let mut r = Retrier::new(policy(2));
        r.next(dropped(), &got(10, Duration::ZERO), "f")
            .expect("retry");
        r.next(dropped(), &Received::default(), "f").expect("retry");
        let e = r
            .next(dropped(), &Received::default(), "f")
            .expect_err("budget spent");
        assert!(matches!(&e, Error::Network { .. }), "{e:?}");
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
