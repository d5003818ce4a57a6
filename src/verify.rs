//! Content identity: sha256 for LFS files, git blob sha1 for the rest, and streaming hashers for both.
//!
//! A file's content id, not its path or commit, decides whether bytes on disk can be reused.
//!
//! sha256 is ring's (already linked for TLS; as fast as the sha2 crate, both use the CPU's SHA
//! instructions); sha1 is the sha1 crate's, four times faster than ring's (`benches/digest.rs`).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha1::Digest as _;

use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// The identity of a file's content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentId {
    /// Lower-case hex sha256 of the bytes (LFS / Xet files).
    Sha256(String),
    /// Lower-case hex sha1 of `"blob <len>\0" + bytes` (files stored in git).
    GitSha1(String),
    /// No digest is known (a ModelScope listing without `Sha256`): only the size is checked. The
    /// value is a 64-hex key of the snapshot, path and size ([`ContentId::size_only`]), so such
    /// a file matches nothing in another snapshot: its bytes are never reused across trees by
    /// guesswork, only resumed in place.
    SizeOnly(String),
}

impl ContentId {
    /// Parses a manifest-style pair (`"sha256"` / `"git-sha1"`, hex); `None` if malformed.
    pub fn from_parts(algorithm: &str, value: &str) -> Option<ContentId> {
        let v = value.trim().to_ascii_lowercase();
        match algorithm {
            "sha256" if is_hex(&v, 64) => Some(ContentId::Sha256(v)),
            "git-sha1" | "sha1" if is_hex(&v, 40) => Some(ContentId::GitSha1(v)),
            "size-only" if is_hex(&v, 64) => Some(ContentId::SizeOnly(v)),
            _ => None,
        }
    }

    /// The id of a file known only by its size, in snapshot `snapshot` at `path`.
    pub fn size_only(snapshot: &str, path: &str, size: u64) -> ContentId {
        let mut h = ring::digest::Context::new(&ring::digest::SHA256);
        h.update(format!("size-only\0{snapshot}\0{path}\0{size}").as_bytes());
        ContentId::SizeOnly(hex(h.finish().as_ref()))
    }

    /// `"sha256"` or `"git-sha1"`, as in lemonade's manifest (`"size-only"`: no digest).
    pub fn algorithm(&self) -> &'static str {
        match self {
            ContentId::Sha256(_) => "sha256",
            ContentId::GitSha1(_) => "git-sha1",
            ContentId::SizeOnly(_) => "size-only",
        }
    }

    /// The hex digest (for a size-only id, its key).
    pub fn hex(&self) -> &str {
        match self {
            ContentId::Sha256(h) | ContentId::GitSha1(h) | ContentId::SizeOnly(h) => h,
        }
    }

    /// Whether verifying a file against this id checks its bytes, not only its size.
    pub fn is_digest(&self) -> bool {
        !matches!(self, ContentId::SizeOnly(_))
    }

    /// A streaming hasher for a file of `size` bytes with this kind of id.
    pub fn hasher(&self, size: u64) -> ContentHasher {
        match self {
            ContentId::Sha256(_) => {
                ContentHasher::Sha256(ring::digest::Context::new(&ring::digest::SHA256))
            }
            ContentId::GitSha1(_) => {
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {size}\0").as_bytes());
                ContentHasher::GitSha1(h)
            }
            ContentId::SizeOnly(key) => ContentHasher::SizeOnly(key.clone()),
        }
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm(), self.hex())
    }
}

/// Whether `s` is exactly `len` lower- or upper-case hex digits.
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Incremental hasher matching a [`ContentId`] kind.
#[derive(Clone)]
pub enum ContentHasher {
    /// sha256 of the bytes.
    Sha256(ring::digest::Context),
    /// sha1 over the git blob header and the bytes.
    GitSha1(sha1::Sha1),
    /// Nothing to compute: the size is checked by whoever counts the bytes.
    SizeOnly(String),
}

impl ContentHasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            ContentHasher::Sha256(h) => h.update(data),
            ContentHasher::GitSha1(h) => h.update(data),
            ContentHasher::SizeOnly(_) => {}
        }
    }

    /// The resulting id.
    pub fn finish(self) -> ContentId {
        match self {
            ContentHasher::Sha256(h) => ContentId::Sha256(hex(h.finish().as_ref())),
            ContentHasher::GitSha1(h) => ContentId::GitSha1(hex(&h.finalize())),
            ContentHasher::SizeOnly(key) => ContentId::SizeOnly(key),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Size of the blocks read when hashing files on disk.
const HASH_BLOCK: usize = 1 << 20;

/// Hashes the first `len` bytes of `path` into `hasher`, checking for cancellation between blocks.
/// Fails if the file is shorter than `len`.
pub fn hash_prefix(
    path: &Path,
    len: u64,
    hasher: &mut ContentHasher,
    cancel: &Cancel,
    mut on_block: impl FnMut(u64) -> Result<()>,
) -> Result<()> {
    let mut file = File::open(path).map_err(Error::io_at("open", path))?;
    let mut buf = vec![0u8; HASH_BLOCK];
    let mut left = len;
    while left > 0 {
        cancel.check()?;
        let want = left.min(HASH_BLOCK as u64) as usize;
        let n = file
            .read(&mut buf[..want])
            .map_err(Error::io_at("read", path))?;
        if n == 0 {
            return Err(Error::Io {
                op: "read",
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shorter than expected",
                ),
            });
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
        on_block(n as u64)?;
    }
    Ok(())
}

/// Hashes a whole file of the expected `size` and returns its id of the same kind as `expected`.
pub fn hash_file(
    path: &Path,
    expected: &ContentId,
    size: u64,
    cancel: &Cancel,
) -> Result<ContentId> {
    let mut hasher = expected.hasher(size);
    hash_prefix(path, size, &mut hasher, cancel, |_| Ok(()))?;
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_sha1_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let mut h = ContentId::GitSha1(String::new()).hasher(6);
        h.update(b"hello\n");
        assert_eq!(h.finish().hex(), "ce013625030ba8dba906f756967f9e9ca394464a");
        // empty blob
        let h = ContentId::GitSha1(String::new()).hasher(0);
        assert_eq!(h.finish().hex(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }

    #[test]
    fn sha256_known_value() {
        let mut h = ContentId::Sha256(String::new()).hasher(3);
        h.update(b"abc");
        assert_eq!(
            h.finish().hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parts_round_trip_and_reject_garbage() {
        let id = ContentId::from_parts("sha256", &"AB".repeat(32)).expect("valid");
        assert_eq!(id.hex(), "ab".repeat(32));
        assert_eq!(id.to_string(), format!("sha256:{}", "ab".repeat(32)));
        assert!(ContentId::from_parts("sha256", "xyz").is_none());
        assert!(ContentId::from_parts("md5", &"a".repeat(32)).is_none());
        assert!(ContentId::from_parts("git-sha1", &"a".repeat(40)).is_some());
    }

    #[test]
    fn hash_file_and_short_file() {
        let dir = std::env::temp_dir().join(format!("lp-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("f");
        std::fs::write(&p, b"hello\n").expect("write");
        let want = ContentId::GitSha1("ce013625030ba8dba906f756967f9e9ca394464a".into());
        assert_eq!(
            hash_file(&p, &want, 6, &Cancel::default()).expect("hash"),
            want
        );
        assert!(hash_file(&p, &want, 7, &Cancel::default()).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
