//! Durable checkpoints of a partial file: after a crash or power loss, the bytes past the last
//! checkpoint may be garbage (zero-filled pages, a torn write), so a resume cuts back to it.
//!
//! A checkpoint is `(length, crc32 of the block that ends there)`, written after the partial was
//! fsync'd. It lives outside the snapshot (lemonade must not see it) and is keyed by the file's
//! content id, so it stays valid when the partial is moved to another snapshot folder.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::write_atomic;
use crate::error::{Error, Result};
use crate::verify::ContentId;

/// Bytes between checkpoints: at most this much is re-downloaded after a crash.
pub const INTERVAL: u64 = 32 << 20;
/// Length of the tail block whose crc32 is recorded.
const TAIL: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    len: u64,
    crc32: u32,
}

impl Record {
    /// A checkpoint file's bytes as a record; `None` when they are not one.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Record> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The checkpoint file of one content id under the repo's state folder.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
}

impl Checkpoint {
    /// The checkpoint for `id` kept in `state_dir`.
    pub fn new(state_dir: &Path, id: &ContentId) -> Checkpoint {
        Checkpoint {
            path: state_dir
                .join("partials")
                .join(format!("{}-{}.json", id.algorithm(), id.hex())),
        }
    }

    /// Where the checkpoint is kept (the fuzz targets put hostile records there).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records that the first `len` bytes of `partial` are on stable storage. The caller has
    /// fsync'd the partial first.
    pub fn record(&self, partial: &Path, len: u64) -> Result<()> {
        let crc32 = tail_crc(partial, len)?;
        let json = serde_json::to_vec(&Record { len, crc32 })
            .map_err(|e| Error::Internal(format!("checkpoint json: {e}")))?;
        write_atomic(&self.path, &json)
    }

    /// How many bytes of `partial` (now `have` bytes long) can be trusted.
    ///
    /// With no checkpoint the whole partial is kept (it may be lemonade's or a salvaged one; the
    /// final hash decides). With a valid checkpoint the partial is trusted up to the checkpoint.
    /// A checkpoint whose tail no longer matches means the bytes were changed: trust nothing.
    pub fn trusted_len(&self, partial: &Path, have: u64) -> u64 {
        let Some(rec) = std::fs::read(&self.path)
            .ok()
            .and_then(|b| Record::parse(&b))
        else {
            return have;
        };
        if rec.len > have {
            return 0;
        }
        match tail_crc(partial, rec.len) {
            Ok(crc) if crc == rec.crc32 => rec.len,
            _ => 0,
        }
    }

    /// Forgets the checkpoint (file complete, or restarted from zero).
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tail_crc(path: &Path, len: u64) -> Result<u32> {
    let mut f = File::open(path).map_err(Error::io_at("open", path))?;
    crc_range(&mut f, path, len.saturating_sub(TAIL), len)
}

/// crc32 of bytes `[start, end)` of `file` (opened from `path`, named in errors); fails when the
/// file ends before `end`.
pub(crate) fn crc_range(file: &mut File, path: &Path, start: u64, end: u64) -> Result<u32> {
    let want = end.saturating_sub(start);
    file.seek(SeekFrom::Start(start))
        .map_err(Error::io_at("seek", path))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; want.min(TAIL) as usize];
    let mut left = want;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..n]).map_err(|e| {
            let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                std::io::Error::new(e.kind(), "partial shorter than recorded")
            } else {
                e
            };
            Error::io("read", path, e)
        })?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_trusts_prefix_and_detects_change() {
        let dir = std::env::temp_dir().join(format!("lp-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let partial = dir.join("x.partial");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&partial, &data).expect("write");
        let ck = Checkpoint::new(&dir, &ContentId::Sha256("ab".repeat(32)));
        assert_eq!(ck.trusted_len(&partial, 3_000_000), 3_000_000);
        ck.record(&partial, 2_000_000).expect("record");
        assert_eq!(ck.trusted_len(&partial, 3_000_000), 2_000_000);
        assert_eq!(ck.trusted_len(&partial, 1_000_000), 0);
        let mut bad = data.clone();
        bad[1_999_999] ^= 1;
        std::fs::write(&partial, &bad).expect("write");
        assert_eq!(ck.trusted_len(&partial, 3_000_000), 0);
        ck.clear();
        assert_eq!(ck.trusted_len(&partial, 3_000_000), 3_000_000);
        std::fs::remove_dir_all(&dir).ok();
    }
}
