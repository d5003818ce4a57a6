//! The caller's `cancel_flag`: read with volatile loads, only while `lemon_resume_pull` runs.

use std::ptr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::options::PullOptions;

/// The caller's `cancel_flag`, polled from the pull's threads. It may only be read while
/// `lemon_resume_pull` runs, so reads happen under a lock that [`FlagLease`] closes on return:
/// even a clone of the check that outlived the pull could not touch the caller's memory.
struct CancelFlag {
    ptr: *const i32,
    live: Mutex<bool>,
}

// SAFETY: the pointer is only dereferenced in `is_set`, under `live`, while `lemon_resume_pull`
// runs; the caller guarantees the flag stays valid and aligned for that time and may write it from
// any thread, which is why it is read with a volatile load rather than through a reference.
unsafe impl Send for CancelFlag {}
// SAFETY: as for `Send`: shared access only performs volatile reads under the mutex.
unsafe impl Sync for CancelFlag {}

impl CancelFlag {
    fn is_set(&self) -> bool {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: `live` is true only until `lemon_resume_pull` returns, while the caller keeps the
        // flag valid; the pointer is non-NULL and aligned (checked in `parse_options`).
        *live && unsafe { ptr::read_volatile(self.ptr) } != 0
    }
}

/// Ends the flag's readable period when dropped (also on unwind).
pub(super) struct FlagLease(Arc<CancelFlag>);

impl Drop for FlagLease {
    fn drop(&mut self) {
        *self.0.live.lock().unwrap_or_else(PoisonError::into_inner) = false;
    }
}

/// Hooks the caller's flag (if any) into the pull's cancel checks.
pub(super) fn attach_flag(options: &mut PullOptions, flag: *const i32) -> Option<FlagLease> {
    if flag.is_null() {
        return None;
    }
    let shared = Arc::new(CancelFlag {
        ptr: flag,
        live: Mutex::new(true),
    });
    let reader = Arc::clone(&shared);
    options.cancel_check = Some(Arc::new(move || reader.is_set()));
    Some(FlagLease(shared))
}
