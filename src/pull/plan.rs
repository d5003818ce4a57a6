//! The plan: for every wanted file, where its bytes come from (present, a partial to resume, a copy
//! elsewhere in the cache, or the network), in pull order, and the disk-space check on it.

use crate::cache::remove_file_if_exists;
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::progress::{Event, Reporter, Source};
use crate::salvage::{self, Candidate, IdIndex, Scan};
use crate::stamps::Stamps;
use crate::verify::hash_file;

use super::reuse::source_of;
use super::{PlannedFile, Unit};

/// The plan of a pull.
pub(super) struct Plan {
    /// One item per file, in pull order (units in order, files sorted within each).
    pub items: Vec<PlanItem>,
    /// Per unit: its verified-file stamps.
    pub stamps: Vec<Stamps>,
    /// Per unit: what the cache held before anything moved.
    pub scans: Vec<Scan>,
    /// Content ids known anywhere in the cache's manifests.
    pub ids: IdIndex,
}

/// One file of the plan.
pub(super) struct PlanItem {
    /// Index into the units.
    pub unit: usize,
    /// Index into that unit's files.
    pub file: usize,
    pub planned: PlannedFile,
    /// The copies elsewhere in the cache to salvage from, best first (tried in this order).
    pub copies: Vec<Candidate>,
}

impl Plan {
    /// Plans every file of every unit and reports the plan.
    pub(super) fn build(units: &[Unit], dry_run: bool, reporter: &mut Reporter) -> Result<Plan> {
        let cancel = reporter.cancel().clone();
        let ids = IdIndex::build(&units.iter().map(|u| &u.cache).collect::<Vec<_>>());
        let mut stamps: Vec<Stamps> = units
            .iter()
            .map(|u| Stamps::load(&u.cache.state_dir(), &u.listing.commit))
            .collect();
        let scans: Vec<Scan> = units
            .iter()
            .map(|u| salvage::scan(&u.cache, &u.listing.commit, &ids))
            .collect();
        let mut items = Vec::new();
        for (u, unit) in units.iter().enumerate() {
            let planned = plan_unit(unit, &scans[u], &mut stamps[u], &cancel, dry_run)?;
            for (f, (planned, copies)) in planned.into_iter().enumerate() {
                items.push(PlanItem {
                    unit: u,
                    file: f,
                    planned,
                    copies,
                });
            }
        }
        let plan = Plan {
            items,
            stamps,
            scans,
            ids,
        };
        report_plan(reporter, &plan.planned())?;
        Ok(plan)
    }

    /// Where each file's bytes come from, in pull order.
    pub(super) fn planned(&self) -> Vec<PlannedFile> {
        self.items.iter().map(|i| i.planned.clone()).collect()
    }
}

/// Decides, per file of one repository, where its bytes come from. A complete file in the target
/// without a valid stamp is hashed once; if it does not match it is removed so it can never pass as
/// a good copy. Otherwise the usable copies anywhere in `snapshots/` are ranked (see [`salvage`]):
/// the plan names the best, and salvage falls back along the list when a complete copy fails.
fn plan_unit(
    unit: &Unit,
    scan: &Scan,
    stamps: &mut Stamps,
    cancel: &Cancel,
    dry_run: bool,
) -> Result<Vec<(PlannedFile, Vec<Candidate>)>> {
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
            hash_verified: file.id.is_digest(),
        };
        let copies = if present {
            Vec::new()
        } else {
            salvage::ranked(scan, file)
        };
        let entry = match copies.first() {
            None if present => (planned(Source::Present, file.size, None), Vec::new()),
            None => (planned(Source::Download, 0, None), Vec::new()),
            Some(c) if c.in_target => (planned(Source::Resume, c.len, None), Vec::new()),
            Some(c) => (
                planned(source_of(c), c.len, Some(&c.snapshot)),
                copies.into_iter().cloned().collect(),
            ),
        };
        plan.push(entry);
    }
    if !dry_run {
        stamps.save()?;
    }
    Ok(plan)
}

fn report_plan(reporter: &mut Reporter, plan: &[PlannedFile]) -> Result<()> {
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

/// Fails early, before a byte is written, when the disk cannot hold what is still missing.
/// Partials already on disk (anywhere in the cache) are credited; salvage only renames or links.
pub(super) fn preflight_space(units: &[Unit], plan: &[PlannedFile]) -> Result<()> {
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
