//! `MockHub`: the handle a test starts, steers and inspects; dropping it stops the server.

use crate::model::{Fault, ListingShape, MockFile, RequestLog, Target};
use crate::server::accept_loop;
use crate::state::{Shared, SizeLie};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

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

    /// The port both hosts answer on.
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

    /// The commit a branch, tag or `refs/pr/N` points at.
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

    /// Makes the repo public again (any token or none may read it).
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

    /// Lifts the gate: anyone who may read the repo may download its files.
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

    /// A disabled repo answers `403` on every route, whatever the token.
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

    /// Queues a fault; the first request it applies to consumes it (see [`Fault`]).
    pub fn push_fault(&self, target: Target, fault: Fault) {
        self.shared.lock().faults.push((target, fault));
    }

    /// Drops every queued fault.
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

    /// The body shape of ModelScope listings from now on (default [`ListingShape::Envelope`]).
    pub fn set_modelscope_listing_shape(&self, shape: ListingShape) {
        self.shared.lock().knobs.modelscope.shape = shape;
    }

    /// What ModelScope listings report as this file's sha256: `None` leaves the key out (real
    /// listings sometimes lack it), `Some(x)` reports `x`. [`MockHub::reset_modelscope_sha256`]
    /// restores the truth.
    pub fn set_modelscope_sha256(&self, repo: &str, path: &str, sha256: Option<&str>) {
        let key = (repo.to_owned(), path.to_owned());
        let value = sha256.map(str::to_owned);
        self.shared
            .lock()
            .knobs
            .modelscope
            .sha256
            .insert(key, value);
    }

    /// ModelScope listings report this file's true sha256 again.
    pub fn reset_modelscope_sha256(&self, repo: &str, path: &str) {
        let key = (repo.to_owned(), path.to_owned());
        self.shared.lock().knobs.modelscope.sha256.remove(&key);
    }

    /// Every ModelScope listing from now on answers this status and body (JSON, verbatim),
    /// whatever the repo: a `200` whose envelope says failure, `401`, `500`. `None`: real answers.
    pub fn set_modelscope_listing_answer(&self, answer: Option<(u16, String)>) {
        self.shared.lock().knobs.modelscope.listing_answer = answer;
    }

    /// `true`: ModelScope file downloads answer a `302` to a signed URL on the CDN host (like
    /// `/resolve` for an LFS file, so cross-host token stripping is exercised). `false`
    /// (default): the file route serves the bytes itself, with ranges.
    pub fn set_modelscope_redirect(&self, on: bool) {
        self.shared.lock().knobs.modelscope.redirect = on;
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

    /// Empties the request log.
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
