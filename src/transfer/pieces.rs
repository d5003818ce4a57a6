//! The table the connections of a parallel pass share (see [`crate::transfer::parallel`]): which
//! pieces of the file are still missing, who fetches them and how much one request asks for,
//! which bytes are on disk, how far the contiguous prefix has been handed to the hash, and the
//! spare buffers that carry bytes to it.
//!
//! Everything here runs under one mutex, taken a few times per buffer of 512 KiB, never around
//! I/O.

use std::time::{Duration, Instant};

use crate::transfer::segments::RangeSet;

/// Largest piece, i.e. largest single request. Small enough that the hash never lags far behind
/// and a slow connection's last piece is short; large enough that a request's round trip is a
/// small cost next to its transfer.
pub(super) const PIECE_MAX: u64 = 16 << 20;
/// Smallest piece the missing bytes are cut into, and smallest request.
pub(super) const PIECE_MIN: u64 = 512 << 10;
/// Pieces aimed for per connection, so that work is handed out in order and evens out.
const PIECES_PER_CONNECTION: u64 = 4;
/// A request asks for at least this many times what its connection receives during one round
/// trip (at its share of the pass's rate), when that is more than fits the hash's window: the
/// request's set-up then costs about 1/16 of the connection's time.
const PIECE_PER_ROUND_TRIP: f64 = 16.0;
/// A piece is split only when each half gets at least this much.
const STEAL_MIN: u64 = 1 << 20;
/// A piece is split only when its owner would need longer than this for the rest of it.
const STEAL_AFTER: Duration = Duration::from_secs(1);
/// How long a request runs before its pace is judged.
const STEAL_GRACE: Duration = Duration::from_millis(500);
/// An owner that received nothing for this long has stalled: an idle worker takes all that is
/// left of its piece, however short (a piece too short to split would otherwise wait for the
/// stalled connection's timeout).
const STALLED: Duration = Duration::from_secs(2);
/// How long the hash's position may stand still before connections ahead of its window stop
/// waiting for it (see [`Table::should_wait`]). A live connection writes at least every
/// `worker::FLUSH_AFTER` (100 ms), so the position moves more often than this unless the
/// connection holding it stalled.
const STANDSTILL: Duration = Duration::from_millis(250);

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
    /// When the owner last received a byte (or began its request).
    last: Instant,
    /// The owner's request was cut to fit the hash's window ([`Table::fitting_piece`]).
    fitted: bool,
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

    /// Whether the owner received nothing for [`STALLED`].
    fn is_stalled(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= STALLED
    }
}

/// What a worker gets when it asks for work.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Claim {
    /// Fetch this piece.
    Piece(usize),
    /// Nothing to take now; pieces are still in flight.
    Wait,
    /// Nothing more for this worker: every byte is reserved, or the worker was retired.
    Finished,
}

#[derive(Debug)]
pub(super) struct Table {
    pieces: Vec<Piece>,
    /// Bytes written (and, from the start, trusted) so far.
    pub(super) done: RangeSet,
    /// Bytes `[0, fed)` are on their way to the hash: hashed, queued for it, or being read back
    /// for it. Always within the contiguous prefix of `done`.
    fed: u64,
    /// When `fed` last moved.
    fed_moved: Instant,
    /// Bytes past `fed` handed to the hash already (out of order, in buffers it keeps).
    ahead: RangeSet,
    /// Bytes hashed so far.
    hashed: u64,
    /// Buffers the hash gave back, for the next hand-over or read-back.
    spare: Vec<Vec<u8>>,
    /// How many more spare buffers may be made (they are made only when needed), of how many.
    may_allocate: usize,
    spares_total: usize,
    buf_size: usize,
    /// Workers numbered from here on stop at their next read and claim nothing more.
    active: usize,
    /// Connections in use now, which share the hash's window and the pass's rate.
    connections: u64,
    /// When the pass began, and the bytes on disk then: with `done`, the pass's rate.
    began: Instant,
    began_with: u64,
    /// The shortest time a request to the CDN took to be answered, over every connection (they
    /// all go to one host): the round trip. Longer ones were delayed by something else, such as
    /// a busy CPU.
    round_trip: Option<Duration>,
    /// Workers waiting for the hash to move on (so the hash wakes them only when there are).
    pub(super) waiting: usize,
}

impl Table {
    /// The missing bytes of a `size`-byte file, cut into pieces for up to `connections`
    /// connections, with up to `spares` spare buffers of `buf_size` bytes.
    pub(super) fn new(
        done: &RangeSet,
        size: u64,
        connections: u32,
        spares: usize,
        buf_size: usize,
    ) -> Table {
        let holes = done.holes(size);
        let missing: u64 = holes.iter().map(|(a, b)| b - a).sum();
        let per = u64::from(connections.max(1)) * PIECES_PER_CONNECTION;
        // In whole smallest pieces, so that requests cut from them are too.
        let piece = (missing / per).clamp(PIECE_MIN, PIECE_MAX) / PIECE_MIN * PIECE_MIN;
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
                    last: now,
                    fitted: false,
                });
                start = stop;
            }
        }
        Table {
            pieces,
            done: done.clone(),
            fed: 0,
            fed_moved: now,
            ahead: RangeSet::default(),
            hashed: 0,
            spare: Vec::new(),
            may_allocate: spares,
            spares_total: spares,
            buf_size,
            active: usize::MAX,
            connections: u64::from(connections.max(1)),
            began: now,
            began_with: done.total(),
            round_trip: None,
            waiting: 0,
        }
    }

    /// Pieces the missing bytes were cut into (before any split).
    pub(super) fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Hands worker `me` the lowest unowned piece, cut to [`Table::piece_size`] (the rest stays
    /// unowned), or half of a slow owner's piece.
    pub(super) fn claim(&mut self, me: usize, now: Instant) -> Claim {
        if me >= self.active {
            return Claim::Finished;
        }
        let free = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.owner.is_none() && p.left() > 0)
            .min_by_key(|(_, p)| p.next)
            .map(|(i, _)| i);
        if let Some(i) = free {
            let want = self.piece_size(now);
            let p = &self.pieces[i];
            if p.left() >= want + want / 2 {
                let cut = p.next + want;
                self.split_at(i, cut);
            }
            let fitted = self.pieces[i].left() <= self.fitting_piece();
            self.own(i, me, now, fitted);
            return Claim::Piece(i);
        }
        if self.finished() {
            return Claim::Finished;
        }
        let victim = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.owner.is_some() && p.left() > 0)
            .filter(|(_, p)| p.is_stalled(now) || (p.left() >= 2 * STEAL_MIN && p.is_slow(now)))
            .max_by_key(|(_, p)| p.left())
            .map(|(i, _)| i);
        let Some(i) = victim else {
            return Claim::Wait;
        };
        let p = &self.pieces[i];
        let stolen = if p.is_stalled(now) {
            // All of it: the owner stops at its next read, if it ever returns.
            self.split_at(i, p.next)
        } else {
            self.split(i)
        };
        self.own(stolen, me, now, false);
        Claim::Piece(stolen)
    }

    /// A request to the CDN took `took` to be answered.
    pub(super) fn learn_round_trip(&mut self, took: Duration) {
        self.round_trip = Some(self.round_trip.map_or(took, |r| r.min(took)));
    }

    /// How long a request should be: [`PIECE_PER_ROUND_TRIP`] times what a connection receives
    /// during a round trip at its share of the pass's rate, but no shorter than
    /// [`Table::fitting_piece`] (nor than [`PIECE_MIN`], nor longer than [`PIECE_MAX`]). Until the
    /// round trip and the rate are known: the fitting piece.
    ///
    /// The share, not what one connection received while it ran: on a machine with few cores the
    /// connections take turns, and each one's own rate is that of its turns.
    fn piece_size(&self, now: Instant) -> u64 {
        let fitting = self.fitting_piece();
        let secs = now.saturating_duration_since(self.began).as_secs_f64();
        let written = self.done.total().saturating_sub(self.began_with);
        let Some(round_trip) = self
            .round_trip
            .filter(|_| written >= PIECE_MIN && secs > 0.0)
        else {
            return fitting;
        };
        let share = written as f64 / secs / self.connections as f64;
        let want = share * round_trip.as_secs_f64() * PIECE_PER_ROUND_TRIP;
        (want as u64).clamp(fitting, PIECE_MAX)
    }

    /// The longest piece such that the pieces of all connections, handed out in order, fit in
    /// the hash's window (in whole buffers, at least [`PIECE_MIN`]). Requests of this size keep
    /// every connection's bytes close enough to the hash's position that it takes most of them
    /// from the connections' buffers (on a local link at 8 connections, 44–180 MiB of a 1 GiB file
    /// were still read back from disk, against 733–1008 MiB with 16 MiB requests).
    /// Where round trips are long next to a connection's share of the rate, requests must be
    /// longer ([`Table::piece_size`]) and their bytes are read back: that costs CPU, but at the
    /// rates such links give one connection, little of it.
    fn fitting_piece(&self) -> u64 {
        let buf = self.buf_size.max(1) as u64;
        let per = self.window() / self.connections / buf * buf;
        per.max(PIECE_MIN)
    }

    /// From now on `n` connections run (the auto search grew them).
    pub(super) fn set_connections(&mut self, n: usize) {
        self.connections = (n as u64).max(1);
    }

    /// Every byte is reserved by some worker: nothing is left to claim.
    pub(super) fn finished(&self) -> bool {
        self.pieces.iter().all(|p| p.left() == 0)
    }

    fn own(&mut self, i: usize, me: usize, now: Instant, fitted: bool) {
        let p = &mut self.pieces[i];
        p.owner = Some(me);
        p.since = now;
        p.got = 0;
        p.last = now;
        p.fitted = fitted;
    }

    /// Cuts piece `i` in half; the upper half becomes a new, unowned piece, whose index is returned.
    fn split(&mut self, i: usize) -> usize {
        let p = &self.pieces[i];
        let mid = p.next + p.left() / 2;
        self.split_at(i, mid)
    }

    /// Cuts piece `i` at `at`; `[at, end)` becomes a new, unowned piece, whose index is returned.
    fn split_at(&mut self, i: usize, at: u64) -> usize {
        let p = &mut self.pieces[i];
        let upper = Piece {
            next: at,
            end: p.end,
            owner: None,
            since: p.since,
            got: 0,
            last: p.since,
            fitted: false,
        };
        p.end = at;
        self.pieces.push(upper);
        self.pieces.len() - 1
    }

    /// The owner of piece `i` received `n` bytes for offset `at` (`now`): how many of them it may
    /// write (the piece may have been cut short by a thief), and whether the piece goes on after
    /// them (not when it ends there, nor when its owner was retired).
    pub(super) fn reserve(&mut self, i: usize, at: u64, n: u64, now: Instant) -> (u64, bool) {
        let active = self.active;
        let p = &mut self.pieces[i];
        if p.next != at {
            // Cannot happen: only the owner moves `next`. Writing nothing is the safe answer.
            return (0, false);
        }
        let take = n.min(p.left());
        p.next += take;
        p.got += n;
        if n > 0 {
            p.last = now;
        }
        let retired = p.owner.is_some_and(|o| o >= active);
        (take, p.left() > 0 && !retired)
    }

    /// Bytes `[at, at + n)` are written.
    pub(super) fn written(&mut self, at: u64, n: u64) {
        self.done.insert(at, at + n);
    }

    /// The owner of piece `i` let go of it (finished, failed and backing off, or retired); anyone
    /// may continue it from its `next`.
    pub(super) fn release(&mut self, i: usize) {
        self.pieces[i].owner = None;
    }

    /// `[next, end)` of piece `i`.
    pub(super) fn bounds(&self, i: usize) -> (u64, u64) {
        (self.pieces[i].next, self.pieces[i].end)
    }

    /// Workers numbered `n` and up stop: at their next read (their piece is released where they
    /// stopped) and at their next claim.
    pub(super) fn retire_from(&mut self, n: usize) {
        self.active = n;
        self.set_connections(n);
    }

    // ---- the feed of the hash -----------------------------------------------------------------

    /// The caller just wrote `[at, at + n)` from a buffer: if the hash can take the bytes from
    /// it, they count as fed and the buffer is traded for a spare one (returned). The hash takes
    /// them when they are the very next ones it needs, and also when they lie a little ahead
    /// (within [`Table::window`]) while spares are plentiful: it keeps them until the bytes before
    /// them arrive, so they need no read-back either. `None`: they will be read back.
    pub(super) fn hand_over(&mut self, at: u64, n: u64) -> Option<Vec<u8>> {
        let in_order = at == self.fed;
        let near = at > self.fed && at + n <= self.fed + self.window() && self.spares_left() > 2;
        if !(in_order || near) {
            return None;
        }
        let spare = self.take_spare()?;
        if in_order {
            self.feed_to(at + n);
        } else {
            self.ahead.insert(at, at + n);
        }
        Some(spare)
    }

    /// Whether `[at, ..)` are the next bytes the hash needs, not on their way to it yet.
    pub(super) fn is_next_to_feed(&self, at: u64) -> bool {
        self.fed == at
    }

    /// The next bytes of the prefix that are on disk but not on their way to the hash, at most
    /// one buffer of them, with a spare buffer to read them back into; they count as fed from
    /// here on. `None` when there is nothing to read back or no spare buffer.
    pub(super) fn read_back(&mut self) -> Option<(u64, usize, Vec<u8>)> {
        if self.unfed() == 0 {
            return None;
        }
        if self.spares_left() <= 2 {
            // The last two are for the bytes the hash needs next.
            return None;
        }
        let buf = self.take_spare()?;
        let (at, n) = self.feed(buf.len());
        Some((at, n, buf))
    }

    /// Like [`Table::read_back`], into the caller's own buffer of `max` bytes, and only when
    /// everything fed so far has reached the caller (`hashed`): the hash reads back itself.
    pub(super) fn read_back_own(&mut self, hashed: u64, max: usize) -> Option<(u64, usize)> {
        if self.fed != hashed || self.unfed() == 0 {
            return None;
        }
        Some(self.feed(max))
    }

    /// A buffer the hash is done with.
    pub(super) fn give_back(&mut self, buf: Vec<u8>) {
        self.spare.push(buf);
    }

    /// The hash has hashed `[0, hashed)`.
    pub(super) fn set_hashed(&mut self, hashed: u64) {
        self.hashed = hashed;
    }

    /// Whether the owner of piece `i`, about to receive a buffer of bytes for `at`, should wait
    /// for the hash first, because the bytes would otherwise go to disk to be read back later,
    /// at a cost in CPU the hash needs:
    /// - it is not continuing the contiguous prefix, and the hash lags more than
    ///   [`Table::window`] behind the prefix (the hash, not the network, is the bottleneck);
    /// - or its piece fits the window ([`Table::fitting_piece`]: the pieces were cut so that
    ///   every connection's bytes fit) but these bytes lie beyond it: another connection fell
    ///   behind, for instance while the machine's few cores ran other threads. It catches up
    ///   within moments (the hash's position moved within [`STANDSTILL`]); if it stalled
    ///   instead, nobody waits for it. A piece longer than the window's share (a connection whose
    ///   round trips need long requests) never waits on this account: its bytes lie beyond the
    ///   window by design, and waiting would cost the link's throughput.
    pub(super) fn should_wait(&self, i: usize, at: u64, now: Instant) -> bool {
        let prefix = self.done.prefix_end();
        if at > prefix && prefix > self.hashed + self.window() {
            return true;
        }
        let Some(p) = self.pieces.get(i) else {
            return false;
        };
        let fits = p.fitted;
        let beyond = at + self.buf_size as u64 > self.fed + self.window();
        let moving = now.saturating_duration_since(self.fed_moved) < STANDSTILL;
        fits && beyond && moving
    }

    /// Bytes from `fed` on that are on disk and not on their way to the hash: up to the end of
    /// the prefix, or the first bytes handed over ahead.
    fn unfed(&self) -> u64 {
        let prefix = self.done.prefix_end();
        let limit = self.ahead.first().map_or(prefix, |(a, _)| a.min(prefix));
        limit.saturating_sub(self.fed)
    }

    /// Counts up to `max` unfed bytes as fed; returns where they start and how many.
    fn feed(&mut self, max: usize) -> (u64, usize) {
        let at = self.fed;
        let n = self.unfed().min(max as u64) as usize;
        self.feed_to(at + n as u64);
        (at, n)
    }

    /// Moves `fed` to `to`, and on over the bytes handed over ahead that it reaches.
    fn feed_to(&mut self, to: u64) {
        if to > self.fed {
            self.fed = to;
            self.fed_moved = Instant::now();
        }
        while let Some((a, b)) = self.ahead.first() {
            if a > self.fed {
                break;
            }
            self.fed = self.fed.max(b);
            self.ahead.remove_below(self.fed);
        }
    }

    /// How far ahead of `fed` handed-over bytes may lie: what the spare buffers can hold, less
    /// two, which stay for the bytes the hash needs next (bytes ahead take a spare only while
    /// more than two are left).
    fn window(&self) -> u64 {
        (self.spares_total.saturating_sub(2) * self.buf_size) as u64
    }

    fn spares_left(&self) -> usize {
        self.spare.len() + self.may_allocate
    }

    fn take_spare(&mut self) -> Option<Vec<u8>> {
        if let Some(buf) = self.spare.pop() {
            return Some(buf);
        }
        if self.may_allocate == 0 {
            return None;
        }
        self.may_allocate -= 1;
        Some(vec![0; self.buf_size])
    }
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
        Table::new(&set, size, connections, 4, 16)
    }

    #[test]
    fn bytes_a_little_ahead_are_handed_over_and_skipped_by_the_read_back() {
        let mut set = RangeSet::default();
        set.insert(0, 0);
        // Six spare buffers of 10 bytes: a window of 40 bytes ahead.
        let mut t = Table::new(&set, 200, 1, 6, 10);
        t.written(30, 10);
        assert!(t.hand_over(30, 10).is_some(), "near: kept by the hash");
        t.written(50, 10);
        assert_eq!(t.hand_over(50, 10), None, "beyond the window");
        t.written(0, 10);
        assert!(t.hand_over(0, 10).is_some());
        t.written(10, 20);
        // 10..30 is read back; 30..40 is with the hash already; 40..50 is missing.
        assert_eq!(t.read_back().map(|(at, n, _)| (at, n)), Some((10, 10)));
        assert_eq!(t.read_back().map(|(at, n, _)| (at, n)), Some((20, 10)));
        assert_eq!(t.read_back().map(|(at, n, _)| (at, n)), None);
        assert!(t.is_next_to_feed(40));
        t.written(40, 10);
        // Only two spares are left: kept for the bytes needed next.
        t.written(70, 10);
        assert_eq!(t.hand_over(70, 10), None);
        assert!(t.hand_over(40, 10).is_some());
        assert_eq!(t.read_back_own(50, 10), Some((50, 10)));
        assert_eq!(t.read_back_own(60, 10), None, "60..70 is not on disk");
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
        let mut t = table(&[], 2 * MB, 4);
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
            assert_eq!(t.reserve(i, from, to - from, now), (to - from, false));
            t.written(from, to - from);
            t.release(i);
        }
        assert_eq!(t.claim(0, now), Claim::Finished);
        assert_eq!(t.done.prefix_end(), 2 * MB);
    }

    /// A table holding one piece `[0, len)`, which a claim takes whole (its window is wide).
    fn one_piece(len: u64) -> Table {
        let t = Table::new(&RangeSet::default(), len, 1, 40, 1 << 20);
        only_piece(t, len)
    }

    /// `t` with its pieces replaced by `[0, len)`.
    fn only_piece(mut t: Table, len: u64) -> Table {
        t.pieces = vec![Piece {
            next: 0,
            end: len,
            owner: None,
            since: Instant::now(),
            got: 0,
            last: Instant::now(),
            fitted: false,
        }];
        t
    }

    #[test]
    fn only_slow_owners_are_split_and_never_below_the_reserved_bytes() {
        let mut t = one_piece(16 * MB);
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(t.claim(0, start), Claim::Piece(0));
        let (from, _) = t.bounds(0);
        // A fast owner: 12 MiB in 0.6 s, 4 MiB left, well under a second.
        assert_eq!(t.reserve(0, from, 12 * MB, at(600)), (12 * MB, true));
        assert_eq!(t.claim(1, at(600)), Claim::Wait);
        // The same owner slows down to a trickle: after 4 s its pace says the rest takes
        // longer than a second. Half of the rest is taken.
        let next = 12 * MB + 64 * 1024;
        assert_eq!(
            t.reserve(0, 12 * MB, 64 * 1024, at(3500)),
            (64 * 1024, true)
        );
        assert_eq!(t.claim(1, at(4000)), Claim::Piece(1));
        let mid = next + (16 * MB - next) / 2;
        assert_eq!(t.bounds(0), (next, mid));
        assert_eq!(t.bounds(1), (mid, 16 * MB));
        // The owner's next read runs into the new end: it may write only up to it.
        assert_eq!(t.reserve(0, next, 3 * MB, at(4100)), (mid - next, false));
        // Pieces under twice the minimum are never split while their owner receives.
        assert_eq!(t.reserve(1, mid, MB / 2, at(4200)), (MB / 2, true));
        assert_eq!(t.claim(2, at(6000)), Claim::Wait);
    }

    #[test]
    fn a_stalled_owner_loses_all_that_is_left_however_short() {
        let mut t = one_piece(MB / 2);
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(t.claim(0, start), Claim::Piece(0));
        assert_eq!(t.reserve(0, 0, 100_000, at(100)), (100_000, true));
        // Too short to split, and its owner received something lately.
        assert_eq!(t.claim(1, at(1000)), Claim::Wait);
        // Nothing since for as long as STALLED: all the rest goes to the idle worker.
        assert_eq!(t.claim(1, at(100) + STALLED), Claim::Piece(1));
        assert_eq!(t.bounds(1), (100_000, MB / 2));
        assert_eq!(t.bounds(0), (100_000, 100_000));
        // If the stalled connection ever delivers again, none of it is written.
        assert_eq!(t.reserve(0, 100_000, 10, at(9000)), (0, false));
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

    #[test]
    fn retired_workers_stop_at_their_next_read_and_leave_the_rest_to_others() {
        let mut t = table(&[], 4 * MB, 2);
        let now = Instant::now();
        assert_eq!(t.claim(0, now), Claim::Piece(0));
        assert_eq!(t.claim(1, now), Claim::Piece(1));
        let (from, _) = t.bounds(1);
        assert_eq!(t.reserve(1, from, 100, now), (100, true));
        t.retire_from(1);
        // Worker 1 may keep what it received but goes no further.
        assert_eq!(t.reserve(1, from + 100, 100, now), (100, false));
        t.release(1);
        assert_eq!(t.claim(1, now), Claim::Finished);
        // Worker 0 continues the released piece where worker 1 stopped.
        assert_eq!(t.claim(0, now), Claim::Piece(1));
        assert_eq!(t.bounds(1).0, from + 200);
        assert_eq!(t.reserve(1, from + 200, 100, now), (100, true));
    }

    /// A table as a pass makes it: 16 spare buffers of 512 KiB, a window of 7 MiB.
    fn real_table(size: u64, connections: u32) -> Table {
        Table::new(&RangeSet::default(), size, connections, 16, 512 << 10)
    }

    #[test]
    fn claims_fit_the_window_until_round_trips_ask_for_more() {
        let mut t = real_table(64 * MB, 4);
        let now = Instant::now();
        // 7 MiB for 4 connections: 1.5 MiB each, in whole buffers.
        assert_eq!(t.claim(0, now), Claim::Piece(0));
        assert_eq!(t.bounds(0), (0, 3 * MB / 2));
        assert!(t.pieces[0].fitted);
        // The rest of the first piece is the lowest unowned one now.
        let Claim::Piece(i) = t.claim(1, now) else {
            panic!("a piece")
        };
        assert_eq!(t.bounds(i), (3 * MB / 2, 3 * MB));
        // With 16 connections the share is below the smallest piece: the smallest.
        t.set_connections(16);
        assert_eq!(t.fitting_piece(), PIECE_MIN);
        t.set_connections(4);
        // 64 MiB in one second over 4 connections, a round trip of 50 ms: a connection gets
        // 0.8 MiB per round trip, and asks for 16 times that.
        t.written(3 * MB, 64 * MB - 3 * MB);
        t.written(0, 3 * MB);
        let later = t.began + Duration::from_secs(1);
        t.learn_round_trip(Duration::from_millis(80));
        t.learn_round_trip(Duration::from_millis(50));
        let want = t.piece_size(later);
        assert!((13_400_000..13_500_000).contains(&want), "{want}");
        // On a local link (0.2 ms) the window's share is longer than that: it wins.
        t.learn_round_trip(Duration::from_micros(200));
        assert_eq!(t.piece_size(later), 3 * MB / 2);
        // Never longer than the longest piece.
        let mut t = real_table(64 * MB, 1);
        t.written(0, 64 * MB);
        t.learn_round_trip(Duration::from_secs(1));
        assert_eq!(t.piece_size(t.began + Duration::from_secs(1)), PIECE_MAX);
    }

    #[test]
    fn a_short_remainder_is_not_cut_off() {
        let mut t = only_piece(real_table(2 * MB, 4), 2 * MB);
        // The fitting piece is 1.5 MiB; the 0.5 MiB after it would be too short on its own.
        assert_eq!(t.claim(0, Instant::now()), Claim::Piece(0));
        assert_eq!(t.bounds(0), (0, 2 * MB));
        assert!(
            !t.pieces[0].fitted,
            "longer than fits: never waits for the window"
        );
    }

    #[test]
    fn connections_ahead_of_the_window_wait_while_the_hash_moves() {
        // Six spare buffers of 10 bytes: a window of 40 bytes ahead of what was fed.
        let mut t = Table::new(&RangeSet::default(), 200, 1, 6, 10);
        assert_eq!(t.claim(0, Instant::now()), Claim::Piece(0));
        assert!(t.pieces[0].fitted);
        let now = Instant::now();
        assert!(!t.should_wait(0, 30, now), "30..40 lies in the window");
        assert!(t.should_wait(0, 31, now), "31..41 does not");
        // The hash's position stood still too long: the connection holding it stalled, and
        // nobody waits for it any more.
        assert!(!t.should_wait(0, 31, now + STANDSTILL));
        // It moves again: the window moves with it.
        t.written(0, 10);
        assert!(t.hand_over(0, 10).is_some());
        let now = Instant::now();
        assert!(!t.should_wait(0, 40, now));
        assert!(t.should_wait(0, 41, now));
        // A piece longer than its share of the window never waits on this account.
        t.pieces[0].fitted = false;
        assert!(!t.should_wait(0, 41, now));
        // But every connection not continuing the prefix waits while the hash lags behind it.
        t.written(10, 60);
        assert!(t.should_wait(0, 100, now));
        assert!(!t.should_wait(0, 70, now), "the prefix itself goes on");
        t.set_hashed(30);
        assert!(!t.should_wait(0, 100, now));
    }

    #[test]
    fn the_hash_is_fed_in_order_from_buffers_or_by_reading_back() {
        let mut t = table(&[], 100, 1);
        // Far out of order: on disk, not fed.
        t.written(40, 10);
        assert_eq!(t.hand_over(40, 10), None);
        // The next bytes: traded for a spare buffer.
        t.written(0, 20);
        assert_eq!(t.hand_over(0, 20).map(|b| b.len()), Some(16));
        assert!(t.is_next_to_feed(20));
        // Bytes 20..50 are on disk now: read back, a buffer at a time, while spares last.
        t.written(20, 20);
        assert_eq!(t.read_back().map(|(at, n, _)| (at, n)), Some((20, 16)));
        assert_eq!(
            t.read_back(),
            None,
            "the last two spares wait for the next bytes"
        );
        // The hash reads back itself only once everything fed reached it.
        assert_eq!(t.read_back_own(20, 8), None);
        assert_eq!(t.read_back_own(36, 8), Some((36, 8)));
        t.give_back(vec![0; 16]);
        assert_eq!(t.read_back().map(|(at, n, _)| (at, n)), Some((44, 6)));
        assert_eq!(t.read_back_own(50, 8), None, "nothing past the prefix");
    }
}
