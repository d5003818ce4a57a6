//! The pipeline of one pull: resolve → select → lock → plan → manifest → transfer → commit.
//!
//! A pull covers a main repository plus optional [`Component`]s from other repositories; each
//! repository keeps its own `models--…` folder, snapshot and ref, while the one manifest lives in
//! the main snapshot (lemonade's multi-repo layout).

mod commit;
mod execute;
mod fallback;
pub(crate) mod from_cache;
mod keep_previous;
mod plan;
mod request;
mod resolve;
mod reuse;

use fallback::{answer_from_cache, fall_back_to_cache};
use plan::Plan;
use request::{Request, Want};
use resolve::resolve_units;

use std::path::PathBuf;

use crate::cache::{RepoCache, RepoLock};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::net::http::{Http, HttpConfig};
use crate::net::hub::{Listing, RemoteFile};
use crate::options::{PullOptions, resolve_token};
use crate::progress::{Event, FileInfo, Observer, Phase, Reporter, Source, Totals};
use crate::registry::Registry;
use crate::salvage;

/// What a successful pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    /// Main repository id.
    pub repo: String,
    /// The registry every repository of the pull lives in.
    pub registry: Registry,
    /// Revision asked for.
    pub revision: String,
    /// Commit of the main snapshot.
    pub commit: String,
    /// The main `snapshots/<commit>` folder.
    pub snapshot_path: PathBuf,
    /// Every repository of the pull, the main one first.
    pub repos: Vec<RepoOutcome>,
    /// Number of files in the pull (all repositories).
    pub files: u32,
    /// Final totals (bytes downloaded, reused, salvaged).
    pub totals: Totals,
    /// Per-file plan (filled for every pull; the only result of a dry run).
    pub plan: Vec<PlannedFile>,
    /// Orphaned snapshot folders removed after the commit (dry run: that would be removed).
    pub reclaimed: Vec<Reclaimed>,
    /// True for a dry run: nothing was written.
    pub dry_run: bool,
    /// True when the answer came from the cache alone: asked for (`offline`), or because the hub
    /// could not be reached and a complete snapshot of the revision was cached.
    pub from_cache: bool,
    /// The most ranged connections a file was fetched with in this call, as its transfer ended
    /// (with [`AUTO_CONNECTIONS`](crate::AUTO_CONNECTIONS): what the search settled on; a step
    /// the file ended before it was measured does not count); 0 when nothing was downloaded.
    pub connections: u32,
}

/// One repository's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoOutcome {
    /// Repository id.
    pub repo: String,
    /// Revision asked for.
    pub revision: String,
    /// Commit its snapshot holds.
    pub commit: String,
    /// Its `snapshots/<commit>` folder.
    pub snapshot_path: PathBuf,
}

/// One file of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Repository the file belongs to.
    pub repo: String,
    /// Repo-relative path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Where its bytes come from.
    pub source: Source,
    /// Bytes already on disk (in the target or, for salvage, in `from`).
    pub on_disk: u64,
    /// The snapshot folder the bytes come from, for salvaged and linked files.
    pub from: Option<String>,
    /// False when the registry listed no hash for the file (some ModelScope files): only its
    /// size is checked, and its bytes are never taken from another snapshot.
    pub hash_verified: bool,
}

/// An orphaned snapshot folder removed after the pull (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    /// Repository id.
    pub repo: String,
    /// Folder name under `snapshots/`.
    pub snapshot: String,
    /// Bytes it held.
    pub bytes: u64,
}

impl PlannedFile {
    /// Bytes this file still needs from the network (at most).
    pub fn missing(&self) -> u64 {
        self.size - self.on_disk.min(self.size)
    }

    /// The file as progress events name it, `index` being its 0-based place in the plan.
    pub(crate) fn info(&self, index: usize) -> FileInfo<'_> {
        FileInfo {
            repo: &self.repo,
            path: &self.path,
            index: index as u32 + 1,
            size: self.size,
        }
    }
}

/// Pulls `opts.repo` (and `opts.components`) into the cache, reporting progress to `observer`.
///
/// Runs on the calling thread; the observer is called on this thread only, during the call.
/// Cancellation (token, check, or the observer returning [`crate::Flow::Cancel`]) returns
/// [`Error::Cancelled`] within about 100 ms and keeps partial files and the manifest.
pub fn pull(opts: &PullOptions, observer: &mut dyn Observer) -> Result<PullOutcome> {
    let cancel = Cancel::new(opts.cancel.clone(), opts.cancel_check.clone());
    crate::progress::relay(observer, &cancel, |reporter| {
        let result = run(opts, reporter);
        if result.is_err() {
            let on_disk = reporter.snapshot().map_or(0, |dir| {
                salvage::files_below(dir, salvage::Links::Skip)
                    .iter()
                    .map(|f| f.len)
                    .sum()
            });
            reporter.stopped(on_disk);
        }
        result
    })
}

/// The pipeline itself, on the relay's worker thread: request → offline or online → resolve →
/// lock → plan → salvage → transfer → commit.
fn run(opts: &PullOptions, reporter: &mut Reporter) -> Result<PullOutcome> {
    let from_env;
    let opts = if opts.read_environment {
        from_env = crate::environment::apply(opts);
        &from_env
    } else {
        opts
    };
    let req = Request::from_options(opts)?;
    if opts.offline {
        return answer_from_cache(&req, opts, reporter);
    }
    let http = connect(&req, opts, reporter.cancel())?;
    reporter.set_phase(Phase::Resolve);
    let mut units = match resolve_units(&http, &req, opts, reporter) {
        Err(
            e @ Error::Network {
                unreachable: Some(_),
                ..
            },
        ) if opts.cache_fallback => {
            return fall_back_to_cache(&req, opts, reporter, e);
        }
        other => other?,
    };
    reporter.set_snapshot(units[0].cache.snapshot_dir(&units[0].listing.commit));
    reporter.set_phase(Phase::Lock);
    let _locks = lock_all(&units, &req, opts, reporter)?;
    // lemonade keeps a previous snapshot on the Hub only: a ModelScope snapshot is a tree
    // fingerprint, which an unchanged selection in a changed tree does not keep.
    if opts.keep_unchanged_snapshot && req.registry == Registry::HuggingFace {
        for unit in &mut units {
            let wants: Vec<&Want> = unit.wants.iter().map(|&i| &req.wants[i]).collect();
            keep_previous::keep_if_unchanged(&http, unit, &wants, opts, reporter)?;
        }
    }
    reporter.set_phase(Phase::Plan);
    let mut plan = Plan::build(&units, opts.dry_run, reporter)?;
    let mut outcome = outcome_of(&units, &plan, opts, reporter);
    if opts.dry_run {
        outcome.reclaimed = commit::reclaimable(&units, &plan);
        return Ok(outcome);
    }
    plan::preflight_space(&units, &outcome.plan)?;
    let manifest_path = commit::mark_in_progress(&http, &units, &plan)?;
    reporter.set_phase(Phase::Salvage);
    let moved = execute::salvage_all(&units, &mut plan, reporter)?;
    outcome.plan = plan.planned();
    reporter.set_phase(Phase::Transfer);
    outcome.connections = execute::transfer_all(&http, &units, &mut plan, opts, reporter)?;
    reporter.set_phase(Phase::Commit);
    commit::finish(&units, &plan, &manifest_path, moved, &mut outcome, reporter)?;
    Ok(outcome)
}

/// The HTTP client of this pull.
fn connect(req: &Request, opts: &PullOptions, cancel: &Cancel) -> Result<Http> {
    let http = Http::new(
        &HttpConfig {
            endpoint: req.endpoint.clone(),
            token: resolve_token(opts.token.as_deref()),
            session_cookie: req.registry == Registry::ModelScope,
            connect_timeout: opts.connect_timeout,
            stall_timeout: opts.stall_timeout,
            api_timeout: opts.api_timeout,
            max_bytes_per_sec: opts.max_bytes_per_sec,
            ca_bundle: opts.ca_bundle.clone(),
            proxy: opts.proxy.clone(),
            read_environment: opts.read_environment,
            dns_timeout: opts.dns_timeout,
            resolver: opts.resolver.clone(),
        },
        cancel.clone(),
    )?;
    cancel.check()?;
    Ok(http)
}

/// Takes every repository's lock (none for a dry run), in a fixed order (by folder) so two
/// multi-repo pulls cannot deadlock; waits cancellably, reporting the wait.
fn lock_all(
    units: &[Unit],
    req: &Request,
    opts: &PullOptions,
    reporter: &mut Reporter,
) -> Result<Vec<RepoLock>> {
    if opts.dry_run {
        return Ok(Vec::new());
    }
    let cancel = reporter.cancel().clone();
    let mut order: Vec<&Unit> = units.iter().collect();
    order.sort_by(|a, b| a.cache.dir().cmp(b.cache.dir()));
    // Two units of one repository (two refs) share its folder and so its lock: take it once, or
    // the second attempt would wait for ourselves.
    order.dedup_by(|a, b| a.cache.dir() == b.cache.dir());
    let mut locks = Vec::with_capacity(order.len());
    for unit in order {
        locks.push(unit.cache.lock(&cancel, |path| {
            reporter.emit(&Event::WaitingForLock {
                repo: &unit.listing.repo,
                path,
            })
        })?);
    }
    // The locks created the cache root if it was missing.
    crate::cache::tag_cache_root(&req.cache_root);
    Ok(locks)
}

/// The outcome as planned: every repository's snapshot and the plan.
fn outcome_of(units: &[Unit], plan: &Plan, opts: &PullOptions, reporter: &Reporter) -> PullOutcome {
    let main = &units[0];
    let planned = plan.planned();
    PullOutcome {
        repo: main.listing.repo.clone(),
        registry: opts.registry,
        revision: main.listing.revision.clone(),
        commit: main.listing.commit.clone(),
        snapshot_path: main.cache.snapshot_dir(&main.listing.commit),
        repos: units
            .iter()
            .map(|u| RepoOutcome {
                repo: u.listing.repo.clone(),
                revision: u.listing.revision.clone(),
                commit: u.listing.commit.clone(),
                snapshot_path: u.cache.snapshot_dir(&u.listing.commit),
            })
            .collect(),
        files: planned.len() as u32,
        totals: reporter.totals(),
        plan: planned,
        reclaimed: Vec::new(),
        from_cache: false,
        dry_run: opts.dry_run,
        connections: 0,
    }
}

/// One repository of the pull: its listing, its chosen files (sorted), and its cache folder.
struct Unit {
    listing: Listing,
    files: Vec<RemoteFile>,
    cache: RepoCache,
    /// The request's wants this unit serves (indexes into `Request::wants`).
    wants: Vec<usize>,
}

impl Unit {
    /// The download URL of `path`: pinned to the commit on the Hub; by revision on ModelScope,
    /// which has no commit to pin (the sha256 check catches a tree that moved meanwhile).
    fn file_url(&self, endpoint: &str, path: &str) -> String {
        let l = &self.listing;
        match self.cache.registry() {
            Registry::HuggingFace => crate::net::hub::file_url(endpoint, &l.repo, &l.commit, path),
            Registry::ModelScope => {
                crate::net::modelscope::file_url(endpoint, &l.repo, &l.revision, path)
            }
        }
    }
}
