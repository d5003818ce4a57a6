//! Host name resolution that is bounded in time (the pull's DNS timeout, 10 s unless set) and
//! cancellable (the pull's [`Cancel`] is polled at least every 50 ms), on the calling thread, with
//! no thread that could outlive the call.
//!
//! Why not the system's `getaddrinfo` (what std and ureq use): it blocks its thread with glibc's
//! own schedule (5 s per try, per server, per search name, for A and AAAA: minutes when the
//! nameserver never answers) and cannot be interrupted; ureq's resolve timeout only abandons it on
//! a detached thread, which keeps running after the call. glibc's `getaddrinfo_a` runs lookups on
//! glibc's own helper threads, which outlive the call just the same, and `gai_cancel` cannot stop
//! a lookup already running (`EAI_NOTCANCELED`); it is also glibc-only and needs unsafe FFI.
//! So on Unix this module resolves by itself, reading the same files glibc reads:
//! - an IP literal needs no lookup;
//! - `/etc/hosts` answers first (`localhost` and names under it are loopback even without an entry);
//! - then DNS over UDP ([`client`], wire format in [`dns`]): A and AAAA queries sent together to
//!   the nameservers of `/etc/resolv.conf`, with its `search` domains and `ndots`, `timeout` and
//!   `attempts` options ([`config`]); random query ids on random ports, and an answer is taken only
//!   from the server asked, with the id and question asked; CNAME chains are followed within the
//!   answer.
//!
//! Limits, compared with glibc (stated so nobody is surprised): `/etc/nsswitch.conf` is not read
//! (the order is always hosts file, then DNS), so there is no mDNS (`.local`), NIS or LDAP; the
//! `RES_OPTIONS` and `LOCALDOMAIN` variables are not read (an embedded library reads no
//! environment); no search domain is derived from the host name; no EDNS0, and a truncated answer
//! is not retried over TCP: its whole records are used if they hold an address, otherwise the next
//! server is asked (answers to an address query fit 512 bytes unless a name has dozens of
//! addresses). Addresses are ordered IPv4 first, then IPv6, rather than by RFC 6724: a host
//! without working IPv6 would otherwise wait out a connect timeout before trying IPv4.
//!
//! Answers are cached for the pull (shared by all its connections): addresses for their TTL (at
//! most 5 min), failures for 20 s (nscd's negative TTL), so the quick retries of an unreachable
//! hub fail at once instead of waiting out the DNS timeout again.
//!
//! Windows: this module cannot read the system's nameservers with std alone, so without an
//! explicit [`ResolverConfig`] it uses std's lookup (`GetAddrInfoW`) on the calling thread, which
//! is neither bounded nor cancellable. The proper replacement is `GetAddrInfoExW` with a timeout
//! and a cancel handle (`GetAddrInfoExCancel`), which needs Windows bindings and unsafe code; not
//! done, and the fallback is unverified (never built or run on Windows). An explicit
//! [`ResolverConfig`] uses this module's own client there too.

mod client;
mod config;
mod dns;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::cancel::Cancel;
use client::Failure;
pub use config::ResolverConfig;

/// How long a failed lookup is remembered.
const NEGATIVE_TTL: Duration = Duration::from_secs(20);
/// Longest time an answer is reused, whatever its TTL.
const MAX_TTL: Duration = Duration::from_secs(300);

/// The name resolution of one pull: its configuration, timeout and cache, shared by every HTTP
/// client of the pull (each with its own [`Cancel`], see [`NameResolver`]).
#[derive(Debug)]
pub(crate) struct Resolution {
    /// `None`: the system's lookup (only where [`system_config`] cannot read the system's files).
    config: Option<ResolverConfig>,
    timeout: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Debug)]
struct Cached {
    result: Result<Vec<IpAddr>, ResolveError>,
    until: Instant,
}

impl Resolution {
    /// `explicit` or else the system's configuration (read now), with each lookup bounded by
    /// `timeout`.
    pub(crate) fn new(explicit: Option<&ResolverConfig>, timeout: Duration) -> Arc<Resolution> {
        Arc::new(Resolution {
            config: explicit.cloned().or_else(system_config),
            timeout,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The addresses of `host`, within `limit` (ureq's own time left for the request, if shorter
    /// than the DNS timeout).
    fn lookup(
        &self,
        host: &str,
        port: u16,
        limit: &NextTimeout,
        cancel: &Cancel,
    ) -> Result<Vec<IpAddr>, ureq::Error> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let Some(config) = &self.config else {
            return std_lookup(host, port);
        };
        let hosts_entry = config.hosts_entry(host);
        if !hosts_entry.is_empty() {
            return Ok(hosts_entry);
        }
        let key = host.to_ascii_lowercase();
        if let Some(hit) = self.cached(&key) {
            return hit.map_err(ResolveError::into_ureq);
        }
        let own_limit = self.timeout <= *limit.after;
        let started = Instant::now();
        let deadline = started + self.timeout.min(*limit.after);
        let (result, ttl) = match client::lookup(config, host, deadline, cancel) {
            Ok(found) => (Ok(found.addrs), found.ttl.min(MAX_TTL)),
            Err(Failure::Cancelled) => return Err(cancelled()),
            // The request's own deadline came first: ureq's timeout, not a verdict on the name.
            Err(Failure::NoAnswer { failure: None }) if !own_limit => {
                return Err(ureq::Error::Timeout(limit.reason));
            }
            Err(failure) => {
                let waited = started.elapsed();
                (
                    Err(ResolveError::new(host, config, failure, waited)),
                    NEGATIVE_TTL,
                )
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            let until = Instant::now() + ttl;
            cache.insert(
                key,
                Cached {
                    result: result.clone(),
                    until,
                },
            );
        }
        result.map_err(ResolveError::into_ureq)
    }

    fn cached(&self, key: &str) -> Option<Result<Vec<IpAddr>, ResolveError>> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(key)
            .filter(|c| c.until > Instant::now())
            .map(|c| c.result.clone())
    }
}

/// The ureq resolver of one HTTP client: the pull's [`Resolution`] and this client's [`Cancel`].
#[derive(Debug)]
pub(crate) struct NameResolver {
    pub(crate) resolution: Arc<Resolution>,
    pub(crate) cancel: Cancel,
}

impl Resolver for NameResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let bad = || ureq::Error::BadUri(format!("{uri}: no host or port"));
        let (scheme, authority) = uri.scheme().zip(uri.authority()).ok_or_else(bad)?;
        let host_port = DefaultResolver::host_and_port(scheme, authority).ok_or_else(bad)?;
        let (_, port) = host_port.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let ips = self
            .resolution
            .lookup(authority.host(), port, &timeout, &self.cancel)?;
        let mut out = self.empty();
        let family = config.ip_family();
        let wanted = family.keep_wanted(ips.into_iter().map(|ip| SocketAddr::new(ip, port)));
        for addr in wanted {
            if out.try_push(addr).is_err() {
                break;
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// A name that could not be resolved: why, for the error message, and whether it timed out.
#[derive(Debug, Clone)]
pub(crate) struct ResolveError {
    kind: io::ErrorKind,
    message: String,
}

impl ResolveError {
    fn new(host: &str, config: &ResolverConfig, failure: Failure, waited: Duration) -> Self {
        let servers: Vec<String> = config.nameservers.iter().map(|s| s.to_string()).collect();
        let servers = servers.join(", ");
        let (kind, message) = match failure {
            Failure::NotFound => (
                io::ErrorKind::NotFound,
                format!("{host}: no such host, or no address for it (nameserver {servers})"),
            ),
            Failure::NoAnswer { failure: Some(why) } => {
                (io::ErrorKind::Other, format!("{host}: {why}"))
            }
            Failure::NoAnswer { failure: None } | Failure::Cancelled => (
                io::ErrorKind::TimedOut,
                format!(
                    "{host}: no answer from nameserver {servers} within {:.1} s (DNS timeout)",
                    waited.as_secs_f64()
                ),
            ),
        };
        ResolveError { kind, message }
    }

    /// As ureq carries it: an I/O error wrapping this one, which [`is_resolve_error`] recognises.
    fn into_ureq(self) -> ureq::Error {
        ureq::Error::Io(io::Error::new(self.kind, self))
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ResolveError {}

/// Whether `e` is a failed name lookup of this module.
pub(crate) fn is_resolve_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<ResolveError>())
}

/// What a lookup interrupted by cancellation returns; the HTTP client sees the cancel state first.
fn cancelled() -> ureq::Error {
    ureq::Error::Io(io::Error::new(io::ErrorKind::Interrupted, "cancelled"))
}

/// This system's resolver configuration.
#[cfg(unix)]
fn system_config() -> Option<ResolverConfig> {
    Some(ResolverConfig::system())
}

/// Windows keeps its nameservers in the registry and per network adapter (`GetAdaptersAddresses`),
/// out of std's reach: `None` selects [`std_lookup`] (unverified, see the module doc).
#[cfg(not(unix))]
fn system_config() -> Option<ResolverConfig> {
    None
}

/// std's lookup on this thread: neither bounded nor cancellable. Used only where
/// [`system_config`] is `None` (Windows; see the module doc for `GetAddrInfoExW`).
fn std_lookup(host: &str, port: u16) -> Result<Vec<IpAddr>, ureq::Error> {
    let failed = |message: String| {
        ResolveError {
            kind: io::ErrorKind::NotFound,
            message,
        }
        .into_ureq()
    };
    match (host, port).to_socket_addrs() {
        Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
        Err(e) => Err(failed(format!("{host}: {e}"))),
    }
}

#[cfg(test)]
mod tests;
