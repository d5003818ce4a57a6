//! The sequential pass: one connection appending to the prefix on disk, hashed on a thread beside
//! it. A `200` to a range request means the server ignored the range: the prefix is dropped and the
//! pass restarts at byte 0; transient failures keep the prefix and retry from its end after a
//! backoff, always through the pinned `/resolve` URL.

use crate::error::Result;
use crate::net::http::{ByteRange, Http, Response};
use crate::net::retry::{Failure, Received, Retrier};
use crate::options::RetryPolicy;
use crate::progress::{Event, Reporter};
use crate::transfer::hash_thread::HashThread;
use crate::transfer::partial::{Complete, Partial, Task};
use crate::transfer::wire::{
    check_content_length, check_content_range, read_some, request, retry_status,
};

/// The sequential pass: one connection appending to the prefix on disk, hashed on a thread beside
/// it. After a parallel pass fell back, `reused_before` caps what counts as reused: the prefix it
/// leaves also holds bytes that pass downloaded.
pub(crate) fn fetch(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter,
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
            connections: 1,
        }),
        Err(e) => {
            part.persist(task);
            Err(e)
        }
    }
}

/// Fetches the rest of the file attempt after attempt, backing off between failures, until every
/// byte is on disk or the retries are spent (attempts cut short after little progress count
/// against them: see [`Received`]).
fn download_rest(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter,
    task: &Task<'_>,
    part: &mut Partial,
    hashing: &mut HashThread<'_>,
) -> Result<()> {
    let mut retrier = Retrier::new(retry);
    while part.len < task.file.size {
        let mut got = Received::default();
        let Err(failure) = attempt(http, reporter, task, part, hashing, &mut got) else {
            continue;
        };
        let plan = retrier.next(failure, &got, task.file.path)?;
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

/// One request: stream whatever the server sends for the rest of the file into the partial.
fn attempt(
    http: &Http,
    reporter: &mut Reporter,
    task: &Task<'_>,
    part: &mut Partial,
    hashing: &mut HashThread<'_>,
    got: &mut Received,
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
    stream_body(http, reporter, task, part, resp, hashing, got)
}

/// Streams the body into the partial a buffer at a time. The bytes of a buffer are written once
/// it is full (or the file ends) and also when the stream stops early, whatever the reason: a
/// cancel or a dropped connection never loses bytes that arrived.
fn stream_body(
    http: &Http,
    reporter: &mut Reporter,
    task: &Task<'_>,
    part: &mut Partial,
    resp: Response,
    hashing: &mut HashThread<'_>,
    got: &mut Received,
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
                    got.add(n as u64);
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
