//! The pipeline of one pull: resolve → select → lock → plan → manifest → transfer → commit.
//!
//! A pull covers a main repository plus optional [`Component`]s from other repositories; each
//! repository keeps its own `models--…` folder, snapshot and ref, while the one manifest lives in
//! the main snapshot (lemonade's multi-repo layout).

pub(crate) mod from_cache;

use std::path::PathBuf;

use crate::cache::{RepoCache, RepoLock, fsync_dir, remove_file_if_exists};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, ManifestFile};
use crate::net::http::{Http, HttpConfig};
use crate::net::hub::{self, Listing, RemoteFile};
use crate::options::{Component, MAX_CONNECTIONS, PullOptions, resolve_endpoint, resolve_token};
use crate::progress::{Event, FileInfo, Observer, Phase, Reporter, Source, Totals};
use crate::repo_path::{is_commit_sha, validate_repo_id, validate_revision};
use crate::salvage::{self, Candidate, IdIndex, Scan};
use crate::select::{Selection, select, split_repo_variant};
use crate::stamps::Stamps;
use crate::transfer::checkpoint::Checkpoint;
use crate::transfer::segments::Sidecar;
use crate::transfer::{self, Task};
use crate::verify::hash_file;

/// What a successful pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    /// Main repository id.
    pub repo: String,
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
    crate::progress::relay(observer, &cancel, |reporter| run(opts, reporter))
}

/// The pipeline itself, on the relay's worker thread.
fn run(opts: &PullOptions, reporter: &mut Reporter<'_>) -> Result<PullOutcome> {
    let from_env;
    let opts = if opts.read_environment {
        from_env = crate::environment::apply(opts);
        &from_env
    } else {
        opts
    };
    let req = Request::from_options(opts)?;
    let cancel = reporter.cancel().clone();
    if opts.offline {
        return answer_from_cache(&req, opts, reporter);
    }
    let http = Http::new(
        &HttpConfig {
            endpoint: req.endpoint.clone(),
            token: resolve_token(opts.token.as_deref()),
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
    reporter.set_phase(Phase::Resolve);
    let units = match resolve_units(&http, &req, opts, reporter) {
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
    reporter.set_phase(Phase::Lock);

    // Locks are taken in a fixed order (by folder) so two multi-repo pulls cannot deadlock.
    let mut lock_order: Vec<&Unit> = units.iter().collect();
    lock_order.sort_by(|a, b| a.cache.dir().cmp(b.cache.dir()));
    let mut _locks: Vec<RepoLock> = Vec::new();
    if !opts.dry_run {
        for unit in lock_order {
            _locks.push(unit.cache.lock(&cancel, |path| {
                reporter.emit(&Event::WaitingForLock {
                    repo: &unit.listing.repo,
                    path,
                })
            })?);
        }
        // The locks created the cache root if it was missing.
        crate::cache::tag_cache_root(&req.cache_root);
    }

    reporter.set_phase(Phase::Plan);
    let ids = IdIndex::build(&units.iter().map(|u| &u.cache).collect::<Vec<_>>());
    let mut stamps: Vec<Stamps> = units
        .iter()
        .map(|u| Stamps::load(&u.cache.state_dir(), &u.listing.commit))
        .collect();
    let mut plan = Vec::new();
    let mut picks: Vec<Option<Candidate>> = Vec::new();
    let scans: Vec<Scan> = units
        .iter()
        .map(|u| salvage::scan(&u.cache, &u.listing.commit, &ids))
        .collect();
    for ((unit, stamps), scan) in units.iter().zip(&mut stamps).zip(&scans) {
        for (planned, pick) in plan_unit(unit, scan, stamps, &cancel, opts.dry_run)? {
            plan.push(planned);
            picks.push(pick);
        }
    }
    report_plan(reporter, &plan)?;

    let main = &units[0];
    let mut outcome = PullOutcome {
        repo: main.listing.repo.clone(),
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
        files: plan.len() as u32,
        totals: reporter.totals(),
        plan,
        reclaimed: Vec::new(),
        from_cache: false,
        dry_run: opts.dry_run,
    };
    if opts.dry_run {
        for (unit, l) in removable_orphans(&units, &scans, None) {
            outcome.reclaimed.push(Reclaimed {
                repo: unit.listing.repo.clone(),
                snapshot: l.folder.name,
                bytes: l.bytes,
            });
        }
        return Ok(outcome);
    }

    preflight_space(&units, &outcome.plan)?;

    // The manifest marks the target in progress before anything moves into it, so a crash at any
    // later point leaves a folder that every reader (and the next pull) treats as unfinished.
    let manifest_path = main.cache.manifest_path(&main.listing.commit);
    let all_present = outcome.plan.iter().all(|p| p.source == Source::Present);
    if !all_present || manifest_path.exists() {
        write_manifest(&http, &units)?;
    }
    let mut step = 0;
    let mut index = 0;
    reporter.set_phase(Phase::Salvage);
    for (unit, stamps) in units.iter().zip(&mut stamps) {
        for file in &unit.files {
            let info = FileInfo {
                repo: &unit.listing.repo,
                path: &file.path,
                index: index as u32 + 1,
                size: file.size,
            };
            if let Some(c) = &picks[index] {
                let planned = &mut outcome.plan[index];
                salvage_one(unit, file, info, c, planned, stamps, reporter, &mut step)?;
            }
            index += 1;
        }
    }

    let mut index = 0;
    reporter.set_phase(Phase::Transfer);
    for (unit, stamps) in units.iter().zip(&mut stamps) {
        for file in &unit.files {
            let planned = outcome.plan[index].clone();
            index += 1;
            let info = FileInfo {
                repo: &unit.listing.repo,
                path: &file.path,
                index: index as u32,
                size: file.size,
            };
            if matches!(
                planned.source,
                Source::Present | Source::SalvageFile | Source::Link
            ) {
                if planned.source == Source::Present {
                    reporter.add_reused(file.size, false);
                }
                reporter.file_start(info, file.size)?;
                reporter.file_done(info, true)?;
                continue;
            }
            let task = Task {
                file: info,
                id: &file.id,
                commit: &unit.listing.commit,
                url: hub::file_url(
                    http.endpoint(),
                    &unit.listing.repo,
                    &unit.listing.commit,
                    &file.path,
                ),
                final_path: unit.cache.file_path(&unit.listing.commit, &file.path),
                partial_path: unit.cache.partial_path(&unit.listing.commit, &file.path),
                checkpoint: Checkpoint::new(&unit.cache.state_dir(), &file.id),
                segments: Sidecar::new(&unit.cache.state_dir(), &file.id),
                connections: opts.connections.clamp(1, MAX_CONNECTIONS),
            };
            let fetched = transfer::fetch(&http, opts.retry, reporter, &task)?;
            reporter.add_reused(fetched.reused, planned.source == Source::SalvagePartial);
            stamps.mark(&file.path, &task.final_path, &file.id);
            stamps.save()?;
            reporter.file_done(info, fetched.reused == file.size)?;
        }
    }

    reporter.set_phase(Phase::Commit);
    commit(&units, &manifest_path)?;
    // Only salvage moves files out of other folders: without a move, the first scan still holds.
    let moved = step > 0;
    for (unit, l) in removable_orphans(&units, &scans, moved.then_some(&ids)) {
        // Cleanup is a courtesy: the pull has committed, so a folder that cannot be removed
        // now is left for the next pull rather than turned into a failure.
        if salvage::remove_orphan(&unit.cache, &l.folder.name).is_err() {
            continue;
        }
        reporter.notify(&Event::Reclaimed {
            repo: &unit.listing.repo,
            snapshot: &l.folder.name,
            bytes: l.bytes,
        });
        outcome.reclaimed.push(Reclaimed {
            repo: unit.listing.repo.clone(),
            snapshot: l.folder.name,
            bytes: l.bytes,
        });
    }
    outcome.totals = reporter.totals();
    reporter.notify(&Event::Complete {
        repo: &main.listing.repo,
        commit: &main.listing.commit,
        snapshot: &outcome.snapshot_path,
        totals: outcome.totals,
    });
    Ok(outcome)
}

/// Fails early, before a byte is written, when the disk cannot hold what is still missing.
/// Partials already on disk (anywhere in the cache) are credited; salvage only renames or links.
fn preflight_space(units: &[Unit], plan: &[PlannedFile]) -> Result<()> {
    let needed: u64 = plan.iter().map(PlannedFile::missing).sum();
    if needed == 0 {
        return Ok(());
    }
    let dir = units[0].cache.state_dir();
    match fs4::available_space(&dir) {
        Ok(available) if available < needed => Err(Error::InsufficientSpace {
            path: dir,
            needed,
            available,
        }),
        // A file system that cannot report free space is not a reason to refuse the pull.
        _ => Ok(()),
    }
}

/// Brings one salvage candidate into the target. Complete copies are verified first (unless a stamp
/// proves them) and a copy that fails is left where it is and the file is downloaded instead.
#[allow(clippy::too_many_arguments)]
fn salvage_one(
    unit: &Unit,
    file: &RemoteFile,
    info: FileInfo<'_>,
    c: &Candidate,
    planned: &mut PlannedFile,
    stamps: &mut Stamps,
    reporter: &mut Reporter<'_>,
    step: &mut u32,
) -> Result<()> {
    let commit = &unit.listing.commit;
    let final_path = unit.cache.file_path(commit, &file.path);
    let checkpoint = Checkpoint::new(&unit.cache.state_dir(), &file.id);
    if c.partial {
        salvage::adopt(c, &final_path)?;
        // The record describes whatever partial was here before; the adopted one is judged afresh.
        checkpoint.clear();
        salvage::crash_point(step);
        return reporter.emit(&Event::Salvaged {
            file: info,
            from: &c.snapshot,
            bytes: c.len,
            how: planned.source,
        });
    }
    let cancel = reporter.cancel().clone();
    if !c.verified && hash_file(&c.path, &file.id, file.size, &cancel)? != file.id {
        let reason = format!(
            "copy in snapshot {} did not verify; downloading instead",
            c.snapshot
        );
        *planned = PlannedFile {
            source: Source::Download,
            on_disk: 0,
            from: None,
            ..planned.clone()
        };
        return reporter.emit(&Event::Restart {
            file: info,
            reason: &reason,
        });
    }
    salvage::adopt(c, &final_path)?;
    salvage::crash_point(step);
    remove_file_if_exists(&unit.cache.partial_path(commit, &file.path))?;
    checkpoint.clear();
    Sidecar::new(&unit.cache.state_dir(), &file.id).clear();
    stamps.mark(&file.path, &final_path, &file.id);
    stamps.save()?;
    reporter.add_reused(file.size, true);
    reporter.emit(&Event::Salvaged {
        file: info,
        from: &c.snapshot,
        bytes: file.size,
        how: planned.source,
    })
}

/// The orphaned snapshot folders of every repository that hold nothing a later pull could use.
/// `scans` were taken before salvage; with `rescan_ids` (salvage has moved files since) the folders
/// are scanned again, else (a dry run, or nothing moved) judged as scanned.
fn removable_orphans<'u>(
    units: &'u [Unit],
    scans: &[Scan],
    rescan_ids: Option<&IdIndex>,
) -> Vec<(&'u Unit, salvage::Leftover)> {
    units
        .iter()
        .zip(scans)
        .flat_map(|(unit, before)| {
            let rescanned =
                rescan_ids.map(|ids| salvage::scan(&unit.cache, &unit.listing.commit, ids));
            let now = rescanned.as_ref().unwrap_or(before);
            salvage::judge_orphans(now, before, &unit.listing.files, &unit.files)
                .into_iter()
                .map(move |l| (unit, l))
        })
        .collect()
}

/// Validated inputs of a pull.
struct Request {
    repo: String,
    revision: String,
    selection: Selection,
    components: Vec<Component>,
    cache_root: PathBuf,
    endpoint: String,
}

impl Request {
    fn from_options(opts: &PullOptions) -> Result<Request> {
        let (repo, spec_variant) = split_repo_variant(opts.repo.trim())?;
        validate_repo_id(&repo)?;
        let variant = match (&opts.variant, spec_variant) {
            (Some(a), Some(b)) if *a != b => {
                return Err(Error::InvalidArgument(format!(
                    "variant given twice: {a:?} and {b:?} (in the repo id)"
                )));
            }
            (Some(a), _) => Some(a.clone()),
            (None, b) => b,
        };
        let revision = opts.revision.clone().unwrap_or_else(|| "main".to_string());
        validate_revision(&revision)?;
        for c in &opts.components {
            validate_repo_id(&c.repo)?;
            if let Some(r) = &c.revision {
                validate_revision(r)?;
            }
            if c.path.trim().is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "component of {} has an empty path",
                    c.repo
                )));
            }
        }
        Ok(Request {
            repo,
            revision,
            selection: Selection {
                include: opts.include.clone(),
                exclude: opts.exclude.clone(),
                variant,
            },
            components: opts.components.clone(),
            cache_root: opts.cache_dir.clone().ok_or_else(|| {
                Error::InvalidArgument(
                    "no cache folder: set cache_dir (or let the pull read the environment)"
                        .to_string(),
                )
            })?,
            endpoint: resolve_endpoint(opts.endpoint.as_deref())?,
        })
    }
}

/// One repository of the pull: its listing, its chosen files (sorted), and its cache folder.
struct Unit {
    listing: Listing,
    files: Vec<RemoteFile>,
    cache: RepoCache,
}

/// Answers from the cache alone: every repository's `refs/<revision>` must name a complete
/// snapshot that still verifies. Writes nothing.
fn answer_from_cache(
    req: &Request,
    opts: &PullOptions,
    reporter: &mut Reporter<'_>,
) -> Result<PullOutcome> {
    let mut wanted = vec![from_cache::Wanted {
        repo: &req.repo,
        revision: &req.revision,
        what: Ok(&req.selection),
    }];
    for c in &req.components {
        let revision = c.revision.as_deref().unwrap_or("main");
        wanted.push(from_cache::Wanted {
            repo: &c.repo,
            revision,
            what: Err(&c.path),
        });
    }
    let cancel = reporter.cancel().clone();
    // Nothing is written either way; the outcome still says what was asked.
    from_cache::pull(&req.cache_root, &wanted, reporter, &cancel).map(|o| PullOutcome {
        dry_run: opts.dry_run,
        from_cache: true,
        ..o
    })
}

/// The hub could not be reached (`unreachable`, after a few seconds of quick retries): answer
/// from a complete cached snapshot as huggingface_hub does, or fail with that network error
/// when the cache cannot answer.
fn fall_back_to_cache(
    req: &Request,
    opts: &PullOptions,
    reporter: &mut Reporter<'_>,
    unreachable: Error,
) -> Result<PullOutcome> {
    let cause = unreachable.to_string();
    reporter.emit(&Event::FromCache { cause: &cause })?;
    match answer_from_cache(req, opts, reporter) {
        Ok(outcome) => Ok(outcome),
        Err(Error::Cancelled) => Err(Error::Cancelled),
        // Not cached (or no longer intact): what the caller must hear about is the network.
        Err(_) => Err(unreachable),
    }
}

/// Resolves the main repository and every component; components of the same repo and revision
/// share one listing call and one unit.
fn resolve_units(
    http: &Http,
    req: &Request,
    opts: &PullOptions,
    reporter: &mut Reporter<'_>,
) -> Result<Vec<Unit>> {
    let mut units: Vec<Unit> = Vec::new();
    let fetch = |repo: &str, revision: &str, reporter: &mut Reporter<'_>| -> Result<Listing> {
        let listing = hub::fetch_listing(http, repo, revision, opts.retry, reporter)?;
        reporter.emit(&Event::Resolved {
            repo,
            revision,
            commit: &listing.commit,
        })?;
        Ok(listing)
    };
    let main = fetch(&req.repo, &req.revision, reporter)?;
    let paths: Vec<&str> = main.files.iter().map(|f| f.path.as_str()).collect();
    let files = select(&req.repo, &paths, &req.selection)?
        .into_iter()
        .map(|i| main.files[i].clone())
        .collect();
    units.push(Unit {
        cache: RepoCache::new(&req.cache_root, &req.repo),
        listing: main,
        files,
    });

    for c in &req.components {
        let revision = c.revision.as_deref().unwrap_or("main");
        let pos = match units
            .iter()
            .position(|u| u.listing.repo == c.repo && u.listing.revision == revision)
        {
            Some(p) => p,
            None => {
                let listing = fetch(&c.repo, revision, reporter)?;
                units.push(Unit {
                    cache: RepoCache::new(&req.cache_root, &c.repo),
                    listing,
                    files: Vec::new(),
                });
                units.len() - 1
            }
        };
        let unit = &mut units[pos];
        let file = unit
            .listing
            .files
            .iter()
            .find(|f| f.path == c.path)
            .ok_or_else(|| Error::FileNotFound {
                repo: c.repo.clone(),
                path: c.path.clone(),
                message: format!("Additional checkpoint file not found on {}", c.repo),
            })?;
        if !unit.files.iter().any(|f| f.path == file.path) {
            unit.files.push(file.clone());
            unit.files.sort_by(|a, b| a.path.cmp(&b.path));
        }
    }
    Ok(units)
}

/// Decides, per file of one repository, where its bytes come from. A complete file in the target
/// without a valid stamp is hashed once; if it does not match it is removed so it can never pass as
/// a good copy. Otherwise the best copy anywhere in `snapshots/` is picked (see [`salvage`]).
fn plan_unit(
    unit: &Unit,
    scan: &Scan,
    stamps: &mut Stamps,
    cancel: &Cancel,
    dry_run: bool,
) -> Result<Vec<(PlannedFile, Option<Candidate>)>> {
    let commit = &unit.listing.commit;
    let mut plan = Vec::with_capacity(unit.files.len());
    for file in &unit.files {
        cancel.check()?;
        let final_path = unit.cache.file_path(commit, &file.path);
        let present = match std::fs::metadata(&final_path) {
            Ok(m) if m.is_file() && m.len() == file.size => {
                if stamps.is_verified(&file.path, &final_path, &file.id) {
                    true
                } else if hash_file(&final_path, &file.id, file.size, cancel)? == file.id {
                    stamps.mark(&file.path, &final_path, &file.id);
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        if !present && final_path.is_file() && !dry_run {
            // Wrong size or wrong content under the final name: it must not survive.
            remove_file_if_exists(&final_path)?;
        }
        let planned = |source, on_disk, from: Option<&str>| PlannedFile {
            repo: unit.listing.repo.clone(),
            path: file.path.clone(),
            size: file.size,
            source,
            on_disk,
            from: from.map(str::to_string),
        };
        let entry = if present {
            (planned(Source::Present, file.size, None), None)
        } else {
            match salvage::best(scan, file) {
                None => (planned(Source::Download, 0, None), None),
                Some(c) if c.in_target => (planned(Source::Resume, c.len, None), None),
                Some(c) => {
                    let source = match (c.partial, c.committed) {
                        (true, _) => Source::SalvagePartial,
                        (false, false) => Source::SalvageFile,
                        (false, true) => Source::Link,
                    };
                    (planned(source, c.len, Some(&c.snapshot)), Some(c.clone()))
                }
            }
        };
        plan.push(entry);
    }
    if !dry_run {
        stamps.save()?;
    }
    Ok(plan)
}

fn report_plan(reporter: &mut Reporter<'_>, plan: &[PlannedFile]) -> Result<()> {
    reporter.set_plan(plan.len() as u32, plan.iter().map(|p| p.size).sum());
    let totals = reporter.totals();
    for (i, p) in plan.iter().enumerate() {
        let file = p.info(i);
        reporter.emit(&Event::PlanFile {
            file,
            source: p.source,
            on_disk: p.on_disk,
            totals,
        })?;
    }
    let mut totals = reporter.totals();
    totals.done_bytes = plan.iter().map(|p| p.on_disk).sum();
    reporter.emit(&Event::Plan { totals })
}

/// Writes lemonade's manifest into the main snapshot, listing the files of every repository with
/// the folder each one really lives in.
fn write_manifest(http: &Http, units: &[Unit]) -> Result<()> {
    let main = &units[0];
    let files = units
        .iter()
        .flat_map(|u| {
            let dir = u.cache.snapshot_dir(&u.listing.commit);
            u.files.iter().map(move |f| ManifestFile {
                name: f.path.clone(),
                url: hub::file_url(http.endpoint(), &u.listing.repo, &u.listing.commit, &f.path),
                size: f.size,
                download_path: Some(dir.clone()),
                id: Some(f.id.clone()),
            })
        })
        .collect();
    let manifest = Manifest {
        repo_id: main.listing.repo.clone(),
        commit_hash: main.listing.commit.clone(),
        download_path: main.cache.snapshot_dir(&main.listing.commit),
        files,
    };
    manifest.write(&main.cache.manifest_path(&main.listing.commit))
}

/// Marks the pull complete: the manifest goes first (every snapshot is whole), then the refs name
/// the new commits.
fn commit(units: &[Unit], manifest_path: &std::path::Path) -> Result<()> {
    remove_file_if_exists(manifest_path)?;
    if let Some(dir) = manifest_path.parent() {
        fsync_dir(dir)?;
    }
    for u in units {
        let rev = &u.listing.revision;
        if !is_commit_sha(rev)
            && u.cache.read_ref(rev).as_deref() != Some(u.listing.commit.as_str())
        {
            u.cache.write_ref(rev, &u.listing.commit)?;
        }
    }
    Ok(())
}
