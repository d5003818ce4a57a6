//! Executing the plan: salvage first (moves, links and copies from elsewhere in the cache), then
//! the transfers of whatever is still missing, each file verified before its final name.

use crate::error::Result;
use crate::net::http::Http;
use crate::net::hub::RemoteFile;
use crate::options::PullOptions;
use crate::progress::{FileInfo, Reporter, Source};
use crate::salvage::Candidate;
use crate::transfer::checkpoint::Checkpoint;
use crate::transfer::segments::Sidecar;
use crate::transfer::{self, Connections, Task};

use super::Unit;
use super::plan::Plan;
use super::reuse;

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

/// Salvages every file's planned copies, falling back along each ranking (see `reuse`); returns
/// whether anything moved (then the orphan folders must be scanned again before judging them).
pub(super) fn salvage_all(
    units: &[Unit],
    plan: &mut Plan,
    reporter: &mut Reporter,
) -> Result<bool> {
    let copies: Vec<Vec<Candidate>> = plan.items.iter().map(|i| i.copies.clone()).collect();
    let mut planned = plan.planned();
    let mut step = 0;
    reuse::salvage_all(
        units,
        &copies,
        &mut planned,
        &mut plan.stamps,
        reporter,
        &mut step,
    )?;
    for (item, p) in plan.items.iter_mut().zip(planned) {
        item.planned = p;
    }
    Ok(step > 0)
}

/// Brings every file not yet complete to its final, verified name. Returns the most connections
/// a file's transfer ended with (0 when nothing was transferred).
pub(super) fn transfer_all(
    http: &Http,
    units: &[Unit],
    plan: &mut Plan,
    opts: &PullOptions,
    reporter: &mut Reporter,
) -> Result<u32> {
    let mut connections = 0;
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
            url: unit.file_url(http.endpoint(), &file.path),
            hub_headers: unit.cache.registry().confirms_commit(),
            final_path: unit.cache.file_path(commit, &file.path),
            partial_path: unit.cache.partial_path(commit, &file.path),
            checkpoint: Checkpoint::new(&unit.cache.state_dir(), &file.id),
            segments: Sidecar::new(&unit.cache.state_dir(), &file.id),
            connections: Connections::of(opts.connections),
        };
        let fetched = transfer::fetch(http, opts.retry, reporter, &task)?;
        connections = connections.max(fetched.connections);
        reporter.add_reused(fetched.reused, source == Source::SalvagePartial);
        let stamps = &mut plan.stamps[item.unit];
        stamps.mark(&file.path, &task.final_path, &file.id);
        stamps.save()?;
        reporter.file_done(info, fetched.reused == file.size)?;
    }
    Ok(connections)
}
