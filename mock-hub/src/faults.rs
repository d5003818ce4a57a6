//! Injected faults: the first queued fault that matches a request replaces or alters its answer.

use crate::http::{Body, Response, cdn_error, hub_error, reason, redirect};
use crate::model::Fault;
use crate::routes::{Endpoint, HostKind, Route};
use crate::state::Shared;
use std::time::Duration;

/// Takes the first queued fault that applies to this request and answer, and applies it: it
/// replaces the answer (`Status`, `NoResponse`, ...) or alters its body (`DropAfter`, ...).
pub(crate) fn inject_fault(
    shared: &Shared,
    route: &Route,
    is_get: bool,
    resp: Response,
) -> Outcome {
    let picked = shared.take_fault(|t, f| {
        if !route.matches(t, is_get) {
            return None;
        }
        if let Some(early) = early_fault(f) {
            return Some(Picked::Early(early));
        }
        if !is_get {
            return None;
        }
        body_fault(f, &resp).map(Picked::Body)
    });
    match picked {
        None => Outcome::Reply(resp, None),
        Some(Picked::Early(Early::Silent(wait))) => Outcome::Silent(wait),
        Some(Picked::Early(Early::Status(code, retry_after))) => {
            Outcome::Reply(status_fault(route, code, retry_after.as_deref()), None)
        }
        Some(Picked::Early(Early::Redirect(status, location))) => {
            Outcome::Reply(redirect(status, &location), None)
        }
        Some(Picked::Early(Early::Json(body))) => {
            let resp = Response::new(200, "application/json; charset=utf-8", body);
            Outcome::Reply(resp, None)
        }
        Some(Picked::Body(fault)) => apply_body_fault(resp, fault),
    }
}

enum Picked {
    Early(Early),
    Body(BodyFault),
}

/// Faults that replace the answer; they apply to any matching request.
enum Early {
    Status(u16, Option<String>),
    Silent(Duration),
    Redirect(u16, String),
    Json(String),
}

fn early_fault(fault: &Fault) -> Option<Early> {
    match fault {
        Fault::Status { code, retry_after } => Some(Early::Status(*code, retry_after.clone())),
        Fault::NoResponse(wait) => Some(Early::Silent(*wait)),
        Fault::Redirect { status, location } => Some(Early::Redirect(*status, location.clone())),
        Fault::Json(body) => Some(Early::Json(body.clone())),
        _ => None,
    }
}

/// Faults that alter a body; each applies only to some answers of a `GET`.
enum BodyFault {
    Cut(Cut),
    IgnoreRange,
    WrongContentRange,
    Short(u64),
    Long(u64),
    Pad(u64),
}

/// Whether `fault` applies to this answer, and how.
fn body_fault(fault: &Fault, resp: &Response) -> Option<BodyFault> {
    match &resp.body {
        Body::Content(slice) => {
            let partial = resp.status == 206;
            match fault {
                Fault::DropAfter(bytes) => Some(BodyFault::Cut(Cut::Drop(*bytes))),
                Fault::StallAfter { bytes, stall } => {
                    Some(BodyFault::Cut(Cut::Stall(*bytes, *stall)))
                }
                Fault::IgnoreRange if partial => Some(BodyFault::IgnoreRange),
                // A one-byte file has no other start to announce.
                Fault::WrongContentRange if partial && slice.total >= 2 => {
                    Some(BodyFault::WrongContentRange)
                }
                Fault::ShortBody(bytes) => Some(BodyFault::Short(*bytes)),
                Fault::LongBody(bytes) => Some(BodyFault::Long(*bytes)),
                _ => None,
            }
        }
        Body::Bytes(_) => {
            let is_json = resp.status == 200
                && resp
                    .headers
                    .iter()
                    .any(|(n, v)| *n == "Content-Type" && v.starts_with("application/json"));
            match fault {
                Fault::PaddedJson(pad) if is_json => Some(BodyFault::Pad(*pad)),
                _ => None,
            }
        }
        Body::Padded { .. } => None,
    }
}

fn apply_body_fault(mut resp: Response, fault: BodyFault) -> Outcome {
    match fault {
        BodyFault::Cut(cut) => return Outcome::Reply(resp, Some(cut)),
        BodyFault::IgnoreRange => return Outcome::Reply(whole_body(resp), None),
        BodyFault::WrongContentRange => return Outcome::Reply(shifted_range(resp), None),
        BodyFault::Short(bytes) => {
            if let Body::Content(slice) = &mut resp.body {
                slice.len = slice.len.min(bytes);
            }
        }
        BodyFault::Long(bytes) => {
            if let Body::Content(slice) = &mut resp.body {
                slice.junk = bytes;
            }
        }
        BodyFault::Pad(pad) => {
            let body = std::mem::replace(&mut resp.body, Body::Bytes(Vec::new()));
            if let Body::Bytes(body) = body {
                resp.body = Body::Padded { pad, body };
            }
        }
    }
    Outcome::Reply(resp, None)
}

fn whole_body(mut resp: Response) -> Response {
    if let Body::Content(slice) = &mut resp.body {
        slice.start = 0;
        slice.len = slice.total;
    }
    resp.status = 200;
    resp.headers.retain(|(name, _)| *name != "Content-Range");
    resp
}

fn shifted_range(mut resp: Response) -> Response {
    if let Body::Content(slice) = &mut resp.body {
        let end = slice.start + slice.len - 1;
        let start = if slice.start + 1 < slice.total {
            slice.start + 1
        } else {
            slice.start - 1
        };
        let end = end.max(start);
        slice.start = start;
        slice.len = end - start + 1;
        let content_range = format!("bytes {start}-{end}/{}", slice.total);
        resp.headers.retain(|(name, _)| *name != "Content-Range");
        resp.headers.push(("Content-Range", content_range));
    }
    resp
}

fn status_fault(route: &Route, code: u16, retry_after: Option<&str>) -> Response {
    let mut resp = match route.host {
        HostKind::Hub => hub_error(code, None, reason(code)),
        HostKind::Cdn => cdn_error(code, "ServiceError", reason(code)),
    };
    if let Some(retry_after) = retry_after {
        resp = resp.header("Retry-After", retry_after);
        let seconds = retry_after.trim().parse::<u64>();
        if let (429, HostKind::Hub, Ok(seconds)) = (code, route.host, seconds) {
            let bucket = match route.endpoint {
                Endpoint::Info { .. } | Endpoint::Tree { .. } | Endpoint::MsListing { .. } => "api",
                _ => "resolvers",
            };
            resp = resp
                .header("RateLimit", format!("\"{bucket}\";r=0;t={seconds}"))
                .header(
                    "RateLimit-Policy",
                    format!("\"fixed window\";\"{bucket}\";q=3000;w=300"),
                );
        }
    }
    resp
}

pub(crate) enum Outcome {
    Reply(Response, Option<Cut>),
    /// `Fault::NoResponse`: say nothing for this long, then close.
    Silent(Duration),
}

/// A body fault that ends the connection mid-body.
#[derive(Clone, Copy)]
pub(crate) enum Cut {
    Drop(u64),
    Stall(u64, Duration),
}

impl Cut {
    pub(crate) fn after(self) -> u64 {
        match self {
            Cut::Drop(bytes) | Cut::Stall(bytes, _) => bytes,
        }
    }
}
