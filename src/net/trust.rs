//! The trust check behind `resume-pull --check-trust` style diagnostics: can a URL be reached over
//! TLS with the roots a pull would trust? Kept apart from `tls` (configuration only), which the
//! HTTP client builds on, so that neither depends on the other both ways.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::net::http::{MAX_REDIRECTS, Origin, USER_AGENT, next_hop, redact, unreachable};
use crate::net::tls::{Trust, configure, error_message};

/// The outcome of [`check_trust`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TrustCheck {
    /// The URL that answered, after redirects (query string removed).
    pub url: String,
    /// Its HTTP status: any status proves the TLS connection was trusted.
    pub status: u16,
    /// The roots that were trusted.
    pub trust: Trust,
}

/// Checks that `url` can be reached over TLS with the roots a pull would trust (`ca_bundle` as
/// the `ca_bundle` option, then the environment; see the README section on TLS): one GET, following
/// redirects under the pull's rules (never from https to http), without reading the body.
///
/// Errors: [`Error::InvalidArgument`] for an unusable bundle or URL, [`Error::Network`] when the
/// connection fails (for a refused certificate, with a message saying so and how to fix it),
/// [`Error::InvalidResponse`] for a redirect the pull would refuse.
pub fn check_trust(url: &str, ca_bundle: Option<&Path>) -> Result<TrustCheck> {
    if Origin::of(url).is_none() {
        return Err(Error::InvalidArgument(format!(
            "{:?} is not an http(s) URL",
            redact(url)
        )));
    }
    let (tls, trust) = configure(ca_bundle, true)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    let mut current = url.to_string();
    for _hop in 0..=MAX_REDIRECTS {
        let resp = agent.get(&current).call().map_err(|e| Error::Network {
            url: redact(&current),
            file: None,
            message: error_message(&e, &trust),
            last_status: None,
            unreachable: unreachable(&e),
        })?;
        let status = resp.status().as_u16();
        if !(300..400).contains(&status) || status == 304 {
            return Ok(TrustCheck {
                url: redact(&current),
                status,
                trust,
            });
        }
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok());
        current = next_hop(&current, status, location)?;
    }
    Err(Error::InvalidResponse {
        url: redact(url),
        message: format!("more than {MAX_REDIRECTS} redirects"),
    })
}
