//! Brings one file to its final, verified name: resume the partial, fetch the rest with `Range`,
//! retry what is transient, hash while streaming, and rename only after the content id matched.
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

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::cache::{create_dir_all, fsync_dir, remove_file_if_exists};
use crate::checkpoint::{self, Checkpoint};
use crate::error::{Error, Result};
use crate::http::{Http, Origin, Response, body_error, redact};
use crate::hub::status_error;
use crate::options::RetryPolicy;
use crate::progress::{Event, FileInfo, Reporter};
use crate::retry::{Backoff, is_retryable_status, parse_retry_after};
use crate::verify::{ContentHasher, ContentId, hash_prefix, is_hex};

/// Bytes read from the network per call; also the write size.
const BUF_SIZE: usize = 1 << 20;

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
}

/// What a finished transfer reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fetched {
    /// Bytes that were on disk already when the successful attempt started.
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
    let mut buf = vec![0u8; BUF_SIZE];
    let mut mismatches = 0;
    loop {
        let mut part = Partial::open(task, reporter)?;
        let start_offset = part.len;
        reporter.file_start(task.file, start_offset)?;
        part.hash_existing(task, reporter)?;
        let result = download_rest(http, retry, reporter, task, &mut part, &mut buf);
        if let Err(e) = result {
            part.persist(task);
            return Err(e);
        }
        let reused = if part.restarted { 0 } else { start_offset };
        let actual = part.hasher.clone().finish();
        if actual == *task.id {
            part.finish(task)?;
            return Ok(Fetched { reused });
        }
        mismatches += 1;
        drop(part);
        remove_file_if_exists(&task.partial_path)?;
        task.checkpoint.clear();
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

/// The open partial file and the hash of its first `len` bytes.
struct Partial {
    file: File,
    len: u64,
    hasher: ContentHasher,
    checkpointed: u64,
    /// Bytes on disk at the start were discarded during this attempt.
    restarted: bool,
    prefix_hashed: bool,
}

impl Partial {
    /// Opens (or creates) the partial and cuts it back to what can be trusted.
    fn open(task: &Task<'_>, reporter: &mut Reporter<'_>) -> Result<Partial> {
        let path = &task.partial_path;
        let on_disk = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let trusted = if on_disk > task.file.size {
            0
        } else {
            task.checkpoint.trusted_len(path, on_disk)
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(Error::io_at("open", path))?;
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
        Ok(Partial {
            file,
            len: trusted,
            hasher: task.id.hasher(task.file.size),
            checkpointed: trusted,
            restarted: false,
            prefix_hashed: trusted == 0,
        })
    }

    /// Hashes the bytes already on disk, so the final hash covers the whole file.
    fn hash_existing(&mut self, task: &Task<'_>, reporter: &mut Reporter<'_>) -> Result<()> {
        if !self.prefix_hashed {
            let cancel = reporter.cancel().clone();
            hash_prefix(
                &task.partial_path,
                self.len,
                &mut self.hasher,
                &cancel,
                |_| Ok(()),
            )?;
            self.prefix_hashed = true;
        }
        self.file
            .seek(SeekFrom::Start(self.len))
            .map_err(Error::io_at("seek", &task.partial_path))?;
        Ok(())
    }

    /// Discards everything and starts at byte 0.
    fn restart(&mut self, task: &Task<'_>) -> Result<()> {
        let path = &task.partial_path;
        self.file
            .set_len(0)
            .map_err(Error::io_at("truncate", path))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(Error::io_at("seek", path))?;
        self.len = 0;
        self.checkpointed = 0;
        self.hasher = task.id.hasher(task.file.size);
        self.restarted = true;
        task.checkpoint.clear();
        Ok(())
    }

    fn append(&mut self, task: &Task<'_>, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .map_err(|e| Error::io("write", &task.partial_path, e))?;
        self.hasher.update(data);
        self.len += data.len() as u64;
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

    /// Flushes the verified partial and gives it its final name.
    fn finish(self, task: &Task<'_>) -> Result<()> {
        self.file
            .sync_all()
            .map_err(Error::io_at("sync", &task.partial_path))?;
        drop(self.file);
        std::fs::rename(&task.partial_path, &task.final_path)
            .map_err(Error::io_at("rename", &task.final_path))?;
        if let Some(dir) = task.final_path.parent() {
            fsync_dir(dir)?;
        }
        task.checkpoint.clear();
        Ok(())
    }
}

/// Why one attempt ended early.
enum Failure {
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

fn download_rest(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter<'_>,
    task: &Task<'_>,
    part: &mut Partial,
    buf: &mut [u8],
) -> Result<()> {
    let mut backoff = Backoff::new(retry);
    let mut last_status = None;
    while part.len < task.file.size {
        let before = part.len;
        let (error, retry_after, status) = match attempt(http, reporter, task, part, buf) {
            Ok(()) => continue,
            Err(Failure::Fatal(e)) => return Err(with_file(e, task.file.path, last_status)),
            Err(Failure::Retry {
                error,
                retry_after,
                status,
            }) => (error, retry_after, status),
        };
        if status.is_some() {
            last_status = status;
        }
        if part.len > before {
            backoff.reset();
        }
        let Some(delay) = backoff.next_delay(retry_after) else {
            return Err(with_file(error, task.file.path, last_status));
        };
        let reason = error.to_string();
        reporter.emit(&Event::Retry {
            file: Some(task.file),
            attempt: backoff.attempt(),
            delay,
            reason: &reason,
        })?;
        reporter.cancel().sleep(delay)?;
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
        Error::Network { url, message, .. } => Error::Network {
            url,
            file: Some(path.to_string()),
            message,
            last_status,
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

/// One request: stream whatever the server sends for the rest of the file into the partial.
fn attempt(
    http: &Http,
    reporter: &mut Reporter<'_>,
    task: &Task<'_>,
    part: &mut Partial,
    buf: &mut [u8],
) -> Result<(), Failure> {
    let range = (part.len > 0).then_some(part.len);
    let mut resp = match http.get(&task.url, range) {
        Ok(r) => r,
        Err(e @ Error::Network { .. }) => {
            return Err(Failure::Retry {
                error: e,
                retry_after: None,
                status: None,
            });
        }
        Err(e) => return Err(Failure::Fatal(e)),
    };
    check_hub_headers(task, &resp)?;
    match resp.status {
        206 => check_content_range(task, &resp, part.len)?,
        200 => {
            check_content_length(task, &resp)?;
            if part.len > 0 {
                part.restart(task)?;
                reporter.rewind(0);
                reporter.emit(&Event::Restart {
                    file: task.file,
                    reason: "server ignored the Range request; restarting from byte 0",
                })?;
            }
        }
        416 => {
            // The server says our offset is past its end although the listing says otherwise:
            // whatever we hold cannot be trusted.
            part.restart(task)?;
            reporter.rewind(0);
            return Err(retry_status(
                &mut resp,
                task,
                "range not satisfiable; restarting",
            ));
        }
        s if is_retryable_status(s) => return Err(retry_status(&mut resp, task, "")),
        401 | 403 if is_cdn(http, &resp) => {
            return Err(retry_status(
                &mut resp,
                task,
                "signed download URL rejected; re-resolving",
            ));
        }
        _ => {
            return Err(Failure::Fatal(status_error(
                &mut resp,
                task.file.repo,
                Some(task.file.path),
                None,
            )));
        }
    }
    stream_body(http, reporter, task, part, resp, buf)
}

fn stream_body(
    http: &Http,
    reporter: &mut Reporter<'_>,
    task: &Task<'_>,
    part: &mut Partial,
    resp: Response,
    buf: &mut [u8],
) -> Result<(), Failure> {
    let url = resp.url.clone();
    let mut body = resp.inner.into_body().into_reader();
    while part.len < task.file.size {
        let want = (task.file.size - part.len).min(buf.len() as u64) as usize;
        let n = match body.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Failure::Retry {
                    error: Error::Network {
                        url: redact(&url),
                        file: None,
                        message: format!(
                            "connection closed at byte {} of {}",
                            part.len, task.file.size
                        ),
                        last_status: None,
                    },
                    retry_after: None,
                    status: None,
                });
            }
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::Interrupted
                    && !reporter.cancel().is_cancelled() =>
            {
                continue;
            }
            Err(e) => match body_error(reporter.cancel(), &url, e) {
                err @ Error::Network { .. } => {
                    return Err(Failure::Retry {
                        error: err,
                        retry_after: None,
                        status: None,
                    });
                }
                other => return Err(Failure::Fatal(other)),
            },
        };
        part.append(task, &buf[..n])?;
        reporter.advance(task.file, n as u64)?;
        http.throttle(n as u64)?;
    }
    Ok(())
}

fn retry_status(resp: &mut Response, task: &Task<'_>, note: &str) -> Failure {
    let retry_after = resp
        .header("retry-after")
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
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
    if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
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

fn check_content_range(task: &Task<'_>, resp: &Response, offset: u64) -> Result<(), Failure> {
    let header = resp.header("content-range").unwrap_or("");
    match parse_content_range(header) {
        Some((start, _end, Some(total))) if start == offset && total == task.file.size => Ok(()),
        _ => Err(Failure::Retry {
            error: Error::InvalidResponse {
                url: redact(&resp.url),
                message: format!(
                    "Content-Range {header:?} does not continue at byte {offset} of {}",
                    task.file.size
                ),
            },
            retry_after: None,
            status: Some(206),
        }),
    }
}

/// Parses `bytes a-b/N` (or `bytes a-b/*`) into `(a, b, Some(N))`.
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
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
