//! Salvage: find every usable byte of a wanted file already on disk, in any snapshot folder of the
//! repository, and bring the best copy into the target snapshot.
//!
//! Identity is the content id, never the path or the commit: a copy is usable only when its
//! recorded id equals the wanted one. A copy whose id is unknown (an April-2026 manifest, `{}`, a
//! broken manifest, an auxiliary repo without manifest) is used tentatively, and only for the same
//! path; the final hash decides, and a mismatch restarts that file from zero.
//!
//! Ranking per wanted file: a complete copy beats a partial (known ids first), a longer partial
//! beats a shorter one, a known id beats an unknown one, and the target's own copy wins ties
//! (nothing to move). A guess never costs a sure thing: the plan keeps the ranked list, complete
//! copies are hashed before use and a failing one passes the turn to the next, and a copy of
//! unknown id that disagrees with a known partial's bytes is skipped without being used.
//!
//! Committed snapshots (no manifest, no partial) are only read: their complete files are
//! hardlinked (copied where links fail). In-progress orphans give up their files by `rename`, which
//! is atomic, so at every instant each byte exists under one name or the other.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::{MANIFEST_NAME, PARTIAL_SUFFIX, RepoCache, partial_of};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::net::hub::RemoteFile;
use crate::platform;
use crate::stamps::Stamps;
use crate::transfer::segments;
use crate::verify::{ContentId, is_hex};

/// Deepest folder nesting followed inside a snapshot (repo paths are short; this bounds hostile trees).
const MAX_DEPTH: usize = 32;

/// A copy of some file found in a snapshot folder.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The snapshot folder's name (a commit sha, or whatever lemonade named it).
    pub snapshot: String,
    /// Repo-relative path of the file it is a copy of.
    pub rel: String,
    /// Where it is on disk.
    pub path: PathBuf,
    /// A `.partial` (prefix) rather than a complete file.
    pub partial: bool,
    /// Bytes on disk; for a partial with holes (see [`crate::transfer::segments`]), the bytes it holds.
    pub len: u64,
    /// Recorded content id, if any.
    pub id: Option<ContentId>,
    /// The id comes from our verified-file stamp (proof), not just a manifest (a record).
    pub verified: bool,
    /// The folder is committed (read-only for us).
    pub committed: bool,
    /// The copy is in the target snapshot itself.
    pub in_target: bool,
}

/// A snapshot folder other than the target.
#[derive(Debug, Clone)]
pub(crate) struct Folder {
    pub name: String,
    pub path: PathBuf,
    pub committed: bool,
}

/// Everything found in one repository's `snapshots/`.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub candidates: Vec<Candidate>,
    pub folders: Vec<Folder>,
}

/// Content ids recorded for files on disk, keyed by (folder the file lives in, repo path).
///
/// Built from every manifest of every repository of the pull, since a main repo's manifest
/// records where auxiliary files live (`download_path`), and from our verified-file stamps.
#[derive(Debug, Default)]
pub(crate) struct IdIndex {
    /// Canonical folder → repo path → id: a scan looks a folder up once, then each file by `&str`.
    ids: HashMap<PathBuf, HashMap<String, ContentId>>,
}

impl IdIndex {
    /// Reads the manifests found in `snapshots/*/` of each cache folder.
    pub(crate) fn build(caches: &[&RepoCache]) -> IdIndex {
        let mut index = IdIndex::default();
        // Manifests name the same few folders over and over; resolve each folder once.
        let mut canonical: HashMap<PathBuf, PathBuf> = HashMap::new();
        for cache in caches {
            for (_, dir) in snapshot_folders(cache) {
                let Some(m) = Manifest::read(&dir.join(MANIFEST_NAME)) else {
                    continue;
                };
                for f in m.files {
                    let Some(id) = f.id else { continue };
                    let home = f.download_path.clone().unwrap_or_else(|| dir.clone());
                    let home = canonical
                        .entry(home)
                        .or_insert_with_key(|h| normalize(h))
                        .clone();
                    index.ids.entry(home).or_default().insert(f.name, id);
                }
            }
        }
        index
    }

    /// The ids recorded for files of the folder whose canonical path is `folder` (canonicalise
    /// once per folder with [`normalize`], not per file: a scan touches thousands of files).
    fn folder(&self, folder: &Path) -> Option<&HashMap<String, ContentId>> {
        self.ids.get(folder)
    }
}

fn normalize(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The sub-folders of `snapshots/` (symlinks skipped), with their names.
fn snapshot_folders(cache: &RepoCache) -> Vec<(String, PathBuf)> {
    let Ok(rd) = fs::read_dir(cache.snapshots_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = rd
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    out.sort();
    out
}

/// Folders per scanning thread below which one thread does it all (spawning costs more).
const FOLDERS_PER_THREAD: usize = 8;
/// Scanning is mostly `stat` calls; a second thread overlaps them. Not more: the calling thread
/// scans too, and a pull never runs more than connections + 2 threads, so with one connection
/// (the pull's own two and this one) one extra thread is all there is room for.
const MAX_SCAN_THREADS: usize = 2;

/// Lists every file copy in the repository's snapshot folders. A cache with many folders is
/// scanned by the calling thread and one scoped thread beside it, each taking a contiguous run of
/// folders; the result is in folder order either way.
pub(crate) fn scan(cache: &RepoCache, target: &str, ids: &IdIndex) -> Scan {
    let folders = snapshot_folders(cache);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_SCAN_THREADS)
        .min(folders.len() / FOLDERS_PER_THREAD)
        .max(1);
    let scan_run = |run: &[(String, PathBuf)]| {
        let mut part = Scan::default();
        for (name, dir) in run {
            scan_folder(cache, target, ids, name, dir, &mut part);
        }
        part
    };
    let mut scan = if threads == 1 {
        scan_run(&folders)
    } else {
        let per_thread = folders.len().div_ceil(threads);
        std::thread::scope(|s| {
            let mut chunks = folders.chunks(per_thread);
            let own = chunks.next().unwrap_or(&[]);
            let runs: Vec<_> = chunks.map(|run| s.spawn(move || scan_run(run))).collect();
            let mut all = scan_run(own);
            for run in runs {
                // A panic in a scanning thread is a bug of ours: pass it on as it is.
                let part = run
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                all.candidates.extend(part.candidates);
                all.folders.extend(part.folders);
            }
            all
        })
    };
    scan_blobs(cache, &mut scan);
    scan
}

/// Adds the files of one snapshot folder (and the folder itself, unless it is the target).
fn scan_folder(
    cache: &RepoCache,
    target: &str,
    ids: &IdIndex,
    name: &str,
    dir: &Path,
    scan: &mut Scan,
) {
    let files = files_below(dir, Links::Skip);
    let recorded = ids.folder(&normalize(dir));
    let in_target = name == target;
    let has_manifest = dir.join(MANIFEST_NAME).is_file();
    let committed = !in_target && !has_manifest && !files.iter().any(|f| f.partial);
    let stamps = Stamps::load(&cache.state_dir(), name);
    for Found {
        rel,
        path,
        partial,
        len,
    } in files
    {
        let stamped = if partial {
            None
        } else {
            stamps.verified_id(&rel, &path)
        };
        let verified = stamped.is_some();
        let id = stamped.or_else(|| recorded.and_then(|r| r.get(&rel)).cloned());
        // A partial written by several connections has holes: rank it by the bytes it really
        // holds, not by its length.
        let len = match &id {
            Some(id) if partial => segments::usable_len(&cache.state_dir(), id, &path, len),
            _ => len,
        };
        scan.candidates.push(Candidate {
            snapshot: name.to_string(),
            rel,
            path,
            partial,
            len,
            id,
            verified,
            committed,
            in_target,
        });
    }
    if !in_target {
        scan.folders.push(Folder {
            name: name.to_string(),
            path: dir.to_path_buf(),
            committed,
        });
    }
}

/// Name of the pseudo-folder reported for copies found in `blobs/`.
pub(crate) const BLOBS: &str = "blobs";

/// Adds what other tools left in the repo's `blobs/` (huggingface_hub, hf-hub, llama.cpp): complete
/// blobs named by their content id (read only: linked or copied, never moved or deleted; a blob
/// that is a symlink into a shared store is followed), and their partials, adopted only when no
/// live process can be writing them (lock free and untouched for a while).
fn scan_blobs(cache: &RepoCache, scan: &mut Scan) {
    let blobs = cache.dir().join(BLOBS);
    let Ok(rd) = fs::read_dir(&blobs) else { return };
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let (hex, partial) = blob_name(&name);
        let Some(id) = id_of_hex(hex) else { continue };
        // Follow a symlinked blob (the cache-wide shared store) to the real file.
        let Ok(path) = fs::canonicalize(entry.path()) else {
            continue;
        };
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() || (partial && !partial_is_abandoned(cache, hex, &meta)) {
            continue;
        }
        scan.candidates.push(Candidate {
            snapshot: BLOBS.to_string(),
            rel: String::new(),
            path,
            partial,
            len: meta.len(),
            id: Some(id),
            verified: false,
            committed: !partial,
            in_target: false,
        });
    }
}

/// `<hex>` (complete) or one of the partial names other tools use, as (hex, is_partial).
fn blob_name(name: &str) -> (&str, bool) {
    let stem = name
        .strip_suffix(".incomplete")
        .or_else(|| name.strip_suffix(".sync.part"))
        .or_else(|| name.strip_suffix(".part"))
        .or_else(|| name.strip_suffix(".downloadInProgress"));
    match stem {
        // huggingface_hub >= 1.18 puts a process-unique `.<8 hex>` before `.incomplete`.
        Some(stem) => match stem.rsplit_once('.') {
            Some((hex, nonce)) if is_hex(nonce, 8) => (hex, true),
            _ => (stem, true),
        },
        None => (name, false),
    }
}

fn id_of_hex(hex: &str) -> Option<ContentId> {
    if is_hex(hex, 64) {
        ContentId::from_parts("sha256", hex)
    } else if is_hex(hex, 40) {
        ContentId::from_parts("git-sha1", hex)
    } else {
        None
    }
}

/// How long another tool's partial must sit untouched before it counts as abandoned.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// Another tool's partial may be adopted only if nothing can still be writing it: its lock files
/// (huggingface_hub's `.locks/<repo>/<etag>.lock`, hf-hub's and llama.cpp's `blobs/<etag>.lock`)
/// can be taken, and it has not been written to for [`ABANDONED_AFTER`].
fn partial_is_abandoned(cache: &RepoCache, hex: &str, meta: &fs::Metadata) -> bool {
    let quiet = meta
        .modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= ABANDONED_AFTER);
    let repo_folder = cache
        .dir()
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let python_lock = cache.dir().parent().map(|root| {
        root.join(".locks")
            .join(&repo_folder)
            .join(format!("{hex}.lock"))
    });
    let blob_lock = Some(cache.dir().join(BLOBS).join(format!("{hex}.lock")));
    quiet
        && [python_lock, blob_lock]
            .iter()
            .flatten()
            .all(|p| lock_is_free(p))
}

/// True when `path` does not exist or its lock can be taken right now. It is released at once,
/// explicitly: Windows frees the locks of a closed handle only "when resources allow", and the
/// tool that owns the lock may be polling for it.
fn lock_is_free(path: &Path) -> bool {
    match fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => {
            let free = f.try_lock().is_ok();
            if free {
                let _ = f.unlock();
            }
            free
        }
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// A regular file below a snapshot folder.
pub(crate) struct Found {
    /// Repo path of the file it is (a copy or a partial of).
    pub rel: String,
    pub path: PathBuf,
    pub partial: bool,
    pub len: u64,
}

/// What a walk does with a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// Skip it: salvage never moves or counts what another tool's link points at.
    Skip,
    /// Count a link to a file as that file (another tool's snapshot links into `blobs/`); links
    /// to folders are never followed.
    FollowToFiles,
}

/// Every file below the snapshot folder `dir` (its manifest aside), partials marked.
pub(crate) fn files_below(dir: &Path, links: Links) -> Vec<Found> {
    let mut out = Vec::new();
    walk(dir, "", 0, links, &mut out);
    out
}

/// Collects every regular file below `dir`. Sizes come from `DirEntry::metadata`, which asks
/// relative to the open folder instead of walking the whole path again for each file.
fn walk(dir: &Path, prefix: &str, depth: usize, links: Links, out: &mut Vec<Found>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = if ft.is_symlink() {
            match (links, fs::metadata(entry.path())) {
                (Links::FollowToFiles, Ok(m)) if m.is_file() => m,
                _ => continue,
            }
        } else if ft.is_dir() {
            walk(&entry.path(), &rel, depth + 1, links, out);
            continue;
        } else if ft.is_file() && !(depth == 0 && name == MANIFEST_NAME) {
            let Ok(meta) = entry.metadata() else { continue };
            meta
        } else {
            continue;
        };
        let (rel, partial) = match rel.strip_suffix(PARTIAL_SUFFIX) {
            Some(base) if !base.is_empty() => (base.to_string(), true),
            _ => (rel, false),
        };
        out.push(Found {
            rel,
            path: entry.path(),
            partial,
            len: meta.len(),
        });
    }
}

/// Whether `c` may hold bytes of `want`: same id, or unknown id at the same path; never longer.
fn usable(c: &Candidate, want: &RemoteFile) -> bool {
    // Without a digest, hashing a copy proves nothing: only the target's own partial (same tree,
    // same path) may be resumed; bytes of another snapshot are never taken on a guess.
    if !want.id.is_digest() && !c.in_target {
        return false;
    }
    let id_ok = match &c.id {
        Some(id) => *id == want.id,
        None => c.rel == want.path,
    };
    let len_ok = if c.partial {
        c.len > 0 && c.len <= want.size
    } else {
        c.len == want.size
    };
    // A committed snapshot's partials do not exist by definition; its complete files are fine.
    id_ok && len_ok
}

/// Orders candidates for one wanted file; the greatest is tried first.
///
/// Complete copies come first, known ids before unknown ones: each is hashed where it lies before
/// it is used, so a wrong guess costs a local read and the next copy is tried, never a download.
/// Then partials, the longest first (a known id, then the target's own copy, break ties): a
/// partial can only be judged by the final hash, so a partial of unknown id must first agree
/// with the best known partial (see [`disagrees`]).
fn rank(c: &Candidate) -> (bool, bool, u64, bool, bool, bool) {
    let known = c.id.is_some();
    (
        !c.partial,
        known && !c.partial,
        c.len,
        known,
        c.verified,
        c.in_target,
    )
}

/// The usable copies of `want`, in the order to try them (see [`rank`]), other than the target's
/// own complete file (checked earlier). The list ends at the first partial of known id: it is
/// always taken, so nothing after it is ever reached.
pub(crate) fn ranked<'a>(scan: &'a Scan, want: &RemoteFile) -> Vec<&'a Candidate> {
    // Reversed before the stable sort: among equal ranks the last found comes first, as before.
    let mut usable: Vec<&Candidate> = scan
        .candidates
        .iter()
        .rev()
        .filter(|c| !c.in_target || c.partial)
        .filter(|c| usable(c, want))
        .collect();
    usable.sort_by_key(|c| std::cmp::Reverse(rank(c)));
    if let Some(sure) = usable.iter().position(|c| c.partial && c.id.is_some()) {
        usable.truncate(sure + 1);
    }
    usable
}

/// The best usable copy of `want`.
#[cfg(test)]
fn best<'a>(scan: &'a Scan, want: &RemoteFile) -> Option<&'a Candidate> {
    ranked(scan, want).first().copied()
}

/// The copy that copies of unknown id are checked against: the longest partial of known id whose
/// bytes are a plain prefix (a partial with holes would compare its holes).
pub(crate) fn reference(copies: &[Candidate]) -> Option<&Candidate> {
    copies
        .iter()
        .filter(|c| c.partial && c.id.is_some())
        .find(|c| fs::metadata(&c.path).is_ok_and(|m| m.len() == c.len))
}

/// Blocks compared between a copy of unknown id and the reference, spread over their common prefix.
const SAMPLES: u64 = 16;
/// Bytes per compared block.
const SAMPLE_BYTES: u64 = 4096;

/// True when `c`, a copy of unknown id, holds other bytes than `reference`, a partial whose id is
/// the wanted one, at one of a few blocks spread over their common prefix: then `c` is other
/// content and must not be used. A few reads settle what the final hash would only tell after the
/// rest of the file is downloaded. Read errors prove nothing (false): the hash still decides.
/// A wrong "disagrees" (a torn tail in the reference) only costs what preferring the known
/// partial costs anyway.
pub(crate) fn disagrees(c: &Candidate, reference: &Candidate) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let common = c.len.min(reference.len);
    let (Ok(mut a), Ok(mut b)) = (fs::File::open(&c.path), fs::File::open(&reference.path)) else {
        return false;
    };
    let block = SAMPLE_BYTES.min(common);
    let (mut x, mut y) = (vec![0u8; block as usize], vec![0u8; block as usize]);
    let read_at = |f: &mut fs::File, at: u64, buf: &mut [u8]| {
        f.seek(SeekFrom::Start(at)).and_then(|_| f.read_exact(buf))
    };
    (0..SAMPLES).any(|i| {
        let at = (common - block) * i / (SAMPLES - 1);
        matches!(
            (read_at(&mut a, at, &mut x), read_at(&mut b, at, &mut y)),
            (Ok(()), Ok(())) if x != y
        )
    })
}

/// Bytes taken from one place to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adopted {
    /// Moved or linked a complete file to its final name.
    Complete,
    /// Moved a partial next to the final name.
    Partial,
}

/// Brings `c` into the target: complete files to `final_path`, partials to `final_path.partial`.
/// Complete files from committed snapshots are hardlinked (copied if links are not possible);
/// everything else is renamed, replacing a worse partial in the target atomically.
pub(crate) fn adopt(c: &Candidate, final_path: &Path) -> Result<Adopted> {
    if let Some(dir) = final_path.parent() {
        crate::cache::create_dir_all(dir)?;
    }
    if c.partial {
        let dest = partial_of(final_path);
        platform::rename(&c.path, &dest).map_err(Error::io_at("move partial", &dest))?;
        return Ok(Adopted::Partial);
    }
    if c.committed {
        link_or_copy(&c.path, final_path)?;
    } else {
        platform::rename(&c.path, final_path).map_err(Error::io_at("move file", final_path))?;
    }
    Ok(Adopted::Complete)
}

/// Hardlinks `src` to `dest`; where the file system refuses (FAT and exFAT have no hard links,
/// NTFS allows 1023 per file, volumes differ), copies through a partial so a torn copy never
/// carries the final name.
fn link_or_copy(src: &Path, dest: &Path) -> Result<()> {
    if fs::hard_link(src, dest).is_ok() {
        return Ok(());
    }
    let tmp = partial_of(dest);
    copy_synced(src, &tmp)?;
    platform::rename(&tmp, dest).map_err(Error::io_at("rename", dest))
}

/// Copies `src` into a new file `dest` and flushes it through the handle that wrote it: Windows
/// flushes only handles open for writing (`FlushFileBuffers`), and `fs::copy` would also carry
/// over the source's permissions or read-only attribute. On Linux `io::copy` between files still
/// uses `copy_file_range`, as `fs::copy` does.
fn copy_synced(src: &Path, dest: &Path) -> Result<()> {
    let mut from = fs::File::open(src).map_err(Error::io_at("open", src))?;
    let mut to = fs::File::create(dest).map_err(Error::io_at("create", dest))?;
    std::io::copy(&mut from, &mut to).map_err(|e| Error::io("copy", dest, e))?;
    to.sync_all().map_err(Error::io_at("sync", dest))
}

/// An orphan that nothing in it can serve a later pull of this repo: it can go.
#[derive(Debug, Clone)]
pub(crate) struct Leftover {
    pub folder: Folder,
    /// Bytes the folder holds.
    pub bytes: u64,
}

/// The in-progress orphans that can go after the pull committed. A folder goes only when every file in
/// it is redundant (this pull now has a verified copy of that content) or superseded (its content
/// is not in the new commit at all). A copy that a later pull could still use (content in the new
/// commit but not selected this time, or unknown content under a path the new commit still has)
/// keeps the whole folder.
///
/// `now` is a scan of the folders as they are; `before` the scan taken before salvage: a folder
/// that was in progress then still counts as an orphan even if moving its partials out has left it
/// looking committed (or empty) now. Without salvage (a dry run) both are the same scan.
pub(crate) fn judge_orphans(
    now: &Scan,
    before: &Scan,
    listing: &[RemoteFile],
    pulled: &[RemoteFile],
) -> Vec<Leftover> {
    let was_in_progress: HashSet<&str> = before
        .folders
        .iter()
        .filter(|f| !f.committed)
        .map(|f| f.name.as_str())
        .collect();
    let pulled_ids: HashSet<&ContentId> = pulled.iter().map(|f| &f.id).collect();
    let pulled_paths: HashSet<&str> = pulled.iter().map(|f| f.path.as_str()).collect();
    let listed_ids: HashSet<&ContentId> = listing.iter().map(|f| &f.id).collect();
    let listed_paths: HashSet<&str> = listing.iter().map(|f| f.path.as_str()).collect();
    // Per folder: bytes held, and whether none of them is worth keeping. One pass over the
    // candidates, not one per folder: a cache can hold thousands of files in dozens of folders.
    let mut verdicts: HashMap<&str, (u64, bool)> = HashMap::new();
    for c in &now.candidates {
        let still_useful = match &c.id {
            Some(id) => listed_ids.contains(id) && !pulled_ids.contains(id),
            None => listed_paths.contains(c.rel.as_str()) && !pulled_paths.contains(c.rel.as_str()),
        };
        let verdict = verdicts.entry(c.snapshot.as_str()).or_insert((0, true));
        verdict.0 += c.len;
        verdict.1 &= !still_useful;
    }
    now.folders
        .iter()
        .filter(|f| !f.committed || was_in_progress.contains(f.name.as_str()))
        .filter_map(|folder| {
            let (bytes, removable) = verdicts
                .get(folder.name.as_str())
                .copied()
                .unwrap_or((0, true));
            removable.then(|| Leftover {
                folder: folder.clone(),
                bytes,
            })
        })
        .collect()
}

/// Folder of `.lemon-pull/` where removed snapshot folders are emptied, outside `snapshots/`.
const TRASH: &str = "trash";

/// Deletes an orphaned snapshot folder. One rename first moves it whole out of `snapshots/` into
/// `.lemon-pull/trash/`, so lemonade and later scans see it complete or not at all, never half
/// deleted and looking committed; on Windows that rename fails, touching nothing, while a file
/// inside is open. Then it is deleted from the trash; what cannot go yet (Windows keeps a file
/// another process holds open, even through a hard link elsewhere) waits there for the next
/// removal. Its verified-file stamps go with it.
pub(crate) fn remove_orphan(cache: &RepoCache, name: &str) -> Result<()> {
    let dir = cache.snapshot_dir(name);
    let trash = cache.state_dir().join(TRASH);
    empty_trash(&trash);
    crate::cache::create_dir_all(&trash)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let parked = trash.join(format!("{}-{stamp}", std::process::id()));
    match platform::rename(&dir, &parked) {
        Ok(()) => {
            // Best effort: a crash that loses the rename brings the folder back whole.
            let _ = crate::cache::fsync_dir(&cache.snapshots_dir());
        }
        // `.lemon-pull/` on another volume (linked there by hand): delete in place.
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => remove_in_place(&dir)?,
        Err(e) => return Err(Error::io("move aside", &dir, e)),
    }
    Stamps::remove(&cache.state_dir(), name)?;
    empty_trash(&trash);
    Ok(())
}

/// Deletes a snapshot folder where it is, so that a crash half-way never leaves it looking
/// committed: files first, the manifest (the in-progress marker) last, then the empty folders.
fn remove_in_place(dir: &Path) -> Result<()> {
    for Found { path, .. } in files_below(dir, Links::Skip) {
        crate::cache::remove_file_if_exists(&path)?;
    }
    crate::cache::remove_file_if_exists(&dir.join(MANIFEST_NAME))?;
    fs::remove_dir_all(dir).map_err(Error::io_at("remove folder", dir))
}

/// Deletes what earlier removals parked in the trash, as far as it can (best effort).
fn empty_trash(trash: &Path) {
    let Ok(rd) = fs::read_dir(trash) else { return };
    for entry in rd.flatten() {
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(entry.path()),
            _ => fs::remove_file(entry.path()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(rel: &str, partial: bool, len: u64, id: Option<&str>, in_target: bool) -> Candidate {
        Candidate {
            snapshot: "s".into(),
            rel: rel.into(),
            path: PathBuf::from(rel),
            partial,
            len,
            id: id.map(|h| ContentId::Sha256(h.repeat(64))),
            verified: false,
            committed: false,
            in_target,
        }
    }

    fn want(path: &str, size: u64, id: &str) -> RemoteFile {
        RemoteFile {
            path: path.into(),
            size,
            id: ContentId::Sha256(id.repeat(64)),
        }
    }

    #[test]
    fn complete_beats_partial_and_longer_beats_shorter() {
        let w = want("m.gguf", 100, "a");
        let scan = Scan {
            candidates: vec![
                cand("m.gguf", true, 90, Some("a"), true),
                cand("m.gguf", true, 95, Some("a"), false),
                cand("old-name.gguf", false, 100, Some("a"), false),
                cand("m.gguf", false, 100, Some("b"), false),
                cand("m.gguf", true, 120, None, false),
            ],
            folders: vec![],
        };
        let b = best(&scan, &w).expect("a candidate");
        assert_eq!(
            (b.rel.as_str(), b.partial),
            ("old-name.gguf", false),
            "same content under another path"
        );
        let scan = Scan {
            candidates: scan.candidates[..2].to_vec(),
            folders: vec![],
        };
        assert_eq!(best(&scan, &w).expect("partial").len, 95);
    }

    #[test]
    fn unknown_ids_only_for_the_same_path_and_known_wins_ties() {
        let w = want("m.gguf", 100, "a");
        let scan = Scan {
            candidates: vec![
                cand("other.gguf", true, 50, None, false),
                cand("m.gguf", true, 40, None, false),
            ],
            folders: vec![],
        };
        assert_eq!(best(&scan, &w).expect("same path").rel, "m.gguf");
        let scan = Scan {
            candidates: vec![
                cand("m.gguf", true, 40, None, false),
                cand("m.gguf", true, 40, Some("a"), false),
            ],
            folders: vec![],
        };
        assert!(best(&scan, &w).expect("known").id.is_some());
        let scan = Scan {
            candidates: vec![cand("m.gguf", true, 40, Some("c"), false)],
            folders: vec![],
        };
        assert!(
            best(&scan, &w).is_none(),
            "a different content id is never used"
        );
    }

    #[test]
    fn a_file_without_digest_is_only_resumed_in_place() {
        let w = RemoteFile {
            path: "config.json".into(),
            size: 100,
            id: ContentId::size_only("modelscope-master-0123456789abcdef", "config.json", 100),
        };
        let scan = Scan {
            candidates: vec![
                cand("config.json", false, 100, None, false),
                cand("config.json", true, 60, None, false),
            ],
            folders: vec![],
        };
        assert!(
            best(&scan, &w).is_none(),
            "same path and size in another tree is a guess, never taken"
        );
        let scan = Scan {
            candidates: vec![cand("config.json", true, 60, None, true)],
            folders: vec![],
        };
        assert_eq!(best(&scan, &w).expect("own partial").len, 60);
    }

    fn order(scan: &Scan, w: &RemoteFile) -> Vec<(String, bool, u64, bool)> {
        ranked(scan, w)
            .iter()
            .map(|c| (c.rel.clone(), c.partial, c.len, c.id.is_some()))
            .collect()
    }

    #[test]
    fn complete_copies_are_tried_first_and_the_list_ends_at_a_sure_partial() {
        let w = want("m.gguf", 100, "a");
        let scan = Scan {
            candidates: vec![
                cand("m.gguf", true, 30, None, false),
                cand("m.gguf", true, 60, Some("a"), false),
                cand("m.gguf", false, 100, None, false),
                cand("m.gguf", true, 80, None, false),
                cand("m.gguf", true, 20, Some("a"), false),
                cand("moved.gguf", false, 100, Some("a"), false),
            ],
            folders: vec![],
        };
        let m = |partial, len, known| ("m.gguf".to_string(), partial, len, known);
        assert_eq!(
            order(&scan, &w),
            [
                ("moved.gguf".to_string(), false, 100, true),
                m(false, 100, false),
                m(true, 80, false),
                m(true, 60, true),
            ],
            "known complete, unknown complete, longer unknown partial, then the sure partial \
             (always taken: nothing after it)"
        );
        let scan = Scan {
            candidates: vec![
                cand("m.gguf", true, 60, Some("a"), false),
                cand("m.gguf", true, 60, None, false),
            ],
            folders: vec![],
        };
        assert_eq!(order(&scan, &w), [m(true, 60, true)], "known wins ties");
    }

    #[test]
    fn a_copy_of_unknown_id_disagrees_with_the_sure_partial_only_on_other_bytes() {
        let (root, _) = temp_cache("disagree");
        fs::create_dir_all(&root).expect("dir");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let file = |name: &str, bytes: &[u8], partial: bool, id: Option<&str>| {
            let path = root.join(name);
            fs::write(&path, bytes).expect("write");
            Candidate {
                path,
                ..cand("m.gguf", partial, bytes.len() as u64, id, false)
            }
        };
        let sure = file("sure.partial", &data[..400_000], true, Some("a"));
        let same = file("same", &data, false, None);
        let longer = file("longer.partial", &data[..700_000], true, None);
        let mut other = data.clone();
        other[399_000] ^= 1; // inside the common prefix, in the last sampled block
        let other = file("other", &other, false, None);
        let late = {
            let mut late = data.clone();
            late[500_000] ^= 1; // beyond the sure partial: only the final hash can tell
            file("late", &late, false, None)
        };
        assert!(!disagrees(&same, &sure));
        assert!(!disagrees(&longer, &sure));
        assert!(disagrees(&other, &sure));
        assert!(!disagrees(&late, &sure));
        let gone = Candidate {
            path: root.join("missing"),
            ..same.clone()
        };
        assert!(!disagrees(&gone, &sure), "a read error proves nothing");
        // A partial with holes is never the reference: it would compare its holes.
        let holey = Candidate {
            len: 100_000,
            ..sure.clone()
        };
        let copies = [same.clone(), holey, sure.clone()];
        assert_eq!(
            reference(&copies).map(|c| c.path.clone()),
            Some(sure.path.clone())
        );
        fs::remove_dir_all(&root).ok();
    }

    fn temp_cache(tag: &str) -> (PathBuf, RepoCache) {
        let root = std::env::temp_dir().join(format!("lp-salvage-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let cache = RepoCache::new(&root, "o/n");
        (root, cache)
    }

    #[test]
    fn an_orphan_leaves_snapshots_in_one_move_and_its_stamps_with_it() {
        let (root, cache) = temp_cache("orphan");
        let dir = cache.snapshot_dir("old");
        fs::create_dir_all(dir.join("sub")).expect("dirs");
        fs::write(dir.join("a.bin"), b"a").expect("write");
        fs::write(dir.join("sub/b.bin.partial"), b"b").expect("write");
        fs::write(dir.join(MANIFEST_NAME), b"{}").expect("write");
        let outside = root.join("outside.txt");
        fs::write(&outside, b"not ours").expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, dir.join("link")).expect("symlink");
        let stamps = cache.state_dir().join("verified/old.json");
        fs::create_dir_all(stamps.parent().expect("parent")).expect("dir");
        fs::write(&stamps, b"{}").expect("write");
        // What a crash between the move and the delete would have left.
        let leftover = cache.state_dir().join(TRASH).join("1-2");
        fs::create_dir_all(leftover.join("x")).expect("leftover");
        fs::write(leftover.join("x/y"), b"y").expect("write");

        remove_orphan(&cache, "old").expect("removed");
        assert!(!dir.exists(), "the folder is gone");
        assert!(!stamps.exists(), "its stamps are gone");
        let trash: Vec<_> = fs::read_dir(cache.state_dir().join(TRASH))
            .expect("trash")
            .collect();
        assert!(trash.is_empty(), "trash emptied, leftovers too: {trash:?}");
        assert_eq!(fs::read(&outside).expect("kept"), b"not ours");
        assert!(cache.snapshots_dir().is_dir(), "snapshots/ itself stays");
        fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn a_missing_orphan_is_an_error_and_touches_nothing() {
        let (root, cache) = temp_cache("missing");
        fs::create_dir_all(cache.snapshot_dir("kept")).expect("dir");
        let err = remove_orphan(&cache, "gone").expect_err("nothing to move");
        assert!(err.to_string().contains("gone"), "{err}");
        assert!(cache.snapshot_dir("kept").is_dir());
        fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn a_copy_is_flushed_and_writable_whatever_the_source_permissions() {
        let (root, _) = temp_cache("copy");
        fs::create_dir_all(&root).expect("dir");
        let (src, dest) = (root.join("src.bin"), root.join("dest.bin"));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&src, &data).expect("write");
        let mut ro = fs::metadata(&src).expect("meta").permissions();
        ro.set_readonly(true);
        fs::set_permissions(&src, ro).expect("read-only");
        copy_synced(&src, &dest).expect("copy");
        assert_eq!(fs::read(&dest).expect("read"), data);
        assert!(
            !fs::metadata(&dest).expect("meta").permissions().readonly(),
            "the copy does not inherit the read-only flag"
        );
        fs::remove_dir_all(&root).ok();
    }
}
