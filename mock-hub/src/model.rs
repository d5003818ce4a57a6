//! The public data model: files, their content, fault targets and faults, request log entries.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a file's bytes come from.
#[derive(Clone)]
pub enum Content {
    /// In memory.
    Bytes(Arc<[u8]>),
    /// Read from disk on every request (size from metadata), so multi-GiB files cost no memory.
    File(PathBuf),
}

impl Content {
    pub(crate) fn size(&self) -> io::Result<u64> {
        match self {
            Content::Bytes(bytes) => Ok(bytes.len() as u64),
            Content::File(path) => Ok(fs::metadata(path)?.len()),
        }
    }
}

/// One file of a commit.
#[derive(Clone)]
pub struct MockFile {
    /// Repo-relative path, `/`-separated. Not validated: hostile names are allowed on purpose.
    pub path: String,
    /// The bytes, in memory or read lazily from disk.
    pub content: Content,
    /// Stored through LFS (302 to the CDN) rather than as a git blob (served directly).
    pub lfs: bool,
}

impl MockFile {
    /// A git-stored file.
    pub fn regular(path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.to_owned(),
            content: Content::Bytes(bytes.into().into()),
            lfs: false,
        }
    }

    /// An LFS file.
    pub fn lfs(path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.to_owned(),
            content: Content::Bytes(bytes.into().into()),
            lfs: true,
        }
    }

    /// An LFS file read lazily from `disk`.
    pub fn lfs_from_path(repo_path: &str, disk: PathBuf) -> Self {
        Self {
            path: repo_path.to_owned(),
            content: Content::File(disk),
            lfs: true,
        }
    }

    /// A git-stored file read lazily from `disk`.
    pub fn regular_from_path(repo_path: &str, disk: PathBuf) -> Self {
        Self {
            path: repo_path.to_owned(),
            content: Content::File(disk),
            lfs: false,
        }
    }

    /// The file's bytes (read from disk for `Content::File`), for tests comparing results.
    pub fn bytes(&self) -> Vec<u8> {
        match &self.content {
            Content::Bytes(b) => b.to_vec(),
            Content::File(p) => std::fs::read(p).expect("mock file readable"),
        }
    }
}

/// The bytes of the file at `path` in a fixture (panics if the fixture lacks it).
pub fn content(files: &[MockFile], path: &str) -> Vec<u8> {
    files
        .iter()
        .find(|f| f.path == path)
        .expect("file in fixture")
        .bytes()
}

/// The sum of the fixture's file sizes.
pub fn total_size(files: &[MockFile]) -> u64 {
    files.iter().map(|f| f.bytes().len() as u64).sum()
}

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct RequestLog {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The `Host` header as sent.
    pub host: String,
    /// Path and query as sent (still percent-encoded).
    pub path: String,
    /// The `Authorization` header, if sent.
    pub authorization: Option<String>,
    /// The `Cookie` header, if sent (ModelScope clients send `m_session_id=<token>`).
    pub cookie: Option<String>,
    /// The `Range` header, if sent.
    pub range: Option<String>,
    /// The `User-Agent` header, if sent.
    pub user_agent: Option<String>,
    /// Status of the answer; `0` while the answer is being prepared or when a
    /// [`Fault::NoResponse`] swallowed the request.
    pub status: u16,
    /// Every request header in arrival order, for assertions the fields above do not cover.
    pub headers: Vec<(String, String)>,
}

impl RequestLog {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// Which requests a [`Fault`] applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/api/models/{repo}` and `/api/models/{repo}/revision/{rev}`; also ModelScope's listing
    /// `/api/v1/models/{repo}/repo/files`.
    Api,
    /// `/api/models/{repo}/tree/...` (any page).
    Tree,
    /// `HEAD`/`GET` of `/{repo}/resolve/{rev}/{path}` or the resolve-cache route for this path;
    /// also ModelScope's `/api/v1/models/{repo}/repo?FilePath={path}`. Body faults need a served
    /// body, so they never fire on a redirect (LFS, or ModelScope's redirect mode): use `Cdn`.
    Resolve(String),
    /// `HEAD`/`GET` on the CDN of a signed URL minted for this repo path.
    Cdn(String),
    /// Any `GET` of file content: resolve, resolve-cache, ModelScope's file route or CDN.
    AnyFile,
}

/// The body shape of ModelScope's file listing, all seen in the wild and all accepted by
/// lemonade's client. Entries are the same in each; only the wrapping and key case change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListingShape {
    /// `{"Code":200,"Success":true,"Message":"success","RequestId":…,"Data":{"Files":[…]}}`.
    #[default]
    Envelope,
    /// `{"Code":200,"Data":[…]}`.
    DataArray,
    /// `[…]`.
    BareArray,
    /// `{"Data":{"files":[…]}}`, entries with lower-case keys only: `path`, `name`, `type`,
    /// `size`, `sha256`.
    LowerFiles,
}

/// A queued misbehaviour. Each one is consumed by the first matching request it applies to; when
/// several queued faults apply to one request, the one queued first wins (so `DropAfter` then
/// `Status` on one target means: cut the first answer mid-body, then fail the retry).
///
/// `Status`, `NoResponse`, `Redirect` and `Json` apply to any matching request; `PaddedJson` to
/// a `200` JSON answer of the API. The others apply only to `GET`s that would send file content
/// (`200`/`206`); `IgnoreRange` and `WrongContentRange` only when a satisfiable `Range` was sent.
/// A fault that does not apply stays queued.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status instead (JSON error on the Hub, XML on the CDN). `429` also gets
    /// `RateLimit`/`RateLimit-Policy` when `retry_after` is a number of seconds.
    Status {
        /// The status code.
        code: u16,
        /// The `Retry-After` header, verbatim (seconds or an HTTP date).
        retry_after: Option<String>,
    },
    /// Announce the full `Content-Length`, send this many body bytes, then close the socket.
    DropAfter(u64),
    /// Answer `200` with the whole body even though a `Range` was sent.
    IgnoreRange,
    /// Answer `206` for a range starting one byte off the requested start (and send those bytes).
    WrongContentRange,
    /// Send `bytes` body bytes, stay silent for `stall`, then close.
    StallAfter {
        /// Body bytes sent before the silence.
        bytes: u64,
        /// How long the silence lasts.
        stall: Duration,
    },
    /// Read the request, send nothing for this long, then close.
    NoResponse(Duration),
    /// Answer with a redirect (`status`, e.g. `302`) to `location`, verbatim: a loop back to the
    /// same URL, another scheme (`file:///etc/passwd`, `ftp://…`), another host or port. Carries
    /// no Hub headers. Applies to any matching request.
    Redirect {
        /// The redirect status, e.g. `302` or `307`.
        status: u16,
        /// The `Location` header, verbatim.
        location: String,
    },
    /// Answer `200` with this body as `application/json` instead of the real answer (malformed
    /// JSON, hostile listings). Meant for `Api` and `Tree`; applies to any matching request.
    Json(String),
    /// Send the real JSON answer of an `Api`/`Tree` request preceded by this many bytes of JSON
    /// whitespace (still a valid document), streamed so the mock never holds it, with the true
    /// `Content-Length`. Applies only to a `200` JSON answer. See [`MockHub::padding_bytes_served`].
    PaddedJson(u64),
    /// File content: announce and send only this many body bytes, ending the body cleanly (the
    /// connection stays open). A `206` keeps its full `Content-Range`, so the body is shorter
    /// than the range it claims; a `200` announces fewer bytes than the file has.
    ShortBody(u64),
    /// File content: send this many junk bytes (`0xAA`) after the real body, counted in
    /// `Content-Length` (a `206` keeps its `Content-Range`). Not counted as file bytes served.
    LongBody(u64),
}

/// Called by `POST /admin/commit?repo=R&branch=B`; returns the files of the new commit.
pub type AdminCommitHook = Arc<dyn Fn(&str, &str) -> Result<Vec<MockFile>, String> + Send + Sync>;

/// Deterministic pseudo-random bytes (xorshift64*), cheap enough for multi-GiB test content.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    PseudoRandom::new(seed).fill(&mut bytes);
    bytes
}

/// The stream behind [`pseudo_random_bytes`], for writing large files in pieces.
pub struct PseudoRandom {
    state: u64,
    /// Bytes of the last word not handed out yet, so `fill` calls of any size concatenate to the
    /// same stream as one big call.
    spare: [u8; 8],
    spare_len: usize,
}

impl PseudoRandom {
    /// The stream of `seed`: the same bytes as `pseudo_random_bytes(seed, …)`.
    pub fn new(seed: u64) -> Self {
        // xorshift has a fixed point at 0; mix the seed so small seeds differ a lot.
        let state = (seed ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1;
        Self {
            state,
            spare: [0; 8],
            spare_len: 0,
        }
    }

    fn next_word(&mut self) -> [u8; 8] {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }

    /// Fills `out` with the next bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        let from_spare = self.spare_len.min(out.len());
        let spare_start = 8 - self.spare_len;
        out[..from_spare].copy_from_slice(&self.spare[spare_start..spare_start + from_spare]);
        self.spare_len -= from_spare;
        let mut words = out[from_spare..].chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_word());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let word = self.next_word();
            tail.copy_from_slice(&word[..tail.len()]);
            self.spare = word;
            self.spare_len = 8 - tail.len();
        }
    }
}

/// First header with this name (case-insensitive) of a request or a log entry.
pub(crate) fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
