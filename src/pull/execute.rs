//! Executing the plan: salvage first (moves, links and copies from elsewhere in the cache), then
//! the transfers of whatever is still missing, each file verified before its final name.

use crate::cache::remove_file_if_exists;
use crate::error::Result;
use crate::net::http::Http;
use crate::net::hub::{self, RemoteFile};
use crate::options::{MAX_CONNECTIONS, PullOptions};
use crate::progress::{Event, FileInfo, Reporter, Source};
use crate::salvage::{self, Candidate};
use crate::stamps::Stamps;
use crate::transfer::checkpoint::Checkpoint;
use crate::transfer::segments::Sidecar;
use crate::transfer::{self, Task};
use crate::verify::hash_file;

use super::plan::Plan;
use super::{PlannedFile, Unit};

/// One planned file and where it belongs.
#[derive(Clone, Copy)]
struct Target<'a> {
    unit: &'a Unit,
    file: &'a RemoteFile,
    info: FileInfo<'a>,
}

fn target<'a>(units: &'a [Unit], unit: usize, file: usize, index: usize) -> Target<'a> {
    let u = &units[unit];
    let f = &u.files[file];
    Target {
        unit: u,
        file: f,
        info: FileInfo {
            repo: &u.listing.repo,
            path: &f.path,
            index: index as u32 + 1,
            size: f.size,
        },
    }
}

/// Salvages every planned copy; returns whether anything moved (then the orphan folders must be
/// scanned again before judging them).
pub(super) fn salvage_all(
    units: &[Unit],
    plan: &mut Plan,
    reporter: &mut Reporter<'_>,
) -> Result<bool> {
    let mut step = 0;
    for (index, item) in plan.items.iter_mut().enumerate() {
        if let Some(c) = &item.pick {
            let t = target(units, item.unit, item.file, index);
            let stamps = &mut plan.stamps[item.unit];
            salvage_one(t, c, &mut item.planned, stamps, reporter, &mut step)?;
        }
    }
    Ok(step > 0)
}

/// Brings every file not yet complete to its final, verified name.
pub(super) fn transfer_all(
    http: &Http,
    units: &[Unit],
    plan: &mut Plan,
    opts: &PullOptions,
    reporter: &mut Reporter<'_>,
) -> Result<()> {
    for (index, item) in plan.items.iter().enumerate() {
        let Target { unit, file, info } = target(units, item.unit, item.file, index);
        let source = item.planned.source;
        if matches!(source, Source::Present | Source::SalvageFile | Source::Link) {
            if source == Source::Present {
                reporter.add_reused(file.size, false);
            }
            reporter.file_start(info, file.size)?;
            reporter.file_done(info, true)?;
            continue;
        }
        let commit = &unit.listing.commit;
        let task = Task {
            file: info,
            id: &file.id,
            commit,
            url: hub::file_url(http.endpoint(), &unit.listing.repo, commit, &file.path),
            final_path: unit.cache.file_path(commit, &file.path),
            partial_path: unit.cache.partial_path(commit, &file.path),
            checkpoint: Checkpoint::new(&unit.cache.state_dir(), &file.id),
            segments: Sidecar::new(&unit.cache.state_dir(), &file.id),
            connections: opts.connections.clamp(1, MAX_CONNECTIONS),
        };
        let fetched = transfer::fetch(http, opts.retry, reporter, &task)?;
        reporter.add_reused(fetched.reused, source == Source::SalvagePartial);
        let stamps = &mut plan.stamps[item.unit];
        stamps.mark(&file.path, &task.final_path, &file.id);
        stamps.save()?;
        reporter.file_done(info, fetched.reused == file.size)?;
    }
    Ok(())
}

/// Brings one salvage candidate into the target. Complete copies are verified first (unless a stamp
/// proves them) and a copy that fails is left where it is and the file is downloaded instead.
fn salvage_one(
    target: Target<'_>,
    c: &Candidate,
    planned: &mut PlannedFile,
    stamps: &mut Stamps,
    reporter: &mut Reporter<'_>,
    step: &mut u32,
) -> Result<()> {
    let Target { unit, file, info } = target;
    let commit = &unit.listing.commit;
    let final_path = unit.cache.file_path(commit, &file.path);
    let checkpoint = Checkpoint::new(&unit.cache.state_dir(), &file.id);
    if c.partial {
        salvage::adopt(c, &final_path)?;
        // The record describes whatever partial was here before; the adopted one is judged afresh.
        checkpoint.clear();
        *step += 1;
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
    *step += 1;
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
