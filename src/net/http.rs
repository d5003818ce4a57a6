//! One HTTP GET with the Hub's redirect rules, on top of ureq.
//!
//! Redirects are followed here rather than by ureq because the rules matter for safety and for the
//! protocol: the `Authorization` header goes only to the endpoint's origin (never to the CDN host a
//! `/resolve` redirect points at), https is never downgraded to http, only http(s) targets are
//! followed, at most [`MAX_REDIRECTS`] hops, and the Hub's `X-Repo-Commit` / `X-Linked-*` headers
//! are read from the redirect response itself, where the Hub puts them.
//!
//! Reads are made cancellable: a transport wrapper waits for input in short slices and checks the
//! pull's [`Cancel`] between them, so a stalled connection cannot delay cancellation.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, NextTimeout, RustlsConnector,
    TcpConnector, Transport, time::Duration as UDuration,
};

use crate::cancel::{Cancel, POLL};
use crate::error::{Error, Result, Unreachable};
use crate::net::resolve::{NameResolver, Resolution, ResolverConfig};
use crate::net::throttle::Throttle;

/// What every request of ours (pulls and the trust check) says it is.
pub(crate) const USER_AGENT: &str = concat!("lemon-pull/", env!("CARGO_PKG_VERSION"));
/// Redirect hops followed per request (lemonade's limit).
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Largest JSON document the API may send; a bigger answer is treated as hostile.
pub(crate) const MAX_JSON_BYTES: u64 = 64 << 20;

/// Settings of the HTTP client of one pull.
#[derive(Debug, Clone)]
pub(crate) struct HttpConfig {
    pub endpoint: String,
    pub token: Option<String>,
    /// Also send the token as ModelScope's session cookie (`Cookie: m_session_id=<token>`), as
    /// lemonade does for ModelScope's older endpoints; same origin rule as `Authorization`.
    pub session_cookie: bool,
    pub connect_timeout: std::time::Duration,
    pub stall_timeout: std::time::Duration,
    /// Whole-request limit for metadata calls (file bodies have only the stall watchdog).
    pub api_timeout: std::time::Duration,
    /// Bandwidth cap over all connections, bytes per second.
    pub max_bytes_per_sec: Option<u64>,
    /// CA bundle trusted instead of the default roots; `None` = environment, then the system
    /// trust store (see [`crate::net::tls`]).
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Explicit HTTP proxy URL; `None` = direct, or the environment's when `read_environment`.
    pub proxy: Option<String>,
    /// Whether proxy and CA-bundle variables may be read (the caller asked for the environment).
    pub read_environment: bool,
    /// Limit on one host name lookup (see [`crate::net::resolve`]).
    pub dns_timeout: std::time::Duration,
    /// Name-resolution configuration; `None` = the system's.
    pub resolver: Option<ResolverConfig>,
}

/// Scheme, host and port of a URL: the unit of trust for the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    pub(crate) fn of(url: &str) -> Option<Origin> {
        let uri: ureq::http::Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        Some(Origin {
            port: uri.port_u16().unwrap_or(default_port),
            scheme,
            host,
        })
    }
}

/// The Hub's metadata headers, taken from the first response of a chain that carries them.
#[derive(Debug, Clone, Default)]
pub(crate) struct HubHeaders {
    pub repo_commit: Option<String>,
    pub linked_etag: Option<String>,
    pub linked_size: Option<u64>,
    pub etag: Option<String>,
}

/// A response after redirects, with the body still unread.
pub(crate) struct Response {
    pub status: u16,
    /// The URL that produced this response (after redirects).
    pub url: String,
    pub hub: HubHeaders,
    pub inner: ureq::http::Response<ureq::Body>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// The wait a `Retry-After` header asks for (seconds or an HTTP date), if any.
    pub(crate) fn retry_after(&self) -> Option<std::time::Duration> {
        self.header("retry-after")
            .and_then(|v| crate::net::retry::parse_retry_after(v, std::time::SystemTime::now()))
    }

    /// The `Content-Length` the server announced, if it is a number.
    pub(crate) fn content_length(&self) -> Option<u64> {
        content_length(self.inner.headers())
    }

    /// The body as a string, at most `limit` bytes (longer = [`Error::InvalidResponse`]). A body
    /// whose `Content-Length` announces more than `limit` is refused before a byte of it is read.
    pub(crate) fn text(&mut self, limit: u64) -> Result<String> {
        let url = self.url.clone();
        if let Some(len) = self.content_length()
            && len > limit
        {
            return Err(Error::InvalidResponse {
                url: redact(&url),
                message: format!("body of {len} bytes exceeds the limit of {limit} bytes"),
            });
        }
        self.inner
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_string()
            .map_err(|e| Error::InvalidResponse {
                url: redact(&url),
                message: format!("reading body: {e}"),
            })
    }
}

/// Which bytes of a file a GET asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// No `Range` header: the whole body.
    Whole,
    /// `Range: bytes=N-`.
    From(u64),
    /// `Range: bytes=A-B`, both ends included.
    Closed(u64, u64),
}

/// The HTTP client of one pull.
pub(crate) struct Http {
    agent: ureq::Agent,
    cfg: HttpConfig,
    endpoint_origin: Origin,
    /// Shared with the clients made by [`Http::for_connections`], so the cap covers them all.
    throttle: Option<Arc<Throttle>>,
    cancel: Cancel,
    /// Roots trusted for https, chosen once per pull and shared by [`Http::for_connections`].
    tls: ureq::tls::TlsConfig,
    /// Which roots those are, for error messages.
    trust: crate::net::tls::Trust,
    /// Name resolution and its cache, shared by [`Http::for_connections`].
    resolution: Arc<Resolution>,
}

impl Http {
    pub(crate) fn new(cfg: &HttpConfig, cancel: Cancel) -> Result<Http> {
        let throttle = cfg
            .max_bytes_per_sec
            .filter(|r| *r > 0)
            .map(|r| Arc::new(Throttle::new(r)));
        let (tls, trust) =
            crate::net::tls::configure(cfg.ca_bundle.as_deref(), cfg.read_environment)?;
        let resolution = Resolution::new(cfg.resolver.as_ref(), cfg.dns_timeout);
        Http::build(cfg, cancel, throttle, 1, (tls, trust), resolution)
    }

    /// A client for the `connections` parallel connections of one transfer: same settings and
    /// the same bandwidth cap as this one, idle connections kept for reuse by the next range
    /// request, and its own `cancel`, so the transfer can stop all its connections (even one
    /// blocked in a read) without cancelling the pull. Pass a `cancel` that also follows the pull's.
    pub(crate) fn for_connections(&self, connections: usize, cancel: Cancel) -> Result<Http> {
        Http::build(
            &self.cfg,
            cancel,
            self.throttle.clone(),
            connections,
            (self.tls.clone(), self.trust.clone()),
            self.resolution.clone(),
        )
    }

    fn build(
        cfg: &HttpConfig,
        cancel: Cancel,
        throttle: Option<Arc<Throttle>>,
        connections: usize,
        (tls, trust): (ureq::tls::TlsConfig, crate::net::tls::Trust),
        resolution: Arc<Resolution>,
    ) -> Result<Http> {
        let endpoint_origin = Origin::of(&cfg.endpoint).ok_or_else(|| {
            Error::InvalidArgument(format!("endpoint {:?} is not a valid URL", cfg.endpoint))
        })?;
        // ureq keeps 3 idle connections per host by default; parallel ranges want one each.
        let per_host = connections.max(3);
        // Every connection holds an input and an output buffer (over https, twice: TCP and TLS).
        // The connections of a parallel transfer batch their reads into larger writes anyway and
        // send only short requests: smaller buffers keep 16 of them within the memory budget.
        let (input, output) = if connections > 1 {
            (128 << 10, 16 << 10)
        } else {
            (256 << 10, 128 << 10)
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls.clone())
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(USER_AGENT)
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_per_read(Some(cfg.stall_timeout))
            .timeout_recv_response(Some(cfg.stall_timeout))
            .input_buffer_size(input)
            .output_buffer_size(output)
            .max_idle_connections_per_host(per_host)
            .max_idle_connections(per_host.max(10))
            .proxy(proxy(cfg)?)
            .build();
        let connector = ConnectProxyConnector::default()
            .chain(TcpConnector::default())
            .chain(CancelConnector {
                cancel: cancel.clone(),
            })
            .chain(RustlsConnector::default());
        // Our resolver, not ureq's: std's lookup can neither be bounded nor cancelled without a
        // thread that outlives the call (see `net::resolve`).
        let resolver = NameResolver {
            resolution: resolution.clone(),
            cancel: cancel.clone(),
        };
        let agent = ureq::Agent::with_parts(config, connector, resolver);
        Ok(Http {
            agent,
            cfg: cfg.clone(),
            endpoint_origin,
            throttle,
            cancel,
            tls,
            trust,
            resolution,
        })
    }

    /// Accounts for `n` body bytes just received on any connection and waits (cancellably) while
    /// the pull is over its bandwidth cap.
    pub(crate) fn throttle(&self, n: u64) -> Result<()> {
        match &self.throttle {
            Some(t) => t.consume(n, &self.cancel),
            None => Ok(()),
        }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.cfg.endpoint
    }

    /// GET `url`, following redirects under the Hub's rules. A `range` other than
    /// [`ByteRange::Whole`] sends `Range`; every request asks for an unencoded body. Any status
    /// is returned as `Ok`; transport failures are [`Error::Network`], broken redirect chains
    /// [`Error::InvalidResponse`].
    pub(crate) fn get(&self, url: &str, range: ByteRange) -> Result<Response> {
        self.get_with(url, range, None)
    }

    /// GET a metadata (API) URL: like [`Http::get`], with the whole request, body and redirects
    /// included, bounded by the API timeout so a server dripping bytes cannot hold a pull forever.
    pub(crate) fn get_api(&self, url: &str) -> Result<Response> {
        self.get_with(url, ByteRange::Whole, Some(self.cfg.api_timeout))
    }

    /// The headers of every request: the stored bytes (`identity`), the range, and the token, to
    /// the endpoint's origin only.
    fn with_headers(
        &self,
        mut req: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
        origin: &Origin,
        range: ByteRange,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        // Ranged or not, a compressed body would break hashing, Content-Length checks and resume
        // offsets.
        req = req.header("Accept-Encoding", "identity");
        match range {
            ByteRange::Whole => {}
            ByteRange::From(start) => req = req.header("Range", format!("bytes={start}-")),
            ByteRange::Closed(start, end) => {
                req = req.header("Range", format!("bytes={start}-{end}"));
            }
        }
        if *origin == self.endpoint_origin
            && let Some(t) = &self.cfg.token
        {
            req = req.header("Authorization", format!("Bearer {t}"));
            if self.cfg.session_cookie {
                req = req.header("Cookie", format!("m_session_id={t}"));
            }
        }
        req
    }

    fn get_with(
        &self,
        url: &str,
        range: ByteRange,
        whole: Option<std::time::Duration>,
    ) -> Result<Response> {
        let mut current = url.to_string();
        let mut hub = HubHeaders::default();
        // One deadline for the whole chain: each hop gets what is left of it.
        let deadline = whole.map(|limit| std::time::Instant::now() + limit);
        for _hop in 0..=MAX_REDIRECTS {
            self.cancel.check()?;
            let origin = Origin::of(&current).ok_or_else(|| Error::InvalidResponse {
                url: redact(&current),
                message: "not an http(s) URL".into(),
            })?;
            let mut req = self.agent.get(&current);
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(Error::Network {
                        url: redact(&current),
                        file: None,
                        message: "timed out following redirects".into(),
                        last_status: None,
                        unreachable: None,
                    });
                }
                // A metadata call gives up on a silent host sooner than a download does: the
                // caller may have its answer in the cache (see `pull`'s cache fallback).
                let connect = self.cfg.connect_timeout.min(API_CONNECT_TIMEOUT);
                req = req
                    .config()
                    .timeout_global(Some(left))
                    .timeout_connect(Some(connect))
                    .build();
            }
            let resp = self
                .with_headers(req, &origin, range)
                .call()
                .map_err(|e| self.transport_error(&current, e))?;
            let status = resp.status().as_u16();
            if hub.repo_commit.is_none() {
                hub = hub_headers(&resp);
            }
            if !(300..400).contains(&status) || status == 304 {
                return Ok(Response {
                    status,
                    url: current,
                    hub,
                    inner: resp,
                });
            }
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            drain_small_body(resp);
            current = next_hop(&current, status, location.as_deref())?;
        }
        Err(Error::InvalidResponse {
            url: redact(url),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn transport_error(&self, url: &str, e: ureq::Error) -> Error {
        if self.cancel.is_cancelled() {
            return Error::Cancelled;
        }
        let message = crate::net::tls::error_message(&e, &self.trust);
        // A refused certificate is a trust configuration problem, not a transient failure: fail
        // at once (as a response that cannot be trusted) instead of retrying for minutes.
        if crate::net::tls::is_certificate_error(&e) {
            return Error::InvalidResponse {
                url: redact(url),
                message,
            };
        }
        Error::Network {
            url: redact(url),
            file: None,
            message,
            last_status: None,
            unreachable: unreachable(&e),
        }
    }
}

/// Whether `e` means the host could not be reached at all, and why.
pub(crate) fn unreachable(e: &ureq::Error) -> Option<Unreachable> {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::HostNotFound => Some(Unreachable::NameResolution),
        ureq::Error::Timeout(ureq::Timeout::Resolve) => Some(Unreachable::NameResolution),
        ureq::Error::Timeout(ureq::Timeout::Connect) => Some(Unreachable::ConnectTimeout),
        ureq::Error::ConnectionFailed => Some(Unreachable::Refused),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => Some(Unreachable::TlsHandshake),
        // A lookup of `net::resolve` that found nothing or got no answer in time.
        ureq::Error::Io(io) if crate::net::resolve::is_resolve_error(io) => {
            Some(Unreachable::NameResolution)
        }
        ureq::Error::Io(io) => match io.kind() {
            K::ConnectionRefused
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable => Some(Unreachable::Refused),
            _ => None,
        },
        _ => None,
    }
}

/// Connect timeout of a metadata (API) request at most.
const API_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Largest redirect body read to its end so that its connection can be reused.
const MAX_DRAINED_BODY: u64 = 64 << 10;

fn content_length(headers: &ureq::http::HeaderMap) -> Option<u64> {
    headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Reads a short body to its end, which is what returns its connection to the pool (ureq reuses
/// only fully read connections); a long or unannounced body is dropped with its connection.
fn drain_small_body(resp: ureq::http::Response<ureq::Body>) {
    let announced = content_length(resp.headers());
    if announced.is_some_and(|n| n <= MAX_DRAINED_BODY) {
        let _ = resp
            .into_body()
            .with_config()
            .limit(MAX_DRAINED_BODY)
            .read_to_vec();
    }
}

/// Where a redirect answer of `current` leads, under the Hub's rules: a `Location` is required; it
/// must resolve to an http(s) URL; and https is never downgraded to http. (Plain http is thus only
/// ever followed from plain http, i.e. when the endpoint itself is http.)
pub(crate) fn next_hop(current: &str, status: u16, location: Option<&str>) -> Result<String> {
    let refuse = |message: String| Error::InvalidResponse {
        url: redact(current),
        message,
    };
    let location = location
        .ok_or_else(|| refuse(format!("HTTP {status} redirect without a Location header")))?;
    let from = Origin::of(current).ok_or_else(|| refuse("not an http(s) URL".into()))?;
    let shown = redact(location);
    let unsupported = || refuse(format!("redirect to unsupported location {shown:?}"));
    let next = resolve_location(current, location).ok_or_else(unsupported)?;
    let to = Origin::of(&next).ok_or_else(unsupported)?;
    if from.scheme == "https" && to.scheme != "https" {
        return Err(refuse(format!(
            "refusing redirect from https to {}",
            redact(&next)
        )));
    }
    Ok(next)
}

/// Maps an error raised while reading a body: cancellation wins, ENOSPC cannot happen here, and
/// everything else is a network error to retry.
pub(crate) fn body_error(cancel: &Cancel, url: &str, e: io::Error) -> Error {
    if cancel.is_cancelled() {
        return Error::Cancelled;
    }
    Error::Network {
        url: redact(url),
        file: None,
        message: e.to_string(),
        last_status: None,
        unreachable: None,
    }
}

fn hub_headers(resp: &ureq::http::Response<ureq::Body>) -> HubHeaders {
    let get = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    HubHeaders {
        repo_commit: get("x-repo-commit").map(str::to_string),
        linked_etag: get("x-linked-etag").map(normalize_etag),
        linked_size: get("x-linked-size").and_then(|s| s.parse().ok()),
        etag: get("etag").map(normalize_etag),
    }
}

/// Strips `W/` and quotes from an ETag.
pub(crate) fn normalize_etag(raw: &str) -> String {
    raw.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// Resolves a `Location` header against the URL that sent it. `None` for non-http(s) schemes.
pub(crate) fn resolve_location(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    // Fragments are never sent; whitespace or control characters make no valid URL.
    let location = location.split('#').next().unwrap_or("");
    if location.is_empty() || location.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return None;
    }
    if let Some(scheme) = scheme_of(location) {
        // An absolute URL: only http(s), and only with an authority (`http:foo` is not one).
        let s = scheme.to_ascii_lowercase();
        let rest = &location[scheme.len() + 1..];
        return ((s == "http" || s == "https") && rest.starts_with("//") && rest.len() > 2)
            .then(|| location.to_string());
    }
    let uri: ureq::http::Uri = base.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = uri.path();
    if let Some(query) = location.strip_prefix('?') {
        return Some(format!("{scheme}://{authority}{path}?{query}"));
    }
    let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
    Some(format!("{scheme}://{authority}{dir}{location}"))
}

/// The scheme of an absolute URL (RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`
/// before any `/`, `?` or `#`); `None` for a relative reference.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// A URL without its query string, which may hold signatures; safe for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

/// The proxy of `cfg`: the explicit one, else the environment's when it may be read, else none.
/// (ureq's default would read the environment on its own.)
fn proxy(cfg: &HttpConfig) -> Result<Option<ureq::Proxy>> {
    match &cfg.proxy {
        Some(url) => ureq::Proxy::new(url)
            .map(Some)
            .map_err(|e| Error::InvalidArgument(format!("proxy {:?}: {e}", redact_userinfo(url)))),
        None if cfg.read_environment => Ok(ureq::Proxy::try_from_env()),
        None => Ok(None),
    }
}

/// `url` without a `user:password@` part, for messages.
fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Wraps each connection's transport in a [`CancelTransport`].
#[derive(Debug)]
struct CancelConnector {
    cancel: Cancel,
}

impl<In: Transport> Connector<In> for CancelConnector {
    type Out = CancelTransport<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> std::result::Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| CancelTransport {
            inner,
            cancel: self.cancel.clone(),
        }))
    }
}

/// Waits for input in slices of [`POLL`], so a stalled read notices cancellation quickly while the
/// overall read timeout (the stall watchdog) still applies as configured.
#[derive(Debug)]
struct CancelTransport<T> {
    inner: T,
    cancel: Cancel,
}

impl<T: Transport> Transport for CancelTransport<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> std::result::Result<(), ureq::Error> {
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> std::result::Result<bool, ureq::Error> {
        let whole = timeout.for_read();
        let limit = *whole.after;
        let started = Instant::now();
        loop {
            if self.cancel.is_cancelled() {
                return Err(ureq::Error::Io(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "cancelled",
                )));
            }
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(ureq::Error::Timeout(whole.reason));
            }
            let slice = NextTimeout {
                after: UDuration::Exact(left.min(POLL)),
                reason: whole.reason,
                per_read: None,
                per_write: timeout.per_write,
            };
            match self.inner.await_input(slice) {
                Err(ureq::Error::Timeout(_)) => continue,
                other => return other,
            }
        }
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_and_hostile_schemes_are_refused() {
        let base = "https://hub.example/org/m/resolve/abc/dir/f.bin";
        assert_eq!(
            resolve_location(base, "/api/resolve-cache/x?y=1").as_deref(),
            Some("https://hub.example/api/resolve-cache/x?y=1")
        );
        assert_eq!(
            resolve_location(base, "https://cdn.example/a?b").as_deref(),
            Some("https://cdn.example/a?b")
        );
        assert_eq!(
            resolve_location(base, "g.bin").as_deref(),
            Some("https://hub.example/org/m/resolve/abc/dir/g.bin")
        );
        assert_eq!(
            resolve_location(base, "//cdn.example/z").as_deref(),
            Some("https://cdn.example/z")
        );
        assert_eq!(resolve_location(base, "file:///etc/passwd"), None);
        assert_eq!(resolve_location(base, "ftp://x/y"), None);
        assert_eq!(resolve_location(base, "javascript:alert(1)"), None);
    }

    #[test]
    fn origins_compare_scheme_host_port() {
        let a = Origin::of("http://127.0.0.1:8080/x").expect("origin");
        let b = Origin::of("http://localhost:8080/x").expect("origin");
        assert_ne!(a, b);
        assert_eq!(
            Origin::of("https://HF.co/a"),
            Origin::of("https://hf.co:443/b")
        );
        assert_eq!(Origin::of("file:///x"), None);
    }

    #[test]
    fn relative_references_and_broken_locations() {
        let base = "https://hub.example/org/m/resolve/abc/dir/f.bin";
        // A scheme-looking word after a `/`, `?` or in a query is still a relative reference.
        assert_eq!(
            resolve_location(base, "g.bin?u=http://x").as_deref(),
            Some("https://hub.example/org/m/resolve/abc/dir/g.bin?u=http://x")
        );
        assert_eq!(
            resolve_location(base, "?etag=%22a%22").as_deref(),
            Some("https://hub.example/org/m/resolve/abc/dir/f.bin?etag=%22a%22")
        );
        assert_eq!(
            resolve_location(base, "/x#frag").as_deref(),
            Some("https://hub.example/x")
        );
        for broken in [
            "",
            "   ",
            "http://",
            "http:/no-authority",
            "https:relative",
            "/with space",
            "/tab\there",
            "/nl\nhere",
            "FILE:///etc/passwd",
            "data:text/plain,x",
            "g.bin:x",
        ] {
            assert_eq!(resolve_location(base, broken), None, "{broken:?}");
        }
    }

    #[test]
    fn redirects_never_downgrade_https_to_http() {
        let hop = |from: &str, to: &str| next_hop(from, 302, Some(to));
        // Refused whatever the host, port or letter case of the target.
        for to in [
            "http://hub.example/x",
            "HTTP://cdn.example/x",
            "http://cdn.example:443/x",
            "http://127.0.0.1:8080/x",
        ] {
            let err = hop("https://hub.example/a", to).expect_err(to);
            assert_eq!(err.status(), crate::error::Status::InvalidResponse);
            assert!(
                err.to_string().contains("refusing redirect from https"),
                "{err}"
            );
        }
        // Within https: relative, protocol-relative, another host: allowed, and still https.
        assert_eq!(
            hop("https://hub.example/a/b", "/c").expect("relative"),
            "https://hub.example/c"
        );
        assert_eq!(
            hop("https://hub.example/a", "//cdn.example/x").expect("protocol-relative"),
            "https://cdn.example/x"
        );
        assert_eq!(
            hop("https://hub.example/a", "https://cdn.example/x?s=1").expect("cdn"),
            "https://cdn.example/x?s=1"
        );
        // From a plain-http endpoint both schemes are fine...
        assert!(hop("http://127.0.0.1:1/r", "http://localhost:1/s").is_ok());
        let first = hop("http://127.0.0.1:1/r", "https://cdn.example/s").expect("upgrade");
        // ...but once a chain reached https it never goes back.
        let err = hop(&first, "http://cdn.example/t").expect_err("downgrade mid-chain");
        assert!(
            err.to_string().contains("refusing redirect from https"),
            "{err}"
        );
        // A redirect without a Location, or to a non-http scheme.
        assert!(next_hop("https://hub.example/a", 302, None).is_err());
        assert!(hop("https://hub.example/a", "ftp://hub.example/x").is_err());
        assert!(hop("https://hub.example/a", "file:///etc/passwd").is_err());
    }

    #[test]
    fn etags_and_redaction() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(
            redact("http://h/cdn/x?X-Amz-Signature=s"),
            "http://h/cdn/x?…"
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn location() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-zA-Z+.-]{0,8}:[/]{0,3}[a-z0-9.:@/?#%-]{0,30}",
            "(https?|HTTPS?|file|ftp|data|javascript)://[a-z0-9.:@-]{0,20}(/[a-z0-9?#%=&-]{0,20})?",
            "[/?#.]{0,3}[a-z0-9/?#=&%:.-]{0,30}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a server puts in `Location`, the next hop is an http(s) URL or a typed
        /// error, never a panic, and never a step down from https.
        #[test]
        fn redirect_targets_are_http_and_never_downgrade(
            https in any::<bool>(),
            loc in location(),
        ) {
            let base = if https {
                "https://hub.example/org/m/resolve/abc/f.bin"
            } else {
                "http://127.0.0.1:8080/org/m/resolve/abc/f.bin"
            };
            if let Ok(next) = next_hop(base, 302, Some(&loc)) {
                let origin = Origin::of(&next);
                prop_assert!(origin.is_some(), "{next}");
                let origin = origin.expect("checked");
                prop_assert!(origin.scheme == "https" || (!https && origin.scheme == "http"));
            }
        }
    }
}
