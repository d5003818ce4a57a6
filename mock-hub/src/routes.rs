//! Routing: which host and endpoint a request names, and the answer it gets.

use crate::encode::{parse_query, percent_decode};
use crate::http::{Request, Response, cdn_error, hub_error};
use crate::model::Target;
use crate::state::{Shared, State};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKind {
    Hub,
    Cdn,
}

pub(crate) fn host_kind(port: u16, req: &Request) -> HostKind {
    let host = req.header("host").unwrap_or_default();
    if host.eq_ignore_ascii_case(&format!("localhost:{port}")) {
        HostKind::Cdn
    } else {
        HostKind::Hub
    }
}

pub(crate) struct RepoRef {
    pub(crate) id: String,
    /// Raw path before and after the repo id, to rebuild the URL for a renamed repo.
    pub(crate) prefix: &'static str,
    pub(crate) tail: String,
}

pub(crate) enum Endpoint {
    Info {
        repo: RepoRef,
        rev: Option<String>,
    },
    Tree {
        repo: RepoRef,
        rev: String,
        path: String,
    },
    Resolve {
        repo: RepoRef,
        rev: String,
        path: String,
    },
    ResolveCache {
        repo: RepoRef,
        sha: String,
        path: String,
    },
    Cdn {
        sha256: String,
    },
    /// ModelScope's `/api/v1/models/{repo}/repo/files?Revision=…&Recursive=True`.
    MsListing {
        repo: RepoRef,
    },
    /// ModelScope's `/api/v1/models/{repo}/repo?Revision=…&FilePath=…`; `path` is the decoded
    /// `FilePath` (empty when missing).
    MsFile {
        repo: RepoRef,
        path: String,
    },
}

pub(crate) struct Route {
    pub(crate) host: HostKind,
    pub(crate) endpoint: Endpoint,
    pub(crate) query: Vec<(String, String)>,
    /// Repo path a CDN request's signature was minted for, to match `Target::Cdn`.
    cdn_path: Option<String>,
}

impl Route {
    pub(crate) fn matches(&self, target: &Target, is_get: bool) -> bool {
        match (target, &self.endpoint) {
            (Target::Api, Endpoint::Info { .. } | Endpoint::MsListing { .. })
            | (Target::Tree, Endpoint::Tree { .. }) => true,
            (
                Target::Resolve(p),
                Endpoint::Resolve { path, .. }
                | Endpoint::ResolveCache { path, .. }
                | Endpoint::MsFile { path, .. },
            ) => p == path,
            (Target::Cdn(p), Endpoint::Cdn { .. }) => self.cdn_path.as_deref() == Some(p.as_str()),
            (
                Target::AnyFile,
                Endpoint::Resolve { .. }
                | Endpoint::ResolveCache { .. }
                | Endpoint::Cdn { .. }
                | Endpoint::MsFile { .. },
            ) => is_get,
            _ => false,
        }
    }

    pub(crate) fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        self.query(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }
}

pub(crate) fn route(shared: &Shared, req: &Request, host: HostKind) -> Result<Route, Response> {
    let bad = |msg| match host {
        HostKind::Hub => hub_error(400, None, msg),
        HostKind::Cdn => cdn_error(400, "InvalidRequest", msg),
    };
    let query = parse_query(&req.query).ok_or_else(|| bad("malformed query string"))?;
    if req.method != "GET" && req.method != "HEAD" {
        let resp = match host {
            HostKind::Hub => hub_error(405, None, "Method not allowed"),
            HostKind::Cdn => cdn_error(405, "MethodNotAllowed", "Method not allowed"),
        };
        return Err(resp.header("Allow", "GET, HEAD"));
    }
    let segs: Vec<&str> = req.path[1..].split('/').collect();
    let st = shared.lock();
    let endpoint = match host {
        HostKind::Cdn => cdn_route(&segs),
        HostKind::Hub => hub_route(&st, &segs, &query),
    };
    let endpoint = endpoint.map_err(|e| match e {
        RouteError::BadEncoding => bad("malformed percent-encoding"),
        RouteError::NotFound if host == HostKind::Cdn => cdn_error(404, "NoSuchKey", "Not Found"),
        RouteError::NotFound => hub_error(404, None, "Not Found"),
    })?;
    let cdn_path = match endpoint {
        Endpoint::Cdn { .. } => signature(&query)
            .and_then(|sig| st.signed.get(sig))
            .map(|s| s.path.clone()),
        _ => None,
    };
    Ok(Route {
        host,
        endpoint,
        query,
        cdn_path,
    })
}

enum RouteError {
    NotFound,
    BadEncoding,
}

fn cdn_route(segs: &[&str]) -> Result<Endpoint, RouteError> {
    match segs {
        ["cdn", sha256] if !sha256.is_empty() => Ok(Endpoint::Cdn {
            sha256: (*sha256).to_owned(),
        }),
        _ => Err(RouteError::NotFound),
    }
}

fn hub_route(
    st: &State,
    segs: &[&str],
    query: &[(String, String)],
) -> Result<Endpoint, RouteError> {
    let known = |id: &str| st.repos.contains_key(id) || st.renames.contains_key(id);
    match segs {
        ["api", "models", rest @ ..] => api_route(rest, known),
        ["api", "v1", "models", rest @ ..] => modelscope_route(rest, query, known),
        ["api", "resolve-cache", "models", rest @ ..] => resolve_cache_route(rest, known),
        ["api", ..] | ["cdn", ..] | ["admin", ..] => Err(RouteError::NotFound),
        _ => resolve_route(segs, known),
    }
}

/// Repo ids are `org/name` or a bare legacy `name`; like the Hub, the URL alone is ambiguous, so
/// each reading is tried and one naming an existing repo wins.
fn pick_repo<T>(
    candidates: Vec<(RepoRef, T)>,
    known: impl Fn(&str) -> bool,
) -> Result<(RepoRef, T), RouteError> {
    let index = candidates
        .iter()
        .position(|(repo, _)| known(&repo.id))
        .unwrap_or(0);
    candidates
        .into_iter()
        .nth(index)
        .ok_or(RouteError::NotFound)
}

fn repo_ref(segs: &[&str], prefix: &'static str, tail: &[&str]) -> Result<RepoRef, RouteError> {
    let id = segs
        .iter()
        .map(|s| decode(s))
        .collect::<Result<Vec<_>, _>>()?
        .join("/");
    if segs.iter().any(|s| s.is_empty()) {
        return Err(RouteError::NotFound);
    }
    let tail = if tail.is_empty() {
        String::new()
    } else {
        format!("/{}", tail.join("/"))
    };
    Ok(RepoRef { id, prefix, tail })
}

enum ApiTail {
    Info(Option<String>),
    Tree(String, String),
}

fn api_route(rest: &[&str], known: impl Fn(&str) -> bool) -> Result<Endpoint, RouteError> {
    let mut candidates = Vec::new();
    for n in [2, 1] {
        if rest.len() < n {
            continue;
        }
        let (repo, tail) = rest.split_at(n);
        let parsed = match tail {
            [] => Some(ApiTail::Info(None)),
            ["revision", rev @ ..] => match take_rev(rev)? {
                Some((rev, [])) => Some(ApiTail::Info(Some(rev))),
                _ => None,
            },
            ["tree", rev @ ..] => match take_rev(rev)? {
                Some((rev, path)) => Some(ApiTail::Tree(rev, decode_path(path)?)),
                None => None,
            },
            _ => None,
        };
        if let Some(parsed) = parsed {
            candidates.push((repo_ref(repo, "/api/models/", tail)?, parsed));
        }
    }
    Ok(match pick_repo(candidates, known)? {
        (repo, ApiTail::Info(rev)) => Endpoint::Info { repo, rev },
        (repo, ApiTail::Tree(rev, path)) => Endpoint::Tree { repo, rev, path },
    })
}

/// ModelScope names the revision and the file in the query, so only the repo is in the path.
fn modelscope_route(
    rest: &[&str],
    query: &[(String, String)],
    known: impl Fn(&str) -> bool,
) -> Result<Endpoint, RouteError> {
    let mut candidates = Vec::new();
    for n in [2, 1] {
        if rest.len() <= n {
            continue;
        }
        let (repo, tail) = rest.split_at(n);
        let listing = match tail {
            ["repo", "files"] => true,
            ["repo"] => false,
            _ => continue,
        };
        candidates.push((repo_ref(repo, "/api/v1/models/", tail)?, listing));
    }
    Ok(match pick_repo(candidates, known)? {
        (repo, true) => Endpoint::MsListing { repo },
        (repo, false) => {
            let path = query
                .iter()
                .find(|(k, _)| k == "FilePath")
                .map_or_else(String::new, |(_, v)| v.clone());
            Endpoint::MsFile { repo, path }
        }
    })
}

fn resolve_route(segs: &[&str], known: impl Fn(&str) -> bool) -> Result<Endpoint, RouteError> {
    let mut candidates = Vec::new();
    for n in [2, 1] {
        if segs.len() <= n || segs[n] != "resolve" {
            continue;
        }
        let (repo, tail) = segs.split_at(n);
        if let Some((rev, path)) = take_rev(&tail[1..])? {
            candidates.push((repo_ref(repo, "/", tail)?, (rev, decode_path(path)?)));
        }
    }
    let (repo, (rev, path)) = pick_repo(candidates, known)?;
    Ok(Endpoint::Resolve { repo, rev, path })
}

fn resolve_cache_route(
    rest: &[&str],
    known: impl Fn(&str) -> bool,
) -> Result<Endpoint, RouteError> {
    let mut candidates = Vec::new();
    for n in [2, 1] {
        if rest.len() <= n + 1 {
            continue;
        }
        let (repo, tail) = rest.split_at(n);
        let sha = decode(tail[0])?;
        candidates.push((
            repo_ref(repo, "/api/resolve-cache/models/", tail)?,
            (sha, decode_path(&tail[1..])?),
        ));
    }
    let (repo, (sha, path)) = pick_repo(candidates, known)?;
    Ok(Endpoint::ResolveCache { repo, sha, path })
}

/// The revision is one percent-encoded segment (`refs%2Fpr%2F1`), but `refs/pr/N` and
/// `refs/convert/x` are also accepted verbatim, as on the Hub.
fn take_rev<'a, 'b>(segs: &'a [&'b str]) -> Result<Option<(String, &'a [&'b str])>, RouteError> {
    match segs {
        ["refs", kind, name, rest @ ..] => Ok(Some((
            format!("refs/{}/{}", decode(kind)?, decode(name)?),
            rest,
        ))),
        [rev, rest @ ..] => Ok(Some((decode(rev)?, rest))),
        [] => Ok(None),
    }
}

/// A file path: percent-encoded with `/` kept (or `%2F`), decoded as a whole.
fn decode_path(segs: &[&str]) -> Result<String, RouteError> {
    decode(&segs.join("/"))
}

fn decode(s: &str) -> Result<String, RouteError> {
    percent_decode(s, false).ok_or(RouteError::BadEncoding)
}

pub(crate) fn signature(query: &[(String, String)]) -> Option<&str> {
    query
        .iter()
        .find(|(k, _)| k == "X-Amz-Signature")
        .map(|(_, v)| v.as_str())
}
