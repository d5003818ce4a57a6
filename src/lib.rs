//! lemon-pull: resumable, verified Hugging Face model downloads that survive commit changes.
//!
//! A pull resolves a repository revision on the Hub, selects files, and brings
//! `snapshots/<commit>/` in the local cache up to date in lemonade's layout (real files, `X.partial`
//! beside `X`, `.download_manifest.json` while incomplete, `refs/<rev>` written last). Every byte is
//! verified against its content id (sha256 for LFS files, git blob sha1 for the rest).
//!
//! The pipeline, one folder per stage (modules import downward only):
//! - `pull/`: one pull from request to commit (request, plan, execute, commit, answer from the cache);
//! - `select/`: which files of a listing a pull wants (globs, GGUF variants);
//! - `salvage`: finding usable bytes in other snapshot folders and other tools' blobs;
//! - `transfer/`: bringing one file to its verified final name (partial, wire, sequential and parallel
//!   passes, segments sidecar, checkpoints, hashing thread);
//! - `net/`: HTTP, name resolution, TLS, the Hub API, retry policy and the bandwidth cap;
//! - `cache`, `manifest`, `stamps`, `verify`: the on-disk layout and content identity;
//! - `progress`, `error`, `options`, `cancel`: what a caller passes in and hears back;
//! - `ffi/`: the C ABI (`include/lemon_pull.h`), the only place `unsafe` is allowed.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod cache;
mod cancel;
mod environment;
mod error;
#[allow(unsafe_code)]
pub mod ffi;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod housekeeping;
mod manifest;
mod net;
mod options;
mod platform;
mod progress;
mod pull;
mod registry;
mod repo_path;
mod salvage;
mod select;
mod stamps;
mod transfer;
mod verify;

pub use cancel::{Cancel, CancelToken};
pub use environment::resolve_cache_dir;
pub use error::{Error, Result, Status, Unreachable};
pub use housekeeping::{gc, status};
pub use net::resolve::ResolverConfig;
pub use net::tls::{BundleSource, Trust};
pub use net::trust::{TrustCheck, check_trust};
pub use options::{
    AUTO_CONNECTIONS, AUTO_MAX_CONNECTIONS, Component, FileSpec, MAX_CONNECTIONS, PullOptions,
    RepoSpec, RetryPolicy,
};
pub use progress::{Event, FileInfo, Flow, Observer, Phase, Silent, Source, TICK_INTERVAL, Totals};
pub use pull::{PlannedFile, PullOutcome, Reclaimed, RepoOutcome, pull};
pub use registry::Registry;
pub use select::{available_variants, split_repo_variant};
pub use transfer::checkpoint::INTERVAL as CHECKPOINT_INTERVAL;
