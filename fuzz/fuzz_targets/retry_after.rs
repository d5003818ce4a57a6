//! `Retry-After`: delta-seconds or an IMF-fixdate. Input: 8 bytes of "now" (seconds since the
//! epoch, up to the year 9999), then the header value. Delta-seconds do not depend on now; a date
//! is a fixed instant (the wait from now is what remains of the wait from the epoch), and that
//! instant spelled back as an IMF-fixdate parses to the same wait.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use lemon_pull::fuzzing::retry_after;
use libfuzzer_sys::fuzz_target;
use mock_hub::civil_from_days;

/// 10000-01-01T00:00:00Z: the first instant an IMF-fixdate (four-digit year) cannot spell.
const YEAR_10000: u64 = 253_402_300_800;

fuzz_target!(|data: &[u8]| {
    let Some((now, value)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    let now_secs = u64::from_le_bytes(*now) % YEAR_10000;
    let from_now = retry_after(value, UNIX_EPOCH + Duration::from_secs(now_secs));
    let from_epoch = retry_after(value, UNIX_EPOCH);
    assert_eq!(from_now.is_some(), from_epoch.is_some(), "{value:?}");
    let (Some(from_now), Some(from_epoch)) = (from_now, from_epoch) else {
        return;
    };
    if let Ok(secs) = value.trim().parse::<u64>() {
        assert_eq!(from_now, Duration::from_secs(secs), "{value:?}");
        assert_eq!(from_epoch, from_now, "{value:?}");
        return;
    }
    assert_eq!(from_epoch.subsec_nanos(), 0, "{value:?}");
    assert_eq!(
        from_now,
        from_epoch.saturating_sub(Duration::from_secs(now_secs)),
        "{value:?} at {now_secs}"
    );
    let at = from_epoch.as_secs();
    if at < YEAR_10000 {
        let spelled = imf_fixdate(at);
        assert_eq!(
            retry_after(&spelled, UNIX_EPOCH),
            Some(from_epoch),
            "{value:?} spelled {spelled:?}"
        );
    }
});

/// `Sun, 06 Nov 1994 08:49:37 GMT` for `secs` since the epoch.
fn imf_fixdate(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
