//! Cancellation that every blocking step polls: transfer loops, backoff sleeps, hashing, lock waits.
//!
//! A pull can be cancelled three ways: a [`CancelToken`] the caller keeps, an external check (the C
//! ABI's `volatile int32_t*` flag), or the progress observer returning [`crate::Flow::Cancel`]. All
//! three end up here, so code deep in the pipeline asks one question: [`Cancel::check`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How often blocking waits wake up to look at the cancel state. Keeps cancellation within ~100 ms.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// A cloneable flag the caller sets to cancel a running pull from any thread.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A new, unset token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation. The pull returns [`Error::Cancelled`] within about 100 ms.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// An extra cancellation source polled alongside the token (used by the C ABI for its flag pointer).
pub type CancelCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// The combined cancel state of one pull. Cheap to clone and `Send + Sync`, so scoped worker threads
/// and the HTTP transport can poll it too.
#[derive(Clone, Default)]
pub struct Cancel {
    token: CancelToken,
    external: Option<CancelCheck>,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Cancel {
    /// Combines the caller's token (if any) with an external check (if any).
    pub fn new(token: Option<CancelToken>, external: Option<CancelCheck>) -> Self {
        Cancel {
            token: token.unwrap_or_default(),
            external,
        }
    }

    /// Marks this pull cancelled (e.g. because the observer asked for it).
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether any source asked for cancellation.
    pub fn is_cancelled(&self) -> bool {
        if self.token.is_cancelled() {
            return true;
        }
        match &self.external {
            Some(check) if check() => {
                // Latch it, so later checks are cheap and consistent even if the flag is reset.
                self.token.cancel();
                true
            }
            _ => false,
        }
    }

    /// `Err(Cancelled)` once cancellation was requested.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps for `dur`, waking every 50 ms (`POLL`) to honour cancellation.
    pub fn sleep(&self, dur: Duration) -> Result<()> {
        let deadline = Instant::now() + dur;
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            std::thread::sleep((deadline - now).min(POLL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_returns_early_when_cancelled() {
        let token = CancelToken::new();
        let cancel = Cancel::new(Some(token.clone()), None);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            token.cancel();
        });
        let start = Instant::now();
        let r = cancel.sleep(Duration::from_secs(10));
        assert!(matches!(r, Err(Error::Cancelled)));
        assert!(start.elapsed() < Duration::from_secs(2));
        t.join().expect("thread");
    }

    #[test]
    fn external_check_latches() {
        let flag = Arc::new(AtomicBool::new(false));
        let f2 = flag.clone();
        let cancel = Cancel::new(None, Some(Arc::new(move || f2.load(Ordering::SeqCst))));
        assert!(cancel.check().is_ok());
        flag.store(true, Ordering::SeqCst);
        assert!(cancel.is_cancelled());
        flag.store(false, Ordering::SeqCst);
        assert!(cancel.is_cancelled());
    }
}
