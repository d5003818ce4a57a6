//! Entry points for the coverage-guided fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by
//! default; not part of the supported API).
//!
//! The parsers live in private modules; these thin wrappers hand them bytes or text from the fuzzer
//! and return what they produce, so the targets can check properties. Nothing here adds behaviour:
//! each function calls exactly the code a pull runs on the same input.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use crate::manifest::{Manifest, ManifestFile};
pub use crate::net::hub::{MAX_FILE_SIZE, RemoteFile};
pub use crate::select::Selection;
pub use crate::verify::ContentId;

use crate::error::{Error, Result};

/// Repo id the listing parsers and the selection are called with.
pub const REPO: &str = "org/repo";
/// URL the listing parsers name in their errors.
pub const LISTING_URL: &str = "https://huggingface.co/api/models/org/repo/revision/main?blobs=true";

/// `.download_manifest.json` bytes, any version (`Manifest::parse`).
pub fn manifest(bytes: &[u8]) -> Option<Manifest> {
    Manifest::parse(bytes)
}

/// Writes a manifest as a pull does (`Manifest::write`), for round trips.
pub fn manifest_write(manifest: &Manifest, path: &Path) -> Result<()> {
    manifest.write(path)
}

/// Reads a manifest file as a pull does (`Manifest::read`).
pub fn manifest_read(path: &Path) -> Option<Manifest> {
    Manifest::read(path)
}

/// The answer of `/api/models/{repo}/revision/{rev}?blobs=true`: the commit, and the files when
/// the listing is complete.
pub fn hub_model_info(body: &str) -> Result<(String, Option<Vec<RemoteFile>>)> {
    crate::net::hub::parse_model_info(LISTING_URL, REPO, body)
}

/// One page of `/api/models/{repo}/tree/{commit}?recursive=true`.
pub fn hub_tree_page(body: &str) -> Result<Vec<RemoteFile>> {
    crate::net::hub::parse_tree_page(LISTING_URL, REPO, body)
}

/// The `rel="next"` target of a tree page's `Link` header.
pub fn hub_next_link(header: &str) -> Option<String> {
    crate::net::hub::next_link(header)
}

/// Sorts a listing and refuses duplicates and file/folder clashes, as a pull does.
pub fn hub_sort_unique(files: &mut [RemoteFile]) -> Result<()> {
    crate::net::hub::sort_unique(LISTING_URL, files)
}

/// A `Content-Range` header value: `(first, last, total)`.
pub fn content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    crate::transfer::wire::parse_content_range(value)
}

/// A `Retry-After` header value, as a wait from `now`.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    crate::net::retry::parse_retry_after(value, now)
}

/// A file path from a listing (`validate_file_path`).
pub fn validate_file_path(path: &str) -> Result<()> {
    crate::repo_path::validate_file_path(REPO, path)
}

/// A repo id from a user (`validate_repo_id`).
pub fn validate_repo_id(repo: &str) -> Result<()> {
    crate::repo_path::validate_repo_id(repo)
}

/// A revision from a user, with this platform's rules (`validate_revision`).
pub fn validate_revision(revision: &str) -> Result<()> {
    crate::repo_path::validate_revision(revision)
}

/// Why a revision is refused, with or without the Windows file-name rules.
pub fn revision_problem(revision: &str, windows: bool) -> Option<String> {
    crate::repo_path::revision_problem(revision, windows)
}

/// The cache folder of a Hugging Face repo (`models--org--name`).
pub fn repo_folder_name(repo: &str) -> String {
    crate::registry::Registry::HuggingFace.folder_name(repo)
}

/// Where `refs/<revision>` of [`REPO`] is written in the cache at `cache_root`.
pub fn ref_path(cache_root: &Path, revision: &str) -> PathBuf {
    crate::cache::RepoCache::of(cache_root, REPO, crate::registry::Registry::HuggingFace)
        .ref_path(revision)
}

/// A ModelScope listing body: its tree fingerprint and files (`net::modelscope`).
pub fn modelscope_listing(revision: &str, body: &str) -> Result<(String, Vec<RemoteFile>)> {
    crate::net::modelscope::parse_listing(LISTING_URL, REPO, revision, body)
}

/// A repo path joined onto a local folder (`join_repo_path`).
pub fn join_repo_path(base: &Path, path: &str) -> PathBuf {
    crate::repo_path::join_repo_path(base, path)
}

/// A repo path percent-encoded for a URL, `/` kept.
pub fn encode_path(path: &str) -> String {
    crate::repo_path::encode_path(path)
}

/// One URL segment percent-encoded, `/` included.
pub fn encode_segment(segment: &str) -> String {
    crate::repo_path::encode_segment(segment)
}

/// The first two paths that a file system ignoring letter case cannot hold apart.
pub fn case_collision<'a>(paths: &[&'a str]) -> Option<(&'a str, &'a str)> {
    crate::repo_path::case_collision(paths.iter().copied())
}

/// The files a selection picks from a listing (`select::select`).
pub fn select(paths: &[&str], selection: &Selection) -> Result<Vec<usize>, Error> {
    crate::select::select(REPO, paths, selection)
}

/// The variant names of a listing (`available_variants`).
pub fn available_variants(paths: &[&str]) -> Vec<String> {
    crate::select::available_variants(paths)
}

/// A segments sidecar's bytes parsed as a read does, then written back as a save does; `None`
/// when the read would not accept them.
pub fn segments_reencode(bytes: &[u8]) -> Option<Vec<u8>> {
    crate::transfer::segments::Record::parse(bytes).and_then(|r| serde_json::to_vec(&r).ok())
}

/// The ranges of `partial` that the segments sidecar of `id` under `state_dir` lets a resume
/// trust, for a file of `size` bytes (`Sidecar::trusted`).
pub fn segments_trusted(
    state_dir: &Path,
    id: &ContentId,
    partial: &Path,
    size: u64,
) -> Option<Vec<(u64, u64)>> {
    crate::transfer::segments::Sidecar::new(state_dir, id)
        .trusted(partial, size)
        .map(|set| set.ranges().to_vec())
}

/// Where the segments sidecar of `id` lives under `state_dir`.
pub fn segments_path(state_dir: &Path, id: &ContentId) -> PathBuf {
    crate::transfer::segments::Sidecar::new(state_dir, id)
        .path()
        .to_path_buf()
}

/// The bytes of a partial that salvage counts as usable (`segments::usable_len`).
pub fn segments_usable_len(state_dir: &Path, id: &ContentId, partial: &Path, on_disk: u64) -> u64 {
    crate::transfer::segments::usable_len(state_dir, id, partial, on_disk)
}

/// A checkpoint file's bytes parsed as a read does, then written back as a record does.
pub fn checkpoint_reencode(bytes: &[u8]) -> Option<Vec<u8>> {
    crate::transfer::checkpoint::Record::parse(bytes).and_then(|r| serde_json::to_vec(&r).ok())
}

/// How many bytes of `partial` (`have` bytes long) the checkpoint of `id` under `state_dir`
/// trusts (`Checkpoint::trusted_len`).
pub fn checkpoint_trusted_len(state_dir: &Path, id: &ContentId, partial: &Path, have: u64) -> u64 {
    crate::transfer::checkpoint::Checkpoint::new(state_dir, id).trusted_len(partial, have)
}

/// Where the checkpoint of `id` lives under `state_dir`.
pub fn checkpoint_path(state_dir: &Path, id: &ContentId) -> PathBuf {
    crate::transfer::checkpoint::Checkpoint::new(state_dir, id)
        .path()
        .to_path_buf()
}
