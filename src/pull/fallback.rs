//! Answering from the cache: offline pulls, and the fallback when the hub cannot be reached.

use crate::error::{Error, Result};
use crate::options::PullOptions;
use crate::progress::{Event, Reporter};

use super::request::{Request, What};
use super::{PullOutcome, from_cache};

/// Answers from the cache alone: every repository's `refs/<revision>` must name a complete
/// snapshot that still verifies. Writes nothing.
pub(super) fn answer_from_cache(
    req: &Request,
    opts: &PullOptions,
    reporter: &mut Reporter,
) -> Result<PullOutcome> {
    let wanted: Vec<from_cache::Wanted<'_>> = req
        .wants
        .iter()
        .map(|w| from_cache::Wanted {
            registry: w.registry,
            repo: &w.repo,
            revision: &w.revision,
            commit: w.commit.as_deref(),
            what: match &w.what {
                What::Select(selection) => from_cache::WantedFiles::Select(selection),
                What::Exact { files, .. } => from_cache::WantedFiles::Exact(files),
            },
        })
        .collect();
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
pub(super) fn fall_back_to_cache(
    req: &Request,
    opts: &PullOptions,
    reporter: &mut Reporter,
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
