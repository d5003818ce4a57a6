//! Offline pulls (`HF_HUB_OFFLINE=1` or the `offline` option): answer from the cache alone.
//!
//! The revision resolves through `refs/<rev>` (a full sha is taken as is), the snapshot must be
//! complete in lemonade's sense (no manifest, no `.partial`), the selection must find its files,
//! and every file we once verified must still match its stamp (re-hashed if its `stat` changed).
//! No network call is made; anything missing is a clear [`Error::NotCached`].

use std::path::{Path, PathBuf};

use crate::cache::{MANIFEST_NAME, PARTIAL_SUFFIX, RepoCache};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::progress::{Event, FileInfo, Reporter, Source};
use crate::pull::{PlannedFile, PullOutcome, RepoOutcome};
use crate::repo_path::is_commit_sha;
use crate::select::{Selection, select};
use crate::stamps::Stamps;
use crate::verify::hash_file;

/// Whether the environment asks for offline mode (`HF_HUB_OFFLINE` = 1/true/yes/on).
pub(crate) fn env_offline() -> bool {
    crate::options::env_flag("HF_HUB_OFFLINE")
}

/// One repository to answer from the cache: the main one (with a selection) or a component file.
pub(crate) struct Wanted<'a> {
    pub repo: &'a str,
    pub revision: &'a str,
    /// `Ok(selection)` for the main repo, `Err(path)` for a component's exact file.
    pub what: std::result::Result<&'a Selection, &'a str>,
}

/// Resolves every wanted repository from the cache and reports the files as present.
pub(crate) fn pull(
    cache_root: &Path,
    wanted: &[Wanted<'_>],
    reporter: &mut Reporter<'_>,
    cancel: &Cancel,
) -> Result<PullOutcome> {
    let mut repos = Vec::new();
    let mut plan = Vec::new();
    for w in wanted {
        let cache = RepoCache::new(cache_root, w.repo);
        let commit = resolve(&cache, w.repo, w.revision)?;
        let snapshot = cache.snapshot_dir(&commit);
        let files = complete_files(&snapshot, w.repo, &commit)?;
        let rels: Vec<&str> = files.iter().map(|(rel, _)| rel.as_str()).collect();
        let chosen: Vec<usize> = match w.what {
            Ok(selection) => select(w.repo, &rels, selection)?,
            Err(path) => match rels.iter().position(|r| *r == path) {
                Some(i) => vec![i],
                None => {
                    return Err(not_cached(
                        w.repo,
                        format!("{path:?} is not in cached snapshot {commit}"),
                    ));
                }
            },
        };
        let stamps = Stamps::load(&cache.state_dir(), &commit);
        for i in chosen {
            cancel.check()?;
            let (rel, size) = &files[i];
            check_stamp(&stamps, &snapshot, rel, *size, w.repo, cancel)?;
            if !plan
                .iter()
                .any(|p: &PlannedFile| p.repo == w.repo && p.path == *rel)
            {
                plan.push(PlannedFile {
                    repo: w.repo.to_string(),
                    path: rel.clone(),
                    size: *size,
                    source: Source::Present,
                    on_disk: *size,
                    from: None,
                });
            }
        }
        reporter.emit(&Event::Resolved {
            repo: w.repo,
            revision: w.revision,
            commit: &commit,
        })?;
        if !repos.iter().any(|r: &RepoOutcome| r.repo == w.repo) {
            repos.push(RepoOutcome {
                repo: w.repo.to_string(),
                revision: w.revision.to_string(),
                commit,
                snapshot_path: snapshot,
            });
        }
    }
    reporter.set_plan(plan.len() as u32, plan.iter().map(|p| p.size).sum());
    for (i, p) in plan.iter().enumerate() {
        let info = FileInfo {
            repo: &p.repo,
            path: &p.path,
            index: i as u32 + 1,
            size: p.size,
        };
        reporter.add_reused(p.size, false);
        reporter.file_start(info, p.size)?;
        reporter.file_done(info, true)?;
    }
    let main = &repos[0];
    let totals = reporter.totals();
    reporter.notify(&Event::Complete {
        repo: &main.repo,
        commit: &main.commit,
        snapshot: &main.snapshot_path,
        totals,
    });
    Ok(PullOutcome {
        repo: main.repo.clone(),
        revision: main.revision.clone(),
        commit: main.commit.clone(),
        snapshot_path: main.snapshot_path.clone(),
        files: plan.len() as u32,
        repos,
        totals,
        plan,
        reclaimed: Vec::new(),
        dry_run: false,
    })
}

fn not_cached(repo: &str, message: String) -> Error {
    Error::NotCached {
        repo: repo.to_string(),
        message,
    }
}

fn resolve(cache: &RepoCache, repo: &str, revision: &str) -> Result<String> {
    if is_commit_sha(revision) {
        return Ok(revision.to_string());
    }
    cache.read_ref(revision).ok_or_else(|| {
        not_cached(
            repo,
            format!(
                "no refs/{revision} in {}: pull it once while online",
                cache.dir().display()
            ),
        )
    })
}

/// The files of a complete snapshot as (repo path, size); symlinks into `blobs/` are followed.
fn complete_files(snapshot: &Path, repo: &str, commit: &str) -> Result<Vec<(String, u64)>> {
    if !snapshot.is_dir() {
        return Err(not_cached(
            repo,
            format!("snapshot {commit} is not in the cache"),
        ));
    }
    if snapshot.join(MANIFEST_NAME).exists() {
        return Err(not_cached(
            repo,
            format!("snapshot {commit} is incomplete (a download was interrupted)"),
        ));
    }
    let mut out = Vec::new();
    walk(snapshot, String::new(), 0, &mut out);
    if let Some((rel, _)) = out.iter().find(|(rel, _)| rel.ends_with(PARTIAL_SUFFIX)) {
        return Err(not_cached(
            repo,
            format!("snapshot {commit} is incomplete ({rel} is still partial)"),
        ));
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, prefix: String, depth: usize, out: &mut Vec<(String, u64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path: PathBuf = entry.path();
        match std::fs::metadata(&path) {
            Ok(m)
                if m.is_dir()
                    && depth < 32
                    && !entry.file_type().map(|t| t.is_symlink()).unwrap_or(true) =>
            {
                walk(&path, rel, depth + 1, out)
            }
            Ok(m) if m.is_file() => out.push((rel, m.len())),
            _ => {}
        }
    }
}

/// A file we verified once must still be that content: trusted while its `stat` is unchanged,
/// re-hashed otherwise.
fn check_stamp(
    stamps: &Stamps,
    snapshot: &Path,
    rel: &str,
    size: u64,
    repo: &str,
    cancel: &Cancel,
) -> Result<()> {
    let path = crate::repo_path::join_repo_path(snapshot, rel);
    let Some(id) = stamps.recorded_id(rel) else {
        return Ok(());
    };
    if stamps.is_verified(rel, &path, &id) || hash_file(&path, &id, size, cancel)? == id {
        return Ok(());
    }
    Err(not_cached(
        repo,
        format!("{rel} changed since it was verified (expected {id}); pull again online"),
    ))
}
