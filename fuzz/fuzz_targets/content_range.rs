//! `Content-Range` of a `206`: an accepted range satisfies `first <= last < total`, and its
//! canonical spelling parses to the same triple.
#![no_main]

use lemon_pull::fuzzing::content_range;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Some((first, last, total)) = content_range(value) else {
        return;
    };
    assert!(first <= last, "{value:?}");
    let canonical = match total {
        Some(n) => {
            assert!(last < n, "{value:?}");
            format!("bytes {first}-{last}/{n}")
        }
        None => format!("bytes {first}-{last}/*"),
    };
    assert_eq!(
        content_range(&canonical),
        Some((first, last, total)),
        "{value:?}"
    );
});
