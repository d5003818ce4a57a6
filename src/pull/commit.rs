//! Committing: the manifest marks the target in progress before anything moves in; at the end it
//! goes, the refs name the new commits, and orphaned snapshot folders with nothing useful left are
//! removed.

use std::path::{Path, PathBuf};

use crate::cache::{fsync_dir, remove_file_if_exists};
use crate::error::Result;
use crate::manifest::{Manifest, ManifestFile};
use crate::net::http::Http;

use crate::progress::{Event, Reporter, Source};
use crate::repo_path::is_commit_sha;
use crate::salvage;

use super::plan::Plan;
use super::reuse::removable_orphans;
use super::{PullOutcome, Reclaimed, Unit};

/// Writes the manifest unless every file is already present in a snapshot that has none; returns
/// its path.
pub(super) fn mark_in_progress(http: &Http, units: &[Unit], plan: &Plan) -> Result<PathBuf> {
    let main = &units[0];
    let manifest_path = main.cache.manifest_path(&main.listing.commit);
    let all_present = plan
        .items
        .iter()
        .all(|i| i.planned.source == Source::Present);
    if !all_present || manifest_path.exists() {
        write_manifest(http, units)?;
    }
    Ok(manifest_path)
}

/// Commits, removes what the pull left useless, and reports completion.
pub(super) fn finish(
    units: &[Unit],
    plan: &Plan,
    manifest_path: &Path,
    moved: bool,
    outcome: &mut PullOutcome,
    reporter: &mut Reporter,
) -> Result<()> {
    commit(units, manifest_path)?;
    // Only salvage moves files out of other folders: without a move, the first scan still holds.
    for (unit, l) in removable_orphans(
        units,
        &plan.scans,
        moved.then_some(&plan.ids),
        Some(&plan.stamps),
    ) {
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
    let main = &units[0];
    reporter.notify(&Event::Complete {
        repo: &main.listing.repo,
        commit: &main.listing.commit,
        snapshot: &outcome.snapshot_path,
        totals: outcome.totals,
    });
    Ok(())
}

/// What a dry run would remove after committing.
pub(super) fn reclaimable(units: &[Unit], plan: &Plan) -> Vec<Reclaimed> {
    removable_orphans(units, &plan.scans, None, None)
        .into_iter()
        .map(|(unit, l)| Reclaimed {
            repo: unit.listing.repo.clone(),
            snapshot: l.folder.name,
            bytes: l.bytes,
        })
        .collect()
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
                url: u.file_url(http.endpoint(), &f.path),
                size: f.size,
                download_path: Some(dir.clone()),
                id: Some(f.id.clone()),
            })
        })
        .collect();
    let manifest = Manifest {
        repo_id: main.listing.repo.clone(),
        registry: main.cache.registry(),
        commit_hash: main.listing.commit.clone(),
        download_path: main.cache.snapshot_dir(&main.listing.commit),
        files,
    };
    manifest.write(&main.cache.manifest_path(&main.listing.commit))
}

/// Marks the pull complete: the manifest goes first (every snapshot is whole), then the refs name
/// the new commits.
fn commit(units: &[Unit], manifest_path: &Path) -> Result<()> {
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
