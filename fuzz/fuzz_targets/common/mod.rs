//! Shared by the fuzz targets: a scratch folder, the partial file the sidecar targets check records
//! against, and the properties every accepted listing must have.
#![allow(dead_code)] // each target uses part of it

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lemon_pull::Error;
use lemon_pull::fuzzing::{self, ContentId, MAX_FILE_SIZE, RemoteFile};

/// Length of the partial the segments and checkpoint targets read. `seed.sh` writes records for
/// the same bytes (`i % 251`), so the seeds start with ranges whose crc32 really matches.
pub const PARTIAL_LEN: u64 = 200_000;

/// A folder of this process: `$LEMON_PULL_FUZZ_SCRATCH/<pid>` (run.sh points it at a temporary
/// folder on tmpfs, since the manifest target fsyncs every write), else under the temp folder.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = std::env::var_os("LEMON_PULL_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("lemon-pull-fuzz"));
        let dir = root.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

/// A partial of [`PARTIAL_LEN`] bytes and the state folder whose `partials/` holds its records.
pub struct Partial {
    pub state_dir: PathBuf,
    pub path: PathBuf,
    pub id: ContentId,
}

pub fn partial() -> &'static Partial {
    static PARTIAL: OnceLock<Partial> = OnceLock::new();
    PARTIAL.get_or_init(|| {
        let state_dir = scratch().join(".lemon-pull");
        std::fs::create_dir_all(state_dir.join("partials")).expect("partials folder");
        let path = scratch().join("model.gguf.partial");
        let bytes: Vec<u8> = (0..PARTIAL_LEN).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, bytes).expect("partial");
        Partial {
            state_dir,
            path,
            id: ContentId::Sha256("ab".repeat(32)),
        }
    })
}

/// What a listing parser accepted is safe to use: validated paths, bounded sizes, well-formed ids.
pub fn check_files(files: &[RemoteFile]) {
    for f in files {
        assert!(fuzzing::validate_file_path(&f.path).is_ok(), "{:?}", f.path);
        assert!(f.size <= MAX_FILE_SIZE, "{f:?}");
        let len = match &f.id {
            ContentId::Sha256(h) => (h, 64),
            ContentId::GitSha1(h) => (h, 40),
            ContentId::SizeOnly(h) => (h, 64),
        };
        assert!(
            len.0.len() == len.1
                && len
                    .0
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{f:?}"
        );
    }
}

/// Sorting a listing either refuses it with a typed error or leaves it sorted, without
/// duplicates, and without a path that is also the folder of another.
pub fn check_sort_unique(mut files: Vec<RemoteFile>) {
    match fuzzing::hub_sort_unique(&mut files) {
        Ok(()) => {
            assert!(files.windows(2).all(|w| w[0].path < w[1].path));
            let paths: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
            for f in &files {
                for (i, _) in f.path.match_indices('/') {
                    assert!(!paths.contains(&f.path[..i]), "{:?} clashes", f.path);
                }
            }
        }
        Err(e) => assert!(matches!(e, Error::InvalidResponse { .. }), "{e:?}"),
    }
}

/// A listing parser's error is one of the two a hostile listing may cause.
pub fn check_listing_error(e: &Error) {
    assert!(
        matches!(e, Error::InvalidResponse { .. } | Error::UnsafePath { .. }),
        "{e:?}"
    );
}

/// Sorted, disjoint, non-touching, non-empty half-open ranges.
pub fn check_range_set(ranges: &[(u64, u64)]) {
    assert!(ranges.iter().all(|(a, b)| a < b), "{ranges:?}");
    assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0), "{ranges:?}");
}
