//! The library's integration tests, one binary: each module is a suite of end-to-end pulls
//! against the mock hub (`mock-hub/`) through `lemon_pull`'s public API.
//!
//! Tests built around a process of their own stay separate binaries beside this folder: `cli`
//! (the `resume-pull` contract), `kill` (SIGKILLs of the CLI mid-pull) and `demo` (the README's
//! commands, run as written). The mock hub's own tests are in `mock-hub/tests/`.
//!
//! Nothing here changes process-wide state (environment variables, the working directory), so
//! every test runs beside the others; a test that needs another environment runs a child process.

#[path = "../common/mod.rs"]
mod common;

mod crash;
mod crawl;
mod disk_space;
mod faults;
mod heartbeat;
mod hf_python;
mod hostile;
mod housekeeping;
mod interop;
mod modelscope;
mod offline;
mod parallel;
mod pinned;
mod proxy;
mod pull;
mod resolve;
mod salvage;
mod tls;
mod unreachable;
