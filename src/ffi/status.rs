//! `lemon_status`: the C status codes, their mapping from the core's `Status`, and their texts.

use std::ffi::{CStr, CString};
use std::sync::OnceLock;

use crate::error::Status;

/// Status of a pull. The numeric values are stable: a shipped value is never renumbered or reused,
/// new values are only appended. Functions return it; functions that take a status from C take an
/// `int32_t` (see `lemon_status_str`), so unknown values are harmless.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lemon_status {
    /// Success.
    Ok = 0,
    /// Cancelled by the callback or the cancel flag; partials and the manifest are kept, the message
    /// is exactly "Download cancelled".
    Cancelled = 1,
    /// An argument was NULL, malformed, not UTF-8, or a struct_size was too small.
    InvalidArgument = 2,
    /// The repository does not exist or the token cannot see it.
    RepoNotFound = 3,
    /// The repository is gated and the token is missing or not approved.
    Gated = 4,
    /// The revision (branch, tag, commit) does not exist.
    RevisionNotFound = 5,
    /// A requested file or GGUF variant is not in the repository.
    FileNotFound = 6,
    /// The selection matched no file.
    NoFilesSelected = 7,
    /// A network error that outlasted every retry; partials are kept.
    Network = 8,
    /// An HTTP status that is not retried, or one that outlasted every retry.
    Http = 9,
    /// Preflight: less free space than the bytes still missing.
    InsufficientSpace = 10,
    /// The disk filled up while writing; the partial is kept.
    DiskFull = 11,
    /// A local file-system error.
    Io = 12,
    /// A file did not match its content id after a second download.
    VerificationFailed = 13,
    /// The repository's cache folder could not be locked.
    Locked = 14,
    /// A bug: a caught panic or a broken invariant.
    Internal = 15,
    /// The token was rejected.
    Unauthorized = 16,
    /// The server answered something a Hub never answers.
    InvalidResponse = 17,
    /// Offline (`HF_HUB_OFFLINE`): the cache does not hold a complete snapshot for the request.
    NotCached = 18,
}

impl From<Status> for lemon_status {
    fn from(status: Status) -> Self {
        // Exhaustive on purpose: a new core status must get its C value here.
        match status {
            Status::Ok => lemon_status::Ok,
            Status::Cancelled => lemon_status::Cancelled,
            Status::InvalidArgument => lemon_status::InvalidArgument,
            Status::RepoNotFound => lemon_status::RepoNotFound,
            Status::Gated => lemon_status::Gated,
            Status::RevisionNotFound => lemon_status::RevisionNotFound,
            Status::FileNotFound => lemon_status::FileNotFound,
            Status::NoFilesSelected => lemon_status::NoFilesSelected,
            Status::Network => lemon_status::Network,
            Status::Http => lemon_status::Http,
            Status::InsufficientSpace => lemon_status::InsufficientSpace,
            Status::DiskFull => lemon_status::DiskFull,
            Status::Io => lemon_status::Io,
            Status::VerificationFailed => lemon_status::VerificationFailed,
            Status::Locked => lemon_status::Locked,
            Status::Internal => lemon_status::Internal,
            Status::Unauthorized => lemon_status::Unauthorized,
            Status::InvalidResponse => lemon_status::InvalidResponse,
            Status::NotCached => lemon_status::NotCached,
        }
    }
}

/// What `lemon_status_str` answers for a code this version does not know.
pub(super) const UNKNOWN_STATUS: &CStr = c"unknown status";

/// The static C string for a status code, built once from the core's descriptions so the two
/// never disagree.
pub(super) fn status_str(code: i32) -> &'static CStr {
    static TABLE: OnceLock<Vec<(i32, CString)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        Status::ALL
            .iter()
            .map(|s| (*s as i32, CString::new(s.description()).unwrap_or_default()))
            .collect()
    });
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(UNKNOWN_STATUS, |(_, s)| s.as_c_str())
}
