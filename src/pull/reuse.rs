//! Reusing bytes already on disk: bringing the ranked salvage copies of each planned file into
//! its target (falling back along the ranking when a copy fails), and judging after the commit
//! which orphaned snapshot folders can go.

use crate::cache::remove_file_if_exists;
use crate::error::{Error, Result};
use crate::net::hub::RemoteFile;
use crate::progress::{Event, FileInfo, Reporter, Source};
use crate::salvage::{self, Candidate, IdIndex, Scan};
use crate::stamps::Stamps;
use crate::transfer::checkpoint::Checkpoint;
use crate::transfer::segments::Sidecar;
use crate::verify::hash_file;

use super::{PlannedFile, Unit};

/// Brings the planned salvage copies into every repository's target, file by file in plan order.
pub(super) fn salvage_all(
    units: &[Unit],
    copies: &[Vec<Candidate>],
    plan: &mut [PlannedFile],
    stamps: &mut [Stamps],
    reporter: &mut Reporter,
    step: &mut u32,
) -> Result<()> {
    let mut index = 0;
    for (unit, stamps) in units.iter().zip(stamps) {
        for file in &unit.files {
            let info = FileInfo {
                repo: &unit.listing.repo,
                path: &file.path,
                index: index as u32 + 1,
                size: file.size,
            };
            let planned = &mut plan[index];
            salvage_one(
                unit,
                file,
                info,
                &copies[index],
                planned,
                stamps,
                reporter,
                step,
            )?;
            index += 1;
        }
    }
    Ok(())
}

/// Brings the first good copy of `copies` (ranked, best first) into the target. A copy of unknown
/// id that disagrees with the best known partial is skipped unread beyond a few blocks; a complete
/// copy is hashed where it lies (unless a stamp proves it). A copy that fails is left where it is,
/// untouched, never linked or moved, and the next one is tried; the first partial that passes is
/// taken, since only the final hash can judge it. When every copy fails, the file is downloaded.
#[allow(clippy::too_many_arguments)]
fn salvage_one(
    unit: &Unit,
    file: &RemoteFile,
    info: FileInfo<'_>,
    copies: &[Candidate],
    planned: &mut PlannedFile,
    stamps: &mut Stamps,
    reporter: &mut Reporter,
    step: &mut u32,
) -> Result<()> {
    let cancel = reporter.cancel().clone();
    let reference = salvage::reference(copies);
    for (i, c) in copies.iter().enumerate() {
        let failed = match reference {
            Some(r) if c.id.is_none() && salvage::disagrees(c, r) => Some(format!(
                "holds other bytes than the partial in {}",
                r.snapshot
            )),
            _ if c.partial || c.verified => None,
            _ => match hash_file(&c.path, &file.id, file.size, &cancel) {
                Ok(id) if id == file.id => None,
                Ok(_) => Some("did not verify".to_string()),
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                // An unreadable copy is no copy: the next one (or the network) serves instead.
                Err(e) => Some(format!("could not be read ({e})")),
            },
        };
        let Some(failed) = failed else {
            *planned = PlannedFile {
                source: if c.in_target {
                    Source::Resume
                } else {
                    source_of(c)
                },
                on_disk: c.len,
                from: (!c.in_target).then(|| c.snapshot.clone()),
                ..planned.clone()
            };
            return adopt_copy(unit, file, info, c, planned.source, stamps, reporter, step);
        };
        let instead = match copies.get(i + 1) {
            Some(next) if next.in_target => "resuming the partial in place".to_string(),
            Some(next) => format!("using the copy in {}", next.snapshot),
            None => "downloading".to_string(),
        };
        let reason = format!(
            "copy in snapshot {} {failed}; {instead} instead",
            c.snapshot
        );
        reporter.emit(&Event::Restart {
            file: info,
            reason: &reason,
        })?;
    }
    if !copies.is_empty() {
        *planned = PlannedFile {
            source: Source::Download,
            on_disk: 0,
            from: None,
            ..planned.clone()
        };
    }
    Ok(())
}

/// Moves or links one copy that passed [`salvage_one`]'s checks into the target.
#[allow(clippy::too_many_arguments)]
fn adopt_copy(
    unit: &Unit,
    file: &RemoteFile,
    info: FileInfo<'_>,
    c: &Candidate,
    how: Source,
    stamps: &mut Stamps,
    reporter: &mut Reporter,
    step: &mut u32,
) -> Result<()> {
    if c.in_target {
        // The target's own partial, reached by falling back: it resumes where it lies.
        return Ok(());
    }
    let commit = &unit.listing.commit;
    let final_path = unit.cache.file_path(commit, &file.path);
    let checkpoint = Checkpoint::new(&unit.cache.state_dir(), &file.id);
    salvage::adopt(c, &final_path)?;
    let bytes = if c.partial {
        // The record describes whatever partial was here before; the adopted one is judged afresh.
        checkpoint.clear();
        *step += 1;
        c.len
    } else {
        *step += 1;
        remove_file_if_exists(&unit.cache.partial_path(commit, &file.path))?;
        checkpoint.clear();
        Sidecar::new(&unit.cache.state_dir(), &file.id).clear();
        stamps.mark(&file.path, &final_path, &file.id);
        stamps.save()?;
        reporter.add_reused(file.size, true);
        file.size
    };
    reporter.emit(&Event::Salvaged {
        file: info,
        from: &c.snapshot,
        bytes,
        how,
    })
}

/// The orphaned snapshot folders of every repository that hold nothing a later pull could use.
/// `scans` were taken before salvage; with `rescan_ids` (salvage has moved files since) the folders
/// are scanned again, else (a dry run, or nothing moved) judged as scanned.
///
/// `held` (the targets' verified-file stamps) limits what counts as pulled to the files each target
/// now holds complete and verified, so a folder whose copy of a wanted file is better than what
/// the target ended up with is always kept. After a committed pull that is every selected file;
/// `None` (a dry run) predicts that outcome.
pub(super) fn removable_orphans<'u>(
    units: &'u [Unit],
    scans: &[Scan],
    rescan_ids: Option<&IdIndex>,
    held: Option<&[Stamps]>,
) -> Vec<(&'u Unit, salvage::Leftover)> {
    units
        .iter()
        .zip(scans)
        .enumerate()
        .flat_map(|(i, (unit, before))| {
            let rescanned =
                rescan_ids.map(|ids| salvage::scan(&unit.cache, &unit.listing.commit, ids));
            let now = rescanned.as_ref().unwrap_or(before);
            let pulled: Vec<RemoteFile> = match held.and_then(|h| h.get(i)) {
                Some(stamps) => unit
                    .files
                    .iter()
                    .filter(|f| {
                        let final_path = unit.cache.file_path(&unit.listing.commit, &f.path);
                        stamps.is_verified(&f.path, &final_path, &f.id)
                    })
                    .cloned()
                    .collect(),
                None => unit.files.clone(),
            };
            salvage::judge_orphans(now, before, &unit.listing.files, &pulled)
                .into_iter()
                .map(move |l| (unit, l))
        })
        .collect()
}

/// How the bytes of a salvage candidate come into the target.
pub(super) fn source_of(c: &Candidate) -> Source {
    match (c.partial, c.committed) {
        (true, _) => Source::SalvagePartial,
        (false, false) => Source::SalvageFile,
        (false, true) => Source::Link,
    }
}
