//! Which byte ranges of a partial file are on disk, for partials written by several connections at
//! once (the parallel pass): such a partial has holes, so its length says nothing about how much of
//! it is good.
//!
//! The record is a sidecar next to the checkpoints, `.lemon-pull/partials/<alg>-<hex>.segments.json`,
//! outside the snapshot (lemonade never sees it) and keyed by the content id, so it stays valid when
//! salvage moves the partial to another snapshot folder. While it exists the partial must not be
//! read as a prefix: the transfer resumes it through the segmented machinery and salvage ranks it by
//! the bytes recorded here, not by its length.
//!
//! Each recorded range carries the crc32 of its last [`TAIL`] bytes, checked when the record is
//! read back: a range whose tail no longer matches (the partial was replaced by another copy of the
//! same content id, or changed by someone else) is not trusted. Ranges are recorded only after the
//! partial was fsync'd, so after a crash or power loss every recorded byte is really there.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::write_atomic;
use crate::error::{Error, Result};
use crate::transfer::checkpoint::crc_range;
use crate::verify::ContentId;

/// Bytes at the end of each recorded range whose crc32 is kept.
const TAIL: u64 = 64 << 10;

/// Sorted, disjoint, non-touching half-open byte ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    /// `[0, len)`, or nothing when `len` is 0.
    pub(crate) fn prefix(len: u64) -> RangeSet {
        let mut set = RangeSet::default();
        set.insert(0, len);
        set
    }

    /// Adds `[start, end)`, merging with the ranges it overlaps or touches.
    pub(crate) fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // The first range that ends at or after `start` is the first one that can merge.
        let first = self.ranges.partition_point(|r| r.1 < start);
        let mut last = first;
        let (mut lo, mut hi) = (start, end);
        while last < self.ranges.len() && self.ranges[last].0 <= hi {
            lo = lo.min(self.ranges[last].0);
            hi = hi.max(self.ranges[last].1);
            last += 1;
        }
        self.ranges.splice(first..last, [(lo, hi)]);
    }

    /// Bytes covered.
    pub(crate) fn total(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }

    /// Length of the contiguous run of covered bytes that starts at byte 0.
    pub(crate) fn prefix_end(&self) -> u64 {
        match self.ranges.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }

    /// The uncovered ranges of `[0, size)`, in order.
    pub(crate) fn holes(&self, size: u64) -> Vec<(u64, u64)> {
        let mut holes = Vec::new();
        let mut at = 0;
        for &(a, b) in &self.ranges {
            if a >= size {
                break;
            }
            if a > at {
                holes.push((at, a));
            }
            at = at.max(b);
        }
        if at < size {
            holes.push((at, size));
        }
        holes
    }

    /// The lowest range.
    pub(crate) fn first(&self) -> Option<(u64, u64)> {
        self.ranges.first().copied()
    }

    /// Forgets every byte below `at`.
    pub(crate) fn remove_below(&mut self, at: u64) {
        let whole = self.ranges.partition_point(|r| r.1 <= at);
        self.ranges.drain(..whole);
        if let Some(first) = self.ranges.first_mut() {
            first.0 = first.0.max(at);
        }
    }

    pub(crate) fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Size of the whole file the ranges belong to.
    size: u64,
    done: Vec<RangeRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RangeRecord {
    start: u64,
    end: u64,
    /// crc32 of `[max(start, end - TAIL), end)`.
    tail_crc32: u32,
}

impl Record {
    /// A sidecar's bytes as a record; `None` when they are not one.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Record> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The segments sidecar of one content id under the repo's state folder.
#[derive(Debug, Clone)]
pub(crate) struct Sidecar {
    path: PathBuf,
}

impl Sidecar {
    /// The sidecar for `id` kept in `state_dir`.
    pub(crate) fn new(state_dir: &Path, id: &ContentId) -> Sidecar {
        Sidecar {
            path: state_dir.join("partials").join(format!(
                "{}-{}.segments.json",
                id.algorithm(),
                id.hex()
            )),
        }
    }

    /// Where the record is kept (the fuzz targets put hostile records there).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a partial of this content may have holes.
    pub(crate) fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Records `done` as the ranges of `partial` that are on stable storage. The caller has
    /// fsync'd the partial first.
    pub(crate) fn save(&self, partial: &Path, size: u64, done: &RangeSet) -> Result<()> {
        let mut file = File::open(partial).map_err(Error::io_at("open", partial))?;
        let mut records = Vec::with_capacity(done.ranges().len());
        for &(start, end) in done.ranges() {
            let tail_crc32 =
                crc_range(&mut file, partial, end.saturating_sub(TAIL).max(start), end)?;
            records.push(RangeRecord {
                start,
                end,
                tail_crc32,
            });
        }
        let json = serde_json::to_vec(&Record {
            size,
            done: records,
        })
        .map_err(|e| Error::Internal(format!("segments json: {e}")))?;
        write_atomic(&self.path, &json)
    }

    /// The ranges of `partial` (a copy of a file of `size` bytes) that can be trusted: `None` when
    /// there is no sidecar (the partial is a plain prefix), otherwise the recorded ranges that are
    /// still inside the file and whose tails still match. An unreadable sidecar, or one written for
    /// another size, trusts nothing: the partial may have holes anywhere.
    pub(crate) fn trusted(&self, partial: &Path, size: u64) -> Option<RangeSet> {
        Some(match self.load()? {
            Some(record) if record.size == size => verified_ranges(partial, &record),
            _ => RangeSet::default(),
        })
    }

    /// The record: `None` without a sidecar, `Some(None)` when there is one that cannot be read.
    fn load(&self) -> Option<Option<Record>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Some(Record::parse(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => Some(None),
        }
    }

    /// Forgets the ranges (the partial is whole again, or gone).
    pub(crate) fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The recorded ranges that lie within `partial` as it is now and whose tails still match.
fn verified_ranges(partial: &Path, record: &Record) -> RangeSet {
    let mut done = RangeSet::default();
    let Ok(mut file) = File::open(partial) else {
        return done;
    };
    let on_disk = file.metadata().map(|m| m.len()).unwrap_or(0);
    for r in &record.done {
        if r.start >= r.end || r.end > on_disk.min(record.size) {
            continue;
        }
        let tail_start = r.end.saturating_sub(TAIL).max(r.start);
        if crc_range(&mut file, partial, tail_start, r.end).ok() == Some(r.tail_crc32) {
            done.insert(r.start, r.end);
        }
    }
    done
}

/// Bytes of the partial at `partial` (`on_disk` long, content `id`) that a resume can keep: its
/// length for a plain prefix, the recorded bytes when a segments sidecar says it has holes. Used
/// by salvage to rank candidates.
/// The same rules as [`Sidecar::trusted`], whose file size salvage does not know yet.
pub(crate) fn usable_len(state_dir: &Path, id: &ContentId, partial: &Path, on_disk: u64) -> u64 {
    match Sidecar::new(state_dir, id).load() {
        None => on_disk,
        Some(Some(record)) => verified_ranges(partial, &record).total(),
        Some(None) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_merges_overlapping_and_touching_ranges() {
        let mut s = RangeSet::default();
        s.insert(10, 20);
        s.insert(30, 40);
        assert_eq!(s.ranges(), [(10, 20), (30, 40)]);
        s.insert(20, 25);
        assert_eq!(s.ranges(), [(10, 25), (30, 40)]);
        s.insert(0, 5);
        s.insert(24, 31);
        assert_eq!(s.ranges(), [(0, 5), (10, 40)]);
        s.insert(3, 3);
        assert_eq!(s.total(), 35);
        assert_eq!(s.prefix_end(), 5);
        assert_eq!(s.holes(50), [(5, 10), (40, 50)]);
        s.insert(5, 10);
        assert_eq!(s.prefix_end(), 40);
        s.insert(50, 60);
        s.remove_below(20);
        assert_eq!(s.ranges(), [(20, 40), (50, 60)]);
        s.remove_below(45);
        assert_eq!(s.first(), Some((50, 60)));
        s.remove_below(60);
        assert_eq!(s.first(), None);
    }

    #[test]
    fn sidecar_round_trips_and_drops_changed_ranges() {
        let dir = std::env::temp_dir().join(format!("lp-segments-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let partial = dir.join("x.partial");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&partial, &data).expect("write");
        let id = ContentId::Sha256("cd".repeat(32));
        let sidecar = Sidecar::new(&dir, &id);
        assert_eq!(sidecar.trusted(&partial, 2_000_000), None, "no sidecar");
        assert_eq!(usable_len(&dir, &id, &partial, 1_000_000), 1_000_000);

        let mut done = RangeSet::default();
        done.insert(0, 100_000);
        done.insert(500_000, 900_000);
        sidecar.save(&partial, 2_000_000, &done).expect("save");
        assert_eq!(sidecar.trusted(&partial, 2_000_000), Some(done.clone()));
        assert_eq!(sidecar.trusted(&partial, 3), Some(RangeSet::default()));
        assert_eq!(usable_len(&dir, &id, &partial, 1_000_000), 500_000);

        // A changed tail drops that range only.
        let mut changed = data.clone();
        changed[899_999] ^= 1;
        std::fs::write(&partial, &changed).expect("write");
        assert_eq!(
            sidecar.trusted(&partial, 2_000_000),
            Some(RangeSet::prefix(100_000))
        );
        // A shorter file keeps what still fits.
        std::fs::write(&partial, &data[..600_000]).expect("write");
        assert_eq!(
            sidecar.trusted(&partial, 2_000_000),
            Some(RangeSet::prefix(100_000))
        );

        std::fs::write(&sidecar.path, b"{not json").expect("write");
        assert_eq!(
            sidecar.trusted(&partial, 2_000_000),
            Some(RangeSet::default())
        );
        assert_eq!(usable_len(&dir, &id, &partial, 600_000), 0);
        sidecar.clear();
        assert!(!sidecar.exists());
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Against a bitmap: the set covers exactly the inserted bytes, stays sorted, disjoint and
        /// non-touching, and its holes are the complement.
        #[test]
        fn range_set_matches_a_bitmap(ops in proptest::collection::vec((0u64..200, 0u64..40), 0..40)) {
            let mut set = RangeSet::default();
            let mut bits = [false; 256];
            for (start, len) in ops {
                set.insert(start, start + len);
                for b in &mut bits[start as usize..(start + len) as usize] {
                    *b = true;
                }
            }
            for w in set.ranges().windows(2) {
                prop_assert!(w[0].1 < w[1].0, "{:?}", set);
            }
            for (a, b) in set.ranges() {
                prop_assert!(a < b);
                prop_assert!(bits[*a as usize..*b as usize].iter().all(|x| *x));
            }
            prop_assert_eq!(set.total(), bits.iter().filter(|x| **x).count() as u64);
            let prefix = bits.iter().take_while(|x| **x).count() as u64;
            prop_assert_eq!(set.prefix_end(), prefix);
            let holes: u64 = set.holes(256).iter().map(|(a, b)| b - a).sum();
            prop_assert_eq!(holes + set.total(), 256);
        }
    }
}
