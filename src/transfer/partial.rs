//! The partial file of one transfer: what the task is, opening and resuming the partial, and the
//! prefix the sequential pass appends to.
//!
//! A partial without a segments sidecar is a prefix of the file. On resume it is cut back to what
//! can be trusted (its last good checkpoint), hashed from the start so the final hash covers every
//! byte, and then appended to; it is fsync'd and checkpointed every [`checkpoint::INTERVAL`] bytes
//! and when the transfer stops for any reason.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::options::{AUTO_MAX_CONNECTIONS, MAX_CONNECTIONS};
use crate::progress::{Event, FileInfo, Phase, Reporter};
use crate::transfer::checkpoint::{self, Checkpoint};
use crate::transfer::hash_thread::HashThread;
use crate::transfer::segments::Sidecar;
use crate::verify::{ContentHasher, ContentId, hash_prefix};

/// One file to bring up to date.
pub(crate) struct Task<'a> {
    pub file: FileInfo<'a>,
    pub id: &'a ContentId,
    /// Commit the URL is pinned to; the server must confirm it.
    pub commit: &'a str,
    /// Pinned `/resolve/<commit>/<path>` URL (ModelScope: by revision).
    pub url: String,
    /// Whether the server confirms commit, content id and size in headers (the Hub does,
    /// ModelScope does not): checked when true.
    pub hub_headers: bool,
    pub final_path: PathBuf,
    pub partial_path: PathBuf,
    pub checkpoint: Checkpoint,
    /// Which byte ranges a partial with holes holds (see [`crate::transfer::segments`]).
    pub segments: Sidecar,
    /// Ranged connections allowed for this file.
    pub connections: Connections,
}

/// How many ranged connections a file may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connections {
    /// Exactly this many (1 = sequential).
    Fixed(u32),
    /// As many as add throughput, up to this many (see [`crate::transfer::ramp`]).
    Auto(u32),
}

impl Connections {
    /// What [`crate::PullOptions::connections`] asks for: 0 = auto, else that many (both capped
    /// at [`MAX_CONNECTIONS`]).
    pub(crate) fn of(n: u32) -> Connections {
        match n {
            0 => Connections::Auto(AUTO_MAX_CONNECTIONS),
            n => Connections::Fixed(n.min(MAX_CONNECTIONS)),
        }
    }

    /// The most connections the file may use.
    pub(crate) fn limit(self) -> u32 {
        match self {
            Connections::Fixed(n) | Connections::Auto(n) => n.max(1),
        }
    }

    /// Whether a large file may be fetched by more than one connection.
    pub(crate) fn may_split(self) -> bool {
        match self {
            Connections::Fixed(n) => n > 1,
            Connections::Auto(n) => n > 1,
        }
    }
}

/// A partial that holds every byte of the file, and the hash of all of them.
pub(crate) struct Complete {
    pub file: File,
    pub actual: ContentId,
    /// Bytes that were on disk already when this pass started.
    pub reused: u64,
    /// Connections the pass ended with (for auto: what it settled on).
    pub connections: u32,
}

/// Opens (or creates) the partial as a prefix of the file, cut back to what can be trusted: all
/// of it without a checkpoint (it may be lemonade's or a salvaged one; the final hash decides),
/// up to the checkpoint with one, nothing when it is longer than the file. Returns the file and
/// the trusted length. Only for partials without a segments sidecar.
pub(crate) fn open_prefix(task: &Task<'_>, reporter: &mut Reporter) -> Result<(File, u64)> {
    let path = &task.partial_path;
    let on_disk = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let trusted = if on_disk > task.file.size {
        0
    } else {
        task.checkpoint.trusted_len(path, on_disk)
    };
    let file = open_partial(task)?;
    if trusted != on_disk {
        file.set_len(trusted)
            .map_err(Error::io_at("truncate", path))?;
        if on_disk > 0 {
            let reason = format!(
                "partial of {on_disk} bytes cut back to its last good checkpoint at {trusted}"
            );
            reporter.emit(&Event::Restart {
                file: task.file,
                reason: &reason,
            })?;
        }
    }
    Ok((file, trusted))
}

/// The partial, opened for reading and writing, created if missing, never truncated.
pub(crate) fn open_partial(task: &Task<'_>) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&task.partial_path)
        .map_err(Error::io_at("open", &task.partial_path))
}

/// The open partial file: its first `len` bytes are on disk and handed to the hasher.
pub(crate) struct Partial {
    pub file: File,
    /// Bytes on disk, all of them handed to the hasher.
    pub len: u64,
    checkpointed: u64,
    /// Bytes on disk at the start were discarded during this attempt.
    pub restarted: bool,
}

impl Partial {
    /// Opens (or creates) the partial and cuts it back to what can be trusted.
    pub(crate) fn open(task: &Task<'_>, reporter: &mut Reporter) -> Result<Partial> {
        let (file, trusted) = open_prefix(task, reporter)?;
        Ok(Partial {
            file,
            len: trusted,
            checkpointed: trusted,
            restarted: false,
        })
    }

    /// Hashes the bytes already on disk, so the final hash covers the whole file, and positions
    /// the file for appending. Returns the hasher of that prefix.
    pub(crate) fn hash_existing(
        &mut self,
        task: &Task<'_>,
        reporter: &mut Reporter,
    ) -> Result<ContentHasher> {
        let mut hasher = task.id.hasher(task.file.size);
        if self.len > 0 {
            let cancel = reporter.cancel().clone();
            reporter.set_phase(Phase::Verify);
            hash_prefix(&task.partial_path, self.len, &mut hasher, &cancel, |_| {
                Ok(())
            })?;
            reporter.set_phase(Phase::Transfer);
        }
        self.file
            .seek(SeekFrom::Start(self.len))
            .map_err(Error::io_at("seek", &task.partial_path))?;
        Ok(hasher)
    }

    /// Discards everything and starts at byte 0.
    pub(crate) fn restart(&mut self, task: &Task<'_>, hashing: &mut HashThread<'_>) -> Result<()> {
        let path = &task.partial_path;
        self.file
            .set_len(0)
            .map_err(Error::io_at("truncate", path))?;
        // From here the file is empty: if anything below fails, `persist` must not grow it back
        // to the old length (zeros) and checkpoint that.
        self.len = 0;
        self.checkpointed = 0;
        self.restarted = true;
        task.checkpoint.clear();
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(Error::io_at("seek", path))?;
        hashing.reset(task.id.hasher(task.file.size))
    }

    /// Writes the first `len` bytes of `buf` at the end of the partial and queues them for
    /// hashing; checkpoints when an interval is full.
    pub(crate) fn append(
        &mut self,
        task: &Task<'_>,
        hashing: &mut HashThread<'_>,
        buf: Vec<u8>,
        len: usize,
    ) -> Result<()> {
        self.file
            .write_all(&buf[..len])
            .map_err(|e| Error::io("write", &task.partial_path, e))?;
        hashing.hash(buf, len)?;
        self.len += len as u64;
        if self.len - self.checkpointed >= checkpoint::INTERVAL {
            self.file
                .sync_data()
                .map_err(Error::io_at("sync", &task.partial_path))?;
            task.checkpoint.record(&task.partial_path, self.len)?;
            self.checkpointed = self.len;
        }
        Ok(())
    }

    /// Best effort on the way out of a failed or cancelled transfer: drop any torn write past
    /// `len`, flush, and checkpoint, so the next pull resumes from exactly here.
    pub(crate) fn persist(&mut self, task: &Task<'_>) {
        let _ = self.file.set_len(self.len);
        if self.file.sync_data().is_ok() && self.len > 0 {
            let _ = task.checkpoint.record(&task.partial_path, self.len);
        }
    }
}
