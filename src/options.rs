//! What a pull is asked to do, and how unset options fall back to the environment.
//!
//! Precedence, highest first — cache root: option > `HF_HUB_CACHE` > `HUGGINGFACE_HUB_CACHE` >
//! `$HF_HOME/hub` > `$XDG_CACHE_HOME/huggingface/hub` > `~/.cache/huggingface/hub`; endpoint: option >
//! `HF_ENDPOINT` > `https://huggingface.co`; token: option > `HF_TOKEN` > `HUGGING_FACE_HUB_TOKEN` >
//! the file at `HF_TOKEN_PATH` > `$HF_HOME/token` (default `~/.cache/huggingface/token`), where
//! `HF_HUB_DISABLE_IMPLICIT_TOKEN=1` turns off everything after the option, as in huggingface_hub;
//! stall timeout: option > `HF_HUB_DOWNLOAD_TIMEOUT` > 60 s; offline: option or `HF_HUB_OFFLINE=1`.
//! Boolean variables are true when set to `1`, `true`, `yes` or `on` (any case).

use std::path::PathBuf;
use std::time::Duration;

use crate::cancel::{CancelCheck, CancelToken};
use crate::error::{Error, Result};

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Connect timeout per attempt unless set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Stall watchdog unless set or given by `HF_HUB_DOWNLOAD_TIMEOUT`.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one metadata (API) request unless set.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(600);

/// Most ranged connections one file may use (see [`PullOptions::connections`]).
pub const MAX_CONNECTIONS: u32 = 64;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (per file, reset whenever bytes arrive).
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

/// Everything a pull needs. Build with [`PullOptions::new`] and set fields as needed.
#[derive(Clone)]
#[non_exhaustive]
pub struct PullOptions {
    /// `org/name` (or a legacy bare `name`).
    pub repo: String,
    /// Branch, tag, full commit sha or `refs/pr/N`; `None` = `main`.
    pub revision: Option<String>,
    /// GGUF variant (`Q4_K_M`) or exact model file; `None` = no variant rule.
    pub variant: Option<String>,
    /// Files from other repositories pulled in the same call.
    pub components: Vec<Component>,
    /// Glob patterns a file must match (any of them); empty = all.
    pub include: Vec<String>,
    /// Glob patterns that drop a file.
    pub exclude: Vec<String>,
    /// Cache root; `None` = environment / default.
    pub cache_dir: Option<PathBuf>,
    /// Hub endpoint; `None` = `HF_ENDPOINT` / public Hub.
    pub endpoint: Option<String>,
    /// Access token; `None` = environment / token file.
    pub token: Option<String>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Connect timeout per attempt.
    pub connect_timeout: Duration,
    /// A body read that sees no byte for this long is abandoned and retried from the current offset.
    /// Default: `HF_HUB_DOWNLOAD_TIMEOUT` seconds if set, else 60 s.
    pub stall_timeout: Duration,
    /// Timeout for metadata (API) calls, whole request.
    pub api_timeout: Duration,
    /// Bandwidth cap over all connections of the pull, in bytes per second; `None` = unlimited.
    pub max_bytes_per_sec: Option<u64>,
    /// Ranged connections per file (opt-in parallel download). `1` (the default) fetches each file
    /// over one connection; with more, a file of at least 16 MiB is fetched in pieces by up to this
    /// many connections at once (capped at [`MAX_CONNECTIONS`]; 0 counts as 1). The bandwidth cap
    /// covers all of them.
    pub connections: u32,
    /// Cancel from another thread.
    pub cancel: Option<CancelToken>,
    /// An extra cancel source polled alongside `cancel`.
    pub cancel_check: Option<CancelCheck>,
    /// Plan only: report where every byte would come from, write nothing.
    pub dry_run: bool,
    /// Answer from the cache alone, without any network call (also `HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// CA bundle (PEM file, DER certificate or folder of them) trusted for https instead of the
    /// default roots; `None` = `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, else the
    /// system trust store (see [`check_trust`](crate::check_trust)).
    pub ca_bundle: Option<PathBuf>,
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
            revision: None,
            variant: None,
            components: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            cache_dir: None,
            endpoint: None,
            token: None,
            retry: RetryPolicy::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            stall_timeout: env_download_timeout().unwrap_or(DEFAULT_STALL_TIMEOUT),
            api_timeout: DEFAULT_API_TIMEOUT,
            max_bytes_per_sec: None,
            connections: 1,
            cancel: None,
            cancel_check: None,
            dry_run: false,
            offline: false,
            ca_bundle: None,
        }
    }
}

/// `HF_HUB_DOWNLOAD_TIMEOUT` (seconds, may be fractional), huggingface_hub's read timeout for
/// downloads; here it sets the default stall watchdog.
fn env_download_timeout() -> Option<Duration> {
    let secs: f64 = env_nonempty("HF_HUB_DOWNLOAD_TIMEOUT")?
        .trim()
        .parse()
        .ok()?;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// A boolean environment variable, read as huggingface_hub reads them.
pub(crate) fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn home_dir() -> Option<PathBuf> {
    env_nonempty(crate::platform::HOME_VAR).map(PathBuf::from)
}

fn hf_home() -> Option<PathBuf> {
    if let Some(h) = env_nonempty("HF_HOME") {
        return Some(PathBuf::from(h));
    }
    if let Some(x) = env_nonempty("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("huggingface"));
    }
    home_dir().map(|h| h.join(".cache").join("huggingface"))
}

/// The cache root for `explicit` (an option) or from the environment.
pub fn resolve_cache_dir(explicit: Option<&std::path::Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    for var in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"] {
        if let Some(v) = env_nonempty(var) {
            return Ok(PathBuf::from(v));
        }
    }
    hf_home().map(|h| h.join("hub")).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "no cache folder: set --cache-dir, HF_HUB_CACHE, HF_HOME or {}",
            crate::platform::HOME_VAR
        ))
    })
}

/// The Hub endpoint for `explicit` or from `HF_ENDPOINT`, without a trailing `/`.
pub fn resolve_endpoint(explicit: Option<&str>) -> Result<String> {
    let raw = explicit
        .map(str::to_string)
        .or_else(|| env_nonempty("HF_ENDPOINT"))
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
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

/// The access token for `explicit` or from the environment / token file; `None` = anonymous.
/// With `HF_HUB_DISABLE_IMPLICIT_TOKEN` set, only an explicit token is sent.
pub fn resolve_token(explicit: Option<&str>) -> Option<String> {
    if let Some(t) = explicit {
        let t = t.trim();
        return (!t.is_empty()).then(|| t.to_string());
    }
    if env_flag("HF_HUB_DISABLE_IMPLICIT_TOKEN") {
        return None;
    }
    for var in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
        if let Some(v) = env_nonempty(var) {
            return Some(v.trim().to_string());
        }
    }
    let path = env_nonempty("HF_TOKEN_PATH")
        .map(PathBuf::from)
        .or_else(|| hf_home().map(|h| h.join("token")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_is_validated_and_trimmed() {
        assert_eq!(
            resolve_endpoint(Some("http://127.0.0.1:9/")).expect("ok"),
            "http://127.0.0.1:9"
        );
        assert!(resolve_endpoint(Some("ftp://x")).is_err());
        assert!(resolve_endpoint(Some("https://")).is_err());
    }

    #[test]
    fn explicit_options_win() {
        assert_eq!(resolve_token(Some(" abc ")), Some("abc".to_string()));
        assert_eq!(resolve_token(Some("")), None);
        let p = std::path::Path::new("/tmp/x");
        assert_eq!(resolve_cache_dir(Some(p)).expect("ok"), p);
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
