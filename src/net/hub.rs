//! The Hub's metadata API: turn a revision into a commit and the list of files with their sizes and
//! content ids, and map the Hub's error answers onto typed errors.
//!
//! One call normally suffices (`/api/models/{repo}/revision/{rev}?blobs=true`); when the listing lacks
//! sizes or ids the paginated `/tree/{commit}?recursive=true` listing fills them in. Every path the
//! server sends is validated before anything else sees it.

use std::collections::HashSet;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::net::http::{Http, MAX_JSON_BYTES, Response, redact};
use crate::net::retry::{Backoff, UnreachableStreak, is_retryable_status};
use crate::options::RetryPolicy;
use crate::progress::{Event, Reporter};
use crate::repo_path::{encode_path, encode_segment, validate_file_path};
use crate::verify::{ContentId, is_hex};

/// Largest file size believed from a server (1 PiB); anything above is a lie or an attack.
pub const MAX_FILE_SIZE: u64 = 1 << 50;
/// Most tree pages followed for one listing.
const MAX_TREE_PAGES: usize = 10_000;
/// Most files believed in one listing; the Hub recommends far fewer, and a hostile listing must
/// not grow memory without bound.
pub const MAX_FILES: usize = 1_000_000;

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
    reporter: &mut Reporter,
) -> Result<Listing> {
    let url = format!(
        "{}/api/models/{repo}/revision/{}?blobs=true",
        http.endpoint(),
        encode_segment(revision)
    );
    let asked = (repo, Some(revision));
    let mut resp = get_ok(http, &url, asked, api_status_error, retry, reporter)?;
    let body = resp.text(MAX_JSON_BYTES)?;
    let (commit, files) = parse_model_info(&url, repo, &body)?;
    drop(body);
    let mut files = match files {
        Some(files) => files,
        None => fetch_tree(http, repo, &commit, retry, reporter)?,
    };
    sort_unique(&url, &mut files)?;
    Ok(Listing {
        repo: repo.to_string(),
        revision: revision.to_string(),
        commit,
        files,
    })
}

/// Parses the answer of `/api/models/{repo}/revision/{rev}?blobs=true`: the commit, and the files
/// when every sibling carries a size and a content id (`None`: ask the tree API). Every path is
/// validated and every size bounded; nothing here trusts the server. `url` is for messages.
pub(crate) fn parse_model_info(
    url: &str,
    repo: &str,
    body: &str,
) -> Result<(String, Option<Vec<RemoteFile>>)> {
    let info: ModelInfo = parse_json(url, body)?;
    let commit = info
        .sha
        .filter(|s| is_hex(s, 40))
        .map(|s| s.to_ascii_lowercase())
        .ok_or_else(|| Error::InvalidResponse {
            url: redact(url),
            message: "listing has no 40-hex `sha`: not a Hugging Face Hub?".into(),
        })?;
    let siblings = info.siblings.unwrap_or_default();
    if siblings.len() > MAX_FILES {
        return Err(too_many_files(url));
    }
    let mut files = Vec::with_capacity(siblings.len());
    let mut complete = true;
    for s in &siblings {
        validate_file_path(repo, &s.rfilename)?;
        let lfs_id = s.lfs.as_ref().and_then(|l| l.sha256.as_deref());
        let size = s.lfs.as_ref().and_then(|l| l.size).or(s.size);
        match (content_id(lfs_id, s.blob_id.as_deref()), size) {
            (Some(id), Some(size)) => files.push(checked_file(url, &s.rfilename, size, id)?),
            _ => complete = false,
        }
    }
    let files = (complete && !siblings.is_empty()).then_some(files);
    Ok((commit, files))
}

/// Parses one page of `/api/models/{repo}/tree/{commit}?recursive=true`: its files (directories
/// skipped), each validated and bounded like [`parse_model_info`]'s.
pub(crate) fn parse_tree_page(url: &str, repo: &str, body: &str) -> Result<Vec<RemoteFile>> {
    let entries: Vec<TreeEntry> = parse_json(url, body)?;
    let mut files = Vec::new();
    for e in entries.into_iter().filter(|e| e.kind == "file") {
        validate_file_path(repo, &e.path)?;
        let lfs_id = e.lfs.as_ref().and_then(|l| l.oid.as_deref());
        let size = e.lfs.as_ref().and_then(|l| l.size).or(e.size);
        let (Some(id), Some(size)) = (content_id(lfs_id, e.oid.as_deref()), size) else {
            return Err(Error::InvalidResponse {
                url: redact(url),
                message: format!("tree entry {:?} lacks a size or content id", e.path),
            });
        };
        files.push(checked_file(url, &e.path, size, id)?);
    }
    Ok(files)
}

fn too_many_files(url: &str) -> Error {
    Error::InvalidResponse {
        url: redact(url),
        message: format!("listing has more than {MAX_FILES} files"),
    }
}

/// Lists every file at `commit` through the paginated tree API.
///
/// A hostile server cannot make this loop or grow without bound: a page URL seen before, a path
/// listed twice, more than [`MAX_FILES`] files or [`MAX_TREE_PAGES`] pages end the listing with
/// [`Error::InvalidResponse`] as soon as they appear.
fn fetch_tree(
    http: &Http,
    repo: &str,
    commit: &str,
    retry: RetryPolicy,
    reporter: &mut Reporter,
) -> Result<Vec<RemoteFile>> {
    let mut url = format!(
        "{}/api/models/{repo}/tree/{commit}?recursive=true&expand=false",
        http.endpoint()
    );
    let mut files = Vec::new();
    let mut seen_paths = HashSet::new();
    let mut seen_pages = HashSet::new();
    for _page in 0..MAX_TREE_PAGES {
        if !seen_pages.insert(url.clone()) {
            return Err(Error::InvalidResponse {
                url: redact(&url),
                message: "tree pagination loops back to a page already read".into(),
            });
        }
        let asked = (repo, Some(commit));
        let mut resp = get_ok(http, &url, asked, api_status_error, retry, reporter)?;
        let next = resp.header("link").and_then(next_link);
        let body = resp.text(MAX_JSON_BYTES)?;
        for f in parse_tree_page(&url, repo, &body)? {
            if !seen_paths.insert(f.path.clone()) {
                return Err(Error::InvalidResponse {
                    url: redact(&url),
                    message: format!("file {:?} listed twice", f.path),
                });
            }
            files.push(f);
            if files.len() > MAX_FILES {
                return Err(too_many_files(&url));
            }
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

/// Sorts the files by path and refuses a listing that names a path twice, or names a path both as
/// a file and as a folder of another file (`a` and `a/b`): git cannot hold either, and on disk
/// the second would fail half-way through the pull.
pub(crate) fn sort_unique(url: &str, files: &mut [RemoteFile]) -> Result<()> {
    let refuse = |message: String| Error::InvalidResponse {
        url: redact(url),
        message,
    };
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(refuse(format!("file {:?} listed twice", w[0].path)));
    }
    let paths: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for f in files.iter() {
        let folders = f.path.match_indices('/').map(|(i, _)| &f.path[..i]);
        if let Some(dir) = folders.into_iter().find(|d| paths.contains(d)) {
            return Err(refuse(format!(
                "{dir:?} is listed as a file and as the folder of {:?}",
                f.path
            )));
        }
    }
    Ok(())
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn next_link(header: &str) -> Option<String> {
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

fn parse_json<T: serde::de::DeserializeOwned>(url: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::InvalidResponse {
        url: redact(url),
        message: format!("malformed JSON: {e}"),
    })
}

/// How a registry's error answer becomes a typed error: the response, the repository and the
/// revision asked for.
pub(crate) type Classify = fn(&mut Response, &str, Option<&str>) -> Error;

/// GET an API URL, retrying transient failures, and turn any non-200 into a typed error with
/// `classify`.
pub(crate) fn get_ok(
    http: &Http,
    url: &str,
    (repo, revision): (&str, Option<&str>),
    classify: Classify,
    retry: RetryPolicy,
    reporter: &mut Reporter,
) -> Result<Response> {
    let mut backoff = Backoff::new(retry);
    // Named in a final network error: what the server said before the connection failed.
    let mut last_status = None;
    let mut unreachable = UnreachableStreak::default();
    loop {
        let (reason, retry_after) = match http.get_api(url) {
            Ok(resp) if resp.status == 200 => return Ok(resp),
            Ok(mut resp) if is_retryable_status(resp.status) => {
                last_status = Some(resp.status);
                let ra = resp.retry_after();
                (classify(&mut resp, repo, revision), ra)
            }
            Ok(mut resp) => return Err(classify(&mut resp, repo, revision)),
            Err(e @ Error::Network { .. }) => (e, None),
            Err(e) => return Err(e),
        };
        // A caller with the snapshot cached hears of an unreachable hub within seconds (see
        // `pull`'s cache fallback).
        let delay = unreachable.delay(&reason, backoff.next_delay(retry_after));
        let Some(delay) = delay else {
            return Err(match reason {
                Error::Network {
                    url,
                    file,
                    message,
                    unreachable,
                    ..
                } => Error::Network {
                    url,
                    file,
                    message,
                    last_status,
                    unreachable,
                },
                other => other,
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
        reporter.backoff_over();
    }
}

/// [`status_error`] for a metadata call (no file).
fn api_status_error(resp: &mut Response, repo: &str, revision: Option<&str>) -> Error {
    status_error(resp, repo, None, revision)
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
    fn listings_with_duplicates_or_file_folder_clashes_are_refused() {
        let f = |p: &str| RemoteFile {
            path: p.into(),
            size: 1,
            id: ContentId::GitSha1("b".repeat(40)),
        };
        let mut ok = vec![f("a-x"), f("a/b"), f("a/c/d"), f("ab")];
        sort_unique("u", &mut ok).expect("distinct files");
        assert_eq!(ok[0].path, "a-x");
        for bad in [
            vec![f("a"), f("a-x"), f("a/b")],
            vec![f("x/y/z"), f("x/y")],
            vec![f("m"), f("m")],
        ] {
            let mut bad = bad;
            let err = sort_unique("u", &mut bad).expect_err("clash");
            assert!(matches!(err, Error::InvalidResponse { .. }), "{err}");
        }
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

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const URL: &str = "http://127.0.0.1:1/api/models/o/n/revision/main?blobs=true";
    const KEYS: [&str; 12] = [
        "sha",
        "siblings",
        "rfilename",
        "size",
        "blobId",
        "lfs",
        "sha256",
        "oid",
        "path",
        "type",
        "file",
        "directory",
    ];

    /// Any JSON value, biased towards the keys the parsers look at.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            (0usize..KEYS.len()).prop_map(|i| Value::from(KEYS[i])),
        ];
        leaf.prop_recursive(5, 96, 8, |inner| {
            let key = prop_oneof![
                3 => (0usize..KEYS.len()).prop_map(|i| KEYS[i].to_string()),
                1 => any::<String>(),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(key, inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Paths a hostile listing might send: mostly built from dangerous pieces.
    fn path() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just(String::new()),
            Just("a".to_string()),
            Just("model.gguf".to_string()),
            Just("x.partial".to_string()),
            Just(".download_manifest.json".to_string()),
            Just("CON".to_string()),
            Just("c:".to_string()),
            Just("a\\b".to_string()),
            Just("nul\0".to_string()),
            Just("dot.".to_string()),
            "[a-zA-Z0-9 ._-]{1,12}",
            "[^/]{0,8}",
            "x{240,260}",
        ];
        prop_oneof![
            4 => proptest::collection::vec(piece, 1..6).prop_map(|v| v.join("/")),
            1 => any::<String>(),
            1 => "/[a-z]{1,5}",
        ]
    }

    fn hex(len: usize) -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => proptest::collection::vec(0u8..16, len)
                .prop_map(|v| Value::from(v.iter().map(|d| format!("{d:x}")).collect::<String>())),
            1 => "[0-9a-fA-FxyZ]{0,70}".prop_map(Value::from),
            1 => any_json(),
        ]
    }

    fn size() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => (0u64..1 << 20).prop_map(Value::from),
            1 => any::<u64>().prop_map(Value::from),
            1 => any::<i64>().prop_map(Value::from),
            1 => any::<f64>().prop_map(Value::from),
            1 => Just(Value::Null),
            1 => "[0-9]{1,4}".prop_map(Value::from),
        ]
    }

    fn sibling() -> impl Strategy<Value = Value> {
        (
            path(),
            size(),
            hex(40),
            proptest::option::of((hex(64), size())),
            any::<bool>(),
        )
            .prop_map(|(p, size, blob, lfs, with_size)| {
                let mut v = json!({ "rfilename": p, "blobId": blob });
                if with_size {
                    v["size"] = size.clone();
                }
                if let Some((sha, lsize)) = lfs {
                    v["lfs"] = json!({ "sha256": sha, "size": lsize });
                }
                v
            })
    }

    fn tree_entry() -> impl Strategy<Value = Value> {
        (
            prop_oneof![Just("file"), Just("directory"), Just("other")],
            path(),
            size(),
            hex(40),
            proptest::option::of((hex(64), size())),
        )
            .prop_map(|(kind, p, size, oid, lfs)| {
                let mut v = json!({ "type": kind, "oid": oid, "size": size, "path": p });
                if let Some((sha, lsize)) = lfs {
                    v["lfs"] = json!({ "oid": sha, "size": lsize });
                }
                v
            })
    }

    /// What the parsers accept is safe to use: validated paths, bounded sizes, a commit sha.
    fn check_files(files: &[RemoteFile]) -> Result<(), TestCaseError> {
        for f in files {
            prop_assert!(validate_file_path("o/n", &f.path).is_ok(), "{:?}", f.path);
            prop_assert!(f.size <= MAX_FILE_SIZE);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn listing_parsers_never_panic_on_any_text(body in any::<String>()) {
            let _ = parse_model_info(URL, "o/n", &body);
            let _ = parse_tree_page(URL, "o/n", &body);
        }

        #[test]
        fn listing_parsers_never_panic_on_any_json(v in any_json()) {
            let body = v.to_string();
            if let Ok((commit, files)) = parse_model_info(URL, "o/n", &body) {
                prop_assert!(is_hex(&commit, 40) && commit == commit.to_ascii_lowercase());
                check_files(files.as_deref().unwrap_or_default())?;
            }
            if let Ok(files) = parse_tree_page(URL, "o/n", &body) {
                check_files(&files)?;
            }
        }

        /// Listing-shaped documents with hostile paths, sizes and ids.
        #[test]
        fn accepted_siblings_are_safe(
            sha in hex(40),
            siblings in proptest::collection::vec(sibling(), 0..12),
        ) {
            let body = json!({ "sha": sha, "siblings": siblings }).to_string();
            if let Ok((commit, files)) = parse_model_info(URL, "o/n", &body) {
                prop_assert!(is_hex(&commit, 40));
                if let Some(files) = &files {
                    prop_assert_eq!(files.len(), siblings.len());
                    check_files(files)?;
                }
            }
        }

        #[test]
        fn accepted_tree_entries_are_safe(entries in proptest::collection::vec(tree_entry(), 0..12)) {
            let body = Value::Array(entries).to_string();
            if let Ok(files) = parse_tree_page(URL, "o/n", &body) {
                check_files(&files)?;
            }
        }

        /// What `sort_unique` lets through is sorted, unique, and free of file/folder clashes.
        #[test]
        fn sorted_listings_have_no_clashes(
            paths in proptest::collection::vec("[ab/-]{1,6}", 0..10),
        ) {
            let mut files: Vec<RemoteFile> = paths
                .iter()
                .map(|p| RemoteFile {
                    path: p.clone(),
                    size: 0,
                    id: ContentId::GitSha1("b".repeat(40)),
                })
                .collect();
            if sort_unique(URL, &mut files).is_ok() {
                for w in files.windows(2) {
                    prop_assert!(w[0].path < w[1].path);
                }
                for a in &files {
                    for b in &files {
                        prop_assert!(!b.path.starts_with(&format!("{}/", a.path)), "{} {}", a.path, b.path);
                    }
                }
            }
        }

        #[test]
        fn link_headers_never_panic(h in any::<String>()) {
            let _ = next_link(&h);
        }
    }
}
