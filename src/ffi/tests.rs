//! Unit tests of the C ABI, calling the exported functions as C would.

use super::options::{MIN_OPTIONS_SIZE, parse_options, read_options};
use super::progress::Bridge;
use super::result::{RESULT_V1_SIZE, Report, ResultSlot};
use super::*;
use crate::error::Status;
use crate::options::DEFAULT_DNS_TIMEOUT;
use crate::options::MAX_CONNECTIONS;
use crate::progress::{Event, FileInfo, Flow, Observer, Totals};
use crate::pull::PullOutcome;
use std::ffi::{CString, c_void};
use std::mem::{offset_of, size_of};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The panic the seams below inject.
const INJECTED: &str = "injected test panic";

/// A bridge factory for `resume_pull` that panics in the body of `lemon_resume_pull`.
fn panic_in_run(_: &Request) -> Bridge {
    panic!("{INJECTED}")
}

/// A bridge factory for `resume_pull` whose bridge panics on the first event it delivers.
fn panic_in_bridge(_: &Request) -> Bridge {
    Bridge::with_sink(Some(Box::new(|_| panic!("{INJECTED}"))))
}

/// `lemon_resume_pull` with a test bridge: returns (status, result), freeing nothing.
fn call_with(
    o: *const lemon_pull_options,
    make_bridge: fn(&Request) -> Bridge,
) -> (lemon_status, lemon_pull_result) {
    let mut r = zeroed_result();
    // SAFETY: `o` is a valid options struct built by the test; `r` is zeroed.
    let s = unsafe { resume_pull(o, &mut r, make_bridge) };
    (s, r)
}

fn status_of(code: i32) -> String {
    // SAFETY: lemon_status_str never returns NULL and returns a static C string.
    unsafe { CStr::from_ptr(lemon_status_str(code)) }
        .to_str()
        .expect("utf-8")
        .to_string()
}

fn zeroed_result() -> lemon_pull_result {
    lemon_pull_result {
        struct_size: 0,
        status: -1,
        snapshot_path: ptr::null_mut(),
        commit: ptr::null_mut(),
        error_message: ptr::null_mut(),
        bytes_downloaded: 0,
        bytes_reused: 0,
        bytes_salvaged: 0,
        http_status: 0,
        files: 0,
        total_bytes: 0,
        repos: ptr::null_mut(),
        from_cache: 7,
        bytes_on_disk: 7,
        files_not_hash_verified: 7,
    }
}

fn init_options() -> lemon_pull_options {
    let mut o = std::mem::MaybeUninit::<lemon_pull_options>::uninit();
    // SAFETY: `o` is writable for the whole struct; init writes every field.
    unsafe {
        lemon_pull_options_init(o.as_mut_ptr());
        o.assume_init()
    }
}

fn message(r: &lemon_pull_result) -> String {
    assert!(!r.error_message.is_null(), "no error message");
    // SAFETY: a non-NULL error_message is a C string owned by the result.
    unsafe { CStr::from_ptr(r.error_message) }
        .to_string_lossy()
        .into_owned()
}

/// Runs a pull and returns (status, result), freeing nothing.
fn call(o: *const lemon_pull_options) -> (lemon_status, lemon_pull_result) {
    let mut r = zeroed_result();
    // SAFETY: `o` is NULL or a valid options struct built by the test; `r` is zeroed.
    let s = unsafe { lemon_resume_pull(o, &mut r) };
    (s, r)
}

#[test]
fn result_fields_past_the_callers_struct_size_are_never_written() {
    let o = init_options();
    // A first-version caller: its struct ends before `from_cache`.
    let mut r = zeroed_result();
    r.struct_size = RESULT_V1_SIZE as u32;
    // SAFETY: `o` comes from init (repo_id NULL: invalid, which still fills the result).
    let s = unsafe { lemon_resume_pull(&o, &mut r) };
    assert_eq!(s, lemon_status::InvalidArgument);
    assert_eq!(r.struct_size as usize, RESULT_V1_SIZE);
    assert_eq!(r.from_cache, 7, "past struct_size: untouched");
    // SAFETY: filled by lemon_resume_pull.
    unsafe { lemon_pull_result_free(&mut r) };
    // A caller of the header before `files_not_hash_verified`: every field it knows is written.
    let mut r = zeroed_result();
    let before = std::mem::offset_of!(lemon_pull_result, files_not_hash_verified);
    r.struct_size = before as u32;
    // SAFETY: as above.
    let s = unsafe { lemon_resume_pull(&o, &mut r) };
    assert_eq!(s, lemon_status::InvalidArgument);
    assert_eq!(r.struct_size as usize, before);
    assert_eq!(
        (r.from_cache, r.bytes_on_disk),
        (0, 0),
        "within struct_size"
    );
    assert_eq!(r.files_not_hash_verified, 7, "past struct_size: untouched");
    // SAFETY: filled by lemon_resume_pull.
    unsafe { lemon_pull_result_free(&mut r) };
    let (_, mut r) = call(&o);
    assert_eq!(r.struct_size as usize, size_of::<lemon_pull_result>());
    assert_eq!(r.from_cache, 0, "within struct_size: written");
    assert_eq!(r.files_not_hash_verified, 0, "within struct_size: written");
    // SAFETY: filled by lemon_resume_pull.
    unsafe { lemon_pull_result_free(&mut r) };
}

fn expect_invalid(o: *const lemon_pull_options, needle: &str) {
    let (s, mut r) = call(o);
    assert_eq!(s, lemon_status::InvalidArgument);
    assert_eq!(r.status, lemon_status::InvalidArgument as i32);
    assert_eq!(r.struct_size as usize, size_of::<lemon_pull_result>());
    let m = message(&r);
    assert!(m.contains(needle), "{m:?} should mention {needle:?}");
    assert!(r.snapshot_path.is_null() && r.commit.is_null() && r.repos.is_null());
    // SAFETY: `r` was filled by lemon_resume_pull.
    unsafe { lemon_pull_result_free(&mut r) };
    assert!(r.error_message.is_null());
}

#[test]
fn every_status_has_the_same_value_and_name_in_c() {
    for s in Status::ALL {
        let c = lemon_status::from(s);
        assert_eq!(c as i32, s as i32, "{s:?}");
        assert_eq!(format!("{c:?}"), format!("{s:?}"));
        assert_eq!(status_of(s as i32), s.description());
    }
}

#[test]
fn status_str_covers_unknown_values() {
    assert_eq!(status_of(0), "success");
    assert_eq!(status_of(1), "Download cancelled");
    for code in [-1, Status::ALL.len() as i32, 1000, i32::MAX, i32::MIN] {
        assert_eq!(status_of(code), "unknown status");
    }
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: static C string.
    let v = unsafe { CStr::from_ptr(lemon_pull_version()) };
    assert_eq!(v.to_str().expect("utf-8"), env!("CARGO_PKG_VERSION"));
}

#[test]
fn options_init_sets_size_and_defaults() {
    let o = init_options();
    assert_eq!(o.struct_size as usize, size_of::<lemon_pull_options>());
    assert_eq!(o.max_retries, 10);
    assert_eq!(o.connect_timeout_ms, 60_000);
    assert!(o.repo_id.is_null() && o.progress_cb.is_none() && o.cancel_flag.is_null());
    // SAFETY: NULL is documented as ignored.
    unsafe { lemon_pull_options_init(ptr::null_mut()) };
}

#[test]
fn null_arguments_are_invalid() {
    expect_invalid(ptr::null(), "options is NULL");
    let o = init_options();
    expect_invalid(&o, "repo_id is NULL");
    // SAFETY: a NULL result is documented as returning INVALID_ARGUMENT.
    let s = unsafe { lemon_resume_pull(&o, ptr::null_mut()) };
    assert_eq!(s, lemon_status::InvalidArgument);
    // SAFETY: as above.
    let s = unsafe { lemon_resume_pull(ptr::null(), ptr::null_mut()) };
    assert_eq!(s, lemon_status::InvalidArgument);
}

#[test]
fn invalid_utf8_is_invalid() {
    let bad = b"org/\xff\xfe\0";
    let mut o = init_options();
    o.repo_id = bad.as_ptr().cast();
    expect_invalid(&o, "repo_id is not valid UTF-8");

    o.repo_id = c"org/name".as_ptr();
    let patterns = [c"*.gguf".as_ptr(), bad.as_ptr().cast()];
    o.include = patterns.as_ptr();
    o.include_len = 2;
    expect_invalid(&o, "include[1] is not valid UTF-8");

    o.include_len = 0;
    let comps = [lemon_component {
        repo_id: c"org/vae".as_ptr(),
        path: bad.as_ptr().cast(),
        revision: ptr::null(),
    }];
    o.components = comps.as_ptr();
    o.components_len = 1;
    expect_invalid(&o, "components[0].path is not valid UTF-8");
}

#[test]
fn null_arrays_with_length_are_invalid() {
    let mut o = init_options();
    o.repo_id = c"org/name".as_ptr();
    o.include_len = 3;
    expect_invalid(&o, "include is NULL but include_len is 3");
    o.include_len = 0;
    o.exclude_len = 1;
    expect_invalid(&o, "exclude is NULL but exclude_len is 1");
    o.exclude_len = 0;
    let items = [ptr::null::<c_char>()];
    o.exclude = items.as_ptr();
    o.exclude_len = 1;
    expect_invalid(&o, "exclude[0] is NULL");
    o.exclude_len = 0;
    o.components_len = 2;
    expect_invalid(&o, "components is NULL");
}

#[test]
fn too_small_struct_size_and_unknown_flags_are_invalid() {
    let mut o = init_options();
    o.repo_id = c"org/name".as_ptr();
    for size in [0, 4, MIN_OPTIONS_SIZE as u32 - 1] {
        o.struct_size = size;
        expect_invalid(&o, "struct_size");
    }
    o.struct_size = size_of::<lemon_pull_options>() as u32;
    o.flags = 0x80;
    expect_invalid(&o, "unknown flags 0x80");
}

#[test]
fn fields_past_struct_size_are_never_read() {
    // An "old caller" whose struct ends before `cancel_flag`; the bytes after it are poison
    // that would crash or misbehave if read.
    let mut o = init_options();
    o.repo_id = c"org/name".as_ptr();
    o.struct_size = offset_of!(lemon_pull_options, cancel_flag) as u32;
    o.cancel_flag = 0x10 as *const i32;
    o.components = 0x10 as *const lemon_component;
    o.components_len = usize::MAX;
    o.max_retries = 77;
    o.connect_timeout_ms = 1;
    o.flags = u32::MAX;
    // SAFETY: `o` is a full struct, readable well past the declared size.
    let read = unsafe { read_options(&o) }.expect("valid");
    let d = lemon_pull_options::defaults();
    assert_eq!(read.struct_size, o.struct_size);
    assert_eq!(read.repo_id, o.repo_id);
    assert!(read.cancel_flag.is_null() && read.components.is_null());
    assert_eq!(
        (read.components_len, read.max_retries, read.flags),
        (0, d.max_retries, 0)
    );
    assert_eq!(read.connect_timeout_ms, d.connect_timeout_ms);

    // The smallest accepted struct: only `repo_id` is read.
    o.struct_size = MIN_OPTIONS_SIZE as u32;
    o.revision = 0x10 as *const c_char;
    // SAFETY: as above.
    let read = unsafe { read_options(&o) }.expect("valid");
    assert_eq!(read.repo_id, o.repo_id);
    assert!(read.revision.is_null());

    // Exactly that many bytes on the heap: nothing past them may be touched (checked under
    // Miri or Valgrind; here at least it must parse).
    let layout =
        std::alloc::Layout::from_size_align(MIN_OPTIONS_SIZE, align_of::<lemon_pull_options>())
            .expect("layout");
    // SAFETY: nonzero size; the block is written before it is read and freed with its layout.
    unsafe {
        let p = std::alloc::alloc(layout);
        assert!(!p.is_null());
        p.cast::<u32>().write(MIN_OPTIONS_SIZE as u32);
        p.add(offset_of!(lemon_pull_options, repo_id))
            .cast::<*const c_char>()
            .write(c"org/name".as_ptr());
        let read = read_options(p.cast()).expect("valid");
        assert_eq!(read.repo_id, c"org/name".as_ptr());
        std::alloc::dealloc(p, layout);
    }
}

#[test]
fn connections_is_read_only_within_struct_size_and_capped() {
    let mut o = init_options();
    assert_eq!(o.connections, 0, "auto by default");
    o.repo_id = c"org/name".as_ptr();
    o.connections = 8;
    // A caller built against the header before `connections` existed.
    o.struct_size = offset_of!(lemon_pull_options, connections) as u32;
    // SAFETY: `o` is a full struct, readable past the declared size.
    let read = unsafe { read_options(&o) }.expect("valid");
    assert_eq!(read.connections, 0, "past struct_size: the default");
    o.struct_size = size_of::<lemon_pull_options>() as u32;
    for (given, used) in [
        (8, 8),
        (0, crate::AUTO_CONNECTIONS),
        (1000, MAX_CONNECTIONS),
    ] {
        o.connections = given;
        // SAFETY: `o` is a full, valid options struct.
        let req = unsafe { parse_options(&o) }.expect("valid");
        assert_eq!(req.options.connections, used, "{given}");
    }
}

#[test]
fn later_fields_are_read_only_within_struct_size() {
    let mut o = init_options();
    assert_eq!((o.max_bytes_per_sec, o.ca_bundle), (0, ptr::null()));
    o.repo_id = c"org/name".as_ptr();
    o.max_bytes_per_sec = 5_000_000;
    o.ca_bundle = c"/etc/corp-ca.pem".as_ptr();
    o.flags = lemon_pull_flag::Offline as u32;
    // SAFETY: `o` is a full, valid options struct.
    let req = unsafe { parse_options(&o) }.expect("valid");
    assert_eq!(req.options.max_bytes_per_sec, Some(5_000_000));
    assert_eq!(
        req.options.ca_bundle.as_deref(),
        Some(std::path::Path::new("/etc/corp-ca.pem"))
    );
    assert!(req.options.offline && !req.options.dry_run);

    // A caller built against the header that ended with `connections`.
    o.struct_size = offset_of!(lemon_pull_options, max_bytes_per_sec) as u32;
    // SAFETY: `o` is a full struct, readable past the declared size.
    let req = unsafe { parse_options(&o) }.expect("valid");
    assert_eq!(req.options.max_bytes_per_sec, None, "past struct_size");
    assert_eq!(req.options.ca_bundle, None, "past struct_size");

    o.struct_size = size_of::<lemon_pull_options>() as u32;
    o.max_bytes_per_sec = 0;
    o.ca_bundle = c"".as_ptr();
    // SAFETY: as above.
    let req = unsafe { parse_options(&o) }.expect("valid");
    assert_eq!(
        (req.options.max_bytes_per_sec, req.options.ca_bundle),
        (None, None),
        "0 and \"\" keep the defaults"
    );
}

#[test]
fn dns_timeout_is_read_only_within_struct_size() {
    let mut o = init_options();
    assert_eq!(o.dns_timeout_ms, 10_000);
    o.repo_id = c"org/name".as_ptr();
    o.dns_timeout_ms = 1500;
    // SAFETY: `o` is a full, valid options struct.
    let req = unsafe { parse_options(&o) }.expect("valid");
    assert_eq!(req.options.dns_timeout, Duration::from_millis(1500));
    o.dns_timeout_ms = 0;
    // SAFETY: as above.
    let req = unsafe { parse_options(&o) }.expect("valid");
    assert_eq!(req.options.dns_timeout, DEFAULT_DNS_TIMEOUT, "0 = default");
    // A caller built against the header that ended with `proxy`.
    o.dns_timeout_ms = 1500;
    o.struct_size = offset_of!(lemon_pull_options, dns_timeout_ms) as u32;
    // SAFETY: `o` is a full struct, readable past the declared size.
    let req = unsafe { parse_options(&o) }.expect("valid");
    assert_eq!(
        req.options.dns_timeout, DEFAULT_DNS_TIMEOUT,
        "past struct_size"
    );
}

#[test]
fn result_free_is_idempotent_and_accepts_null() {
    let (_, mut r) = call(ptr::null());
    assert!(!r.error_message.is_null());
    // SAFETY: `r` was filled by lemon_resume_pull; freeing twice and NULL are documented as fine.
    unsafe {
        lemon_pull_result_free(&mut r);
        lemon_pull_result_free(&mut r);
        lemon_pull_result_free(ptr::null_mut());
    }
    assert!(r.error_message.is_null() && r.snapshot_path.is_null() && r.repos.is_null());
    assert_eq!(r.status, lemon_status::InvalidArgument as i32);
    let mut z = zeroed_result();
    // SAFETY: a zeroed result is documented as fine.
    unsafe { lemon_pull_result_free(&mut z) };
}

#[test]
fn result_with_a_bad_struct_size_is_not_touched() {
    let mut r = zeroed_result();
    r.struct_size = 8;
    // SAFETY: `r` is a valid struct; the library must refuse to write it.
    let s = unsafe { lemon_resume_pull(ptr::null(), &mut r) };
    assert_eq!(s, lemon_status::InvalidArgument);
    assert_eq!((r.struct_size, r.status), (8, -1));
    assert!(r.error_message.is_null());
}

#[test]
fn accessors_on_null_or_empty_results() {
    let (_, mut r) = call(ptr::null());
    // SAFETY: NULL and a failed result are documented inputs.
    unsafe {
        assert_eq!(lemon_pull_result_repo_count(ptr::null()), 0);
        assert_eq!(lemon_pull_result_repo_count(&r), 0);
        assert!(lemon_pull_result_repo_id(ptr::null(), 0).is_null());
        assert!(lemon_pull_result_repo_commit(&r, 0).is_null());
        assert!(lemon_pull_result_repo_snapshot_path(&r, usize::MAX).is_null());
        lemon_pull_result_free(&mut r);
    }
}

#[test]
fn result_repos_accessors() {
    let outcome = PullOutcome {
        repo: "org/main".into(),
        registry: crate::Registry::HuggingFace,
        revision: "main".into(),
        commit: "a".repeat(40),
        snapshot_path: PathBuf::from("/c/models--org--main/snapshots/aaaa"),
        repos: vec![
            crate::pull::RepoOutcome {
                repo: "org/main".into(),
                revision: "main".into(),
                commit: "a".repeat(40),
                snapshot_path: PathBuf::from("/c/models--org--main/snapshots/aaaa"),
            },
            crate::pull::RepoOutcome {
                repo: "org/vae".into(),
                revision: "main".into(),
                commit: "b".repeat(40),
                snapshot_path: PathBuf::from("/c/models--org--vae/snapshots/bbbb"),
            },
        ],
        files: 3,
        totals: Totals {
            total_files: 3,
            total_bytes: 30,
            bytes_downloaded: 20,
            bytes_reused: 10,
            ..Totals::default()
        },
        plan: Vec::new(),
        reclaimed: Vec::new(),
        dry_run: false,
        from_cache: false,
        connections: 0,
    };
    let mut r = zeroed_result();
    // SAFETY: `r` is a zeroed result.
    let slot = unsafe { ResultSlot::new(&mut r) }.expect("usable");
    slot.fill(Report::success(outcome));
    let text = |p: *const c_char| {
        assert!(!p.is_null());
        // SAFETY: non-NULL strings returned by the accessors are owned by `r`.
        unsafe { CStr::from_ptr(p) }
            .to_str()
            .expect("utf-8")
            .to_string()
    };
    // SAFETY: `r` was filled above and is freed at the end.
    unsafe {
        assert_eq!(lemon_pull_result_repo_count(&r), 2);
        assert_eq!(text(lemon_pull_result_repo_id(&r, 1)), "org/vae");
        assert_eq!(text(lemon_pull_result_repo_commit(&r, 1)), "b".repeat(40));
        assert_eq!(
            text(lemon_pull_result_repo_snapshot_path(&r, 0)),
            "/c/models--org--main/snapshots/aaaa"
        );
        assert!(lemon_pull_result_repo_id(&r, 2).is_null());
        assert_eq!(text(r.commit), "a".repeat(40));
        assert!(r.error_message.is_null());
        assert_eq!(
            (
                r.status,
                r.files,
                r.bytes_downloaded,
                r.bytes_reused,
                r.total_bytes
            ),
            (0, 3, 20, 10, 30)
        );
        lemon_pull_result_free(&mut r);
        lemon_pull_result_free(&mut r);
    }
    assert!(r.repos.is_null() && r.commit.is_null());
}

/// A copy of a progress event, strings included.
#[derive(Debug, Clone)]
struct Seen {
    kind: lemon_progress_kind,
    repo: String,
    file: String,
    message: String,
    file_index: u32,
    file_bytes_done: u64,
    file_bytes_offset: u64,
    percent: i32,
    complete: i32,
}

struct Recorder {
    seen: Vec<Seen>,
    cancel_at: Option<lemon_progress_kind>,
}

unsafe extern "C" fn record(user_data: *mut c_void, p: *const lemon_progress) -> i32 {
    // SAFETY: the tests pass a `Recorder` as user_data and the bridge a valid event.
    let (rec, p) = unsafe { (&mut *user_data.cast::<Recorder>(), &*p) };
    // SAFETY: the event's strings are valid C strings during the callback.
    let s = |c: *const c_char| unsafe { CStr::from_ptr(c) }.to_string_lossy().into_owned();
    rec.seen.push(Seen {
        kind: p.kind,
        repo: s(p.repo_id),
        file: s(p.file),
        message: s(p.message),
        file_index: p.file_index,
        file_bytes_done: p.file_bytes_done,
        file_bytes_offset: p.file_bytes_offset,
        percent: p.percent,
        complete: p.complete,
    });
    i32::from(rec.cancel_at == Some(p.kind))
}

#[test]
fn bridge_maps_events_for_lemonade() {
    let mut rec = Recorder {
        seen: Vec::new(),
        cancel_at: Some(lemon_progress_kind::Complete),
    };
    let mut bridge = Bridge::new(Some(record), ptr::addr_of_mut!(rec).cast());
    let f = FileInfo {
        repo: "org/m",
        path: "dir/m.gguf",
        index: 2,
        size: 200,
    };
    let totals = Totals {
        total_files: 2,
        total_bytes: 300,
        ..Totals::default()
    };
    let snapshot = PathBuf::from("/cache/snap");
    let events = [
        Event::Resolved {
            repo: "org/m",
            revision: "main",
            commit: "abc",
        },
        Event::Plan { totals },
        Event::FileStart {
            file: f,
            offset: 50,
            totals,
        },
        Event::Progress {
            file: f,
            file_done: 150,
            totals,
        },
        Event::Retry {
            file: Some(f),
            attempt: 1,
            delay: Duration::from_millis(20),
            reason: "reset",
        },
        Event::FileDone {
            file: f,
            reused: false,
            totals,
        },
        Event::Complete {
            repo: "org/m",
            commit: "abc",
            snapshot: &snapshot,
            totals,
        },
    ];
    for e in &events {
        // The callback asks to cancel on COMPLETE: completion wins.
        assert_eq!(bridge.on_event(e), Flow::Continue);
    }
    let kinds: Vec<_> = rec.seen.iter().map(|s| s.kind).collect();
    use lemon_progress_kind as K;
    assert_eq!(
        kinds,
        [
            K::Resolved,
            K::Plan,
            K::FileStart,
            K::Progress,
            K::Retry,
            K::FileDone,
            K::Complete
        ]
    );
    let s = &rec.seen;
    assert_eq!(
        (
            s[0].repo.as_str(),
            s[0].message.as_str(),
            s[0].file.as_str()
        ),
        ("org/m", "abc", "")
    );
    assert_eq!(
        (
            s[2].file_index,
            s[2].file_bytes_done,
            s[2].file_bytes_offset,
            s[2].percent
        ),
        (2, 50, 50, 25)
    );
    assert_eq!(
        (s[3].file_bytes_done, s[3].file_bytes_offset, s[3].percent),
        (150, 50, 75)
    );
    assert_eq!(
        (s[4].file_bytes_done, s[4].message.as_str()),
        (150, "reset")
    );
    assert_eq!((s[5].percent, s[5].message.as_str()), (100, "downloaded"));
    assert_eq!((s[6].complete, s[6].percent, s[6].file_index), (1, 100, 2));
    assert_eq!(s[6].message, "/cache/snap");
    assert!(s[..6].iter().all(|e| e.complete == 0));
    assert_eq!(s[2].file, "dir/m.gguf");
}

#[test]
fn bridge_cancels_and_survives_interior_nul() {
    let mut rec = Recorder {
        seen: Vec::new(),
        cancel_at: Some(lemon_progress_kind::Progress),
    };
    let mut bridge = Bridge::new(Some(record), ptr::addr_of_mut!(rec).cast());
    let f = FileInfo {
        repo: "org/m",
        path: "a\0b",
        index: 1,
        size: 0,
    };
    let t = Totals::default();
    assert_eq!(
        bridge.on_event(&Event::FileStart {
            file: f,
            offset: 0,
            totals: t
        }),
        Flow::Continue
    );
    assert_eq!(
        bridge.on_event(&Event::Progress {
            file: f,
            file_done: 0,
            totals: t
        }),
        Flow::Cancel
    );
    assert_eq!(rec.seen[0].file, "a");
    assert_eq!(rec.seen[0].percent, 100, "an empty file is complete");
}

#[test]
fn bridge_without_callback_tracks_totals() {
    let mut bridge = Bridge::new(None, ptr::null_mut());
    let f = FileInfo {
        repo: "org/m",
        path: "x",
        index: 1,
        size: 10,
    };
    let totals = Totals {
        total_files: 1,
        total_bytes: 10,
        bytes_downloaded: 4,
        ..Totals::default()
    };
    assert_eq!(
        bridge.on_event(&Event::Progress {
            file: f,
            file_done: 4,
            totals
        }),
        Flow::Continue
    );
    assert_eq!(bridge.totals.bytes_downloaded, 4);
}

#[test]
fn panics_become_internal_and_fill_the_result() {
    // A panic in the body of the call (here: while building the progress bridge, after the
    // options were read) fills the result.
    let endpoint = refused_endpoint();
    let cache = temp_cache("panic-run");
    let o = hermetic_options(&endpoint, &cache);
    let (s, mut r) = call_with(&o, panic_in_run);
    assert_eq!(s, lemon_status::Internal);
    assert_eq!(message(&r), "internal error: panic: injected test panic");
    // SAFETY: filled by lemon_resume_pull.
    unsafe { lemon_pull_result_free(&mut r) };

    // A panic in the progress bridge stops the pull without unwinding through the core.
    let endpoint = refused_endpoint();
    let cache = temp_cache("panic");
    let mut o = hermetic_options(&endpoint, &cache);
    o.max_retries = 3;
    o.initial_retry_delay_ms = 10;
    o.progress_cb = Some(cancel_immediately);
    let (s, mut r) = call_with(&o, panic_in_bridge);
    assert_eq!(s, lemon_status::Internal, "{}", message(&r));
    assert!(
        message(&r).contains("panic in progress reporting"),
        "{}",
        message(&r)
    );
    // SAFETY: filled by lemon_resume_pull.
    unsafe { lemon_pull_result_free(&mut r) };
}

unsafe extern "C" fn cancel_immediately(_: *mut c_void, _: *const lemon_progress) -> i32 {
    1
}

/// A listener that accepts nothing: API calls to it hang until cancelled.
fn black_hole() -> (TcpListener, CString) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    (l, CString::new(url).expect("url"))
}

/// An endpoint whose port was just closed: connecting is refused, and retried.
fn refused_endpoint() -> CString {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    drop(l);
    CString::new(url).expect("url")
}

fn hermetic_options(endpoint: &CStr, cache: &CStr) -> lemon_pull_options {
    let mut o = init_options();
    o.repo_id = c"org/name".as_ptr();
    o.endpoint = endpoint.as_ptr();
    o.cache_dir = cache.as_ptr();
    o.token = c"".as_ptr();
    o.max_retries = 0;
    o
}

fn temp_cache(tag: &str) -> CString {
    let p = std::env::temp_dir().join(format!("lemon-pull-ffi-{tag}-{}", std::process::id()));
    CString::new(p.to_string_lossy().into_owned()).expect("path")
}

#[test]
fn cancel_flag_set_from_another_thread_cancels_a_blocked_call() {
    let (_listener, endpoint) = black_hole();
    let cache = temp_cache("flag");
    let mut o = hermetic_options(&endpoint, &cache);
    let flag = Box::new(std::sync::atomic::AtomicI32::new(0));
    o.cancel_flag = flag.as_ptr();
    let setter = {
        let flag: &'static std::sync::atomic::AtomicI32 = Box::leak(flag);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(1, std::sync::atomic::Ordering::SeqCst);
            Instant::now()
        })
    };
    let (s, mut r) = call(&o);
    let returned = Instant::now();
    let set_at = setter.join().expect("setter");
    assert_eq!(s, lemon_status::Cancelled);
    assert_eq!(message(&r), "Download cancelled");
    assert!(
        returned.duration_since(set_at) < Duration::from_millis(1000),
        "cancel took too long"
    );
    // SAFETY: filled by lemon_resume_pull.
    unsafe { lemon_pull_result_free(&mut r) };
}

#[test]
fn callback_cancel_is_reported_as_cancelled() {
    // Against a refused endpoint the first event is the RETRY of the API call: cancel there.
    let endpoint = refused_endpoint();
    let cache = temp_cache("cb");
    let mut o = hermetic_options(&endpoint, &cache);
    o.max_retries = 3;
    o.initial_retry_delay_ms = 10;
    o.progress_cb = Some(cancel_immediately);
    let (s, mut r) = call(&o);
    assert_eq!(s, lemon_status::Cancelled, "{}", message(&r));
    assert_eq!(message(&r), "Download cancelled");
    // SAFETY: filled by lemon_resume_pull.
    unsafe { lemon_pull_result_free(&mut r) };
}

#[test]
fn unaligned_cancel_flag_is_invalid() {
    let mut o = init_options();
    o.repo_id = c"org/name".as_ptr();
    let bytes = [0u8; 8];
    // SAFETY: in bounds; only the address is used (it is rejected before any read).
    o.cancel_flag = unsafe { bytes.as_ptr().add(1) }.cast();
    expect_invalid(&o, "cancel_flag is not aligned");
}
