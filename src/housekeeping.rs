//! What is in a repository's cache folder (`status`) and how to tidy it (`gc`), without network.
//!
//! `status` lists every snapshot folder: committed or in progress, files, bytes present, bytes
//! still missing (when a manifest records sizes), and bytes a later pull could salvage from it.
//! `gc` removes superseded snapshot folders (not named by any ref, while a ref names a committed
//! snapshot) and other tools' abandoned partials in `blobs/`. It is a dry run unless applied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::cache::{MANIFEST_NAME, RepoCache};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::registry::Registry;
use crate::salvage::{self, BLOBS, IdIndex};

/// One snapshot folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// Folder name (a commit sha for folders we or lemonade wrote).
    pub name: String,
    /// No manifest and no partial: lemonade treats it as a finished download.
    pub committed: bool,
    /// Refs that name it (`main`, `v1.0`, `refs/pr/1`).
    pub refs: Vec<String>,
    /// Complete files.
    pub files: u32,
    /// Partial files.
    pub partials: u32,
    /// Bytes of complete files.
    pub bytes_complete: u64,
    /// Bytes of partial files.
    pub bytes_partial: u64,
    /// Bytes still missing, when the manifest records the sizes.
    pub bytes_missing: Option<u64>,
    /// Bytes a later pull could take from here if the content is unchanged (in-progress folders).
    pub bytes_salvageable: u64,
}

/// Everything about one repository's cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoStatus {
    /// Repository id.
    pub repo: String,
    /// The `models--org--name` folder.
    pub dir: PathBuf,
    /// Snapshot folders, sorted by name.
    pub snapshots: Vec<SnapshotStatus>,
    /// Other tools' abandoned partials in `blobs/` (path, bytes).
    pub stale_partials: Vec<(PathBuf, u64)>,
}

/// Reads the state of `repo` of `registry` under `cache_root`.
pub fn status(cache_root: &Path, repo: &str, registry: Registry) -> Result<RepoStatus> {
    crate::repo_path::validate_repo_id(repo)?;
    let cache = RepoCache::of(cache_root, repo, registry);
    let ids = IdIndex::build(&[&cache]);
    let scan = salvage::scan(&cache, "", &ids);
    let refs = read_refs(&cache);
    // Per folder: (complete files, partials, bytes complete, bytes partial), in one pass.
    let mut held: HashMap<&str, (u32, u32, u64, u64)> = HashMap::new();
    for c in &scan.candidates {
        let h = held.entry(c.snapshot.as_str()).or_default();
        if c.partial {
            h.1 += 1;
            h.3 += c.len;
        } else {
            h.0 += 1;
            h.2 += c.len;
        }
    }
    let mut snapshots = Vec::new();
    for folder in &scan.folders {
        let (files, partials, bytes_complete, bytes_partial) =
            held.get(folder.name.as_str()).copied().unwrap_or_default();
        // A main repo's manifest also lists the component files it placed in other repos'
        // folders (their `download_path`): only this folder's own count here.
        let expected = Manifest::read(&folder.path.join(MANIFEST_NAME))
            .map(|m| {
                m.files
                    .iter()
                    .filter(|f| {
                        f.download_path
                            .as_ref()
                            .is_none_or(|p| *p == m.download_path)
                    })
                    .map(|f| f.size)
                    .sum::<u64>()
            })
            .filter(|total| *total > 0);
        snapshots.push(SnapshotStatus {
            name: folder.name.clone(),
            committed: folder.committed,
            refs: refs
                .iter()
                .filter(|(_, c)| *c == folder.name)
                .map(|(r, _)| r.clone())
                .collect(),
            files,
            partials,
            bytes_complete,
            bytes_partial,
            bytes_missing: expected.map(|t| t.saturating_sub(bytes_complete + bytes_partial)),
            bytes_salvageable: if folder.committed {
                0
            } else {
                bytes_complete + bytes_partial
            },
        });
    }
    let stale_partials = scan
        .candidates
        .iter()
        .filter(|c| c.snapshot == BLOBS && c.partial)
        .map(|c| (c.path.clone(), c.len))
        .collect();
    Ok(RepoStatus {
        repo: repo.to_string(),
        dir: cache.dir().to_path_buf(),
        snapshots,
        stale_partials,
    })
}

/// `(ref name, commit)` for every file under `refs/`.
fn read_refs(cache: &RepoCache) -> Vec<(String, String)> {
    fn walk(dir: &Path, prefix: &str, cache: &RepoCache, out: &mut Vec<(String, String)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path(), &rel, cache, out),
                Ok(t) if t.is_file() => {
                    if let Some(c) = cache.read_ref(&rel) {
                        out.push((rel, c));
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&cache.dir().join("refs"), "", cache, &mut out);
    out.sort();
    out
}

/// What `gc` removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Snapshot folders (name, bytes).
    pub snapshots: Vec<(String, u64)>,
    /// Other tools' abandoned partials (path, bytes).
    pub partials: Vec<(PathBuf, u64)>,
    /// Why nothing was removed, when that is the case for a reason worth saying.
    pub note: Option<String>,
    /// Whether anything was actually deleted.
    pub applied: bool,
}

impl GcReport {
    /// Bytes reclaimed (or reclaimable).
    pub fn bytes(&self) -> u64 {
        self.snapshots.iter().map(|s| s.1).sum::<u64>()
            + self.partials.iter().map(|p| p.1).sum::<u64>()
    }
}

/// Removes superseded snapshots and abandoned partials of `repo`; with `apply == false` only
/// reports what it would remove. When applying, the repo lock is taken before anything is judged:
/// a pull committing meanwhile changes which snapshot a ref names.
pub fn gc(
    cache_root: &Path,
    repo: &str,
    registry: Registry,
    apply: bool,
    cancel: &Cancel,
) -> Result<GcReport> {
    crate::repo_path::validate_repo_id(repo)?;
    let cache = RepoCache::of(cache_root, repo, registry);
    let _lock = if apply {
        Some(cache.lock(cancel, |_| Ok(()))?)
    } else {
        None
    };
    let st = status(cache_root, repo, registry)?;
    let mut report = GcReport {
        partials: st.stale_partials.clone(),
        ..GcReport::default()
    };
    let has_committed_ref = st
        .snapshots
        .iter()
        .any(|s| s.committed && !s.refs.is_empty());
    if has_committed_ref {
        report.snapshots = st
            .snapshots
            .iter()
            .filter(|s| s.refs.is_empty())
            .map(|s| (s.name.clone(), s.bytes_complete + s.bytes_partial))
            .collect();
    } else if !st.snapshots.is_empty() {
        report.note =
            Some("no ref names a complete snapshot, so no snapshot counts as superseded".into());
    }
    if !apply {
        return Ok(report);
    }
    for (name, _) in &report.snapshots {
        salvage::remove_orphan(&cache, name)?;
    }
    for (path, _) in &report.partials {
        crate::platform::remove_file(path).map_err(|e| Error::io("remove", path, e))?;
    }
    report.applied = true;
    Ok(report)
}
