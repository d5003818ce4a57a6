//! The segments sidecar of a partial with holes (src/transfer/segments.rs). Input: the sidecar's
//! bytes, put where a resume reads them, beside a partial of known content.
//!
//! - a record that parses writes back to bytes that parse to the same record;
//! - the trusted ranges are sorted, disjoint, inside the partial and the file, and covered by the
//!   recorded ranges; a record for another size, or one that does not parse, trusts nothing;
//! - salvage's usable length is the total of what a resume trusts.
#![no_main]

mod common;

use lemon_pull::fuzzing::{
    segments_path, segments_reencode, segments_trusted, segments_usable_len,
};
use libfuzzer_sys::fuzz_target;

use common::PARTIAL_LEN;

fuzz_target!(|data: &[u8]| {
    let p = common::partial();
    std::fs::write(segments_path(&p.state_dir, &p.id), data).expect("write sidecar");

    let record = segments_reencode(data);
    if let Some(json) = &record {
        assert_eq!(segments_reencode(json).as_ref(), Some(json), "round trip");
    }
    let record: Option<serde_json::Value> =
        record.map(|json| serde_json::from_slice(&json).expect("re-encoded JSON"));
    let size = record.as_ref().and_then(|r| r["size"].as_u64());
    let recorded: Vec<(u64, u64)> = record
        .as_ref()
        .and_then(|r| r["done"].as_array())
        .map(|done| {
            done.iter()
                .filter_map(|d| Some((d["start"].as_u64()?, d["end"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();

    let trusted_total = |asked: u64| -> u64 {
        let ranges = segments_trusted(&p.state_dir, &p.id, &p.path, asked)
            .expect("a sidecar exists, so the partial is segmented");
        common::check_range_set(&ranges);
        if size != Some(asked) {
            assert!(ranges.is_empty(), "{ranges:?} trusted for size {asked}");
        }
        for &(a, b) in &ranges {
            assert!(b <= PARTIAL_LEN.min(asked), "{ranges:?}");
            assert!(covered(&recorded, a, b), "{ranges:?} not recorded");
        }
        ranges.iter().map(|(a, b)| b - a).sum()
    };
    let mut asked = vec![PARTIAL_LEN, PARTIAL_LEN * 2];
    asked.extend(size);
    for s in asked {
        trusted_total(s);
    }
    let usable = segments_usable_len(&p.state_dir, &p.id, &p.path, PARTIAL_LEN);
    match size {
        Some(s) => assert_eq!(usable, trusted_total(s)),
        None => assert_eq!(usable, 0, "an unreadable sidecar trusts nothing"),
    }
});

/// Whether the union of `ranges` covers `[a, b)`.
fn covered(ranges: &[(u64, u64)], a: u64, b: u64) -> bool {
    let mut sorted: Vec<(u64, u64)> = ranges.iter().copied().filter(|(s, e)| s < e).collect();
    sorted.sort_unstable();
    let mut at = a;
    for (s, e) in sorted {
        if s > at {
            break;
        }
        at = at.max(e);
        if at >= b {
            return true;
        }
    }
    at >= b
}
