//! Typed errors with a stable status code for each kind.
//!
//! Every failure a pull can meet is one [`Error`] variant carrying the context a user needs to act on
//! it (repo, file, URL, HTTP status). [`Error::status`] maps each variant onto a [`Status`], whose
//! numeric values are part of the C ABI and never change once shipped.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Stable status codes, shared by the Rust API, the CLI's JSON output and the C ABI.
///
/// Values are append-only: a released value is never renumbered or reused.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The caller cancelled (callback, flag or signal). Partials and the manifest are kept.
    Cancelled = 1,
    /// An argument was missing, malformed or not UTF-8.
    InvalidArgument = 2,
    /// The repository does not exist or the token has no access to it.
    RepoNotFound = 3,
    /// The repository is gated and the token is missing or not approved.
    Gated = 4,
    /// The revision (branch, tag, commit) does not exist.
    RevisionNotFound = 5,
    /// A requested file or GGUF variant is not in the repository.
    FileNotFound = 6,
    /// The selection matched no file.
    NoFilesSelected = 7,
    /// A network error that outlasted every retry.
    Network = 8,
    /// An HTTP status the library does not retry, or one that outlasted every retry.
    Http = 9,
    /// The preflight check found less free space than the bytes still missing.
    InsufficientSpace = 10,
    /// The disk filled up while writing. The partial is kept.
    DiskFull = 11,
    /// A local file-system error.
    Io = 12,
    /// A file did not match its content id after a second download.
    VerificationFailed = 13,
    /// The repository's cache folder could not be locked.
    Locked = 14,
    /// A bug: a caught panic or a broken invariant.
    Internal = 15,
    /// The token was rejected (HTTP 401 without a more specific error code).
    Unauthorized = 16,
    /// The server answered something a Hub never answers (malformed JSON, unsafe path, missing header).
    InvalidResponse = 17,
    /// Offline mode: the cache does not hold a complete snapshot for the request.
    NotCached = 18,
}

impl Status {
    /// Every status, in numeric order.
    pub const ALL: [Status; 19] = [
        Status::Ok,
        Status::Cancelled,
        Status::InvalidArgument,
        Status::RepoNotFound,
        Status::Gated,
        Status::RevisionNotFound,
        Status::FileNotFound,
        Status::NoFilesSelected,
        Status::Network,
        Status::Http,
        Status::InsufficientSpace,
        Status::DiskFull,
        Status::Io,
        Status::VerificationFailed,
        Status::Locked,
        Status::Internal,
        Status::Unauthorized,
        Status::InvalidResponse,
        Status::NotCached,
    ];

    /// The status with this numeric value, if any.
    pub fn from_code(code: i32) -> Option<Status> {
        Status::ALL.iter().copied().find(|s| *s as i32 == code)
    }

    /// A stable snake_case name, used as `error.code` in the CLI's JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Cancelled => "cancelled",
            Status::InvalidArgument => "invalid_argument",
            Status::RepoNotFound => "repo_not_found",
            Status::Gated => "gated",
            Status::RevisionNotFound => "revision_not_found",
            Status::FileNotFound => "file_not_found",
            Status::NoFilesSelected => "no_files_selected",
            Status::Network => "network",
            Status::Http => "http",
            Status::InsufficientSpace => "insufficient_space",
            Status::DiskFull => "disk_full",
            Status::Io => "io",
            Status::VerificationFailed => "verification_failed",
            Status::Locked => "locked",
            Status::Internal => "internal",
            Status::Unauthorized => "unauthorized",
            Status::InvalidResponse => "invalid_response",
            Status::NotCached => "not_cached",
        }
    }

    /// A short human description.
    pub fn description(self) -> &'static str {
        match self {
            Status::Ok => "success",
            Status::Cancelled => "Download cancelled",
            Status::InvalidArgument => "invalid argument",
            Status::RepoNotFound => "repository not found or not accessible",
            Status::Gated => "gated repository: access not granted",
            Status::RevisionNotFound => "revision not found",
            Status::FileNotFound => "file not found in repository",
            Status::NoFilesSelected => "no files selected",
            Status::Network => "network error",
            Status::Http => "HTTP error",
            Status::InsufficientSpace => "insufficient disk space",
            Status::DiskFull => "disk full",
            Status::Io => "file-system error",
            Status::VerificationFailed => "verification failed",
            Status::Locked => "cache folder is locked",
            Status::Internal => "internal error",
            Status::Unauthorized => "invalid credentials",
            Status::InvalidResponse => "invalid response from server",
            Status::NotCached => "not in the cache (offline)",
        }
    }
}

/// Everything that can go wrong in a pull.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The caller cancelled. Partials and the manifest are kept for the next pull.
    Cancelled,
    /// A caller-supplied argument is invalid.
    InvalidArgument(String),
    /// The repository does not exist, is private, or the token cannot see it.
    RepoNotFound {
        /// Repository id.
        repo: String,
        /// HTTP status (401 or 404).
        status: u16,
        /// The server's `X-Error-Message`, if any.
        message: String,
    },
    /// The repository is gated.
    Gated {
        /// Repository id.
        repo: String,
        /// HTTP status (401 or 403).
        status: u16,
        /// The server's `X-Error-Message`, if any.
        message: String,
    },
    /// The token was rejected.
    Unauthorized {
        /// Repository id.
        repo: String,
        /// The server's message.
        message: String,
    },
    /// The revision does not exist.
    RevisionNotFound {
        /// Repository id.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The server's message.
        message: String,
    },
    /// A file or variant the caller asked for is not in the repository.
    FileNotFound {
        /// Repository id.
        repo: String,
        /// The path or variant asked for.
        path: String,
        /// What is available instead, or the server's message.
        message: String,
    },
    /// The selection matched nothing.
    NoFilesSelected {
        /// Repository id.
        repo: String,
        /// What was asked for.
        detail: String,
    },
    /// A transport-level failure (DNS, connect, reset, timeout) after all retries.
    Network {
        /// The URL being fetched (without query string secrets).
        url: String,
        /// Repo-relative file, when the failure was during a file transfer.
        file: Option<String>,
        /// What went wrong.
        message: String,
        /// The last HTTP status seen during the retries, if any.
        last_status: Option<u16>,
        /// Set when the host could not be reached at all (no answer to talk to), as opposed to a
        /// connection that failed part-way.
        unreachable: Option<Unreachable>,
    },
    /// The connection kept breaking after little progress (less than 1 MiB and under 2 s of data
    /// each time) until the retry budget was spent: a server or middlebox that cuts every answer
    /// short. The partial is kept for a later resume. Status [`Status::Network`].
    LowProgress {
        /// The URL being fetched (without query string secrets).
        url: String,
        /// Repo-relative file.
        file: String,
        /// Attempts that ended after little progress, since the last real progress.
        drops: u32,
        /// Bytes those attempts received (all kept).
        bytes: u64,
        /// The failure that ended the last attempt.
        last_error: String,
        /// The last HTTP status seen during the retries, if any.
        last_status: Option<u16>,
    },
    /// An HTTP status that is not retried, or that outlasted the retries.
    Http {
        /// The URL being fetched.
        url: String,
        /// Repo-relative file, when the failure was during a file transfer.
        file: Option<String>,
        /// The HTTP status.
        status: u16,
        /// The server's message, if any.
        message: String,
    },
    /// The server sent something the Hub protocol does not allow.
    InvalidResponse {
        /// The URL that answered.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// A repository path from the server that would escape the snapshot folder or is otherwise unsafe.
    UnsafePath {
        /// Repository id.
        repo: String,
        /// The offending path, escaped for display.
        path: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Preflight: not enough free space for the bytes still missing.
    InsufficientSpace {
        /// The folder checked.
        path: PathBuf,
        /// Bytes still to download.
        needed: u64,
        /// Bytes free on that file system.
        available: u64,
    },
    /// The disk filled up during a write; the partial is kept.
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// A local file-system error.
    Io {
        /// What was being done ("create", "rename", ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file did not verify twice in a row.
    VerificationFailed {
        /// Repository id.
        repo: String,
        /// Repo-relative file.
        file: String,
        /// The expected content id (`sha256:<hex>` or `git-sha1:<hex>`).
        expected: String,
        /// What the downloaded bytes hashed to, or a size mismatch.
        actual: String,
    },
    /// The repo lock could not be taken.
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Offline mode and the cache cannot answer the request.
    NotCached {
        /// Repository id.
        repo: String,
        /// What is missing.
        message: String,
    },
    /// A bug.
    Internal(String),
}

/// Why a host could not be reached. Such failures are not worth minutes of retries: the metadata
/// phase gives up after a few seconds (and answers from a complete cached snapshot, unless told
/// not to), and a transfer whose CDN host name no longer resolves keeps its partial and stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unreachable {
    /// The host name did not resolve.
    NameResolution,
    /// Nothing accepted the connection (refused, or no route to the host).
    Refused,
    /// The connection was not established in time.
    ConnectTimeout,
    /// The TLS handshake failed (other than a refused certificate, which is a configuration error).
    TlsHandshake,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unreachable::NameResolution => "host name not resolved",
            Unreachable::Refused => "connection refused",
            Unreachable::ConnectTimeout => "connect timed out",
            Unreachable::TlsHandshake => "TLS handshake failed",
        })
    }
}

impl Error {
    /// The stable status for this error.
    pub fn status(&self) -> Status {
        match self {
            Error::Cancelled => Status::Cancelled,
            Error::InvalidArgument(_) => Status::InvalidArgument,
            Error::RepoNotFound { .. } => Status::RepoNotFound,
            Error::Gated { .. } => Status::Gated,
            Error::Unauthorized { .. } => Status::Unauthorized,
            Error::RevisionNotFound { .. } => Status::RevisionNotFound,
            Error::FileNotFound { .. } => Status::FileNotFound,
            Error::NoFilesSelected { .. } => Status::NoFilesSelected,
            Error::Network { .. } | Error::LowProgress { .. } => Status::Network,
            Error::Http { .. } => Status::Http,
            Error::InvalidResponse { .. } | Error::UnsafePath { .. } => Status::InvalidResponse,
            Error::InsufficientSpace { .. } => Status::InsufficientSpace,
            Error::DiskFull { .. } => Status::DiskFull,
            Error::Io { .. } => Status::Io,
            Error::VerificationFailed { .. } => Status::VerificationFailed,
            Error::Locked { .. } => Status::Locked,
            Error::Internal(_) => Status::Internal,
            Error::NotCached { .. } => Status::NotCached,
        }
    }

    /// The HTTP status behind this error, if one was involved.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::RepoNotFound { status, .. }
            | Error::Gated { status, .. }
            | Error::Http { status, .. } => Some(*status),
            Error::Unauthorized { .. } => Some(401),
            Error::RevisionNotFound { .. } => Some(404),
            Error::Network { last_status, .. } | Error::LowProgress { last_status, .. } => {
                *last_status
            }
            _ => None,
        }
    }

    /// Wraps an I/O error with what was being done and where; ENOSPC becomes [`Error::DiskFull`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        if is_disk_full(&source) {
            Error::DiskFull { path }
        } else {
            Error::Io { op, path, source }
        }
    }

    /// Returns a closure for `map_err` that wraps an I/O error with context.
    pub fn io_at<'a>(
        op: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(io::Error) -> Error + 'a {
        move |e| Error::io(op, path, e)
    }
}

/// True when an I/O error means the file system is full (ENOSPC, or ERROR_DISK_FULL on Windows).
fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.raw_os_error()
            .is_some_and(crate::platform::is_disk_full_code)
}

fn opt_file(file: &Option<String>) -> String {
    match file {
        Some(f) => format!(" (file {f})"),
        None => String::new(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled => write!(f, "Download cancelled"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
            Error::NotCached { repo, message } => write!(f, "offline: {repo}: {message}"),
            Error::RepoNotFound { .. }
            | Error::Gated { .. }
            | Error::Unauthorized { .. }
            | Error::RevisionNotFound { .. }
            | Error::FileNotFound { .. }
            | Error::NoFilesSelected { .. } => self.fmt_repository(f),
            _ => self.fmt_transfer(f),
        }
    }
}

impl Error {
    /// Messages about what the repository holds or lets us see (lemonade matches some of them).
    fn fmt_repository(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::RepoNotFound {
                repo,
                status,
                message,
            } => write!(
                f,
                "Hugging Face repository not found or not accessible: {repo} (HTTP {status}{})",
                suffix(message)
            ),
            Error::Gated {
                repo,
                status,
                message,
            } => write!(
                f,
                "repository {repo} is gated: request access on the Hub and use a token of an approved account (HTTP {status}{})",
                suffix(message)
            ),
            Error::Unauthorized { repo, message } => write!(
                f,
                "the token was rejected while accessing {repo} (HTTP 401{})",
                suffix(message)
            ),
            Error::RevisionNotFound {
                repo,
                revision,
                message,
            } => write!(
                f,
                "revision {revision:?} not found in {repo}{}",
                suffix(message)
            ),
            Error::FileNotFound {
                repo,
                path,
                message,
            } => {
                write!(
                    f,
                    "{path:?} not found in repository {repo}{}",
                    suffix(message)
                )
            }
            Error::NoFilesSelected { repo, detail } => {
                write!(f, "No files selected for download from {repo}: {detail}")
            }
            _ => unreachable_display(f),
        }
    }

    /// Messages about the network, the disk and the bytes.
    fn fmt_transfer(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Network {
                url,
                file,
                message,
                last_status,
                unreachable,
            } => {
                match unreachable {
                    Some(cause) => write!(f, "{cause}: cannot reach {url}")?,
                    None => write!(f, "network error fetching {url}")?,
                }
                write!(f, "{}: {message}", opt_file(file))?;
                if let Some(s) = last_status {
                    write!(f, " (last HTTP status {s})")?;
                }
                Ok(())
            }
            Error::LowProgress { .. } => self.fmt_low_progress(f),
            Error::Http {
                url,
                file,
                status,
                message,
            } => write!(
                f,
                "HTTP {status} from {url}{}{}",
                opt_file(file),
                suffix(message)
            ),
            Error::InvalidResponse { url, message } => {
                write!(f, "invalid response from {url}: {message}")
            }
            Error::UnsafePath { repo, path, reason } => {
                write!(f, "refusing unsafe file path {path} from {repo}: {reason}")
            }
            Error::InsufficientSpace {
                path,
                needed,
                available,
            } => write!(
                f,
                "Insufficient disk space: download requires {needed} more bytes but only {available} bytes are free in {}",
                path.display()
            ),
            Error::DiskFull { path } => write!(
                f,
                "disk full while writing {} (partial download kept; free space and pull again)",
                path.display()
            ),
            Error::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
            Error::VerificationFailed {
                repo,
                file,
                expected,
                actual,
            } => write!(
                f,
                "verification failed for {file} in {repo}: expected {expected}, got {actual}"
            ),
            Error::Locked { path, message } => {
                write!(f, "cannot lock {}: {message}", path.display())
            }
            _ => unreachable_display(f),
        }
    }
}

impl Error {
    /// The crawl pattern: what kept happening, to which file, and that nothing was lost.
    fn fmt_low_progress(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Error::LowProgress {
            url,
            file,
            drops,
            bytes,
            last_error,
            last_status,
        } = self
        else {
            return unreachable_display(f);
        };
        write!(
            f,
            "connection dropped {drops} times after less than 1 MiB each while fetching {file} \
             from {url} ({bytes} bytes received in those attempts; partial kept, pull again to \
             resume); last error: {last_error}"
        )?;
        if let Some(s) = last_status {
            write!(f, " (last HTTP status {s})")?;
        }
        Ok(())
    }
}

/// The arm `Display` never routes to a helper; written, not panicked, should a variant be misrouted.
fn unreachable_display(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "error")
}

fn suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_stable_and_dense() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(*s as i32, i as i32);
            assert_eq!(Status::from_code(i as i32), Some(*s));
        }
        assert_eq!(Status::from_code(-1), None);
        assert_eq!(Status::from_code(Status::ALL.len() as i32), None);
    }

    #[test]
    fn cancelled_message_is_lemonades_literal() {
        assert_eq!(Error::Cancelled.to_string(), "Download cancelled");
    }

    #[test]
    fn enospc_becomes_disk_full() {
        let e = Error::io("write", "/x", io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(e.status(), Status::DiskFull);
        let e = Error::io(
            "write",
            "/x",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.status(), Status::Io);
    }
}
