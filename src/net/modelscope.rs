//! The ModelScope API, as lemonade speaks it (`ModelScopeRegistry` in its `model_registry.cpp`):
//! one recursive listing call per revision, file downloads by revision and path, and lemonade's
//! tree fingerprint as the snapshot name.
//!
//! ModelScope exposes no commit sha. A snapshot is therefore named by a fingerprint of the listed
//! tree (every entry, folders included: path, size, hash), exactly as lemonade computes it, so
//! both write into the same `snapshots/modelscope-<revision>-<16 hex>` folder. The listing's
//! shape varies (a bare array, `Data` as an array, `Data.Files`, `Data.files`, keys in several
//! cases), and a `200` may carry a failure envelope (`Code`/`Success`); all of that is read here
//! the way lemonade reads it, and nothing the server sends is trusted further than that.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::net::http::{Http, MAX_JSON_BYTES, Response, redact};
use crate::net::hub::{self, Listing, MAX_FILES, RemoteFile};
use crate::options::RetryPolicy;
use crate::progress::Reporter;
// lemonade's `percent_encode` is exactly these: RFC 3986 unreserved bytes kept (and `/` in a
// path), every other byte as `%XX` in upper-case hex.
use crate::repo_path::{encode_path, encode_segment, validate_file_path};
use crate::verify::{ContentId, is_hex};

/// `{endpoint}/api/v1/models/{repo}/repo/files?Revision={rev}&Recursive=True`.
pub(crate) fn listing_url(endpoint: &str, repo: &str, revision: &str) -> String {
    format!(
        "{endpoint}/api/v1/models/{}/repo/files?Revision={}&Recursive=True",
        encode_path(repo),
        encode_segment(revision)
    )
}

/// The download URL of a file: `{endpoint}/api/v1/models/{repo}/repo?Revision={rev}&FilePath={path}`.
pub fn file_url(endpoint: &str, repo: &str, revision: &str, path: &str) -> String {
    format!(
        "{endpoint}/api/v1/models/{}/repo?Revision={}&FilePath={}",
        encode_path(repo),
        encode_segment(revision),
        encode_segment(path)
    )
}

/// Lists `revision` of `repo`; the listing's `commit` is the tree fingerprint.
pub(crate) fn fetch_listing(
    http: &Http,
    repo: &str,
    revision: &str,
    retry: RetryPolicy,
    reporter: &mut Reporter,
) -> Result<Listing> {
    let url = listing_url(http.endpoint(), repo, revision);
    let asked = (repo, Some(revision));
    let mut resp = hub::get_ok(http, &url, asked, status_error, retry, reporter)?;
    let body = resp.text(MAX_JSON_BYTES)?;
    let (commit, files) = parse_listing(&url, repo, revision, &body)?;
    Ok(Listing {
        repo: repo.to_string(),
        revision: revision.to_string(),
        commit,
        files,
    })
}

/// One entry of a listing as lemonade keeps it (folders included: they enter the fingerprint).
struct Entry {
    path: String,
    size: u64,
    directory: bool,
    /// As sent (case kept: the fingerprint hashes it verbatim); empty when absent.
    sha256: String,
}

/// Parses a listing body into the tree fingerprint and its files, sorted by path. `url` is for
/// messages.
pub(crate) fn parse_listing(
    url: &str,
    repo: &str,
    revision: &str,
    body: &str,
) -> Result<(String, Vec<RemoteFile>)> {
    let invalid = |message: String| Error::InvalidResponse {
        url: redact(url),
        message,
    };
    let value: Value =
        serde_json::from_str(body).map_err(|e| invalid(format!("malformed JSON: {e}")))?;
    check_envelope(url, repo, 200, &value)?;
    let entries = file_list(&value).ok_or_else(|| {
        invalid(format!(
            "the answer for {repo} does not contain a file list"
        ))
    })?;
    if entries.len() > MAX_FILES {
        return Err(invalid(format!("listing has more than {MAX_FILES} files")));
    }
    let entries: Vec<Entry> = entries.iter().filter_map(entry).collect();
    let snapshot = tree_snapshot_id(revision, &entries);
    let mut files = Vec::new();
    for e in entries.iter().filter(|e| !e.directory) {
        validate_file_path(repo, &e.path)?;
        if e.size > hub::MAX_FILE_SIZE {
            return Err(invalid(format!(
                "implausible size {} for {:?}",
                e.size, e.path
            )));
        }
        let id = if e.sha256.is_empty() {
            ContentId::size_only(&snapshot, &e.path, e.size)
        } else if is_hex(&e.sha256, 64) {
            ContentId::Sha256(e.sha256.to_ascii_lowercase())
        } else {
            return Err(invalid(format!(
                "{:?} has a sha256 that is not 64 hex digits: {:?}",
                e.path, e.sha256
            )));
        };
        files.push(RemoteFile {
            path: e.path.clone(),
            size: e.size,
            id,
        });
    }
    hub::sort_unique(url, &mut files)?;
    Ok((snapshot, files))
}

/// The array of entries: the body itself, `Data`, or `Data.Files` / `Data.files`.
fn file_list(body: &Value) -> Option<&Vec<Value>> {
    let data = match body {
        Value::Array(a) => return Some(a),
        Value::Object(o) => o.get("Data").unwrap_or(body),
        _ => return None,
    };
    match data {
        Value::Array(a) => Some(a),
        Value::Object(o) => o.get("Files").or_else(|| o.get("files"))?.as_array(),
        _ => None,
    }
}

fn entry(v: &Value) -> Option<Entry> {
    if !v.is_object() {
        return None;
    }
    let path = first_string(v, &["Path", "path", "Name", "name"]);
    if path.is_empty() {
        return None;
    }
    let kind = first_string(v, &["Type", "type"]).to_ascii_lowercase();
    Some(Entry {
        path: path.to_string(),
        size: json_size(v),
        directory: matches!(kind.as_str(), "tree" | "dir" | "directory"),
        sha256: first_string(v, &["Sha256", "sha256", "SHA256"]).to_string(),
    })
}

/// The first of `keys` whose value is a string; `""` if none is.
fn first_string<'a>(v: &'a Value, keys: &[&str]) -> &'a str {
    keys.iter().find_map(|k| v.get(*k)?.as_str()).unwrap_or("")
}

/// lemonade's `json_size`: the first of the size keys holding a number or a string (a string
/// parsed like `std::stoull`, 0 when it is not a number; a negative integer counts as 0); a key
/// holding anything else (a fraction, `null`) is passed over.
fn json_size(v: &Value) -> u64 {
    for key in ["size", "Size", "FileSize", "file_size"] {
        match v.get(key) {
            Some(Value::Number(n)) if n.is_u64() => return n.as_u64().unwrap_or(0),
            Some(Value::Number(n)) if n.is_i64() => return 0,
            Some(Value::String(s)) => return stoull(s),
            _ => {}
        }
    }
    0
}

/// `std::stoull` as lemonade calls it: leading white space, an optional sign and the longest run
/// of decimal digits; 0 when there are none or the number does not fit (lemonade catches both);
/// a `-` negates modulo 2^64, as C's `strtoull` does.
fn stoull(s: &str) -> u64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    match t[..digits].parse::<u64>() {
        Ok(n) if negative => n.wrapping_neg(),
        Ok(n) => n,
        Err(_) => 0,
    }
}

/// lemonade's `tree_snapshot_id("modelscope", revision, entries)`.
fn tree_snapshot_id(revision: &str, entries: &[Entry]) -> String {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut hash = fnv1a64(revision.as_bytes(), FNV_OFFSET);
    for e in sorted {
        hash = fnv1a64(e.path.as_bytes(), hash);
        hash = fnv1a64(format!("\n{}\n", e.size).as_bytes(), hash);
        let algorithm = if e.sha256.is_empty() { "" } else { "sha256" };
        hash = fnv1a64(format!("{algorithm}:{}\n", e.sha256).as_bytes(), hash);
    }
    format!(
        "modelscope-{}-{hash:016x}",
        safe_revision_component(revision)
    )
}

const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;

fn fnv1a64(bytes: &[u8], mut hash: u64) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(1_099_511_628_211);
    }
    hash
}

/// lemonade's `safe_revision_component`: `default` for an empty revision, every byte other than
/// an ASCII letter, digit, `-`, `_` or `.` replaced by `-`, cut to 48 bytes.
fn safe_revision_component(revision: &str) -> String {
    if revision.is_empty() {
        return "default".to_string();
    }
    revision
        .bytes()
        .take(48)
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                b as char
            } else {
                '-'
            }
        })
        .collect()
}

/// lemonade's `ensure_modelscope_success`: a `Code` other than 0/200 (or `ok`/`success`), or
/// `Success: false`, is a failure; one whose code or message says "not found" or "no access" is
/// [`Error::RepoNotFound`], any other [`Error::InvalidResponse`] with the server's message.
fn check_envelope(url: &str, repo: &str, status: u16, body: &Value) -> Result<()> {
    let Value::Object(o) = body else {
        return Ok(());
    };
    let mut failed = false;
    let mut code_text = String::new();
    match o.get("Code").or_else(|| o.get("code")) {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            failed = !(n.as_u64() == Some(0) || n.as_u64() == Some(200));
            code_text = n.to_string();
        }
        Some(Value::String(s)) => {
            failed = !matches!(
                s.to_ascii_lowercase().as_str(),
                "0" | "200" | "ok" | "success"
            );
            code_text = s.clone();
        }
        _ => {}
    }
    if let Some(Value::Bool(ok)) = o.get("Success").or_else(|| o.get("success")) {
        failed |= !ok;
    }
    if !failed {
        return Ok(());
    }
    let mut message = first_string(body, &["Message", "message", "Msg", "msg"]).to_string();
    if message.is_empty() {
        message = "ModelScope API rejected the request".to_string();
    }
    let detail = if code_text.is_empty() {
        message.clone()
    } else {
        format!("{message} (code {code_text})")
    };
    if is_not_found_or_no_access(&code_text, &message) {
        return Err(Error::RepoNotFound {
            repo: repo.to_string(),
            status,
            message: detail,
        });
    }
    Err(Error::InvalidResponse {
        url: redact(url),
        message: format!("{detail} for {repo}"),
    })
}

fn is_not_found_or_no_access(code: &str, message: &str) -> bool {
    let code = code.to_ascii_lowercase();
    if matches!(
        code.as_str(),
        "401" | "403" | "404" | "e3001" | "e3002" | "e3020"
    ) {
        return true;
    }
    let message = message.to_ascii_lowercase();
    [
        "not found",
        "does not exist",
        "not exist",
        "permission denied",
        "access denied",
        "not accessible",
        "unauthorized",
        "authentication failed",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// A ModelScope error answer to a metadata call: 401 without an accepted token, 403/404 for a
/// repository that is missing or not visible (lemonade treats all three as "not found or not
/// accessible"), the envelope's own message when the body has one.
fn status_error(resp: &mut Response, repo: &str, _revision: Option<&str>) -> Error {
    let status = resp.status;
    let url = resp.url.clone();
    let body = resp.text(64 * 1024).unwrap_or_default();
    let envelope = serde_json::from_str::<Value>(&body).ok();
    let message = envelope
        .as_ref()
        .map(|v| first_string(v, &["Message", "message", "Msg", "msg"]).to_string())
        .unwrap_or_default();
    match status {
        401 => Error::Unauthorized {
            repo: repo.to_string(),
            message,
        },
        403 | 404 => Error::RepoNotFound {
            repo: repo.to_string(),
            status,
            message,
        },
        _ => match envelope.map(|v| check_envelope(&url, repo, status, &v)) {
            Some(Err(e @ Error::RepoNotFound { .. })) => e,
            _ => Error::Http {
                url: redact(&url),
                file: None,
                status,
                message,
            },
        },
    }
}

#[cfg(test)]
mod tests;
