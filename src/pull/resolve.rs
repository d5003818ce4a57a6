//! Resolving: every wanted repository to a commit and its chosen files (one listing call per
//! repository and ref, none when the caller gave a pinned commit with every size and id).

use crate::cache::RepoCache;
use crate::error::{Error, Result};
use crate::net::http::Http;
use crate::net::hub::{self, Listing};
use crate::net::modelscope;
use crate::options::PullOptions;
use crate::progress::{Event, Reporter};
use crate::registry::Registry;
use crate::repo_path::check_case_collisions;

use super::Unit;
use super::request::{Request, Want};

/// Resolves every wanted repository to a commit and its chosen files. Wants of the same
/// repository, ref and commit share one listing call and one unit.
pub(super) fn resolve_units(
    http: &Http,
    req: &Request,
    opts: &PullOptions,
    reporter: &mut Reporter,
) -> Result<Vec<Unit>> {
    let mut units: Vec<Unit> = Vec::new();
    for (index, want) in req.wants.iter().enumerate() {
        let same = |u: &Unit| {
            u.listing.repo == want.repo
                && u.listing.revision == want.revision
                && want.commit.as_ref().is_none_or(|c| *c == u.listing.commit)
        };
        let pos = match units.iter().position(same) {
            Some(p) => p,
            None => {
                let listing = list(http, want, opts, reporter)?;
                units.push(Unit {
                    cache: RepoCache::of(&req.cache_root, &want.repo, want.registry),
                    listing,
                    files: Vec::new(),
                    wants: Vec::new(),
                });
                units.len() - 1
            }
        };
        let unit = &mut units[pos];
        unit.wants.push(index);
        for file in want.choose(&unit.listing)? {
            if !unit.files.iter().any(|f| f.path == file.path) {
                unit.files.push(file);
            }
        }
        unit.files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    for unit in &units {
        // Where letter case is ignored, two such names would land on one file.
        check_case_collisions(
            &unit.listing.repo,
            unit.files.iter().map(|f| f.path.as_str()),
        )?;
    }
    Ok(units)
}

/// The listing of one want: given by the caller, or asked of the hub for the pinned commit or
/// the revision. Its `revision` is the ref to write.
fn list(http: &Http, want: &Want, opts: &PullOptions, reporter: &mut Reporter) -> Result<Listing> {
    let listing = match want.given_listing() {
        Some(listing) => listing,
        None => {
            let asked = want.commit.as_deref().unwrap_or(&want.revision);
            let mut listing = match want.registry {
                Registry::HuggingFace => {
                    hub::fetch_listing(http, &want.repo, asked, opts.retry, reporter)?
                }
                // No commit to ask for: the revision's tree now, which must be the pinned one.
                Registry::ModelScope => modelscope::fetch_listing(
                    http,
                    &want.repo,
                    &want.revision,
                    opts.retry,
                    reporter,
                )?,
            };
            if let Some(pin) = &want.commit
                && listing.commit != *pin
            {
                return Err(Error::InvalidResponse {
                    url: http.endpoint().to_string(),
                    message: format!(
                        "asked for {} {pin} of {}, the hub answered {}",
                        match want.registry {
                            Registry::HuggingFace => "commit",
                            Registry::ModelScope => "tree",
                        },
                        want.repo,
                        listing.commit
                    ),
                });
            }
            listing.revision = want.revision.clone();
            listing
        }
    };
    reporter.emit(&Event::Resolved {
        repo: &want.repo,
        revision: &want.revision,
        commit: &listing.commit,
    })?;
    Ok(listing)
}
