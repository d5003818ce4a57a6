//! The table the connections of a parallel pass share (see [`crate::transfer::parallel`]): which
//! pieces of the file are still missing and who fetches them, which bytes are on disk, how far the
//! contiguous prefix has been handed to the hash, and the spare buffers that carry bytes to it.
//!
//! Everything here runs under one mutex, taken a few times per buffer of 512 KiB, never around
//! I/O.

use std::time::{Duration, Instant};

use crate::transfer::segments::RangeSet;

/// Largest piece, i.e. largest single request. Small enough that the hash never lags far behind
/// and a slow connection's last piece is short; large enough that a request's round trip is a
/// small cost next to its transfer.
pub(super) const PIECE_MAX: u64 = 16 << 20;
/// Smallest piece the missing bytes are cut into.
pub(super) const PIECE_MIN: u64 = 1 << 20;
/// Pieces aimed for per connection, so that work is handed out in order and evens out.
const PIECES_PER_CONNECTION: u64 = 4;
/// A piece is split only when each half gets at least this much.
const STEAL_MIN: u64 = 1 << 20;
/// A piece is split only when its owner would need longer than this for the rest of it.
const STEAL_AFTER: Duration = Duration::from_secs(1);
/// How long a request runs before its pace is judged.
const STEAL_GRACE: Duration = Duration::from_millis(500);

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
            fed: 0,
            ahead: RangeSet::default(),
            hashed: 0,
            spare: Vec::new(),
            may_allocate: spares,
            spares_total: spares,
            buf_size,
            active: usize::MAX,
            waiting: 0,
        }
    }

    /// Pieces the missing bytes were cut into (before any split).
    pub(super) fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Hands worker `me` the lowest unowned piece, cut to about `want` bytes (the rest stays
    /// unowned), or half of a slow owner's piece.
    pub(super) fn claim(&mut self, me: usize, now: Instant, want: u64) -> Claim {
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
            let p = &self.pieces[i];
            let want = want.max(PIECE_MIN);
            if p.left() >= want + want / 2 {
                let cut = p.next + want;
                self.split_at(i, cut);
            }
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
    pub(super) fn finished(&self) -> bool {
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
        };
        p.end = at;
        self.pieces.push(upper);
        self.pieces.len() - 1
    }

    /// The owner of piece `i` received `n` bytes for offset `at`: how many of them it may write
    /// (the piece may have been cut short by a thief), and whether the piece goes on after them
    /// (not when it ends there, nor when its owner was retired).
    pub(super) fn reserve(&mut self, i: usize, at: u64, n: u64) -> (u64, bool) {
        let active = self.active;
        let p = &mut self.pieces[i];
        if p.next != at {
            // Cannot happen: only the owner moves `next`. Writing nothing is the safe answer.
            return (0, false);
        }
        let take = n.min(p.left());
        p.next += take;
        p.got += n;
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
            self.fed = at + n;
            self.absorb_ahead();
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

    /// Whether a worker about to receive bytes for `at` should wait for the hash: it is not
    /// continuing the contiguous prefix, and the hash lags more than [`Table::window`] behind
    /// the prefix (the hash, not the network, is the bottleneck then; bytes received now would
    /// only pile up on disk to be read back later, at a cost in CPU the hash needs).
    pub(super) fn should_wait_for_hash(&self, at: u64) -> bool {
        let prefix = self.done.prefix_end();
        at > prefix && prefix > self.hashed + self.window()
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
        self.fed += n as u64;
        self.absorb_ahead();
        (at, n)
    }

    /// Bytes handed over ahead that `fed` has reached are simply fed.
    fn absorb_ahead(&mut self) {
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
        let mut t = table(&[], 4 * MB, 4);
        let now = Instant::now();
        assert_eq!(t.claim(0, now, PIECE_MAX), Claim::Piece(0));
        assert_eq!(t.claim(1, now, PIECE_MAX), Claim::Piece(1));
        // A released piece is taken before higher ones.
        t.release(0);
        assert_eq!(t.claim(2, now, PIECE_MAX), Claim::Piece(0));
        assert_eq!(t.claim(3, now, PIECE_MAX), Claim::Piece(2));
        assert_eq!(t.claim(3, now, PIECE_MAX), Claim::Piece(3));
        for i in 0..4 {
            let (from, to) = t.bounds(i);
            assert_eq!(t.reserve(i, from, to - from), (to - from, false));
            t.written(from, to - from);
            t.release(i);
        }
        assert_eq!(t.claim(0, now, PIECE_MAX), Claim::Finished);
        assert_eq!(t.done.prefix_end(), 4 * MB);
    }

    /// A table holding one piece `[0, len)`.
    fn one_piece(len: u64) -> Table {
        let mut t = table(&[], len, 1);
        t.pieces = vec![Piece {
            next: 0,
            end: len,
            owner: None,
            since: Instant::now(),
            got: 0,
        }];
        t
    }

    #[test]
    fn only_slow_owners_are_split_and_never_below_the_reserved_bytes() {
        let mut t = one_piece(16 * MB);
        let start = Instant::now();
        assert_eq!(t.claim(0, start, PIECE_MAX), Claim::Piece(0));
        let (from, _) = t.bounds(0);
        // A fast owner: 12 MiB in 0.6 s, 4 MiB left, well under a second.
        assert_eq!(t.reserve(0, from, 12 * MB), (12 * MB, true));
        let soon = start + Duration::from_millis(600);
        assert_eq!(t.claim(1, soon, PIECE_MAX), Claim::Wait);
        // The same owner stalls: after 10 s its pace says the rest takes longer than a second.
        let later = start + Duration::from_secs(10);
        assert_eq!(t.claim(1, later, PIECE_MAX), Claim::Piece(1));
        assert_eq!(t.bounds(0), (12 * MB, 14 * MB));
        assert_eq!(t.bounds(1), (14 * MB, 16 * MB));
        // The owner's next read runs into the new end: it may write only up to it.
        assert_eq!(t.reserve(0, 12 * MB, 3 * MB), (2 * MB, false));
        // Pieces under twice the minimum are never split, however slow.
        assert_eq!(t.reserve(1, 14 * MB, MB / 2), (MB / 2, true));
        assert_eq!(
            t.claim(2, later + Duration::from_secs(60), PIECE_MAX),
            Claim::Wait
        );
    }

    #[test]
    fn a_fresh_request_gets_its_grace_period() {
        let mut t = one_piece(16 * MB);
        let start = Instant::now();
        assert_eq!(t.claim(0, start, PIECE_MAX), Claim::Piece(0));
        assert_eq!(
            t.claim(1, start + Duration::from_millis(100), PIECE_MAX),
            Claim::Wait
        );
        // No byte after the grace period: stolen.
        assert_eq!(t.claim(1, start + STEAL_GRACE, PIECE_MAX), Claim::Piece(1));
    }

    #[test]
    fn retired_workers_stop_at_their_next_read_and_leave_the_rest_to_others() {
        let mut t = table(&[], 4 * MB, 2);
        let now = Instant::now();
        assert_eq!(t.claim(0, now, PIECE_MAX), Claim::Piece(0));
        assert_eq!(t.claim(1, now, PIECE_MAX), Claim::Piece(1));
        let (from, _) = t.bounds(1);
        assert_eq!(t.reserve(1, from, 100), (100, true));
        t.retire_from(1);
        // Worker 1 may keep what it received but goes no further.
        assert_eq!(t.reserve(1, from + 100, 100), (100, false));
        t.release(1);
        assert_eq!(t.claim(1, now, PIECE_MAX), Claim::Finished);
        // Worker 0 continues the released piece where worker 1 stopped.
        assert_eq!(t.claim(0, now, PIECE_MAX), Claim::Piece(1));
        assert_eq!(t.bounds(1).0, from + 200);
        assert_eq!(t.reserve(1, from + 200, 100), (100, true));
    }

    #[test]
    fn a_claim_is_cut_to_what_the_worker_wants_and_the_rest_stays_in_order() {
        let mut t = table(&[], 64 * MB, 1);
        assert_eq!(t.pieces.len(), 4);
        let now = Instant::now();
        assert_eq!(t.claim(0, now, 2 * MB), Claim::Piece(0));
        assert_eq!(t.bounds(0), (0, 2 * MB));
        // The rest of the first piece is the lowest unowned one now.
        let Claim::Piece(i) = t.claim(1, now, 3 * MB) else {
            panic!("a piece")
        };
        assert_eq!(t.bounds(i), (2 * MB, 5 * MB));
        // Never below the smallest piece, and a short remainder is not cut off.
        let Claim::Piece(i) = t.claim(2, now, 1) else {
            panic!("a piece")
        };
        assert_eq!(t.bounds(i), (5 * MB, 6 * MB));
        let Claim::Piece(i) = t.claim(3, now, 8 * MB) else {
            panic!("a piece")
        };
        assert_eq!(t.bounds(i), (6 * MB, 16 * MB));
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
