//! lemonade's "keep the previous snapshot" rule (`can_reuse_previous_hf_snapshot`): when a
//! repository's ref moved to a new commit but every file the pull selects is byte-identical to
//! the copy in the snapshot the ref named before, the ref stays, no new folder is made, and the
//! pull reports the previous snapshot as the active one. Opt-in (`keep_unchanged_snapshot`).

use crate::cache::MANIFEST_NAME;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::net::http::Http;
use crate::net::hub::{self, Listing, RemoteFile};
use crate::options::PullOptions;
use crate::progress::Reporter;
use crate::salvage::{self, Links};
use crate::stamps::Stamps;
use crate::verify::hash_file;

use super::{Unit, Want};

/// Points `unit` at the snapshot its ref names now when nothing the pull wants changed since.
/// Asks the hub for that commit's listing (one call, only when the ref moved). Returns whether it
/// did.
pub(super) fn keep_if_unchanged(
    http: &Http,
    unit: &mut Unit,
    wants: &[&Want],
    opts: &PullOptions,
    reporter: &mut Reporter,
) -> Result<bool> {
    let Some(previous) = unit.cache.read_ref(&unit.listing.revision) else {
        return Ok(false);
    };
    if previous == unit.listing.commit || !is_committed(unit, &previous) {
        return Ok(false);
    }
    let old = hub::fetch_listing(http, &unit.listing.repo, &previous, opts.retry, reporter)?;
    if !same_selection(wants, &unit.listing, &old) {
        return Ok(false);
    }
    let cancel = reporter.cancel().clone();
    if !all_verified(unit, &previous, &cancel, !opts.dry_run)? {
        return Ok(false);
    }
    unit.listing.commit = previous;
    Ok(true)
}

/// A snapshot lemonade sees as committed: the folder exists, with no manifest and no partial.
fn is_committed(unit: &Unit, commit: &str) -> bool {
    let dir = unit.cache.snapshot_dir(commit);
    dir.is_dir()
        && !dir.join(MANIFEST_NAME).exists()
        && !salvage::files_below(&dir, Links::Skip)
            .iter()
            .any(|f| f.partial)
}

/// Every want selects the same paths with the same content ids at both commits (so no file the
/// old selection had was dropped, and none changed).
fn same_selection(wants: &[&Want], new: &Listing, old: &Listing) -> bool {
    wants.iter().all(|w| {
        let key = |files: Vec<RemoteFile>| {
            files
                .into_iter()
                .map(|f| (f.path, f.size, f.id))
                .collect::<Vec<_>>()
        };
        match (w.choose(new), w.choose(old)) {
            (Ok(a), Ok(b)) => key(a) == key(b),
            _ => false,
        }
    })
}

/// Every chosen file is in the old snapshot at its size and verifies (by stamp, else hashed once
/// and stamped). A mismatch means the old snapshot cannot stand in; it is never modified.
fn all_verified(unit: &Unit, commit: &str, cancel: &Cancel, save: bool) -> Result<bool> {
    let mut stamps = Stamps::load(&unit.cache.state_dir(), commit);
    for file in &unit.files {
        cancel.check()?;
        let path = unit.cache.file_path(commit, &file.path);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == file.size => {}
            _ => return Ok(false),
        }
        if !stamps.is_verified(&file.path, &path, &file.id) {
            if hash_file(&path, &file.id, file.size, cancel)? != file.id {
                return Ok(false);
            }
            stamps.mark(&file.path, &path, &file.id);
        }
    }
    if save {
        // Stamps only save work next time; failing to write them changes nothing.
        let _ = stamps.save();
    }
    Ok(true)
}
