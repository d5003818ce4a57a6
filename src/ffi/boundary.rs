//! The boundary with C: the panic guard, panic texts, and converting strings and arrays between
//! C and Rust.

use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::ptr;
use std::time::Duration;

/// Runs `f`, turning a panic into `on_panic`: unwinding into C is undefined behaviour.
pub(super) fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// The message of a caught panic.
pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// A string for C: cut at an interior NUL (paths are validated, so this cannot happen, but a
/// panic here would be worse than a shortened string).
pub(super) fn owned_c_string(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s.as_bytes()[..end]).unwrap_or_default()
}

/// A path for C, as [`owned_c_string`] (lossy on a non-UTF-8 path).
pub(super) fn path_c_string(p: &Path) -> CString {
    owned_c_string(&p.to_string_lossy())
}

/// Hands a string to C; freed by [`free_raw`].
pub(super) fn into_raw(s: CString) -> *mut c_char {
    s.into_raw()
}

/// Frees a string made by [`into_raw`] and nulls the pointer, so freeing twice is harmless.
pub(super) fn free_raw(p: &mut *mut c_char) {
    if !p.is_null() {
        // SAFETY: every non-NULL string pointer in a result comes from `CString::into_raw` and is
        // nulled right after this, so it is freed exactly once.
        drop(unsafe { CString::from_raw(*p) });
        *p = ptr::null_mut();
    }
}

/// A borrowed C string as an owned `String`; NULL is `None`.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string readable for the duration of the call.
pub(super) unsafe fn opt_string(p: *const c_char, what: &str) -> Result<Option<String>, String> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity.
    let s = unsafe { CStr::from_ptr(p) };
    match s.to_str() {
        Ok(s) => Ok(Some(s.to_string())),
        Err(e) => Err(format!(
            "{what} is not valid UTF-8 (byte {})",
            e.valid_up_to()
        )),
    }
}

/// Like [`opt_string`], but "" is `None` too: for settings where empty means "default".
///
/// # Safety
/// As [`opt_string`].
pub(super) unsafe fn opt_setting(p: *const c_char, what: &str) -> Result<Option<String>, String> {
    // SAFETY: forwarded contract.
    Ok(unsafe { opt_string(p, what) }?.filter(|s| !s.is_empty()))
}

/// A borrowed C string that must be there: NULL is an error.
///
/// # Safety
/// As [`opt_string`].
pub(super) unsafe fn required_string(p: *const c_char, what: &str) -> Result<String, String> {
    // SAFETY: forwarded contract.
    unsafe { opt_string(p, what) }?.ok_or_else(|| format!("{what} is NULL"))
}

/// A C array `(ptr, len)` as a slice; `ptr` may be NULL only when `len` is 0.
///
/// # Safety
/// When `len > 0`, `ptr` must point to `len` readable elements valid for the call.
pub(super) unsafe fn c_array<'a, T>(
    ptr: *const T,
    len: usize,
    what: &str,
) -> Result<&'a [T], String> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(format!("{what} is NULL but {what}_len is {len}"));
    }
    if !ptr.is_aligned() {
        return Err(format!("{what} is not aligned"));
    }
    if len > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(format!("{what}_len {len} is too large"));
    }
    // SAFETY: non-NULL, aligned, size within isize::MAX (checked); the caller guarantees `len`
    // readable elements that stay valid during the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A C array of required strings.
///
/// # Safety
/// As [`c_array`], and each element must be NULL or a valid C string.
pub(super) unsafe fn string_array(
    ptr: *const *const c_char,
    len: usize,
    what: &str,
) -> Result<Vec<String>, String> {
    // SAFETY: forwarded contract.
    let items = unsafe { c_array(ptr, len, what) }?;
    items
        .iter()
        .enumerate()
        // SAFETY: each element is NULL or a valid C string (forwarded contract).
        .map(|(i, &p)| unsafe { required_string(p, &format!("{what}[{i}]")) })
        .collect()
}

/// Copies `s` plus a NUL into `buf` and returns it as a C string; an interior NUL ends it early.
pub(super) fn c_buffer(buf: &mut Vec<u8>, s: &str) -> *const c_char {
    let end = s.find('\0').unwrap_or(s.len());
    buf.clear();
    buf.extend_from_slice(&s.as_bytes()[..end]);
    buf.push(0);
    buf.as_ptr().cast()
}

/// A duration in whole milliseconds for a C field, saturating.
pub(super) fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
