//! The Hub's JSON API: repo info with siblings, `/tree` pages, and the errors every route shares.

use crate::encode::json_str;
use crate::git::{Digests, TreeEntry, git_object_id};
use crate::http::{Request, Response, hub_error, redirect};
use crate::routes::{RepoRef, Route};
use crate::state::{Commit, Repo, SizeLie, State};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// The Hub pages `/tree` by 50 when `expand=true`.
const EXPAND_TREE_PAGE: usize = 50;

fn repo_not_found(has_token: bool) -> Response {
    if has_token {
        hub_error(404, Some("RepoNotFound"), "Repository not found")
    } else {
        hub_error(401, Some("RepoNotFound"), "Invalid username or password.")
    }
}

pub(crate) fn entry_not_found(commit: &str) -> Response {
    hub_error(404, Some("EntryNotFound"), "Entry not found").header("X-Repo-Commit", commit)
}

/// The bearer token, if any. A token the mock does not know is rejected on every route.
fn bearer(st: &State, req: &Request) -> Result<Option<String>, Response> {
    let Some(value) = req.header("authorization") else {
        return Ok(None);
    };
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| st.is_known_token(token));
    match token {
        Some(token) => Ok(Some(token.to_owned())),
        None => Err(hub_error(
            401,
            None,
            "Invalid credentials in Authorization header",
        )),
    }
}

/// Token check, rename redirect, existence/visibility, disabled: in that order.
pub(crate) fn open_repo<'s>(
    st: &'s State,
    req: &Request,
    repo: &RepoRef,
) -> Result<(&'s Repo, Option<String>), Response> {
    let token = bearer(st, req)?;
    if !st.repos.contains_key(&repo.id)
        && let Some(new_id) = st.renames.get(&repo.id)
    {
        let query = if req.query.is_empty() {
            String::new()
        } else {
            format!("?{}", req.query)
        };
        return Err(redirect(
            307,
            &format!("{}{new_id}{}{query}", repo.prefix, repo.tail),
        ));
    }
    let Some(r) = st.repos.get(&repo.id) else {
        return Err(repo_not_found(token.is_some()));
    };
    if r.private && (token.is_none() || token != r.allowed_token) {
        return Err(repo_not_found(token.is_some()));
    }
    if r.disabled {
        return Err(hub_error(403, None, "Access to this resource is disabled."));
    }
    Ok((r, token))
}

/// Gating only protects file content; metadata of gated repos is public.
pub(crate) fn check_gate(r: &Repo, id: &str, token: Option<&str>) -> Result<(), Response> {
    if !r.gated || (token.is_some() && token == r.approved_token.as_deref()) {
        return Ok(());
    }
    Err(match token {
        None => hub_error(
            401,
            Some("GatedRepo"),
            &format!(
                "Access to model {id} is restricted. You must have access to it and be authenticated to access it. Please log in."
            ),
        ),
        Some(_) => hub_error(
            403,
            Some("GatedRepo"),
            &format!(
                "Access to model {id} is restricted and you are not in the authorized list. Visit https://huggingface.co/{id} to ask for access."
            ),
        ),
    })
}

pub(crate) fn resolve_rev(r: &Repo, rev: &str) -> Result<Arc<Commit>, Response> {
    let sha = r.refs.get(rev).map_or(rev, String::as_str);
    r.commits.get(sha).cloned().ok_or_else(|| {
        hub_error(
            404,
            Some("RevisionNotFound"),
            &format!("Invalid rev id: {rev}"),
        )
    })
}

fn json_response(body: String) -> Response {
    // A weak validator, like the Hub's; nobody should rely on it.
    let etag = format!(
        "W/\"{:x}-{}\"",
        body.len(),
        &git_object_id("blob", body.as_bytes())[..16]
    );
    Response::new(200, "application/json; charset=utf-8", body)
        .header("ETag", etag)
        .header("Vary", "Origin")
}

pub(crate) fn info(
    st: &State,
    req: &Request,
    route: &Route,
    repo: &RepoRef,
    rev: Option<&str>,
) -> Result<Response, Response> {
    let (r, _) = open_repo(st, req, repo)?;
    let commit = resolve_rev(r, rev.unwrap_or("main"))?;
    let blobs = route.flag("blobs");
    let sizes = st.knobs.listing_sizes.then_some(&st.knobs.listed_size);
    Ok(json_response(info_json(&repo.id, r, &commit, blobs, sizes)))
}

/// The size the listing reports for a file: the truth unless a [`SizeLie`] is set.
pub(crate) fn listed_size(
    lies: &HashMap<(String, String), SizeLie>,
    repo: &str,
    path: &str,
    size: u64,
) -> String {
    match lies.get(&(repo.to_owned(), path.to_owned())) {
        Some(lie) => lie.render(size),
        None => size.to_string(),
    }
}

/// `sizes`: `None` leaves sizes out (`set_listing_sizes(false)`), else the size lies to apply.
fn info_json(
    id: &str,
    r: &Repo,
    commit: &Commit,
    blobs: bool,
    sizes: Option<&HashMap<(String, String), SizeLie>>,
) -> String {
    let siblings: Vec<String> = commit
        .files
        .iter()
        .map(|(path, file)| {
            let size = sizes.map(|lies| listed_size(lies, id, path, file.digests.size));
            sibling_json(path, &file.digests, blobs, size.as_deref())
        })
        .collect();
    let used: u64 = commit.files.values().map(|f| f.digests.size).sum();
    let gated = if r.gated { "\"manual\"" } else { "false" };
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"_id\":\"{}\",\"id\":{},\"private\":{}",
        &git_object_id("repo", id.as_bytes())[..24],
        json_str(id),
        r.private
    );
    let _ = write!(
        out,
        ",\"tags\":[],\"downloads\":0,\"likes\":0,\"modelId\":{}",
        json_str(id)
    );
    if let Some((author, _)) = id.split_once('/') {
        let _ = write!(out, ",\"author\":{}", json_str(author));
    }
    let _ = write!(
        out,
        ",\"sha\":\"{}\",\"lastModified\":\"{}\",\"gated\":{gated},\"disabled\":{}",
        commit.sha, commit.date, r.disabled
    );
    let _ = write!(
        out,
        ",\"siblings\":[{}],\"createdAt\":\"{}\",\"usedStorage\":{used}}}",
        siblings.join(","),
        r.created_at
    );
    out
}

/// `size`: the JSON token to report as the size, `None` to leave sizes out.
fn sibling_json(path: &str, d: &Digests, blobs: bool, size: Option<&str>) -> String {
    let mut out = format!("{{\"rfilename\":{}", json_str(path));
    if blobs {
        let _ = write!(out, ",\"blobId\":\"{}\"", d.blob_id);
        if let Some(size) = size {
            let _ = write!(out, ",\"size\":{size}");
            if let Some(lfs) = &d.lfs {
                let _ = write!(
                    out,
                    ",\"lfs\":{{\"sha256\":\"{}\",\"size\":{size},\"pointerSize\":{}}}",
                    lfs.sha256, lfs.pointer_size
                );
            }
        }
    }
    out.push('}');
    out
}

pub(crate) fn tree_listing(
    st: &State,
    port: u16,
    req: &Request,
    route: &Route,
    repo: &RepoRef,
    rev: &str,
    path: &str,
) -> Result<Response, Response> {
    let (r, _) = open_repo(st, req, repo)?;
    let commit = resolve_rev(r, rev)?;
    let dir = path.strip_suffix('/').unwrap_or(path);
    let entries = commit
        .list(dir, route.flag("recursive"))
        .ok_or_else(|| entry_not_found(&commit.sha))?;
    let expand = route.flag("expand");
    let page = if expand {
        st.knobs.tree_page_size.min(EXPAND_TREE_PAGE)
    } else {
        st.knobs.tree_page_size
    };
    let start = match route.query("cursor") {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|&c| c <= entries.len())
            .ok_or_else(|| hub_error(400, None, "Invalid cursor"))?,
    };
    let end = start.saturating_add(page).min(entries.len());
    let items: Vec<String> = entries[start..end]
        .iter()
        .map(|e| entry_json(e, &commit, expand, &st.knobs.listed_size, &repo.id))
        .collect();
    let mut resp = json_response(format!("[{}]", items.join(",")));
    if let Some(next) = &st.knobs.tree_next {
        resp = resp.header("Link", format!("<{next}>; rel=\"next\""));
    } else if end < entries.len() {
        resp = resp.header(
            "Link",
            format!("<{}>; rel=\"next\"", next_page_url(port, req, end)),
        );
    }
    Ok(resp)
}

/// The `Link` target: absolute, on this mock's own Hub host, with every original parameter.
fn next_page_url(port: u16, req: &Request, cursor: usize) -> String {
    let mut params: Vec<&str> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("cursor"))
        .collect();
    let cursor = format!("cursor={cursor}");
    params.push(&cursor);
    format!("http://127.0.0.1:{port}{}?{}", req.path, params.join("&"))
}

/// Key order matters to some clients: `type, oid, size, lfs, path` as on the Hub.
fn entry_json(
    entry: &TreeEntry,
    commit: &Commit,
    expand: bool,
    lies: &HashMap<(String, String), SizeLie>,
    repo: &str,
) -> String {
    let mut out = match (&entry.dir_oid, commit.files.get(&entry.path)) {
        (None, Some(file)) => {
            let d = &file.digests;
            let size = listed_size(lies, repo, &entry.path, d.size);
            let mut s = format!(
                "{{\"type\":\"file\",\"oid\":\"{}\",\"size\":{size}",
                d.blob_id
            );
            if let Some(lfs) = &d.lfs {
                let _ = write!(
                    s,
                    ",\"lfs\":{{\"oid\":\"{}\",\"size\":{size},\"pointerSize\":{}}}",
                    lfs.sha256, lfs.pointer_size
                );
            }
            s
        }
        (oid, _) => format!(
            "{{\"type\":\"directory\",\"oid\":\"{}\",\"size\":0",
            oid.as_deref().unwrap_or_default()
        ),
    };
    let _ = write!(out, ",\"path\":{}", json_str(&entry.path));
    if expand {
        let _ = write!(
            out,
            ",\"lastCommit\":{{\"id\":\"{}\",\"title\":\"Upload folder\",\"date\":\"{}\"}}",
            commit.sha, commit.date
        );
    }
    out.push('}');
    out
}
