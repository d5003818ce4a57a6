//! Offline pulls (`HF_HUB_OFFLINE=1` or the `offline` option): answer from the cache alone.
//!
//! The revision resolves through `refs/<rev>` (a full sha is taken as is), the snapshot must be
//! complete in lemonade's sense (no manifest, no `.partial`), the selection must find its files,
//! and every file we once verified must still match its stamp (re-hashed if its `stat` changed).
//! No network call is made; anything missing is a clear [`Error::NotCached`].
//!
//! A snapshot folder alone cannot show a file that was never downloaded: huggingface_hub leaves no
//! manifest when its `snapshot_download` stops between files. Where huggingface_hub (≥ 1.22) cached
//! the commit's tree listing in `trees/<commit>.json`, the selection is made from that listing and
//! every selected file must be on disk at its listed size; a component file that
//! `.no_exist/<commit>/<path>` records as absent is reported as not in the repository.

use std::path::Path;

use crate::cache::{MANIFEST_NAME, PARTIAL_SUFFIX, RepoCache};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::net::hub::MAX_FILE_SIZE;
use crate::options::FileSpec;
use crate::progress::{Event, Reporter, Source};
use crate::pull::{PlannedFile, PullOutcome, RepoOutcome};
use crate::registry::Registry;
use crate::repo_path::{is_commit_sha, validate_file_path};
use crate::salvage::{Links, files_below};
use crate::select::{Selection, select};
use crate::stamps::Stamps;
use crate::verify::hash_file;

/// One repository to answer from the cache: the main one (with a selection) or a component file.
pub(crate) struct Wanted<'a> {
    pub registry: Registry,
    pub repo: &'a str,
    pub revision: &'a str,
    /// A pinned commit: its snapshot answers, whatever `refs/<revision>` names.
    pub commit: Option<&'a str>,
    pub what: WantedFiles<'a>,
}

/// Which files of a wanted repository.
pub(crate) enum WantedFiles<'a> {
    /// A selection (the main repository's globs or variant).
    Select(&'a Selection),
    /// Exact paths (components, a caller's file list).
    Exact(&'a [FileSpec]),
}

/// The index of `path` among the snapshot's files; a file huggingface_hub recorded as absent is
/// [`Error::FileNotFound`], any other miss [`Error::NotCached`].
fn exact(cache: &RepoCache, repo: &str, commit: &str, rels: &[&str], path: &str) -> Result<usize> {
    match rels.iter().position(|r| *r == path) {
        Some(i) => Ok(i),
        None if known_absent(cache, commit, path) => Err(Error::FileNotFound {
            repo: repo.to_string(),
            path: path.to_string(),
            message: format!("not in commit {commit} (recorded in .no_exist by huggingface_hub)"),
        }),
        None => Err(not_cached(
            repo,
            format!("{path:?} is not in cached snapshot {commit}"),
        )),
    }
}

/// Resolves every wanted repository from the cache and reports the files as present.
pub(crate) fn pull(
    cache_root: &Path,
    wanted: &[Wanted<'_>],
    reporter: &mut Reporter,
    cancel: &Cancel,
) -> Result<PullOutcome> {
    let mut repos = Vec::new();
    let mut plan = Vec::new();
    for w in wanted {
        let repo = answer_one(cache_root, w, &mut plan, cancel)?;
        reporter.emit(&Event::Resolved {
            repo: w.repo,
            revision: w.revision,
            commit: &repo.commit,
        })?;
        if !repos.iter().any(|r: &RepoOutcome| r.repo == w.repo) {
            repos.push(repo);
        }
    }
    reporter.set_plan(plan.len() as u32, plan.iter().map(|p| p.size).sum());
    for (i, p) in plan.iter().enumerate() {
        let info = p.info(i);
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
        registry: wanted.first().map_or(Registry::HuggingFace, |w| w.registry),
        revision: main.revision.clone(),
        commit: main.commit.clone(),
        snapshot_path: main.snapshot_path.clone(),
        files: plan.len() as u32,
        repos,
        totals,
        plan,
        reclaimed: Vec::new(),
        from_cache: true,
        dry_run: false,
        connections: 0,
    })
}

/// One wanted repository from the cache: its snapshot must hold every chosen file, complete and
/// verified; adds them to `plan` as present.
fn answer_one(
    cache_root: &Path,
    w: &Wanted<'_>,
    plan: &mut Vec<PlannedFile>,
    cancel: &Cancel,
) -> Result<RepoOutcome> {
    let cache = RepoCache::of(cache_root, w.repo, w.registry);
    let commit = match w.commit {
        Some(c) => c.to_string(),
        None => resolve(&cache, w.repo, w.revision)?,
    };
    let snapshot = cache.snapshot_dir(&commit);
    let on_disk = complete_files(&snapshot, w.repo, &commit)?;
    let listed = cached_tree(&cache, &commit);
    let files = listed.as_ref().unwrap_or(&on_disk);
    let rels: Vec<&str> = files.iter().map(|(rel, _)| rel.as_str()).collect();
    let chosen: Vec<usize> = match w.what {
        WantedFiles::Select(selection) => select(w.repo, &rels, selection)?,
        WantedFiles::Exact(specs) => specs
            .iter()
            .map(|spec| exact(&cache, w.repo, &commit, &rels, &spec.path))
            .collect::<Result<_>>()?,
    };
    if listed.is_some() {
        for &i in &chosen {
            let (rel, size) = &files[i];
            let have = on_disk.iter().find(|(r, _)| r == rel).map(|(_, n)| *n);
            if have != Some(*size) {
                let state = have.map_or("missing".to_string(), |n| format!("{n} bytes"));
                return Err(not_cached(
                    w.repo,
                    format!(
                        "snapshot {commit} is incomplete: {rel} is {state}, the cached tree \
                         listing says {size} bytes"
                    ),
                ));
            }
        }
    }
    let stamps = Stamps::load(&cache.state_dir(), &commit);
    for i in chosen {
        cancel.check()?;
        let (rel, size) = &files[i];
        check_stamp(&stamps, &snapshot, rel, *size, w.repo, cancel)?;
        if !plan.iter().any(|p| p.repo == w.repo && p.path == *rel) {
            plan.push(PlannedFile {
                repo: w.repo.to_string(),
                path: rel.clone(),
                size: *size,
                source: Source::Present,
                on_disk: *size,
                from: None,
                hash_verified: stamps.recorded_id(rel).is_none_or(|id| id.is_digest()),
            });
        }
    }
    Ok(RepoOutcome {
        repo: w.repo.to_string(),
        revision: w.revision.to_string(),
        commit,
        snapshot_path: snapshot,
    })
}

/// Files of `commit` as huggingface_hub cached them in `trees/<commit>.json`
/// (`{"format_version": 1, "files": {"<path>": {"size": N, …}}}`), sorted by path; `None` when
/// there is no such file or it is not in that format. A listing with an unsafe path or an
/// implausible size is ignored as a whole: it is a hint, never trusted over the folder itself.
fn cached_tree(cache: &RepoCache, commit: &str) -> Option<Vec<(String, u64)>> {
    #[derive(serde::Deserialize)]
    struct TreeCache {
        format_version: u32,
        files: std::collections::BTreeMap<String, TreeFile>,
    }
    #[derive(serde::Deserialize)]
    struct TreeFile {
        size: u64,
    }
    let path = cache.dir().join("trees").join(format!("{commit}.json"));
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_TREE_CACHE_BYTES {
        return None;
    }
    let tree: TreeCache = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    if tree.format_version != 1 {
        return None;
    }
    tree.files
        .into_iter()
        .map(|(rel, f)| {
            let sane = validate_file_path("", &rel).is_ok() && f.size <= MAX_FILE_SIZE;
            sane.then_some((rel, f.size))
        })
        .collect()
}

/// Bound on the size of a `trees/<commit>.json` read (the Hub lists at most a few 100k files).
const MAX_TREE_CACHE_BYTES: u64 = 64 << 20;

/// huggingface_hub's negative cache: `.no_exist/<commit>/<path>` records a 404 for that file.
fn known_absent(cache: &RepoCache, commit: &str, path: &str) -> bool {
    validate_file_path("", path).is_ok()
        && crate::repo_path::join_repo_path(&cache.dir().join(".no_exist").join(commit), path)
            .is_file()
}

fn not_cached(repo: &str, message: String) -> Error {
    Error::NotCached {
        repo: repo.to_string(),
        message,
    }
}

fn resolve(cache: &RepoCache, repo: &str, revision: &str) -> Result<String> {
    if cache.registry() == Registry::HuggingFace && is_commit_sha(revision) {
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
    let found = files_below(snapshot, Links::FollowToFiles);
    if let Some(f) = found.iter().find(|f| f.partial) {
        return Err(not_cached(
            repo,
            format!(
                "snapshot {commit} is incomplete ({}{PARTIAL_SUFFIX} is still partial)",
                f.rel
            ),
        ));
    }
    let mut out: Vec<(String, u64)> = found.into_iter().map(|f| (f.rel, f.len)).collect();
    out.sort();
    Ok(out)
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
