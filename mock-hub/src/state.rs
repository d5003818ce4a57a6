//! What the mock knows: repos, commits, signed URLs, knobs and counters, behind one lock.

use crate::encode::{iso8601, unix_secs};
use crate::git::{
    Digests, StoredFile, TreeEntry, commit_sha, digest_content, parent_of, tree_entries,
};
use crate::http::Request;
use crate::model::{AdminCommitHook, Content, Fault, ListingShape, MockFile, RequestLog, Target};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

const DEFAULT_TREE_PAGE: usize = 1000;

pub(crate) struct Commit {
    pub(crate) sha: String,
    pub(crate) date: String,
    /// The same moment in Unix seconds (ModelScope's `CommittedDate`).
    pub(crate) secs: u64,
    pub(crate) files: BTreeMap<String, StoredFile>,
    /// Files and directories, sorted by path.
    pub(crate) entries: Vec<TreeEntry>,
}

pub(crate) struct Repo {
    pub(crate) refs: BTreeMap<String, String>,
    pub(crate) commits: HashMap<String, Arc<Commit>>,
    pub(crate) private: bool,
    pub(crate) allowed_token: Option<String>,
    pub(crate) gated: bool,
    pub(crate) approved_token: Option<String>,
    pub(crate) disabled: bool,
    pub(crate) created_at: String,
}

pub(crate) struct SignedUrl {
    pub(crate) repo: String,
    pub(crate) path: String,
    pub(crate) sha256: String,
    pub(crate) size: u64,
    pub(crate) expires_param: String,
    pub(crate) deadline: Option<Instant>,
}

pub(crate) struct Knobs {
    pub(crate) rate_limit: Option<u64>,
    pub(crate) tree_page_size: usize,
    pub(crate) listing_sizes: bool,
    pub(crate) cdn_ttl: Option<Duration>,
    pub(crate) resolve_cache_redirect: bool,
    /// (repo, path) → what the listing (`?blobs=true` siblings and `/tree`) says the size is.
    pub(crate) listed_size: HashMap<(String, String), SizeLie>,
    /// (repo, path) → what `X-Linked-Size` says.
    pub(crate) linked_size: HashMap<(String, String), SizeLie>,
    /// Lowercase names of headers stripped from every Hub-host answer.
    pub(crate) omit_headers: BTreeSet<String>,
    /// `scheme://host:port` of signed CDN URLs; `None`: this mock's `http://localhost:PORT`.
    pub(crate) cdn_base: Option<String>,
    /// Every `/tree` page's `rel="next"` target, verbatim (a loop, another host).
    pub(crate) tree_next: Option<String>,
    pub(crate) modelscope: ModelScopeKnobs,
}

/// How the ModelScope routes answer (see the `MockHub::set_modelscope_*` knobs).
#[derive(Default)]
pub(crate) struct ModelScopeKnobs {
    pub(crate) shape: ListingShape,
    /// (repo, path) → `None`: no `Sha256` key; `Some(x)`: `x` instead of the truth.
    pub(crate) sha256: HashMap<(String, String), Option<String>>,
    /// Status and body every listing answers with, whatever the repo.
    pub(crate) listing_answer: Option<(u16, String)>,
    /// File downloads `302` to the CDN host instead of serving the bytes.
    pub(crate) redirect: bool,
}

/// A size the metadata reports instead of the truth.
#[derive(Clone, Debug)]
pub(crate) enum SizeLie {
    /// The true size plus this (may go negative or past `u64::MAX`: rendered as such).
    Delta(i64),
    /// This JSON number token / header value, verbatim.
    Raw(String),
}

impl SizeLie {
    pub(crate) fn render(&self, size: u64) -> String {
        match self {
            SizeLie::Delta(d) => (i128::from(size) + i128::from(*d)).to_string(),
            SizeLie::Raw(raw) => raw.clone(),
        }
    }
}

/// Identifies a disk file's content well enough to reuse its digests across commits.
type FileKey = (PathBuf, u64, Option<SystemTime>, bool);

pub(crate) struct State {
    pub(crate) repos: HashMap<String, Repo>,
    /// Old repo id → new repo id.
    pub(crate) renames: HashMap<String, String>,
    /// LFS content by sha256, what the CDN serves.
    pub(crate) blobs: HashMap<String, Content>,
    /// Signature token → what it was minted for.
    pub(crate) signed: HashMap<String, SignedUrl>,
    /// Tokens that are valid but grant nothing by themselves (see `MockHub::add_token`).
    pub(crate) extra_tokens: BTreeSet<String>,
    pub(crate) faults: Vec<(Target, Fault)>,
    pub(crate) log: Vec<(u64, RequestLog)>,
    pub(crate) per_file: HashMap<(String, String), Arc<AtomicU64>>,
    pub(crate) knobs: Knobs,
    commits_made: u64,
    digest_cache: HashMap<FileKey, Digests>,
    pub(crate) admin_commit: Option<AdminCommitHook>,
}

impl State {
    /// The repo, created public if missing. Creating a repo retires a rename alias of that id.
    pub(crate) fn repo_mut(&mut self, id: &str) -> &mut Repo {
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

    pub(crate) fn counter(&mut self, repo: &str, path: &str) -> Arc<AtomicU64> {
        Arc::clone(
            self.per_file
                .entry((repo.to_owned(), path.to_owned()))
                .or_default(),
        )
    }

    pub(crate) fn is_known_token(&self, token: &str) -> bool {
        self.extra_tokens.contains(token)
            || self.repos.values().any(|r| {
                r.allowed_token.as_deref() == Some(token)
                    || r.approved_token.as_deref() == Some(token)
            })
    }
}

pub(crate) struct Shared {
    pub(crate) port: u16,
    pub(crate) state: Mutex<State>,
    pub(crate) stop: AtomicBool,
    pub(crate) total_served: AtomicU64,
    pub(crate) padding_served: AtomicU64,
    next_seq: AtomicU64,
    pub(crate) conns: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    pub(crate) fn new(port: u16) -> Self {
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
            modelscope: ModelScopeKnobs::default(),
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
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn conns(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    pub(crate) fn reset_counters(&self) {
        self.total_served.store(0, Ordering::SeqCst);
        for counter in self.lock().per_file.values() {
            counter.store(0, Ordering::SeqCst);
        }
    }

    pub(crate) fn commit(
        &self,
        repo: &str,
        branch: &str,
        files: Vec<MockFile>,
    ) -> io::Result<String> {
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

    pub(crate) fn digests(&self, file: &MockFile) -> io::Result<Digests> {
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

    pub(crate) fn log_request(&self, req: &Request) -> u64 {
        let seq = self.seq();
        let entry = RequestLog {
            method: req.method.clone(),
            host: req.header("host").unwrap_or_default().to_owned(),
            path: req.target.clone(),
            authorization: req.header("authorization").map(str::to_owned),
            cookie: req.header("cookie").map(str::to_owned),
            range: req.header("range").map(str::to_owned),
            user_agent: req.header("user-agent").map(str::to_owned),
            status: 0,
            headers: req.headers.clone(),
        };
        self.lock().log.push((seq, entry));
        seq
    }

    pub(crate) fn set_status(&self, seq: u64, status: u16) {
        let mut st = self.lock();
        if let Some((_, entry)) = st.log.iter_mut().rev().find(|(s, _)| *s == seq) {
            entry.status = status;
        }
    }

    /// Removes and returns the first queued fault that `pick` accepts.
    pub(crate) fn take_fault<T>(&self, pick: impl Fn(&Target, &Fault) -> Option<T>) -> Option<T> {
        let mut st = self.lock();
        let (index, picked) = st
            .faults
            .iter()
            .enumerate()
            .find_map(|(i, (t, f))| pick(t, f).map(|p| (i, p)))?;
        st.faults.remove(index);
        Some(picked)
    }

    pub(crate) fn register(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let id = self.seq();
        self.conns().insert(id, clone);
        Some(id)
    }
}

impl Commit {
    pub(crate) fn new(sha: String, files: BTreeMap<String, StoredFile>) -> Self {
        let entries = tree_entries(&files);
        let now = SystemTime::now();
        Self {
            sha,
            date: iso8601(now),
            secs: unix_secs(now),
            files,
            entries,
        }
    }

    /// Entries under directory `dir` ("" = root); `None` if `dir` is not a directory.
    pub(crate) fn list(&self, dir: &str, recursive: bool) -> Option<Vec<&TreeEntry>> {
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
