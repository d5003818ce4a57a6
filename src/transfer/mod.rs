//! Brings one file to its final, verified name: resume the partial, fetch the rest with `Range`,
//! retry what is transient, hash while streaming, and rename only after the content id matched.
//!
//! Two ways to fetch the bytes share everything but the streaming: the sequential path here (one
//! connection appending to a prefix) and the segmented one in `parallel` (several ranged
//! connections writing at their offsets). The segmented path is used when `connections` > 1 for a
//! large file, and always when a segments sidecar says the partial has holes: such a partial is
//! never read as a prefix.
//!
//! Rules that keep data safe:
//! - a `206` is accepted only when its `Content-Range` starts at our length and its total is the
//!   expected size; a `200` to a range request means the server ignored the range: restart at 0;
//! - an error body is never appended: only `200`/`206` bodies are written;
//! - transient failures (network, 408, 429, 5xx, an expired CDN URL) keep the partial and retry
//!   from the current length after a backoff; every retry starts again at the pinned `/resolve` URL,
//!   so an expired signed CDN URL is replaced by a fresh one;
//! - the partial is fsync'd and checkpointed every [`checkpoint::INTERVAL`] bytes and when the
//!   transfer stops for any reason, so a crash loses at most one interval;
//! - a content mismatch restarts the file once; a second mismatch is an error.

pub(crate) mod checkpoint;
pub(crate) mod hash_thread;
pub(crate) mod parallel;
pub(crate) mod segments;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::cache::{create_dir_all, fsync_dir, remove_file_if_exists};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::net::http::{ByteRange, Http, Origin, Response, body_error, redact};
use crate::net::hub::status_error;
use crate::net::retry::{Backoff, is_retryable_status};
use crate::options::RetryPolicy;
use crate::progress::{Event, FileInfo, Phase, Reporter};
use crate::transfer::hash_thread::HashThread;
use crate::transfer::segments::Sidecar;
use crate::verify::{ContentHasher, ContentId, hash_prefix, is_hex};
use checkpoint::Checkpoint;
use parallel::Pass;

/// One file to bring up to date.
pub(crate) struct Task<'a> {
    pub file: FileInfo<'a>,
    pub id: &'a ContentId,
    /// Commit the URL is pinned to; the server must confirm it.
    pub commit: &'a str,
    /// Pinned `/resolve/<commit>/<path>` URL.
    pub url: String,
    pub final_path: PathBuf,
    pub partial_path: PathBuf,
    pub checkpoint: Checkpoint,
    /// Which byte ranges a partial with holes holds (see [`crate::transfer::segments`]).
    pub segments: Sidecar,
    /// Ranged connections allowed for this file (1 = sequential).
    pub connections: u32,
}

/// What a finished transfer reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fetched {
    /// Bytes that were on disk already when the successful attempt started.
    pub reused: u64,
}

/// A partial that holds every byte of the file, and the hash of all of them.
pub(crate) struct Complete {
    pub file: File,
    pub actual: ContentId,
    /// Bytes that were on disk already when this pass started.
    pub reused: u64,
}

/// Downloads (or resumes) `task` until the final file exists and verified.
pub(crate) fn fetch(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter<'_>,
    task: &Task<'_>,
) -> Result<Fetched> {
    if let Some(parent) = task.partial_path.parent() {
        create_dir_all(parent)?;
    }
    let mut mismatches = 0;
    loop {
        let complete = fetch_bytes(http, retry, reporter, task)?;
        let actual = complete.actual;
        if actual == *task.id {
            promote(task, complete.file)?;
            return Ok(Fetched {
                reused: complete.reused,
            });
        }
        mismatches += 1;
        drop(complete.file);
        discard(task)?;
        if mismatches >= 2 {
            return Err(Error::VerificationFailed {
                repo: task.file.repo.to_string(),
                file: task.file.path.to_string(),
                expected: task.id.to_string(),
                actual: actual.to_string(),
            });
        }
        let reason = format!(
            "content did not verify (expected {}, got {actual}); restarting",
            task.id
        );
        reporter.rewind(0);
        reporter.emit(&Event::Restart {
            file: task.file,
            reason: &reason,
        })?;
    }
}

/// One pass over the file: every byte on disk and hashed, by the segmented machinery when it
/// applies, else (or when the server turns out to ignore ranges) sequentially.
fn fetch_bytes(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter<'_>,
    task: &Task<'_>,
) -> Result<Complete> {
    let mut reused_before = None;
    if parallel::applies(task) {
        match parallel::fetch(http, retry, reporter, task)? {
            Pass::Complete(complete) => return Ok(complete),
            Pass::NoRanges { reused } => reused_before = Some(reused),
        }
    }
    sequential(http, retry, reporter, task, reused_before)
}

/// Deletes the partial and everything recorded about it: the next pass starts at byte 0.
fn discard(task: &Task<'_>) -> Result<()> {
    remove_file_if_exists(&task.partial_path)?;
    task.checkpoint.clear();
    task.segments.clear();
    Ok(())
}

/// Flushes the verified partial and gives it its final name.
fn promote(task: &Task<'_>, file: File) -> Result<()> {
    file.sync_all()
        .map_err(Error::io_at("sync", &task.partial_path))?;
    drop(file);
    // A scanner opening the just-closed partial must not fail the pull on Windows.
    crate::platform::rename(&task.partial_path, &task.final_path)
        .map_err(Error::io_at("rename", &task.final_path))?;
    if let Some(dir) = task.final_path.parent() {
        fsync_dir(dir)?;
    }
    task.checkpoint.clear();
    task.segments.clear();
    Ok(())
}

/// Opens (or creates) the partial as a prefix of the file, cut back to what can be trusted: all
/// of it without a checkpoint (it may be lemonade's or a salvaged one; the final hash decides),
/// up to the checkpoint with one, nothing when it is longer than the file. Returns the file and
/// the trusted length. Only for partials without a segments sidecar.
pub(crate) fn open_prefix(task: &Task<'_>, reporter: &mut Reporter<'_>) -> Result<(File, u64)> {
    let path = &task.partial_path;
    let on_disk = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let trusted = if on_disk > task.file.size {
        0
    } else {
        task.checkpoint.trusted_len(path, on_disk)
    };
    let file = open_partial(task)?;
    if trusted != on_disk {
        file.set_len(trusted)
            .map_err(Error::io_at("truncate", path))?;
        if on_disk > 0 {
            let reason = format!(
                "partial of {on_disk} bytes cut back to its last good checkpoint at {trusted}"
            );
            reporter.emit(&Event::Restart {
                file: task.file,
                reason: &reason,
            })?;
        }
    }
    Ok((file, trusted))
}

/// The partial, opened for reading and writing, created if missing, never truncated.
pub(crate) fn open_partial(task: &Task<'_>) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&task.partial_path)
        .map_err(Error::io_at("open", &task.partial_path))
}

/// The sequential pass: one connection appending to the prefix on disk, hashed on a thread beside
/// it. After a parallel pass fell back, `reused_before` caps what counts as reused: the prefix it
/// leaves also holds bytes that pass downloaded.
fn sequential(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter<'_>,
    task: &Task<'_>,
    reused_before: Option<u64>,
) -> Result<Complete> {
    let mut part = Partial::open(task, reporter)?;
    let start_offset = part.len;
    reporter.file_start(task.file, start_offset)?;
    let prefix = part.hash_existing(task, reporter)?;
    let hashed = std::thread::scope(|scope| {
        let mut hashing = HashThread::spawn(scope, prefix);
        let streamed = download_rest(http, retry, reporter, task, &mut part, &mut hashing);
        // Joined even after a failure: no thread outlives the transfer.
        let hasher = hashing.finish();
        streamed.and(hasher)
    });
    match hashed {
        Ok(hasher) => Ok(Complete {
            reused: match (part.restarted, reused_before) {
                (true, _) => 0,
                (false, Some(before)) => before.min(start_offset),
                (false, None) => start_offset,
            },
            actual: hasher.finish(),
            file: part.file,
        }),
        Err(e) => {
            part.persist(task);
            Err(e)
        }
    }
}

/// The open partial file: its first `len` bytes are on disk and handed to the hasher.
struct Partial {
    file: File,
    len: u64,
    checkpointed: u64,
    /// Bytes on disk at the start were discarded during this attempt.
    restarted: bool,
}

impl Partial {
    /// Opens (or creates) the partial and cuts it back to what can be trusted.
    fn open(task: &Task<'_>, reporter: &mut Reporter<'_>) -> Result<Partial> {
        let (file, trusted) = open_prefix(task, reporter)?;
        Ok(Partial {
            file,
            len: trusted,
            checkpointed: trusted,
            restarted: false,
        })
    }

    /// Hashes the bytes already on disk, so the final hash covers the whole file, and positions
    /// the file for appending. Returns the hasher of that prefix.
    fn hash_existing(
        &mut self,
        task: &Task<'_>,
        reporter: &mut Reporter<'_>,
    ) -> Result<ContentHasher> {
        let mut hasher = task.id.hasher(task.file.size);
        if self.len > 0 {
            let cancel = reporter.cancel().clone();
            reporter.set_phase(Phase::Verify);
            hash_prefix(&task.partial_path, self.len, &mut hasher, &cancel, |_| {
                Ok(())
            })?;
            reporter.set_phase(Phase::Transfer);
        }
        self.file
            .seek(SeekFrom::Start(self.len))
            .map_err(Error::io_at("seek", &task.partial_path))?;
        Ok(hasher)
    }

    /// Discards everything and starts at byte 0.
    fn restart(&mut self, task: &Task<'_>, hashing: &mut HashThread<'_>) -> Result<()> {
        let path = &task.partial_path;
        self.file
            .set_len(0)
            .map_err(Error::io_at("truncate", path))?;
        // From here the file is empty: if anything below fails, `persist` must not grow it back
        // to the old length (zeros) and checkpoint that.
        self.len = 0;
        self.checkpointed = 0;
        self.restarted = true;
        task.checkpoint.clear();
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(Error::io_at("seek", path))?;
        hashing.reset(task.id.hasher(task.file.size))
    }

    /// Writes the first `len` bytes of `buf` at the end of the partial and queues them for
    /// hashing; checkpoints when an interval is full.
    fn append(
        &mut self,
        task: &Task<'_>,
        hashing: &mut HashThread<'_>,
        buf: Vec<u8>,
        len: usize,
    ) -> Result<()> {
        self.file
            .write_all(&buf[..len])
            .map_err(|e| Error::io("write", &task.partial_path, e))?;
        hashing.hash(buf, len)?;
        self.len += len as u64;
        if self.len - self.checkpointed >= checkpoint::INTERVAL {
            self.file
                .sync_data()
                .map_err(Error::io_at("sync", &task.partial_path))?;
            task.checkpoint.record(&task.partial_path, self.len)?;
            self.checkpointed = self.len;
        }
        Ok(())
    }

    /// Best effort on the way out of a failed or cancelled transfer: drop any torn write past
    /// `len`, flush, and checkpoint, so the next pull resumes from exactly here.
    fn persist(&mut self, task: &Task<'_>) {
        let _ = self.file.set_len(self.len);
        if self.file.sync_data().is_ok() && self.len > 0 {
            let _ = task.checkpoint.record(&task.partial_path, self.len);
        }
    }
}

/// Why one attempt ended early.
pub(crate) enum Failure {
    /// Worth another attempt after a backoff.
    Retry {
        error: Error,
        retry_after: Option<Duration>,
        status: Option<u16>,
    },
    /// Give up now.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

impl Failure {
    /// A network error is worth a retry; anything else (cancellation, a refused redirect) is not.
    fn network(e: Error) -> Failure {
        match e {
            e @ Error::Network { .. } => Failure::Retry {
                error: e,
                retry_after: None,
                status: None,
            },
            other => Failure::Fatal(other),
        }
    }
}

/// The next retry of a stream of attempts: how long to wait and what to report.
pub(crate) struct RetryPlan {
    /// 1-based number of the retry.
    pub attempt: u32,
    pub delay: Duration,
    pub reason: String,
}

/// Retry bookkeeping of one stream of attempts at one file (the sequential transfer, or one
/// connection of a parallel one): the backoff schedule, reset whenever bytes arrived, and the
/// last HTTP status, named in the final error.
pub(crate) struct Retrier {
    backoff: Backoff,
    last_status: Option<u16>,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy) -> Retrier {
        Retrier {
            backoff: Backoff::new(policy),
            last_status: None,
        }
    }

    /// Bytes arrived: the next failure starts the backoff schedule over.
    pub(crate) fn progressed(&mut self) {
        self.backoff.reset();
    }

    /// After a failed attempt (which received bytes if `progressed`): the retry to make, or the
    /// error to give up with, naming the file.
    pub(crate) fn next(
        &mut self,
        failure: Failure,
        progressed: bool,
        path: &str,
    ) -> Result<RetryPlan> {
        let (error, retry_after, status) = match failure {
            Failure::Fatal(e) => return Err(with_file(e, path, self.last_status)),
            Failure::Retry {
                error,
                retry_after,
                status,
            } => (error, retry_after, status),
        };
        if status.is_some() {
            self.last_status = status;
        }
        if progressed {
            self.progressed();
        }
        let Some(delay) = self.backoff.next_delay(retry_after) else {
            return Err(with_file(error, path, self.last_status));
        };
        Ok(RetryPlan {
            attempt: self.backoff.attempt(),
            delay,
            reason: error.to_string(),
        })
    }
}

fn download_rest(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter<'_>,
    task: &Task<'_>,
    part: &mut Partial,
    hashing: &mut HashThread<'_>,
) -> Result<()> {
    let mut retrier = Retrier::new(retry);
    while part.len < task.file.size {
        let before = part.len;
        let Err(failure) = attempt(http, reporter, task, part, hashing) else {
            continue;
        };
        let plan = retrier.next(failure, part.len > before, task.file.path)?;
        reporter.emit(&Event::Retry {
            file: Some(task.file),
            attempt: plan.attempt,
            delay: plan.delay,
            reason: &plan.reason,
        })?;
        reporter.cancel().sleep(plan.delay)?;
        reporter.backoff_over();
    }
    Ok(())
}

/// Adds the file name and last HTTP status to the error that ended the transfer: a URL alone (a
/// signed CDN URL names a hash, not a file) does not tell the user which file failed.
fn with_file(e: Error, path: &str, last_status: Option<u16>) -> Error {
    match e {
        Error::InvalidResponse { url, message } if !message.contains(path) => {
            Error::InvalidResponse {
                url,
                message: format!("{message} (file {path})"),
            }
        }
        Error::Network {
            url,
            message,
            unreachable,
            ..
        } => Error::Network {
            url,
            file: Some(path.to_string()),
            message,
            last_status,
            unreachable,
        },
        Error::Http {
            url,
            status,
            message,
            ..
        } => Error::Http {
            url,
            file: Some(path.to_string()),
            status,
            message,
        },
        other => other,
    }
}

/// Sends one GET for file content and sorts the answer: `200`, `206` and `416` are returned for
/// the caller to interpret; a retryable status, or a `401`/`403` from a signed CDN URL (expired:
/// the next attempt re-resolves), is a [`Failure::Retry`]; any other status is fatal. `hub_checks`
/// verifies the Hub's commit, content id and size headers, which only a request that went through
/// `/resolve` carries.
pub(crate) fn request(
    http: &Http,
    task: &Task<'_>,
    url: &str,
    range: ByteRange,
    hub_checks: bool,
) -> Result<Response, Failure> {
    let mut resp = http.get(url, range).map_err(Failure::network)?;
    if hub_checks {
        check_hub_headers(task, &resp)?;
    }
    match resp.status {
        200 | 206 | 416 => Ok(resp),
        s if is_retryable_status(s) => Err(retry_status(&mut resp, task, "")),
        401 | 403 if is_cdn(http, &resp) => Err(retry_status(
            &mut resp,
            task,
            "signed download URL rejected; re-resolving",
        )),
        _ => Err(Failure::Fatal(status_error(
            &mut resp,
            task.file.repo,
            Some(task.file.path),
            None,
        ))),
    }
}

/// One request: stream whatever the server sends for the rest of the file into the partial.
fn attempt(
    http: &Http,
    reporter: &mut Reporter<'_>,
    task: &Task<'_>,
    part: &mut Partial,
    hashing: &mut HashThread<'_>,
) -> Result<(), Failure> {
    let range = match part.len {
        0 => ByteRange::Whole,
        n => ByteRange::From(n),
    };
    let mut resp = request(http, task, &task.url, range, true)?;
    match resp.status {
        206 => check_content_range(task, &resp, part.len, None)?,
        200 => {
            check_content_length(task, &resp)?;
            if part.len > 0 {
                part.restart(task, hashing)?;
                reporter.rewind(0);
                reporter.emit(&Event::Restart {
                    file: task.file,
                    reason: "server ignored the Range request; restarting from byte 0",
                })?;
            }
        }
        _ => {
            // 416: the server says our offset is past its end although the listing says
            // otherwise: whatever we hold cannot be trusted.
            part.restart(task, hashing)?;
            reporter.rewind(0);
            return Err(retry_status(
                &mut resp,
                task,
                "range not satisfiable; restarting",
            ));
        }
    }
    stream_body(http, reporter, task, part, resp, hashing)
}

/// Streams the body into the partial a buffer at a time. The bytes of a buffer are written once
/// it is full (or the file ends) and also when the stream stops early, whatever the reason: a
/// cancel or a dropped connection never loses bytes that arrived.
fn stream_body(
    http: &Http,
    reporter: &mut Reporter<'_>,
    task: &Task<'_>,
    part: &mut Partial,
    resp: Response,
    hashing: &mut HashThread<'_>,
) -> Result<(), Failure> {
    let url = resp.url.clone();
    let mut body = resp.inner.into_body().into_reader();
    let cancel = reporter.cancel().clone();
    let size = task.file.size;
    while part.len < size {
        let mut buf = hashing.buffer()?;
        let want = (size - part.len).min(buf.len() as u64) as usize;
        let mut filled = 0;
        let mut stopped = Ok(());
        while filled < want {
            let at = part.len + filled as u64;
            let read = read_some(&mut body, &mut buf[filled..want], &cancel, &url, at, size);
            match read {
                Ok(n) => {
                    filled += n;
                    let paced = reporter
                        .advance(task.file, n as u64)
                        .and_then(|()| http.throttle(n as u64));
                    if let Err(e) = paced {
                        stopped = Err(Failure::Fatal(e));
                        break;
                    }
                }
                Err(failure) => {
                    stopped = Err(failure);
                    break;
                }
            }
        }
        part.append(task, hashing, buf, filled)?;
        stopped?;
    }
    Ok(())
}

/// One read from a body that should go on: `Ok(n)` with `n > 0`, a retryable failure when the
/// connection ended early or broke (`at` of `size` names where), `Cancelled` when asked to stop.
pub(crate) fn read_some(
    body: &mut impl Read,
    buf: &mut [u8],
    cancel: &Cancel,
    url: &str,
    at: u64,
    size: u64,
) -> Result<usize, Failure> {
    loop {
        match body.read(buf) {
            Ok(0) => {
                return Err(Failure::network(Error::Network {
                    url: redact(url),
                    file: None,
                    message: format!("connection closed at byte {at} of {size}"),
                    last_status: None,
                    unreachable: None,
                }));
            }
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted && !cancel.is_cancelled() => {
                continue;
            }
            Err(e) => return Err(Failure::network(body_error(cancel, url, e))),
        }
    }
}

pub(crate) fn retry_status(resp: &mut Response, task: &Task<'_>, note: &str) -> Failure {
    let retry_after = resp.retry_after();
    let mut message = resp.header("x-error-message").unwrap_or("").to_string();
    if !note.is_empty() {
        message = if message.is_empty() {
            note.to_string()
        } else {
            format!("{message}; {note}")
        };
    }
    Failure::Retry {
        error: Error::Http {
            url: redact(&resp.url),
            file: Some(task.file.path.to_string()),
            status: resp.status,
            message,
        },
        retry_after,
        status: Some(resp.status),
    }
}

fn is_cdn(http: &Http, resp: &Response) -> bool {
    Origin::of(&resp.url) != Origin::of(http.endpoint())
}

fn invalid(resp: &Response, message: String) -> Failure {
    Failure::Fatal(Error::InvalidResponse {
        url: redact(&resp.url),
        message,
    })
}

/// The Hub confirms the commit and size of what it serves; disagreement means we would write bytes
/// of another file (or this is not a Hub).
fn check_hub_headers(task: &Task<'_>, resp: &Response) -> Result<(), Failure> {
    if !(resp.status == 200 || resp.status == 206) {
        return Ok(());
    }
    match resp.hub.repo_commit.as_deref() {
        None => {
            return Err(invalid(
                resp,
                "no X-Repo-Commit header: not a Hugging Face Hub?".into(),
            ));
        }
        Some(c) if !c.eq_ignore_ascii_case(task.commit) => {
            return Err(invalid(
                resp,
                format!("server answered for commit {c}, expected {}", task.commit),
            ));
        }
        Some(_) => {}
    }
    let etag = resp.hub.linked_etag.as_deref().or(resp.hub.etag.as_deref());
    if let Some(etag) = etag
        && is_hex(etag, task.id.hex().len())
        && !etag.eq_ignore_ascii_case(task.id.hex())
    {
        return Err(invalid(
            resp,
            format!(
                "server serves content {etag} but the listing says {}",
                task.id
            ),
        ));
    }
    if let Some(size) = resp.hub.linked_size
        && size != task.file.size
    {
        return Err(invalid(
            resp,
            format!(
                "X-Linked-Size {size} disagrees with the listed size {}",
                task.file.size
            ),
        ));
    }
    Ok(())
}

fn check_content_length(task: &Task<'_>, resp: &Response) -> Result<(), Failure> {
    if let Some(len) = resp.content_length()
        && len != task.file.size
    {
        return Err(invalid(
            resp,
            format!(
                "server sends {len} bytes for {} but the listing says {}",
                task.file.path, task.file.size
            ),
        ));
    }
    Ok(())
}

/// Checks the `Content-Range` of a `206`: it must start at `start`, end at `end` (inclusive) when
/// one was asked for, and name the expected total size. Anything else is retried: the bytes
/// would land at the wrong offset.
pub(crate) fn check_content_range(
    task: &Task<'_>,
    resp: &Response,
    start: u64,
    end: Option<u64>,
) -> Result<(), Failure> {
    let header = resp.header("content-range").unwrap_or("");
    match parse_content_range(header) {
        Some((a, b, Some(total)))
            if a == start && end.is_none_or(|e| e == b) && total == task.file.size =>
        {
            Ok(())
        }
        _ => {
            let size = task.file.size;
            let message = match end {
                Some(e) => format!("Content-Range {header:?} is not bytes {start}-{e}/{size}"),
                None => {
                    format!("Content-Range {header:?} does not continue at byte {start} of {size}")
                }
            };
            Err(Failure::Retry {
                error: Error::InvalidResponse {
                    url: redact(&resp.url),
                    message,
                },
                retry_after: None,
                status: Some(206),
            })
        }
    }
}

/// Parses `bytes a-b/N` (or `bytes a-b/*`) into `(a, b, Some(N))`.
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    if b < a {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => {
            let n: u64 = t.parse().ok()?;
            if b >= n {
                return None;
            }
            Some(n)
        }
    };
    Some((a, b, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 10-19/20"),
            Some((10, 19, Some(20)))
        );
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, 0, None)));
        assert_eq!(parse_content_range("bytes 10-19/15"), None);
        assert_eq!(parse_content_range("bytes 19-10/20"), None);
        assert_eq!(parse_content_range("bytes */20"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes -1-2/3"), None);
        assert_eq!(parse_content_range(""), None);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..100).prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just("18446744073709551616".to_string()),
            Just("*".to_string()),
            "[0-9+ -]{0,6}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn content_range_never_panics_on_anything(s in any::<String>()) {
            let _ = parse_content_range(&s);
        }

        /// Structured near-misses: whatever is accepted is a real range inside the total.
        #[test]
        fn accepted_content_ranges_are_consistent(
            unit in prop_oneof![Just("bytes "), Just("bytes  "), Just("items "), Just("bytes")],
            a in number(),
            b in number(),
            n in number(),
            sep in prop_oneof![Just("-"), Just("--"), Just("")],
        ) {
            let header = format!("{unit}{a}{sep}{b}/{n}");
            match parse_content_range(&header) {
                Some((a, b, Some(n))) => prop_assert!(a <= b && b < n, "{header}"),
                Some((a, b, None)) => prop_assert!(a <= b, "{header}"),
                None => {}
            }
        }

        /// Every well-formed range round-trips.
        #[test]
        fn well_formed_content_ranges_parse(a in any::<u64>(), len in any::<u64>(), extra in any::<u64>()) {
            let b = a.saturating_add(len % (1 << 40));
            prop_assume!(b < u64::MAX);
            let n = b.saturating_add(1).saturating_add(extra % (1 << 40));
            let header = format!("bytes {a}-{b}/{n}");
            prop_assert_eq!(parse_content_range(&header), Some((a, b, Some(n))));
            prop_assert_eq!(parse_content_range(&format!("bytes {a}-{b}/*")), Some((a, b, None)));
        }
    }
}
