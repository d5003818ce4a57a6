//! Parallel ranged download of one file, and the machinery that resumes a partial with holes.
//!
//! Used for a file of at least [`MIN_SIZE`] bytes when the pull allows more than one connection
//! (or chooses them itself, `connections` = auto), and for every partial that has a segments
//! sidecar (see [`crate::transfer::segments`]), whatever the number of connections: a partial with
//! holes is never read as a prefix.
//!
//! ## The scheme
//! - **Pieces** ([`crate::transfer::pieces`]). The bytes still missing are cut into pieces of at
//!   most 16 MiB (smaller when little is missing, so every connection gets about four), kept in
//!   one table under a mutex. A piece is `[next, end)` plus its owner; `next` moves on as its owner
//!   reserves bytes.
//! - **Claim.** A worker (one per connection, on `std::thread::scope`) takes the unowned piece
//!   with the lowest offset, cut to the size of one request, and asks for it with one
//!   `Range: bytes=next-(end-1)` request. Lowest first keeps the bytes close to one contiguous
//!   prefix, which the hash needs. Requests are sized so that all connections' requests together
//!   fit the hash's window (below) and the hash can take most bytes from the connections'
//!   buffers; they are longer only where the round trip is long next to a connection's share of
//!   the rate (16 round trips' worth: the set-up then costs a sixteenth of the connection's
//!   time), and at most 16 MiB. Only a `206` whose `Content-Range` is exactly that range is accepted; a `200`
//!   means the server ignores ranges (see *Fallback*).
//! - **Write** ([`crate::transfer::worker`]). Each read is reserved in the table (clamped to the
//!   piece's current end), so no two workers ever write the same byte; reads collect in the
//!   worker's 512 KiB buffer, which is written at its offset through the worker's own file handle
//!   when full (or after 100 ms), then recorded as done. Large writes matter: the writes of all
//!   connections to one file serialise on its inode lock, and small ones made the connections
//!   queue (and spin) on it.
//! - **Feed the hash.** The hash (sha256 or git sha1) must see the bytes in order. A worker whose
//!   buffer holds exactly the next bytes the hash needs hands the buffer itself to the coordinator
//!   (and takes a spare one in exchange): no read-back. Bytes written out of order are read back
//!   from the partial once the contiguous prefix covers them, a buffer at a time, by the workers
//!   after each write and by the coordinator when it has nothing else to hash; the coordinator
//!   hashes the buffers in offset order. So the coordinator's own thread is left almost only the
//!   hash, the one part that cannot be spread; reading back on it as well halved what one pass
//!   could hash. A bounded set of spare buffers carries the bytes; when all are with the hash, the
//!   worker holding the next bytes waits for one (backpressure, as the sequential pass has).
//! - **Keep to the window.** Reading back costs a copy of every byte: on a machine whose cores
//!   are all busy (a fast link, few cores) it cost a fifth of the CPU and made 8 connections
//!   slower than one. So a worker about to receive bytes beyond what the spare buffers can hold
//!   ahead of the hash's position waits, while that position moves, until it can hold them; and
//!   every worker off the prefix waits while the hash lags behind the prefix. A connection that
//!   stalls does not hold the others: once the position stood still for a moment they go on, and
//!   their bytes are read back (see [`crate::transfer::pieces::Table::should_wait`]).
//! - **Steal.** A worker that finds no unowned piece splits the piece with the most bytes left in
//!   half, if its owner would need more than a second for them at its pace since its request
//!   began (and has had half a second to show a pace): the owner's end moves to the middle, the
//!   thief takes the upper half. The owner notices at its next reservation, stops at the new end
//!   and drops its connection. A healthy connection is never split (its remainder would take less
//!   time than a new request costs), so only a slow or stalled one is relieved. An owner that
//!   received nothing for 2 s loses all that is left of its piece, however short (pieces are
//!   often too short to halve). If nothing can be stolen the idle worker waits ([`POLL`]) for a
//!   piece to be released or split.
//! - **Auto** ([`crate::transfer::ramp`]). With `connections` = auto the pass starts with one
//!   worker and doubles them while each step raises the rate by 10% or more (up to
//!   [`crate::options::AUTO_MAX_CONNECTIONS`]; a gain under 50% must hold over a second window);
//!   a step that did not is undone: its workers stop at their next read, release their pieces
//!   where they stopped and end.
//! - **Failures.** A transient failure releases the piece (anyone may continue it from its `next`),
//!   and the worker backs off with its own retry budget (reset whenever a request made real
//!   progress, not by one cut short after a few KiB: see [`crate::net::retry::Received`]; the wait
//!   ends early once other workers took every byte), reports the retry, and claims again, through
//!   the pinned `/resolve` URL: a worker reuses the signed URL it was redirected to only while its
//!   requests succeed (an expired one is refused, which is a retry). A fatal error, or one
//!   worker's spent retry budget, stops every worker.
//! - **Fallback.** A `200` to a range request: every worker stops, the partial is cut back to its
//!   contiguous prefix (checkpointed like a sequential one), the sidecar goes, and the sequential
//!   path continues from there (restarting from 0 itself if the server ignores its range too).
//! - **Coordinator** (the thread that called the pass, which owns the [`Reporter`]): turns the
//!   workers' messages into progress and retry events, polls cancellation, hashes, steers the
//!   auto search, and checkpoints: after every [`checkpoint::INTERVAL`] new bytes it snapshots the
//!   done ranges, fsyncs the partial, then writes the sidecar.
//!
//! Threads: the workers and the coordinator, nothing else; the hash runs on the coordinator. With
//! the pull's own two (the caller's and the pipeline's, which is the coordinator), a pull never
//! runs more than connections + 2 threads, and none outlives the pass.
//!
//! ## Invariants
//! - A range is in the sidecar only if it was written before the fsync that preceded the record,
//!   so after a kill or power loss every recorded byte is on disk; unrecorded bytes are fetched
//!   again, at most about one checkpoint interval in all plus what was in flight.
//! - Bytes a worker reserved are written before it lets go of its piece, however its stream ended
//!   (a dropped connection, a cancel): nobody else would fetch them.
//! - The sidecar exists before the first byte is written out of order, and is removed only when the
//!   partial is a plain prefix again (whole, or cut back to its prefix for the fallback).
//! - The verify → restart-once → rename logic is shared with the sequential pass
//!   ([`crate::transfer::fetch`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use crate::cancel::{Cancel, POLL};
use crate::error::{Error, Result};
use crate::net::http::Http;
use crate::options::RetryPolicy;
use crate::progress::{Event, Reporter};
use crate::transfer::checkpoint;
use crate::transfer::partial::{self, Complete, Connections, Task};
use crate::transfer::pieces::Table;
use crate::transfer::ramp::{Ramp, Step};
use crate::transfer::segments::RangeSet;
use crate::transfer::worker::{self, BUF_SIZE, Msg, Positioned, Shared, Stop};
use crate::verify::ContentHasher;

/// Smallest file fetched with several connections; below it one connection is as fast.
const MIN_SIZE: u64 = 16 << 20;
/// Spare buffers of [`BUF_SIZE`] carrying bytes to the hash (made only when needed): enough that
/// the hash never waits for the workers, few enough that memory stays small.
const SPARES: usize = 16;

/// Whether `task` goes through this module: its partial has holes, or it may use several
/// connections and is large enough to gain from them.
pub(crate) fn applies(task: &Task<'_>) -> bool {
    task.segments.exists() || (task.connections.may_split() && task.file.size >= MIN_SIZE)
}

/// How a parallel pass ended.
pub(crate) enum Pass {
    /// Every byte is on disk and hashed.
    Complete(Complete),
    /// The server ignores ranges: the partial is now a plain (checkpointed) prefix for the
    /// sequential path to continue. Only `reused` bytes of it were on disk before this pass; the
    /// rest arrived in it and is already counted as downloaded.
    NoRanges { reused: u64 },
}

/// One pass over the file with up to `task.connections` ranged connections.
pub(crate) fn fetch(
    http: &Http,
    retry: RetryPolicy,
    reporter: &mut Reporter,
    task: &Task<'_>,
) -> Result<Pass> {
    let (file, done) = open(task, reporter)?;
    let reused = done.total();
    reporter.file_start(task.file, reused)?;
    let limit = task.connections.limit();
    let mut table = Table::new(&done, task.file.size, limit, SPARES, BUF_SIZE);
    let most = table.piece_count().clamp(1, limit as usize);
    let (first, ramp) = match task.connections {
        Connections::Auto(_) => (1, Some(Ramp::new(most, Instant::now()))),
        Connections::Fixed(_) => (most, None),
    };
    table.set_connections(first);
    // Stops this pass's connections (even in a blocked read) without cancelling the pull, and
    // follows the pull's own cancellation.
    let outer = reporter.cancel().clone();
    let stop = Cancel::new(None, Some(Arc::new(move || outer.is_cancelled())));
    let conn_http = http.for_connections(most, stop.clone())?;
    let shared = Shared {
        http: &conn_http,
        task,
        retry,
        table: Mutex::new(table),
        returned: Condvar::new(),
        stop,
    };
    let mut hashing = Hashing::new(task, file, done.total());
    let mut crew = Crew::new(most, ramp);
    let outcome = std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let sh = &shared;
        let spawn = |me: usize| {
            let tx: Sender<Msg> = tx.clone();
            s.spawn(move || run_worker(sh, me, &tx));
        };
        crew.grow(first, &spawn);
        let result = coordinate(sh, &rx, &mut crew, &spawn, reporter, &mut hashing);
        if result.is_err() {
            shared.stop.cancel();
        }
        result
    });
    let done = shared.into_done();
    match outcome {
        Ok(()) => finish(task, hashing, &done, reused, crew.settled()).map(Pass::Complete),
        Err(Stop::NoRanges) => {
            to_prefix(task, &hashing.file.file, &done)?;
            Ok(Pass::NoRanges { reused })
        }
        Err(Stop::Failed(e)) => {
            persist(task, &hashing.file.file, &done);
            Err(e)
        }
    }
}

/// A worker's thread: always ends with [`Msg::Exit`], even when the worker panicked (a bug of
/// ours: the coordinator must still learn that it ended).
fn run_worker(sh: &Shared<'_>, me: usize, tx: &Sender<Msg>) {
    let result = catch_unwind(AssertUnwindSafe(|| worker::work(sh, me, tx))).unwrap_or_else(|_| {
        Err(Stop::Failed(Error::Internal(
            "a download thread panicked".into(),
        )))
    });
    let _ = tx.send(Msg::Exit(result));
}

/// Opens the partial and decides which of its bytes can be trusted: the sidecar's ranges if there
/// is one, else the prefix the sequential rules trust. Afterwards the sidecar exists (the file
/// may get holes from here on) and the sequential checkpoint is gone.
fn open(task: &Task<'_>, reporter: &mut Reporter) -> Result<(File, RangeSet)> {
    let path = &task.partial_path;
    let (file, done) = match task.segments.trusted(path, task.file.size) {
        Some(done) => {
            let file = partial::open_partial(task)?;
            // Bytes past the end cannot belong to this file.
            if file.metadata().map(|m| m.len()).unwrap_or(0) > task.file.size {
                file.set_len(task.file.size)
                    .map_err(Error::io_at("truncate", path))?;
            }
            (file, done)
        }
        None => {
            let (file, trusted) = partial::open_prefix(task, reporter)?;
            (file, RangeSet::prefix(trusted))
        }
    };
    file.sync_data().map_err(Error::io_at("sync", path))?;
    task.segments.save(path, task.file.size, &done)?;
    task.checkpoint.clear();
    Ok((file, done))
}

/// Every byte is on disk and hashed: the shared verify step decides, and flushes, renames and
/// drops the sidecar (`promote`) or deletes it all (`discard`).
fn finish(
    task: &Task<'_>,
    hashing: Hashing,
    done: &RangeSet,
    reused: u64,
    connections: u32,
) -> Result<Complete> {
    let size = task.file.size;
    if done.prefix_end() != size || hashing.hashed != size {
        return Err(Error::Internal(format!(
            "parallel transfer of {} ended with {} of {size} bytes",
            task.file.path,
            done.prefix_end()
        )));
    }
    Ok(Complete {
        file: hashing.file.file,
        actual: hashing.hasher.finish(),
        reused,
        connections,
    })
}

/// The server ignores ranges: keep the contiguous prefix as a checkpointed plain partial (order:
/// cut, sync, checkpoint, then drop the sidecar, so a crash in between leaves a consistent pair).
fn to_prefix(task: &Task<'_>, file: &File, done: &RangeSet) -> Result<()> {
    let path = &task.partial_path;
    let keep = done.prefix_end();
    file.set_len(keep).map_err(Error::io_at("truncate", path))?;
    file.sync_data().map_err(Error::io_at("sync", path))?;
    if keep > 0 {
        task.checkpoint.record(path, keep)?;
    }
    task.segments.clear();
    Ok(())
}

/// Best effort on the way out of a failed or cancelled pass: flush, then record what is done, so
/// the next pull resumes each piece from exactly here.
fn persist(task: &Task<'_>, file: &File, done: &RangeSet) {
    if file.sync_data().is_ok() {
        let _ = task.segments.save(&task.partial_path, task.file.size, done);
    }
}

impl Shared<'_> {
    fn into_done(self) -> RangeSet {
        self.table
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .done
    }
}

// ---------------------------------------------------------------------------------------------
// The coordinator
// ---------------------------------------------------------------------------------------------

/// The workers as the coordinator sees them, and the auto search that sizes them.
struct Crew {
    /// Workers started so far (numbered `0..started`) and still running.
    started: usize,
    live: usize,
    /// Which workers have delivered bytes.
    delivered: Vec<bool>,
    /// Bytes the workers wrote in this pass.
    bytes: u64,
    most: usize,
    ramp: Option<Ramp>,
}

impl Crew {
    fn new(most: usize, ramp: Option<Ramp>) -> Crew {
        Crew {
            started: 0,
            live: 0,
            delivered: vec![false; most],
            bytes: 0,
            most,
            ramp,
        }
    }

    /// Starts workers until `n` were started.
    fn grow(&mut self, n: usize, spawn: &dyn Fn(usize)) {
        while self.started < n.min(self.most) {
            spawn(self.started);
            self.started += 1;
            self.live += 1;
        }
    }

    /// The connections the pass uses now: for auto, what the search settled on (or, when the
    /// file ended first, the most connections a judged step showed to pay).
    fn settled(&self) -> u32 {
        let n = self.ramp.as_ref().map_or(self.started, Ramp::connections);
        n.min(self.started).max(1) as u32
    }

    /// One step of the auto search, if there is one.
    fn steer(&mut self, sh: &Shared<'_>, spawn: &dyn Fn(usize)) {
        let Some(ramp) = self.ramp.as_mut() else {
            return;
        };
        if sh.table().finished() {
            // Every byte is taken: more connections would find nothing to fetch.
            ramp.stop();
            return;
        }
        let now = ramp.connections().min(self.delivered.len());
        let delivering = self.delivered[..now].iter().filter(|d| **d).count();
        match ramp.tick(Instant::now(), self.bytes, delivering) {
            Step::Hold => {}
            Step::Grow(n) => {
                sh.table().set_connections(n);
                self.grow(n, spawn);
            }
            Step::Shrink(n) => sh.table().retire_from(n),
        }
    }
}

/// The coordinator's side of the hash: buffers that arrived out of order wait in `pending`.
struct Hashing {
    /// The coordinator's own handle on the partial, for reading back and syncing.
    file: Positioned,
    hasher: ContentHasher,
    hashed: u64,
    pending: BTreeMap<u64, (Vec<u8>, usize)>,
    /// Bytes done when the sidecar was last written.
    recorded: u64,
    own: Vec<u8>,
}

impl Hashing {
    fn new(task: &Task<'_>, file: File, recorded: u64) -> Hashing {
        Hashing {
            file: Positioned::new(file),
            hasher: task.id.hasher(task.file.size),
            hashed: 0,
            pending: BTreeMap::new(),
            recorded,
            own: Vec::new(),
        }
    }

    /// Hashes the next buffer: one that arrived, or else one it reads back itself when nothing
    /// is on its way; `false` when there is nothing to hash now.
    fn step(&mut self, sh: &Shared<'_>) -> Result<bool> {
        if let Some(entry) = self.pending.first_entry()
            && *entry.key() == self.hashed
        {
            let (buf, len) = entry.remove();
            self.hasher.update(&buf[..len]);
            self.hashed += len as u64;
            sh.hashed(self.hashed, Some(buf));
            return Ok(true);
        }
        if self.own.is_empty() {
            self.own = vec![0; BUF_SIZE];
        }
        let Some((at, n)) = sh.table().read_back_own(self.hashed, self.own.len()) else {
            return Ok(false);
        };
        self.file
            .read_exact_at(at, &mut self.own[..n], &sh.task.partial_path)?;
        self.hasher.update(&self.own[..n]);
        self.hashed += n as u64;
        sh.hashed(self.hashed, None);
        Ok(true)
    }

    /// Every [`checkpoint::INTERVAL`] new bytes: snapshot the done ranges, fsync, record them.
    fn checkpoint_if_due(&mut self, sh: &Shared<'_>) -> Result<()> {
        let total = sh.table().done.total();
        if total < self.recorded + checkpoint::INTERVAL {
            return Ok(());
        }
        // Snapshot first: every byte in it was written before the sync below starts.
        let snapshot = sh.table().done.clone();
        let path = &sh.task.partial_path;
        self.file
            .file
            .sync_data()
            .map_err(Error::io_at("sync", path))?;
        sh.task.segments.save(path, sh.task.file.size, &snapshot)?;
        self.recorded = snapshot.total();
        Ok(())
    }
}

/// Runs on the calling thread until every worker ended: events, cancellation, hash, checkpoints,
/// and the auto search.
fn coordinate(
    sh: &Shared<'_>,
    rx: &Receiver<Msg>,
    crew: &mut Crew,
    spawn: &dyn Fn(usize),
    reporter: &mut Reporter,
    hashing: &mut Hashing,
) -> Result<(), Stop> {
    let mut busy = false;
    while crew.live > 0 {
        // While there is hashing to do, do not wait for a message; otherwise do.
        let first = if busy {
            rx.try_recv().map_err(|e| e == TryRecvError::Disconnected)
        } else {
            rx.recv_timeout(POLL)
                .map_err(|e| e == RecvTimeoutError::Disconnected)
        };
        // Then everything else that is queued, so events never lag behind the hash.
        let queued = std::iter::from_fn(|| rx.try_recv().ok());
        for msg in std::iter::once(first).chain(queued.map(Ok)) {
            match msg {
                Ok(msg) => handle(sh, msg, crew, reporter, hashing)?,
                Err(true) => {
                    return Err(Stop::Failed(Error::Internal(
                        "a download thread ended without a word".into(),
                    )));
                }
                Err(false) => {}
            }
        }
        reporter.cancel().check()?;
        busy = hashing.step(sh)?;
        hashing.checkpoint_if_due(sh)?;
        crew.steer(sh, spawn);
    }
    // Whatever the workers wrote last: the prefix is now the whole file.
    let cancel = reporter.cancel().clone();
    while hashing.step(sh)? {
        cancel.check()?;
    }
    Ok(())
}

/// Turns one worker message into events, hash input or the end of a worker.
fn handle(
    sh: &Shared<'_>,
    msg: Msg,
    crew: &mut Crew,
    reporter: &mut Reporter,
    hashing: &mut Hashing,
) -> Result<(), Stop> {
    match msg {
        Msg::Written { me, n } => {
            crew.bytes += n;
            if let Some(d) = crew.delivered.get_mut(me) {
                *d = true;
            }
            reporter.advance(sh.task.file, n)?;
        }
        Msg::Hash { at, buf, len } => {
            hashing.pending.insert(at, (buf, len));
        }
        Msg::Retry(plan) => reporter.emit(&Event::Retry {
            file: Some(sh.task.file),
            attempt: plan.attempt,
            delay: plan.delay,
            reason: &plan.reason,
        })?,
        Msg::Exit(result) => {
            crew.live -= 1;
            result?;
        }
    }
    Ok(())
}
