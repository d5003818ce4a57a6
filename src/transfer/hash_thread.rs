//! Hashing beside the network: the thread that streams a file hands each filled buffer to a
//! scoped hashing thread and goes on reading while the buffer is hashed.
//!
//! sha256 took a third of the CPU time of a single-threaded download (perf, 1 GiB into tmpfs), and
//! one core was the limit. The two stages run concurrently here, with a fixed set of [`DEPTH`]
//! buffers travelling between them: no allocation per chunk, memory bounded by `DEPTH` ×
//! [`BUF_SIZE`], and backpressure when hashing falls behind (the streaming thread waits for a
//! buffer to come back). The thread is scoped: it cannot outlive the transfer that started it.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use crate::error::{Error, Result};
use crate::verify::ContentHasher;

/// Bytes per buffer: the size of one write to the partial.
const BUF_SIZE: usize = 1 << 20;
/// Buffers in circulation: one being filled while the others wait for or undergo hashing.
const DEPTH: usize = 4;

enum Job {
    /// Hash the first `len` bytes of the buffer, then hand it back.
    Data(Vec<u8>, usize),
    /// Forget everything hashed so far and go on with this hasher.
    Reset(ContentHasher),
}

/// The streaming side of the pipeline.
pub(crate) struct HashThread<'scope> {
    jobs: SyncSender<Job>,
    returned: Receiver<Vec<u8>>,
    /// Buffers on this side, ready to be filled.
    free: Vec<Vec<u8>>,
    allocated: usize,
    worker: ScopedJoinHandle<'scope, ContentHasher>,
}

impl<'scope> HashThread<'scope> {
    /// Starts hashing on a thread of `scope`, continuing `hasher` (which may already cover a
    /// prefix of the file).
    pub(crate) fn spawn<'env>(
        scope: &'scope Scope<'scope, 'env>,
        hasher: ContentHasher,
    ) -> HashThread<'scope> {
        // Room for every buffer, so the hashing thread never blocks on handing one back.
        let (jobs, job_rx) = sync_channel::<Job>(DEPTH);
        let (back_tx, returned) = sync_channel::<Vec<u8>>(DEPTH);
        let worker = scope.spawn(move || {
            let mut hasher = hasher;
            for job in job_rx {
                match job {
                    Job::Data(buf, len) => {
                        hasher.update(&buf[..len]);
                        // The streaming side may have finished and gone: the buffer is then
                        // simply dropped.
                        let _ = back_tx.send(buf);
                    }
                    Job::Reset(fresh) => hasher = fresh,
                }
            }
            hasher
        });
        HashThread {
            jobs,
            returned,
            free: Vec::with_capacity(DEPTH),
            allocated: 0,
            worker,
        }
    }

    /// A buffer of [`BUF_SIZE`] bytes to fill; waits for the hashing thread to return one when
    /// all are in flight.
    pub(crate) fn buffer(&mut self) -> Result<Vec<u8>> {
        if let Some(buf) = self.free.pop() {
            return Ok(buf);
        }
        if self.allocated < DEPTH {
            self.allocated += 1;
            return Ok(vec![0; BUF_SIZE]);
        }
        self.returned.recv().map_err(|_| stopped())
    }

    /// Queues the first `len` bytes of `buf` for hashing, after the ones queued before.
    pub(crate) fn hash(&mut self, buf: Vec<u8>, len: usize) -> Result<()> {
        if len == 0 {
            self.free.push(buf);
            return Ok(());
        }
        self.jobs.send(Job::Data(buf, len)).map_err(|_| stopped())
    }

    /// Drops what was hashed so far (queued bytes included) and starts over from `fresh`.
    pub(crate) fn reset(&mut self, fresh: ContentHasher) -> Result<()> {
        self.jobs.send(Job::Reset(fresh)).map_err(|_| stopped())
    }

    /// Waits until every queued byte is hashed and returns the hasher.
    pub(crate) fn finish(self) -> Result<ContentHasher> {
        drop(self.jobs);
        self.worker.join().map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::Internal("the hashing thread stopped unexpectedly".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::ContentId;

    fn sha256_of(data: &[u8]) -> ContentId {
        let mut h = ContentId::Sha256(String::new()).hasher(0);
        h.update(data);
        h.finish()
    }

    #[test]
    fn pipelined_hash_equals_hash_of_the_whole_in_order() {
        let data: Vec<u8> = (0..(3 * BUF_SIZE + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let expected = sha256_of(&data);
        let empty = ContentId::Sha256(String::new());
        let got = std::thread::scope(|s| {
            let mut pipe = HashThread::spawn(s, empty.hasher(0));
            // Uneven pieces, more of them than buffers, so buffers must come back and be reused.
            for piece in data.chunks(BUF_SIZE / 3 + 7) {
                let mut buf = pipe.buffer().expect("buffer");
                buf[..piece.len()].copy_from_slice(piece);
                pipe.hash(buf, piece.len()).expect("hash");
            }
            assert!(pipe.allocated <= DEPTH);
            pipe.finish().expect("finish").finish()
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn reset_discards_everything_queued_before_it() {
        let empty = ContentId::Sha256(String::new());
        let got = std::thread::scope(|s| {
            let mut pipe = HashThread::spawn(s, empty.hasher(0));
            let mut buf = pipe.buffer().expect("buffer");
            buf[..5].copy_from_slice(b"stale");
            pipe.hash(buf, 5).expect("hash");
            pipe.reset(empty.hasher(0)).expect("reset");
            let mut buf = pipe.buffer().expect("buffer");
            buf[..5].copy_from_slice(b"fresh");
            pipe.hash(buf, 5).expect("hash");
            pipe.finish().expect("finish").finish()
        });
        assert_eq!(got, sha256_of(b"fresh"));
    }
}
