//! The on-disk cache layout lemonade reads, atomic writes, refs, and the per-repo lock.
//!
//! ```text
//! <cache>/models--<org>--<name>/           (ModelScope: modelscope--models--<org>--<name>/)
//!   refs/<revision>                       40-hex commit (ModelScope: the tree fingerprint),
//!                                         no newline, written last
//!   snapshots/<commit>/<path>             real files
//!   snapshots/<commit>/<path>.partial     a prefix of the file being downloaded
//!   snapshots/<commit>/.download_manifest.json   present exactly while the snapshot is incomplete
//!   .lemon-pull/                          our own state (lock, checkpoints, verified stamps)
//! ```

use crate::cancel::{Cancel, POLL};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::repo_path::join_repo_path;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of lemonade's in-progress marker.
pub const MANIFEST_NAME: &str = ".download_manifest.json";
/// Suffix of partial files.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Paths of one repository's cache folder.
#[derive(Debug, Clone)]
pub struct RepoCache {
    dir: PathBuf,
    registry: Registry,
}

impl RepoCache {
    /// The folder of Hugging Face `repo` under the cache root.
    #[cfg(test)]
    pub fn new(cache_root: &Path, repo: &str) -> RepoCache {
        RepoCache::of(cache_root, repo, Registry::HuggingFace)
    }

    /// The folder of `repo` of `registry` under the cache root.
    pub fn of(cache_root: &Path, repo: &str, registry: Registry) -> RepoCache {
        RepoCache {
            dir: cache_root.join(registry.folder_name(repo)),
            registry,
        }
    }

    /// `models--org--name` (or `modelscope--models--org--name`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `snapshots/`.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.dir.join("snapshots")
    }

    /// `snapshots/<commit>`.
    pub fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.snapshots_dir().join(commit)
    }

    /// Final location of a file.
    pub fn file_path(&self, commit: &str, path: &str) -> PathBuf {
        join_repo_path(&self.snapshot_dir(commit), path)
    }

    /// Partial beside the final location.
    pub fn partial_path(&self, commit: &str, path: &str) -> PathBuf {
        partial_of(&self.file_path(commit, path))
    }

    /// The snapshot's manifest.
    pub fn manifest_path(&self, commit: &str) -> PathBuf {
        self.snapshot_dir(commit).join(MANIFEST_NAME)
    }

    /// Library state lemonade must not see.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(".lemon-pull")
    }

    /// `refs/<revision>`; `refs/pr/1` is stored as `refs/refs/pr/1`, as huggingface_hub does;
    /// ModelScope's default `master` is `refs/main`, as lemonade writes it.
    pub fn ref_path(&self, revision: &str) -> PathBuf {
        let mut p = self.dir.join("refs");
        for seg in self.registry.ref_name(revision).split('/') {
            p.push(seg);
        }
        p
    }

    /// The snapshot a ref names, if it exists and is a snapshot name of this registry (40 hex;
    /// on ModelScope a tree fingerprint).
    pub fn read_ref(&self, revision: &str) -> Option<String> {
        let text = fs::read_to_string(self.ref_path(revision)).ok()?;
        let t = text.trim();
        let valid = match self.registry {
            Registry::HuggingFace => crate::repo_path::is_commit_sha(t),
            Registry::ModelScope => crate::repo_path::is_tree_snapshot_id(t),
        };
        valid.then(|| t.to_string())
    }

    /// The registry this folder belongs to.
    pub fn registry(&self) -> Registry {
        self.registry
    }

    /// Points `refs/<revision>` at `commit`, atomically, without a trailing newline.
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        write_atomic(&self.ref_path(revision), commit.as_bytes())
    }

    /// Takes the repo's exclusive lock, waiting (cancellably) while another process holds it.
    /// `on_wait` is called once, when the first attempt finds the lock taken.
    pub fn lock(
        &self,
        cancel: &Cancel,
        on_wait: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<RepoLock> {
        let path = self.state_dir().join("lock");
        create_dir_all(&self.state_dir())?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(Error::io_at("open lock file", &path))?;
        let mut on_wait = Some(on_wait);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    self.sweep_stale_temps();
                    return Ok(RepoLock { file });
                }
                Err(fs::TryLockError::WouldBlock) => {
                    if let Some(f) = on_wait.take() {
                        f(&path)?;
                    }
                    cancel.check()?;
                    std::thread::sleep(POLL);
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(Error::Locked {
                        path,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
}

impl RepoCache {
    /// Removes what [`write_atomic`] left behind when its process died between creating its
    /// temporary file and renaming it (a SIGKILL, a power cut): `.<name>.<pid>.tmp` in `refs/`,
    /// in `.lemon-pull/` (stamps, checkpoints, segment records) and, for the manifest only, at
    /// the top of each snapshot folder. Without this such files stay forever (found by the chaos
    /// run). Called with the repo lock just taken: every writer of those files holds that lock,
    /// so none of them belongs to a live writer. In a snapshot folder only the manifest's name
    /// is matched, so a repository file that happens to look like a temp file is never touched.
    /// Best effort: what cannot be removed now is tried again by the next lock.
    fn sweep_stale_temps(&self) {
        remove_temps_below(&self.dir.join("refs"), 0);
        remove_temps_below(&self.state_dir(), 0);
        let Ok(snapshots) = fs::read_dir(self.snapshots_dir()) else {
            return;
        };
        for snap in snapshots.flatten() {
            if !snap.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(entries) = fs::read_dir(snap.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if temp_target(&name.to_string_lossy()) == Some(MANIFEST_NAME) {
                    let _ = crate::platform::remove_file(&e.path());
                }
            }
        }
    }
}

/// The name a [`write_atomic`] temporary file stands in for: `.<name>.<digits>.tmp` → `<name>`.
fn temp_target(file_name: &str) -> Option<&str> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (name, pid) = rest.rsplit_once('.')?;
    let is_pid = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (is_pid && !name.is_empty()).then_some(name)
}

/// Removes every [`write_atomic`] temporary file below `dir`, a folder only the library writes
/// (symlinks not followed; the trash, being deleted anyway, skipped).
fn remove_temps_below(dir: &Path, depth: u32) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        let name = e.file_name();
        if kind.is_dir() && depth < 8 && name != "trash" {
            remove_temps_below(&e.path(), depth + 1);
        } else if kind.is_file() && temp_target(&name.to_string_lossy()).is_some() {
            let _ = crate::platform::remove_file(&e.path());
        }
    }
}

/// Held while a pull works on a repo; the OS releases it when the process dies.
#[derive(Debug)]
pub struct RepoLock {
    file: File,
}

impl Drop for RepoLock {
    /// Unlocks before the file closes: Windows releases the locks of a closed handle only "when
    /// resources allow" and asks programs to unlock explicitly, so a waiting pull is not kept waiting.
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// `X` → `X.partial`.
pub fn partial_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(PARTIAL_SUFFIX);
    PathBuf::from(s)
}

/// The cache-directory tag (<https://bford.info/cachedir/>) that huggingface_hub also writes at
/// the root of the hub cache, so backup tools skip gigabytes of re-downloadable models.
pub const CACHEDIR_TAG: &str = "CACHEDIR.TAG";
const CACHEDIR_TAG_TEXT: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by lemon-pull.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";

/// Writes [`CACHEDIR_TAG`] at the cache root unless one is there already (whoever wrote it). Best
/// effort: a read-only or odd cache root is no reason to fail a download.
pub fn tag_cache_root(root: &Path) {
    let tag = root.join(CACHEDIR_TAG);
    if fs::symlink_metadata(&tag).is_err() && root.is_dir() {
        let _ = write_atomic(&tag, CACHEDIR_TAG_TEXT.as_bytes());
    }
}

/// `create_dir_all` with context.
pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::io_at("create folder", dir))
}

/// Flushes a folder's entries (a rename inside it) to stable storage. A no-op where the platform
/// cannot open folders as files (Windows journals the rename itself).
pub fn fsync_dir(dir: &Path) -> Result<()> {
    crate::platform::fsync_dir(dir).map_err(Error::io_at("sync folder", dir))
}

/// Writes `bytes` to `path` so that readers see the old or the new content, never a mix:
/// temporary file in the same folder → fsync → rename → fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Internal(format!("{} has no parent", path.display())))?;
    create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(Error::io_at("create", &tmp))?;
        f.write_all(bytes).map_err(Error::io_at("write", &tmp))?;
        f.sync_all().map_err(Error::io_at("sync", &tmp))?;
        drop(f);
        crate::platform::rename(&tmp, path).map_err(Error::io_at("rename", path))?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes a file if it exists (waiting briefly on Windows while another process holds it).
pub fn remove_file_if_exists(path: &Path) -> Result<()> {
    match crate::platform::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_root_is_tagged_once_and_an_existing_tag_is_kept() {
        let root = std::env::temp_dir().join(format!("lemon-pull-tag-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        tag_cache_root(&root);
        assert!(
            !root.exists(),
            "a missing root is not created just for the tag"
        );
        fs::create_dir_all(&root).expect("root");
        tag_cache_root(&root);
        let text = fs::read_to_string(root.join(CACHEDIR_TAG)).expect("tag");
        assert!(text.starts_with("Signature: 8a477f597d28d172789f06886806bc55"));
        fs::write(
            root.join(CACHEDIR_TAG),
            "Signature: 8a477f597d28d172789f06886806bc55\nmine\n",
        )
        .expect("write");
        tag_cache_root(&root);
        let text = fs::read_to_string(root.join(CACHEDIR_TAG)).expect("tag");
        assert!(text.ends_with("mine\n"), "someone else's tag is left alone");
        fs::remove_dir_all(&root).expect("clean up");
    }

    #[test]
    fn layout_paths() {
        let c = RepoCache::new(Path::new("/c"), "org/name");
        assert_eq!(c.dir(), Path::new("/c/models--org--name"));
        assert_eq!(
            c.file_path("abc", "a/b.gguf"),
            Path::new("/c/models--org--name/snapshots/abc/a/b.gguf")
        );
        assert_eq!(
            c.partial_path("abc", "a/b.gguf"),
            Path::new("/c/models--org--name/snapshots/abc/a/b.gguf.partial")
        );
        assert_eq!(
            c.ref_path("refs/pr/1"),
            Path::new("/c/models--org--name/refs/refs/pr/1")
        );
    }

    #[test]
    fn refs_are_atomic_without_newline() {
        let root = std::env::temp_dir().join(format!("lp-cache-{}", std::process::id()));
        let c = RepoCache::new(&root, "o/n");
        let sha = "0123456789abcdef0123456789abcdef01234567";
        c.write_ref("main", sha).expect("write");
        assert_eq!(fs::read(c.ref_path("main")).expect("read"), sha.as_bytes());
        assert_eq!(c.read_ref("main").as_deref(), Some(sha));
        assert_eq!(c.read_ref("nope"), None);
        fs::remove_dir_all(&root).ok();
    }

    /// Found by the chaos run: a process killed inside `write_atomic` left `.<name>.<pid>.tmp`
    /// files that no later pull removed. Taking the lock sweeps them, and nothing else.
    #[test]
    fn taking_the_lock_removes_temp_files_of_dead_writers_only() {
        let root = std::env::temp_dir().join(format!("lp-sweep-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let c = RepoCache::new(&root, "org/m");
        let commit = "a".repeat(40);
        let snap = c.snapshot_dir(&commit);
        let stale = [
            c.dir().join("refs/.main.4242.tmp"),
            c.dir().join("refs/refs/pr/.1.77.tmp"),
            c.state_dir()
                .join(format!("verified/.{commit}.json.123.tmp")),
            c.state_dir()
                .join("partials/.sha256-ab.segments.json.9.tmp"),
            snap.join(format!(".{MANIFEST_NAME}.31337.tmp")),
        ];
        let kept = [
            c.dir().join("refs/main"),
            c.state_dir().join(format!("verified/{commit}.json")),
            c.state_dir().join("trash/1-2/.x.5.tmp"),
            snap.join(MANIFEST_NAME),
            // Repository files that merely look like temp files.
            snap.join(".notes.12.tmp"),
            snap.join(format!("sub/.{MANIFEST_NAME}.5.tmp")),
            snap.join("w.bin.partial"),
            c.dir().join("refs/.main.tmp"),
            c.dir().join("refs/.main.12x.tmp"),
        ];
        for p in stale.iter().chain(&kept) {
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(p, b"x").expect("write");
        }
        let lock = c.lock(&Cancel::new(None, None), |_| Ok(())).expect("lock");
        for p in &stale {
            assert!(!p.exists(), "{} should be gone", p.display());
        }
        for p in &kept {
            assert!(p.exists(), "{} should stay", p.display());
        }
        drop(lock);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn second_lock_waits_and_is_cancellable() {
        let root = std::env::temp_dir().join(format!("lp-lock-{}", std::process::id()));
        let c = RepoCache::new(&root, "o/n");
        let held = c.lock(&Cancel::default(), |_| Ok(())).expect("first lock");
        let cancel = Cancel::default();
        let c2 = cancel.clone();
        let mut waited = false;
        let r = c.lock(&cancel, |_| {
            waited = true;
            c2.cancel();
            Ok(())
        });
        assert!(waited);
        assert!(matches!(r, Err(Error::Cancelled)));
        drop(held);
        let again = c.lock(&Cancel::default(), |_| {
            panic!("a dropped lock is released at once")
        });
        assert!(again.is_ok());
        fs::remove_dir_all(&root).ok();
    }
}
