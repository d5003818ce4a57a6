//! lemon-pull: resumable, verified Hugging Face model downloads that survive commit changes.
//!
//! A pull resolves a repository revision on the Hub, selects files, and brings
//! `snapshots/<commit>/` in the local cache up to date in lemonade's layout (real files, `X.partial`
//! beside `X`, `.download_manifest.json` while incomplete, `refs/<rev>` written last). Every byte is
//! verified against its content id (sha256 for LFS files, git blob sha1 for the rest).
//!
//! The pipeline, one module per step: [`hub`] (resolve + list) → [`select`] → [`cache`] (lock,
//! layout) → [`manifest`] → [`transfer`] (+ [`verify`]) → commit (in [`pull`](mod@pull)).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod cancel;
pub mod checkpoint;
pub mod error;
#[allow(unsafe_code)]
pub mod ffi;
pub(crate) mod hash_thread;
pub mod housekeeping;
pub(crate) mod http;
pub mod hub;
pub mod manifest;
pub(crate) mod offline;
pub mod options;
pub(crate) mod parallel;
pub mod progress;
pub mod pull;
pub mod repo_path;
pub(crate) mod retry;
pub(crate) mod salvage;
pub(crate) mod segments;
pub mod select;
pub mod stamps;
pub(crate) mod throttle;
pub mod tls;
pub mod transfer;
pub mod verify;

pub use cancel::CancelToken;
pub use error::{Error, Result, Status};
pub use options::{Component, PullOptions, RetryPolicy};
pub use progress::{Event, Flow, Observer};
pub use pull::{PlannedFile, PullOutcome, Reclaimed, RepoOutcome, pull};
