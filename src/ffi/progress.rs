//! Progress events for C: `lemon_progress`, its kinds and callback type, and the bridge that turns
//! the core's events into them.

use std::borrow::Cow;
use std::ffi::{c_char, c_void};
use std::mem::size_of;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::progress::{Event, FileInfo, Flow, Observer, Totals};

use super::boundary::{c_buffer, millis, panic_text};

/// What a `lemon_progress` event reports. Values are stable; new kinds may be appended, so ignore
/// kinds you do not know.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lemon_progress_kind {
    /// The plan is complete: `total_files`, `total_bytes`, and `total_bytes_done` = bytes already
    /// on disk. Sent once, after the `PLAN_FILE` events.
    Plan = 0,
    /// A file starts (or is found complete): `file_bytes_done` = `file_bytes_offset` = bytes already
    /// on disk (the full size for a complete file, then `percent` is 100).
    FileStart = 1,
    /// Bytes arrived: `file_bytes_done` includes the resume offset. About ten a second at most.
    Progress = 2,
    /// A file is complete and verified under its final name; `message` is "reused" when no byte of
    /// it was downloaded in this call, else "downloaded".
    FileDone = 3,
    /// Bytes of a file were taken from another snapshot folder (a partial moved over, or a complete
    /// copy moved or hardlinked): `message` is that folder's name, `event_bytes` the bytes taken.
    Salvage = 4,
    /// Another process holds the repository's lock; the pull waits and stays cancellable.
    /// `message` is the lock file.
    WaitingForLock = 5,
    /// A request failed and is retried after `retry_delay_ms`; `retry_attempt` is 1-based,
    /// `message` says what failed, `file` is "" for an API call.
    Retry = 6,
    /// A file's bytes on disk were discarded and it restarts from zero; `message` says why.
    Restart = 7,
    /// The pull committed: `complete` = 1, `percent` = 100, `file_index` = `total_files`,
    /// `message` is the main snapshot folder. Always the last event of a successful pull; its
    /// return value is ignored (completion wins over a late cancel).
    Complete = 8,
    /// A revision resolved to a commit: `repo_id`, and `message` = the 40-hex commit.
    Resolved = 9,
    /// One planned file, sent for every file before `PLAN`: `message` is where its bytes come from
    /// ("present", "resume", "salvage_partial", "salvage_file", "link" or "download"),
    /// `file_bytes_offset` the bytes already on disk (for salvage: in the other folder). Totals are not known yet (0).
    PlanFile = 10,
    /// After the commit, an orphaned snapshot folder with nothing useful left was removed:
    /// `message` is its name, `event_bytes` the bytes it held. Its return value is ignored.
    Reclaimed = 11,
    /// Nothing else happened for a while: the pull is alive. Sent at least every 250 ms while
    /// `lemon_resume_pull` runs when no other event was sent (a stalled connection, a retry
    /// backoff, a lock wait, hashing); `message` names the phase ("start", "resolve", "lock",
    /// "plan", "salvage", "transfer", "backoff", "verify", "commit"), the totals are current and
    /// `file` is "". A nonzero return cancels like any other event.
    Tick = 12,
    /// The hub could not be reached (host name not resolved, connection refused, connect timeout,
    /// TLS handshake failure) after a few seconds of retries; the pull answers from a complete
    /// cached snapshot of the revision if there is one (the result's `from_cache` is then 1), else
    /// it fails with `LEMON_STATUS_NETWORK`. `message` says why the hub was given up on.
    FromCache = 13,
}

/// One progress event. Passed to `lemon_progress_cb` by pointer; the struct and every string in it
/// are borrowed and valid only until the callback returns. Copy what you keep.
///
/// Strings are NUL-terminated UTF-8 and never NULL ("" when not applicable).
/// Counters are 0 when they do not apply to the event's kind.
/// Check `struct_size` before reading fields added after the first version.
#[repr(C)]
pub struct lemon_progress {
    /// Size of this struct as the library filled it; fields at or past this offset do not exist.
    pub struct_size: u32,
    /// What happened; a `lemon_progress_kind` value.
    pub kind: lemon_progress_kind,
    /// Repository the event is about (`org/name`).
    pub repo_id: *const c_char,
    /// Repo-relative path of the current file, or "".
    pub file: *const c_char,
    /// Kind-specific text (see `lemon_progress_kind`), or "".
    pub message: *const c_char,
    /// 1-based position of the current file over all files of the pull (all repositories); 0 when
    /// no file is concerned.
    pub file_index: u32,
    /// Files in the pull (0 before `PLAN`).
    pub total_files: u32,
    /// Bytes of the current file present now, including the resume offset.
    pub file_bytes_done: u64,
    /// Size of the current file.
    pub file_bytes_total: u64,
    /// Bytes of all files done or in progress, including bytes that were already on disk.
    pub total_bytes_done: u64,
    /// Sum of all files' sizes.
    pub total_bytes: u64,
    /// Bytes not downloaded in this call (complete files, resumed partials, salvaged copies).
    pub bytes_reused: u64,
    /// Bytes taken from other snapshot folders (a subset of `bytes_reused`).
    pub bytes_salvaged: u64,
    /// Bytes fetched over the network in this call.
    pub bytes_downloaded: u64,
    /// Bytes of the current file that were on disk when it started (the resume offset, or the full
    /// size of a file found complete): lemonade's `bytes_previously_downloaded`.
    pub file_bytes_offset: u64,
    /// `SALVAGE`: bytes taken from another snapshot folder; `RECLAIMED`: bytes the removed folder
    /// held; else 0.
    pub event_bytes: u64,
    /// Progress of the current file, 0..100 (100 on `FILE_DONE` and `COMPLETE`).
    pub percent: i32,
    /// 1 only on the single final `COMPLETE` event, else 0.
    pub complete: i32,
    /// `RETRY`: 1-based number of the retry about to happen.
    pub retry_attempt: u32,
    /// `RETRY`: milliseconds the pull waits before it.
    pub retry_delay_ms: u32,
}

/// Progress callback. Called only on the thread that called `lemon_resume_pull`, serially, and
/// only while that call runs: never after it returns. `user_data` is passed through untouched.
/// `progress` and its strings are valid only during the call.
///
/// Return 0 to continue, nonzero to cancel: the pull then returns `LEMON_STATUS_CANCELLED` within
/// about 100 ms and keeps partial files and the manifest. The callback must not unwind, throw a C++
/// exception or `longjmp` out (wrap C++ code in `try`/`catch`), and must not call back into this
/// library for the same repository.
pub type lemon_progress_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const lemon_progress) -> i32>;

/// Where a flattened event goes: the caller's C callback (a test may pass any closure). Its answer
/// is the callback's: nonzero asks to cancel.
pub(super) type Sink = Box<dyn FnMut(&lemon_progress) -> i32>;

/// The observer handed to the core: tracks totals (also for the result on failure) and forwards
/// events to the C callback.
pub(super) struct Bridge {
    sink: Option<Sink>,
    /// Totals as of the last event.
    pub(super) totals: Totals,
    /// Current file: bytes present now and bytes present when it started.
    file_done: u64,
    file_offset: u64,
    /// Reused buffers for the event's strings, so an event costs no allocation once warmed up.
    repo_buf: Vec<u8>,
    file_buf: Vec<u8>,
    message_buf: Vec<u8>,
    /// A panic in this bridge turned into a cancel; reported as `LEMON_STATUS_INTERNAL`.
    pub(super) panicked: Option<String>,
    /// Bytes in the main snapshot folder when a pull failed (`Event::Stopped`).
    pub(super) on_disk: u64,
}

/// An event flattened to what `lemon_progress` carries.
struct View<'a> {
    kind: lemon_progress_kind,
    repo: &'a str,
    file: Option<FileInfo<'a>>,
    message: Cow<'a, str>,
    retry_attempt: u32,
    retry_delay_ms: u32,
    event_bytes: u64,
}

impl<'a> View<'a> {
    fn new(kind: lemon_progress_kind, repo: &'a str, file: Option<FileInfo<'a>>) -> Self {
        View {
            kind,
            repo,
            file,
            message: Cow::Borrowed(""),
            retry_attempt: 0,
            retry_delay_ms: 0,
            event_bytes: 0,
        }
    }

    fn with_message(mut self, message: impl Into<Cow<'a, str>>) -> Self {
        self.message = message.into();
        self
    }

    fn with_bytes(mut self, bytes: u64) -> Self {
        self.event_bytes = bytes;
        self
    }

    /// Events sent after the pull committed: a cancel can no longer undo anything.
    fn after_commit(&self) -> bool {
        matches!(
            self.kind,
            lemon_progress_kind::Complete | lemon_progress_kind::Reclaimed
        )
    }
}

/// Progress of a file, 0..100.
fn percent(done: u64, total: u64) -> i32 {
    if total == 0 {
        // An empty file is as complete as it will ever be.
        return 100;
    }
    let p = u128::from(done.min(total)) * 100 / u128::from(total);
    p as i32
}

impl Bridge {
    /// A bridge to the caller's callback; without one it only tracks the totals.
    pub(super) fn new(callback: lemon_progress_cb, user_data: *mut c_void) -> Self {
        Bridge::with_sink(callback.map(|callback| -> Sink {
            Box::new(move |progress| {
                // SAFETY: the caller guarantees `callback` is a valid function for the duration of
                // the call; `deliver` passes a `progress` whose buffers outlive the call and are not
                // touched until it returns. The callback is documented not to unwind.
                unsafe { callback(user_data, progress) }
            })
        }))
    }

    /// A bridge that sends every event to `sink`, if any.
    pub(super) fn with_sink(sink: Option<Sink>) -> Self {
        Bridge {
            sink,
            totals: Totals::default(),
            file_done: 0,
            file_offset: 0,
            repo_buf: Vec::new(),
            file_buf: Vec::new(),
            message_buf: Vec::new(),
            panicked: None,
            on_disk: 0,
        }
    }

    /// Updates the tracked state and flattens the event.
    fn view<'a>(&mut self, event: &Event<'a>) -> View<'a> {
        self.track(event);
        flatten(event)
    }

    /// Takes the totals and the current file's counters an event carries.
    fn track(&mut self, event: &Event<'_>) {
        match *event {
            Event::PlanFile {
                on_disk, totals, ..
            } => self.start_file(totals, on_disk),
            Event::Plan { totals } => self.start_file(totals, 0),
            Event::FileStart { offset, totals, .. } => self.start_file(totals, offset),
            Event::Progress {
                file_done, totals, ..
            } => {
                self.totals = totals;
                self.file_done = file_done;
            }
            Event::FileDone { file, totals, .. } => {
                self.totals = totals;
                self.file_done = file.size;
            }
            Event::Restart { .. } => self.start_file(self.totals, 0),
            Event::Salvaged { bytes, .. } => self.start_file(self.totals, bytes),
            Event::Complete { totals, .. }
            | Event::Tick { totals, .. }
            | Event::Stopped { totals, .. } => self.totals = totals,
            Event::Resolved { .. }
            | Event::WaitingForLock { .. }
            | Event::Retry { .. }
            | Event::Reclaimed { .. }
            | Event::FromCache { .. } => {}
        }
    }

    /// A file (re)starts with `on_disk` bytes present.
    fn start_file(&mut self, totals: Totals, on_disk: u64) {
        self.totals = totals;
        self.file_done = on_disk;
        self.file_offset = on_disk;
    }

    /// Builds the C struct; its string pointers borrow this bridge's buffers until the next event.
    fn progress(&mut self, v: &View<'_>) -> lemon_progress {
        let t = self.totals;
        let complete = v.kind == lemon_progress_kind::Complete;
        let (file_index, file_total, file_done, file_offset, pct) = match v.file {
            Some(f) => (
                f.index,
                f.size,
                self.file_done,
                self.file_offset,
                percent(self.file_done, f.size),
            ),
            None if complete => (t.total_files, 0, 0, 0, 100),
            None => (0, 0, 0, 0, 0),
        };
        lemon_progress {
            struct_size: size_of::<lemon_progress>() as u32,
            kind: v.kind,
            repo_id: c_buffer(&mut self.repo_buf, v.repo),
            file: c_buffer(&mut self.file_buf, v.file.map_or("", |f| f.path)),
            message: c_buffer(&mut self.message_buf, &v.message),
            file_index,
            total_files: t.total_files,
            file_bytes_done: file_done,
            file_bytes_total: file_total,
            total_bytes_done: t.done_bytes,
            total_bytes: t.total_bytes,
            bytes_reused: t.bytes_reused,
            bytes_salvaged: t.bytes_salvaged,
            bytes_downloaded: t.bytes_downloaded,
            file_bytes_offset: file_offset,
            event_bytes: v.event_bytes,
            percent: pct,
            complete: i32::from(complete),
            retry_attempt: v.retry_attempt,
            retry_delay_ms: v.retry_delay_ms,
        }
    }

    /// Tracks an event and sends it to the sink; a panic here is caught by `on_event`.
    fn deliver(&mut self, event: &Event<'_>) -> Flow {
        let view = self.view(event);
        if self.sink.is_none() {
            return Flow::Continue;
        }
        let progress = self.progress(&view);
        // `progress` points into this bridge's buffers, which stay untouched until the sink returns.
        let answer = self.sink.as_mut().map_or(0, |send| send(&progress));
        // Completion wins: once the pull has committed, a late cancel changes nothing.
        if answer != 0 && !view.after_commit() {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    }
}

impl Observer for Bridge {
    fn on_event(&mut self, event: &Event<'_>) -> Flow {
        if self.panicked.is_some() {
            return Flow::Cancel;
        }
        // What a failed pull leaves goes into the result, not to the callback.
        if let Event::Stopped {
            totals, on_disk, ..
        } = event
        {
            self.totals = *totals;
            self.on_disk = *on_disk;
            return Flow::Continue;
        }
        match catch_unwind(AssertUnwindSafe(|| self.deliver(event))) {
            Ok(flow) => flow,
            Err(payload) => {
                // Stop the pull without unwinding through the core; reported as INTERNAL.
                self.panicked = Some(panic_text(payload.as_ref()));
                Flow::Cancel
            }
        }
    }
}

/// An event flattened to what `lemon_progress` carries (the tracked counters aside).
fn flatten<'a>(event: &Event<'a>) -> View<'a> {
    use lemon_progress_kind as K;
    match *event {
        Event::Resolved { repo, commit, .. } => {
            View::new(K::Resolved, repo, None).with_message(commit)
        }
        Event::WaitingForLock { repo, path } => {
            View::new(K::WaitingForLock, repo, None).with_message(path.to_string_lossy())
        }
        Event::PlanFile { file, source, .. } => {
            View::new(K::PlanFile, file.repo, Some(file)).with_message(source.name())
        }
        Event::Plan { .. } => View::new(K::Plan, "", None),
        Event::FileStart { file, .. } => View::new(K::FileStart, file.repo, Some(file)),
        Event::Progress { file, .. } => View::new(K::Progress, file.repo, Some(file)),
        Event::FileDone { file, reused, .. } => View::new(K::FileDone, file.repo, Some(file))
            .with_message(if reused { "reused" } else { "downloaded" }),
        Event::Retry {
            file,
            attempt,
            delay,
            reason,
        } => {
            let mut v = View::new(K::Retry, file.map_or("", |f| f.repo), file).with_message(reason);
            v.retry_attempt = attempt;
            v.retry_delay_ms = millis(delay);
            v
        }
        Event::Restart { file, reason } => {
            View::new(K::Restart, file.repo, Some(file)).with_message(reason)
        }
        Event::Salvaged {
            file, from, bytes, ..
        } => View::new(K::Salvage, file.repo, Some(file))
            .with_message(from)
            .with_bytes(bytes),
        Event::Reclaimed {
            repo,
            snapshot,
            bytes,
        } => View::new(K::Reclaimed, repo, None)
            .with_message(snapshot)
            .with_bytes(bytes),
        Event::Complete { repo, snapshot, .. } => {
            View::new(K::Complete, repo, None).with_message(snapshot.to_string_lossy())
        }
        Event::FromCache { cause } => View::new(K::FromCache, "", None).with_message(cause),
        Event::Tick { phase, .. } => View::new(K::Tick, "", None).with_message(phase.name()),
        // Never delivered: `on_event` puts it into the result.
        Event::Stopped { .. } => View::new(K::Tick, "", None).with_message("stopped"),
    }
}
