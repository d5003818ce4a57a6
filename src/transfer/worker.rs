//! One connection of a parallel pass (see [`crate::transfer::parallel`]): claims pieces, fetches
//! each with one ranged request, writes what arrives at its offset a buffer at a time, feeds the
//! hash, and retries what is transient. Also what the connections share with the coordinator.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::cancel::{Cancel, POLL};
use crate::error::{Error, Result};
use crate::net::http::{ByteRange, Http, Response};
use crate::net::retry::{Failure, Received, Retrier, RetryPlan};
use crate::options::RetryPolicy;
use crate::transfer::partial::Task;
use crate::transfer::pieces::{Claim, Table};
use crate::transfer::wire::{self, check_content_range, read_some, retry_status};

/// Bytes per buffer: what a connection writes at once, and what travels to the hash at once.
/// Large enough that the writes of several connections to one file rarely meet on its lock.
pub(super) const BUF_SIZE: usize = 512 << 10;
/// A connection writes what it received at least this often, even with its buffer not full, so a
/// slow one still shows progress and feeds the hash.
const FLUSH_AFTER: Duration = Duration::from_millis(100);

/// What the connections and the coordinator share.
pub(super) struct Shared<'a> {
    /// The pass's own client: its connections answer to `stop`.
    pub(super) http: &'a Http,
    pub(super) task: &'a Task<'a>,
    pub(super) retry: RetryPolicy,
    pub(super) table: Mutex<Table>,
    /// Signalled when the hash moved on (and may have given a buffer back).
    pub(super) returned: Condvar,
    pub(super) stop: Cancel,
}

impl Shared<'_> {
    pub(super) fn table(&self) -> MutexGuard<'_, Table> {
        // A worker that panicked mid-update leaves the table usable: its piece is simply fetched
        // again, and the final hash covers every byte anyway.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hash is done with `buf` (if any) and has hashed `[0, hashed)`.
    pub(super) fn hashed(&self, hashed: u64, buf: Option<Vec<u8>>) {
        let mut table = self.table();
        table.set_hashed(hashed);
        if let Some(buf) = buf {
            table.give_back(buf);
        }
        // Waking costs a system call, and the hash runs this for every buffer: only when needed.
        let wake = table.waiting > 0;
        drop(table);
        if wake {
            self.returned.notify_all();
        }
    }

    /// Waits (at most [`POLL`]) for the hash to move on.
    fn wait_for_hash<'t>(&self, mut table: MutexGuard<'t, Table>) -> MutexGuard<'t, Table> {
        table.waiting += 1;
        let mut table = self
            .returned
            .wait_timeout(table, POLL)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        table.waiting -= 1;
        table
    }
}

/// From a worker to the coordinator.
pub(super) enum Msg {
    /// Worker `me` wrote `n` more bytes.
    Written { me: usize, n: u64 },
    /// Bytes `[at, at + len)` of the contiguous prefix, in `buf`, for the hash.
    Hash { at: u64, buf: Vec<u8>, len: usize },
    /// The worker failed and retries after the plan's delay.
    Retry(RetryPlan),
    /// The worker ended.
    Exit(Result<(), Stop>),
}

/// Why the pass ended early.
pub(super) enum Stop {
    /// The server answered a range request with the whole file.
    NoRanges,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// A file handle that knows where it stands, so consecutive writes need no seek.
pub(super) struct Positioned {
    pub(super) file: File,
    pos: Option<u64>,
}

impl Positioned {
    pub(super) fn new(file: File) -> Positioned {
        Positioned { file, pos: None }
    }

    fn seek_to(&mut self, at: u64, path: &Path) -> Result<()> {
        if self.pos != Some(at) {
            self.pos = None;
            self.file
                .seek(SeekFrom::Start(at))
                .map_err(Error::io_at("seek", path))?;
        }
        Ok(())
    }

    pub(super) fn write_all_at(&mut self, at: u64, data: &[u8], path: &Path) -> Result<()> {
        self.seek_to(at, path)?;
        self.pos = None;
        self.file
            .write_all(data)
            .map_err(|e| Error::io("write", path, e))?;
        self.pos = Some(at + data.len() as u64);
        Ok(())
    }

    pub(super) fn read_exact_at(&mut self, at: u64, buf: &mut [u8], path: &Path) -> Result<()> {
        self.seek_to(at, path)?;
        self.pos = None;
        self.file
            .read_exact(buf)
            .map_err(Error::io_at("read", path))?;
        self.pos = Some(at + buf.len() as u64);
        Ok(())
    }
}

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

/// Worker `me`: claims pieces until none is left for it, retrying transient failures.
pub(super) fn work(sh: &Shared<'_>, me: usize, tx: &Sender<Msg>) -> Result<(), Stop> {
    let path = &sh.task.partial_path;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(Error::io_at("open", path))?;
    let mut conn = Connection {
        sh,
        tx,
        me,
        file: Positioned::new(file),
        buf: vec![0u8; BUF_SIZE],
        signed: None,
        got: Received::default(),
        reached_cdn: false,
    };
    let mut retrier = Retrier::new(sh.retry);
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
        conn.got = Received::default();
        let result = conn.fetch_piece(piece);
        sh.table().release(piece);
        match result {
            Ok(()) => retrier.succeeded(&conn.got),
            Err(PieceError::NoRanges) => return Err(Stop::NoRanges),
            Err(PieceError::Failed(failure)) => {
                conn.signed = None;
                let plan = retrier.next(failure, &conn.got, sh.task.file.path)?;
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

/// Bytes received but not yet written: `[start, start + len)`, at the front of the buffer.
struct Batch {
    start: u64,
    len: usize,
    since: Instant,
}

/// What one worker uses to fetch its pieces.
struct Connection<'w, 's> {
    sh: &'w Shared<'s>,
    tx: &'w Sender<Msg>,
    me: usize,
    file: Positioned,
    buf: Vec<u8>,
    /// The signed URL the last request was redirected to, reused while requests succeed.
    signed: Option<String>,
    /// What the current request received, which decides whether its failure spends the budget.
    got: Received,
    /// Whether this connection sent a request straight to the CDN before (its connection to the
    /// CDN is open then).
    reached_cdn: bool,
}

impl Connection<'_, '_> {
    /// One request for the rest of piece `i`, streamed to its offsets until the piece ends (or a
    /// thief cut it short, or this worker was retired: then the connection is dropped with the
    /// rest of the answer unread).
    fn fetch_piece(&mut self, i: usize) -> Result<(), PieceError> {
        let (from, to) = self.sh.table().bounds(i);
        if from >= to {
            return Ok(());
        }
        // How long a request to the CDN takes to be answered sizes the pieces (see
        // `Table::piece_size`): not one through `/resolve` (two round trips, maybe new
        // connections), nor this connection's first one to the CDN (it may have opened the
        // connection: a TCP and TLS handshake).
        let direct = self.signed.is_some();
        let measure = direct && self.reached_cdn;
        let asked = Instant::now();
        let resp = self.open_range(from, to)?;
        let answered = Instant::now();
        let url = resp.url.clone();
        let mut body = resp.inner.into_body().into_reader();
        let mut batch = Batch {
            start: from,
            len: 0,
            since: answered,
        };
        let streamed = self.stream(i, &mut body, &url, to, &mut batch);
        // Whatever arrived is written, however the stream ended: it is reserved, so nobody else
        // fetches it.
        let flushed = self.flush(&mut batch);
        let at = streamed?;
        flushed?;
        if measure {
            self.sh.table().learn_round_trip(answered - asked);
        }
        self.reached_cdn |= direct;
        if at == to {
            // The body is complete; a last read sees its end, which returns the connection to
            // the pool for the next piece (it costs no I/O).
            let _ = body.read(&mut [0u8; 1]);
        }
        Ok(())
    }

    /// Reads the body into the buffer, reserving each read in the table, and writes the buffer
    /// out whenever it is full or [`FLUSH_AFTER`] passed. Returns where the stream stopped.
    fn stream(
        &mut self,
        i: usize,
        body: &mut impl Read,
        url: &str,
        to: u64,
        batch: &mut Batch,
    ) -> Result<u64, PieceError> {
        let size = self.sh.task.file.size;
        let mut at = batch.start;
        while at < to {
            if batch.len == 0 {
                self.keep_pace(i, at);
            }
            let room = self.buf.len() - batch.len;
            let want = (to - at).min(room as u64) as usize;
            let window = &mut self.buf[batch.len..batch.len + want];
            let n = read_some(body, window, &self.sh.stop, url, at, size)?;
            self.got.add(n as u64);
            let (take, more) = self.sh.table().reserve(i, at, n as u64, Instant::now());
            batch.len += take as usize;
            at += take;
            self.sh.http.throttle(n as u64)?;
            if !more {
                break;
            }
            if batch.len == self.buf.len() || batch.since.elapsed() >= FLUSH_AFTER {
                self.flush(batch)?;
            }
        }
        Ok(at)
    }

    /// Writes the batch at its offset, records it, and feeds the hash: with the buffer itself when
    /// these are the very bytes it needs next (no read-back), and by reading back a buffer of the
    /// prefix that other connections wrote earlier, when there is one.
    fn flush(&mut self, batch: &mut Batch) -> Result<()> {
        let (at, len) = (batch.start, batch.len);
        batch.start += len as u64;
        batch.len = 0;
        batch.since = Instant::now();
        if len == 0 {
            return Ok(());
        }
        let sh = self.sh;
        let path = &sh.task.partial_path;
        self.file.write_all_at(at, &self.buf[..len], path)?;
        let n = len as u64;
        let mut table = sh.table();
        table.written(at, n);
        let mut spare = table.hand_over(at, n);
        while spare.is_none() && table.is_next_to_feed(at) && !sh.stop.is_cancelled() {
            // The hash needs exactly these bytes but holds every spare buffer: wait for one
            // rather than read the bytes back later (the hash is the bottleneck then anyway).
            table = sh.wait_for_hash(table);
            spare = table.hand_over(at, n);
        }
        let back = table.read_back();
        drop(table);
        if let Some(spare) = spare {
            let buf = std::mem::replace(&mut self.buf, spare);
            let _ = self.tx.send(Msg::Hash { at, buf, len });
        }
        let _ = self.tx.send(Msg::Written { me: self.me, n });
        if let Some((at, len, mut buf)) = back {
            self.file.read_exact_at(at, &mut buf[..len], path)?;
            let _ = self.tx.send(Msg::Hash { at, buf, len });
        }
        Ok(())
    }

    /// Waits while the hash is not ready for the bytes of piece `i` at `at` (see
    /// [`Table::should_wait`]) before receiving them.
    fn keep_pace(&self, i: usize, at: u64) {
        let sh = self.sh;
        let mut table = sh.table();
        while table.should_wait(i, at, Instant::now()) && !sh.stop.is_cancelled() {
            table = sh.wait_for_hash(table);
        }
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
            self.signed = Some(resp.url.clone());
        }
        Ok(resp)
    }
}
