//! One page of `/api/models/{repo}/tree/{commit}?recursive=true` with its pagination. Input: the
//! `Link` header on the first line, the JSON body after it. The `rel="next"` target is one that the
//! header spells between `<` and `>`; the page's files are safe and sort without clashes or are
//! refused with a typed error.
#![no_main]

mod common;

use lemon_pull::fuzzing::{hub_next_link, hub_tree_page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (link, body) = text.split_once('\n').unwrap_or((text, ""));
    if let Some(next) = hub_next_link(link) {
        assert!(link.contains(&format!("<{next}>")), "{link:?} -> {next:?}");
        assert!(!next.contains(','), "{next:?}");
    }
    match hub_tree_page(body) {
        Ok(files) => {
            common::check_files(&files);
            common::check_sort_unique(files);
        }
        Err(e) => common::check_listing_error(&e),
    }
});
