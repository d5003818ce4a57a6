//! ModelScope's download API over the same repos and commits as the Hugging Face routes: the
//! recursive file listing (four body shapes, a failure envelope) and the file route, which serves
//! the bytes itself or redirects to the CDN host.
//!
//! ModelScope has no `X-Repo-Commit`, `X-Linked-*` or `X-Error-*` headers; its errors are JSON
//! envelopes `{"Code":…,"Success":false,"Message":…}`.

use crate::api::listed_size;
use crate::download::{FileRef, content_type, mint_signed_url, ranged};
use crate::encode::{hex, json_str, quoted};
use crate::git::{StoredFile, TreeEntry, name_of};
use crate::http::{Request, Response, redirect};
use crate::model::ListingShape;
use crate::routes::{HostKind, RepoRef, Route};
use crate::state::{Commit, ModelScopeKnobs, Repo, State};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The revision a ModelScope client means when it names none.
const DEFAULT_REVISION: &str = "master";

/// A ModelScope error envelope; the status doubles as its `Code`.
fn ms_error(status: u16, message: &str) -> Response {
    let body = format!(
        "{{\"Code\":{status},\"Success\":false,\"Message\":{},\"RequestId\":\"{}\"}}",
        json_str(message),
        request_id(message)
    );
    Response::new(status, "application/json", body)
}

fn request_id(salt: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = hex(&Sha256::digest(format!("{salt}:{nanos}")));
    format!(
        "{}-{}-{}-{}-{}",
        &digest[..8],
        &digest[8..12],
        &digest[12..16],
        &digest[16..20],
        &digest[20..32]
    )
}

/// Tokens a ModelScope client may present: `Authorization: Bearer <t>` and the legacy
/// `Cookie: m_session_id=<t>`. Unknown tokens are ignored rather than rejected (a choice: the
/// real service's behaviour is unknown), so a public repo answers whatever is sent.
fn presented_tokens(req: &Request) -> Vec<String> {
    let mut tokens = Vec::new();
    if let Some((scheme, token)) = req.header("authorization").and_then(|v| v.split_once(' '))
        && scheme.eq_ignore_ascii_case("bearer")
    {
        tokens.push(token.trim().to_owned());
    }
    for cookie in req.header("cookie").unwrap_or_default().split(';') {
        if let Some(("m_session_id", token)) = cookie.trim().split_once('=') {
            tokens.push(token.trim().to_owned());
        }
    }
    tokens
}

fn accepted(tokens: &[String], allowed: Option<&str>) -> bool {
    allowed.is_some_and(|allowed| tokens.iter().any(|t| t == allowed))
}

/// Existence, privacy and the disabled flag; a renamed repo's old id is simply not found.
fn open_repo<'s>(st: &'s State, req: &Request, repo: &RepoRef) -> Result<&'s Repo, Response> {
    let Some(r) = st.repos.get(&repo.id) else {
        return Err(ms_error(404, "Model not found"));
    };
    let tokens = presented_tokens(req);
    if r.private && !accepted(&tokens, r.allowed_token.as_deref()) {
        return Err(ms_error(401, "Unauthorized: authentication failed"));
    }
    if r.disabled {
        return Err(ms_error(403, "Access denied"));
    }
    Ok(r)
}

/// A branch, tag or commit sha; ModelScope percent-encodes it into the query.
fn resolve_rev(r: &Repo, route: &Route) -> Result<Arc<Commit>, Response> {
    let rev = route.query("Revision").unwrap_or(DEFAULT_REVISION);
    let sha = r.refs.get(rev).map_or(rev, String::as_str);
    r.commits
        .get(sha)
        .cloned()
        .ok_or_else(|| ms_error(404, &format!("Revision not found: {rev}")))
}

pub(crate) fn listing(
    st: &State,
    req: &Request,
    route: &Route,
    repo: &RepoRef,
) -> Result<Response, Response> {
    let knobs = &st.knobs.modelscope;
    if let Some((status, body)) = &knobs.listing_answer {
        return Ok(Response::new(*status, "application/json", body.clone()));
    }
    let commit = resolve_rev(open_repo(st, req, repo)?, route)?;
    let entries = if route.flag("Recursive") {
        commit.entries.iter().collect()
    } else {
        commit.list("", false).unwrap_or_default()
    };
    let lower = knobs.shape == ListingShape::LowerFiles;
    let items: Vec<String> = entries
        .into_iter()
        .map(|entry| {
            let file = commit
                .files
                .get(&entry.path)
                .filter(|_| entry.dir_oid.is_none());
            let listed = Listed {
                repo: &repo.id,
                commit: &commit,
                entry,
                file,
            };
            listed.json(st, lower)
        })
        .collect();
    Ok(Response::new(
        200,
        "application/json",
        wrap(knobs, &repo.id, &items.join(",")),
    ))
}

fn wrap(knobs: &ModelScopeKnobs, id: &str, items: &str) -> String {
    match knobs.shape {
        ListingShape::Envelope => format!(
            "{{\"Code\":200,\"Success\":true,\"Message\":\"success\",\"RequestId\":\"{}\",\"Data\":{{\"Files\":[{items}]}}}}",
            request_id(id)
        ),
        ListingShape::DataArray => format!("{{\"Code\":200,\"Data\":[{items}]}}"),
        ListingShape::BareArray => format!("[{items}]"),
        ListingShape::LowerFiles => format!("{{\"Data\":{{\"files\":[{items}]}}}}"),
    }
}

/// One listing entry: a file (`file` is `Some`) or a folder.
struct Listed<'a> {
    repo: &'a str,
    commit: &'a Commit,
    entry: &'a TreeEntry,
    file: Option<&'a StoredFile>,
}

impl Listed<'_> {
    fn json(&self, st: &State, lower: bool) -> String {
        let path = &self.entry.path;
        let key = |upper: &'static str| {
            if lower {
                upper.to_ascii_lowercase()
            } else {
                upper.to_owned()
            }
        };
        let Some(file) = self.file else {
            return format!(
                "{{\"{}\":{},\"{}\":{},\"{}\":\"tree\",\"{}\":0,\"{}\":\"\"}}",
                key("Name"),
                json_str(name_of(path)),
                key("Path"),
                json_str(path),
                key("Type"),
                key("Size"),
                key("Sha256"),
            );
        };
        let size = listed_size(&st.knobs.listed_size, self.repo, path, file.digests.size);
        let mut out = format!(
            "{{\"{}\":{},\"{}\":{},\"{}\":\"blob\",\"{}\":{size}",
            key("Name"),
            json_str(name_of(path)),
            key("Path"),
            json_str(path),
            key("Type"),
            key("Size"),
        );
        let sha256 = match st
            .knobs
            .modelscope
            .sha256
            .get(&(self.repo.to_owned(), path.clone()))
        {
            Some(reported) => reported.as_deref(),
            None => Some(file.digests.sha256.as_str()),
        };
        if let Some(sha256) = sha256 {
            let _ = write!(out, ",\"{}\":{}", key("Sha256"), json_str(sha256));
        }
        if !lower {
            let _ = write!(
                out,
                ",\"Revision\":\"{}\",\"IsLFS\":{},\"CommittedDate\":{}",
                self.commit.sha,
                file.digests.lfs.is_some(),
                self.commit.secs
            );
        }
        out.push('}');
        out
    }
}

pub(crate) fn file(
    st: &mut State,
    port: u16,
    req: &Request,
    route: &Route,
    repo: &RepoRef,
    path: &str,
) -> Result<Response, Response> {
    if path.is_empty() {
        return Err(ms_error(400, "FilePath is required"));
    }
    let commit = {
        let r = open_repo(st, req, repo)?;
        if r.gated && !accepted(&presented_tokens(req), r.approved_token.as_deref()) {
            return Err(ms_error(
                401,
                "Unauthorized: this model requires approved access",
            ));
        }
        resolve_rev(r, route)?
    };
    let file = commit
        .files
        .get(path)
        .ok_or_else(|| ms_error(404, &format!("File not found: {path}")))?;
    let d = &file.digests;
    if st.knobs.modelscope.redirect {
        // The CDN serves blobs by sha256; git-stored files get there only through this route.
        st.blobs
            .entry(d.sha256.clone())
            .or_insert_with(|| file.content.clone());
        let f = FileRef {
            repo: &repo.id,
            commit: &commit,
            path,
            file,
        };
        let location = mint_signed_url(st, port, &f, &d.sha256);
        return Ok(redirect(302, &location).header("ETag", quoted(&d.blob_id)));
    }
    let headers = vec![
        ("Content-Type", content_type(path).to_owned()),
        ("ETag", quoted(&d.blob_id)),
        ("Accept-Ranges", "bytes".to_owned()),
    ];
    let counter = st.counter(&repo.id, path);
    let resp = ranged(
        headers,
        file.content.clone(),
        d.size,
        req.header("range"),
        counter,
        HostKind::Hub,
    );
    if resp.status != 416 {
        return Ok(resp);
    }
    // Keep the range headers, but word the error as ModelScope does (no `X-Error-*`).
    let mut err = ms_error(416, "Requested range not satisfiable");
    err.headers.extend(
        resp.headers
            .into_iter()
            .filter(|(name, _)| !name.starts_with("X-Error") && *name != "Content-Type"),
    );
    Err(err)
}
