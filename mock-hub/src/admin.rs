//! Admin routes, for steering the `mock-hub` binary from a shell or a bench script.

use crate::encode::{json_str, parse_query};
use crate::http::{Request, Response, hub_error};
use crate::model::{Fault, RequestLog, Target};
use crate::state::Shared;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Faults one admin call may queue; bounds the memory a single request can claim.
const MAX_ADMIN_FAULTS: usize = 10_000;

struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn number<T: std::str::FromStr>(
        &self,
        key: &str,
        default: Option<T>,
    ) -> Result<T, AdminError> {
        match (self.get(key), default) {
            (Some(value), _) => value.parse().map_err(|_| bad_param(key)),
            (None, Some(default)) => Ok(default),
            (None, None) => Err((400, format!("missing parameter {key}"))),
        }
    }
}

type AdminError = (u16, String);

fn bad_param(key: &str) -> AdminError {
    (400, format!("bad parameter {key}"))
}

pub(crate) fn admin(shared: &Shared, req: &Request) -> Response {
    match admin_action(shared, req) {
        Ok(body) => Response::new(200, "application/json; charset=utf-8", body),
        Err((status, message)) => hub_error(status, None, &message),
    }
}

fn admin_action(shared: &Shared, req: &Request) -> Result<String, AdminError> {
    let params = Params(parse_query(&req.query).ok_or_else(|| bad_param("query"))?);
    match req.path.as_str() {
        "/admin/commit" => admin_commit(
            shared,
            params.get("repo"),
            params.get("branch").unwrap_or("main"),
        ),
        "/admin/fault" => {
            let target = parse_target(params.get("target").ok_or_else(|| bad_param("target"))?)?;
            let fault = parse_fault(&params)?;
            let count: usize = params.number("count", Some(1))?;
            if count > MAX_ADMIN_FAULTS {
                return Err(bad_param("count"));
            }
            let mut st = shared.lock();
            st.faults
                .extend(std::iter::repeat_n((target, fault), count));
            Ok(format!("{{\"pending_faults\":{}}}", st.faults.len()))
        }
        "/admin/rate" => {
            let bps: u64 = params.number("bps", None)?;
            shared.lock().knobs.rate_limit = (bps > 0).then_some(bps);
            Ok(format!("{{\"bps\":{bps}}}"))
        }
        "/admin/cdn" => {
            // Where signed URLs point from now on: another server holding the blobs under
            // `/cdn/<sha256>` (nginx in the benchmark), or this mock when `base` is empty.
            let base = params.get("base").unwrap_or("");
            if !(base.is_empty() || base.starts_with("http://") || base.starts_with("https://")) {
                return Err(bad_param("base"));
            }
            shared.lock().knobs.cdn_base =
                (!base.is_empty()).then(|| base.trim_end_matches('/').to_owned());
            Ok(format!("{{\"cdn_base\":{}}}", json_str(base)))
        }
        "/admin/stats" => {
            let requests = shared.lock().log.len();
            let total = shared.total_served.load(Ordering::SeqCst);
            Ok(format!(
                "{{\"bytes_served_total\":{total},\"requests\":{requests}}}"
            ))
        }
        "/admin/reset" => {
            shared.reset_counters();
            let mut st = shared.lock();
            st.faults.clear();
            st.log.clear();
            Ok("{}".to_owned())
        }
        "/admin/requests" => {
            let st = shared.lock();
            let entries: Vec<String> = st.log.iter().map(|(_, entry)| log_json(entry)).collect();
            Ok(format!("[{}]", entries.join(",")))
        }
        _ => Err((404, "unknown admin route".to_owned())),
    }
}

pub(crate) fn admin_commit(
    shared: &Shared,
    repo: Option<&str>,
    branch: &str,
) -> Result<String, AdminError> {
    let (hook, repo) = {
        let st = shared.lock();
        let hook = st
            .admin_commit
            .clone()
            .ok_or((404, "no commit hook installed".to_owned()))?;
        let repo = match (repo, st.repos.keys().next()) {
            (Some(repo), _) => repo.to_owned(),
            (None, Some(only)) if st.repos.len() == 1 => only.clone(),
            (None, _) => return Err(bad_param("repo")),
        };
        (hook, repo)
    };
    // Outside the lock: re-scanning and hashing a directory can take a while.
    let files = hook(&repo, branch).map_err(|e| (500, e))?;
    let sha = shared
        .commit(&repo, branch, files)
        .map_err(|e| (500, e.to_string()))?;
    if branch == "main" {
        // ModelScope clients ask for `master` by default; one commit serves both APIs.
        shared
            .lock()
            .repo_mut(&repo)
            .refs
            .insert("master".to_owned(), sha.clone());
    }
    Ok(format!(
        "{{\"repo\":{},\"branch\":{},\"sha\":\"{sha}\"}}",
        json_str(&repo),
        json_str(branch)
    ))
}

fn parse_target(s: &str) -> Result<Target, AdminError> {
    match s {
        "api" => Ok(Target::Api),
        "tree" => Ok(Target::Tree),
        "anyfile" => Ok(Target::AnyFile),
        _ => match s.split_once(':') {
            Some(("resolve", path)) => Ok(Target::Resolve(path.to_owned())),
            Some(("cdn", path)) => Ok(Target::Cdn(path.to_owned())),
            _ => Err(bad_param("target")),
        },
    }
}

fn parse_fault(params: &Params) -> Result<Fault, AdminError> {
    let ms = |key| params.number(key, None).map(Duration::from_millis);
    match params.get("kind").ok_or_else(|| bad_param("kind"))? {
        "status" => Ok(Fault::Status {
            code: params.number("code", None)?,
            retry_after: params.get("retry_after").map(str::to_owned),
        }),
        "drop" => Ok(Fault::DropAfter(params.number("bytes", None)?)),
        "ignore_range" => Ok(Fault::IgnoreRange),
        "wrong_content_range" => Ok(Fault::WrongContentRange),
        "stall" => Ok(Fault::StallAfter {
            bytes: params.number("bytes", Some(0))?,
            stall: ms("ms")?,
        }),
        "no_response" => Ok(Fault::NoResponse(ms("ms")?)),
        "redirect" => Ok(Fault::Redirect {
            status: params.number("code", Some(302))?,
            location: params
                .get("location")
                .ok_or_else(|| bad_param("location"))?
                .to_owned(),
        }),
        "padded_json" => Ok(Fault::PaddedJson(params.number("bytes", None)?)),
        "short_body" => Ok(Fault::ShortBody(params.number("bytes", None)?)),
        "long_body" => Ok(Fault::LongBody(params.number("bytes", None)?)),
        _ => Err(bad_param("kind")),
    }
}

fn log_json(entry: &RequestLog) -> String {
    let opt = |value: &Option<String>| value.as_deref().map_or("null".to_owned(), json_str);
    format!(
        "{{\"method\":{},\"host\":{},\"path\":{},\"authorization\":{},\"cookie\":{},\"range\":{},\"user_agent\":{},\"status\":{}}}",
        json_str(&entry.method),
        json_str(&entry.host),
        json_str(&entry.path),
        opt(&entry.authorization),
        opt(&entry.cookie),
        opt(&entry.range),
        opt(&entry.user_agent),
        entry.status
    )
}
