//! The Hub's metadata API: turn a revision into a commit and the list of files with their sizes and
//! content ids, and map the Hub's error answers onto typed errors.
//!
//! One call normally suffices (`/api/models/{repo}/revision/{rev}?blobs=true`); when the listing lacks
//! sizes or ids the paginated `/tree/{commit}?recursive=true` listing fills them in. Every path the
//! server sends is validated before anything else sees it.

use std::time::SystemTime;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::{Http, MAX_JSON_BYTES, Response, redact};
use crate::options::RetryPolicy;
use crate::progress::{Event, Reporter};
use crate::repo_path::{encode_path, encode_segment, validate_file_path};
use crate::retry::{Backoff, is_retryable_status, parse_retry_after};
use crate::verify::{ContentId, is_hex};

/// Largest file size believed from a server (1 PiB); anything above is a lie or an attack.
pub const MAX_FILE_SIZE: u64 = 1 << 50;
/// Most tree pages followed for one listing.
const MAX_TREE_PAGES: usize = 10_000;

/// One file at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Repo-relative path, validated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Content id: sha256 for LFS files, git blob sha1 otherwise.
    pub id: ContentId,
}

/// A revision resolved to a commit, with its files sorted by path.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Repository id.
    pub repo: String,
    /// The revision asked for.
    pub revision: String,
    /// 40-hex commit sha.
    pub commit: String,
    /// Every file at the commit.
    pub files: Vec<RemoteFile>,
}

/// The pinned download URL of a file: `{endpoint}/{repo}/resolve/{commit}/{path}`.
pub fn file_url(endpoint: &str, repo: &str, commit: &str, path: &str) -> String {
    format!("{endpoint}/{repo}/resolve/{commit}/{}", encode_path(path))
}

#[derive(Deserialize)]
struct ModelInfo {
    sha: Option<String>,
    #[serde(default)]
    siblings: Option<Vec<Sibling>>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<SiblingLfs>,
}

#[derive(Deserialize)]
struct SiblingLfs {
    sha256: Option<String>,
    size: Option<u64>,
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    oid: Option<String>,
    size: Option<u64>,
    lfs: Option<TreeLfs>,
    path: String,
}

#[derive(Deserialize)]
struct TreeLfs {
    oid: Option<String>,
    size: Option<u64>,
}

/// Resolves `revision` of `repo` to a commit and its complete file listing.
pub(crate) fn fetch_listing(
    http: &Http,
    repo: &str,
    revision: &str,
    retry: RetryPolicy,
    reporter: &mut Reporter<'_>,
) -> Result<Listing> {
    let url = format!(
        "{}/api/models/{repo}/revision/{}?blobs=true",
        http.endpoint(),
        encode_segment(revision)
    );
    let mut resp = get_ok(http, &url, repo, Some(revision), retry, reporter)?;
    let info: ModelInfo = parse_json(&mut resp)?;
    let commit = info
        .sha
        .filter(|s| is_hex(s, 40))
        .map(|s| s.to_ascii_lowercase())
        .ok_or_else(|| Error::InvalidResponse {
            url: redact(&url),
            message: "listing has no 40-hex `sha`: not a Hugging Face Hub?".into(),
        })?;
    let siblings = info.siblings.unwrap_or_default();
    let mut files = Vec::with_capacity(siblings.len());
    let mut complete = true;
    for s in &siblings {
        validate_file_path(repo, &s.rfilename)?;
        let lfs_id = s.lfs.as_ref().and_then(|l| l.sha256.as_deref());
        let size = s.lfs.as_ref().and_then(|l| l.size).or(s.size);
        match (content_id(lfs_id, s.blob_id.as_deref()), size) {
            (Some(id), Some(size)) => files.push(checked_file(&url, &s.rfilename, size, id)?),
            _ => complete = false,
        }
    }
    if !complete || siblings.is_empty() {
        files = fetch_tree(http, repo, &commit, retry, reporter)?;
    }
    sort_unique(&url, &mut files)?;
    Ok(Listing {
        repo: repo.to_string(),
        revision: revision.to_string(),
        commit,
        files,
    })
}

/// Lists every file at `commit` through the paginated tree API.
fn fetch_tree(
    http: &Http,
    repo: &str,
    commit: &str,
    retry: RetryPolicy,
    reporter: &mut Reporter<'_>,
) -> Result<Vec<RemoteFile>> {
    let mut url = format!(
        "{}/api/models/{repo}/tree/{commit}?recursive=true&expand=false",
        http.endpoint()
    );
    let mut files = Vec::new();
    for _page in 0..MAX_TREE_PAGES {
        let mut resp = get_ok(http, &url, repo, Some(commit), retry, reporter)?;
        let next = resp.header("link").and_then(next_link);
        let entries: Vec<TreeEntry> = parse_json(&mut resp)?;
        for e in entries.into_iter().filter(|e| e.kind == "file") {
            validate_file_path(repo, &e.path)?;
            let lfs_id = e.lfs.as_ref().and_then(|l| l.oid.as_deref());
            let size = e.lfs.as_ref().and_then(|l| l.size).or(e.size);
            let (Some(id), Some(size)) = (content_id(lfs_id, e.oid.as_deref()), size) else {
                return Err(Error::InvalidResponse {
                    url: redact(&url),
                    message: format!("tree entry {:?} lacks a size or content id", e.path),
                });
            };
            files.push(checked_file(&url, &e.path, size, id)?);
        }
        match next {
            Some(n) => url = n,
            None => return Ok(files),
        }
    }
    Err(Error::InvalidResponse {
        url: redact(&url),
        message: format!("tree listing has more than {MAX_TREE_PAGES} pages"),
    })
}

fn content_id(lfs_sha256: Option<&str>, git_oid: Option<&str>) -> Option<ContentId> {
    match lfs_sha256 {
        Some(h) => ContentId::from_parts("sha256", h),
        None => ContentId::from_parts("git-sha1", git_oid?),
    }
}

fn checked_file(url: &str, path: &str, size: u64, id: ContentId) -> Result<RemoteFile> {
    if size > MAX_FILE_SIZE {
        return Err(Error::InvalidResponse {
            url: redact(url),
            message: format!("implausible size {size} for {path:?}"),
        });
    }
    Ok(RemoteFile {
        path: path.to_string(),
        size,
        id,
    })
}

fn sort_unique(url: &str, files: &mut [RemoteFile]) -> Result<()> {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(Error::InvalidResponse {
            url: redact(url),
            message: format!("file {:?} listed twice", w[0].path),
        });
    }
    Ok(())
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim();
        (is_next && target.starts_with('<') && target.ends_with('>'))
            .then(|| target[1..target.len() - 1].to_string())
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(resp: &mut Response) -> Result<T> {
    let text = resp.text(MAX_JSON_BYTES)?;
    serde_json::from_str(&text).map_err(|e| Error::InvalidResponse {
        url: redact(&resp.url),
        message: format!("malformed JSON: {e}"),
    })
}

/// GET an API URL, retrying transient failures, and turn any non-200 into a typed error.
fn get_ok(
    http: &Http,
    url: &str,
    repo: &str,
    revision: Option<&str>,
    retry: RetryPolicy,
    reporter: &mut Reporter<'_>,
) -> Result<Response> {
    let mut backoff = Backoff::new(retry);
    loop {
        let (reason, retry_after, status) = match http.get(url, None) {
            Ok(resp) if resp.status == 200 => return Ok(resp),
            Ok(mut resp) if is_retryable_status(resp.status) => {
                let ra = resp
                    .header("retry-after")
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let err = status_error(&mut resp, repo, None, revision);
                (err, ra, Some(resp.status))
            }
            Ok(mut resp) => return Err(status_error(&mut resp, repo, None, revision)),
            Err(e @ Error::Network { .. }) => (e, None, None),
            Err(e) => return Err(e),
        };
        let Some(delay) = backoff.next_delay(retry_after) else {
            return Err(match (reason, status) {
                (
                    Error::Network {
                        url, file, message, ..
                    },
                    last_status,
                ) => Error::Network {
                    url,
                    file,
                    message,
                    last_status,
                },
                (other, _) => other,
            });
        };
        let text = reason.to_string();
        reporter.emit(&Event::Retry {
            file: None,
            attempt: backoff.attempt(),
            delay,
            reason: &text,
        })?;
        reporter.cancel().sleep(delay)?;
    }
}

/// Maps a Hub error answer (status, `X-Error-Code`, `X-Error-Message`) onto a typed error.
pub(crate) fn status_error(
    resp: &mut Response,
    repo: &str,
    file: Option<&str>,
    revision: Option<&str>,
) -> Error {
    let code = resp.header("x-error-code").unwrap_or("").to_string();
    let mut message = resp.header("x-error-message").unwrap_or("").to_string();
    if message.is_empty() {
        message = resp
            .text(64 * 1024)
            .ok()
            .and_then(|t| error_from_body(&t))
            .unwrap_or_default();
    }
    classify(resp.status, &code, message, &resp.url, repo, file, revision)
}

fn error_from_body(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        error: String,
    }
    serde_json::from_str::<Body>(body).ok().map(|b| b.error)
}

fn classify(
    status: u16,
    code: &str,
    message: String,
    url: &str,
    repo: &str,
    file: Option<&str>,
    revision: Option<&str>,
) -> Error {
    let repo = repo.to_string();
    match (status, code) {
        (401 | 403, "GatedRepo") => Error::Gated {
            repo,
            status,
            message,
        },
        (401 | 404, "RepoNotFound") => Error::RepoNotFound {
            repo,
            status,
            message,
        },
        (404, "RevisionNotFound") => Error::RevisionNotFound {
            repo,
            revision: revision.unwrap_or("").to_string(),
            message,
        },
        (404, "EntryNotFound") => Error::FileNotFound {
            repo,
            path: file.unwrap_or("").to_string(),
            message,
        },
        (401, _) => Error::Unauthorized { repo, message },
        // An API 403/404 without a code still means "you cannot see this repo" (disabled, moved).
        (403 | 404, _) if file.is_none() => Error::RepoNotFound {
            repo,
            status,
            message,
        },
        _ => Error::Http {
            url: redact(url),
            file: file.map(str::to_string),
            status,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let h = r#"<http://127.0.0.1:1/api/models/a/b/tree/x?recursive=true&cursor=2>; rel="next""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("http://127.0.0.1:1/api/models/a/b/tree/x?recursive=true&cursor=2")
        );
        assert_eq!(next_link(r#"<http://x/y>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn error_classification() {
        let c =
            |s, code: &str, file| classify(s, code, String::new(), "u", "a/b", file, Some("main"));
        assert!(matches!(
            c(401, "RepoNotFound", None),
            Error::RepoNotFound { .. }
        ));
        assert!(matches!(
            c(404, "RepoNotFound", None),
            Error::RepoNotFound { .. }
        ));
        assert!(matches!(c(401, "GatedRepo", None), Error::Gated { .. }));
        assert!(matches!(
            c(403, "GatedRepo", Some("f")),
            Error::Gated { .. }
        ));
        assert!(matches!(c(401, "", None), Error::Unauthorized { .. }));
        assert!(matches!(
            c(404, "RevisionNotFound", None),
            Error::RevisionNotFound { .. }
        ));
        assert!(matches!(
            c(404, "EntryNotFound", Some("f")),
            Error::FileNotFound { .. }
        ));
        assert!(matches!(c(403, "", None), Error::RepoNotFound { .. }));
        assert!(matches!(
            c(403, "", Some("f")),
            Error::Http { status: 403, .. }
        ));
        assert!(matches!(c(500, "", None), Error::Http { status: 500, .. }));
    }

    #[test]
    fn content_ids_prefer_lfs() {
        let sha = "a".repeat(64);
        let oid = "b".repeat(40);
        assert_eq!(
            content_id(Some(&sha), Some(&oid)),
            Some(ContentId::Sha256(sha.clone()))
        );
        assert_eq!(content_id(None, Some(&oid)), Some(ContentId::GitSha1(oid)));
        assert_eq!(content_id(Some("zz"), None), None);
        assert_eq!(content_id(None, None), None);
    }
}
