//! The binary starts and says who it is. Also why `cargo test` builds `resume-pull` itself: the
//! library's tests under `tests/` drive this binary (see `tests/common::resume_pull`).

use std::process::Command;

#[test]
fn version_and_help() {
    let bin = env!("CARGO_BIN_EXE_resume-pull");
    let out = Command::new(bin).arg("--version").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        concat!("resume-pull ", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(bin).arg("--help").output().expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("USAGE:"));
}
