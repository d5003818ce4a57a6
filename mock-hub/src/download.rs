//! File bytes: `/resolve` and `/api/resolve-cache` (a file, or a redirect to it), and the CDN host
//! that serves LFS files under signed URLs the Hub mints, with ranges.

use crate::api::{check_gate, entry_not_found, listed_size, open_repo, resolve_rev};
use crate::encode::{hex, percent_encode, quoted, unix_secs};
use crate::git::{Digests, LfsInfo, StoredFile, git_object_id, name_of};
use crate::http::{Body, ContentSlice, Request, Response, cdn_error, hub_error, redirect};
use crate::model::Content;
use crate::routes::{HostKind, RepoRef, Route, signature};
use crate::state::{Commit, SignedUrl, State};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A file of a resolved commit, as the resolve routes serve it.
pub(crate) struct FileRef<'a> {
    pub(crate) repo: &'a str,
    pub(crate) commit: &'a Commit,
    pub(crate) path: &'a str,
    pub(crate) file: &'a StoredFile,
}

pub(crate) fn resolve(
    st: &mut State,
    port: u16,
    req: &Request,
    repo: &RepoRef,
    rev: &str,
    path: &str,
) -> Result<Response, Response> {
    let commit = {
        let (r, token) = open_repo(st, req, repo)?;
        check_gate(r, &repo.id, token.as_deref())?;
        resolve_rev(r, rev)?
    };
    let file = commit
        .files
        .get(path)
        .ok_or_else(|| entry_not_found(&commit.sha))?;
    let f = FileRef {
        repo: &repo.id,
        commit: &commit,
        path,
        file,
    };
    Ok(file_response(st, port, req, &f, true))
}

/// The target of the resolve-cache `307`: pinned to a commit sha, answers like `/resolve`.
pub(crate) fn resolve_cache(
    st: &mut State,
    port: u16,
    req: &Request,
    repo: &RepoRef,
    sha: &str,
    path: &str,
) -> Result<Response, Response> {
    let commit = {
        let (r, token) = open_repo(st, req, repo)?;
        check_gate(r, &repo.id, token.as_deref())?;
        r.commits.get(sha).cloned().ok_or_else(|| {
            hub_error(
                404,
                Some("RevisionNotFound"),
                &format!("Invalid rev id: {sha}"),
            )
        })?
    };
    let file = commit
        .files
        .get(path)
        .ok_or_else(|| entry_not_found(&commit.sha))?;
    let f = FileRef {
        repo: &repo.id,
        commit: &commit,
        path,
        file,
    };
    Ok(file_response(st, port, req, &f, false))
}

fn file_response(st: &mut State, port: u16, req: &Request, f: &FileRef, may_hop: bool) -> Response {
    let d = &f.file.digests;
    if not_modified(req, d) {
        return not_modified_response(f);
    }
    if let Some(lfs) = &d.lfs {
        return lfs_redirect(st, port, f, lfs);
    }
    if may_hop && st.knobs.resolve_cache_redirect {
        return resolve_cache_redirect(req, f);
    }
    let headers = vec![
        ("Content-Type", content_type(f.path).to_owned()),
        ("X-Repo-Commit", f.commit.sha.clone()),
        ("ETag", quoted(&d.blob_id)),
        ("Accept-Ranges", "bytes".to_owned()),
        ("Content-Disposition", disposition(f.path)),
    ];
    let counter = st.counter(f.repo, f.path);
    let content = f.file.content.clone();
    ranged(
        headers,
        content,
        d.size,
        req.header("range"),
        counter,
        HostKind::Hub,
    )
}

/// `If-None-Match` on `/resolve` gets `304` on the Hub (hf-hub 1.0 relies on it).
fn not_modified(req: &Request, d: &Digests) -> bool {
    let Some(tags) = req.header("if-none-match") else {
        return false;
    };
    tags.split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t == d.blob_id || d.lfs.as_ref().is_some_and(|lfs| lfs.sha256 == t))
}

fn not_modified_response(f: &FileRef) -> Response {
    let d = &f.file.digests;
    let mut resp = Response {
        status: 304,
        headers: Vec::new(),
        body: Body::Bytes(Vec::new()),
    }
    .header("X-Repo-Commit", &f.commit.sha)
    .header("ETag", quoted(&d.blob_id));
    if let Some(lfs) = &d.lfs {
        resp = resp
            .header("X-Linked-Etag", quoted(&lfs.sha256))
            .header("X-Linked-Size", d.size);
    }
    resp
}

/// Protocol case C: an absolute `302` to a signed URL on the other host.
fn lfs_redirect(st: &mut State, port: u16, f: &FileRef, lfs: &LfsInfo) -> Response {
    let location = mint_signed_url(st, port, f, &lfs.sha256);
    let linked_size = listed_size(&st.knobs.linked_size, f.repo, f.path, f.file.digests.size);
    redirect(302, &location)
        .header("X-Repo-Commit", &f.commit.sha)
        .header("X-Linked-Etag", quoted(&lfs.sha256))
        .header("X-Linked-Size", linked_size)
        .header("ETag", quoted(&f.file.digests.blob_id))
}

/// Protocol case B: a relative `307` pinned to the commit, with the original path and the etag
/// in the query (real example in the reference).
pub(crate) fn resolve_cache_redirect(req: &Request, f: &FileRef) -> Response {
    let location = format!(
        "/api/resolve-cache/models/{}/{}/{}?{}=&etag=%22{}%22",
        f.repo,
        f.commit.sha,
        percent_encode(f.path, true),
        percent_encode(&req.path, false),
        f.file.digests.blob_id
    );
    redirect(307, &location)
}

pub(crate) fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match ext {
        "json" => "application/json; charset=utf-8",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn disposition(path: &str) -> String {
    let name = percent_encode(name_of(path), false);
    format!("inline; filename*=UTF-8''{name}; filename=\"{name}\";")
}

// ---- The CDN ------------------------------------------------------------------------------

/// Lifetime written into signed URLs when no TTL is enforced.
const DEFAULT_SIGNATURE_SECS: u64 = 3600;

pub(crate) fn mint_signed_url(st: &mut State, port: u16, f: &FileRef, sha256: &str) -> String {
    let now = SystemTime::now();
    let ttl = st.knobs.cdn_ttl;
    let lifetime = ttl.map_or(DEFAULT_SIGNATURE_SECS, |t| t.as_secs_f64().ceil() as u64);
    let expires = unix_secs(now).saturating_add(lifetime).to_string();
    let token = random_token(st.signed.len(), now);
    let signed = SignedUrl {
        repo: f.repo.to_owned(),
        path: f.path.to_owned(),
        sha256: sha256.to_owned(),
        size: f.file.digests.size,
        expires_param: expires.clone(),
        // A TTL too large to represent never expires.
        deadline: ttl.and_then(|ttl| Instant::now().checked_add(ttl)),
    };
    st.signed.insert(token.clone(), signed);
    let disposition = percent_encode(&disposition(f.path), false);
    let base = st
        .knobs
        .cdn_base
        .clone()
        .unwrap_or_else(|| format!("http://localhost:{port}"));
    format!(
        "{base}/cdn/{sha256}?response-content-disposition={disposition}&Expires={expires}&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={token}"
    )
}

fn random_token(salt: usize, now: SystemTime) -> String {
    let nanos = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(format!("{salt}:{nanos}:{:?}", thread::current().id()));
    hex(&hasher.finalize())
}

/// The CDN knows nothing about Hub tokens: the signature is the only credential.
pub(crate) fn cdn(st: &mut State, req: &Request, route: &Route, sha256: &str) -> Response {
    let denied = || cdn_error(403, "AccessDenied", "Access Denied");
    let Some(signed) = signature(&route.query).and_then(|sig| st.signed.get(sig)) else {
        return denied();
    };
    if signed.sha256 != sha256 || route.query("Expires") != Some(signed.expires_param.as_str()) {
        return denied();
    }
    if signed
        .deadline
        .is_some_and(|deadline| Instant::now() >= deadline)
    {
        return cdn_error(403, "AccessDenied", "Request has expired");
    }
    let Some(content) = st.blobs.get(sha256).cloned() else {
        return cdn_error(404, "NoSuchKey", "The specified key does not exist.");
    };
    let (repo, path, size) = (signed.repo.clone(), signed.path.clone(), signed.size);
    let headers = vec![
        ("Content-Type", "application/octet-stream".to_owned()),
        // An S3 multipart-style tag: deliberately not the sha256, which only the Hub reports.
        (
            "ETag",
            format!("\"{}-1\"", &git_object_id("etag", sha256.as_bytes())[..32]),
        ),
        ("Accept-Ranges", "bytes".to_owned()),
        ("Content-Disposition", disposition(&path)),
        ("X-Cache", "Miss from cloudfront".to_owned()),
    ];
    let counter = st.counter(&repo, &path);
    ranged(
        headers,
        content,
        size,
        req.header("range"),
        counter,
        HostKind::Cdn,
    )
}

enum RangeSpec {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// RFC 9110 §14: `a-b` (end clamped), `a-`, `-k`. Anything the mock does not understand
/// (other units, several ranges, malformed) is ignored, which a server may always do.
fn parse_range(header: Option<&str>, total: u64) -> RangeSpec {
    let Some(spec) = header.map(str::trim).and_then(|h| {
        h.get(..6)
            .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
            .and(h.get(6..))
    }) else {
        return RangeSpec::Whole;
    };
    let Some((first, last)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return RangeSpec::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return match last.parse::<u64>() {
            Ok(0) => RangeSpec::Unsatisfiable,
            Ok(_) if total == 0 => RangeSpec::Unsatisfiable,
            Ok(suffix) => RangeSpec::Part(total - suffix.min(total), total - 1),
            Err(_) => RangeSpec::Whole,
        };
    }
    let Ok(first) = first.parse::<u64>() else {
        return RangeSpec::Whole;
    };
    let last = match last {
        "" => None,
        last => match last.parse::<u64>() {
            Ok(last) if last >= first => Some(last),
            _ => return RangeSpec::Whole,
        },
    };
    if first >= total {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Part(first, last.map_or(total - 1, |last| last.min(total - 1)))
}

pub(crate) fn ranged(
    mut headers: Vec<(&'static str, String)>,
    content: Content,
    total: u64,
    range: Option<&str>,
    counter: Arc<AtomicU64>,
    host: HostKind,
) -> Response {
    let (status, start, len) = match parse_range(range, total) {
        RangeSpec::Whole => (200, 0, total),
        RangeSpec::Part(first, last) => (206, first, last - first + 1),
        RangeSpec::Unsatisfiable => {
            let mut resp = match host {
                HostKind::Hub => hub_error(416, None, "Requested Range Not Satisfiable"),
                HostKind::Cdn => cdn_error(
                    416,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                ),
            };
            resp.headers.extend(
                headers
                    .into_iter()
                    .filter(|(name, _)| *name != "Content-Type"),
            );
            return resp.header("Content-Range", format!("bytes */{total}"));
        }
    };
    if status == 206 {
        headers.push((
            "Content-Range",
            format!("bytes {start}-{}/{total}", start + len - 1),
        ));
    }
    let slice = ContentSlice {
        content,
        start,
        len,
        total,
        counter,
        junk: 0,
    };
    Response {
        status,
        headers,
        body: Body::Content(slice),
    }
}
