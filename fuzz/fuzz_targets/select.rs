//! GGUF variant selection and include/exclude globs (src/select/). Input lines: the variant (empty
//! for none), the include globs and the exclude globs (each tab-separated, empty for none), then
//! the listing, one path a line (paths a listing could not hold are dropped, as the listing parser
//! would refuse them).
//!
//! - a selection is non-empty, sorted by path and unique, or a typed error;
//! - a variant that is not a file name picks only `.gguf` files besides the root extras, and no
//!   vision projector unless it is `*` or names `mmproj`;
//! - every name `available_variants` lists selects its files (or the file of that name, which
//!   wins) or is reported as ambiguous: several variant groups, or several files whose names
//!   differ only in case (`A.gguf` and `A.GGUF` are both the variant `a.gguf`).
#![no_main]

use lemon_pull::Error;
use lemon_pull::fuzzing::{Selection, available_variants, select, validate_file_path};
use libfuzzer_sys::fuzz_target;

const EXTRAS: [&str; 4] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
];
const FILE_EXTENSIONS: [&str; 5] = [".safetensors", ".pth", ".ckpt", ".gguf", ".bin"];
/// Variant names tried per input: enough to cover every listing the fuzzer keeps small.
const MAX_NAMES_TRIED: usize = 16;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let variant = lines.next().filter(|v| !v.is_empty()).map(str::to_string);
    let globs = |line: Option<&str>| -> Vec<String> {
        line.filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let include = globs(lines.next());
    let exclude = globs(lines.next());
    let paths: Vec<&str> = lines.filter(|p| validate_file_path(p).is_ok()).collect();
    let selection = Selection {
        include,
        exclude,
        variant,
    };
    check(&paths, &selection);

    let names = available_variants(&paths);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    for name in names.iter().take(MAX_NAMES_TRIED) {
        let sel = Selection {
            variant: Some(name.clone()),
            ..Selection::default()
        };
        match select(&paths, &sel) {
            Ok(picked) => assert!(
                picked.iter().any(|&i| is_gguf(paths[i])) || names_a_file(&paths, name),
                "{name:?} picked no .gguf in {paths:?}"
            ),
            Err(Error::FileNotFound { message, .. })
                if message.starts_with("Multiple GGUF variant groups matched")
                    || message.starts_with("several files match this name") => {}
            Err(e) => panic!("listed variant {name:?} does not select in {paths:?}: {e:?}"),
        }
    }
});

/// Whether a file-name variant `name` names a file of the listing, which then wins over a group
/// of the same name (lemonade's precedence).
fn names_a_file(paths: &[&str], name: &str) -> bool {
    let lower = name.to_lowercase();
    FILE_EXTENSIONS.iter().any(|e| lower.ends_with(e))
        && paths.iter().any(|p| {
            p.to_lowercase() == lower || p.rsplit('/').next().unwrap_or(p).to_lowercase() == lower
        })
}

fn is_gguf(path: &str) -> bool {
    path.to_ascii_lowercase().ends_with(".gguf")
}

fn check(paths: &[&str], sel: &Selection) {
    let picked = match select(paths, sel) {
        Ok(picked) => picked,
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::InvalidArgument(_)
                        | Error::FileNotFound { .. }
                        | Error::NoFilesSelected { .. }
                ),
                "{e:?}"
            );
            return;
        }
    };
    assert!(!picked.is_empty());
    assert!(picked.iter().all(|&i| i < paths.len()), "{picked:?}");
    assert!(
        picked.windows(2).all(|w| paths[w[0]] < paths[w[1]]),
        "{picked:?} of {paths:?}"
    );
    if sel.variant.is_none() && sel.include.is_empty() && sel.exclude.is_empty() {
        let mut all = paths.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(picked.len(), all.len(), "no selector takes every file");
    }
    let Some(variant) = &sel.variant else {
        return;
    };
    let lower = variant.to_lowercase();
    if FILE_EXTENSIONS.iter().any(|e| lower.ends_with(e)) {
        return;
    }
    for &i in &picked {
        let p = paths[i];
        if EXTRAS.contains(&p) {
            continue;
        }
        assert!(is_gguf(p), "{variant:?} picked {p:?}");
        if variant != "*" && !lower.contains("mmproj") {
            assert!(
                !p.to_ascii_lowercase().contains("mmproj"),
                "{variant:?} picked projector {p:?}"
            );
        }
    }
}
