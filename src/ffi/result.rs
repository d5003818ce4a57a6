//! `lemon_pull_result`: what a pull reports, written within the caller's `struct_size`, with the
//! per-repository results behind the opaque `lemon_pull_repos`.

use std::ffi::{CString, c_char};
use std::mem::size_of;
use std::ptr;

use crate::error::Error;
use crate::progress::Totals;
use crate::pull::PullOutcome;

use super::boundary::{free_raw, into_raw, owned_c_string, path_c_string};
use super::status::lemon_status;

/// Per-repository results of a pull, owned by a `lemon_pull_result`. Opaque: read it with
/// `lemon_pull_result_repo_count` and the `lemon_pull_result_repo_*` accessors.
pub struct lemon_pull_repos {
    pub(super) repos: Vec<RepoStrings>,
}

/// One repository of a successful result, as the C strings the accessors return.
pub(super) struct RepoStrings {
    /// `org/name`.
    pub(super) repo: CString,
    /// The 40-hex commit.
    pub(super) commit: CString,
    /// The `snapshots/<commit>` folder.
    pub(super) snapshot_path: CString,
}

/// The outcome of `lemon_resume_pull`, which fills it in every case (except when the result
/// pointer itself is unusable). Owned by the caller's storage; the strings and `repos` are owned by
/// the library and released by `lemon_pull_result_free`, never by `free()`.
///
/// Before the call set it to zero (`lemon_pull_result r = {0};`) or set `struct_size` to
/// `sizeof(lemon_pull_result)`; the library writes only within that size and sets `struct_size` to
/// what it wrote. Previous contents are overwritten, not freed: free a result before reusing it.
#[repr(C)]
pub struct lemon_pull_result {
    /// In: 0 or `sizeof(lemon_pull_result)`. Out: the bytes the library filled.
    pub struct_size: u32,
    /// The `lemon_status` value, also returned by `lemon_resume_pull`.
    pub status: i32,
    /// On success: the main repository's `snapshots/<commit>` folder. NULL on failure.
    pub snapshot_path: *mut c_char,
    /// On success: the main repository's 40-hex commit. NULL on failure.
    pub commit: *mut c_char,
    /// On failure: a message for humans ("Download cancelled" for `LEMON_STATUS_CANCELLED`).
    /// NULL on success.
    pub error_message: *mut c_char,
    /// Bytes fetched over the network in this call (also on failure: up to the failure).
    pub bytes_downloaded: u64,
    /// Bytes not downloaded because they were already on disk (complete files, resumed partials,
    /// salvaged copies).
    pub bytes_reused: u64,
    /// Bytes taken from other snapshot folders (a subset of `bytes_reused`).
    pub bytes_salvaged: u64,
    /// The HTTP status behind the failure, or 0.
    pub http_status: i32,
    /// Files in the pull (all repositories); 0 when the pull failed before planning.
    pub files: u32,
    /// Sum of the sizes of all files in the pull.
    pub total_bytes: u64,
    /// Per-repository results (main repository first); NULL on failure. Use the accessors.
    pub repos: *mut lemon_pull_repos,
    /// 1 when the answer came from the cache alone: `LEMON_PULL_FLAG_OFFLINE`, or the hub could
    /// not be reached and a complete snapshot of the revision was cached (see
    /// `LEMON_PULL_FLAG_NO_CACHE_FALLBACK`); else 0. Added after the first version: written only
    /// when `struct_size` covers it.
    pub from_cache: u32,
    /// Bytes now in the main snapshot folder (complete files and kept partials): on failure or
    /// cancel, what the next call will not download again; on success the snapshot's size.
    /// Written only when `struct_size` covers it.
    pub bytes_on_disk: u64,
    /// Files of a successful pull whose content could be checked by size only, because the
    /// registry listed no hash for them (some ModelScope files; never on Hugging Face); 0 when
    /// every byte was checked against a sha256 or git blob id. Added after the first version:
    /// written only when `struct_size` covers it.
    pub files_not_hash_verified: u32,
}

/// The fields of the first version of `lemon_pull_result`, in its order: what is written for a
/// caller whose `struct_size` is that version's.
#[repr(C)]
struct ResultV1 {
    struct_size: u32,
    status: i32,
    snapshot_path: *mut c_char,
    commit: *mut c_char,
    error_message: *mut c_char,
    bytes_downloaded: u64,
    bytes_reused: u64,
    bytes_salvaged: u64,
    http_status: i32,
    files: u32,
    total_bytes: u64,
    repos: *mut lemon_pull_repos,
}

/// What goes into the result, before any C allocation.
pub(super) struct Report {
    /// The status returned and stored in the result.
    pub(super) status: lemon_status,
    error: Option<String>,
    http_status: i32,
    totals: Totals,
    files: u32,
    outcome: Option<PullOutcome>,
    /// Bytes in the main snapshot folder (see `lemon_pull_result::bytes_on_disk`).
    pub(super) bytes_on_disk: u64,
}

/// Whether the caller's `size` bytes hold the whole of `field`, given its offset and size.
macro_rules! covers {
    ($size:expr, $field:ident, $ty:ty) => {
        std::mem::offset_of!(lemon_pull_result, $field) + size_of::<$ty>() <= $size
    };
}

impl Report {
    /// A failed pull, with the totals reached before the failure.
    pub(super) fn failure(e: &Error, totals: Totals) -> Report {
        Report {
            status: e.status().into(),
            error: Some(e.to_string()),
            http_status: e.http_status().map_or(0, i32::from),
            totals,
            files: totals.total_files,
            outcome: None,
            bytes_on_disk: 0,
        }
    }

    /// A panic caught in the body of `lemon_resume_pull`.
    pub(super) fn panicked(text: String) -> Report {
        Report::failure(
            &Error::Internal(format!("panic: {text}")),
            Totals::default(),
        )
    }

    /// A successful pull.
    pub(super) fn success(outcome: PullOutcome) -> Report {
        Report {
            status: lemon_status::Ok,
            error: None,
            http_status: 0,
            totals: outcome.totals,
            files: outcome.files,
            bytes_on_disk: outcome.totals.total_bytes,
            outcome: Some(outcome),
        }
    }
}

/// A caller's result struct that the library may write to.
pub(super) struct ResultSlot {
    p: *mut lemon_pull_result,
    /// Bytes of the caller's struct that may be written (0 from the caller = all of this version).
    size: usize,
}

/// The result layout of the first version: the smallest nonzero `struct_size` accepted. Later
/// versions append fields and write them only when the caller's `struct_size` covers them.
pub(super) const RESULT_V1_SIZE: usize = size_of::<ResultV1>();
const _: () = assert!(RESULT_V1_SIZE == std::mem::offset_of!(lemon_pull_result, from_cache));

impl ResultSlot {
    /// `None` when the pointer is NULL, misaligned, or declares a size too small to fill.
    ///
    /// # Safety
    /// `p` must be NULL or point to a readable and writable `lemon_pull_result`.
    pub(super) unsafe fn new(p: *mut lemon_pull_result) -> Option<ResultSlot> {
        if p.is_null() || !p.is_aligned() {
            return None;
        }
        // SAFETY: non-NULL and aligned; the caller guarantees a readable struct.
        let size = unsafe { ptr::addr_of!((*p).struct_size).read() } as usize;
        let size = if size == 0 {
            size_of::<lemon_pull_result>()
        } else {
            size.min(size_of::<lemon_pull_result>())
        };
        (size >= RESULT_V1_SIZE).then_some(ResultSlot { p, size })
    }

    /// Overwrites the result with `report`, allocating its strings.
    pub(super) fn fill(&self, report: Report) {
        let (snapshot_path, commit, repos) = match &report.outcome {
            Some(o) => (
                into_raw(path_c_string(&o.snapshot_path)),
                into_raw(owned_c_string(&o.commit)),
                Box::into_raw(Box::new(repos_of_outcome(o))),
            ),
            None => (ptr::null_mut(), ptr::null_mut(), ptr::null_mut()),
        };
        let from_cache = report.outcome.as_ref().is_some_and(|o| o.from_cache);
        let not_hash_verified = report.outcome.as_ref().map_or(0, |o| {
            o.plan.iter().filter(|f| !f.hash_verified).count() as u32
        });
        let value = ResultV1 {
            // What this call wrote: the caller's struct, as far as this version knows it.
            struct_size: self.size as u32,
            status: report.status as i32,
            snapshot_path,
            commit,
            error_message: report
                .error
                .as_deref()
                .map_or(ptr::null_mut(), |m| into_raw(owned_c_string(m))),
            bytes_downloaded: report.totals.bytes_downloaded,
            bytes_reused: report.totals.bytes_reused,
            bytes_salvaged: report.totals.bytes_salvaged,
            http_status: report.http_status,
            files: report.files,
            total_bytes: report.totals.total_bytes,
            repos,
        };
        // SAFETY: `new` checked the pointer and that the caller's struct holds the v1 layout,
        // which `ResultV1` mirrors field for field (repr(C), same order: checked at compile time
        // above); `write` does not drop the old contents (documented as overwritten, not freed).
        unsafe { self.p.cast::<ResultV1>().write(value) };
        // Each later field is written when the caller's struct holds it, so a caller built
        // against any earlier header gets every field it knows.
        if covers!(self.size, from_cache, u32) {
            // SAFETY: the field lies within the caller's `size` writable bytes.
            unsafe { ptr::addr_of_mut!((*self.p).from_cache).write(u32::from(from_cache)) };
        }
        if covers!(self.size, bytes_on_disk, u64) {
            // SAFETY: as above.
            unsafe { ptr::addr_of_mut!((*self.p).bytes_on_disk).write(report.bytes_on_disk) };
        }
        if covers!(self.size, files_not_hash_verified, u32) {
            // SAFETY: as above.
            unsafe {
                ptr::addr_of_mut!((*self.p).files_not_hash_verified).write(not_hash_verified)
            };
        }
    }

    /// Frees the owned pointers and nulls them; idempotent.
    pub(super) fn release(&self) {
        // SAFETY: `new` checked the pointer; the caller guarantees it is a zeroed or filled result
        // not used concurrently, so a unique reference is sound for this call.
        let r = unsafe { &mut *self.p.cast::<ResultV1>() };
        free_raw(&mut r.snapshot_path);
        free_raw(&mut r.commit);
        free_raw(&mut r.error_message);
        if !r.repos.is_null() {
            // SAFETY: a non-NULL `repos` comes from `Box::into_raw` in `fill` and is nulled right
            // after this, so it is freed exactly once.
            drop(unsafe { Box::from_raw(r.repos) });
            r.repos = ptr::null_mut();
        }
    }
}

/// The per-repository strings of a successful pull.
fn repos_of_outcome(o: &PullOutcome) -> lemon_pull_repos {
    lemon_pull_repos {
        repos: o
            .repos
            .iter()
            .map(|r| RepoStrings {
                repo: owned_c_string(&r.repo),
                commit: owned_c_string(&r.commit),
                snapshot_path: path_c_string(&r.snapshot_path),
            })
            .collect(),
    }
}

/// The per-repository data of a result, if any.
///
/// # Safety
/// `result` must be NULL or a zeroed or filled result, not being freed concurrently.
pub(super) unsafe fn repos_of<'a>(
    result: *const lemon_pull_result,
) -> Option<&'a lemon_pull_repos> {
    if result.is_null() || !result.is_aligned() {
        return None;
    }
    // SAFETY: non-NULL and aligned; the caller guarantees a valid result.
    let repos = unsafe { ptr::addr_of!((*result).repos).read() };
    // SAFETY: a non-NULL `repos` was made by `fill` and lives until `lemon_pull_result_free`.
    unsafe { repos.as_ref() }
}

/// One string of repository `index` of a result, or NULL.
///
/// # Safety
/// As [`repos_of`].
pub(super) unsafe fn repo_field(
    result: *const lemon_pull_result,
    index: usize,
    pick: impl Fn(&RepoStrings) -> &CString,
) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { repos_of(result) }
        .and_then(|r| r.repos.get(index))
        .map_or(ptr::null(), |r| pick(r).as_ptr())
}
