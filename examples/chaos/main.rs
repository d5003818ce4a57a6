//! Chaos run (issue 15, item 5): many pulls of small repos against the in-process mock hub while
//! faults are injected at random, with the cache's invariants checked after every step.
//!
//! ```text
//! cargo build --bin resume-pull --example chaos
//! target/debug/examples/chaos --resume-pull target/debug/resume-pull [--seed N] [--pulls N]
//!     [--deadline SECS] [--work DIR] [--verbose] [--tamper]
//! ```
//! `bench/chaos.sh` does both (and runs a fixed seed plus a random one).
//!
//! Each step, chosen by the seeded generator, is one of: a library pull (random connections,
//! revision, faults; sometimes cancelled at a random byte, sometimes with the branch moved
//! mid-pull), a `resume-pull` process (the same, plus SIGKILL or SIGINT at a random byte or
//! moment), two pulls of one repo at once (same revision, two revisions, or a CLI process beside a
//! library pull), a pull beside `gc --apply`, a commit move between pulls, or `gc --apply` alone.
//! Faults: cut bodies, short bodies, stalls (the watchdog fires), no answer, 5xx, 429 with
//! `Retry-After`, expired CDN URLs (403), `200` to a `Range`, a wrong `Content-Range`, API 503.
//!
//! After every step, for the repo it touched: every successful pull's snapshot holds exactly the
//! commit's files with the hub's sha256 and no partial or manifest; every ref names a complete,
//! verified snapshot; no snapshot that was once complete changed or vanished (unless `gc --apply`
//! removed it as superseded); after a success no stray file (a `.tmp`, a file the commit does not
//! have, unknown state) is left anywhere in the repo folder, only partials, manifests and
//! sidecars of other in-progress snapshots; nothing appears outside the cache; `status` and a
//! `gc` dry run do not fail. At the end every complete snapshot is hashed once more.
//!
//! The seed fixes the sequence of steps, faults and kill points; thread and network timing still
//! vary from run to run, so a replay takes the same decisions but not always the same paths.
//! Exit status: 0 when no invariant was violated, 1 otherwise, 2 for bad arguments. `--tamper`
//! damages the cache after step 10 (a flipped byte in a complete snapshot, a stray temp file, a
//! file outside the cache), to show that the checks catch it: that run must exit 1.

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    unix::main()
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    eprintln!("chaos: needs Unix (it sends SIGKILL and SIGINT to resume-pull)");
    std::process::ExitCode::from(2)
}

#[cfg(unix)]
mod unix;
