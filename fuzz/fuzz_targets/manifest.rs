//! `.download_manifest.json` of every version lemonade and lemon-pull wrote: whatever parses has
//! only named files, and writes back (current schema) to a file that reads as the same manifest.
#![no_main]

mod common;

use lemon_pull::fuzzing::{manifest, manifest_read, manifest_write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(m) = manifest(data) else {
        return;
    };
    for f in &m.files {
        assert!(!f.name.is_empty(), "{f:?}");
        assert!(
            f.download_path
                .as_ref()
                .is_none_or(|p| !p.as_os_str().is_empty()),
            "{f:?}"
        );
    }
    let path = common::scratch().join(".download_manifest.json");
    manifest_write(&m, &path).expect("a parsed manifest can be written");
    assert_eq!(manifest_read(&path).as_ref(), Some(&m), "write then read");
});
