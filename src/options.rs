//! What a pull is asked to do. Unset options take fixed defaults; they come from the environment
//! only when [`PullOptions::read_environment`] is set (see the `environment` module).

use std::path::PathBuf;
use std::time::Duration;

use crate::cancel::{CancelCheck, CancelToken};
use crate::error::{Error, Result};
use crate::net::resolve::ResolverConfig;
use crate::registry::Registry;

/// Connect timeout per attempt unless set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Stall watchdog unless set (or, when reading the environment, given by `HF_HUB_DOWNLOAD_TIMEOUT`).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one metadata (API) request unless set.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(600);
/// Limit on one host name lookup unless set.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(10);

/// Most ranged connections one file may use (see [`PullOptions::connections`]).
pub const MAX_CONNECTIONS: u32 = 64;
/// [`PullOptions::connections`] value that lets each file's transfer choose its connections.
pub const AUTO_CONNECTIONS: u32 = 0;
/// Most connections one file uses when they are chosen automatically ([`AUTO_CONNECTIONS`]).
pub const AUTO_MAX_CONNECTIONS: u32 = 16;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt, per file (and per connection of a parallel transfer).
    /// An attempt that made real progress — at least 1 MiB, or data flowing for at least 2 s —
    /// starts the count over; one that failed after less counts as a failure, so a server that
    /// cuts every answer after a few KiB ends the transfer (`Error::LowProgress`, partial kept)
    /// instead of crawling on. A slow but steady link still completes.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry, with jitter.
    pub initial_delay: Duration,
    /// Cap on one computed backoff delay. A server's `Retry-After` is honoured as given; only
    /// `max_total_wait` bounds it.
    pub max_delay: Duration,
    /// Cap on the total time spent waiting between retries of one request (lemonade: about 10 min).
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            initial_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(120),
            max_total_wait: Duration::from_secs(600),
        }
    }
}

/// A file from another repository pulled in the same call, like lemonade's auxiliary checkpoints
/// (a VAE, a text encoder, an mmproj). It lands in that repository's own cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Repository id.
    pub repo: String,
    /// Exact repo-relative path of the file.
    pub path: String,
    /// Revision; `None` = `main`.
    pub revision: Option<String>,
}

impl Component {
    /// Parses `org/repo:path/in/repo` (the CLI's `--with` and lemonade's checkpoint syntax).
    pub fn parse(spec: &str) -> Result<Component> {
        match spec.split_once(':') {
            Some((repo, path)) if !repo.trim().is_empty() && !path.trim().is_empty() => {
                Ok(Component {
                    repo: repo.trim().to_string(),
                    path: path.trim().to_string(),
                    revision: None,
                })
            }
            _ => Err(Error::InvalidArgument(format!(
                "component {spec:?} must be REPO:PATH with an exact file path"
            ))),
        }
    }
}

/// One exact repository path (no glob meaning), with what the caller may already know of it.
/// When every file of a pinned repository carries its size and a content id, the pull needs no
/// listing call at all; every byte is verified against the id either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Repo-relative path, exactly as listed (`*`, `[`, spaces are plain characters).
    pub path: String,
    /// Size in bytes, if known.
    pub size: Option<u64>,
    /// sha256 (64 hex) of an LFS file, if known.
    pub sha256: Option<String>,
    /// Git blob sha1 (40 hex) of a regular file, if known.
    pub git_sha1: Option<String>,
}

impl FileSpec {
    /// A file known by its path only.
    pub fn new(path: impl Into<String>) -> Self {
        FileSpec {
            path: path.into(),
            size: None,
            sha256: None,
            git_sha1: None,
        }
    }
}

/// An extra repository pulled exactly, in its own `models--…` folder with its own snapshot and ref
/// (lemonade's auxiliary checkpoints, with the commit and files it chose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    /// Repository id.
    pub repo: String,
    /// Ref written on success; `None` = `main`.
    pub revision: Option<String>,
    /// Pin: pull exactly this 40-hex commit (and write `refs/<revision>` = it); `None` = resolve
    /// `revision`.
    pub commit: Option<String>,
    /// The exact files to pull; must not be empty.
    pub files: Vec<FileSpec>,
}

/// Everything a pull needs. Build with [`PullOptions::new`] and set fields as needed.
#[derive(Clone)]
#[non_exhaustive]
pub struct PullOptions {
    /// `org/name` (or a legacy bare `name`).
    pub repo: String,
    /// Where `repo` and every other repository of the pull live: the Hugging Face Hub (default)
    /// or ModelScope (folder `modelscope--models--org--name`, snapshots named by lemonade's tree
    /// fingerprint, default revision `master`, default endpoint `https://modelscope.cn`).
    pub registry: Registry,
    /// Branch, tag, full commit sha or `refs/pr/N`; `None` = `main` (ModelScope: `master`).
    pub revision: Option<String>,
    /// GGUF variant (`Q4_K_M`) or exact model file; `None` = no variant rule.
    pub variant: Option<String>,
    /// Files from other repositories pulled in the same call.
    pub components: Vec<Component>,
    /// Pin: pull exactly this 40-hex commit of `repo` — what a caller that listed the repository
    /// itself selected from, even if `revision` has moved since. On success `refs/<revision>`
    /// (default `main`) names this commit. On ModelScope, the tree fingerprint the caller's
    /// listing gave (`modelscope-<revision>-<16 hex>`): the snapshot folder to fill; files are
    /// still fetched by revision, and their sha256 (or size) catches a tree that moved.
    pub commit: Option<String>,
    /// Exact files of `repo` to pull instead of a selection (then `include`, `exclude` and
    /// `variant` must be empty). A file not at the commit is [`crate::Error::FileNotFound`].
    pub files: Vec<FileSpec>,
    /// Extra repositories pulled exactly in the same call.
    pub repos: Vec<RepoSpec>,
    /// Glob patterns a file must match (any of them); empty = all.
    pub include: Vec<String>,
    /// Glob patterns that drop a file.
    pub exclude: Vec<String>,
    /// Cache root. Required unless `read_environment` finds one (`HF_HUB_CACHE`, `HF_HOME`, …).
    pub cache_dir: Option<PathBuf>,
    /// Hub endpoint; `None` = the registry's public endpoint (or `HF_ENDPOINT`,
    /// `MODELSCOPE_ENDPOINT` when reading the environment).
    pub endpoint: Option<String>,
    /// Access token; `None` = anonymous (or `HF_TOKEN`, the token file, … when reading the
    /// environment).
    pub token: Option<String>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Connect timeout per attempt.
    pub connect_timeout: Duration,
    /// A body read that sees no byte for this long is abandoned and retried from the current offset.
    /// Default: 60 s (when reading the environment and left at 60 s: `HF_HUB_DOWNLOAD_TIMEOUT`).
    pub stall_timeout: Duration,
    /// Timeout for metadata (API) calls, whole request.
    pub api_timeout: Duration,
    /// Limit on one host name lookup (all nameservers, tries and search domains together); a
    /// lookup that gets no answer in time fails as "host name not resolved", which the cache
    /// fallback treats as an unreachable hub. Default: 10 s. Cancellation interrupts a lookup
    /// within about 50 ms. (Unix; on Windows the system's lookup is used, which neither this
    /// limit nor a cancel can interrupt, unless `resolver` is set.)
    pub dns_timeout: Duration,
    /// How host names are resolved; `None` = the system's configuration (`/etc/hosts` and
    /// `/etc/resolv.conf`, read when the pull starts). Set it to ask given nameservers, e.g. in
    /// tests or where the system's files do not apply.
    pub resolver: Option<ResolverConfig>,
    /// Bandwidth cap over all connections of the pull, in bytes per second; `None` = unlimited.
    pub max_bytes_per_sec: Option<u64>,
    /// Ranged connections per file (opt-in parallel download). `1` (the default) fetches each file
    /// over one connection; with more, a file of at least 16 MiB is fetched in pieces by up to this
    /// many connections at once (capped at [`MAX_CONNECTIONS`]). [`AUTO_CONNECTIONS`] (0) lets each
    /// such file's transfer choose: it starts with one connection and doubles them while that
    /// raises the rate by 10% or more, up to [`AUTO_MAX_CONNECTIONS`] (on a link one connection
    /// fills it stays at one; under a per-connection cap it grows). The bandwidth cap covers all
    /// of them. Threads: at most this many (or [`AUTO_MAX_CONNECTIONS`]) plus the two the pull
    /// always has, all ended before the pull returns.
    pub connections: u32,
    /// Cancel from another thread.
    pub cancel: Option<CancelToken>,
    /// An extra cancel source polled alongside `cancel`.
    pub cancel_check: Option<CancelCheck>,
    /// Plan only: report where every byte would come from, write nothing.
    pub dry_run: bool,
    /// Answer from the cache alone, without any network call (also `HF_HUB_OFFLINE=1` when
    /// reading the environment).
    pub offline: bool,
    /// CA bundle (PEM file, DER certificate or folder of them) trusted for https instead of the
    /// system trust store; `None` = the system store (or `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`,
    /// `CURL_CA_BUNDLE` when reading the environment; see [`check_trust`](crate::check_trust)).
    pub ca_bundle: Option<PathBuf>,
    /// HTTP proxy for every request (`http://host:port`, optionally with `user:password@`);
    /// `None` = direct (or `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` minus `NO_PROXY` when reading
    /// the environment).
    pub proxy: Option<String>,
    /// lemonade's rule for a moved ref: when every selected file at the new commit is identical
    /// (same content ids, none added or dropped) to the verified copy in the snapshot
    /// `refs/<revision>` names now, keep that snapshot active — the ref stays, no new folder is
    /// made, and the outcome names the kept snapshot. Costs one listing call when the ref moved.
    /// Hugging Face only, as in lemonade (a ModelScope snapshot always follows its tree).
    pub keep_unchanged_snapshot: bool,
    /// When the hub cannot be reached at all (host name not resolved, connection refused, connect
    /// timeout, TLS handshake failure), answer from a complete cached snapshot of the revision
    /// after a few seconds instead of failing (the outcome says `from_cache`). On by default, as in
    /// huggingface_hub; turn it off for strict freshness.
    pub cache_fallback: bool,
    /// Fill unset options from the environment and the token file, as huggingface_hub does.
    /// Off by default: a library embedded in a server reads nothing its caller did not pass.
    /// The `resume-pull` CLI turns it on.
    pub read_environment: bool,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("repo", &self.repo)
            .field("revision", &self.revision)
            .field("variant", &self.variant)
            .field("components", &self.components)
            .field("include", &self.include)
            .field("exclude", &self.exclude)
            .field("cache_dir", &self.cache_dir)
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .field("connections", &self.connections)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl PullOptions {
    /// Options for `repo` with every other field at its default.
    pub fn new(repo: impl Into<String>) -> Self {
        PullOptions {
            repo: repo.into(),
            registry: Registry::HuggingFace,
            revision: None,
            variant: None,
            components: Vec::new(),
            commit: None,
            files: Vec::new(),
            repos: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            cache_dir: None,
            endpoint: None,
            token: None,
            retry: RetryPolicy::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            api_timeout: DEFAULT_API_TIMEOUT,
            dns_timeout: DEFAULT_DNS_TIMEOUT,
            resolver: None,
            max_bytes_per_sec: None,
            connections: 1,
            cancel: None,
            cancel_check: None,
            dry_run: false,
            offline: false,
            ca_bundle: None,
            proxy: None,
            keep_unchanged_snapshot: false,
            cache_fallback: true,
            read_environment: false,
        }
    }
}

/// The endpoint `explicit` (default: the registry's public one), validated, without a trailing
/// `/`.
pub(crate) fn resolve_endpoint(explicit: Option<&str>, registry: Registry) -> Result<String> {
    let raw = explicit.unwrap_or(registry.default_endpoint()).to_string();
    let trimmed = raw.trim().trim_end_matches('/').to_string();
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "endpoint {raw:?} must start with https:// or http://"
            ))
        })?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(Error::InvalidArgument(format!(
            "endpoint {raw:?} is not a valid base URL"
        )));
    }
    Ok(trimmed)
}

/// The token to send: `explicit` trimmed; `None` (anonymous) when missing or blank.
pub(crate) fn resolve_token(explicit: Option<&str>) -> Option<String> {
    let t = explicit?.trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_is_validated_and_trimmed() {
        assert_eq!(
            resolve_endpoint(Some("http://127.0.0.1:9/"), Registry::HuggingFace).expect("ok"),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            resolve_endpoint(None, Registry::ModelScope).expect("ok"),
            "https://modelscope.cn"
        );
        assert!(resolve_endpoint(Some("ftp://x"), Registry::HuggingFace).is_err());
        assert!(resolve_endpoint(Some("https://"), Registry::HuggingFace).is_err());
    }

    #[test]
    fn explicit_options_win() {
        assert_eq!(resolve_token(Some(" abc ")), Some("abc".to_string()));
        assert_eq!(resolve_token(Some("")), None);
    }

    #[test]
    fn component_specs() {
        let c = Component::parse("org/vae:split_files/vae/ae.safetensors").expect("valid");
        assert_eq!(
            (c.repo.as_str(), c.path.as_str()),
            ("org/vae", "split_files/vae/ae.safetensors")
        );
        assert!(Component::parse("org/vae").is_err());
        assert!(Component::parse("org/vae:").is_err());
        assert!(Component::parse(":x").is_err());
    }

    #[test]
    fn debug_redacts_token() {
        let mut o = PullOptions::new("a/b");
        o.token = Some("hf_secret".into());
        assert!(!format!("{o:?}").contains("hf_secret"));
    }
}
