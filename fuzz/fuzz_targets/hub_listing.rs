//! The answer of `/api/models/{repo}/revision/{rev}?blobs=true`: a typed error, or a 40-hex commit
//! and (when every sibling has a size and an id) safe files that sort without clashes or a typed
//! refusal.
#![no_main]

mod common;

use lemon_pull::fuzzing::hub_model_info;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    match hub_model_info(body) {
        Ok((commit, files)) => {
            assert!(
                commit.len() == 40
                    && commit
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{commit:?}"
            );
            if let Some(files) = files {
                assert!(!files.is_empty(), "an empty listing asks the tree API");
                common::check_files(&files);
                common::check_sort_unique(files);
            }
        }
        Err(e) => common::check_listing_error(&e),
    }
});
