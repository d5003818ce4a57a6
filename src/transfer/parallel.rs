//! Parallel ranged download of one file, and the machinery that resumes a partial with holes.
//!
//! Used for a file of at least [`MIN_SIZE`] bytes when the pull allows more than one connection,
//! and for every partial that has a segments sidecar (see [`crate::transfer::segments`]), whatever the
//! number of connections: a partial with holes is never read as a prefix.
//!
//! ## The scheme
//! - **Pieces.** The bytes still missing are cut into pieces of at most [`PIECE_MAX`] bytes
//!   (smaller when little is missing, so every connection gets about [`PIECES_PER_CONNECTION`]),
//!   kept in one table under a mutex.
//!   A piece is `[next, end)` plus its owner; `next` moves on as its owner reserves bytes.
//! - **Claim.** A worker (one per connection, on `std::thread::scope`) takes the unowned piece
//!   with the lowest offset and asks for the rest of it with one `Range: bytes=next-(end-1)`
//!   request. Lowest first keeps the bytes on disk close to one contiguous prefix, which the hash
//!   needs. Only a `206` whose `Content-Range` is exactly that range is accepted; a `200` means
//!   the server ignores ranges (see *Fallback*).
//! - **Write.** Each read is reserved in the table (clamped to the piece's current end), written
//!   at its offset through the worker's own file handle, then recorded as done. A reservation
//!   happens under the lock, so no two workers ever write the same byte.
//! - **Steal.** A worker that finds no unowned piece splits the piece with the most bytes left in
//!   half, if its owner would need more than [`STEAL_AFTER`] for them at its pace since its request
//!   began (and has had [`STEAL_GRACE`] to show a pace): the owner's end moves to the middle, the
//!   thief takes the upper half. The owner notices at its next reservation, stops at the new end
//!   and drops its connection. A healthy connection is never split (its remainder would take less
//!   time than a new request costs), so only a slow or stalled one is relieved; if nothing can be
//!   stolen the idle worker waits ([`POLL`]) for a piece to be released or split.
//! - **Failures.** A transient failure releases the piece (anyone may continue it from its `next`),
//!   and the worker backs off with its own retry budget (reset whenever a request made real
//!   progress, not by one cut short after a few KiB: see [`Received`]; the wait
//!   ends early once other workers took every byte), reports the retry, and claims again, through
//!   the pinned `/resolve` URL: a worker reuses the signed URL it was redirected to only while its
//!   requests succeed (an expired one is refused, which is a retry). A fatal error, or one
//!   worker's spent retry budget, stops every worker.
//! - **Fallback.** A `200` to a range request: every worker stops, the partial is cut back to its
//!   contiguous prefix (checkpointed like a sequential one), the sidecar goes, and the sequential
//!   path continues from there (restarting from 0 itself if the server ignores its range too).
//! - **Coordinator** (the calling thread, which owns the [`Reporter`]): turns the workers' messages
//!   into progress and retry events, polls cancellation, hashes the contiguous prefix as it grows
//!   (read back from the partial; on resume that starts with the bytes already there, so the hash
//!   covers every byte in order), and checkpoints: after every [`checkpoint::INTERVAL`] new bytes
//!   it snapshots the done ranges, fsyncs the partial, then writes the sidecar.
//!
//! ## Invariants
//! - A range is in the sidecar only if it was written before the fsync that preceded the record,
//!   so after a kill or power loss every recorded byte is on disk; unrecorded bytes are fetched
//!   again, at most about one checkpoint interval in all plus what was in flight.
//! - The sidecar exists before the first byte is written out of order, and is removed only when the
//!   partial is a plain prefix again (whole, or cut back to its prefix for the fallback).
//! - The verify → restart-once → rename logic is shared with the sequential pass
//!   ([`crate::transfer::fetch`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::cancel::{Cancel, POLL};
use crate::error::{Error, Result};
use crate::net::http::{ByteRange, Http, Response};
use crate::net::retry::{Failure, Received, Retrier, RetryPlan};
use crate::options::RetryPolicy;
use crate::progress::{Event, Reporter};
use crate::transfer::checkpoint;
use crate::transfer::partial::{self, Complete, Task};
use crate::transfer::segments::RangeSet;
use crate::transfer::wire::{self, check_content_range, read_some, retry_status};
use crate::verify::ContentHasher;

/// Smallest file fetched with several connections; below it one connection is as fast.
const MIN_SIZE: u64 = 16 << 20;
/// Largest piece, i.e. largest single request. Small enough that the hash never lags far behind
/// and a slow connection's last piece is short; large enough that a request's round trip is a
/// small cost next to its transfer.
const PIECE_MAX: u64 = 16 << 20;
/// Smallest piece the missing bytes are cut into.
const PIECE_MIN: u64 = 1 << 20;
/// Pieces aimed for per connection, so that work is handed out in order and evens out.
const PIECES_PER_CONNECTION: u64 = 4;
/// A piece is split only when each half gets at least this much.
const STEAL_MIN: u64 = 1 << 20;
/// A piece is split only when its owner would need longer than this for the rest of it.
const STEAL_AFTER: Duration = Duration::from_secs(1);
/// How long a request runs before its pace is judged.
const STEAL_GRACE: Duration = Duration::from_millis(500);
/// Bytes read per call by one worker.
const WORKER_BUF: usize = 512 << 10;
/// Bytes hashed per step of the coordinator, between looks at the workers' messages.
const HASH_STEP: usize = 1 << 20;

/// Whether `task` goes through this module: its partial has holes, or it may use several
/// connections and is large enough to gain from them.
pub(crate) fn applies(task: &Task<'_>) -> bool {
    task.segments.exists() || (task.connections > 1 && task.file.size >= MIN_SIZE)
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
    let table = Table::new(&done, task.file.size, task.connections);
    let workers = table.pieces.len().min(task.connections.max(1) as usize);
    // Stops this pass's connections (even in a blocked read) without cancelling the pull, and
    // follows the pull's own cancellation.
    let outer = reporter.cancel().clone();
    let stop = Cancel::new(None, Some(Arc::new(move || outer.is_cancelled())));
    let conn_http = http.for_connections(workers, stop.clone())?;
    let shared = Shared {
        http: &conn_http,
        task,
        retry,
        table: Mutex::new(table),
        stop,
    };
    let mut hashing = Hashing::new(task, file, done.total())?;
    let outcome = std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        for me in 0..workers {
            let (tx, sh) = (tx.clone(), &shared);
            s.spawn(move || {
                let result = work(sh, me, &tx);
                let _ = tx.send(Msg::Exit(result));
            });
        }
        drop(tx);
        let result = coordinate(&shared, &rx, workers, reporter, &mut hashing);
        if result.is_err() {
            shared.stop.cancel();
        }
        result
    });
    let done = shared.into_done();
    match outcome {
        Ok(()) => finish(task, hashing, &done, reused).map(Pass::Complete),
        Err(Stop::NoRanges) => {
            to_prefix(task, &hashing.file, &done)?;
            Ok(Pass::NoRanges { reused })
        }
        Err(Stop::Failed(e)) => {
            persist(task, &hashing.file, &done);
            Err(e)
        }
    }
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
fn finish(task: &Task<'_>, hashing: Hashing, done: &RangeSet, reused: u64) -> Result<Complete> {
    let size = task.file.size;
    if done.prefix_end() != size || hashing.hashed != size {
        return Err(Error::Internal(format!(
            "parallel transfer of {} ended with {} of {size} bytes",
            task.file.path,
            done.prefix_end()
        )));
    }
    Ok(Complete {
        file: hashing.file,
        actual: hashing.hasher.finish(),
        reused,
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

/// What the workers share.
struct Shared<'a> {
    /// The pass's own client: its connections answer to `stop`.
    http: &'a Http,
    task: &'a Task<'a>,
    retry: RetryPolicy,
    table: Mutex<Table>,
    stop: Cancel,
}

impl Shared<'_> {
    fn table(&self) -> MutexGuard<'_, Table> {
        // A worker that panicked mid-update leaves the table usable: its piece is simply fetched
        // again, and the final hash covers every byte anyway.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn into_done(self) -> RangeSet {
        self.table
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .done
    }
}

/// From a worker to the coordinator.
enum Msg {
    /// Bytes written and recorded as done.
    Bytes(u64),
    /// The worker failed and retries after the plan's delay.
    Retry(RetryPlan),
    /// The worker ended.
    Exit(Result<(), Stop>),
}

/// Why the pass ended early.
enum Stop {
    /// The server answered a range request with the whole file.
    NoRanges,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

// ---------------------------------------------------------------------------------------------
// The table of pieces
// ---------------------------------------------------------------------------------------------

/// A run of missing bytes and who fetches it.
#[derive(Debug)]
struct Piece {
    /// First byte not yet reserved by the owner.
    next: u64,
    end: u64,
    owner: Option<usize>,
    /// When the owner's current request began, and the bytes it received since.
    since: Instant,
    got: u64,
}

impl Piece {
    fn left(&self) -> u64 {
        self.end.saturating_sub(self.next)
    }

    /// Whether the owner would need more than [`STEAL_AFTER`] for the rest at its pace so far.
    fn is_slow(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed < STEAL_GRACE {
            return false;
        }
        // left / (got / elapsed) > STEAL_AFTER, without dividing by zero.
        self.left() as f64 * elapsed.as_secs_f64() > STEAL_AFTER.as_secs_f64() * self.got as f64
    }
}

/// What a worker gets when it asks for work.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    /// Fetch this piece.
    Piece(usize),
    /// Nothing to take now; pieces are still in flight.
    Wait,
    /// Every byte is reserved.
    Finished,
}

#[derive(Debug)]
struct Table {
    pieces: Vec<Piece>,
    /// Bytes written (and, from the start, trusted) so far.
    done: RangeSet,
}

impl Table {
    /// The missing bytes of a `size`-byte file, cut into pieces for `connections` connections.
    fn new(done: &RangeSet, size: u64, connections: u32) -> Table {
        let holes = done.holes(size);
        let missing: u64 = holes.iter().map(|(a, b)| b - a).sum();
        let per = u64::from(connections.max(1)) * PIECES_PER_CONNECTION;
        let piece = (missing / per).clamp(PIECE_MIN, PIECE_MAX);
        let now = Instant::now();
        let mut pieces = Vec::new();
        for (mut start, end) in holes {
            while start < end {
                let stop = end.min(start.saturating_add(piece));
                pieces.push(Piece {
                    next: start,
                    end: stop,
                    owner: None,
                    since: now,
                    got: 0,
                });
                start = stop;
            }
        }
        Table {
            pieces,
            done: done.clone(),
        }
    }

    /// Hands worker `me` the lowest unowned piece, or half of a slow owner's piece.
    fn claim(&mut self, me: usize, now: Instant) -> Claim {
        let free = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.owner.is_none() && p.left() > 0)
            .min_by_key(|(_, p)| p.next)
            .map(|(i, _)| i);
        if let Some(i) = free {
            self.own(i, me, now);
            return Claim::Piece(i);
        }
        if self.finished() {
            return Claim::Finished;
        }
        let victim = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.owner.is_some() && p.left() >= 2 * STEAL_MIN && p.is_slow(now))
            .max_by_key(|(_, p)| p.left())
            .map(|(i, _)| i);
        match victim {
            Some(i) => {
                let stolen = self.split(i);
                self.own(stolen, me, now);
                Claim::Piece(stolen)
            }
            None => Claim::Wait,
        }
    }

    /// Every byte is reserved by some worker: nothing is left to claim.
    fn finished(&self) -> bool {
        self.pieces.iter().all(|p| p.left() == 0)
    }

    fn own(&mut self, i: usize, me: usize, now: Instant) {
        let p = &mut self.pieces[i];
        p.owner = Some(me);
        p.since = now;
        p.got = 0;
    }

    /// Cuts piece `i` in half; the upper half becomes a new, unowned piece, whose index is returned.
    fn split(&mut self, i: usize) -> usize {
        let p = &mut self.pieces[i];
        let mid = p.next + p.left() / 2;
        let upper = Piece {
            next: mid,
            end: p.end,
            owner: None,
            since: p.since,
            got: 0,
        };
        p.end = mid;
        self.pieces.push(upper);
        self.pieces.len() - 1
    }

    /// The owner of piece `i` received `n` bytes for offset `at`: how many of them it may write
    /// (the piece may have been cut short by a thief), and whether the piece goes on after them.
    fn reserve(&mut self, i: usize, at: u64, n: u64) -> (u64, bool) {
        let p = &mut self.pieces[i];
        if p.next != at {
            // Cannot happen: only the owner moves `next`. Writing nothing is the safe answer.
            return (0, false);
        }
        let take = n.min(p.left());
        p.next += take;
        p.got += n;
        (take, p.left() > 0)
    }

    fn written(&mut self, at: u64, n: u64) {
        self.done.insert(at, at + n);
    }

    /// The owner of piece `i` let go of it (finished, or failed and backing off).
    fn release(&mut self, i: usize) {
        self.pieces[i].owner = None;
    }

    /// `[next, end)` of piece `i`.
    fn bounds(&self, i: usize) -> (u64, u64) {
        (self.pieces[i].next, self.pieces[i].end)
    }
}

// ---------------------------------------------------------------------------------------------
// Workers
// ---------------------------------------------------------------------------------------------

/// Why fetching one piece ended early.
enum PieceError {
    NoRanges,
    Failed(Failure),
}

impl From<Failure> for PieceError {
    fn from(f: Failure) -> Self {
        PieceError::Failed(f)
    }
}

impl From<Error> for PieceError {
    fn from(e: Error) -> Self {
        PieceError::Failed(Failure::Fatal(e))
    }
}

/// One connection: claims pieces until none is left, retrying transient failures.
fn work(sh: &Shared<'_>, me: usize, tx: &Sender<Msg>) -> Result<(), Stop> {
    let path = &sh.task.partial_path;
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(Error::io_at("open", path))?;
    let mut buf = vec![0u8; WORKER_BUF];
    let mut retrier = Retrier::new(sh.retry);
    // The signed URL the last request was redirected to, reused while requests succeed.
    let mut signed: Option<String> = None;
    loop {
        sh.stop.check()?;
        // Bound first: a guard in the `match` scrutinee would hold the lock through the sleep.
        let claim = sh.table().claim(me, Instant::now());
        let piece = match claim {
            Claim::Finished => return Ok(()),
            Claim::Wait => {
                sh.stop.sleep(POLL)?;
                continue;
            }
            Claim::Piece(i) => i,
        };
        let mut got = Received::default();
        let mut conn = Connection {
            sh,
            tx,
            file: &mut file,
            buf: &mut buf,
            signed: &mut signed,
            got: &mut got,
        };
        let result = conn.fetch_piece(piece);
        sh.table().release(piece);
        match result {
            Ok(()) => retrier.succeeded(&got),
            Err(PieceError::NoRanges) => return Err(Stop::NoRanges),
            Err(PieceError::Failed(failure)) => {
                signed = None;
                let plan = retrier.next(failure, &got, sh.task.file.path)?;
                let delay = plan.delay;
                let _ = tx.send(Msg::Retry(plan));
                back_off(sh, delay)?;
            }
        }
    }
}

/// Waits `delay` before the next claim, cancellably, but no longer than there is work: when the
/// other workers took every byte meanwhile, a long `Retry-After` must not hold the file.
fn back_off(sh: &Shared<'_>, delay: Duration) -> Result<()> {
    let until = Instant::now() + delay;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || sh.table().finished() {
            return Ok(());
        }
        sh.stop.sleep(left.min(POLL))?;
    }
}

/// What one worker uses to fetch a piece.
struct Connection<'w, 's> {
    sh: &'w Shared<'s>,
    tx: &'w Sender<Msg>,
    file: &'w mut File,
    buf: &'w mut [u8],
    signed: &'w mut Option<String>,
    /// What the current request received, which decides whether its failure spends the budget.
    got: &'w mut Received,
}

impl Connection<'_, '_> {
    /// One request for the rest of piece `i`, streamed to its offsets until the piece ends (or a
    /// thief cut it short: then the connection is dropped with the rest of the answer unread).
    fn fetch_piece(&mut self, i: usize) -> Result<(), PieceError> {
        let (from, to) = self.sh.table().bounds(i);
        if from >= to {
            return Ok(());
        }
        let resp = self.open_range(from, to)?;
        // The piece is written front to back: one seek, then every write follows the last.
        self.file
            .seek(SeekFrom::Start(from))
            .map_err(|e| Error::io("seek", &self.sh.task.partial_path, e))?;
        let url = resp.url.clone();
        let mut body = resp.inner.into_body().into_reader();
        let size = self.sh.task.file.size;
        let mut at = from;
        while at < to {
            let want = (to - at).min(self.buf.len() as u64) as usize;
            let n = read_some(
                &mut body,
                &mut self.buf[..want],
                &self.sh.stop,
                &url,
                at,
                size,
            )?;
            let (take, more) = self.sh.table().reserve(i, at, n as u64);
            if take > 0 {
                self.file
                    .write_all(&self.buf[..take as usize])
                    .map_err(|e| Error::io("write", &self.sh.task.partial_path, e))?;
                self.sh.table().written(at, take);
                let _ = self.tx.send(Msg::Bytes(take));
            }
            self.got.add(n as u64);
            self.sh.http.throttle(n as u64)?;
            at += take;
            if !more {
                break;
            }
        }
        if at == to {
            // The body is complete; a last read sees its end, which returns the connection to
            // the pool for the next piece (it costs no I/O).
            let _ = body.read(&mut [0u8; 1]);
        }
        Ok(())
    }

    /// Sends `Range: bytes=from-(to-1)` and accepts only a `206` for exactly that range.
    fn open_range(&mut self, from: u64, to: u64) -> Result<Response, PieceError> {
        let task = self.sh.task;
        let (url, via_resolve) = match self.signed.as_deref() {
            Some(u) => (u.to_string(), false),
            None => (task.url.clone(), true),
        };
        let range = ByteRange::Closed(from, to - 1);
        let mut resp = wire::request(self.sh.http, task, &url, range, via_resolve)?;
        match resp.status {
            206 => check_content_range(task, &resp, from, Some(to - 1))?,
            200 => return Err(PieceError::NoRanges),
            _ => return Err(retry_status(&mut resp, task, "range not satisfiable").into()),
        }
        if resp.url != task.url {
            *self.signed = Some(resp.url.clone());
        }
        Ok(resp)
    }
}

// ---------------------------------------------------------------------------------------------
// The coordinator
// ---------------------------------------------------------------------------------------------

/// The calling thread's side: the hash of the contiguous prefix, and the checkpoint state.
struct Hashing {
    /// The coordinator's own handle on the partial, read sequentially by the hash.
    file: File,
    hasher: ContentHasher,
    hashed: u64,
    /// Bytes done when the sidecar was last written.
    recorded: u64,
    buf: Vec<u8>,
}

impl Hashing {
    fn new(task: &Task<'_>, mut file: File, recorded: u64) -> Result<Hashing> {
        file.seek(SeekFrom::Start(0))
            .map_err(Error::io_at("seek", &task.partial_path))?;
        Ok(Hashing {
            file,
            hasher: task.id.hasher(task.file.size),
            hashed: 0,
            recorded,
            buf: vec![0u8; HASH_STEP],
        })
    }

    /// Hashes up to [`HASH_STEP`] more bytes of the contiguous prefix; `true` if some were.
    fn step(&mut self, sh: &Shared<'_>) -> Result<bool> {
        let prefix = sh.table().done.prefix_end();
        if self.hashed >= prefix {
            return Ok(false);
        }
        let n = (prefix - self.hashed).min(HASH_STEP as u64) as usize;
        self.file
            .read_exact(&mut self.buf[..n])
            .map_err(Error::io_at("read", &sh.task.partial_path))?;
        self.hasher.update(&self.buf[..n]);
        self.hashed += n as u64;
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
        self.file.sync_data().map_err(Error::io_at("sync", path))?;
        sh.task.segments.save(path, sh.task.file.size, &snapshot)?;
        self.recorded = snapshot.total();
        Ok(())
    }
}

/// Runs on the calling thread until every worker ended: events, cancellation, hash, checkpoints.
fn coordinate(
    sh: &Shared<'_>,
    rx: &Receiver<Msg>,
    workers: usize,
    reporter: &mut Reporter,
    hashing: &mut Hashing,
) -> Result<(), Stop> {
    let mut live = workers;
    let mut hashing_behind = false;
    while live > 0 {
        // While the hash has catching up to do, do not wait for a message; otherwise do.
        let first = if hashing_behind {
            rx.try_recv().map_err(|e| e == TryRecvError::Disconnected)
        } else {
            rx.recv_timeout(POLL)
                .map_err(|e| e == RecvTimeoutError::Disconnected)
        };
        // Then everything else that is queued, so events never lag behind the hash.
        let queued = std::iter::from_fn(|| rx.try_recv().ok());
        for msg in std::iter::once(first).chain(queued.map(Ok)) {
            match msg {
                Ok(msg) => live -= handle(sh, msg, reporter)?,
                Err(true) => {
                    return Err(Stop::Failed(Error::Internal(
                        "a download thread ended without a word".into(),
                    )));
                }
                Err(false) => {}
            }
        }
        reporter.cancel().check()?;
        hashing_behind = hashing.step(sh)?;
        hashing.checkpoint_if_due(sh)?;
    }
    // Whatever the workers wrote last: the prefix is now the whole file.
    let cancel = reporter.cancel().clone();
    while hashing.step(sh)? {
        cancel.check()?;
    }
    Ok(())
}

/// Turns one worker message into events; returns how many workers ended with it (0 or 1).
fn handle(sh: &Shared<'_>, msg: Msg, reporter: &mut Reporter) -> Result<usize, Stop> {
    match msg {
        Msg::Bytes(n) => reporter.advance(sh.task.file, n)?,
        Msg::Retry(plan) => reporter.emit(&Event::Retry {
            file: Some(sh.task.file),
            attempt: plan.attempt,
            delay: plan.delay,
            reason: &plan.reason,
        })?,
        Msg::Exit(result) => {
            result?;
            return Ok(1);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn table(done: &[(u64, u64)], size: u64, connections: u32) -> Table {
        let mut set = RangeSet::default();
        for &(a, b) in done {
            set.insert(a, b);
        }
        Table::new(&set, size, connections)
    }

    #[test]
    fn pieces_cover_exactly_the_holes_in_order() {
        let t = table(&[(0, 3 * MB), (10 * MB, 11 * MB)], 40 * MB, 2);
        let covered: u64 = t.pieces.iter().map(Piece::left).sum();
        assert_eq!(covered, 40 * MB - 4 * MB);
        assert!(t.pieces.windows(2).all(|w| w[0].end <= w[1].next));
        assert!(t.pieces.iter().all(|p| p.left() <= PIECE_MAX));
        assert_eq!(t.pieces[0].next, 3 * MB);
        // A large file gets the largest pieces.
        let t = table(&[], 1 << 30, 8);
        assert_eq!(t.pieces.len(), 64);
    }

    #[test]
    fn claims_go_lowest_first_then_finish() {
        let mut t = table(&[], 4 * MB, 4);
        let now = Instant::now();
        assert_eq!(t.claim(0, now), Claim::Piece(0));
        assert_eq!(t.claim(1, now), Claim::Piece(1));
        // A released piece is taken before higher ones.
        t.release(0);
        assert_eq!(t.claim(2, now), Claim::Piece(0));
        assert_eq!(t.claim(3, now), Claim::Piece(2));
        assert_eq!(t.claim(3, now), Claim::Piece(3));
        for i in 0..4 {
            let (from, to) = t.bounds(i);
            assert_eq!(t.reserve(i, from, to - from), (to - from, false));
            t.written(from, to - from);
            t.release(i);
        }
        assert_eq!(t.claim(0, now), Claim::Finished);
        assert_eq!(t.done.prefix_end(), 4 * MB);
    }

    /// A table holding one piece `[0, len)`.
    fn one_piece(len: u64) -> Table {
        Table {
            pieces: vec![Piece {
                next: 0,
                end: len,
                owner: None,
                since: Instant::now(),
                got: 0,
            }],
            done: RangeSet::default(),
        }
    }

    #[test]
    fn only_slow_owners_are_split_and_never_below_the_reserved_bytes() {
        let mut t = one_piece(16 * MB);
        let start = Instant::now();
        assert_eq!(t.claim(0, start), Claim::Piece(0));
        let (from, _) = t.bounds(0);
        // A fast owner: 12 MiB in 0.6 s, 4 MiB left, well under a second.
        assert_eq!(t.reserve(0, from, 12 * MB), (12 * MB, true));
        let soon = start + Duration::from_millis(600);
        assert_eq!(t.claim(1, soon), Claim::Wait);
        // The same owner stalls: after 10 s its pace says the rest takes longer than a second.
        let later = start + Duration::from_secs(10);
        assert_eq!(t.claim(1, later), Claim::Piece(1));
        assert_eq!(t.bounds(0), (12 * MB, 14 * MB));
        assert_eq!(t.bounds(1), (14 * MB, 16 * MB));
        // The owner's next read runs into the new end: it may write only up to it.
        assert_eq!(t.reserve(0, 12 * MB, 3 * MB), (2 * MB, false));
        // Pieces under twice the minimum are never split, however slow.
        assert_eq!(t.reserve(1, 14 * MB, MB / 2), (MB / 2, true));
        assert_eq!(t.claim(2, later + Duration::from_secs(60)), Claim::Wait);
    }

    #[test]
    fn a_fresh_request_gets_its_grace_period() {
        let mut t = one_piece(16 * MB);
        let start = Instant::now();
        assert_eq!(t.claim(0, start), Claim::Piece(0));
        assert_eq!(t.claim(1, start + Duration::from_millis(100)), Claim::Wait);
        // No byte after the grace period: stolen.
        assert_eq!(t.claim(1, start + STEAL_GRACE), Claim::Piece(1));
    }
}
