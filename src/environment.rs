//! The environment layer: fills what a caller left unset from the variables huggingface_hub
//! reads. A library linked into a server must do only what its caller asks, so nothing else in
//! the crate reads an environment variable or a token file: a pull reads them only when
//! [`PullOptions::read_environment`] is set (the CLI sets it; the C ABI's
//! `LEMON_PULL_FLAG_READ_ENVIRONMENT`), and then only here, once, at the start of the call.
//!
//! Precedence, highest first — cache root: option > `HF_HUB_CACHE` > `HUGGINGFACE_HUB_CACHE` >
//! `$HF_HOME/hub` > `$XDG_CACHE_HOME/huggingface/hub` > `~/.cache/huggingface/hub`; endpoint:
//! option > `HF_ENDPOINT` > `https://huggingface.co`; token: option > `HF_TOKEN` >
//! `HUGGING_FACE_HUB_TOKEN` > the file at `HF_TOKEN_PATH` > `$HF_HOME/token` (default
//! `~/.cache/huggingface/token`), where `HF_HUB_DISABLE_IMPLICIT_TOKEN=1` turns off everything
//! after the option, as in huggingface_hub; stall timeout: option > `HF_HUB_DOWNLOAD_TIMEOUT` >
//! 60 s; offline: option or `HF_HUB_OFFLINE=1`; CA bundle: option > `SSL_CERT_FILE` >
//! `REQUESTS_CA_BUNDLE` > `CURL_CA_BUNDLE` > the system store; proxy: option > `ALL_PROXY` >
//! `HTTPS_PROXY` > `HTTP_PROXY` (either case), minus the hosts in `NO_PROXY`. Boolean variables are
//! true when set to `1`, `true`, `yes` or `on` (any case).
//!
//! A ModelScope pull reads lemonade's variables instead for endpoint and token: endpoint: option >
//! `MODELSCOPE_ENDPOINT` > `https://modelscope.cn`; token: option > `MODELSCOPE_API_TOKEN` >
//! `MODELSCOPE_ACCESS_TOKEN` (a Hugging Face token is never sent to ModelScope). The cache root
//! and the rest are shared, as in lemonade.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::options::{DEFAULT_STALL_TIMEOUT, PullOptions};
use crate::registry::Registry;

/// `opts` with every unset field that the environment can give filled from it.
pub(crate) fn apply(opts: &PullOptions) -> PullOptions {
    let mut o = opts.clone();
    if o.cache_dir.is_none() {
        o.cache_dir = cache_dir();
    }
    match o.registry {
        Registry::HuggingFace => {
            if o.endpoint.is_none() {
                o.endpoint = nonempty("HF_ENDPOINT");
            }
            if o.token.is_none() {
                o.token = token();
            }
        }
        Registry::ModelScope => {
            if o.endpoint.is_none() {
                o.endpoint = nonempty("MODELSCOPE_ENDPOINT");
            }
            if o.token.is_none() {
                o.token = ["MODELSCOPE_API_TOKEN", "MODELSCOPE_ACCESS_TOKEN"]
                    .into_iter()
                    .find_map(nonempty)
                    .map(|t| t.trim().to_string());
            }
        }
    }
    o.offline |= flag("HF_HUB_OFFLINE");
    if o.stall_timeout == DEFAULT_STALL_TIMEOUT {
        o.stall_timeout = download_timeout().unwrap_or(DEFAULT_STALL_TIMEOUT);
    }
    o
}

/// The cache root for `explicit`, else from the environment (for callers that, like the CLI's
/// `status` and `gc`, name a cache the way huggingface_hub does).
pub fn resolve_cache_dir(explicit: Option<&std::path::Path>) -> Result<PathBuf> {
    explicit
        .map(PathBuf::from)
        .or_else(cache_dir)
        .ok_or_else(|| {
            Error::InvalidArgument(
                "no cache folder: set --cache-dir, HF_HUB_CACHE, HF_HOME or HOME".to_string(),
            )
        })
}

fn cache_dir() -> Option<PathBuf> {
    ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"]
        .into_iter()
        .find_map(nonempty)
        .map(PathBuf::from)
        .or_else(|| hf_home().map(|h| h.join("hub")))
}

/// huggingface_hub's token lookup (explicit tokens are handled by the caller).
fn token() -> Option<String> {
    if flag("HF_HUB_DISABLE_IMPLICIT_TOKEN") {
        return None;
    }
    for var in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
        if let Some(v) = nonempty(var) {
            return Some(v.trim().to_string());
        }
    }
    let path = nonempty("HF_TOKEN_PATH")
        .map(PathBuf::from)
        .or_else(|| hf_home().map(|h| h.join("token")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// `HF_HUB_DOWNLOAD_TIMEOUT` (seconds, may be fractional), huggingface_hub's read timeout for
/// downloads; here it sets the default stall watchdog.
fn download_timeout() -> Option<Duration> {
    let secs: f64 = nonempty("HF_HUB_DOWNLOAD_TIMEOUT")?.trim().parse().ok()?;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// A boolean environment variable, read as huggingface_hub reads them.
fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

fn nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn home_dir() -> Option<PathBuf> {
    nonempty(crate::platform::HOME_VAR).map(PathBuf::from)
}

fn hf_home() -> Option<PathBuf> {
    if let Some(h) = nonempty("HF_HOME") {
        return Some(PathBuf::from(h));
    }
    if let Some(x) = nonempty("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("huggingface"));
    }
    home_dir().map(|h| h.join(".cache").join("huggingface"))
}
