//! Checkpoints of a partial (src/transfer/checkpoint.rs). Input: the checkpoint file's bytes, put
//! where a resume reads them, beside a partial of known content.
//!
//! - a record that parses writes back to bytes that parse to the same record;
//! - a resume trusts at most what the partial holds: all of it when there is no readable record,
//!   else the recorded length or nothing.
#![no_main]

mod common;

use lemon_pull::fuzzing::{checkpoint_path, checkpoint_reencode, checkpoint_trusted_len};
use libfuzzer_sys::fuzz_target;

use common::PARTIAL_LEN;

fuzz_target!(|data: &[u8]| {
    let p = common::partial();
    std::fs::write(checkpoint_path(&p.state_dir, &p.id), data).expect("write checkpoint");

    let record = checkpoint_reencode(data);
    if let Some(json) = &record {
        assert_eq!(checkpoint_reencode(json).as_ref(), Some(json), "round trip");
    }
    let len = record.map(|json| {
        let v: serde_json::Value = serde_json::from_slice(&json).expect("re-encoded JSON");
        v["len"].as_u64().expect("a record has a length")
    });
    let mut haves = vec![PARTIAL_LEN, 0, u64::MAX];
    haves.extend(len.into_iter().flat_map(|l| [l, l.saturating_sub(1)]));
    for have in haves {
        let trusted = checkpoint_trusted_len(&p.state_dir, &p.id, &p.path, have);
        assert!(trusted <= have, "{trusted} of {have}");
        match len {
            None => assert_eq!(trusted, have, "no readable checkpoint keeps the partial"),
            Some(l) => {
                assert!(
                    trusted == l || trusted == 0,
                    "{trusted} for a checkpoint at {l}"
                );
                assert!(trusted <= PARTIAL_LEN, "{trusted} beyond the partial");
            }
        }
    }
});
