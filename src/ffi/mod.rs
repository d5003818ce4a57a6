//! The C ABI: `lemon_resume_pull()` and its types, for the lemonade C++ server.
//!
//! The header `include/lemon_pull.h` is generated from this file by cbindgen (see `cbindgen.toml`);
//! every doc comment here ends up in the header, so they are written for C readers.
//!
//! Conventions (see README.md, "Using from C/C++"):
//! - every export is `lemon_*`, checks every pointer for NULL and every string for UTF-8, and
//!   catches panics (`LEMON_STATUS_INTERNAL`, or NULL/0 for accessors);
//! - the options struct is versioned by `struct_size`: fields past it are never read and take their
//!   defaults, so an older caller keeps working;
//! - strings the library returns are borrowed from a result (freed by `lemon_pull_result_free`),
//!   borrowed from a progress event (valid during the callback only) or static;
//! - the progress callback runs on the calling thread, serially, only during the call.
#![allow(non_camel_case_types)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::borrow::Cow;
use std::ffi::{CStr, CString, c_char, c_void};
use std::mem::{offset_of, size_of};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::error::{Error, Status};
use crate::options::{
    Component, DEFAULT_API_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DNS_TIMEOUT, FileSpec,
    MAX_CONNECTIONS, PullOptions, RepoSpec, RetryPolicy,
};
use crate::progress::{Event, FileInfo, Flow, Observer, Totals};
use crate::pull::{PullOutcome, pull};

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

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

/// What a `lemon_progress` event reports. Values are stable; new kinds may be appended, so ignore
/// kinds you do not know.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lemon_progress_kind {
    /// The plan is complete: `total_files`, `total_bytes`, and `total_bytes_done` = bytes already
    /// on disk. Sent once, after the `PLAN_FILE` events.
    Plan = 0,
    /// A file starts (or is found complete): `file_bytes_done` = `file_bytes_offset` = bytes already
    /// on disk (the full size for a complete file, then `percent` is 100).
    FileStart = 1,
    /// Bytes arrived: `file_bytes_done` includes the resume offset. About ten a second at most.
    Progress = 2,
    /// A file is complete and verified under its final name; `message` is "reused" when no byte of
    /// it was downloaded in this call, else "downloaded".
    FileDone = 3,
    /// Bytes of a file were taken from another snapshot folder (a partial moved over, or a complete
    /// copy moved or hardlinked): `message` is that folder's name, `event_bytes` the bytes taken.
    Salvage = 4,
    /// Another process holds the repository's lock; the pull waits and stays cancellable.
    /// `message` is the lock file.
    WaitingForLock = 5,
    /// A request failed and is retried after `retry_delay_ms`; `retry_attempt` is 1-based,
    /// `message` says what failed, `file` is "" for an API call.
    Retry = 6,
    /// A file's bytes on disk were discarded and it restarts from zero; `message` says why.
    Restart = 7,
    /// The pull committed: `complete` = 1, `percent` = 100, `file_index` = `total_files`,
    /// `message` is the main snapshot folder. Always the last event of a successful pull; its
    /// return value is ignored (completion wins over a late cancel).
    Complete = 8,
    /// A revision resolved to a commit: `repo_id`, and `message` = the 40-hex commit.
    Resolved = 9,
    /// One planned file, sent for every file before `PLAN`: `message` is where its bytes come from
    /// ("present", "resume", "salvage_partial", "salvage_file", "link" or "download"),
    /// `file_bytes_offset` the bytes already on disk (for salvage: in the other folder). Totals are not known yet (0).
    PlanFile = 10,
    /// After the commit, an orphaned snapshot folder with nothing useful left was removed:
    /// `message` is its name, `event_bytes` the bytes it held. Its return value is ignored.
    Reclaimed = 11,
    /// Nothing else happened for a while: the pull is alive. Sent at least every 250 ms while
    /// `lemon_resume_pull` runs when no other event was sent (a stalled connection, a retry
    /// backoff, a lock wait, hashing); `message` names the phase ("start", "resolve", "lock",
    /// "plan", "salvage", "transfer", "backoff", "verify", "commit"), the totals are current and
    /// `file` is "". A nonzero return cancels like any other event.
    Tick = 12,
    /// The hub could not be reached (host name not resolved, connection refused, connect timeout,
    /// TLS handshake failure) after a few seconds of retries; the pull answers from a complete
    /// cached snapshot of the revision if there is one (the result's `from_cache` is then 1), else
    /// it fails with `LEMON_STATUS_NETWORK`. `message` says why the hub was given up on.
    FromCache = 13,
}

/// Bits of `lemon_pull_options.flags`. Unknown bits are rejected with `LEMON_STATUS_INVALID_ARGUMENT`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lemon_pull_flag {
    /// Plan only: resolve and report where every byte would come from, write nothing. The result's
    /// `snapshot_path` and `commit` name the snapshot a real pull would fill.
    DryRun = 1,
    /// Answer from the cache alone, without any network call (as `HF_HUB_OFFLINE=1` does when
    /// `READ_ENVIRONMENT` is set too): the snapshot `refs/<revision>` names must be complete and
    /// verify, else `LEMON_STATUS_NOT_CACHED`. Added after the first version.
    Offline = 2,
    /// Read the environment as huggingface_hub does, for every option left NULL/0: `HF_TOKEN`,
    /// `HUGGING_FACE_HUB_TOKEN`, `HF_TOKEN_PATH` and the token file (unless
    /// `HF_HUB_DISABLE_IMPLICIT_TOKEN`), `HF_ENDPOINT`, `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`,
    /// `HF_HOME`, `XDG_CACHE_HOME`, `HOME` (`USERPROFILE` on Windows), `HF_HUB_OFFLINE`,
    /// `HF_HUB_DOWNLOAD_TIMEOUT`, `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`,
    /// `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY` (either case) and `NO_PROXY`. Without it the call
    /// reads no environment variable and no file outside the cache and `ca_bundle`: a server
    /// embedding the library gets exactly what it passed. The `resume-pull` CLI sets it.
    ReadEnvironment = 4,
    /// When the hub cannot be reached, fail with `LEMON_STATUS_NETWORK` instead of answering
    /// from a complete cached snapshot (for callers that need the hub's current answer).
    NoCacheFallback = 8,
    /// lemonade's rule when `refs/<revision>` moved: if every selected file at the new commit is
    /// identical (same content ids, none added or dropped) to the verified copy in the snapshot
    /// the ref names now, keep that snapshot active: the ref stays, no new folder is made, and the
    /// result's paths name the kept snapshot. Costs one listing call when the ref moved.
    KeepUnchangedSnapshot = 16,
}

/// All flag bits this version understands.
const KNOWN_FLAGS: u32 = lemon_pull_flag::DryRun as u32
    | lemon_pull_flag::Offline as u32
    | lemon_pull_flag::ReadEnvironment as u32
    | lemon_pull_flag::NoCacheFallback as u32
    | lemon_pull_flag::KeepUnchangedSnapshot as u32;

/// One progress event. Passed to `lemon_progress_cb` by pointer; the struct and every string in it
/// are borrowed and valid only until the callback returns. Copy what you keep.
///
/// Strings are NUL-terminated UTF-8 and never NULL ("" when not applicable).
/// Counters are 0 when they do not apply to the event's kind.
/// Check `struct_size` before reading fields added after the first version.
#[repr(C)]
pub struct lemon_progress {
    /// Size of this struct as the library filled it; fields at or past this offset do not exist.
    pub struct_size: u32,
    /// What happened; a `lemon_progress_kind` value.
    pub kind: lemon_progress_kind,
    /// Repository the event is about (`org/name`).
    pub repo_id: *const c_char,
    /// Repo-relative path of the current file, or "".
    pub file: *const c_char,
    /// Kind-specific text (see `lemon_progress_kind`), or "".
    pub message: *const c_char,
    /// 1-based position of the current file over all files of the pull (all repositories); 0 when
    /// no file is concerned.
    pub file_index: u32,
    /// Files in the pull (0 before `PLAN`).
    pub total_files: u32,
    /// Bytes of the current file present now, including the resume offset.
    pub file_bytes_done: u64,
    /// Size of the current file.
    pub file_bytes_total: u64,
    /// Bytes of all files done or in progress, including bytes that were already on disk.
    pub total_bytes_done: u64,
    /// Sum of all files' sizes.
    pub total_bytes: u64,
    /// Bytes not downloaded in this call (complete files, resumed partials, salvaged copies).
    pub bytes_reused: u64,
    /// Bytes taken from other snapshot folders (a subset of `bytes_reused`).
    pub bytes_salvaged: u64,
    /// Bytes fetched over the network in this call.
    pub bytes_downloaded: u64,
    /// Bytes of the current file that were on disk when it started (the resume offset, or the full
    /// size of a file found complete): lemonade's `bytes_previously_downloaded`.
    pub file_bytes_offset: u64,
    /// `SALVAGE`: bytes taken from another snapshot folder; `RECLAIMED`: bytes the removed folder
    /// held; else 0.
    pub event_bytes: u64,
    /// Progress of the current file, 0..100 (100 on `FILE_DONE` and `COMPLETE`).
    pub percent: i32,
    /// 1 only on the single final `COMPLETE` event, else 0.
    pub complete: i32,
    /// `RETRY`: 1-based number of the retry about to happen.
    pub retry_attempt: u32,
    /// `RETRY`: milliseconds the pull waits before it.
    pub retry_delay_ms: u32,
}

/// Progress callback. Called only on the thread that called `lemon_resume_pull`, serially, and
/// only while that call runs: never after it returns. `user_data` is passed through untouched.
/// `progress` and its strings are valid only during the call.
///
/// Return 0 to continue, nonzero to cancel: the pull then returns `LEMON_STATUS_CANCELLED` within
/// about 100 ms and keeps partial files and the manifest. The callback must not unwind, throw a C++
/// exception or `longjmp` out (wrap C++ code in `try`/`catch`), and must not call back into this
/// library for the same repository.
pub type lemon_progress_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const lemon_progress) -> i32>;

/// Stands for `volatile int32_t` in the header (cbindgen renames it; Rust has no volatile type).
/// The flag is read with volatile loads.
pub type lemon_volatile_i32 = i32;

/// A file from another repository pulled in the same call (lemonade's auxiliary checkpoints: a
/// VAE, a text encoder, an mmproj). It lands in that repository's own `models--org--name` folder and its
/// bytes count in the same progress stream and totals. This struct is frozen (it is used in arrays).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lemon_component {
    /// Repository id, `org/name`. Required.
    pub repo_id: *const c_char,
    /// Exact repo-relative path of the file. Required.
    pub path: *const c_char,
    /// Revision; NULL or "" = `main`.
    pub revision: *const c_char,
}

/// One exact repository path (no glob meaning: `*`, `[` and spaces are plain characters), with
/// what the caller already knows of it. When a pinned repository's files all carry a size and a
/// content id, the call makes no listing request; every byte is verified against the id either
/// way. This struct is frozen (it is used in arrays).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lemon_pull_file {
    /// Repo-relative path ("a/b.gguf"). Required.
    pub path: *const c_char,
    /// Size in bytes, or -1 when unknown.
    pub size: i64,
    /// sha256 of an LFS file (64 hex), or NULL / "" when unknown.
    pub sha256: *const c_char,
    /// Git blob sha1 of a regular file (40 hex), or NULL / "" when unknown.
    pub git_sha1: *const c_char,
}

/// An extra repository pulled exactly in the same call, in its own `models--org--name` folder
/// with its own snapshot and ref (lemonade's auxiliary checkpoints, with the commit and the files
/// it selected). This struct is frozen (it is used in arrays).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lemon_pull_repo {
    /// Repository id, `org/name`. Required.
    pub repo_id: *const c_char,
    /// The ref written on success; NULL or "" = `main`.
    pub revision: *const c_char,
    /// Pin: pull exactly this 40-hex commit and point `refs/<revision>` at it; NULL or "" =
    /// resolve `revision`.
    pub commit: *const c_char,
    /// The exact files to pull (at least one).
    pub files: *const lemon_pull_file,
    /// Number of `files`.
    pub files_len: usize,
}

/// What to pull. Fill it with `lemon_pull_options_init`, then set fields. Every pointer is borrowed
/// for the duration of `lemon_resume_pull` only (strings are copied; nothing is kept afterwards).
/// Strings are NUL-terminated UTF-8.
///
/// Versioning: `struct_size` tells the library how many bytes of this struct the caller has; fields
/// at or past it are never read and take their defaults, so code built against an older header
/// keeps working. It must cover at least `struct_size` and `repo_id`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lemon_pull_options {
    /// `sizeof(lemon_pull_options)` as the caller compiled it (set by `lemon_pull_options_init`).
    pub struct_size: u32,
    /// `org/name`, optionally `org/name:VARIANT`. Required.
    pub repo_id: *const c_char,
    /// Branch, tag, full commit or `refs/pr/N`; NULL or "" = `main`.
    pub revision: *const c_char,
    /// Cache root (absolute path). Required, unless `LEMON_PULL_FLAG_READ_ENVIRONMENT` is set:
    /// then NULL or "" = `HF_HUB_CACHE`, `HF_HOME`... or `~/.cache/huggingface/hub`. lemonade
    /// passes its own cache folder here.
    pub cache_dir: *const c_char,
    /// Hub endpoint; NULL or "" = `https://huggingface.co` (with
    /// `LEMON_PULL_FLAG_READ_ENVIRONMENT`: `HF_ENDPOINT` first).
    pub endpoint: *const c_char,
    /// Access token; NULL or "" = anonymous. With `LEMON_PULL_FLAG_READ_ENVIRONMENT`, NULL =
    /// `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN` or the token file (as huggingface_hub), "" = anonymous.
    pub token: *const c_char,
    /// Glob patterns a file must match (any of them); may be NULL when `include_len` is 0.
    pub include: *const *const c_char,
    /// Number of entries in `include`.
    pub include_len: usize,
    /// Glob patterns that drop a file; may be NULL when `exclude_len` is 0.
    pub exclude: *const *const c_char,
    /// Number of entries in `exclude`.
    pub exclude_len: usize,
    /// GGUF variant (`Q4_K_M`) or exact model file; NULL or "" = none (all files, or `include`).
    pub variant: *const c_char,
    /// Progress callback, or NULL.
    pub progress_cb: lemon_progress_cb,
    /// Passed to `progress_cb` untouched.
    pub user_data: *mut c_void,
    /// Cancel flag polled about every 50 ms (also inside blocked network reads, backoff sleeps,
    /// hashing and lock waits); nonzero = cancel. May be NULL. It may be set from any thread; it
    /// must stay valid until `lemon_resume_pull` returns and is never read afterwards. From C++,
    /// point it at a lock-free `std::atomic<int32_t>`.
    pub cancel_flag: *const lemon_volatile_i32,
    /// Files from other repositories pulled in the same call; may be NULL when `components_len` is 0.
    pub components: *const lemon_component,
    /// Number of entries in `components`.
    pub components_len: usize,
    /// Retries after the first attempt of a request (reset whenever bytes arrive). Default 10;
    /// 0 = no retry.
    pub max_retries: u32,
    /// First backoff delay in ms (doubles each retry, with jitter); 0 = default 2000.
    pub initial_retry_delay_ms: u32,
    /// Cap on one backoff delay in ms (also caps `Retry-After`); 0 = default 120000.
    pub max_retry_delay_ms: u32,
    /// Cap on the total backoff time of one request in ms; 0 = default 600000.
    pub max_total_retry_wait_ms: u32,
    /// Connect timeout per attempt in ms; 0 = default 60000.
    pub connect_timeout_ms: u32,
    /// A body read that sees no byte for this long is abandoned and retried from the current
    /// offset, in ms; 0 (what init sets) = 60000 (with `LEMON_PULL_FLAG_READ_ENVIRONMENT`:
    /// `HF_HUB_DOWNLOAD_TIMEOUT` seconds if set when the pull starts).
    pub stall_timeout_ms: u32,
    /// Timeout of one metadata (API) request in ms; 0 = default 600000.
    pub api_timeout_ms: u32,
    /// `lemon_pull_flag` bits; 0 = none.
    pub flags: u32,
    /// Ranged connections per file: 1 (the default; 0 means the same) fetches each file over one
    /// connection; with more, a file of at least 16 MiB is fetched in pieces by up to this many
    /// connections at once, on threads that end before `lemon_resume_pull` returns (at most 64;
    /// larger values are capped). A partial written this way has holes and is resumed only by
    /// this library: keep the `.partial` for it. Added after the first version: read only when
    /// `struct_size` covers it.
    pub connections: u32,
    /// Bandwidth cap over all connections of the pull, in bytes per second (lemonade's tray
    /// setting); 0 = unlimited. Added after the first version, like the fields below: read only
    /// when `struct_size` covers it.
    pub max_bytes_per_sec: u64,
    /// CA bundle trusted for https instead of the default roots: a PEM file, a DER certificate or
    /// a folder of them (for corporate TLS inspection). NULL or "" = the operating system's trust
    /// store (with `LEMON_PULL_FLAG_READ_ENVIRONMENT`: `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`,
    /// `CURL_CA_BUNDLE` first). A bundle
    /// that cannot be read or holds no certificate fails the call with
    /// `LEMON_STATUS_INVALID_ARGUMENT`.
    pub ca_bundle: *const c_char,
    /// Pin: pull exactly this 40-hex commit of `repo_id` (what the caller listed and selected
    /// from), even if `revision` has moved since; on success `refs/<revision>` (default `main`)
    /// names it. NULL or "" = resolve `revision`. Added after the first version, like the fields
    /// below: read only when `struct_size` covers it.
    pub commit: *const c_char,
    /// Exact files of `repo_id` to pull instead of a selection (`include`, `exclude` and the
    /// variant must then be empty); a file not at the commit fails the call with
    /// `LEMON_STATUS_FILE_NOT_FOUND` naming it. May be NULL when `files_len` is 0.
    pub files: *const lemon_pull_file,
    /// Number of `files`.
    pub files_len: usize,
    /// Extra repositories pulled exactly; may be NULL when `repos_len` is 0.
    pub repos: *const lemon_pull_repo,
    /// Number of `repos`.
    pub repos_len: usize,
    /// HTTP proxy for every request (`http://host:port`, optionally with `user:password@`); NULL
    /// or "" = direct (with `LEMON_PULL_FLAG_READ_ENVIRONMENT`: `ALL_PROXY`, `HTTPS_PROXY`,
    /// `HTTP_PROXY`, minus `NO_PROXY`).
    pub proxy: *const c_char,
    /// Limit on one host name lookup in ms (all nameservers, tries and search domains together);
    /// 0 = default 10000. A lookup without an answer in time fails as an unreachable hub
    /// ("host name not resolved"), so the cache fallback can answer. On Unix the library resolves
    /// names itself, inside the call (no thread outlives it), from `/etc/hosts` and
    /// `/etc/resolv.conf`, and a cancel interrupts a lookup within about 50 ms. On Windows the
    /// system's lookup is used, which neither this limit nor a cancel can interrupt (unverified).
    /// Added after the first version: read only when `struct_size` covers it.
    pub dns_timeout_ms: u32,
}

/// Per-repository results of a pull, owned by a `lemon_pull_result`. Opaque: read it with
/// `lemon_pull_result_repo_count` and the `lemon_pull_result_repo_*` accessors.
pub struct lemon_pull_repos {
    repos: Vec<RepoStrings>,
}

struct RepoStrings {
    repo: CString,
    commit: CString,
    snapshot_path: CString,
}

/// The outcome of `lemon_resume_pull`, which fills it in every case (except when the result
/// pointer itself is unusable). Owned by the caller's storage; the strings and `repos` are owned by
/// the library and released by `lemon_pull_result_free`, never by `free()`.
///
/// Before the call set it to zero (`lemon_pull_result r = {0};`) or set `struct_size` to
/// `sizeof(lemon_pull_result)`; the library writes only within that size and sets `struct_size` to
/// what it wrote. Previous contents are overwritten, not freed: free a result before reusing it.
#[repr(C)]
pub struct lemon_pull_result {
    /// In: 0 or `sizeof(lemon_pull_result)`. Out: the bytes the library filled.
    pub struct_size: u32,
    /// The `lemon_status` value, also returned by `lemon_resume_pull`.
    pub status: i32,
    /// On success: the main repository's `snapshots/<commit>` folder. NULL on failure.
    pub snapshot_path: *mut c_char,
    /// On success: the main repository's 40-hex commit. NULL on failure.
    pub commit: *mut c_char,
    /// On failure: a message for humans ("Download cancelled" for `LEMON_STATUS_CANCELLED`).
    /// NULL on success.
    pub error_message: *mut c_char,
    /// Bytes fetched over the network in this call (also on failure: up to the failure).
    pub bytes_downloaded: u64,
    /// Bytes not downloaded because they were already on disk (complete files, resumed partials,
    /// salvaged copies).
    pub bytes_reused: u64,
    /// Bytes taken from other snapshot folders (a subset of `bytes_reused`).
    pub bytes_salvaged: u64,
    /// The HTTP status behind the failure, or 0.
    pub http_status: i32,
    /// Files in the pull (all repositories); 0 when the pull failed before planning.
    pub files: u32,
    /// Sum of the sizes of all files in the pull.
    pub total_bytes: u64,
    /// Per-repository results (main repository first); NULL on failure. Use the accessors.
    pub repos: *mut lemon_pull_repos,
    /// 1 when the answer came from the cache alone: `LEMON_PULL_FLAG_OFFLINE`, or the hub could
    /// not be reached and a complete snapshot of the revision was cached (see
    /// `LEMON_PULL_FLAG_NO_CACHE_FALLBACK`); else 0. Added after the first version: written only
    /// when `struct_size` covers it.
    pub from_cache: u32,
    /// Bytes now in the main snapshot folder (complete files and kept partials): on failure or
    /// cancel, what the next call will not download again; on success the snapshot's size.
    /// Written only when `struct_size` covers it.
    pub bytes_on_disk: u64,
}

/// The fields of the first version of `lemon_pull_result`, in its order: what is written for a
/// caller whose `struct_size` is that version's.
#[repr(C)]
struct ResultV1 {
    struct_size: u32,
    status: i32,
    snapshot_path: *mut c_char,
    commit: *mut c_char,
    error_message: *mut c_char,
    bytes_downloaded: u64,
    bytes_reused: u64,
    bytes_salvaged: u64,
    http_status: i32,
    files: u32,
    total_bytes: u64,
    repos: *mut lemon_pull_repos,
}

// ---------------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------------

/// Fills `*options` with the defaults and sets `struct_size` to `sizeof(lemon_pull_options)`.
/// Writes the whole struct as this header declares it, so use it only with the header that came
/// with the linked library (always true for the static library). NULL is ignored.
/// Thread-safe; no allocation.
///
/// # Safety
/// `options` must be NULL or point to writable memory of `sizeof(lemon_pull_options)` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_options_init(options: *mut lemon_pull_options) {
    guard((), || {
        if options.is_null() || !options.is_aligned() {
            return;
        }
        // SAFETY: non-NULL and aligned (checked); the caller guarantees it is writable for the
        // whole struct. `write` does not read or drop the old (possibly uninitialised) contents.
        unsafe { options.write(lemon_pull_options::defaults()) };
    })
}

/// Pulls a model snapshot into the cache, resuming partial downloads, and fills `*result`.
///
/// Blocking: runs on the calling thread (with short-lived helper threads inside the call) and
/// returns when the pull is complete, failed or cancelled. Returns the status, which is also
/// stored in `result->status`; on failure `result->error_message` says why.
///
/// - `options` NULL, `repo_id` NULL, any string not UTF-8, an array pointer NULL with a nonzero
///   length, unknown `flags` bits or a `struct_size` too small: `LEMON_STATUS_INVALID_ARGUMENT`.
/// - `result` NULL or with an unusable `struct_size`: `LEMON_STATUS_INVALID_ARGUMENT`, nothing
///   written.
/// - Cancel (callback nonzero or `*cancel_flag` nonzero): `LEMON_STATUS_CANCELLED` within about
///   100 ms, message "Download cancelled", partials and the manifest kept; the next call resumes.
/// - A panic inside the library is caught: `LEMON_STATUS_INTERNAL` (the default panic hook prints
///   it to stderr). Other calls are unaffected.
///
/// Threading: calls on different threads are independent and may run at the same time; two calls
/// on the same repository serialize through the cache's repository lock (the second one waits,
/// reporting `WAITING_FOR_LOCK`). Nothing in `options` is kept after the call.
///
/// # Safety
/// `options` must be NULL or point to at least `options->struct_size` readable bytes laid out as
/// `lemon_pull_options`, whose pointers are NULL or valid as documented there until the call
/// returns. `result` must be NULL or point to a writable `lemon_pull_result` that holds no strings
/// still to be freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_resume_pull(
    options: *const lemon_pull_options,
    result: *mut lemon_pull_result,
) -> lemon_status {
    guard(lemon_status::Internal, || {
        // SAFETY: the caller guarantees `result` is NULL or a writable result (see # Safety).
        let Some(slot) = (unsafe { ResultSlot::new(result) }) else {
            return lemon_status::InvalidArgument;
        };
        // Panics are caught here (not only in `guard`) so the result still gets filled.
        // SAFETY: the caller guarantees `options` is NULL or valid as documented (see # Safety).
        let report = catch_unwind(AssertUnwindSafe(|| unsafe { run_pull(options) }))
            .unwrap_or_else(|payload| Report::panicked(panic_text(payload.as_ref())));
        let status = report.status;
        slot.fill(report);
        status
    })
}

/// Releases what `lemon_resume_pull` stored in `*result` (the strings and `repos`) and sets those
/// pointers to NULL; numeric fields are kept. NULL is ignored; calling it again on the same result
/// is harmless. Do not call it at the same time as another function on the same result.
///
/// # Safety
/// `result` must be NULL, or a zeroed `lemon_pull_result`, or one filled by `lemon_resume_pull`
/// (and possibly already freed by this function).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_free(result: *mut lemon_pull_result) {
    guard((), || {
        // SAFETY: the caller guarantees `result` is NULL or a result as documented (see # Safety).
        if let Some(slot) = unsafe { ResultSlot::new(result) } {
            slot.release();
        }
    })
}

/// Number of repositories in a successful result (1 + distinct component repositories), else 0.
/// NULL is 0. Thread-safe with other readers of the same result.
///
/// # Safety
/// `result` must be NULL or a result as documented for `lemon_pull_result_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_repo_count(result: *const lemon_pull_result) -> usize {
    guard(0, || {
        // SAFETY: the caller guarantees `result` is NULL or a valid result (see # Safety).
        unsafe { repos_of(result) }.map_or(0, |r| r.repos.len())
    })
}

/// Repository id (`org/name`) of repository `index` (0 = the main repository) of a successful
/// result; NULL if `result` is NULL or `index` is out of range. The string is owned by the result
/// and valid until `lemon_pull_result_free`.
///
/// # Safety
/// `result` must be NULL or a result as documented for `lemon_pull_result_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_repo_id(
    result: *const lemon_pull_result,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller guarantees `result` is NULL or a valid result (see # Safety).
        unsafe { repo_field(result, index, |r| &r.repo) }
    })
}

/// 40-hex commit of repository `index` of a successful result; NULL if `result` is NULL or `index`
/// is out of range. Owned by the result, valid until `lemon_pull_result_free`.
///
/// # Safety
/// `result` must be NULL or a result as documented for `lemon_pull_result_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_repo_commit(
    result: *const lemon_pull_result,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller guarantees `result` is NULL or a valid result (see # Safety).
        unsafe { repo_field(result, index, |r| &r.commit) }
    })
}

/// `snapshots/<commit>` folder of repository `index` of a successful result; NULL if `result` is
/// NULL or `index` is out of range. Owned by the result, valid until `lemon_pull_result_free`.
///
/// # Safety
/// `result` must be NULL or a result as documented for `lemon_pull_result_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_repo_snapshot_path(
    result: *const lemon_pull_result,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller guarantees `result` is NULL or a valid result (see # Safety).
        unsafe { repo_field(result, index, |r| &r.snapshot_path) }
    })
}

/// A short description of a status ("success", "Download cancelled", ...), or "unknown status" for
/// a value this version does not know. Never NULL. The string is static: never free it.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn lemon_status_str(status: i32) -> *const c_char {
    guard(UNKNOWN_STATUS.as_ptr(), || status_str(status).as_ptr())
}

/// The library version, `MAJOR.MINOR.PATCH`. Static string: never free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn lemon_pull_version() -> *const c_char {
    VERSION.as_ptr()
}

// ---------------------------------------------------------------------------------------------
// Boundary helpers
// ---------------------------------------------------------------------------------------------

/// Runs `f`, turning a panic into `on_panic`: unwinding into C is undefined behaviour.
fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("CARGO_PKG_VERSION contains a NUL byte"),
    };

const UNKNOWN_STATUS: &CStr = c"unknown status";

/// The static C string for a status code, built once from the core's descriptions so the two
/// never disagree.
fn status_str(code: i32) -> &'static CStr {
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

/// A string for C: cut at an interior NUL (paths are validated, so this cannot happen, but a
/// panic here would be worse than a shortened string).
fn owned_c_string(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s.as_bytes()[..end]).unwrap_or_default()
}

fn path_c_string(p: &Path) -> CString {
    owned_c_string(&p.to_string_lossy())
}

fn into_raw(s: CString) -> *mut c_char {
    s.into_raw()
}

/// Frees a string made by [`into_raw`] and nulls the pointer, so freeing twice is harmless.
fn free_raw(p: &mut *mut c_char) {
    if !p.is_null() {
        // SAFETY: every non-NULL string pointer in a result comes from `CString::into_raw` and is
        // nulled right after this, so it is freed exactly once.
        drop(unsafe { CString::from_raw(*p) });
        *p = ptr::null_mut();
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the options
// ---------------------------------------------------------------------------------------------

/// The smallest `struct_size` accepted: `struct_size` itself and `repo_id`.
const MIN_OPTIONS_SIZE: usize =
    offset_of!(lemon_pull_options, repo_id) + size_of::<*const c_char>();

impl lemon_pull_options {
    fn defaults() -> Self {
        let retry = RetryPolicy::default();
        lemon_pull_options {
            struct_size: size_of::<lemon_pull_options>() as u32,
            repo_id: ptr::null(),
            revision: ptr::null(),
            cache_dir: ptr::null(),
            endpoint: ptr::null(),
            token: ptr::null(),
            include: ptr::null(),
            include_len: 0,
            exclude: ptr::null(),
            exclude_len: 0,
            variant: ptr::null(),
            progress_cb: None,
            user_data: ptr::null_mut(),
            cancel_flag: ptr::null(),
            components: ptr::null(),
            components_len: 0,
            max_retries: retry.max_retries,
            initial_retry_delay_ms: millis(retry.initial_delay),
            max_retry_delay_ms: millis(retry.max_delay),
            max_total_retry_wait_ms: millis(retry.max_total_wait),
            connect_timeout_ms: millis(DEFAULT_CONNECT_TIMEOUT),
            // 0: resolved when the pull starts (60 s, or `HF_HUB_DOWNLOAD_TIMEOUT` when the pull
            // reads the environment), so that init reads no environment.
            stall_timeout_ms: 0,
            api_timeout_ms: millis(DEFAULT_API_TIMEOUT),
            flags: 0,
            connections: 1,
            max_bytes_per_sec: 0,
            ca_bundle: ptr::null(),
            commit: ptr::null(),
            files: ptr::null(),
            files_len: 0,
            repos: ptr::null(),
            repos_len: 0,
            proxy: ptr::null(),
            dns_timeout_ms: millis(DEFAULT_DNS_TIMEOUT),
        }
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// `ms` as a duration; 0 keeps the default (so a zeroed struct gets sane timeouts).
fn ms_or(ms: u32, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(u64::from(ms))
    }
}

/// Copies the caller's options field by field, reading only fields that end within the caller's
/// `struct_size`; the others keep their defaults. Never reads past `struct_size` bytes.
///
/// # Safety
/// `p` must be non-NULL, aligned, and readable for `(*p).struct_size` bytes (at least 4).
unsafe fn read_options(p: *const lemon_pull_options) -> Result<lemon_pull_options, String> {
    // SAFETY: `struct_size` is the first field and the caller guarantees at least it is readable.
    let size = unsafe { ptr::addr_of!((*p).struct_size).read() };
    let declared = size as usize;
    if declared < MIN_OPTIONS_SIZE {
        return Err(format!(
            "options->struct_size is {size}, smaller than the minimum {MIN_OPTIONS_SIZE} \
             (call lemon_pull_options_init)"
        ));
    }
    let mut out = lemon_pull_options::defaults();
    out.struct_size = size;
    macro_rules! copy_if_present {
        ($($field:ident),* $(,)?) => {$(
            if offset_of!(lemon_pull_options, $field) + size_of_field(&out.$field) <= declared {
                // SAFETY: the field ends within the `declared` bytes the caller made readable; the
                // place is projected from the raw pointer without creating a reference to the
                // (possibly shorter) whole struct, and every field type is valid for any bit
                // pattern a C caller can store there (pointers, integers, Option<fn>).
                out.$field = unsafe { ptr::addr_of!((*p).$field).read() };
            }
        )*};
    }
    copy_if_present!(
        repo_id,
        revision,
        cache_dir,
        endpoint,
        token,
        include,
        include_len,
        exclude,
        exclude_len,
        variant,
        progress_cb,
        user_data,
        cancel_flag,
        components,
        components_len,
        max_retries,
        initial_retry_delay_ms,
        max_retry_delay_ms,
        max_total_retry_wait_ms,
        connect_timeout_ms,
        stall_timeout_ms,
        api_timeout_ms,
        flags,
        connections,
        max_bytes_per_sec,
        ca_bundle,
        commit,
        files,
        files_len,
        repos,
        repos_len,
        proxy,
        dns_timeout_ms,
    );
    Ok(out)
}

fn size_of_field<T>(_: &T) -> usize {
    size_of::<T>()
}

/// A borrowed C string as an owned `String`; NULL is `None`.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string readable for the duration of the call.
unsafe fn opt_string(p: *const c_char, what: &str) -> Result<Option<String>, String> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity.
    let s = unsafe { CStr::from_ptr(p) };
    match s.to_str() {
        Ok(s) => Ok(Some(s.to_string())),
        Err(e) => Err(format!(
            "{what} is not valid UTF-8 (byte {})",
            e.valid_up_to()
        )),
    }
}

/// Like [`opt_string`], but "" is `None` too: for settings where empty means "default".
///
/// # Safety
/// As [`opt_string`].
unsafe fn opt_setting(p: *const c_char, what: &str) -> Result<Option<String>, String> {
    // SAFETY: forwarded contract.
    Ok(unsafe { opt_string(p, what) }?.filter(|s| !s.is_empty()))
}

/// # Safety
/// As [`opt_string`].
unsafe fn required_string(p: *const c_char, what: &str) -> Result<String, String> {
    // SAFETY: forwarded contract.
    unsafe { opt_string(p, what) }?.ok_or_else(|| format!("{what} is NULL"))
}

/// A C array `(ptr, len)` as a slice; `ptr` may be NULL only when `len` is 0.
///
/// # Safety
/// When `len > 0`, `ptr` must point to `len` readable elements valid for the call.
unsafe fn c_array<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], String> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(format!("{what} is NULL but {what}_len is {len}"));
    }
    if !ptr.is_aligned() {
        return Err(format!("{what} is not aligned"));
    }
    if len > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(format!("{what}_len {len} is too large"));
    }
    // SAFETY: non-NULL, aligned, size within isize::MAX (checked); the caller guarantees `len`
    // readable elements that stay valid during the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// # Safety
/// As [`c_array`], and each element must be NULL or a valid C string.
unsafe fn string_array(
    ptr: *const *const c_char,
    len: usize,
    what: &str,
) -> Result<Vec<String>, String> {
    // SAFETY: forwarded contract.
    let items = unsafe { c_array(ptr, len, what) }?;
    items
        .iter()
        .enumerate()
        // SAFETY: each element is NULL or a valid C string (forwarded contract).
        .map(|(i, &p)| unsafe { required_string(p, &format!("{what}[{i}]")) })
        .collect()
}

/// # Safety
/// As [`c_array`], with valid strings in every element.
unsafe fn components(ptr: *const lemon_component, len: usize) -> Result<Vec<Component>, String> {
    // SAFETY: forwarded contract.
    let items = unsafe { c_array(ptr, len, "components") }?;
    items
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // SAFETY: the component's strings are NULL or valid C strings (forwarded contract).
            unsafe {
                Ok(Component {
                    repo: required_string(c.repo_id, &format!("components[{i}].repo_id"))?,
                    path: required_string(c.path, &format!("components[{i}].path"))?,
                    revision: opt_setting(c.revision, &format!("components[{i}].revision"))?,
                })
            }
        })
        .collect()
}

/// # Safety
/// `ptr` is NULL (with `len` 0) or points to `len` valid `lemon_pull_file`s whose strings are NULL
/// or valid C strings.
unsafe fn file_specs(
    ptr: *const lemon_pull_file,
    len: usize,
    what: &str,
) -> Result<Vec<FileSpec>, String> {
    // SAFETY: forwarded contract.
    let items = unsafe { c_array(ptr, len, what) }?;
    items
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let size = match f.size {
                -1 => None,
                n => Some(u64::try_from(n).map_err(|_| format!("{what}[{i}].size is {n}"))?),
            };
            // SAFETY: the file's strings are NULL or valid C strings (forwarded contract).
            unsafe {
                Ok(FileSpec {
                    path: required_string(f.path, &format!("{what}[{i}].path"))?,
                    size,
                    sha256: opt_setting(f.sha256, &format!("{what}[{i}].sha256"))?,
                    git_sha1: opt_setting(f.git_sha1, &format!("{what}[{i}].git_sha1"))?,
                })
            }
        })
        .collect()
}

/// # Safety
/// `ptr` is NULL (with `len` 0) or points to `len` valid `lemon_pull_repo`s (see `file_specs`).
unsafe fn repo_specs(ptr: *const lemon_pull_repo, len: usize) -> Result<Vec<RepoSpec>, String> {
    // SAFETY: forwarded contract.
    let items = unsafe { c_array(ptr, len, "repos") }?;
    items
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // SAFETY: the repository's strings and files are valid (forwarded contract).
            unsafe {
                Ok(RepoSpec {
                    repo: required_string(r.repo_id, &format!("repos[{i}].repo_id"))?,
                    revision: opt_setting(r.revision, &format!("repos[{i}].revision"))?,
                    commit: opt_setting(r.commit, &format!("repos[{i}].commit"))?,
                    files: file_specs(r.files, r.files_len, &format!("repos[{i}].files"))?,
                })
            }
        })
        .collect()
}

/// Everything `lemon_resume_pull` needs, converted from C.
struct Request {
    options: PullOptions,
    callback: lemon_progress_cb,
    user_data: *mut c_void,
    cancel_flag: *const i32,
}

/// Validates and converts the caller's options.
///
/// # Safety
/// `p` must be NULL or valid as documented on `lemon_resume_pull`.
unsafe fn parse_options(p: *const lemon_pull_options) -> Result<Request, String> {
    if p.is_null() {
        return Err("options is NULL".to_string());
    }
    if !p.is_aligned() {
        return Err("options is not aligned".to_string());
    }
    // SAFETY: non-NULL and aligned; the caller guarantees `struct_size` readable bytes.
    let raw = unsafe { read_options(p) }?;
    if raw.flags & !KNOWN_FLAGS != 0 {
        return Err(format!("unknown flags 0x{:x}", raw.flags & !KNOWN_FLAGS));
    }
    if !raw.cancel_flag.is_null() && !raw.cancel_flag.is_aligned() {
        return Err("cancel_flag is not aligned".to_string());
    }
    // SAFETY: every pointer below is NULL or valid per the documented contract of the options.
    let mut o = unsafe { PullOptions::new(required_string(raw.repo_id, "repo_id")?) };
    // SAFETY: as above.
    unsafe {
        o.revision = opt_setting(raw.revision, "revision")?;
        o.cache_dir = opt_setting(raw.cache_dir, "cache_dir")?.map(PathBuf::from);
        o.endpoint = opt_setting(raw.endpoint, "endpoint")?;
        // "" is kept: an explicit empty token means anonymous even when reading the environment.
        o.token = opt_string(raw.token, "token")?;
        o.include = string_array(raw.include, raw.include_len, "include")?;
        o.exclude = string_array(raw.exclude, raw.exclude_len, "exclude")?;
        o.variant = opt_setting(raw.variant, "variant")?;
        o.components = components(raw.components, raw.components_len)?;
        o.ca_bundle = opt_setting(raw.ca_bundle, "ca_bundle")?.map(PathBuf::from);
        o.commit = opt_setting(raw.commit, "commit")?;
        o.files = file_specs(raw.files, raw.files_len, "files")?;
        o.repos = repo_specs(raw.repos, raw.repos_len)?;
        o.proxy = opt_setting(raw.proxy, "proxy")?;
    }
    let defaults = RetryPolicy::default();
    o.retry = RetryPolicy {
        max_retries: raw.max_retries,
        initial_delay: ms_or(raw.initial_retry_delay_ms, defaults.initial_delay),
        max_delay: ms_or(raw.max_retry_delay_ms, defaults.max_delay),
        max_total_wait: ms_or(raw.max_total_retry_wait_ms, defaults.max_total_wait),
    };
    o.connect_timeout = ms_or(raw.connect_timeout_ms, o.connect_timeout);
    o.stall_timeout = ms_or(raw.stall_timeout_ms, o.stall_timeout);
    o.api_timeout = ms_or(raw.api_timeout_ms, o.api_timeout);
    o.dns_timeout = ms_or(raw.dns_timeout_ms, o.dns_timeout);
    o.dry_run = raw.flags & lemon_pull_flag::DryRun as u32 != 0;
    o.offline = raw.flags & lemon_pull_flag::Offline as u32 != 0;
    o.read_environment = raw.flags & lemon_pull_flag::ReadEnvironment as u32 != 0;
    o.cache_fallback = raw.flags & lemon_pull_flag::NoCacheFallback as u32 == 0;
    o.keep_unchanged_snapshot = raw.flags & lemon_pull_flag::KeepUnchangedSnapshot as u32 != 0;
    o.connections = raw.connections.clamp(1, MAX_CONNECTIONS);
    o.max_bytes_per_sec = (raw.max_bytes_per_sec > 0).then_some(raw.max_bytes_per_sec);
    Ok(Request {
        options: o,
        callback: raw.progress_cb,
        user_data: raw.user_data,
        cancel_flag: raw.cancel_flag,
    })
}

// ---------------------------------------------------------------------------------------------
// The cancel flag
// ---------------------------------------------------------------------------------------------

/// The caller's `cancel_flag`, polled from the pull's threads. It may only be read while
/// `lemon_resume_pull` runs, so reads happen under a lock that [`FlagLease`] closes on return:
/// even a clone of the check that outlived the pull could not touch the caller's memory.
struct CancelFlag {
    ptr: *const i32,
    live: Mutex<bool>,
}

// SAFETY: the pointer is only dereferenced in `is_set`, under `live`, while `lemon_resume_pull`
// runs; the caller guarantees the flag stays valid and aligned for that time and may write it from
// any thread, which is why it is read with a volatile load rather than through a reference.
unsafe impl Send for CancelFlag {}
// SAFETY: as for `Send`: shared access only performs volatile reads under the mutex.
unsafe impl Sync for CancelFlag {}

impl CancelFlag {
    fn is_set(&self) -> bool {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: `live` is true only until `lemon_resume_pull` returns, while the caller keeps the
        // flag valid; the pointer is non-NULL and aligned (checked in `parse_options`).
        *live && unsafe { ptr::read_volatile(self.ptr) } != 0
    }
}

/// Ends the flag's readable period when dropped (also on unwind).
struct FlagLease(Arc<CancelFlag>);

impl Drop for FlagLease {
    fn drop(&mut self) {
        *self.0.live.lock().unwrap_or_else(PoisonError::into_inner) = false;
    }
}

/// Hooks the caller's flag (if any) into the pull's cancel checks.
fn attach_flag(options: &mut PullOptions, flag: *const i32) -> Option<FlagLease> {
    if flag.is_null() {
        return None;
    }
    let shared = Arc::new(CancelFlag {
        ptr: flag,
        live: Mutex::new(true),
    });
    let reader = Arc::clone(&shared);
    options.cancel_check = Some(Arc::new(move || reader.is_set()));
    Some(FlagLease(shared))
}

// ---------------------------------------------------------------------------------------------
// Progress: core events → lemon_progress
// ---------------------------------------------------------------------------------------------

/// The observer handed to the core: tracks totals (also for the result on failure) and forwards
/// events to the C callback.
struct Bridge {
    callback: lemon_progress_cb,
    user_data: *mut c_void,
    totals: Totals,
    /// Current file: bytes present now and bytes present when it started.
    file_done: u64,
    file_offset: u64,
    /// Reused buffers for the event's strings, so an event costs no allocation once warmed up.
    repo_buf: Vec<u8>,
    file_buf: Vec<u8>,
    message_buf: Vec<u8>,
    /// A panic in this bridge turned into a cancel; reported as `LEMON_STATUS_INTERNAL`.
    panicked: Option<String>,
    /// Bytes in the main snapshot folder when a pull failed (`Event::Stopped`).
    on_disk: u64,
}

/// An event flattened to what `lemon_progress` carries.
struct View<'a> {
    kind: lemon_progress_kind,
    repo: &'a str,
    file: Option<FileInfo<'a>>,
    message: Cow<'a, str>,
    retry_attempt: u32,
    retry_delay_ms: u32,
    event_bytes: u64,
}

impl<'a> View<'a> {
    fn new(kind: lemon_progress_kind, repo: &'a str, file: Option<FileInfo<'a>>) -> Self {
        View {
            kind,
            repo,
            file,
            message: Cow::Borrowed(""),
            retry_attempt: 0,
            retry_delay_ms: 0,
            event_bytes: 0,
        }
    }

    fn with_message(mut self, message: impl Into<Cow<'a, str>>) -> Self {
        self.message = message.into();
        self
    }

    fn with_bytes(mut self, bytes: u64) -> Self {
        self.event_bytes = bytes;
        self
    }

    /// Events sent after the pull committed: a cancel can no longer undo anything.
    fn after_commit(&self) -> bool {
        matches!(
            self.kind,
            lemon_progress_kind::Complete | lemon_progress_kind::Reclaimed
        )
    }
}

/// Copies `s` plus a NUL into `buf` and returns it as a C string; an interior NUL ends it early.
fn c_buffer(buf: &mut Vec<u8>, s: &str) -> *const c_char {
    let end = s.find('\0').unwrap_or(s.len());
    buf.clear();
    buf.extend_from_slice(&s.as_bytes()[..end]);
    buf.push(0);
    buf.as_ptr().cast()
}

fn percent(done: u64, total: u64) -> i32 {
    if total == 0 {
        // An empty file is as complete as it will ever be.
        return 100;
    }
    let p = u128::from(done.min(total)) * 100 / u128::from(total);
    p as i32
}

impl Bridge {
    fn new(callback: lemon_progress_cb, user_data: *mut c_void) -> Self {
        Bridge {
            callback,
            user_data,
            totals: Totals::default(),
            file_done: 0,
            file_offset: 0,
            repo_buf: Vec::new(),
            file_buf: Vec::new(),
            message_buf: Vec::new(),
            panicked: None,
            on_disk: 0,
        }
    }

    /// Updates the tracked state and flattens the event.
    fn view<'a>(&mut self, event: &Event<'a>) -> View<'a> {
        use lemon_progress_kind as K;
        match *event {
            Event::Resolved { repo, commit, .. } => {
                View::new(K::Resolved, repo, None).with_message(commit)
            }
            Event::WaitingForLock { repo, path } => {
                View::new(K::WaitingForLock, repo, None).with_message(path.to_string_lossy())
            }
            Event::PlanFile {
                file,
                source,
                on_disk,
                totals,
            } => {
                self.totals = totals;
                self.file_done = on_disk;
                self.file_offset = on_disk;
                View::new(K::PlanFile, file.repo, Some(file)).with_message(source.name())
            }
            Event::Plan { totals } => {
                self.totals = totals;
                self.file_done = 0;
                self.file_offset = 0;
                View::new(K::Plan, "", None)
            }
            Event::FileStart {
                file,
                offset,
                totals,
            } => {
                self.totals = totals;
                self.file_done = offset;
                self.file_offset = offset;
                View::new(K::FileStart, file.repo, Some(file))
            }
            Event::Progress {
                file,
                file_done,
                totals,
            } => {
                self.totals = totals;
                self.file_done = file_done;
                View::new(K::Progress, file.repo, Some(file))
            }
            Event::FileDone {
                file,
                reused,
                totals,
            } => {
                self.totals = totals;
                self.file_done = file.size;
                View::new(K::FileDone, file.repo, Some(file)).with_message(if reused {
                    "reused"
                } else {
                    "downloaded"
                })
            }
            Event::Retry {
                file,
                attempt,
                delay,
                reason,
            } => {
                let mut v =
                    View::new(K::Retry, file.map_or("", |f| f.repo), file).with_message(reason);
                v.retry_attempt = attempt;
                v.retry_delay_ms = millis(delay);
                v
            }
            Event::Restart { file, reason } => {
                self.file_done = 0;
                self.file_offset = 0;
                View::new(K::Restart, file.repo, Some(file)).with_message(reason)
            }
            Event::Salvaged {
                file, from, bytes, ..
            } => {
                self.file_done = bytes;
                self.file_offset = bytes;
                View::new(K::Salvage, file.repo, Some(file))
                    .with_message(from)
                    .with_bytes(bytes)
            }
            Event::Reclaimed {
                repo,
                snapshot,
                bytes,
            } => View::new(K::Reclaimed, repo, None)
                .with_message(snapshot)
                .with_bytes(bytes),
            Event::Complete {
                repo,
                snapshot,
                totals,
                ..
            } => {
                self.totals = totals;
                View::new(K::Complete, repo, None).with_message(snapshot.to_string_lossy())
            }
            Event::FromCache { cause } => View::new(K::FromCache, "", None).with_message(cause),
            // Never delivered: `on_event` puts it into the result.
            Event::Stopped { totals, .. } => {
                self.totals = totals;
                View::new(K::Tick, "", None).with_message("stopped")
            }
            Event::Tick { phase, totals } => {
                self.totals = totals;
                View::new(K::Tick, "", None).with_message(phase.name())
            }
        }
    }

    /// Builds the C struct; its string pointers borrow this bridge's buffers until the next event.
    fn progress(&mut self, v: &View<'_>) -> lemon_progress {
        let t = self.totals;
        let complete = v.kind == lemon_progress_kind::Complete;
        let (file_index, file_total, file_done, file_offset, pct) = match v.file {
            Some(f) => (
                f.index,
                f.size,
                self.file_done,
                self.file_offset,
                percent(self.file_done, f.size),
            ),
            None if complete => (t.total_files, 0, 0, 0, 100),
            None => (0, 0, 0, 0, 0),
        };
        lemon_progress {
            struct_size: size_of::<lemon_progress>() as u32,
            kind: v.kind,
            repo_id: c_buffer(&mut self.repo_buf, v.repo),
            file: c_buffer(&mut self.file_buf, v.file.map_or("", |f| f.path)),
            message: c_buffer(&mut self.message_buf, &v.message),
            file_index,
            total_files: t.total_files,
            file_bytes_done: file_done,
            file_bytes_total: file_total,
            total_bytes_done: t.done_bytes,
            total_bytes: t.total_bytes,
            bytes_reused: t.bytes_reused,
            bytes_salvaged: t.bytes_salvaged,
            bytes_downloaded: t.bytes_downloaded,
            file_bytes_offset: file_offset,
            event_bytes: v.event_bytes,
            percent: pct,
            complete: i32::from(complete),
            retry_attempt: v.retry_attempt,
            retry_delay_ms: v.retry_delay_ms,
        }
    }

    fn deliver(&mut self, event: &Event<'_>) -> Flow {
        #[cfg(test)]
        tests::maybe_panic(tests::PanicAt::Bridge);
        let view = self.view(event);
        let Some(callback) = self.callback else {
            return Flow::Continue;
        };
        let progress = self.progress(&view);
        // SAFETY: the caller guarantees `callback` is a valid function for the duration of the
        // call; `progress` and the buffers it points into outlive the call and are not touched
        // until it returns. The callback is documented not to unwind.
        let answer = unsafe { callback(self.user_data, &progress) };
        // Completion wins: once the pull has committed, a late cancel changes nothing.
        if answer != 0 && !view.after_commit() {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    }
}

impl Observer for Bridge {
    fn on_event(&mut self, event: &Event<'_>) -> Flow {
        if self.panicked.is_some() {
            return Flow::Cancel;
        }
        // What a failed pull leaves goes into the result, not to the callback.
        if let Event::Stopped {
            totals, on_disk, ..
        } = event
        {
            self.totals = *totals;
            self.on_disk = *on_disk;
            return Flow::Continue;
        }
        match catch_unwind(AssertUnwindSafe(|| self.deliver(event))) {
            Ok(flow) => flow,
            Err(payload) => {
                // Stop the pull without unwinding through the core; reported as INTERNAL.
                self.panicked = Some(panic_text(payload.as_ref()));
                Flow::Cancel
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running a pull and writing the result
// ---------------------------------------------------------------------------------------------

/// What goes into the result, before any C allocation.
struct Report {
    status: lemon_status,
    error: Option<String>,
    http_status: i32,
    totals: Totals,
    files: u32,
    outcome: Option<PullOutcome>,
    bytes_on_disk: u64,
}

impl Report {
    fn failure(e: &Error, totals: Totals) -> Report {
        Report {
            status: e.status().into(),
            error: Some(e.to_string()),
            http_status: e.http_status().map_or(0, i32::from),
            totals,
            files: totals.total_files,
            outcome: None,
            bytes_on_disk: 0,
        }
    }

    fn panicked(text: String) -> Report {
        Report::failure(
            &Error::Internal(format!("panic: {text}")),
            Totals::default(),
        )
    }

    fn success(outcome: PullOutcome) -> Report {
        Report {
            status: lemon_status::Ok,
            error: None,
            http_status: 0,
            totals: outcome.totals,
            files: outcome.files,
            bytes_on_disk: outcome.totals.total_bytes,
            outcome: Some(outcome),
        }
    }
}

/// The body of `lemon_resume_pull` once the result pointer is known to be usable.
///
/// # Safety
/// As `lemon_resume_pull` for `options`.
unsafe fn run_pull(options: *const lemon_pull_options) -> Report {
    #[cfg(test)]
    tests::maybe_panic(tests::PanicAt::Run);
    // SAFETY: forwarded contract.
    let mut req = match unsafe { parse_options(options) } {
        Ok(r) => r,
        Err(message) => {
            return Report::failure(&Error::InvalidArgument(message), Totals::default());
        }
    };
    let lease = attach_flag(&mut req.options, req.cancel_flag);
    let mut bridge = Bridge::new(req.callback, req.user_data);
    let outcome = pull(&req.options, &mut bridge);
    drop(lease);
    match (outcome, bridge.panicked) {
        (Ok(outcome), _) => Report::success(outcome),
        (Err(_), Some(text)) => Report::failure(
            &Error::Internal(format!("panic in progress reporting: {text}")),
            bridge.totals,
        ),
        (Err(e), None) => Report {
            bytes_on_disk: bridge.on_disk,
            ..Report::failure(&e, bridge.totals)
        },
    }
}

/// A caller's result struct that the library may write to.
struct ResultSlot {
    p: *mut lemon_pull_result,
    /// Bytes of the caller's struct that may be written (0 from the caller = all of this version).
    size: usize,
}

/// The result layout of the first version: the smallest nonzero `struct_size` accepted. Later
/// versions append fields and write them only when the caller's `struct_size` covers them.
const RESULT_V1_SIZE: usize = size_of::<ResultV1>();
const _: () = assert!(RESULT_V1_SIZE == std::mem::offset_of!(lemon_pull_result, from_cache));

impl ResultSlot {
    /// `None` when the pointer is NULL, misaligned, or declares a size too small to fill.
    ///
    /// # Safety
    /// `p` must be NULL or point to a readable and writable `lemon_pull_result`.
    unsafe fn new(p: *mut lemon_pull_result) -> Option<ResultSlot> {
        if p.is_null() || !p.is_aligned() {
            return None;
        }
        // SAFETY: non-NULL and aligned; the caller guarantees a readable struct.
        let size = unsafe { ptr::addr_of!((*p).struct_size).read() } as usize;
        let size = if size == 0 {
            size_of::<lemon_pull_result>()
        } else {
            size.min(size_of::<lemon_pull_result>())
        };
        (size >= RESULT_V1_SIZE).then_some(ResultSlot { p, size })
    }

    /// Overwrites the result with `report`, allocating its strings.
    fn fill(&self, report: Report) {
        let (snapshot_path, commit, repos) = match &report.outcome {
            Some(o) => (
                into_raw(path_c_string(&o.snapshot_path)),
                into_raw(owned_c_string(&o.commit)),
                Box::into_raw(Box::new(repos_of_outcome(o))),
            ),
            None => (ptr::null_mut(), ptr::null_mut(), ptr::null_mut()),
        };
        let from_cache = report.outcome.as_ref().is_some_and(|o| o.from_cache);
        let v2 = self.size >= size_of::<lemon_pull_result>();
        let value = ResultV1 {
            struct_size: if v2 {
                size_of::<lemon_pull_result>()
            } else {
                RESULT_V1_SIZE
            } as u32,
            status: report.status as i32,
            snapshot_path,
            commit,
            error_message: report
                .error
                .as_deref()
                .map_or(ptr::null_mut(), |m| into_raw(owned_c_string(m))),
            bytes_downloaded: report.totals.bytes_downloaded,
            bytes_reused: report.totals.bytes_reused,
            bytes_salvaged: report.totals.bytes_salvaged,
            http_status: report.http_status,
            files: report.files,
            total_bytes: report.totals.total_bytes,
            repos,
        };
        // SAFETY: `new` checked the pointer and that the caller's struct holds the v1 layout,
        // which `ResultV1` mirrors field for field (repr(C), same order: checked at compile time
        // above); `write` does not drop the old contents (documented as overwritten, not freed).
        unsafe { self.p.cast::<ResultV1>().write(value) };
        if v2 {
            // SAFETY: the caller's struct covers the whole current layout.
            unsafe { ptr::addr_of_mut!((*self.p).from_cache).write(u32::from(from_cache)) };
            // SAFETY: as above.
            unsafe { ptr::addr_of_mut!((*self.p).bytes_on_disk).write(report.bytes_on_disk) };
        }
    }

    /// Frees the owned pointers and nulls them; idempotent.
    fn release(&self) {
        // SAFETY: `new` checked the pointer; the caller guarantees it is a zeroed or filled result
        // not used concurrently, so a unique reference is sound for this call.
        let r = unsafe { &mut *self.p.cast::<ResultV1>() };
        free_raw(&mut r.snapshot_path);
        free_raw(&mut r.commit);
        free_raw(&mut r.error_message);
        if !r.repos.is_null() {
            // SAFETY: a non-NULL `repos` comes from `Box::into_raw` in `fill` and is nulled right
            // after this, so it is freed exactly once.
            drop(unsafe { Box::from_raw(r.repos) });
            r.repos = ptr::null_mut();
        }
    }
}

fn repos_of_outcome(o: &PullOutcome) -> lemon_pull_repos {
    lemon_pull_repos {
        repos: o
            .repos
            .iter()
            .map(|r| RepoStrings {
                repo: owned_c_string(&r.repo),
                commit: owned_c_string(&r.commit),
                snapshot_path: path_c_string(&r.snapshot_path),
            })
            .collect(),
    }
}

/// The per-repository data of a result, if any.
///
/// # Safety
/// `result` must be NULL or a zeroed or filled result, not being freed concurrently.
unsafe fn repos_of<'a>(result: *const lemon_pull_result) -> Option<&'a lemon_pull_repos> {
    if result.is_null() || !result.is_aligned() {
        return None;
    }
    // SAFETY: non-NULL and aligned; the caller guarantees a valid result.
    let repos = unsafe { ptr::addr_of!((*result).repos).read() };
    // SAFETY: a non-NULL `repos` was made by `fill` and lives until `lemon_pull_result_free`.
    unsafe { repos.as_ref() }
}

/// # Safety
/// As [`repos_of`].
unsafe fn repo_field(
    result: *const lemon_pull_result,
    index: usize,
    pick: impl Fn(&RepoStrings) -> &CString,
) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { repos_of(result) }
        .and_then(|r| r.repos.get(index))
        .map_or(ptr::null(), |r| pick(r).as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::net::TcpListener;
    use std::time::Instant;

    /// Where a test wants a panic injected, on this thread only (tests run in parallel).
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub(super) enum PanicAt {
        Nowhere,
        Run,
        Bridge,
    }

    thread_local! {
        static INJECT: Cell<PanicAt> = const { Cell::new(PanicAt::Nowhere) };
    }

    pub(super) fn maybe_panic(at: PanicAt) {
        if INJECT.get() == at {
            panic!("injected test panic");
        }
    }

    fn status_of(code: i32) -> String {
        // SAFETY: lemon_status_str never returns NULL and returns a static C string.
        unsafe { CStr::from_ptr(lemon_status_str(code)) }
            .to_str()
            .expect("utf-8")
            .to_string()
    }

    fn zeroed_result() -> lemon_pull_result {
        lemon_pull_result {
            struct_size: 0,
            status: -1,
            snapshot_path: ptr::null_mut(),
            commit: ptr::null_mut(),
            error_message: ptr::null_mut(),
            bytes_downloaded: 0,
            bytes_reused: 0,
            bytes_salvaged: 0,
            http_status: 0,
            files: 0,
            total_bytes: 0,
            repos: ptr::null_mut(),
            from_cache: 7,
            bytes_on_disk: 7,
        }
    }

    fn init_options() -> lemon_pull_options {
        let mut o = std::mem::MaybeUninit::<lemon_pull_options>::uninit();
        // SAFETY: `o` is writable for the whole struct; init writes every field.
        unsafe {
            lemon_pull_options_init(o.as_mut_ptr());
            o.assume_init()
        }
    }

    fn message(r: &lemon_pull_result) -> String {
        assert!(!r.error_message.is_null(), "no error message");
        // SAFETY: a non-NULL error_message is a C string owned by the result.
        unsafe { CStr::from_ptr(r.error_message) }
            .to_string_lossy()
            .into_owned()
    }

    /// Runs a pull and returns (status, result), freeing nothing.
    fn call(o: *const lemon_pull_options) -> (lemon_status, lemon_pull_result) {
        let mut r = zeroed_result();
        // SAFETY: `o` is NULL or a valid options struct built by the test; `r` is zeroed.
        let s = unsafe { lemon_resume_pull(o, &mut r) };
        (s, r)
    }

    #[test]
    fn result_fields_past_the_callers_struct_size_are_never_written() {
        let o = init_options();
        // A first-version caller: its struct ends before `from_cache`.
        let mut r = zeroed_result();
        r.struct_size = RESULT_V1_SIZE as u32;
        // SAFETY: `o` comes from init (repo_id NULL: invalid, which still fills the result).
        let s = unsafe { lemon_resume_pull(&o, &mut r) };
        assert_eq!(s, lemon_status::InvalidArgument);
        assert_eq!(r.struct_size as usize, RESULT_V1_SIZE);
        assert_eq!(r.from_cache, 7, "past struct_size: untouched");
        // SAFETY: filled by lemon_resume_pull.
        unsafe { lemon_pull_result_free(&mut r) };
        let (_, mut r) = call(&o);
        assert_eq!(r.struct_size as usize, size_of::<lemon_pull_result>());
        assert_eq!(r.from_cache, 0, "within struct_size: written");
        // SAFETY: filled by lemon_resume_pull.
        unsafe { lemon_pull_result_free(&mut r) };
    }

    fn expect_invalid(o: *const lemon_pull_options, needle: &str) {
        let (s, mut r) = call(o);
        assert_eq!(s, lemon_status::InvalidArgument);
        assert_eq!(r.status, lemon_status::InvalidArgument as i32);
        assert_eq!(r.struct_size as usize, size_of::<lemon_pull_result>());
        let m = message(&r);
        assert!(m.contains(needle), "{m:?} should mention {needle:?}");
        assert!(r.snapshot_path.is_null() && r.commit.is_null() && r.repos.is_null());
        // SAFETY: `r` was filled by lemon_resume_pull.
        unsafe { lemon_pull_result_free(&mut r) };
        assert!(r.error_message.is_null());
    }

    #[test]
    fn every_status_has_the_same_value_and_name_in_c() {
        for s in Status::ALL {
            let c = lemon_status::from(s);
            assert_eq!(c as i32, s as i32, "{s:?}");
            assert_eq!(format!("{c:?}"), format!("{s:?}"));
            assert_eq!(status_of(s as i32), s.description());
        }
    }

    #[test]
    fn status_str_covers_unknown_values() {
        assert_eq!(status_of(0), "success");
        assert_eq!(status_of(1), "Download cancelled");
        for code in [-1, Status::ALL.len() as i32, 1000, i32::MAX, i32::MIN] {
            assert_eq!(status_of(code), "unknown status");
        }
    }

    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: static C string.
        let v = unsafe { CStr::from_ptr(lemon_pull_version()) };
        assert_eq!(v.to_str().expect("utf-8"), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn options_init_sets_size_and_defaults() {
        let o = init_options();
        assert_eq!(o.struct_size as usize, size_of::<lemon_pull_options>());
        assert_eq!(o.max_retries, 10);
        assert_eq!(o.connect_timeout_ms, 60_000);
        assert!(o.repo_id.is_null() && o.progress_cb.is_none() && o.cancel_flag.is_null());
        // SAFETY: NULL is documented as ignored.
        unsafe { lemon_pull_options_init(ptr::null_mut()) };
    }

    #[test]
    fn null_arguments_are_invalid() {
        expect_invalid(ptr::null(), "options is NULL");
        let o = init_options();
        expect_invalid(&o, "repo_id is NULL");
        // SAFETY: a NULL result is documented as returning INVALID_ARGUMENT.
        let s = unsafe { lemon_resume_pull(&o, ptr::null_mut()) };
        assert_eq!(s, lemon_status::InvalidArgument);
        // SAFETY: as above.
        let s = unsafe { lemon_resume_pull(ptr::null(), ptr::null_mut()) };
        assert_eq!(s, lemon_status::InvalidArgument);
    }

    #[test]
    fn invalid_utf8_is_invalid() {
        let bad = b"org/\xff\xfe\0";
        let mut o = init_options();
        o.repo_id = bad.as_ptr().cast();
        expect_invalid(&o, "repo_id is not valid UTF-8");

        o.repo_id = c"org/name".as_ptr();
        let patterns = [c"*.gguf".as_ptr(), bad.as_ptr().cast()];
        o.include = patterns.as_ptr();
        o.include_len = 2;
        expect_invalid(&o, "include[1] is not valid UTF-8");

        o.include_len = 0;
        let comps = [lemon_component {
            repo_id: c"org/vae".as_ptr(),
            path: bad.as_ptr().cast(),
            revision: ptr::null(),
        }];
        o.components = comps.as_ptr();
        o.components_len = 1;
        expect_invalid(&o, "components[0].path is not valid UTF-8");
    }

    #[test]
    fn null_arrays_with_length_are_invalid() {
        let mut o = init_options();
        o.repo_id = c"org/name".as_ptr();
        o.include_len = 3;
        expect_invalid(&o, "include is NULL but include_len is 3");
        o.include_len = 0;
        o.exclude_len = 1;
        expect_invalid(&o, "exclude is NULL but exclude_len is 1");
        o.exclude_len = 0;
        let items = [ptr::null::<c_char>()];
        o.exclude = items.as_ptr();
        o.exclude_len = 1;
        expect_invalid(&o, "exclude[0] is NULL");
        o.exclude_len = 0;
        o.components_len = 2;
        expect_invalid(&o, "components is NULL");
    }

    #[test]
    fn too_small_struct_size_and_unknown_flags_are_invalid() {
        let mut o = init_options();
        o.repo_id = c"org/name".as_ptr();
        for size in [0, 4, MIN_OPTIONS_SIZE as u32 - 1] {
            o.struct_size = size;
            expect_invalid(&o, "struct_size");
        }
        o.struct_size = size_of::<lemon_pull_options>() as u32;
        o.flags = 0x80;
        expect_invalid(&o, "unknown flags 0x80");
    }

    #[test]
    fn fields_past_struct_size_are_never_read() {
        // An "old caller" whose struct ends before `cancel_flag`; the bytes after it are poison
        // that would crash or misbehave if read.
        let mut o = init_options();
        o.repo_id = c"org/name".as_ptr();
        o.struct_size = offset_of!(lemon_pull_options, cancel_flag) as u32;
        o.cancel_flag = 0x10 as *const i32;
        o.components = 0x10 as *const lemon_component;
        o.components_len = usize::MAX;
        o.max_retries = 77;
        o.connect_timeout_ms = 1;
        o.flags = u32::MAX;
        // SAFETY: `o` is a full struct, readable well past the declared size.
        let read = unsafe { read_options(&o) }.expect("valid");
        let d = lemon_pull_options::defaults();
        assert_eq!(read.struct_size, o.struct_size);
        assert_eq!(read.repo_id, o.repo_id);
        assert!(read.cancel_flag.is_null() && read.components.is_null());
        assert_eq!(
            (read.components_len, read.max_retries, read.flags),
            (0, d.max_retries, 0)
        );
        assert_eq!(read.connect_timeout_ms, d.connect_timeout_ms);

        // The smallest accepted struct: only `repo_id` is read.
        o.struct_size = MIN_OPTIONS_SIZE as u32;
        o.revision = 0x10 as *const c_char;
        // SAFETY: as above.
        let read = unsafe { read_options(&o) }.expect("valid");
        assert_eq!(read.repo_id, o.repo_id);
        assert!(read.revision.is_null());

        // Exactly that many bytes on the heap: nothing past them may be touched (checked under
        // Miri or Valgrind; here at least it must parse).
        let layout =
            std::alloc::Layout::from_size_align(MIN_OPTIONS_SIZE, align_of::<lemon_pull_options>())
                .expect("layout");
        // SAFETY: nonzero size; the block is written before it is read and freed with its layout.
        unsafe {
            let p = std::alloc::alloc(layout);
            assert!(!p.is_null());
            p.cast::<u32>().write(MIN_OPTIONS_SIZE as u32);
            p.add(offset_of!(lemon_pull_options, repo_id))
                .cast::<*const c_char>()
                .write(c"org/name".as_ptr());
            let read = read_options(p.cast()).expect("valid");
            assert_eq!(read.repo_id, c"org/name".as_ptr());
            std::alloc::dealloc(p, layout);
        }
    }

    #[test]
    fn connections_is_read_only_within_struct_size_and_capped() {
        let mut o = init_options();
        assert_eq!(o.connections, 1);
        o.repo_id = c"org/name".as_ptr();
        o.connections = 8;
        // A caller built against the header before `connections` existed.
        o.struct_size = offset_of!(lemon_pull_options, connections) as u32;
        // SAFETY: `o` is a full struct, readable past the declared size.
        let read = unsafe { read_options(&o) }.expect("valid");
        assert_eq!(read.connections, 1, "past struct_size: the default");
        o.struct_size = size_of::<lemon_pull_options>() as u32;
        for (given, used) in [(8, 8), (0, 1), (1000, MAX_CONNECTIONS)] {
            o.connections = given;
            // SAFETY: `o` is a full, valid options struct.
            let req = unsafe { parse_options(&o) }.expect("valid");
            assert_eq!(req.options.connections, used, "{given}");
        }
    }

    #[test]
    fn later_fields_are_read_only_within_struct_size() {
        let mut o = init_options();
        assert_eq!((o.max_bytes_per_sec, o.ca_bundle), (0, ptr::null()));
        o.repo_id = c"org/name".as_ptr();
        o.max_bytes_per_sec = 5_000_000;
        o.ca_bundle = c"/etc/corp-ca.pem".as_ptr();
        o.flags = lemon_pull_flag::Offline as u32;
        // SAFETY: `o` is a full, valid options struct.
        let req = unsafe { parse_options(&o) }.expect("valid");
        assert_eq!(req.options.max_bytes_per_sec, Some(5_000_000));
        assert_eq!(
            req.options.ca_bundle.as_deref(),
            Some(std::path::Path::new("/etc/corp-ca.pem"))
        );
        assert!(req.options.offline && !req.options.dry_run);

        // A caller built against the header that ended with `connections`.
        o.struct_size = offset_of!(lemon_pull_options, max_bytes_per_sec) as u32;
        // SAFETY: `o` is a full struct, readable past the declared size.
        let req = unsafe { parse_options(&o) }.expect("valid");
        assert_eq!(req.options.max_bytes_per_sec, None, "past struct_size");
        assert_eq!(req.options.ca_bundle, None, "past struct_size");

        o.struct_size = size_of::<lemon_pull_options>() as u32;
        o.max_bytes_per_sec = 0;
        o.ca_bundle = c"".as_ptr();
        // SAFETY: as above.
        let req = unsafe { parse_options(&o) }.expect("valid");
        assert_eq!(
            (req.options.max_bytes_per_sec, req.options.ca_bundle),
            (None, None),
            "0 and \"\" keep the defaults"
        );
    }

    #[test]
    fn dns_timeout_is_read_only_within_struct_size() {
        let mut o = init_options();
        assert_eq!(o.dns_timeout_ms, 10_000);
        o.repo_id = c"org/name".as_ptr();
        o.dns_timeout_ms = 1500;
        // SAFETY: `o` is a full, valid options struct.
        let req = unsafe { parse_options(&o) }.expect("valid");
        assert_eq!(req.options.dns_timeout, Duration::from_millis(1500));
        o.dns_timeout_ms = 0;
        // SAFETY: as above.
        let req = unsafe { parse_options(&o) }.expect("valid");
        assert_eq!(req.options.dns_timeout, DEFAULT_DNS_TIMEOUT, "0 = default");
        // A caller built against the header that ended with `ca_bundle`.
        o.dns_timeout_ms = 1500;
        o.struct_size = offset_of!(lemon_pull_options, dns_timeout_ms) as u32;
        // SAFETY: `o` is a full struct, readable past the declared size.
        let req = unsafe { parse_options(&o) }.expect("valid");
        assert_eq!(
            req.options.dns_timeout, DEFAULT_DNS_TIMEOUT,
            "past struct_size"
        );
    }

    #[test]
    fn result_free_is_idempotent_and_accepts_null() {
        let (_, mut r) = call(ptr::null());
        assert!(!r.error_message.is_null());
        // SAFETY: `r` was filled by lemon_resume_pull; freeing twice and NULL are documented as fine.
        unsafe {
            lemon_pull_result_free(&mut r);
            lemon_pull_result_free(&mut r);
            lemon_pull_result_free(ptr::null_mut());
        }
        assert!(r.error_message.is_null() && r.snapshot_path.is_null() && r.repos.is_null());
        assert_eq!(r.status, lemon_status::InvalidArgument as i32);
        let mut z = zeroed_result();
        // SAFETY: a zeroed result is documented as fine.
        unsafe { lemon_pull_result_free(&mut z) };
    }

    #[test]
    fn result_with_a_bad_struct_size_is_not_touched() {
        let mut r = zeroed_result();
        r.struct_size = 8;
        // SAFETY: `r` is a valid struct; the library must refuse to write it.
        let s = unsafe { lemon_resume_pull(ptr::null(), &mut r) };
        assert_eq!(s, lemon_status::InvalidArgument);
        assert_eq!((r.struct_size, r.status), (8, -1));
        assert!(r.error_message.is_null());
    }

    #[test]
    fn accessors_on_null_or_empty_results() {
        let (_, mut r) = call(ptr::null());
        // SAFETY: NULL and a failed result are documented inputs.
        unsafe {
            assert_eq!(lemon_pull_result_repo_count(ptr::null()), 0);
            assert_eq!(lemon_pull_result_repo_count(&r), 0);
            assert!(lemon_pull_result_repo_id(ptr::null(), 0).is_null());
            assert!(lemon_pull_result_repo_commit(&r, 0).is_null());
            assert!(lemon_pull_result_repo_snapshot_path(&r, usize::MAX).is_null());
            lemon_pull_result_free(&mut r);
        }
    }

    #[test]
    fn result_repos_accessors() {
        let outcome = PullOutcome {
            repo: "org/main".into(),
            revision: "main".into(),
            commit: "a".repeat(40),
            snapshot_path: PathBuf::from("/c/models--org--main/snapshots/aaaa"),
            repos: vec![
                crate::pull::RepoOutcome {
                    repo: "org/main".into(),
                    revision: "main".into(),
                    commit: "a".repeat(40),
                    snapshot_path: PathBuf::from("/c/models--org--main/snapshots/aaaa"),
                },
                crate::pull::RepoOutcome {
                    repo: "org/vae".into(),
                    revision: "main".into(),
                    commit: "b".repeat(40),
                    snapshot_path: PathBuf::from("/c/models--org--vae/snapshots/bbbb"),
                },
            ],
            files: 3,
            totals: Totals {
                total_files: 3,
                total_bytes: 30,
                bytes_downloaded: 20,
                bytes_reused: 10,
                ..Totals::default()
            },
            plan: Vec::new(),
            reclaimed: Vec::new(),
            dry_run: false,
            from_cache: false,
        };
        let mut r = zeroed_result();
        // SAFETY: `r` is a zeroed result.
        let slot = unsafe { ResultSlot::new(&mut r) }.expect("usable");
        slot.fill(Report::success(outcome));
        let text = |p: *const c_char| {
            assert!(!p.is_null());
            // SAFETY: non-NULL strings returned by the accessors are owned by `r`.
            unsafe { CStr::from_ptr(p) }
                .to_str()
                .expect("utf-8")
                .to_string()
        };
        // SAFETY: `r` was filled above and is freed at the end.
        unsafe {
            assert_eq!(lemon_pull_result_repo_count(&r), 2);
            assert_eq!(text(lemon_pull_result_repo_id(&r, 1)), "org/vae");
            assert_eq!(text(lemon_pull_result_repo_commit(&r, 1)), "b".repeat(40));
            assert_eq!(
                text(lemon_pull_result_repo_snapshot_path(&r, 0)),
                "/c/models--org--main/snapshots/aaaa"
            );
            assert!(lemon_pull_result_repo_id(&r, 2).is_null());
            assert_eq!(text(r.commit), "a".repeat(40));
            assert!(r.error_message.is_null());
            assert_eq!(
                (
                    r.status,
                    r.files,
                    r.bytes_downloaded,
                    r.bytes_reused,
                    r.total_bytes
                ),
                (0, 3, 20, 10, 30)
            );
            lemon_pull_result_free(&mut r);
            lemon_pull_result_free(&mut r);
        }
        assert!(r.repos.is_null() && r.commit.is_null());
    }

    /// A copy of a progress event, strings included.
    #[derive(Debug, Clone)]
    struct Seen {
        kind: lemon_progress_kind,
        repo: String,
        file: String,
        message: String,
        file_index: u32,
        file_bytes_done: u64,
        file_bytes_offset: u64,
        percent: i32,
        complete: i32,
    }

    struct Recorder {
        seen: Vec<Seen>,
        cancel_at: Option<lemon_progress_kind>,
    }

    unsafe extern "C" fn record(user_data: *mut c_void, p: *const lemon_progress) -> i32 {
        // SAFETY: the tests pass a `Recorder` as user_data and the bridge a valid event.
        let (rec, p) = unsafe { (&mut *user_data.cast::<Recorder>(), &*p) };
        // SAFETY: the event's strings are valid C strings during the callback.
        let s = |c: *const c_char| unsafe { CStr::from_ptr(c) }.to_string_lossy().into_owned();
        rec.seen.push(Seen {
            kind: p.kind,
            repo: s(p.repo_id),
            file: s(p.file),
            message: s(p.message),
            file_index: p.file_index,
            file_bytes_done: p.file_bytes_done,
            file_bytes_offset: p.file_bytes_offset,
            percent: p.percent,
            complete: p.complete,
        });
        i32::from(rec.cancel_at == Some(p.kind))
    }

    #[test]
    fn bridge_maps_events_for_lemonade() {
        let mut rec = Recorder {
            seen: Vec::new(),
            cancel_at: Some(lemon_progress_kind::Complete),
        };
        let mut bridge = Bridge::new(Some(record), ptr::addr_of_mut!(rec).cast());
        let f = FileInfo {
            repo: "org/m",
            path: "dir/m.gguf",
            index: 2,
            size: 200,
        };
        let totals = Totals {
            total_files: 2,
            total_bytes: 300,
            ..Totals::default()
        };
        let snapshot = PathBuf::from("/cache/snap");
        let events = [
            Event::Resolved {
                repo: "org/m",
                revision: "main",
                commit: "abc",
            },
            Event::Plan { totals },
            Event::FileStart {
                file: f,
                offset: 50,
                totals,
            },
            Event::Progress {
                file: f,
                file_done: 150,
                totals,
            },
            Event::Retry {
                file: Some(f),
                attempt: 1,
                delay: Duration::from_millis(20),
                reason: "reset",
            },
            Event::FileDone {
                file: f,
                reused: false,
                totals,
            },
            Event::Complete {
                repo: "org/m",
                commit: "abc",
                snapshot: &snapshot,
                totals,
            },
        ];
        for e in &events {
            // The callback asks to cancel on COMPLETE: completion wins.
            assert_eq!(bridge.on_event(e), Flow::Continue);
        }
        let kinds: Vec<_> = rec.seen.iter().map(|s| s.kind).collect();
        use lemon_progress_kind as K;
        assert_eq!(
            kinds,
            [
                K::Resolved,
                K::Plan,
                K::FileStart,
                K::Progress,
                K::Retry,
                K::FileDone,
                K::Complete
            ]
        );
        let s = &rec.seen;
        assert_eq!(
            (
                s[0].repo.as_str(),
                s[0].message.as_str(),
                s[0].file.as_str()
            ),
            ("org/m", "abc", "")
        );
        assert_eq!(
            (
                s[2].file_index,
                s[2].file_bytes_done,
                s[2].file_bytes_offset,
                s[2].percent
            ),
            (2, 50, 50, 25)
        );
        assert_eq!(
            (s[3].file_bytes_done, s[3].file_bytes_offset, s[3].percent),
            (150, 50, 75)
        );
        assert_eq!(
            (s[4].file_bytes_done, s[4].message.as_str()),
            (150, "reset")
        );
        assert_eq!((s[5].percent, s[5].message.as_str()), (100, "downloaded"));
        assert_eq!((s[6].complete, s[6].percent, s[6].file_index), (1, 100, 2));
        assert_eq!(s[6].message, "/cache/snap");
        assert!(s[..6].iter().all(|e| e.complete == 0));
        assert_eq!(s[2].file, "dir/m.gguf");
    }

    #[test]
    fn bridge_cancels_and_survives_interior_nul() {
        let mut rec = Recorder {
            seen: Vec::new(),
            cancel_at: Some(lemon_progress_kind::Progress),
        };
        let mut bridge = Bridge::new(Some(record), ptr::addr_of_mut!(rec).cast());
        let f = FileInfo {
            repo: "org/m",
            path: "a\0b",
            index: 1,
            size: 0,
        };
        let t = Totals::default();
        assert_eq!(
            bridge.on_event(&Event::FileStart {
                file: f,
                offset: 0,
                totals: t
            }),
            Flow::Continue
        );
        assert_eq!(
            bridge.on_event(&Event::Progress {
                file: f,
                file_done: 0,
                totals: t
            }),
            Flow::Cancel
        );
        assert_eq!(rec.seen[0].file, "a");
        assert_eq!(rec.seen[0].percent, 100, "an empty file is complete");
    }

    #[test]
    fn bridge_without_callback_tracks_totals() {
        let mut bridge = Bridge::new(None, ptr::null_mut());
        let f = FileInfo {
            repo: "org/m",
            path: "x",
            index: 1,
            size: 10,
        };
        let totals = Totals {
            total_files: 1,
            total_bytes: 10,
            bytes_downloaded: 4,
            ..Totals::default()
        };
        assert_eq!(
            bridge.on_event(&Event::Progress {
                file: f,
                file_done: 4,
                totals
            }),
            Flow::Continue
        );
        assert_eq!(bridge.totals.bytes_downloaded, 4);
    }

    #[test]
    fn panics_become_internal_and_fill_the_result() {
        INJECT.set(PanicAt::Run);
        let (s, mut r) = call(ptr::null());
        INJECT.set(PanicAt::Nowhere);
        assert_eq!(s, lemon_status::Internal);
        assert_eq!(message(&r), "internal error: panic: injected test panic");
        // SAFETY: filled by lemon_resume_pull.
        unsafe { lemon_pull_result_free(&mut r) };

        // A panic in the progress bridge stops the pull without unwinding through the core.
        let endpoint = refused_endpoint();
        let cache = temp_cache("panic");
        let mut o = hermetic_options(&endpoint, &cache);
        o.max_retries = 3;
        o.initial_retry_delay_ms = 10;
        o.progress_cb = Some(cancel_immediately);
        INJECT.set(PanicAt::Bridge);
        let (s, mut r) = call(&o);
        INJECT.set(PanicAt::Nowhere);
        assert_eq!(s, lemon_status::Internal, "{}", message(&r));
        assert!(
            message(&r).contains("panic in progress reporting"),
            "{}",
            message(&r)
        );
        // SAFETY: filled by lemon_resume_pull.
        unsafe { lemon_pull_result_free(&mut r) };
    }

    unsafe extern "C" fn cancel_immediately(_: *mut c_void, _: *const lemon_progress) -> i32 {
        1
    }

    /// A listener that accepts nothing: API calls to it hang until cancelled.
    fn black_hole() -> (TcpListener, CString) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        (l, CString::new(url).expect("url"))
    }

    /// An endpoint whose port was just closed: connecting is refused, and retried.
    fn refused_endpoint() -> CString {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        drop(l);
        CString::new(url).expect("url")
    }

    fn hermetic_options(endpoint: &CStr, cache: &CStr) -> lemon_pull_options {
        let mut o = init_options();
        o.repo_id = c"org/name".as_ptr();
        o.endpoint = endpoint.as_ptr();
        o.cache_dir = cache.as_ptr();
        o.token = c"".as_ptr();
        o.max_retries = 0;
        o
    }

    fn temp_cache(tag: &str) -> CString {
        let p = std::env::temp_dir().join(format!("lemon-pull-ffi-{tag}-{}", std::process::id()));
        CString::new(p.to_string_lossy().into_owned()).expect("path")
    }

    #[test]
    fn cancel_flag_set_from_another_thread_cancels_a_blocked_call() {
        let (_listener, endpoint) = black_hole();
        let cache = temp_cache("flag");
        let mut o = hermetic_options(&endpoint, &cache);
        let flag = Box::new(std::sync::atomic::AtomicI32::new(0));
        o.cancel_flag = flag.as_ptr();
        let setter = {
            let flag: &'static std::sync::atomic::AtomicI32 = Box::leak(flag);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                flag.store(1, std::sync::atomic::Ordering::SeqCst);
                Instant::now()
            })
        };
        let (s, mut r) = call(&o);
        let returned = Instant::now();
        let set_at = setter.join().expect("setter");
        assert_eq!(s, lemon_status::Cancelled);
        assert_eq!(message(&r), "Download cancelled");
        assert!(
            returned.duration_since(set_at) < Duration::from_millis(1000),
            "cancel took too long"
        );
        // SAFETY: filled by lemon_resume_pull.
        unsafe { lemon_pull_result_free(&mut r) };
    }

    #[test]
    fn callback_cancel_is_reported_as_cancelled() {
        // Against a refused endpoint the first event is the RETRY of the API call: cancel there.
        let endpoint = refused_endpoint();
        let cache = temp_cache("cb");
        let mut o = hermetic_options(&endpoint, &cache);
        o.max_retries = 3;
        o.initial_retry_delay_ms = 10;
        o.progress_cb = Some(cancel_immediately);
        let (s, mut r) = call(&o);
        assert_eq!(s, lemon_status::Cancelled, "{}", message(&r));
        assert_eq!(message(&r), "Download cancelled");
        // SAFETY: filled by lemon_resume_pull.
        unsafe { lemon_pull_result_free(&mut r) };
    }

    #[test]
    fn unaligned_cancel_flag_is_invalid() {
        let mut o = init_options();
        o.repo_id = c"org/name".as_ptr();
        let bytes = [0u8; 8];
        // SAFETY: in bounds; only the address is used (it is rejected before any read).
        o.cancel_flag = unsafe { bytes.as_ptr().add(1) }.cast();
        expect_invalid(&o, "cancel_flag is not aligned");
    }
}
