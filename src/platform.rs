//! Every place where Unix and Windows file systems behave differently, one small function each,
//! with the bodies side by side. The rest of the crate calls these and stays free of `cfg`.
//!
//! The Windows bodies use only std APIs whose signatures were checked against the std 1.95
//! documentation, and they type-check for `x86_64-pc-windows-msvc` (`cargo clippy --target
//! x86_64-pc-windows-msvc`), but they have never been built, linked or run: the build machines have
//! no MSVC tools and no Windows. Everything marked "unverified" below is reviewed code, not tested
//! code. The README's "Windows" section lists each file-system step and what is verified.

use std::fs::{self, Metadata};
use std::io;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

/// The environment variable that names the user's home folder (`~`), as huggingface_hub and
/// lemonade read it.
#[cfg(windows)]
pub(crate) const HOME_VAR: &str = "USERPROFILE";
/// The environment variable that names the user's home folder (`~`), as huggingface_hub and
/// lemonade read it.
#[cfg(not(windows))]
pub(crate) const HOME_VAR: &str = "HOME";

/// Flushes a folder's entries (a rename or removal inside it) to stable storage.
#[cfg(unix)]
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Windows cannot open a folder through std without `FILE_FLAG_BACKUP_SEMANTICS`, and NTFS
/// journals renames itself; there is nothing to flush (unverified).
#[cfg(not(unix))]
pub(crate) fn fsync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Whether a raw OS error code means the volume is full.
#[cfg(unix)]
pub(crate) fn is_disk_full_code(code: i32) -> bool {
    code == 28 // ENOSPC
}

/// ERROR_HANDLE_DISK_FULL (39), ERROR_DISK_FULL (112) (unverified).
#[cfg(windows)]
pub(crate) fn is_disk_full_code(code: i32) -> bool {
    matches!(code, 39 | 112)
}

/// Other platforms: only `ErrorKind::StorageFull` (checked by the caller) says so.
#[cfg(not(any(unix, windows)))]
pub(crate) fn is_disk_full_code(_code: i32) -> bool {
    false
}

/// The file's identity on its volume: replacing the file (even with equal size and time) changes it.
#[cfg(unix)]
pub(crate) fn file_id(meta: &Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino() ^ meta.dev().rotate_left(32)
}

/// Windows' file index (`MetadataExt::file_index`) is not stable in std; the creation time
/// changes when a file is replaced, which is what matters here. NTFS "tunnels" the creation time
/// of a name deleted or renamed away less than 15 s earlier onto a new file of that name, so a
/// replacement can keep it: the stamp's size and modification time still catch that, short of a
/// copy tool that also preserves the modification time (unverified).
#[cfg(windows)]
pub(crate) fn file_id(meta: &Metadata) -> u64 {
    use std::os::windows::fs::MetadataExt;
    meta.creation_time()
}

/// No identity available: size and modification time alone decide.
#[cfg(not(any(unix, windows)))]
pub(crate) fn file_id(_meta: &Metadata) -> u64 {
    0
}

/// Whether an error may be another process holding the file for a moment, so that the same
/// operation is worth repeating shortly. On Unix nothing holds a name against rename or unlink.
#[cfg(not(windows))]
pub(crate) fn is_transient_share_error(_e: &io::Error) -> bool {
    false
}

/// ERROR_SHARING_VIOLATION (32): the file is open without `FILE_SHARE_DELETE` (a virus scanner,
/// an indexer, a backup agent, or lemonade's own reader of a manifest or ref). ERROR_ACCESS_DENIED
/// (5): also what a delete-pending file answers until its last handle closes. Both pass within
/// milliseconds in the cases meant here; a real permission problem just fails after the bounded
/// wait (unverified).
#[cfg(windows)]
pub(crate) fn is_transient_share_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(5 | 32))
}

/// Pauses between attempts of an operation another process briefly blocks: 0.5 s at most in all.
const RETRY_DELAYS_MS: [u64; 6] = [10, 20, 40, 80, 150, 200];

/// Runs `op`, and again after a short pause while it fails with an error `is_transient` accepts,
/// a bounded number of times; the last error is returned as it is.
pub(crate) fn retry_transient<T>(
    is_transient: impl Fn(&io::Error) -> bool,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    for ms in RETRY_DELAYS_MS {
        match op() {
            Err(e) if is_transient(&e) => sleep(Duration::from_millis(ms)),
            done => return done,
        }
    }
    op()
}

/// `fs::rename`, repeated while another process holds `from` or `to` for a moment (Windows only;
/// on Unix a single attempt).
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    retry_transient(is_transient_share_error, || fs::rename(from, to))
}

/// `fs::remove_file`, repeated while another process holds the file for a moment (Windows only;
/// on Unix a single attempt).
pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
    retry_transient(is_transient_share_error, || fs::remove_file(path))
}

/// Whether names that differ only in letter case are one file here by default (NTFS on Windows,
/// APFS on macOS). Linux can have case-folding folders too (ext4 `+F`), but only by choice.
pub(crate) const fn names_fold_case() -> bool {
    cfg!(any(windows, target_os = "macos"))
}

/// Whether file names we create must also follow Windows' rules (no device names such as `CON`
/// or `aux.json`, none of `<>:"|?*`, no trailing dot or space).
pub(crate) const fn windows_names() -> bool {
    cfg!(windows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::Instant;

    fn busy() -> io::Error {
        io::Error::from(io::ErrorKind::ResourceBusy)
    }

    fn is_busy(e: &io::Error) -> bool {
        e.kind() == io::ErrorKind::ResourceBusy
    }

    #[test]
    fn a_transient_error_is_retried_until_it_passes() {
        let calls = Cell::new(0);
        let r = retry_transient(is_busy, || {
            calls.set(calls.get() + 1);
            if calls.get() < 3 { Err(busy()) } else { Ok(7) }
        });
        assert_eq!(r.expect("third attempt succeeds"), 7);
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let calls = Cell::new(0);
        let r: io::Result<()> = retry_transient(is_busy, || {
            calls.set(calls.get() + 1);
            Err(io::Error::from(io::ErrorKind::NotFound))
        });
        assert_eq!(r.expect_err("fails").kind(), io::ErrorKind::NotFound);
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_lasting_transient_error_gives_up_within_the_bound() {
        let calls = Cell::new(0);
        let start = Instant::now();
        let r: io::Result<()> = retry_transient(is_busy, || {
            calls.set(calls.get() + 1);
            Err(busy())
        });
        assert_eq!(r.expect_err("gives up").kind(), io::ErrorKind::ResourceBusy);
        assert_eq!(calls.get(), RETRY_DELAYS_MS.len() + 1);
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(500), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
    }

    #[test]
    #[cfg(not(windows))]
    fn unix_errors_are_never_taken_for_sharing_violations() {
        for code in [1, 5, 13, 16, 26, 32] {
            assert!(!is_transient_share_error(&io::Error::from_raw_os_error(
                code
            )));
        }
    }

    #[test]
    fn rename_and_remove_act_once_and_report_the_error() {
        let dir = std::env::temp_dir().join(format!("lp-platform-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, b"x").expect("write");
        fs::write(&b, b"old").expect("write");
        rename(&a, &b).expect("replaces the target");
        assert_eq!(fs::read(&b).expect("read"), b"x");
        let start = Instant::now();
        let missing = rename(&a, &b).expect_err("source gone");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        remove_file(&b).expect("remove");
        assert_eq!(
            remove_file(&b).expect_err("gone").kind(),
            io::ErrorKind::NotFound
        );
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "no waiting for errors that are not sharing violations"
        );
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn platform_facts() {
        assert_eq!(HOME_VAR, if cfg!(windows) { "USERPROFILE" } else { "HOME" });
        if cfg!(target_os = "linux") {
            assert!(!names_fold_case() && !windows_names());
            assert!(is_disk_full_code(28) && !is_disk_full_code(112));
        }
    }
}
