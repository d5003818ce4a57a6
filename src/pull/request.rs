//! The request: what a pull was asked for, validated, as one "want" per repository (the main
//! one first): a selection or an exact file list, a ref to write and an optional pinned commit.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::net::hub::{self, Listing, RemoteFile};
use crate::options::{FileSpec, PullOptions, resolve_endpoint};
use crate::registry::Registry;
use crate::repo_path::{
    is_commit_sha, is_tree_snapshot_id, validate_file_path, validate_repo_id, validate_revision,
};
use crate::select::{Selection, select, split_repo_variant};
use crate::verify::{ContentId, is_hex};

/// Validated inputs of a pull.
pub(super) struct Request {
    /// The repositories to bring up to date, the main one first.
    pub(super) wants: Vec<Want>,
    pub(super) cache_root: PathBuf,
    pub(super) endpoint: String,
    /// Where every repository of the pull lives (lemonade: one registry per model).
    pub(super) registry: Registry,
}

/// One repository of the request, and which of its files.
pub(super) struct Want {
    pub(super) registry: Registry,
    pub(super) repo: String,
    /// The ref written on success.
    pub(super) revision: String,
    /// A pinned commit (40 hex; on ModelScope a tree fingerprint), pulled whatever `revision`
    /// names now.
    pub(super) commit: Option<String>,
    pub(super) what: What,
}

pub(super) enum What {
    /// A selection over the listing (globs, GGUF variant, or everything).
    Select(Selection),
    /// Exact paths; `component` keeps lemonade's wording for a missing auxiliary checkpoint.
    Exact {
        files: Vec<FileSpec>,
        component: bool,
    },
}

impl Request {
    pub(super) fn from_options(opts: &PullOptions) -> Result<Request> {
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
        let what = if opts.files.is_empty() {
            What::Select(Selection {
                include: opts.include.clone(),
                exclude: opts.exclude.clone(),
                variant,
            })
        } else if variant.is_some() || !opts.include.is_empty() || !opts.exclude.is_empty() {
            return Err(Error::InvalidArgument(
                "an exact file list excludes include, exclude and variant".to_string(),
            ));
        } else {
            What::Exact {
                files: checked_specs(&repo, &opts.files)?,
                component: false,
            }
        };
        let registry = opts.registry;
        let mut wants = vec![Want::new(
            registry,
            repo,
            &opts.revision,
            &opts.commit,
            what,
        )?];
        wants.extend(other_wants(opts)?);
        Ok(Request {
            wants,
            cache_root: opts.cache_dir.clone().ok_or_else(|| {
                Error::InvalidArgument(
                    "no cache folder: set cache_dir (or let the pull read the environment)"
                        .to_string(),
                )
            })?,
            endpoint: resolve_endpoint(opts.endpoint.as_deref(), registry)?,
            registry,
        })
    }
}

/// The wants of the other repositories: components (one exact file each) and repos (exact files,
/// optionally pinned).
fn other_wants(opts: &PullOptions) -> Result<Vec<Want>> {
    let mut wants = Vec::new();
    for c in &opts.components {
        if c.path.trim().is_empty() {
            return Err(Error::InvalidArgument(format!(
                "component of {} has an empty path",
                c.repo
            )));
        }
        validate_repo_id(&c.repo)?;
        let what = What::Exact {
            files: vec![FileSpec::new(c.path.clone())],
            component: true,
        };
        wants.push(Want::new(
            opts.registry,
            c.repo.clone(),
            &c.revision,
            &None,
            what,
        )?);
    }
    for r in &opts.repos {
        validate_repo_id(&r.repo)?;
        if r.files.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "repository {} is given without files",
                r.repo
            )));
        }
        let what = What::Exact {
            files: checked_specs(&r.repo, &r.files)?,
            component: false,
        };
        wants.push(Want::new(
            opts.registry,
            r.repo.clone(),
            &r.revision,
            &r.commit,
            what,
        )?);
    }
    Ok(wants)
}

impl Want {
    fn new(
        registry: Registry,
        repo: String,
        revision: &Option<String>,
        commit: &Option<String>,
        what: What,
    ) -> Result<Want> {
        let revision = revision
            .clone()
            .unwrap_or_else(|| registry.default_revision().to_string());
        validate_revision(&revision)?;
        if let Some(c) = commit {
            match registry {
                Registry::HuggingFace if !is_commit_sha(c) => {
                    return Err(Error::InvalidArgument(format!(
                        "commit {c:?} of {repo} is not a 40-hex commit sha"
                    )));
                }
                Registry::ModelScope if !is_tree_snapshot_id(c) => {
                    return Err(Error::InvalidArgument(format!(
                        "snapshot {c:?} of {repo} is not a ModelScope tree fingerprint \
                         (modelscope-<revision>-<16 hex>)"
                    )));
                }
                _ => {}
            }
        }
        Ok(Want {
            registry,
            repo,
            revision,
            commit: commit.clone(),
            what,
        })
    }

    /// The listing the caller already gave: a pinned commit whose every file has a size and a
    /// content id needs no call to the hub.
    pub(super) fn given_listing(&self) -> Option<Listing> {
        let commit = self.commit.as_ref()?;
        let What::Exact { files, .. } = &self.what else {
            return None;
        };
        let files = files
            .iter()
            .map(|f| {
                let size = f.size?;
                let id = match (&f.sha256, &f.git_sha1, self.registry) {
                    (Some(h), _, _) => ContentId::Sha256(h.to_ascii_lowercase()),
                    (None, Some(h), _) => ContentId::GitSha1(h.to_ascii_lowercase()),
                    // A file ModelScope lists without a hash is known by its size in this tree.
                    (None, None, Registry::ModelScope) => {
                        ContentId::size_only(commit, &f.path, size)
                    }
                    (None, None, Registry::HuggingFace) => return None,
                };
                Some(RemoteFile {
                    path: f.path.clone(),
                    size,
                    id,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Listing {
            repo: self.repo.clone(),
            revision: self.revision.clone(),
            commit: commit.clone(),
            files,
        })
    }

    /// The files of `listing` this want names, sorted by path.
    pub(super) fn choose(&self, listing: &Listing) -> Result<Vec<RemoteFile>> {
        let files = &listing.files;
        match &self.what {
            What::Select(selection) => {
                let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
                Ok(select(&self.repo, &paths, selection)?
                    .into_iter()
                    .map(|i| files[i].clone())
                    .collect())
            }
            What::Exact {
                files: specs,
                component,
            } => {
                let mut chosen = Vec::with_capacity(specs.len());
                for spec in specs {
                    let file = files.iter().find(|f| f.path == spec.path).ok_or_else(|| {
                        Error::FileNotFound {
                            repo: self.repo.clone(),
                            path: spec.path.clone(),
                            message: if *component {
                                format!("Additional checkpoint file not found on {}", self.repo)
                            } else {
                                format!("not in {} at commit {}", self.repo, listing.commit)
                            },
                        }
                    })?;
                    chosen.push(file.clone());
                }
                chosen.sort_by(|a, b| a.path.cmp(&b.path));
                chosen.dedup_by(|a, b| a.path == b.path);
                Ok(chosen)
            }
        }
    }
}

/// Exact file specs with their paths and any given ids checked.
fn checked_specs(repo: &str, specs: &[FileSpec]) -> Result<Vec<FileSpec>> {
    for f in specs {
        // A path the caller gave is the caller's error, not the hub's.
        validate_file_path(repo, &f.path).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let bad = |what: &str| {
            Error::InvalidArgument(format!("{what} of {repo}/{} is not valid", f.path))
        };
        if f.sha256.as_deref().is_some_and(|h| !is_hex(h, 64)) {
            return Err(bad("sha256"));
        }
        if f.git_sha1.as_deref().is_some_and(|h| !is_hex(h, 40)) {
            return Err(bad("git_sha1"));
        }
        if f.size.is_some_and(|n| n > hub::MAX_FILE_SIZE) {
            return Err(bad("size"));
        }
    }
    Ok(specs.to_vec())
}
