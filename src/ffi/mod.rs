//! The C ABI: `lemon_resume_pull()` and its types, for the lemonade C++ server.
//!
//! The header `include/lemon_pull.h` is generated from this folder by cbindgen (see
//! `cbindgen.toml`); every doc comment on a C item ends up in the header, so they are written for
//! C readers.
//!
//! Conventions (see README.md, "Using from C/C++"):
//! - every export is `lemon_*`, checks every pointer for NULL and every string for UTF-8, and
//!   catches panics (`LEMON_STATUS_INTERNAL`, or NULL/0 for accessors);
//! - the options struct is versioned by `struct_size`: fields past it are never read and take their
//!   defaults, so an older caller keeps working;
//! - strings the library returns are borrowed from a result (freed by `lemon_pull_result_free`),
//!   borrowed from a progress event (valid during the callback only) or static;
//! - the progress callback runs on the calling thread, serially, only during the call.
//!
//! Layout, one file per C object: this file holds the exported functions; `status` the status
//! codes, `options` the options struct and its conversion into `PullOptions`, `progress` the
//! progress events and the bridge from core events, `result` the result struct, `cancel_flag` the
//! caller's cancel flag, and `boundary` the panic guard and C string and array helpers.
#![allow(non_camel_case_types)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod boundary;
mod cancel_flag;
mod options;
mod progress;
mod result;
mod status;
#[cfg(test)]
mod tests;

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use crate::error::Error;
use crate::progress::Totals;
use crate::pull::pull;

use boundary::{guard, panic_text};
use cancel_flag::attach_flag;
use options::{Request, parse_options};
use progress::Bridge;
use result::{Report, ResultSlot, repo_field, repos_of};
use status::{UNKNOWN_STATUS, status_str};

pub use options::{
    lemon_component, lemon_pull_file, lemon_pull_flag, lemon_pull_options, lemon_pull_repo,
    lemon_volatile_i32,
};
pub use progress::{lemon_progress, lemon_progress_cb, lemon_progress_kind};
pub use result::{lemon_pull_repos, lemon_pull_result};
pub use status::lemon_status;

/// Fills `*options` with the defaults and sets `struct_size` to `sizeof(lemon_pull_options)`.
/// Writes the whole struct as this header declares it, so use it only with the header that came
/// with the linked library (always true for the static library). NULL is ignored.
/// Thread-safe; no allocation.
///
/// # Safety
/// `options` must be NULL or point to writable memory of `sizeof(lemon_pull_options)` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_options_init(options: *mut lemon_pull_options) {
    guard((), || {
        if options.is_null() || !options.is_aligned() {
            return;
        }
        // SAFETY: non-NULL and aligned (checked); the caller guarantees it is writable for the
        // whole struct. `write` does not read or drop the old (possibly uninitialised) contents.
        unsafe { options.write(lemon_pull_options::defaults()) };
    })
}

/// Pulls a model snapshot into the cache, resuming partial downloads, and fills `*result`.
///
/// Blocking: runs on the calling thread (with short-lived helper threads inside the call) and
/// returns when the pull is complete, failed or cancelled. Returns the status, which is also
/// stored in `result->status`; on failure `result->error_message` says why.
///
/// - `options` NULL, `repo_id` NULL, any string not UTF-8, an array pointer NULL with a nonzero
///   length, unknown `flags` bits or a `struct_size` too small: `LEMON_STATUS_INVALID_ARGUMENT`.
/// - `result` NULL or with an unusable `struct_size`: `LEMON_STATUS_INVALID_ARGUMENT`, nothing
///   written.
/// - Cancel (callback nonzero or `*cancel_flag` nonzero): `LEMON_STATUS_CANCELLED` within about
///   100 ms, message "Download cancelled", partials and the manifest kept; the next call resumes.
/// - A panic inside the library is caught: `LEMON_STATUS_INTERNAL` (the default panic hook prints
///   it to stderr). Other calls are unaffected.
///
/// Threading: calls on different threads are independent and may run at the same time; two calls
/// on the same repository serialize through the cache's repository lock (the second one waits,
/// reporting `WAITING_FOR_LOCK`). Nothing in `options` is kept after the call.
///
/// # Safety
/// `options` must be NULL or point to at least `options->struct_size` readable bytes laid out as
/// `lemon_pull_options`, whose pointers are NULL or valid as documented there until the call
/// returns. `result` must be NULL or point to a writable `lemon_pull_result` that holds no strings
/// still to be freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_resume_pull(
    options: *const lemon_pull_options,
    result: *mut lemon_pull_result,
) -> lemon_status {
    // SAFETY: forwarded contract (see # Safety).
    unsafe { resume_pull(options, result, caller_bridge) }
}

/// Releases what `lemon_resume_pull` stored in `*result` (the strings and `repos`) and sets those
/// pointers to NULL; numeric fields are kept. NULL is ignored; calling it again on the same result
/// is harmless. Do not call it at the same time as another function on the same result.
///
/// # Safety
/// `result` must be NULL, or a zeroed `lemon_pull_result`, or one filled by `lemon_resume_pull`
/// (and possibly already freed by this function).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_free(result: *mut lemon_pull_result) {
    guard((), || {
        // SAFETY: the caller guarantees `result` is NULL or a result as documented (see # Safety).
        if let Some(slot) = unsafe { ResultSlot::new(result) } {
            slot.release();
        }
    })
}

/// Number of repositories in a successful result (1 + distinct component repositories), else 0.
/// NULL is 0. Thread-safe with other readers of the same result.
///
/// # Safety
/// `result` must be NULL or a result as documented for `lemon_pull_result_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_repo_count(result: *const lemon_pull_result) -> usize {
    guard(0, || {
        // SAFETY: the caller guarantees `result` is NULL or a valid result (see # Safety).
        unsafe { repos_of(result) }.map_or(0, |r| r.repos.len())
    })
}

/// Repository id (`org/name`) of repository `index` (0 = the main repository) of a successful
/// result; NULL if `result` is NULL or `index` is out of range. The string is owned by the result
/// and valid until `lemon_pull_result_free`.
///
/// # Safety
/// `result` must be NULL or a result as documented for `lemon_pull_result_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_repo_id(
    result: *const lemon_pull_result,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller guarantees `result` is NULL or a valid result (see # Safety).
        unsafe { repo_field(result, index, |r| &r.repo) }
    })
}

/// 40-hex commit of repository `index` of a successful result; NULL if `result` is NULL or `index`
/// is out of range. Owned by the result, valid until `lemon_pull_result_free`.
///
/// # Safety
/// `result` must be NULL or a result as documented for `lemon_pull_result_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_repo_commit(
    result: *const lemon_pull_result,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller guarantees `result` is NULL or a valid result (see # Safety).
        unsafe { repo_field(result, index, |r| &r.commit) }
    })
}

/// `snapshots/<commit>` folder of repository `index` of a successful result; NULL if `result` is
/// NULL or `index` is out of range. Owned by the result, valid until `lemon_pull_result_free`.
///
/// # Safety
/// `result` must be NULL or a result as documented for `lemon_pull_result_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lemon_pull_result_repo_snapshot_path(
    result: *const lemon_pull_result,
    index: usize,
) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: the caller guarantees `result` is NULL or a valid result (see # Safety).
        unsafe { repo_field(result, index, |r| &r.snapshot_path) }
    })
}

/// A short description of a status ("success", "Download cancelled", ...), or "unknown status" for
/// a value this version does not know. Never NULL. The string is static: never free it.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn lemon_status_str(status: i32) -> *const c_char {
    guard(UNKNOWN_STATUS.as_ptr(), || status_str(status).as_ptr())
}

/// The library version, `MAJOR.MINOR.PATCH`. Static string: never free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn lemon_pull_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The crate version as a static C string.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("CARGO_PKG_VERSION contains a NUL byte"),
    };

/// The body of `lemon_resume_pull`. `make_bridge` builds the progress bridge of a valid request:
/// [`caller_bridge`] in production, a bridge that panics in the tests of the panic guards.
///
/// # Safety
/// As `lemon_resume_pull`.
unsafe fn resume_pull(
    options: *const lemon_pull_options,
    result: *mut lemon_pull_result,
    make_bridge: fn(&Request) -> Bridge,
) -> lemon_status {
    guard(lemon_status::Internal, || {
        // SAFETY: the caller guarantees `result` is NULL or a writable result (see # Safety).
        let Some(slot) = (unsafe { ResultSlot::new(result) }) else {
            return lemon_status::InvalidArgument;
        };
        // Panics are caught here (not only in `guard`) so the result still gets filled.
        // SAFETY: the caller guarantees `options` is NULL or valid as documented (see # Safety).
        let report = catch_unwind(AssertUnwindSafe(|| unsafe {
            run_pull(options, make_bridge)
        }))
        .unwrap_or_else(|payload| Report::panicked(panic_text(payload.as_ref())));
        let status = report.status;
        slot.fill(report);
        status
    })
}

/// The bridge that forwards events to the caller's callback.
fn caller_bridge(req: &Request) -> Bridge {
    Bridge::new(req.callback, req.user_data)
}

/// The pull itself once the result pointer is known to be usable.
///
/// # Safety
/// As `lemon_resume_pull` for `options`.
unsafe fn run_pull(
    options: *const lemon_pull_options,
    make_bridge: fn(&Request) -> Bridge,
) -> Report {
    // SAFETY: forwarded contract.
    let mut req = match unsafe { parse_options(options) } {
        Ok(r) => r,
        Err(message) => {
            return Report::failure(&Error::InvalidArgument(message), Totals::default());
        }
    };
    let lease = attach_flag(&mut req.options, req.cancel_flag);
    let mut bridge = make_bridge(&req);
    let outcome = pull(&req.options, &mut bridge);
    drop(lease);
    match (outcome, bridge.panicked) {
        (Ok(outcome), _) => Report::success(outcome),
        (Err(_), Some(text)) => Report::failure(
            &Error::Internal(format!("panic in progress reporting: {text}")),
            bridge.totals,
        ),
        (Err(e), None) => {
            let mut report = Report::failure(&e, bridge.totals);
            report.bytes_on_disk = bridge.on_disk;
            report
        }
    }
}
