//! The names that cross a trust boundary (src/repo_path.rs). The whole input is tried as a file
//! path from a listing, a repo id and a revision (with and without the Windows rules); its lines
//! as a listing for the case-collision check.
//!
//! - an accepted file path lands under the snapshot folder as exactly one plain name per segment,
//!   none of them reserved or too long for its `.partial`;
//! - percent-encoding keeps only unreserved bytes and decodes back to the input;
//! - an accepted repo id gives a cache folder that is one plain name and maps back to the id;
//! - an accepted revision's ref file is under `refs/`, one plain name per segment, so two
//!   revisions never share a ref file.
#![no_main]

use std::path::{Component, Path};

use lemon_pull::fuzzing::{
    case_collision, encode_path, encode_segment, join_repo_path, ref_path, repo_folder_name,
    revision_problem, validate_file_path, validate_repo_id, validate_revision,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    file_path(s);
    encoding(s);
    repo_id(s);
    revision(s);
    let lines: Vec<&str> = s.lines().collect();
    if let Some((a, b)) = case_collision(&lines) {
        assert!(
            a != b && lines.contains(&a) && lines.contains(&b),
            "{a:?} {b:?}"
        );
    }
});

/// `path` below `base` as plain names, one per `/`-separated segment of `rel`.
fn plain_names_below(base: &Path, path: &Path, rel: &str) {
    let rest = path
        .strip_prefix(base)
        .unwrap_or_else(|_| panic!("{rel:?} leaves {base:?}: {path:?}"));
    let names: Vec<Component<'_>> = rest.components().collect();
    assert!(
        names.iter().all(|c| matches!(c, Component::Normal(_))),
        "{rel:?}: {path:?}"
    );
    assert_eq!(names.len(), rel.split('/').count(), "{rel:?}: {path:?}");
}

fn file_path(s: &str) {
    if validate_file_path(s).is_err() {
        return;
    }
    assert!(s.len() <= 1024, "{s:?}");
    assert!(!s.contains(['\\', ':']), "{s:?}");
    assert!(!s.chars().any(char::is_control), "{s:?}");
    let base = Path::new("/cache/models--org--repo/snapshots/c");
    plain_names_below(base, &join_repo_path(base, s), s);
    for seg in s.split('/') {
        let lower = seg.to_ascii_lowercase();
        assert!(seg.len() <= 255, "{s:?}");
        assert!(!lower.ends_with(".partial"), "{s:?}");
        assert!(lower != ".download_manifest.json", "{s:?}");
    }
    let name = s.rsplit('/').next().unwrap_or(s);
    assert!(name.len() + ".partial".len() <= 255, "{s:?}");
}

fn encoding(s: &str) {
    let path = encode_path(s);
    let segment = encode_segment(s);
    let allowed = |keep_slash: bool| {
        move |b: u8| b.is_ascii_alphanumeric() || b"-._~%".contains(&b) || (keep_slash && b == b'/')
    };
    assert!(path.bytes().all(allowed(true)), "{path:?}");
    assert!(segment.bytes().all(allowed(false)), "{segment:?}");
    assert_eq!(percent_decode(&path), s.as_bytes(), "{s:?}");
    assert_eq!(percent_decode(&segment), s.as_bytes(), "{s:?}");
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn repo_id(s: &str) {
    if validate_repo_id(s).is_err() {
        return;
    }
    let folder = repo_folder_name(s);
    let mut parts = Path::new(&folder).components();
    assert!(
        matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(_)), None)
        ),
        "{s:?}: {folder:?}"
    );
    let back = folder
        .strip_prefix("models--")
        .map(|rest| rest.replace("--", "/"));
    assert_eq!(back.as_deref(), Some(s), "{folder:?}");
}

fn revision(s: &str) {
    assert_eq!(
        validate_revision(s).is_ok(),
        revision_problem(s, cfg!(windows)).is_none(),
        "{s:?}"
    );
    // The Windows rules only add refusals.
    if revision_problem(s, false).is_some() {
        assert!(revision_problem(s, true).is_some(), "{s:?}");
    }
    if revision_problem(s, false).is_some() {
        return;
    }
    let root = Path::new("/cache");
    let refs = ref_path(root, "main");
    let refs = refs.parent().expect("refs folder");
    plain_names_below(refs, &ref_path(root, s), s);
}
