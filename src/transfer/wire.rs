//! One request for file content and what its answer must say before a byte of it is written: the
//! status sorted into usable, retryable and fatal, the Hub's commit and content headers, the
//! `Content-Range` of a `206`, and single reads from the body that tell a dropped connection from a
//! cancel. Shared by the sequential and the parallel pass.

use std::io::Read;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::net::http::{ByteRange, Http, Origin, Response, body_error, redact};
use crate::net::hub::status_error;
use crate::net::retry::{Failure, is_retryable_status};
use crate::transfer::partial::Task;
use crate::verify::is_hex;

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
    if hub_checks && task.hub_headers {
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
    // A read that returns data never looks at `cancel` (only a blocked one is interrupted): a
    // cancelled transfer must not go on to the end of its body while the bytes keep flowing.
    cancel.check().map_err(Failure::Fatal)?;
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

/// A retryable status as a [`Failure::Retry`], with the server's `Retry-After` and
/// `X-Error-Message`, and `note` saying what happens next.
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

pub(crate) fn check_content_length(task: &Task<'_>, resp: &Response) -> Result<(), Failure> {
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
