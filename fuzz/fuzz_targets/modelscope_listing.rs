//! ModelScope's `/api/v1/models/{repo}/repo/files` answer, every body shape and the failure
//! envelope. Input: the revision on the first line, the body after it. A listing either names a
//! snapshot `modelscope-<safe revision>-<16 hex>` (the same for the same input) with safe, sorted,
//! clash-free files, or is refused with a typed error.
#![no_main]

mod common;

use lemon_pull::Error;
use lemon_pull::fuzzing::modelscope_listing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (revision, body) = text.split_once('\n').unwrap_or((text, ""));
    match modelscope_listing(revision, body) {
        Ok((snapshot, files)) => {
            let rest = snapshot.strip_prefix("modelscope-").expect("prefix");
            let (safe, hash) = rest.rsplit_once('-').expect("hash part");
            assert_eq!(hash.len(), 16, "{snapshot}");
            assert!(hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            assert!(!safe.is_empty() && safe.len() <= 48, "{snapshot}");
            assert!(
                safe.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
                "{snapshot}"
            );
            common::check_files(&files);
            assert!(files.windows(2).all(|w| w[0].path < w[1].path));
            let again = modelscope_listing(revision, body).expect("same input, same answer");
            assert_eq!(again.0, snapshot);
        }
        Err(e) => assert!(
            matches!(
                e,
                Error::InvalidResponse { .. }
                    | Error::UnsafePath { .. }
                    | Error::RepoNotFound { .. }
            ),
            "{e:?}"
        ),
    }
});
