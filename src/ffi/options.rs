//! `lemon_pull_options` and the arrays it points to (`lemon_component`, `lemon_pull_file`,
//! `lemon_pull_repo`), its flags, reading it within the caller's `struct_size`, and converting it
//! into the core's `PullOptions`.

use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::ptr;
use std::time::Duration;

use crate::options::{
    Component, DEFAULT_API_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DNS_TIMEOUT, FileSpec,
    MAX_CONNECTIONS, PullOptions, RepoSpec, RetryPolicy,
};
use crate::registry::Registry;

use super::boundary::{c_array, millis, opt_setting, opt_string, required_string, string_array};
use super::progress::lemon_progress_cb;

/// Bits of `lemon_pull_options.flags`. Unknown bits are rejected with `LEMON_STATUS_INVALID_ARGUMENT`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lemon_pull_flag {
    /// Plan only: resolve and report where every byte would come from, write nothing. The result's
    /// `snapshot_path` and `commit` name the snapshot a real pull would fill.
    DryRun = 1,
    /// Answer from the cache alone, without any network call (as `HF_HUB_OFFLINE=1` does when
    /// `READ_ENVIRONMENT` is set too): the snapshot `refs/<revision>` names must be complete and
    /// verify, else `LEMON_STATUS_NOT_CACHED`. Added after the first version.
    Offline = 2,
    /// Read the environment as huggingface_hub does, for every option left NULL/0: `HF_TOKEN`,
    /// `HUGGING_FACE_HUB_TOKEN`, `HF_TOKEN_PATH` and the token file (unless
    /// `HF_HUB_DISABLE_IMPLICIT_TOKEN`), `HF_ENDPOINT`, `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`,
    /// `HF_HOME`, `XDG_CACHE_HOME`, `HOME` (`USERPROFILE` on Windows), `HF_HUB_OFFLINE`,
    /// `HF_HUB_DOWNLOAD_TIMEOUT`, `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`,
    /// `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY` (either case) and `NO_PROXY`. Without it the call
    /// reads no environment variable and no file outside the cache and `ca_bundle`: a server
    /// embedding the library gets exactly what it passed. The `resume-pull` CLI sets it.
    ReadEnvironment = 4,
    /// When the hub cannot be reached, fail with `LEMON_STATUS_NETWORK` instead of answering
    /// from a complete cached snapshot (for callers that need the hub's current answer).
    NoCacheFallback = 8,
    /// lemonade's rule when `refs/<revision>` moved: if every selected file at the new commit is
    /// identical (same content ids, none added or dropped) to the verified copy in the snapshot
    /// the ref names now, keep that snapshot active: the ref stays, no new folder is made, and the
    /// result's paths name the kept snapshot. Costs one listing call when the ref moved.
    KeepUnchangedSnapshot = 16,
}

/// Values of `lemon_pull_options.registry`: where the repositories of the pull live. Unknown
/// values are rejected with `LEMON_STATUS_INVALID_ARGUMENT`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lemon_pull_registry {
    /// The Hugging Face Hub (the default): `models--org--name`, snapshots named by commit.
    HuggingFace = 0,
    /// ModelScope, as lemonade uses it: `modelscope--models--org--name`, snapshots named by
    /// lemonade's tree fingerprint (`modelscope-<revision>-<16 hex>`), default revision `master`
    /// (recorded in `refs/main`, as lemonade does), default endpoint `https://modelscope.cn`, the
    /// token sent as `Authorization: Bearer` and as the `m_session_id` cookie. A file listed
    /// without a sha256 is checked by size only (`lemon_pull_result.files_not_hash_verified`).
    Modelscope = 1,
}

/// All flag bits this version understands.
const KNOWN_FLAGS: u32 = lemon_pull_flag::DryRun as u32
    | lemon_pull_flag::Offline as u32
    | lemon_pull_flag::ReadEnvironment as u32
    | lemon_pull_flag::NoCacheFallback as u32
    | lemon_pull_flag::KeepUnchangedSnapshot as u32;

/// Stands for `volatile int32_t` in the header (cbindgen renames it; Rust has no volatile type).
/// The flag is read with volatile loads.
pub type lemon_volatile_i32 = i32;

/// A file from another repository pulled in the same call (lemonade's auxiliary checkpoints: a
/// VAE, a text encoder, an mmproj). It lands in that repository's own `models--org--name` folder and its
/// bytes count in the same progress stream and totals. This struct is frozen (it is used in arrays).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lemon_component {
    /// Repository id, `org/name`. Required.
    pub repo_id: *const c_char,
    /// Exact repo-relative path of the file. Required.
    pub path: *const c_char,
    /// Revision; NULL or "" = `main`.
    pub revision: *const c_char,
}

/// One exact repository path (no glob meaning: `*`, `[` and spaces are plain characters), with
/// what the caller already knows of it. When a pinned repository's files all carry a size and a
/// content id, the call makes no listing request; every byte is verified against the id either
/// way. This struct is frozen (it is used in arrays).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lemon_pull_file {
    /// Repo-relative path ("a/b.gguf"). Required.
    pub path: *const c_char,
    /// Size in bytes, or -1 when unknown.
    pub size: i64,
    /// sha256 of an LFS file (64 hex), or NULL / "" when unknown.
    pub sha256: *const c_char,
    /// Git blob sha1 of a regular file (40 hex), or NULL / "" when unknown.
    pub git_sha1: *const c_char,
}

/// An extra repository pulled exactly in the same call, in its own `models--org--name` folder
/// with its own snapshot and ref (lemonade's auxiliary checkpoints, with the commit and the files
/// it selected). This struct is frozen (it is used in arrays).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lemon_pull_repo {
    /// Repository id, `org/name`. Required.
    pub repo_id: *const c_char,
    /// The ref written on success; NULL or "" = `main`.
    pub revision: *const c_char,
    /// Pin: pull exactly this 40-hex commit and point `refs/<revision>` at it; NULL or "" =
    /// resolve `revision`.
    pub commit: *const c_char,
    /// The exact files to pull (at least one).
    pub files: *const lemon_pull_file,
    /// Number of `files`.
    pub files_len: usize,
}

/// What to pull. Fill it with `lemon_pull_options_init`, then set fields. Every pointer is borrowed
/// for the duration of `lemon_resume_pull` only (strings are copied; nothing is kept afterwards).
/// Strings are NUL-terminated UTF-8.
///
/// Versioning: `struct_size` tells the library how many bytes of this struct the caller has; fields
/// at or past it are never read and take their defaults, so code built against an older header
/// keeps working. It must cover at least `struct_size` and `repo_id`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct lemon_pull_options {
    /// `sizeof(lemon_pull_options)` as the caller compiled it (set by `lemon_pull_options_init`).
    pub struct_size: u32,
    /// `org/name`, optionally `org/name:VARIANT`. Required.
    pub repo_id: *const c_char,
    /// Branch, tag, full commit or `refs/pr/N`; NULL or "" = `main`.
    pub revision: *const c_char,
    /// Cache root (absolute path). Required, unless `LEMON_PULL_FLAG_READ_ENVIRONMENT` is set:
    /// then NULL or "" = `HF_HUB_CACHE`, `HF_HOME`... or `~/.cache/huggingface/hub`. lemonade
    /// passes its own cache folder here.
    pub cache_dir: *const c_char,
    /// Hub endpoint; NULL or "" = `https://huggingface.co` (with
    /// `LEMON_PULL_FLAG_READ_ENVIRONMENT`: `HF_ENDPOINT` first).
    pub endpoint: *const c_char,
    /// Access token; NULL or "" = anonymous. With `LEMON_PULL_FLAG_READ_ENVIRONMENT`, NULL =
    /// `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN` or the token file (as huggingface_hub), "" = anonymous.
    pub token: *const c_char,
    /// Glob patterns a file must match (any of them); may be NULL when `include_len` is 0.
    pub include: *const *const c_char,
    /// Number of entries in `include`.
    pub include_len: usize,
    /// Glob patterns that drop a file; may be NULL when `exclude_len` is 0.
    pub exclude: *const *const c_char,
    /// Number of entries in `exclude`.
    pub exclude_len: usize,
    /// GGUF variant (`Q4_K_M`) or exact model file; NULL or "" = none (all files, or `include`).
    pub variant: *const c_char,
    /// Progress callback, or NULL.
    pub progress_cb: lemon_progress_cb,
    /// Passed to `progress_cb` untouched.
    pub user_data: *mut c_void,
    /// Cancel flag polled about every 50 ms (also inside blocked network reads, backoff sleeps,
    /// hashing and lock waits); nonzero = cancel. May be NULL. It may be set from any thread; it
    /// must stay valid until `lemon_resume_pull` returns and is never read afterwards. From C++,
    /// point it at a lock-free `std::atomic<int32_t>`.
    pub cancel_flag: *const lemon_volatile_i32,
    /// Files from other repositories pulled in the same call; may be NULL when `components_len` is 0.
    pub components: *const lemon_component,
    /// Number of entries in `components`.
    pub components_len: usize,
    /// Retries after the first attempt of a request (reset by an attempt that brought at least
    /// 1 MiB or 2 s of data; one cut short sooner counts as a failure). Default 10; 0 = no retry.
    pub max_retries: u32,
    /// First backoff delay in ms (doubles each retry, with jitter); 0 = default 2000.
    pub initial_retry_delay_ms: u32,
    /// Cap on one backoff delay in ms (also caps `Retry-After`); 0 = default 120000.
    pub max_retry_delay_ms: u32,
    /// Cap on the total backoff time of one request in ms; 0 = default 600000.
    pub max_total_retry_wait_ms: u32,
    /// Connect timeout per attempt in ms; 0 = default 60000.
    pub connect_timeout_ms: u32,
    /// A body read that sees no byte for this long is abandoned and retried from the current
    /// offset, in ms; 0 (what init sets) = 60000 (with `LEMON_PULL_FLAG_READ_ENVIRONMENT`:
    /// `HF_HUB_DOWNLOAD_TIMEOUT` seconds if set when the pull starts).
    pub stall_timeout_ms: u32,
    /// Timeout of one metadata (API) request in ms; 0 = default 600000.
    pub api_timeout_ms: u32,
    /// `lemon_pull_flag` bits; 0 = none.
    pub flags: u32,
    /// Ranged connections per file. 0 (what init sets, and what a caller whose `struct_size` ends
    /// before this field gets) = auto: each file of at least 16 MiB starts with one connection
    /// and doubles them while that raises the rate by 10% or more, up to 16 (on a link one
    /// connection fills it stays at one; under a per-connection cap, as CDNs apply, it grows).
    /// 1 fetches each file over one connection; more fetches a file of at least 16 MiB in pieces
    /// by up to this many connections at once (at most 64; larger values are capped). The
    /// connections run on threads that end before `lemon_resume_pull` returns: at most this many
    /// (16 for auto) plus the calling thread and one more. A partial written by several
    /// connections has holes and is resumed only by this library: keep the `.partial` for it.
    pub connections: u32,
    /// Bandwidth cap over all connections of the pull, in bytes per second (lemonade's tray
    /// setting); 0 = unlimited. Added after the first version, like the fields below: read only
    /// when `struct_size` covers it.
    pub max_bytes_per_sec: u64,
    /// CA bundle trusted for https instead of the default roots: a PEM file, a DER certificate or
    /// a folder of them (for corporate TLS inspection). NULL or "" = the operating system's trust
    /// store (with `LEMON_PULL_FLAG_READ_ENVIRONMENT`: `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`,
    /// `CURL_CA_BUNDLE` first). A bundle
    /// that cannot be read or holds no certificate fails the call with
    /// `LEMON_STATUS_INVALID_ARGUMENT`.
    pub ca_bundle: *const c_char,
    /// Pin: pull exactly this 40-hex commit of `repo_id` (what the caller listed and selected
    /// from), even if `revision` has moved since; on success `refs/<revision>` (default `main`)
    /// names it. NULL or "" = resolve `revision`. Added after the first version, like the fields
    /// below: read only when `struct_size` covers it.
    pub commit: *const c_char,
    /// Exact files of `repo_id` to pull instead of a selection (`include`, `exclude` and the
    /// variant must then be empty); a file not at the commit fails the call with
    /// `LEMON_STATUS_FILE_NOT_FOUND` naming it. May be NULL when `files_len` is 0.
    pub files: *const lemon_pull_file,
    /// Number of `files`.
    pub files_len: usize,
    /// Extra repositories pulled exactly; may be NULL when `repos_len` is 0.
    pub repos: *const lemon_pull_repo,
    /// Number of `repos`.
    pub repos_len: usize,
    /// HTTP proxy for every request (`http://host:port`, optionally with `user:password@`); NULL
    /// or "" = direct (with `LEMON_PULL_FLAG_READ_ENVIRONMENT`: `ALL_PROXY`, `HTTPS_PROXY`,
    /// `HTTP_PROXY`, minus `NO_PROXY`).
    pub proxy: *const c_char,
    /// Limit on one host name lookup in ms (all nameservers, tries and search domains together);
    /// 0 = default 10000. A lookup without an answer in time fails as an unreachable hub
    /// ("host name not resolved"), so the cache fallback can answer. On Unix the library resolves
    /// names itself, inside the call (no thread outlives it), from `/etc/hosts` and
    /// `/etc/resolv.conf`, and a cancel interrupts a lookup within about 50 ms. On Windows the
    /// system's lookup is used, which neither this limit nor a cancel can interrupt (unverified).
    /// Added after the first version: read only when `struct_size` covers it.
    pub dns_timeout_ms: u32,
    /// A `lemon_pull_registry` value; 0 = Hugging Face. Applies to `repo_id`, `components` and
    /// `repos` alike (lemonade: one registry per model). With `LEMON_PULL_FLAG_READ_ENVIRONMENT`,
    /// a ModelScope pull reads `MODELSCOPE_ENDPOINT` and `MODELSCOPE_API_TOKEN` /
    /// `MODELSCOPE_ACCESS_TOKEN` instead of the `HF_` ones. On ModelScope, `commit` is the tree
    /// fingerprint of the caller's listing. Added after the first version: read only when
    /// `struct_size` covers it.
    pub registry: u32,
}

/// The smallest `struct_size` accepted: `struct_size` itself and `repo_id`.
pub(super) const MIN_OPTIONS_SIZE: usize =
    offset_of!(lemon_pull_options, repo_id) + size_of::<*const c_char>();

impl lemon_pull_options {
    /// What `lemon_pull_options_init` writes.
    pub(super) fn defaults() -> Self {
        let retry = RetryPolicy::default();
        lemon_pull_options {
            struct_size: size_of::<lemon_pull_options>() as u32,
            repo_id: ptr::null(),
            revision: ptr::null(),
            cache_dir: ptr::null(),
            endpoint: ptr::null(),
            token: ptr::null(),
            include: ptr::null(),
            include_len: 0,
            exclude: ptr::null(),
            exclude_len: 0,
            variant: ptr::null(),
            progress_cb: None,
            user_data: ptr::null_mut(),
            cancel_flag: ptr::null(),
            components: ptr::null(),
            components_len: 0,
            max_retries: retry.max_retries,
            initial_retry_delay_ms: millis(retry.initial_delay),
            max_retry_delay_ms: millis(retry.max_delay),
            max_total_retry_wait_ms: millis(retry.max_total_wait),
            connect_timeout_ms: millis(DEFAULT_CONNECT_TIMEOUT),
            // 0: resolved when the pull starts (60 s, or `HF_HUB_DOWNLOAD_TIMEOUT` when the pull
            // reads the environment), so that init reads no environment.
            stall_timeout_ms: 0,
            api_timeout_ms: millis(DEFAULT_API_TIMEOUT),
            flags: 0,
            connections: 0,
            max_bytes_per_sec: 0,
            ca_bundle: ptr::null(),
            commit: ptr::null(),
            files: ptr::null(),
            files_len: 0,
            repos: ptr::null(),
            repos_len: 0,
            proxy: ptr::null(),
            dns_timeout_ms: millis(DEFAULT_DNS_TIMEOUT),
            registry: lemon_pull_registry::HuggingFace as u32,
        }
    }
}

/// `ms` as a duration; 0 keeps the default (so a zeroed struct gets sane timeouts).
fn ms_or(ms: u32, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(u64::from(ms))
    }
}

/// Copies the caller's options field by field, reading only fields that end within the caller's
/// `struct_size`; the others keep their defaults. Never reads past `struct_size` bytes.
///
/// # Safety
/// `p` must be non-NULL, aligned, and readable for `(*p).struct_size` bytes (at least 4).
pub(super) unsafe fn read_options(
    p: *const lemon_pull_options,
) -> Result<lemon_pull_options, String> {
    // SAFETY: `struct_size` is the first field and the caller guarantees at least it is readable.
    let size = unsafe { ptr::addr_of!((*p).struct_size).read() };
    let declared = size as usize;
    if declared < MIN_OPTIONS_SIZE {
        return Err(format!(
            "options->struct_size is {size}, smaller than the minimum {MIN_OPTIONS_SIZE} \
             (call lemon_pull_options_init)"
        ));
    }
    let mut out = lemon_pull_options::defaults();
    out.struct_size = size;
    macro_rules! copy_if_present {
        ($($field:ident),* $(,)?) => {$(
            if offset_of!(lemon_pull_options, $field) + size_of_field(&out.$field) <= declared {
                // SAFETY: the field ends within the `declared` bytes the caller made readable; the
                // place is projected from the raw pointer without creating a reference to the
                // (possibly shorter) whole struct, and every field type is valid for any bit
                // pattern a C caller can store there (pointers, integers, Option<fn>).
                out.$field = unsafe { ptr::addr_of!((*p).$field).read() };
            }
        )*};
    }
    copy_if_present!(
        repo_id,
        revision,
        cache_dir,
        endpoint,
        token,
        include,
        include_len,
        exclude,
        exclude_len,
        variant,
        progress_cb,
        user_data,
        cancel_flag,
        components,
        components_len,
        max_retries,
        initial_retry_delay_ms,
        max_retry_delay_ms,
        max_total_retry_wait_ms,
        connect_timeout_ms,
        stall_timeout_ms,
        api_timeout_ms,
        flags,
        connections,
        max_bytes_per_sec,
        ca_bundle,
        commit,
        files,
        files_len,
        repos,
        repos_len,
        proxy,
        dns_timeout_ms,
        registry,
    );
    Ok(out)
}

/// The size of a field's type, named through the field (for `copy_if_present!` above).
fn size_of_field<T>(_: &T) -> usize {
    size_of::<T>()
}

/// # Safety
/// As [`c_array`], with valid strings in every element.
unsafe fn components(ptr: *const lemon_component, len: usize) -> Result<Vec<Component>, String> {
    // SAFETY: forwarded contract.
    let items = unsafe { c_array(ptr, len, "components") }?;
    items
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // SAFETY: the component's strings are NULL or valid C strings (forwarded contract).
            unsafe {
                Ok(Component {
                    repo: required_string(c.repo_id, &format!("components[{i}].repo_id"))?,
                    path: required_string(c.path, &format!("components[{i}].path"))?,
                    revision: opt_setting(c.revision, &format!("components[{i}].revision"))?,
                })
            }
        })
        .collect()
}

/// # Safety
/// `ptr` is NULL (with `len` 0) or points to `len` valid `lemon_pull_file`s whose strings are NULL
/// or valid C strings.
unsafe fn file_specs(
    ptr: *const lemon_pull_file,
    len: usize,
    what: &str,
) -> Result<Vec<FileSpec>, String> {
    // SAFETY: forwarded contract.
    let items = unsafe { c_array(ptr, len, what) }?;
    items
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let size = match f.size {
                -1 => None,
                n => Some(u64::try_from(n).map_err(|_| format!("{what}[{i}].size is {n}"))?),
            };
            // SAFETY: the file's strings are NULL or valid C strings (forwarded contract).
            unsafe {
                Ok(FileSpec {
                    path: required_string(f.path, &format!("{what}[{i}].path"))?,
                    size,
                    sha256: opt_setting(f.sha256, &format!("{what}[{i}].sha256"))?,
                    git_sha1: opt_setting(f.git_sha1, &format!("{what}[{i}].git_sha1"))?,
                })
            }
        })
        .collect()
}

/// # Safety
/// `ptr` is NULL (with `len` 0) or points to `len` valid `lemon_pull_repo`s (see `file_specs`).
unsafe fn repo_specs(ptr: *const lemon_pull_repo, len: usize) -> Result<Vec<RepoSpec>, String> {
    // SAFETY: forwarded contract.
    let items = unsafe { c_array(ptr, len, "repos") }?;
    items
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // SAFETY: the repository's strings and files are valid (forwarded contract).
            unsafe {
                Ok(RepoSpec {
                    repo: required_string(r.repo_id, &format!("repos[{i}].repo_id"))?,
                    revision: opt_setting(r.revision, &format!("repos[{i}].revision"))?,
                    commit: opt_setting(r.commit, &format!("repos[{i}].commit"))?,
                    files: file_specs(r.files, r.files_len, &format!("repos[{i}].files"))?,
                })
            }
        })
        .collect()
}

/// Everything `lemon_resume_pull` needs, converted from C.
pub(super) struct Request {
    /// The core's options.
    pub(super) options: PullOptions,
    /// The caller's progress callback.
    pub(super) callback: lemon_progress_cb,
    /// Passed to `callback` untouched.
    pub(super) user_data: *mut c_void,
    /// The caller's cancel flag, NULL or aligned.
    pub(super) cancel_flag: *const i32,
}

/// Validates and converts the caller's options.
///
/// # Safety
/// `p` must be NULL or valid as documented on `lemon_resume_pull`.
pub(super) unsafe fn parse_options(p: *const lemon_pull_options) -> Result<Request, String> {
    if p.is_null() {
        return Err("options is NULL".to_string());
    }
    if !p.is_aligned() {
        return Err("options is not aligned".to_string());
    }
    // SAFETY: non-NULL and aligned; the caller guarantees `struct_size` readable bytes.
    let raw = unsafe { read_options(p) }?;
    if raw.flags & !KNOWN_FLAGS != 0 {
        return Err(format!("unknown flags 0x{:x}", raw.flags & !KNOWN_FLAGS));
    }
    if !raw.cancel_flag.is_null() && !raw.cancel_flag.is_aligned() {
        return Err("cancel_flag is not aligned".to_string());
    }
    // SAFETY: every pointer below is NULL or valid per the documented contract of the options.
    let mut o = unsafe { PullOptions::new(required_string(raw.repo_id, "repo_id")?) };
    // SAFETY: as above.
    unsafe {
        o.revision = opt_setting(raw.revision, "revision")?;
        o.cache_dir = opt_setting(raw.cache_dir, "cache_dir")?.map(PathBuf::from);
        o.endpoint = opt_setting(raw.endpoint, "endpoint")?;
        // "" is kept: an explicit empty token means anonymous even when reading the environment.
        o.token = opt_string(raw.token, "token")?;
        o.include = string_array(raw.include, raw.include_len, "include")?;
        o.exclude = string_array(raw.exclude, raw.exclude_len, "exclude")?;
        o.variant = opt_setting(raw.variant, "variant")?;
        o.components = components(raw.components, raw.components_len)?;
        o.ca_bundle = opt_setting(raw.ca_bundle, "ca_bundle")?.map(PathBuf::from);
        o.commit = opt_setting(raw.commit, "commit")?;
        o.files = file_specs(raw.files, raw.files_len, "files")?;
        o.repos = repo_specs(raw.repos, raw.repos_len)?;
        o.proxy = opt_setting(raw.proxy, "proxy")?;
    }
    let defaults = RetryPolicy::default();
    o.retry = RetryPolicy {
        max_retries: raw.max_retries,
        initial_delay: ms_or(raw.initial_retry_delay_ms, defaults.initial_delay),
        max_delay: ms_or(raw.max_retry_delay_ms, defaults.max_delay),
        max_total_wait: ms_or(raw.max_total_retry_wait_ms, defaults.max_total_wait),
    };
    o.connect_timeout = ms_or(raw.connect_timeout_ms, o.connect_timeout);
    o.stall_timeout = ms_or(raw.stall_timeout_ms, o.stall_timeout);
    o.api_timeout = ms_or(raw.api_timeout_ms, o.api_timeout);
    o.dns_timeout = ms_or(raw.dns_timeout_ms, o.dns_timeout);
    o.registry = match raw.registry {
        r if r == lemon_pull_registry::HuggingFace as u32 => Registry::HuggingFace,
        r if r == lemon_pull_registry::Modelscope as u32 => Registry::ModelScope,
        other => return Err(format!("unknown registry {other}")),
    };
    o.dry_run = raw.flags & lemon_pull_flag::DryRun as u32 != 0;
    o.offline = raw.flags & lemon_pull_flag::Offline as u32 != 0;
    o.read_environment = raw.flags & lemon_pull_flag::ReadEnvironment as u32 != 0;
    o.cache_fallback = raw.flags & lemon_pull_flag::NoCacheFallback as u32 == 0;
    o.keep_unchanged_snapshot = raw.flags & lemon_pull_flag::KeepUnchangedSnapshot as u32 != 0;
    // 0 stays 0: auto (`crate::AUTO_CONNECTIONS`).
    o.connections = raw.connections.min(MAX_CONNECTIONS);
    o.max_bytes_per_sec = (raw.max_bytes_per_sec > 0).then_some(raw.max_bytes_per_sec);
    Ok(Request {
        options: o,
        callback: raw.progress_cb,
        user_data: raw.user_data,
        cancel_flag: raw.cancel_flag,
    })
}
