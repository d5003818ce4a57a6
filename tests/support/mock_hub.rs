//! An in-process mock of the Hugging Face Hub download protocol, for tests and benchmarks.
//!
//! It follows `hf-protocol.md` (§1-3, 5, 10, 11): a client that works against this mock must also
//! work against the real Hub, so nothing here is easier than the real thing. The Hub answers on
//! `http://127.0.0.1:PORT`; its signed-URL "CDN" is the same listener reached as
//! `http://localhost:PORT`. Requests are routed by `Host`, so a client that does not follow the
//! cross-host redirect, or that leaks its token across it, is caught.
//!
//! The module is self-contained: tests include it with `mod support;`, `examples/mock-hub.rs`
//! with `#[path]`.
//!
//! Choices where the real Hub's behaviour is unknown (tagged [I] in the reference):
//! * zero-length files: every `Range` is unsatisfiable (`416`, `Content-Range: bytes */0`), as
//!   RFC 9110 prescribes;
//! * an empty file committed as LFS is stored as a regular git blob (the Hub does that);
//! * the `ETag` of an LFS redirect is the git blob id of the pointer file; `X-Linked-Etag` is the
//!   sha256, so a client that takes the wrong header fails verification;
//! * the CDN serves requests that carry `Authorization` (the real one evidently does) but logs
//!   the header, so tests can assert it is absent;
//! * tree cursors are plain offsets; clients must treat them as opaque anyway.
//!
//! Not implemented: gzip responses, Xet, `paths-info`, `/refs`, `/raw`, datasets and spaces.

use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Body bytes per `write` call; large writes keep the mock from being the bottleneck of a benchmark.
const CHUNK: usize = 1 << 20;
const MAX_HEAD_BYTES: u64 = 64 * 1024;
const MAX_HEADERS: usize = 100;
const MAX_REQUEST_BODY: u64 = 16 << 20;
/// Idle keep-alive connections are closed after this, like any real server does eventually.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_TREE_PAGE: usize = 1000;
/// The Hub pages `/tree` by 50 when `expand=true`.
const EXPAND_TREE_PAGE: usize = 50;
/// Faults one admin call may queue; bounds the memory a single request can claim.
const MAX_ADMIN_FAULTS: usize = 10_000;
/// Lifetime written into signed URLs when no TTL is enforced.
const DEFAULT_SIGNATURE_SECS: u64 = 3600;

// ---------------------------------------------------------------------------------------------
// Public data model
// ---------------------------------------------------------------------------------------------

/// Where a file's bytes come from.
#[derive(Clone)]
pub enum Content {
    /// In memory.
    Bytes(Arc<[u8]>),
    /// Read from disk on every request (size from metadata), so multi-GiB files cost no memory.
    File(PathBuf),
}

impl Content {
    fn size(&self) -> io::Result<u64> {
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
    pub method: String,
    /// The `Host` header as sent.
    pub host: String,
    /// Path and query as sent (still percent-encoded).
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
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
    /// `/api/models/{repo}` and `/api/models/{repo}/revision/{rev}`.
    Api,
    /// `/api/models/{repo}/tree/...` (any page).
    Tree,
    /// `HEAD`/`GET` of `/{repo}/resolve/{rev}/{path}` or the resolve-cache route for this path.
    /// Body faults need a served body, so they never fire on an LFS file's redirect: use `Cdn`.
    Resolve(String),
    /// `HEAD`/`GET` on the CDN of a signed URL minted for this repo path.
    Cdn(String),
    /// Any `GET` of file content: resolve, resolve-cache or CDN.
    AnyFile,
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
        code: u16,
        retry_after: Option<String>,
    },
    /// Announce the full `Content-Length`, send this many body bytes, then close the socket.
    DropAfter(u64),
    /// Answer `200` with the whole body even though a `Range` was sent.
    IgnoreRange,
    /// Answer `206` for a range starting one byte off the requested start (and send those bytes).
    WrongContentRange,
    /// Send `bytes` body bytes, stay silent for `stall`, then close.
    StallAfter { bytes: u64, stall: Duration },
    /// Read the request, send nothing for this long, then close.
    NoResponse(Duration),
    /// Answer with a redirect (`status`, e.g. `302`) to `location`, verbatim: a loop back to the
    /// same URL, another scheme (`file:///etc/passwd`, `ftp://…`), another host or port. Carries
    /// no Hub headers. Applies to any matching request.
    Redirect { status: u16, location: String },
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

// ---------------------------------------------------------------------------------------------
// The hub
// ---------------------------------------------------------------------------------------------

/// A running mock Hub. Stops listening (and closes open connections) when dropped.
pub struct MockHub {
    shared: Arc<Shared>,
    listeners: Vec<(SocketAddr, JoinHandle<()>)>,
}

impl MockHub {
    /// Starts on a random port.
    pub fn start() -> MockHub {
        Self::start_on(0).expect("mock hub: bind 127.0.0.1")
    }

    /// Starts on `port` (0 = random). Also listens on `[::1]` when that port is free there,
    /// because `localhost` (the CDN host) may resolve to `::1` first.
    pub fn start_on(port: u16) -> io::Result<MockHub> {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let port = v4.local_addr()?.port();
        let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, port)).ok();
        // Built before spawning so that a failure half-way still stops what was started.
        let mut hub = MockHub {
            shared: Arc::new(Shared::new(port)),
            listeners: Vec::new(),
        };
        for listener in std::iter::once(v4).chain(v6) {
            let addr = listener.local_addr()?;
            let shared = Arc::clone(&hub.shared);
            let handle = thread::Builder::new()
                .name("mock-hub-accept".into())
                .spawn(move || accept_loop(&shared, listener))?;
            hub.listeners.push((addr, handle));
        }
        Ok(hub)
    }

    /// The Hub endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// The CDN base, `http://localhost:PORT`.
    pub fn cdn_base(&self) -> String {
        format!("http://localhost:{}", self.shared.port)
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Creates a commit whose tree is exactly `files` (a later duplicate path wins) and moves
    /// `branch` (created if needed) to it. Creates the repo (public) if needed. Panics if a
    /// `Content::File` cannot be read.
    pub fn commit(&self, repo: &str, branch: &str, files: Vec<MockFile>) -> String {
        self.try_commit(repo, branch, files)
            .expect("mock hub: read commit content")
    }

    /// [`MockHub::commit`] that reports unreadable files instead of panicking.
    pub fn try_commit(&self, repo: &str, branch: &str, files: Vec<MockFile>) -> io::Result<String> {
        self.shared.commit(repo, branch, files)
    }

    /// Points a branch, tag or `refs/pr/N` at a commit of this repo. Panics on an unknown sha.
    pub fn set_ref(&self, repo: &str, name: &str, sha: &str) {
        let mut st = self.shared.lock();
        let known = st
            .repos
            .get(repo)
            .is_some_and(|r| r.commits.contains_key(sha));
        if !known {
            drop(st);
            panic!("mock hub: set_ref({repo}, {name}): {sha} is not a commit of {repo}");
        }
        st.repo_mut(repo)
            .refs
            .insert(name.to_owned(), sha.to_owned());
    }

    pub fn ref_sha(&self, repo: &str, name: &str) -> Option<String> {
        self.shared.lock().repos.get(repo)?.refs.get(name).cloned()
    }

    /// Makes the repo private; only `allowed_token` (if any) may read it.
    pub fn set_private(&self, repo: &str, allowed_token: Option<&str>) {
        let mut st = self.shared.lock();
        let r = st.repo_mut(repo);
        r.private = true;
        r.allowed_token = allowed_token.map(str::to_owned);
    }

    pub fn set_public(&self, repo: &str) {
        let mut st = self.shared.lock();
        let r = st.repo_mut(repo);
        r.private = false;
        r.allowed_token = None;
    }

    /// Gates the repo (`"gated": "manual"`); only `approved_token` (if any) may download files.
    pub fn set_gated(&self, repo: &str, approved_token: Option<&str>) {
        let mut st = self.shared.lock();
        let r = st.repo_mut(repo);
        r.gated = true;
        r.approved_token = approved_token.map(str::to_owned);
    }

    pub fn set_ungated(&self, repo: &str) {
        let mut st = self.shared.lock();
        let r = st.repo_mut(repo);
        r.gated = false;
        r.approved_token = None;
    }

    /// Makes `token` valid (no `401 Invalid credentials`) without granting access to anything.
    /// Tokens named in `set_private`/`set_gated` are valid already.
    pub fn add_token(&self, token: &str) {
        self.shared.lock().extra_tokens.insert(token.to_owned());
    }

    pub fn set_disabled(&self, repo: &str, disabled: bool) {
        self.shared.lock().repo_mut(repo).disabled = disabled;
    }

    /// Moves the repo to `new`; `old` then answers a relative `307` to it on the API, tree,
    /// resolve and resolve-cache routes. Panics if `old` does not exist.
    pub fn rename_repo(&self, old: &str, new: &str) {
        let mut st = self.shared.lock();
        let Some(repo) = st.repos.remove(old) else {
            drop(st);
            panic!("mock hub: rename_repo: no repo {old}");
        };
        st.renames.remove(new);
        st.repos.insert(new.to_owned(), repo);
        st.renames.insert(old.to_owned(), new.to_owned());
    }

    pub fn push_fault(&self, target: Target, fault: Fault) {
        self.shared.lock().faults.push((target, fault));
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Faults still queued (not consumed yet).
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// Limits each connection's file-content body bytes (resolve `200`/`206` and CDN) to this
    /// rate. `None` or `Some(0)`: unlimited.
    pub fn set_rate_limit(&self, bytes_per_sec: Option<u64>) {
        self.shared.lock().knobs.rate_limit = bytes_per_sec.filter(|&bps| bps > 0);
    }

    /// Entries per `/tree` page (default 1000; at most 50 with `expand=true`, as on the Hub).
    pub fn set_tree_page_size(&self, n: usize) {
        self.shared.lock().knobs.tree_page_size = n.max(1);
    }

    /// `false`: `?blobs=true` siblings carry only `rfilename` and `blobId`, which forces a client
    /// to list with `/tree` to learn sizes and sha256s.
    pub fn set_listing_sizes(&self, include: bool) {
        self.shared.lock().knobs.listing_sizes = include;
    }

    /// Signed CDN URLs minted from now on answer `403` once `ttl` has passed. `None`: never.
    pub fn set_cdn_ttl(&self, ttl: Option<Duration>) {
        self.shared.lock().knobs.cdn_ttl = ttl;
    }

    /// Regular files answer `/resolve` with a relative `307` to `/api/resolve-cache/...`
    /// (protocol case B) instead of serving the bytes directly.
    pub fn set_resolve_cache_redirect(&self, on: bool) {
        self.shared.lock().knobs.resolve_cache_redirect = on;
    }

    /// Makes the metadata lie about a file's size: the listing (siblings and `/tree`, `size` and
    /// `lfs.size`) and the LFS redirect's `X-Linked-Size` say `size + delta`, while the bytes, their
    /// `Content-Length` and `Content-Range` stay true, like a stale metadata cache in front of a
    /// CDN. `delta = 0` removes the lie.
    pub fn set_size_lie(&self, repo: &str, path: &str, delta: i64) {
        let key = (repo.to_owned(), path.to_owned());
        let mut st = self.shared.lock();
        if delta == 0 {
            st.knobs.listed_size.remove(&key);
            st.knobs.linked_size.remove(&key);
        } else {
            st.knobs
                .listed_size
                .insert(key.clone(), SizeLie::Delta(delta));
            st.knobs.linked_size.insert(key, SizeLie::Delta(delta));
        }
    }

    /// The listing reports this JSON token as the file's size (`"-1"`, `"9223372036854775808"`,
    /// `"1e3"`, `"\"12\""`), verbatim, in siblings and `/tree`. `None`: the truth.
    pub fn set_listed_size_raw(&self, repo: &str, path: &str, raw: Option<&str>) {
        let key = (repo.to_owned(), path.to_owned());
        set_lie(&mut self.shared.lock().knobs.listed_size, key, raw);
    }

    /// The LFS redirect's `X-Linked-Size` carries this value verbatim. `None`: the truth.
    pub fn set_linked_size_raw(&self, repo: &str, path: &str, raw: Option<&str>) {
        let key = (repo.to_owned(), path.to_owned());
        set_lie(&mut self.shared.lock().knobs.linked_size, key, raw);
    }

    /// Strips this header (any case) from every answer of the Hub host (not the CDN), e.g.
    /// `X-Repo-Commit` to play a server that is not a Hub, or `X-Linked-Size`.
    pub fn omit_header(&self, name: &str) {
        self.shared
            .lock()
            .knobs
            .omit_headers
            .insert(name.to_ascii_lowercase());
    }

    /// Signed CDN URLs minted from now on point at `base` (`http://127.0.0.1:1`, a closed port:
    /// the CDN is down while the Hub answers). `None`: this mock's own `http://localhost:PORT`.
    pub fn set_cdn_base(&self, base: Option<&str>) {
        self.shared.lock().knobs.cdn_base = base.map(|b| b.trim_end_matches('/').to_owned());
    }

    /// Every `/tree` page (the last one too) carries `Link: <next>; rel="next"`, verbatim: a
    /// pagination loop (the first page's own URL) or a page on another host. `None`: real paging.
    pub fn set_tree_next_link(&self, next: Option<&str>) {
        self.shared.lock().knobs.tree_next = next.map(str::to_owned);
    }

    /// Bytes of [`Fault::PaddedJson`] padding actually written to sockets: how much of a huge
    /// answer the client read (plus what the kernel buffered) before it hung up.
    pub fn padding_bytes_served(&self) -> u64 {
        self.shared.padding_served.load(Ordering::SeqCst)
    }

    /// File-content body bytes sent so far (resolve and CDN, all files).
    pub fn bytes_served_total(&self) -> u64 {
        self.shared.total_served.load(Ordering::SeqCst)
    }

    /// File-content body bytes sent for this repo path (CDN bytes are attributed through the
    /// signed URL they were fetched with).
    pub fn bytes_served(&self, repo: &str, path: &str) -> u64 {
        let st = self.shared.lock();
        st.per_file
            .get(&(repo.to_owned(), path.to_owned()))
            .map_or(0, |counter| counter.load(Ordering::SeqCst))
    }

    /// Zeroes the byte counters (not the request log).
    pub fn reset_counters(&self) {
        self.shared.reset_counters();
    }

    /// Every request except admin ones, in arrival order.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared
            .lock()
            .log
            .iter()
            .map(|(_, entry)| entry.clone())
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Makes `POST /admin/commit` create commits from the files `hook` returns.
    pub fn on_admin_commit(
        &self,
        hook: impl Fn(&str, &str) -> Result<Vec<MockFile>, String> + Send + Sync + 'static,
    ) {
        self.shared.lock().admin_commit = Some(Arc::new(hook));
    }
}

fn set_lie(map: &mut HashMap<(String, String), SizeLie>, key: (String, String), raw: Option<&str>) {
    match raw {
        Some(raw) => {
            map.insert(key, SizeLie::Raw(raw.to_owned()));
        }
        None => {
            map.remove(&key);
        }
    }
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for (addr, handle) in self.listeners.drain(..) {
            // `accept` blocks; a connection wakes it up to notice `stop`. Only join if the wake-up
            // got through, so that a failed connect cannot hang the test.
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                let _ = handle.join();
            }
        }
        for (_, stream) in self.shared.conns().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct LfsInfo {
    sha256: String,
    pointer_size: u64,
}

#[derive(Clone)]
struct Digests {
    size: u64,
    /// Git blob id: of the content for regular files, of the pointer file for LFS files.
    blob_id: String,
    lfs: Option<LfsInfo>,
}

struct StoredFile {
    content: Content,
    digests: Digests,
}

struct TreeEntry {
    path: String,
    /// `Some(git tree id)` for directories.
    dir_oid: Option<String>,
}

struct Commit {
    sha: String,
    date: String,
    files: BTreeMap<String, StoredFile>,
    /// Files and directories, sorted by path.
    entries: Vec<TreeEntry>,
}

struct Repo {
    refs: BTreeMap<String, String>,
    commits: HashMap<String, Arc<Commit>>,
    private: bool,
    allowed_token: Option<String>,
    gated: bool,
    approved_token: Option<String>,
    disabled: bool,
    created_at: String,
}

struct SignedUrl {
    repo: String,
    path: String,
    sha256: String,
    size: u64,
    expires_param: String,
    deadline: Option<Instant>,
}

struct Knobs {
    rate_limit: Option<u64>,
    tree_page_size: usize,
    listing_sizes: bool,
    cdn_ttl: Option<Duration>,
    resolve_cache_redirect: bool,
    /// (repo, path) → what the listing (`?blobs=true` siblings and `/tree`) says the size is.
    listed_size: HashMap<(String, String), SizeLie>,
    /// (repo, path) → what `X-Linked-Size` says.
    linked_size: HashMap<(String, String), SizeLie>,
    /// Lowercase names of headers stripped from every Hub-host answer.
    omit_headers: BTreeSet<String>,
    /// `scheme://host:port` of signed CDN URLs; `None`: this mock's `http://localhost:PORT`.
    cdn_base: Option<String>,
    /// Every `/tree` page's `rel="next"` target, verbatim (a loop, another host).
    tree_next: Option<String>,
}

/// A size the metadata reports instead of the truth.
#[derive(Clone, Debug)]
enum SizeLie {
    /// The true size plus this (may go negative or past `u64::MAX`: rendered as such).
    Delta(i64),
    /// This JSON number token / header value, verbatim.
    Raw(String),
}

impl SizeLie {
    fn render(&self, size: u64) -> String {
        match self {
            SizeLie::Delta(d) => (i128::from(size) + i128::from(*d)).to_string(),
            SizeLie::Raw(raw) => raw.clone(),
        }
    }
}

/// Identifies a disk file's content well enough to reuse its digests across commits.
type FileKey = (PathBuf, u64, Option<SystemTime>, bool);

struct State {
    repos: HashMap<String, Repo>,
    /// Old repo id → new repo id.
    renames: HashMap<String, String>,
    /// LFS content by sha256, what the CDN serves.
    blobs: HashMap<String, Content>,
    /// Signature token → what it was minted for.
    signed: HashMap<String, SignedUrl>,
    /// Tokens that are valid but grant nothing by themselves (see `MockHub::add_token`).
    extra_tokens: BTreeSet<String>,
    faults: Vec<(Target, Fault)>,
    log: Vec<(u64, RequestLog)>,
    per_file: HashMap<(String, String), Arc<AtomicU64>>,
    knobs: Knobs,
    commits_made: u64,
    digest_cache: HashMap<FileKey, Digests>,
    admin_commit: Option<AdminCommitHook>,
}

impl State {
    /// The repo, created public if missing. Creating a repo retires a rename alias of that id.
    fn repo_mut(&mut self, id: &str) -> &mut Repo {
        if !self.repos.contains_key(id) {
            self.renames.remove(id);
        }
        self.repos.entry(id.to_owned()).or_insert_with(|| Repo {
            refs: BTreeMap::new(),
            commits: HashMap::new(),
            private: false,
            allowed_token: None,
            gated: false,
            approved_token: None,
            disabled: false,
            created_at: iso8601(SystemTime::now()),
        })
    }

    fn counter(&mut self, repo: &str, path: &str) -> Arc<AtomicU64> {
        Arc::clone(
            self.per_file
                .entry((repo.to_owned(), path.to_owned()))
                .or_default(),
        )
    }

    fn is_known_token(&self, token: &str) -> bool {
        self.extra_tokens.contains(token)
            || self.repos.values().any(|r| {
                r.allowed_token.as_deref() == Some(token)
                    || r.approved_token.as_deref() == Some(token)
            })
    }
}

struct Shared {
    port: u16,
    state: Mutex<State>,
    stop: AtomicBool,
    total_served: AtomicU64,
    padding_served: AtomicU64,
    next_seq: AtomicU64,
    conns: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    fn new(port: u16) -> Self {
        let knobs = Knobs {
            rate_limit: None,
            tree_page_size: DEFAULT_TREE_PAGE,
            listing_sizes: true,
            cdn_ttl: None,
            resolve_cache_redirect: false,
            listed_size: HashMap::new(),
            linked_size: HashMap::new(),
            omit_headers: BTreeSet::new(),
            cdn_base: None,
            tree_next: None,
        };
        let state = State {
            repos: HashMap::new(),
            renames: HashMap::new(),
            blobs: HashMap::new(),
            signed: HashMap::new(),
            extra_tokens: BTreeSet::new(),
            faults: Vec::new(),
            log: Vec::new(),
            per_file: HashMap::new(),
            knobs,
            commits_made: 0,
            digest_cache: HashMap::new(),
            admin_commit: None,
        };
        Self {
            port,
            state: Mutex::new(state),
            stop: AtomicBool::new(false),
            total_served: AtomicU64::new(0),
            padding_served: AtomicU64::new(0),
            next_seq: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
        }
    }

    /// Poisoning is ignored: a panicking test thread must not take the server down with it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn conns(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    fn reset_counters(&self) {
        self.total_served.store(0, Ordering::SeqCst);
        for counter in self.lock().per_file.values() {
            counter.store(0, Ordering::SeqCst);
        }
    }

    fn commit(&self, repo: &str, branch: &str, files: Vec<MockFile>) -> io::Result<String> {
        let by_path: BTreeMap<String, MockFile> = files
            .into_iter()
            .map(|file| (file.path.clone(), file))
            .collect();
        let mut stored = BTreeMap::new();
        // Hashing happens outside the lock: it can take seconds for big disk files.
        for (path, file) in by_path {
            let digests = self.digests(&file)?;
            stored.insert(
                path,
                StoredFile {
                    content: file.content,
                    digests,
                },
            );
        }
        let mut st = self.lock();
        st.commits_made += 1;
        let sha = commit_sha(st.commits_made, repo, branch, &stored);
        for file in stored.values() {
            if let Some(lfs) = &file.digests.lfs {
                st.blobs.insert(lfs.sha256.clone(), file.content.clone());
            }
        }
        let commit = Commit::new(sha.clone(), stored);
        let r = st.repo_mut(repo);
        r.commits.insert(sha.clone(), Arc::new(commit));
        r.refs.insert(branch.to_owned(), sha.clone());
        Ok(sha)
    }

    fn digests(&self, file: &MockFile) -> io::Result<Digests> {
        let key = match &file.content {
            Content::File(path) => {
                let meta = fs::metadata(path)?;
                Some((path.clone(), meta.len(), meta.modified().ok(), file.lfs))
            }
            Content::Bytes(_) => None,
        };
        if let Some(key) = &key
            && let Some(cached) = self.lock().digest_cache.get(key)
        {
            return Ok(cached.clone());
        }
        let digests = digest_content(&file.content, file.lfs)?;
        if let Some(key) = key {
            self.lock().digest_cache.insert(key, digests.clone());
        }
        Ok(digests)
    }

    fn log_request(&self, req: &Request) -> u64 {
        let seq = self.seq();
        let entry = RequestLog {
            method: req.method.clone(),
            host: req.header("host").unwrap_or_default().to_owned(),
            path: req.target.clone(),
            authorization: req.header("authorization").map(str::to_owned),
            range: req.header("range").map(str::to_owned),
            user_agent: req.header("user-agent").map(str::to_owned),
            status: 0,
            headers: req.headers.clone(),
        };
        self.lock().log.push((seq, entry));
        seq
    }

    fn set_status(&self, seq: u64, status: u16) {
        let mut st = self.lock();
        if let Some((_, entry)) = st.log.iter_mut().rev().find(|(s, _)| *s == seq) {
            entry.status = status;
        }
    }

    /// Removes and returns the first queued fault that `pick` accepts.
    fn take_fault<T>(&self, pick: impl Fn(&Target, &Fault) -> Option<T>) -> Option<T> {
        let mut st = self.lock();
        let (index, picked) = st
            .faults
            .iter()
            .enumerate()
            .find_map(|(i, (t, f))| pick(t, f).map(|p| (i, p)))?;
        st.faults.remove(index);
        Some(picked)
    }

    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let id = self.seq();
        self.conns().insert(id, clone);
        Some(id)
    }
}

impl Commit {
    fn new(sha: String, files: BTreeMap<String, StoredFile>) -> Self {
        let entries = tree_entries(&files);
        Self {
            sha,
            date: iso8601(SystemTime::now()),
            files,
            entries,
        }
    }

    /// Entries under directory `dir` ("" = root); `None` if `dir` is not a directory.
    fn list(&self, dir: &str, recursive: bool) -> Option<Vec<&TreeEntry>> {
        let is_dir = self
            .entries
            .iter()
            .any(|e| e.path == dir && e.dir_oid.is_some());
        if !dir.is_empty() && !is_dir {
            return None;
        }
        let under = |path: &str| {
            if recursive {
                dir.is_empty()
                    || path
                        .strip_prefix(dir)
                        .is_some_and(|rest| rest.starts_with('/'))
            } else {
                parent_of(path) == dir
            }
        };
        Some(self.entries.iter().filter(|e| under(&e.path)).collect())
    }
}

fn commit_sha(
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

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

fn name_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// One entry of a git tree object.
struct TreeChild<'a> {
    name: &'a str,
    is_dir: bool,
    id: Vec<u8>,
}

/// Files plus every directory that contains one, each directory with its real git tree id.
fn tree_entries(files: &BTreeMap<String, StoredFile>) -> Vec<TreeEntry> {
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

fn git_object_id(kind: &str, body: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("{kind} {}\0", body.len()));
    hasher.update(body);
    hex(&hasher.finalize())
}

fn lfs_pointer(sha256: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

fn digest_content(content: &Content, lfs: bool) -> io::Result<Digests> {
    let size = content.size()?;
    // The Hub stores an empty file that matches an LFS pattern as a plain git blob.
    if lfs && size > 0 {
        let sha256 = hex(&hash_content::<Sha256>(content, b"", size)?);
        let pointer = lfs_pointer(&sha256, size);
        let blob_id = git_object_id("blob", pointer.as_bytes());
        let lfs = LfsInfo {
            sha256,
            pointer_size: pointer.len() as u64,
        };
        Ok(Digests {
            size,
            blob_id,
            lfs: Some(lfs),
        })
    } else {
        let header = format!("blob {size}\0");
        let blob_id = hex(&hash_content::<Sha1>(content, header.as_bytes(), size)?);
        Ok(Digests {
            size,
            blob_id,
            lfs: None,
        })
    }
}

fn hash_content<D: Digest>(content: &Content, prefix: &[u8], size: u64) -> io::Result<Vec<u8>> {
    let mut hasher = D::new();
    hasher.update(prefix);
    match content {
        Content::Bytes(bytes) => hasher.update(bytes),
        Content::File(path) => {
            let mut file = File::open(path)?;
            let mut buf = vec![0; CHUNK];
            let mut seen = 0;
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                seen += n as u64;
            }
            if seen != size {
                let msg = format!("{} changed while being hashed", path.display());
                return Err(io::Error::other(msg));
            }
        }
    }
    Ok(hasher.finalize().to_vec())
}

// ---------------------------------------------------------------------------------------------
// Connections and HTTP/1.1 framing
// ---------------------------------------------------------------------------------------------

fn accept_loop(shared: &Arc<Shared>, listener: TcpListener) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // Out of file descriptors and the like: back off instead of spinning.
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        let shared = Arc::clone(shared);
        // If the thread cannot be spawned the stream is dropped, which closes the connection.
        let _ = thread::Builder::new()
            .name("mock-hub-conn".into())
            .spawn(move || serve_connection(&shared, stream));
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let id = shared.register(&stream);
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    // Checked after registering, so that a concurrent Drop either sees this connection or we see it.
    while !shared.stop.load(Ordering::SeqCst) {
        let keep_alive = match read_request(&mut reader) {
            Ok(req) => handle(shared, &mut out, &req),
            Err(ReadError::Closed) => false,
            Err(ReadError::Bad(msg)) => {
                let resp = hub_error(400, None, msg);
                let delivery = Delivery {
                    head_only: false,
                    close: true,
                    cut: None,
                    seq: None,
                };
                let _ = deliver(shared, &mut out, resp, &delivery);
                false
            }
        };
        if !keep_alive {
            break;
        }
    }
    let _ = out.shutdown(Shutdown::Write);
    // Closing with unread input makes the kernel send RST, which can destroy the answer we just
    // sent (e.g. a 400 for an oversized head) before the client reads it. Drain briefly first.
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)));
    let _ = io::copy(&mut reader.by_ref().take(MAX_REQUEST_BODY), &mut io::sink());
    if let Some(id) = id {
        shared.conns().remove(&id);
    }
}

struct Request {
    method: String,
    /// Path and query as sent.
    target: String,
    path: String,
    query: String,
    http10: bool,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    fn keep_alive(&self) -> bool {
        let connection = self
            .header("connection")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let has = |token: &str| connection.split(',').any(|t| t.trim() == token);
        if self.http10 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

enum ReadError {
    /// EOF, timeout or reset: just close.
    Closed,
    /// Malformed: answer 400 and close.
    Bad(&'static str),
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Request, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    let mut line = read_line(reader, &mut budget)?;
    // RFC 9112 §2.2: ignore empty lines before the request line.
    while line.is_empty() {
        line = read_line(reader, &mut budget)?;
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad("malformed request line"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Bad("unsupported HTTP version")),
    };
    if !target.starts_with('/') || method.is_empty() {
        return Err(ReadError::Bad("malformed request target"));
    }
    let headers = read_headers(reader, &mut budget)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let req = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        http10,
        headers,
    };
    if !http10 && req.header("host").is_none() {
        return Err(ReadError::Bad("missing Host header"));
    }
    skip_body(reader, &req)?;
    Ok(req)
}

fn read_headers(
    reader: &mut BufReader<TcpStream>,
    budget: &mut u64,
) -> Result<Vec<(String, String)>, ReadError> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, budget)?;
        if line.is_empty() {
            return Ok(headers);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad("malformed header line"));
        };
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(ReadError::Bad("malformed header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
        if headers.len() > MAX_HEADERS {
            return Err(ReadError::Bad("too many headers"));
        }
    }
}

fn read_line(reader: &mut BufReader<TcpStream>, budget: &mut u64) -> Result<String, ReadError> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget)
        .read_until(b'\n', &mut buf)
        .map_err(|_| ReadError::Closed)?;
    *budget -= n as u64;
    if buf.last() != Some(&b'\n') {
        return Err(if *budget == 0 {
            ReadError::Bad("request head too large")
        } else {
            ReadError::Closed
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| ReadError::Bad("request head is not UTF-8"))
}

/// Request bodies (only admin POSTs have any) are read and ignored, keeping the connection in sync.
fn skip_body(reader: &mut BufReader<TcpStream>, req: &Request) -> Result<(), ReadError> {
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad("chunked request bodies are not supported"));
    }
    let Some(length) = req.header("content-length") else {
        return Ok(());
    };
    let length: u64 = length
        .parse()
        .map_err(|_| ReadError::Bad("malformed Content-Length"))?;
    if length > MAX_REQUEST_BODY {
        return Err(ReadError::Bad("request body too large"));
    }
    let copied = io::copy(&mut reader.by_ref().take(length), &mut io::sink())
        .map_err(|_| ReadError::Closed)?;
    if copied == length {
        Ok(())
    } else {
        Err(ReadError::Closed)
    }
}

/// What to send back.
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Bytes(Vec<u8>),
    Content(ContentSlice),
    /// `pad` bytes of JSON whitespace, then `body`; streamed (`Fault::PaddedJson`).
    Padded {
        pad: u64,
        body: Vec<u8>,
    },
}

/// A byte range of file content, counted into `counter` (and the total) as it is sent.
struct ContentSlice {
    content: Content,
    start: u64,
    len: u64,
    total: u64,
    counter: Arc<AtomicU64>,
    /// Junk bytes sent after the slice (`Fault::LongBody`), not counted as file bytes.
    junk: u64,
}

impl Response {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let headers = vec![("Content-Type", content_type.to_owned())];
        Self {
            status,
            headers,
            body: Body::Bytes(body.into()),
        }
    }

    fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    fn body_len(&self) -> u64 {
        match &self.body {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Content(slice) => slice.len + slice.junk,
            Body::Padded { pad, body } => pad + body.len() as u64,
        }
    }
}

/// How a response goes out.
struct Delivery {
    head_only: bool,
    /// Announce `Connection: close` and close after the response.
    close: bool,
    cut: Option<Cut>,
    /// Request-log entry to stamp with the status.
    seq: Option<u64>,
}

/// A body fault that ends the connection mid-body.
#[derive(Clone, Copy)]
enum Cut {
    Drop(u64),
    Stall(u64, Duration),
}

fn deliver(shared: &Shared, out: &mut TcpStream, resp: Response, d: &Delivery) -> io::Result<()> {
    if let Some(seq) = d.seq {
        shared.set_status(seq, resp.status);
    }
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (name, value) in &resp.headers {
        let _ = write!(head, "{name}: {}\r\n", header_safe(value));
    }
    if resp.status != 304 {
        let _ = write!(head, "Content-Length: {}\r\n", resp.body_len());
    }
    if d.close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    match resp.body {
        Body::Bytes(body) => {
            let mut buf = head.into_bytes();
            if !d.head_only {
                buf.extend_from_slice(&body);
            }
            out.write_all(&buf)?;
        }
        Body::Content(slice) => {
            out.write_all(head.as_bytes())?;
            if !d.head_only {
                let send = d.cut.map_or(slice.len, |cut| cut.after().min(slice.len));
                let rate = shared.lock().knobs.rate_limit;
                stream_content(out, &slice, send, rate, &shared.total_served)?;
                if d.cut.is_none() {
                    stream_filler(out, slice.junk, 0xAA, None)?;
                }
            }
        }
        Body::Padded { pad, body } => {
            out.write_all(head.as_bytes())?;
            if !d.head_only {
                stream_filler(out, pad, b' ', Some(&shared.padding_served))?;
                out.write_all(&body)?;
            }
        }
    }
    match d.cut {
        Some(Cut::Drop(_)) => out.shutdown(Shutdown::Both),
        Some(Cut::Stall(_, stall)) => {
            thread::sleep(stall);
            out.shutdown(Shutdown::Both)
        }
        None => Ok(()),
    }
}

impl Cut {
    fn after(self) -> u64 {
        match self {
            Cut::Drop(bytes) | Cut::Stall(bytes, _) => bytes,
        }
    }
}

/// Keeps the body rate at or below `bps` by sleeping between writes.
struct Pacer {
    bps: Option<u64>,
    started: Instant,
    sent: u64,
}

impl Pacer {
    fn sent(&mut self, n: usize) {
        self.sent += n as u64;
        let Some(bps) = self.bps else { return };
        let due = Duration::from_secs_f64(self.sent as f64 / bps as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            thread::sleep(due - elapsed);
        }
    }
}

fn stream_content(
    out: &mut TcpStream,
    slice: &ContentSlice,
    send: u64,
    rate: Option<u64>,
    total: &AtomicU64,
) -> io::Result<()> {
    // Small writes under a rate limit keep the pace smooth instead of bursty.
    let chunk = rate.map_or(CHUNK, |bps| (bps / 20).clamp(1, CHUNK as u64) as usize);
    let mut pacer = Pacer {
        bps: rate,
        started: Instant::now(),
        sent: 0,
    };
    let counters = [total, &*slice.counter];
    match &slice.content {
        Content::Bytes(bytes) => {
            let range = to_usize(slice.start)?..to_usize(slice.start + send)?;
            let data = bytes
                .get(range)
                .ok_or_else(|| io::Error::other("content shrank"))?;
            for piece in data.chunks(chunk) {
                write_counted(out, piece, &counters)?;
                pacer.sent(piece.len());
            }
        }
        Content::File(path) => {
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(slice.start))?;
            let mut buf = vec![0; chunk.min(to_usize(send)?)];
            let mut left = send;
            while left > 0 {
                let n = buf.len().min(to_usize(left)?);
                // A file that shrank since it was committed breaks the promised length: the
                // error closes the connection, which is what a real server would do too.
                file.read_exact(&mut buf[..n])?;
                write_counted(out, &buf[..n], &counters)?;
                pacer.sent(n);
                left -= n as u64;
            }
        }
    }
    Ok(())
}

/// Writes `n` copies of `byte`, counting every byte the socket accepted into `counter`.
fn stream_filler(
    out: &mut TcpStream,
    n: u64,
    byte: u8,
    counter: Option<&AtomicU64>,
) -> io::Result<()> {
    let chunk = vec![byte; CHUNK];
    let mut left = n;
    while left > 0 {
        let piece = &chunk[..to_usize(left.min(CHUNK as u64))?];
        match out.write(piece) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                if let Some(counter) = counter {
                    counter.fetch_add(written as u64, Ordering::SeqCst);
                }
                left -= written as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(io::Error::other)
}

/// Counts the bytes before writing them: the client may read them, and a test read the counter,
/// before `write` returns here. Bytes that could not be written are taken back out.
fn write_counted(out: &mut TcpStream, data: &[u8], counters: &[&AtomicU64]) -> io::Result<()> {
    let add = |n: usize| {
        counters.iter().for_each(|c| {
            c.fetch_add(n as u64, Ordering::SeqCst);
        })
    };
    let sub = |n: usize| {
        counters.iter().for_each(|c| {
            c.fetch_sub(n as u64, Ordering::SeqCst);
        })
    };
    add(data.len());
    let mut written = 0;
    while written < data.len() {
        match out.write(&data[written..]) {
            Ok(0) => {
                sub(data.len() - written);
                return Err(io::ErrorKind::WriteZero.into());
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                sub(data.len() - written);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Header values never carry raw control or non-ASCII characters (client-controlled text such as
/// a revision ends up in `X-Error-Message`); those are percent-encoded.
fn header_safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            let mut utf8 = [0; 4];
            for b in c.encode_utf8(&mut utf8).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

// ---------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum HostKind {
    Hub,
    Cdn,
}

fn host_kind(port: u16, req: &Request) -> HostKind {
    let host = req.header("host").unwrap_or_default();
    if host.eq_ignore_ascii_case(&format!("localhost:{port}")) {
        HostKind::Cdn
    } else {
        HostKind::Hub
    }
}

enum Outcome {
    Reply(Response, Option<Cut>),
    /// `Fault::NoResponse`: say nothing for this long, then close.
    Silent(Duration),
}

/// Answers one request; returns whether the connection stays open.
fn handle(shared: &Shared, out: &mut TcpStream, req: &Request) -> bool {
    let keep_alive = req.keep_alive();
    let head_only = req.method == "HEAD";
    if req.path == "/admin" || req.path.starts_with("/admin/") {
        let resp = admin(shared, req);
        let delivery = Delivery {
            head_only,
            close: !keep_alive,
            cut: None,
            seq: None,
        };
        return deliver(shared, out, resp, &delivery).is_ok() && keep_alive;
    }
    let seq = shared.log_request(req);
    let host = host_kind(shared.port, req);
    match respond(shared, req, host) {
        Outcome::Silent(wait) => {
            thread::sleep(wait);
            let _ = out.shutdown(Shutdown::Both);
            false
        }
        Outcome::Reply(mut resp, cut) => {
            if host == HostKind::Hub {
                resp.headers.push(("X-Request-Id", request_id(seq, req)));
                let st = shared.lock();
                let omit = &st.knobs.omit_headers;
                if !omit.is_empty() {
                    resp.headers
                        .retain(|(name, _)| !omit.contains(&name.to_ascii_lowercase()));
                }
            }
            let close = !keep_alive && cut.is_none();
            let delivery = Delivery {
                head_only,
                close,
                cut,
                seq: Some(seq),
            };
            deliver(shared, out, resp, &delivery).is_ok() && keep_alive && cut.is_none()
        }
    }
}

fn request_id(seq: u64, req: &Request) -> String {
    let secs = unix_secs(SystemTime::now());
    let id = format!("Root=1-{:08x}-{seq:024x}", secs as u32);
    match req.header("x-amzn-trace-id") {
        Some(trace) => format!("{id};{trace}"),
        None => id,
    }
}

struct RepoRef {
    id: String,
    /// Raw path before and after the repo id, to rebuild the URL for a renamed repo.
    prefix: &'static str,
    tail: String,
}

enum Endpoint {
    Info {
        repo: RepoRef,
        rev: Option<String>,
    },
    Tree {
        repo: RepoRef,
        rev: String,
        path: String,
    },
    Resolve {
        repo: RepoRef,
        rev: String,
        path: String,
    },
    ResolveCache {
        repo: RepoRef,
        sha: String,
        path: String,
    },
    Cdn {
        sha256: String,
    },
}

struct Route {
    host: HostKind,
    endpoint: Endpoint,
    query: Vec<(String, String)>,
    /// Repo path a CDN request's signature was minted for, to match `Target::Cdn`.
    cdn_path: Option<String>,
}

impl Route {
    fn matches(&self, target: &Target, is_get: bool) -> bool {
        match (target, &self.endpoint) {
            (Target::Api, Endpoint::Info { .. }) | (Target::Tree, Endpoint::Tree { .. }) => true,
            (
                Target::Resolve(p),
                Endpoint::Resolve { path, .. } | Endpoint::ResolveCache { path, .. },
            ) => p == path,
            (Target::Cdn(p), Endpoint::Cdn { .. }) => self.cdn_path.as_deref() == Some(p.as_str()),
            (
                Target::AnyFile,
                Endpoint::Resolve { .. } | Endpoint::ResolveCache { .. } | Endpoint::Cdn { .. },
            ) => is_get,
            _ => false,
        }
    }

    fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        self.query(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }
}

fn respond(shared: &Shared, req: &Request, host: HostKind) -> Outcome {
    let route = match route(shared, req, host) {
        Ok(route) => route,
        Err(resp) => return Outcome::Reply(resp, None),
    };
    let is_get = req.method == "GET";
    // The real answer is computed first (minting a signed URL is its only side effect) so that
    // the queue can be searched in order: the first queued fault that applies wins, whether it
    // replaces the answer (`Status`, `NoResponse`, ...) or alters its body (`DropAfter`, ...).
    let resp = {
        let mut st = shared.lock();
        let answer = match &route.endpoint {
            Endpoint::Info { repo, rev } => info(&st, req, &route, repo, rev.as_deref()),
            Endpoint::Tree { repo, rev, path } => {
                tree(&st, shared.port, req, &route, repo, rev, path)
            }
            Endpoint::Resolve { repo, rev, path } => {
                resolve(&mut st, shared.port, req, repo, rev, path)
            }
            Endpoint::ResolveCache { repo, sha, path } => {
                resolve_cache(&mut st, shared.port, req, repo, sha, path)
            }
            Endpoint::Cdn { sha256 } => Ok(cdn(&mut st, req, &route, sha256)),
        };
        match answer {
            Ok(resp) | Err(resp) => resp,
        }
    };
    let picked = shared.take_fault(|t, f| {
        if !route.matches(t, is_get) {
            return None;
        }
        if let Some(early) = early_fault(f) {
            return Some(Picked::Early(early));
        }
        if !is_get {
            return None;
        }
        body_fault(f, &resp).map(Picked::Body)
    });
    match picked {
        None => Outcome::Reply(resp, None),
        Some(Picked::Early(Early::Silent(wait))) => Outcome::Silent(wait),
        Some(Picked::Early(Early::Status(code, retry_after))) => {
            Outcome::Reply(status_fault(&route, code, retry_after.as_deref()), None)
        }
        Some(Picked::Early(Early::Redirect(status, location))) => {
            Outcome::Reply(redirect(status, &location), None)
        }
        Some(Picked::Early(Early::Json(body))) => {
            let resp = Response::new(200, "application/json; charset=utf-8", body);
            Outcome::Reply(resp, None)
        }
        Some(Picked::Body(fault)) => apply_body_fault(resp, fault),
    }
}

enum Picked {
    Early(Early),
    Body(BodyFault),
}

/// Faults that replace the answer; they apply to any matching request.
enum Early {
    Status(u16, Option<String>),
    Silent(Duration),
    Redirect(u16, String),
    Json(String),
}

fn early_fault(fault: &Fault) -> Option<Early> {
    match fault {
        Fault::Status { code, retry_after } => Some(Early::Status(*code, retry_after.clone())),
        Fault::NoResponse(wait) => Some(Early::Silent(*wait)),
        Fault::Redirect { status, location } => Some(Early::Redirect(*status, location.clone())),
        Fault::Json(body) => Some(Early::Json(body.clone())),
        _ => None,
    }
}

/// Faults that alter a body; each applies only to some answers of a `GET`.
enum BodyFault {
    Cut(Cut),
    IgnoreRange,
    WrongContentRange,
    Short(u64),
    Long(u64),
    Pad(u64),
}

/// Whether `fault` applies to this answer, and how.
fn body_fault(fault: &Fault, resp: &Response) -> Option<BodyFault> {
    match &resp.body {
        Body::Content(slice) => {
            let partial = resp.status == 206;
            match fault {
                Fault::DropAfter(bytes) => Some(BodyFault::Cut(Cut::Drop(*bytes))),
                Fault::StallAfter { bytes, stall } => {
                    Some(BodyFault::Cut(Cut::Stall(*bytes, *stall)))
                }
                Fault::IgnoreRange if partial => Some(BodyFault::IgnoreRange),
                // A one-byte file has no other start to announce.
                Fault::WrongContentRange if partial && slice.total >= 2 => {
                    Some(BodyFault::WrongContentRange)
                }
                Fault::ShortBody(bytes) => Some(BodyFault::Short(*bytes)),
                Fault::LongBody(bytes) => Some(BodyFault::Long(*bytes)),
                _ => None,
            }
        }
        Body::Bytes(_) => {
            let is_json = resp.status == 200
                && resp
                    .headers
                    .iter()
                    .any(|(n, v)| *n == "Content-Type" && v.starts_with("application/json"));
            match fault {
                Fault::PaddedJson(pad) if is_json => Some(BodyFault::Pad(*pad)),
                _ => None,
            }
        }
        Body::Padded { .. } => None,
    }
}

fn apply_body_fault(mut resp: Response, fault: BodyFault) -> Outcome {
    match fault {
        BodyFault::Cut(cut) => return Outcome::Reply(resp, Some(cut)),
        BodyFault::IgnoreRange => return Outcome::Reply(whole_body(resp), None),
        BodyFault::WrongContentRange => return Outcome::Reply(shifted_range(resp), None),
        BodyFault::Short(bytes) => {
            if let Body::Content(slice) = &mut resp.body {
                slice.len = slice.len.min(bytes);
            }
        }
        BodyFault::Long(bytes) => {
            if let Body::Content(slice) = &mut resp.body {
                slice.junk = bytes;
            }
        }
        BodyFault::Pad(pad) => {
            let body = std::mem::replace(&mut resp.body, Body::Bytes(Vec::new()));
            if let Body::Bytes(body) = body {
                resp.body = Body::Padded { pad, body };
            }
        }
    }
    Outcome::Reply(resp, None)
}

fn whole_body(mut resp: Response) -> Response {
    if let Body::Content(slice) = &mut resp.body {
        slice.start = 0;
        slice.len = slice.total;
    }
    resp.status = 200;
    resp.headers.retain(|(name, _)| *name != "Content-Range");
    resp
}

fn shifted_range(mut resp: Response) -> Response {
    if let Body::Content(slice) = &mut resp.body {
        let end = slice.start + slice.len - 1;
        let start = if slice.start + 1 < slice.total {
            slice.start + 1
        } else {
            slice.start - 1
        };
        let end = end.max(start);
        slice.start = start;
        slice.len = end - start + 1;
        let content_range = format!("bytes {start}-{end}/{}", slice.total);
        resp.headers.retain(|(name, _)| *name != "Content-Range");
        resp.headers.push(("Content-Range", content_range));
    }
    resp
}

fn status_fault(route: &Route, code: u16, retry_after: Option<&str>) -> Response {
    let mut resp = match route.host {
        HostKind::Hub => hub_error(code, None, reason(code)),
        HostKind::Cdn => cdn_error(code, "ServiceError", reason(code)),
    };
    if let Some(retry_after) = retry_after {
        resp = resp.header("Retry-After", retry_after);
        let seconds = retry_after.trim().parse::<u64>();
        if let (429, HostKind::Hub, Ok(seconds)) = (code, route.host, seconds) {
            let bucket = match route.endpoint {
                Endpoint::Info { .. } | Endpoint::Tree { .. } => "api",
                _ => "resolvers",
            };
            resp = resp
                .header("RateLimit", format!("\"{bucket}\";r=0;t={seconds}"))
                .header(
                    "RateLimit-Policy",
                    format!("\"fixed window\";\"{bucket}\";q=3000;w=300"),
                );
        }
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

fn route(shared: &Shared, req: &Request, host: HostKind) -> Result<Route, Response> {
    let bad = |msg| match host {
        HostKind::Hub => hub_error(400, None, msg),
        HostKind::Cdn => cdn_error(400, "InvalidRequest", msg),
    };
    let query = parse_query(&req.query).ok_or_else(|| bad("malformed query string"))?;
    if req.method != "GET" && req.method != "HEAD" {
        let resp = match host {
            HostKind::Hub => hub_error(405, None, "Method not allowed"),
            HostKind::Cdn => cdn_error(405, "MethodNotAllowed", "Method not allowed"),
        };
        return Err(resp.header("Allow", "GET, HEAD"));
    }
    let segs: Vec<&str> = req.path[1..].split('/').collect();
    let st = shared.lock();
    let endpoint = match host {
        HostKind::Cdn => cdn_route(&segs),
        HostKind::Hub => hub_route(&st, &segs),
    };
    let endpoint = endpoint.map_err(|e| match e {
        RouteError::BadEncoding => bad("malformed percent-encoding"),
        RouteError::NotFound if host == HostKind::Cdn => cdn_error(404, "NoSuchKey", "Not Found"),
        RouteError::NotFound => hub_error(404, None, "Not Found"),
    })?;
    let cdn_path = match endpoint {
        Endpoint::Cdn { .. } => signature(&query)
            .and_then(|sig| st.signed.get(sig))
            .map(|s| s.path.clone()),
        _ => None,
    };
    Ok(Route {
        host,
        endpoint,
        query,
        cdn_path,
    })
}

enum RouteError {
    NotFound,
    BadEncoding,
}

fn cdn_route(segs: &[&str]) -> Result<Endpoint, RouteError> {
    match segs {
        ["cdn", sha256] if !sha256.is_empty() => Ok(Endpoint::Cdn {
            sha256: (*sha256).to_owned(),
        }),
        _ => Err(RouteError::NotFound),
    }
}

fn hub_route(st: &State, segs: &[&str]) -> Result<Endpoint, RouteError> {
    let known = |id: &str| st.repos.contains_key(id) || st.renames.contains_key(id);
    match segs {
        ["api", "models", rest @ ..] => api_route(rest, known),
        ["api", "resolve-cache", "models", rest @ ..] => resolve_cache_route(rest, known),
        ["api", ..] | ["cdn", ..] | ["admin", ..] => Err(RouteError::NotFound),
        _ => resolve_route(segs, known),
    }
}

/// Repo ids are `org/name` or a bare legacy `name`; like the Hub, the URL alone is ambiguous, so
/// each reading is tried and one naming an existing repo wins.
fn pick_repo<T>(
    candidates: Vec<(RepoRef, T)>,
    known: impl Fn(&str) -> bool,
) -> Result<(RepoRef, T), RouteError> {
    let index = candidates
        .iter()
        .position(|(repo, _)| known(&repo.id))
        .unwrap_or(0);
    candidates
        .into_iter()
        .nth(index)
        .ok_or(RouteError::NotFound)
}

fn repo_ref(segs: &[&str], prefix: &'static str, tail: &[&str]) -> Result<RepoRef, RouteError> {
    let id = segs
        .iter()
        .map(|s| decode(s))
        .collect::<Result<Vec<_>, _>>()?
        .join("/");
    if segs.iter().any(|s| s.is_empty()) {
        return Err(RouteError::NotFound);
    }
    let tail = if tail.is_empty() {
        String::new()
    } else {
        format!("/{}", tail.join("/"))
    };
    Ok(RepoRef { id, prefix, tail })
}

enum ApiTail {
    Info(Option<String>),
    Tree(String, String),
}

fn api_route(rest: &[&str], known: impl Fn(&str) -> bool) -> Result<Endpoint, RouteError> {
    let mut candidates = Vec::new();
    for n in [2, 1] {
        if rest.len() < n {
            continue;
        }
        let (repo, tail) = rest.split_at(n);
        let parsed = match tail {
            [] => Some(ApiTail::Info(None)),
            ["revision", rev @ ..] => match take_rev(rev)? {
                Some((rev, [])) => Some(ApiTail::Info(Some(rev))),
                _ => None,
            },
            ["tree", rev @ ..] => match take_rev(rev)? {
                Some((rev, path)) => Some(ApiTail::Tree(rev, decode_path(path)?)),
                None => None,
            },
            _ => None,
        };
        if let Some(parsed) = parsed {
            candidates.push((repo_ref(repo, "/api/models/", tail)?, parsed));
        }
    }
    Ok(match pick_repo(candidates, known)? {
        (repo, ApiTail::Info(rev)) => Endpoint::Info { repo, rev },
        (repo, ApiTail::Tree(rev, path)) => Endpoint::Tree { repo, rev, path },
    })
}

fn resolve_route(segs: &[&str], known: impl Fn(&str) -> bool) -> Result<Endpoint, RouteError> {
    let mut candidates = Vec::new();
    for n in [2, 1] {
        if segs.len() <= n || segs[n] != "resolve" {
            continue;
        }
        let (repo, tail) = segs.split_at(n);
        if let Some((rev, path)) = take_rev(&tail[1..])? {
            candidates.push((repo_ref(repo, "/", tail)?, (rev, decode_path(path)?)));
        }
    }
    let (repo, (rev, path)) = pick_repo(candidates, known)?;
    Ok(Endpoint::Resolve { repo, rev, path })
}

fn resolve_cache_route(
    rest: &[&str],
    known: impl Fn(&str) -> bool,
) -> Result<Endpoint, RouteError> {
    let mut candidates = Vec::new();
    for n in [2, 1] {
        if rest.len() <= n + 1 {
            continue;
        }
        let (repo, tail) = rest.split_at(n);
        let sha = decode(tail[0])?;
        candidates.push((
            repo_ref(repo, "/api/resolve-cache/models/", tail)?,
            (sha, decode_path(&tail[1..])?),
        ));
    }
    let (repo, (sha, path)) = pick_repo(candidates, known)?;
    Ok(Endpoint::ResolveCache { repo, sha, path })
}

/// The revision is one percent-encoded segment (`refs%2Fpr%2F1`), but `refs/pr/N` and
/// `refs/convert/x` are also accepted verbatim, as on the Hub.
fn take_rev<'a, 'b>(segs: &'a [&'b str]) -> Result<Option<(String, &'a [&'b str])>, RouteError> {
    match segs {
        ["refs", kind, name, rest @ ..] => Ok(Some((
            format!("refs/{}/{}", decode(kind)?, decode(name)?),
            rest,
        ))),
        [rev, rest @ ..] => Ok(Some((decode(rev)?, rest))),
        [] => Ok(None),
    }
}

/// A file path: percent-encoded with `/` kept (or `%2F`), decoded as a whole.
fn decode_path(segs: &[&str]) -> Result<String, RouteError> {
    decode(&segs.join("/"))
}

fn decode(s: &str) -> Result<String, RouteError> {
    percent_decode(s, false).ok_or(RouteError::BadEncoding)
}

fn signature(query: &[(String, String)]) -> Option<&str> {
    query
        .iter()
        .find(|(k, _)| k == "X-Amz-Signature")
        .map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// Hub endpoints
// ---------------------------------------------------------------------------------------------

fn hub_error(status: u16, code: Option<&str>, message: &str) -> Response {
    let body = format!("{{\"error\":{}}}", json_str(message));
    let mut resp = Response::new(status, "application/json; charset=utf-8", body);
    if let Some(code) = code {
        resp = resp.header("X-Error-Code", code);
    }
    resp.header("X-Error-Message", message)
}

fn repo_not_found(has_token: bool) -> Response {
    if has_token {
        hub_error(404, Some("RepoNotFound"), "Repository not found")
    } else {
        hub_error(401, Some("RepoNotFound"), "Invalid username or password.")
    }
}

fn entry_not_found(commit: &str) -> Response {
    hub_error(404, Some("EntryNotFound"), "Entry not found").header("X-Repo-Commit", commit)
}

fn redirect(status: u16, location: &str) -> Response {
    let text = if status == 302 {
        "Found"
    } else {
        "Temporary Redirect"
    };
    let body = format!("{text}. Redirecting to {location}");
    Response::new(status, "text/plain; charset=utf-8", body).header("Location", location)
}

/// The bearer token, if any. A token the mock does not know is rejected on every route.
fn bearer(st: &State, req: &Request) -> Result<Option<String>, Response> {
    let Some(value) = req.header("authorization") else {
        return Ok(None);
    };
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| st.is_known_token(token));
    match token {
        Some(token) => Ok(Some(token.to_owned())),
        None => Err(hub_error(
            401,
            None,
            "Invalid credentials in Authorization header",
        )),
    }
}

/// Token check, rename redirect, existence/visibility, disabled: in that order.
fn open_repo<'s>(
    st: &'s State,
    req: &Request,
    repo: &RepoRef,
) -> Result<(&'s Repo, Option<String>), Response> {
    let token = bearer(st, req)?;
    if !st.repos.contains_key(&repo.id)
        && let Some(new_id) = st.renames.get(&repo.id)
    {
        let query = if req.query.is_empty() {
            String::new()
        } else {
            format!("?{}", req.query)
        };
        return Err(redirect(
            307,
            &format!("{}{new_id}{}{query}", repo.prefix, repo.tail),
        ));
    }
    let Some(r) = st.repos.get(&repo.id) else {
        return Err(repo_not_found(token.is_some()));
    };
    if r.private && (token.is_none() || token != r.allowed_token) {
        return Err(repo_not_found(token.is_some()));
    }
    if r.disabled {
        return Err(hub_error(403, None, "Access to this resource is disabled."));
    }
    Ok((r, token))
}

/// Gating only protects file content; metadata of gated repos is public.
fn check_gate(r: &Repo, id: &str, token: Option<&str>) -> Result<(), Response> {
    if !r.gated || (token.is_some() && token == r.approved_token.as_deref()) {
        return Ok(());
    }
    Err(match token {
        None => hub_error(
            401,
            Some("GatedRepo"),
            &format!(
                "Access to model {id} is restricted. You must have access to it and be authenticated to access it. Please log in."
            ),
        ),
        Some(_) => hub_error(
            403,
            Some("GatedRepo"),
            &format!(
                "Access to model {id} is restricted and you are not in the authorized list. Visit https://huggingface.co/{id} to ask for access."
            ),
        ),
    })
}

fn resolve_rev(r: &Repo, rev: &str) -> Result<Arc<Commit>, Response> {
    let sha = r.refs.get(rev).map_or(rev, String::as_str);
    r.commits.get(sha).cloned().ok_or_else(|| {
        hub_error(
            404,
            Some("RevisionNotFound"),
            &format!("Invalid rev id: {rev}"),
        )
    })
}

fn json_response(body: String) -> Response {
    // A weak validator, like the Hub's; nobody should rely on it.
    let etag = format!(
        "W/\"{:x}-{}\"",
        body.len(),
        &git_object_id("blob", body.as_bytes())[..16]
    );
    Response::new(200, "application/json; charset=utf-8", body)
        .header("ETag", etag)
        .header("Vary", "Origin")
}

fn info(
    st: &State,
    req: &Request,
    route: &Route,
    repo: &RepoRef,
    rev: Option<&str>,
) -> Result<Response, Response> {
    let (r, _) = open_repo(st, req, repo)?;
    let commit = resolve_rev(r, rev.unwrap_or("main"))?;
    let blobs = route.flag("blobs");
    let sizes = st.knobs.listing_sizes.then_some(&st.knobs.listed_size);
    Ok(json_response(info_json(&repo.id, r, &commit, blobs, sizes)))
}

/// The size the listing reports for a file: the truth unless a [`SizeLie`] is set.
fn listed_size(
    lies: &HashMap<(String, String), SizeLie>,
    repo: &str,
    path: &str,
    size: u64,
) -> String {
    match lies.get(&(repo.to_owned(), path.to_owned())) {
        Some(lie) => lie.render(size),
        None => size.to_string(),
    }
}

/// `sizes`: `None` leaves sizes out (`set_listing_sizes(false)`), else the size lies to apply.
fn info_json(
    id: &str,
    r: &Repo,
    commit: &Commit,
    blobs: bool,
    sizes: Option<&HashMap<(String, String), SizeLie>>,
) -> String {
    let siblings: Vec<String> = commit
        .files
        .iter()
        .map(|(path, file)| {
            let size = sizes.map(|lies| listed_size(lies, id, path, file.digests.size));
            sibling_json(path, &file.digests, blobs, size.as_deref())
        })
        .collect();
    let used: u64 = commit.files.values().map(|f| f.digests.size).sum();
    let gated = if r.gated { "\"manual\"" } else { "false" };
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"_id\":\"{}\",\"id\":{},\"private\":{}",
        &git_object_id("repo", id.as_bytes())[..24],
        json_str(id),
        r.private
    );
    let _ = write!(
        out,
        ",\"tags\":[],\"downloads\":0,\"likes\":0,\"modelId\":{}",
        json_str(id)
    );
    if let Some((author, _)) = id.split_once('/') {
        let _ = write!(out, ",\"author\":{}", json_str(author));
    }
    let _ = write!(
        out,
        ",\"sha\":\"{}\",\"lastModified\":\"{}\",\"gated\":{gated},\"disabled\":{}",
        commit.sha, commit.date, r.disabled
    );
    let _ = write!(
        out,
        ",\"siblings\":[{}],\"createdAt\":\"{}\",\"usedStorage\":{used}}}",
        siblings.join(","),
        r.created_at
    );
    out
}

/// `size`: the JSON token to report as the size, `None` to leave sizes out.
fn sibling_json(path: &str, d: &Digests, blobs: bool, size: Option<&str>) -> String {
    let mut out = format!("{{\"rfilename\":{}", json_str(path));
    if blobs {
        let _ = write!(out, ",\"blobId\":\"{}\"", d.blob_id);
        if let Some(size) = size {
            let _ = write!(out, ",\"size\":{size}");
            if let Some(lfs) = &d.lfs {
                let _ = write!(
                    out,
                    ",\"lfs\":{{\"sha256\":\"{}\",\"size\":{size},\"pointerSize\":{}}}",
                    lfs.sha256, lfs.pointer_size
                );
            }
        }
    }
    out.push('}');
    out
}

fn tree(
    st: &State,
    port: u16,
    req: &Request,
    route: &Route,
    repo: &RepoRef,
    rev: &str,
    path: &str,
) -> Result<Response, Response> {
    let (r, _) = open_repo(st, req, repo)?;
    let commit = resolve_rev(r, rev)?;
    let dir = path.strip_suffix('/').unwrap_or(path);
    let entries = commit
        .list(dir, route.flag("recursive"))
        .ok_or_else(|| entry_not_found(&commit.sha))?;
    let expand = route.flag("expand");
    let page = if expand {
        st.knobs.tree_page_size.min(EXPAND_TREE_PAGE)
    } else {
        st.knobs.tree_page_size
    };
    let start = match route.query("cursor") {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|&c| c <= entries.len())
            .ok_or_else(|| hub_error(400, None, "Invalid cursor"))?,
    };
    let end = start.saturating_add(page).min(entries.len());
    let items: Vec<String> = entries[start..end]
        .iter()
        .map(|e| entry_json(e, &commit, expand, &st.knobs.listed_size, &repo.id))
        .collect();
    let mut resp = json_response(format!("[{}]", items.join(",")));
    if let Some(next) = &st.knobs.tree_next {
        resp = resp.header("Link", format!("<{next}>; rel=\"next\""));
    } else if end < entries.len() {
        resp = resp.header(
            "Link",
            format!("<{}>; rel=\"next\"", next_page_url(port, req, end)),
        );
    }
    Ok(resp)
}

/// The `Link` target: absolute, on this mock's own Hub host, with every original parameter.
fn next_page_url(port: u16, req: &Request, cursor: usize) -> String {
    let mut params: Vec<&str> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("cursor"))
        .collect();
    let cursor = format!("cursor={cursor}");
    params.push(&cursor);
    format!("http://127.0.0.1:{port}{}?{}", req.path, params.join("&"))
}

/// Key order matters to some clients: `type, oid, size, lfs, path` as on the Hub.
fn entry_json(
    entry: &TreeEntry,
    commit: &Commit,
    expand: bool,
    lies: &HashMap<(String, String), SizeLie>,
    repo: &str,
) -> String {
    let mut out = match (&entry.dir_oid, commit.files.get(&entry.path)) {
        (None, Some(file)) => {
            let d = &file.digests;
            let size = listed_size(lies, repo, &entry.path, d.size);
            let mut s = format!(
                "{{\"type\":\"file\",\"oid\":\"{}\",\"size\":{size}",
                d.blob_id
            );
            if let Some(lfs) = &d.lfs {
                let _ = write!(
                    s,
                    ",\"lfs\":{{\"oid\":\"{}\",\"size\":{size},\"pointerSize\":{}}}",
                    lfs.sha256, lfs.pointer_size
                );
            }
            s
        }
        (oid, _) => format!(
            "{{\"type\":\"directory\",\"oid\":\"{}\",\"size\":0",
            oid.as_deref().unwrap_or_default()
        ),
    };
    let _ = write!(out, ",\"path\":{}", json_str(&entry.path));
    if expand {
        let _ = write!(
            out,
            ",\"lastCommit\":{{\"id\":\"{}\",\"title\":\"Upload folder\",\"date\":\"{}\"}}",
            commit.sha, commit.date
        );
    }
    out.push('}');
    out
}

/// A file of a resolved commit, as the resolve routes serve it.
struct FileRef<'a> {
    repo: &'a str,
    commit: &'a Commit,
    path: &'a str,
    file: &'a StoredFile,
}

fn resolve(
    st: &mut State,
    port: u16,
    req: &Request,
    repo: &RepoRef,
    rev: &str,
    path: &str,
) -> Result<Response, Response> {
    let commit = {
        let (r, token) = open_repo(st, req, repo)?;
        check_gate(r, &repo.id, token.as_deref())?;
        resolve_rev(r, rev)?
    };
    let file = commit
        .files
        .get(path)
        .ok_or_else(|| entry_not_found(&commit.sha))?;
    let f = FileRef {
        repo: &repo.id,
        commit: &commit,
        path,
        file,
    };
    Ok(file_response(st, port, req, &f, true))
}

/// The target of the resolve-cache `307`: pinned to a commit sha, answers like `/resolve`.
fn resolve_cache(
    st: &mut State,
    port: u16,
    req: &Request,
    repo: &RepoRef,
    sha: &str,
    path: &str,
) -> Result<Response, Response> {
    let commit = {
        let (r, token) = open_repo(st, req, repo)?;
        check_gate(r, &repo.id, token.as_deref())?;
        r.commits.get(sha).cloned().ok_or_else(|| {
            hub_error(
                404,
                Some("RevisionNotFound"),
                &format!("Invalid rev id: {sha}"),
            )
        })?
    };
    let file = commit
        .files
        .get(path)
        .ok_or_else(|| entry_not_found(&commit.sha))?;
    let f = FileRef {
        repo: &repo.id,
        commit: &commit,
        path,
        file,
    };
    Ok(file_response(st, port, req, &f, false))
}

fn file_response(st: &mut State, port: u16, req: &Request, f: &FileRef, may_hop: bool) -> Response {
    let d = &f.file.digests;
    if not_modified(req, d) {
        return not_modified_response(f);
    }
    if let Some(lfs) = &d.lfs {
        return lfs_redirect(st, port, f, lfs);
    }
    if may_hop && st.knobs.resolve_cache_redirect {
        return resolve_cache_redirect(req, f);
    }
    let headers = vec![
        ("Content-Type", content_type(f.path).to_owned()),
        ("X-Repo-Commit", f.commit.sha.clone()),
        ("ETag", quoted(&d.blob_id)),
        ("Accept-Ranges", "bytes".to_owned()),
        ("Content-Disposition", disposition(f.path)),
    ];
    let counter = st.counter(f.repo, f.path);
    let content = f.file.content.clone();
    ranged(
        headers,
        content,
        d.size,
        req.header("range"),
        counter,
        HostKind::Hub,
    )
}

/// `If-None-Match` on `/resolve` gets `304` on the Hub (hf-hub 1.0 relies on it).
fn not_modified(req: &Request, d: &Digests) -> bool {
    let Some(tags) = req.header("if-none-match") else {
        return false;
    };
    tags.split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t == d.blob_id || d.lfs.as_ref().is_some_and(|lfs| lfs.sha256 == t))
}

fn not_modified_response(f: &FileRef) -> Response {
    let d = &f.file.digests;
    let mut resp = Response {
        status: 304,
        headers: Vec::new(),
        body: Body::Bytes(Vec::new()),
    }
    .header("X-Repo-Commit", &f.commit.sha)
    .header("ETag", quoted(&d.blob_id));
    if let Some(lfs) = &d.lfs {
        resp = resp
            .header("X-Linked-Etag", quoted(&lfs.sha256))
            .header("X-Linked-Size", d.size);
    }
    resp
}

/// Protocol case C: an absolute `302` to a signed URL on the other host.
fn lfs_redirect(st: &mut State, port: u16, f: &FileRef, lfs: &LfsInfo) -> Response {
    let location = mint_signed_url(st, port, f, &lfs.sha256);
    let linked_size = listed_size(&st.knobs.linked_size, f.repo, f.path, f.file.digests.size);
    redirect(302, &location)
        .header("X-Repo-Commit", &f.commit.sha)
        .header("X-Linked-Etag", quoted(&lfs.sha256))
        .header("X-Linked-Size", linked_size)
        .header("ETag", quoted(&f.file.digests.blob_id))
}

/// Protocol case B: a relative `307` pinned to the commit, with the original path and the etag
/// in the query (real example in the reference).
fn resolve_cache_redirect(req: &Request, f: &FileRef) -> Response {
    let location = format!(
        "/api/resolve-cache/models/{}/{}/{}?{}=&etag=%22{}%22",
        f.repo,
        f.commit.sha,
        percent_encode(f.path, true),
        percent_encode(&req.path, false),
        f.file.digests.blob_id
    );
    redirect(307, &location)
}

fn mint_signed_url(st: &mut State, port: u16, f: &FileRef, sha256: &str) -> String {
    let now = SystemTime::now();
    let ttl = st.knobs.cdn_ttl;
    let lifetime = ttl.map_or(DEFAULT_SIGNATURE_SECS, |t| t.as_secs_f64().ceil() as u64);
    let expires = unix_secs(now).saturating_add(lifetime).to_string();
    let token = random_token(st.signed.len(), now);
    let signed = SignedUrl {
        repo: f.repo.to_owned(),
        path: f.path.to_owned(),
        sha256: sha256.to_owned(),
        size: f.file.digests.size,
        expires_param: expires.clone(),
        // A TTL too large to represent never expires.
        deadline: ttl.and_then(|ttl| Instant::now().checked_add(ttl)),
    };
    st.signed.insert(token.clone(), signed);
    let disposition = percent_encode(&disposition(f.path), false);
    let base = st
        .knobs
        .cdn_base
        .clone()
        .unwrap_or_else(|| format!("http://localhost:{port}"));
    format!(
        "{base}/cdn/{sha256}?response-content-disposition={disposition}&Expires={expires}&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={token}"
    )
}

fn random_token(salt: usize, now: SystemTime) -> String {
    let nanos = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(format!("{salt}:{nanos}:{:?}", thread::current().id()));
    hex(&hasher.finalize())
}

fn cdn_error(status: u16, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>\n"
    );
    Response::new(status, "application/xml", body)
}

/// The CDN knows nothing about Hub tokens: the signature is the only credential.
fn cdn(st: &mut State, req: &Request, route: &Route, sha256: &str) -> Response {
    let denied = || cdn_error(403, "AccessDenied", "Access Denied");
    let Some(signed) = signature(&route.query).and_then(|sig| st.signed.get(sig)) else {
        return denied();
    };
    if signed.sha256 != sha256 || route.query("Expires") != Some(signed.expires_param.as_str()) {
        return denied();
    }
    if signed
        .deadline
        .is_some_and(|deadline| Instant::now() >= deadline)
    {
        return cdn_error(403, "AccessDenied", "Request has expired");
    }
    let Some(content) = st.blobs.get(sha256).cloned() else {
        return cdn_error(404, "NoSuchKey", "The specified key does not exist.");
    };
    let (repo, path, size) = (signed.repo.clone(), signed.path.clone(), signed.size);
    let headers = vec![
        ("Content-Type", "application/octet-stream".to_owned()),
        // An S3 multipart-style tag: deliberately not the sha256, which only the Hub reports.
        (
            "ETag",
            format!("\"{}-1\"", &git_object_id("etag", sha256.as_bytes())[..32]),
        ),
        ("Accept-Ranges", "bytes".to_owned()),
        ("Content-Disposition", disposition(&path)),
        ("X-Cache", "Miss from cloudfront".to_owned()),
    ];
    let counter = st.counter(&repo, &path);
    ranged(
        headers,
        content,
        size,
        req.header("range"),
        counter,
        HostKind::Cdn,
    )
}

enum RangeSpec {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// RFC 9110 §14: `a-b` (end clamped), `a-`, `-k`. Anything the mock does not understand
/// (other units, several ranges, malformed) is ignored, which a server may always do.
fn parse_range(header: Option<&str>, total: u64) -> RangeSpec {
    let Some(spec) = header.map(str::trim).and_then(|h| {
        h.get(..6)
            .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
            .and(h.get(6..))
    }) else {
        return RangeSpec::Whole;
    };
    let Some((first, last)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return RangeSpec::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return match last.parse::<u64>() {
            Ok(0) => RangeSpec::Unsatisfiable,
            Ok(_) if total == 0 => RangeSpec::Unsatisfiable,
            Ok(suffix) => RangeSpec::Part(total - suffix.min(total), total - 1),
            Err(_) => RangeSpec::Whole,
        };
    }
    let Ok(first) = first.parse::<u64>() else {
        return RangeSpec::Whole;
    };
    let last = match last {
        "" => None,
        last => match last.parse::<u64>() {
            Ok(last) if last >= first => Some(last),
            _ => return RangeSpec::Whole,
        },
    };
    if first >= total {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Part(first, last.map_or(total - 1, |last| last.min(total - 1)))
}

fn ranged(
    mut headers: Vec<(&'static str, String)>,
    content: Content,
    total: u64,
    range: Option<&str>,
    counter: Arc<AtomicU64>,
    host: HostKind,
) -> Response {
    let (status, start, len) = match parse_range(range, total) {
        RangeSpec::Whole => (200, 0, total),
        RangeSpec::Part(first, last) => (206, first, last - first + 1),
        RangeSpec::Unsatisfiable => {
            let mut resp = match host {
                HostKind::Hub => hub_error(416, None, "Requested Range Not Satisfiable"),
                HostKind::Cdn => cdn_error(
                    416,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                ),
            };
            resp.headers.extend(
                headers
                    .into_iter()
                    .filter(|(name, _)| *name != "Content-Type"),
            );
            return resp.header("Content-Range", format!("bytes */{total}"));
        }
    };
    if status == 206 {
        headers.push((
            "Content-Range",
            format!("bytes {start}-{}/{total}", start + len - 1),
        ));
    }
    let slice = ContentSlice {
        content,
        start,
        len,
        total,
        counter,
        junk: 0,
    };
    Response {
        status,
        headers,
        body: Body::Content(slice),
    }
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match ext {
        "json" => "application/json; charset=utf-8",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn disposition(path: &str) -> String {
    let name = percent_encode(name_of(path), false);
    format!("inline; filename*=UTF-8''{name}; filename=\"{name}\";")
}

// ---------------------------------------------------------------------------------------------
// Admin routes (for steering the example binary from a shell or bench script)
// ---------------------------------------------------------------------------------------------

struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn number<T: std::str::FromStr>(&self, key: &str, default: Option<T>) -> Result<T, AdminError> {
        match (self.get(key), default) {
            (Some(value), _) => value.parse().map_err(|_| bad_param(key)),
            (None, Some(default)) => Ok(default),
            (None, None) => Err((400, format!("missing parameter {key}"))),
        }
    }
}

type AdminError = (u16, String);

fn bad_param(key: &str) -> AdminError {
    (400, format!("bad parameter {key}"))
}

fn admin(shared: &Shared, req: &Request) -> Response {
    match admin_action(shared, req) {
        Ok(body) => Response::new(200, "application/json; charset=utf-8", body),
        Err((status, message)) => hub_error(status, None, &message),
    }
}

fn admin_action(shared: &Shared, req: &Request) -> Result<String, AdminError> {
    let params = Params(parse_query(&req.query).ok_or_else(|| bad_param("query"))?);
    match req.path.as_str() {
        "/admin/commit" => admin_commit(
            shared,
            params.get("repo"),
            params.get("branch").unwrap_or("main"),
        ),
        "/admin/fault" => {
            let target = parse_target(params.get("target").ok_or_else(|| bad_param("target"))?)?;
            let fault = parse_fault(&params)?;
            let count: usize = params.number("count", Some(1))?;
            if count > MAX_ADMIN_FAULTS {
                return Err(bad_param("count"));
            }
            let mut st = shared.lock();
            st.faults
                .extend(std::iter::repeat_n((target, fault), count));
            Ok(format!("{{\"pending_faults\":{}}}", st.faults.len()))
        }
        "/admin/rate" => {
            let bps: u64 = params.number("bps", None)?;
            shared.lock().knobs.rate_limit = (bps > 0).then_some(bps);
            Ok(format!("{{\"bps\":{bps}}}"))
        }
        "/admin/cdn" => {
            // Where signed URLs point from now on: another server holding the blobs under
            // `/cdn/<sha256>` (nginx in the benchmark), or this mock when `base` is empty.
            let base = params.get("base").unwrap_or("");
            if !(base.is_empty() || base.starts_with("http://") || base.starts_with("https://")) {
                return Err(bad_param("base"));
            }
            shared.lock().knobs.cdn_base =
                (!base.is_empty()).then(|| base.trim_end_matches('/').to_owned());
            Ok(format!("{{\"cdn_base\":{}}}", json_str(base)))
        }
        "/admin/stats" => {
            let requests = shared.lock().log.len();
            let total = shared.total_served.load(Ordering::SeqCst);
            Ok(format!(
                "{{\"bytes_served_total\":{total},\"requests\":{requests}}}"
            ))
        }
        "/admin/reset" => {
            shared.reset_counters();
            let mut st = shared.lock();
            st.faults.clear();
            st.log.clear();
            Ok("{}".to_owned())
        }
        "/admin/requests" => {
            let st = shared.lock();
            let entries: Vec<String> = st.log.iter().map(|(_, entry)| log_json(entry)).collect();
            Ok(format!("[{}]", entries.join(",")))
        }
        _ => Err((404, "unknown admin route".to_owned())),
    }
}

fn admin_commit(shared: &Shared, repo: Option<&str>, branch: &str) -> Result<String, AdminError> {
    let (hook, repo) = {
        let st = shared.lock();
        let hook = st
            .admin_commit
            .clone()
            .ok_or((404, "no commit hook installed".to_owned()))?;
        let repo = match (repo, st.repos.keys().next()) {
            (Some(repo), _) => repo.to_owned(),
            (None, Some(only)) if st.repos.len() == 1 => only.clone(),
            (None, _) => return Err(bad_param("repo")),
        };
        (hook, repo)
    };
    // Outside the lock: re-scanning and hashing a directory can take a while.
    let files = hook(&repo, branch).map_err(|e| (500, e))?;
    let sha = shared
        .commit(&repo, branch, files)
        .map_err(|e| (500, e.to_string()))?;
    Ok(format!(
        "{{\"repo\":{},\"branch\":{},\"sha\":\"{sha}\"}}",
        json_str(&repo),
        json_str(branch)
    ))
}

fn parse_target(s: &str) -> Result<Target, AdminError> {
    match s {
        "api" => Ok(Target::Api),
        "tree" => Ok(Target::Tree),
        "anyfile" => Ok(Target::AnyFile),
        _ => match s.split_once(':') {
            Some(("resolve", path)) => Ok(Target::Resolve(path.to_owned())),
            Some(("cdn", path)) => Ok(Target::Cdn(path.to_owned())),
            _ => Err(bad_param("target")),
        },
    }
}

fn parse_fault(params: &Params) -> Result<Fault, AdminError> {
    let ms = |key| params.number(key, None).map(Duration::from_millis);
    match params.get("kind").ok_or_else(|| bad_param("kind"))? {
        "status" => Ok(Fault::Status {
            code: params.number("code", None)?,
            retry_after: params.get("retry_after").map(str::to_owned),
        }),
        "drop" => Ok(Fault::DropAfter(params.number("bytes", None)?)),
        "ignore_range" => Ok(Fault::IgnoreRange),
        "wrong_content_range" => Ok(Fault::WrongContentRange),
        "stall" => Ok(Fault::StallAfter {
            bytes: params.number("bytes", Some(0))?,
            stall: ms("ms")?,
        }),
        "no_response" => Ok(Fault::NoResponse(ms("ms")?)),
        "redirect" => Ok(Fault::Redirect {
            status: params.number("code", Some(302))?,
            location: params
                .get("location")
                .ok_or_else(|| bad_param("location"))?
                .to_owned(),
        }),
        "padded_json" => Ok(Fault::PaddedJson(params.number("bytes", None)?)),
        "short_body" => Ok(Fault::ShortBody(params.number("bytes", None)?)),
        "long_body" => Ok(Fault::LongBody(params.number("bytes", None)?)),
        _ => Err(bad_param("kind")),
    }
}

fn log_json(entry: &RequestLog) -> String {
    let opt = |value: &Option<String>| value.as_deref().map_or("null".to_owned(), json_str);
    format!(
        "{{\"method\":{},\"host\":{},\"path\":{},\"authorization\":{},\"range\":{},\"user_agent\":{},\"status\":{}}}",
        json_str(&entry.method),
        json_str(&entry.host),
        json_str(&entry.path),
        opt(&entry.authorization),
        opt(&entry.range),
        opt(&entry.user_agent),
        entry.status
    )
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------------------------

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Only ever applied to ids this module produced; anything else decodes to nothing.
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| s.get(2 * i..2 * i + 2))
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}

fn percent_decode(s: &str, plus_as_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Like Python's `quote(s, safe="/")` (or `safe=""` without `keep_slash`).
fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `None` on malformed percent-encoding.
fn parse_query(raw: &str) -> Option<Vec<(String, String)>> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(key, true)?, percent_decode(value, true)?))
        })
        .collect()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2026-11-26T14:20:00.000Z`.
fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
