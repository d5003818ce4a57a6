//! Git object ids, as the Hub reports them: blob ids, tree ids and LFS pointer files.

use crate::encode::{hex, unhex};
use crate::model::Content;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read};

/// Bytes read per call while hashing a file from disk.
const HASH_BUFFER: usize = 1 << 20;

#[derive(Clone)]
pub(crate) struct LfsInfo {
    pub(crate) sha256: String,
    pub(crate) pointer_size: u64,
}

#[derive(Clone)]
pub(crate) struct Digests {
    pub(crate) size: u64,
    /// Git blob id: of the content for regular files, of the pointer file for LFS files.
    pub(crate) blob_id: String,
    /// Of the content, for every file: what ModelScope listings report.
    pub(crate) sha256: String,
    pub(crate) lfs: Option<LfsInfo>,
}

pub(crate) struct StoredFile {
    pub(crate) content: Content,
    pub(crate) digests: Digests,
}

pub(crate) struct TreeEntry {
    pub(crate) path: String,
    /// `Some(git tree id)` for directories.
    pub(crate) dir_oid: Option<String>,
}

pub(crate) fn commit_sha(
    counter: u64,
    repo: &str,
    branch: &str,
    files: &BTreeMap<String, StoredFile>,
) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("commit {counter}\n{repo}\n{branch}\n"));
    for (path, file) in files {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(file.digests.blob_id.as_bytes());
    }
    hex(&hasher.finalize())
}

pub(crate) fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

pub(crate) fn name_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// One entry of a git tree object.
struct TreeChild<'a> {
    pub(crate) name: &'a str,
    pub(crate) is_dir: bool,
    pub(crate) id: Vec<u8>,
}

/// Files plus every directory that contains one, each directory with its real git tree id.
pub(crate) fn tree_entries(files: &BTreeMap<String, StoredFile>) -> Vec<TreeEntry> {
    let mut dirs = BTreeSet::new();
    for path in files.keys() {
        let mut dir = parent_of(path);
        while !dir.is_empty() && dirs.insert(dir) {
            dir = parent_of(dir);
        }
    }
    let mut children: HashMap<&str, Vec<TreeChild>> = HashMap::new();
    for (path, file) in files {
        let child = TreeChild {
            name: name_of(path),
            is_dir: false,
            id: unhex(&file.digests.blob_id),
        };
        children.entry(parent_of(path)).or_default().push(child);
    }
    let mut entries: Vec<TreeEntry> = files
        .keys()
        .map(|path| TreeEntry {
            path: path.clone(),
            dir_oid: None,
        })
        .collect();
    // A child's path extends its parent's, so reverse lexicographic order visits children first.
    for &dir in dirs.iter().rev() {
        let oid = git_tree_id(children.remove(dir).unwrap_or_default());
        let child = TreeChild {
            name: name_of(dir),
            is_dir: true,
            id: unhex(&oid),
        };
        children.entry(parent_of(dir)).or_default().push(child);
        entries.push(TreeEntry {
            path: dir.to_owned(),
            dir_oid: Some(oid),
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries
}

fn git_tree_id(mut children: Vec<TreeChild>) -> String {
    // Git orders tree entries as if directory names ended with '/'.
    children.sort_by_cached_key(|child| {
        let mut key = child.name.as_bytes().to_vec();
        if child.is_dir {
            key.push(b'/');
        }
        key
    });
    let mut body = Vec::new();
    for child in &children {
        body.extend_from_slice(if child.is_dir { b"40000 " } else { b"100644 " });
        body.extend_from_slice(child.name.as_bytes());
        body.push(0);
        body.extend_from_slice(&child.id);
    }
    git_object_id("tree", &body)
}

pub(crate) fn git_object_id(kind: &str, body: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("{kind} {}\0", body.len()));
    hasher.update(body);
    hex(&hasher.finalize())
}

fn lfs_pointer(sha256: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

pub(crate) fn digest_content(content: &Content, lfs: bool) -> io::Result<Digests> {
    let size = content.size()?;
    let header = format!("blob {size}\0");
    let mut sha1 = Sha1::new();
    sha1.update(header.as_bytes());
    let mut sha256 = Sha256::new();
    // One pass feeds both: disk files can be gigabytes.
    read_content(content, size, |piece| {
        sha1.update(piece);
        sha256.update(piece);
    })?;
    let sha256 = hex(&sha256.finalize());
    // The Hub stores an empty file that matches an LFS pattern as a plain git blob.
    if lfs && size > 0 {
        let pointer = lfs_pointer(&sha256, size);
        let blob_id = git_object_id("blob", pointer.as_bytes());
        let lfs = LfsInfo {
            sha256: sha256.clone(),
            pointer_size: pointer.len() as u64,
        };
        Ok(Digests {
            size,
            blob_id,
            sha256,
            lfs: Some(lfs),
        })
    } else {
        Ok(Digests {
            size,
            blob_id: hex(&sha1.finalize()),
            sha256,
            lfs: None,
        })
    }
}

fn read_content(content: &Content, size: u64, mut feed: impl FnMut(&[u8])) -> io::Result<()> {
    match content {
        Content::Bytes(bytes) => feed(bytes),
        Content::File(path) => {
            let mut file = File::open(path)?;
            let mut buf = vec![0; HASH_BUFFER];
            let mut seen = 0;
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                feed(&buf[..n]);
                seen += n as u64;
            }
            if seen != size {
                let msg = format!("{} changed while being hashed", path.display());
                return Err(io::Error::other(msg));
            }
        }
    }
    Ok(())
}

/// The sha256 of `bytes` in lowercase hex: an LFS file's oid, what `X-Linked-Etag` carries.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}
