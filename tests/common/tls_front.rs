//! A TLS front end for the mock hub: terminates https with a certificate from a CA generated at
//! test time, and forwards each request in plain HTTP to the mock.
//!
//! It answers on `https://127.0.0.1:PORT` (the Hub) and `https://localhost:PORT` (the CDN), with
//! one certificate valid for both names. The mock routes by `Host` (`localhost:<its port>` is the
//! CDN), so the front end rewrites the port of `Host` to the mock's own, keeping the name. One
//! request per connection: it asks the mock to close after the answer and closes in turn.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const MAX_HEAD: usize = 64 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A test certificate authority and a server certificate it issued for `127.0.0.1` and
/// `localhost`.
pub struct TestPki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
}

impl TestPki {
    pub fn generate() -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "lemon-pull test inspection CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&key, &issuer).expect("server certificate");
        TestPki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            server_chain: vec![server_cert.der().clone()],
            server_key: key.serialize_der(),
        }
    }

    /// Writes the CA certificate as a PEM bundle into `dir`.
    pub fn write_ca_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write CA bundle");
        path
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), key)
            .expect("server certificate and key");
        Arc::new(config)
    }
}

/// A running TLS front end. Stops listening when dropped.
pub struct TlsFront {
    port: u16,
    pki: Arc<TestPki>,
    stop: Arc<AtomicBool>,
    listeners: Vec<(SocketAddr, JoinHandle<()>)>,
}

impl TlsFront {
    /// Starts on a random port with a freshly generated CA, forwarding to the plain-HTTP server
    /// on `127.0.0.1:upstream_port` (a `MockHub`'s `port()`).
    pub fn start(upstream_port: u16) -> TlsFront {
        Self::start_with(Arc::new(TestPki::generate()), upstream_port)
    }

    /// Starts with the given certificates.
    pub fn start_with(pki: Arc<TestPki>, upstream_port: u16) -> TlsFront {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
        let port = v4.local_addr().expect("addr").port();
        // `localhost` may resolve to ::1 first; listen there too when the port is free.
        let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, port)).ok();
        let config = pki.server_config();
        let stop = Arc::new(AtomicBool::new(false));
        let mut listeners = Vec::new();
        for listener in std::iter::once(v4).chain(v6) {
            let addr = listener.local_addr().expect("addr");
            let (config, stop) = (Arc::clone(&config), Arc::clone(&stop));
            let handle = thread::Builder::new()
                .name("tls-front-accept".into())
                .spawn(move || {
                    for client in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        let config = Arc::clone(&config);
                        thread::spawn(move || {
                            let _ = serve(client, config, port, upstream_port);
                        });
                    }
                })
                .expect("spawn accept thread");
            listeners.push((addr, handle));
        }
        TlsFront {
            port,
            pki,
            stop,
            listeners,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Hub endpoint through TLS, `https://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CDN base through TLS, `https://localhost:PORT` (for `MockHub::set_cdn_base`).
    pub fn cdn_base(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    pub fn pki(&self) -> &TestPki {
        &self.pki
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (addr, handle) in self.listeners.drain(..) {
            // Wake the blocking accept; join only if the wake-up got through.
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                let _ = handle.join();
            }
        }
    }
}

/// One connection: TLS handshake, one request head (with `Host` pointed at the upstream and
/// `Connection: close`), then the upstream's answer verbatim until it closes.
fn serve(
    client: TcpStream,
    config: Arc<rustls::ServerConfig>,
    front_port: u16,
    upstream_port: u16,
) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, client);
    // The first read drives the handshake; a client that refuses our certificate ends it here.
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let mut chunk = [0u8; 4096];
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(io::Error::other)?;
    let head = rewrite_head(head, front_port, upstream_port);
    let mut upstream = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port))?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.write_all(head.as_bytes())?;
    // Anything after the head (a request body) goes along as is.
    upstream.write_all(&buf[head_end..])?;
    io::copy(&mut upstream, &mut tls)?;
    tls.conn.send_close_notify();
    tls.flush()?;
    let _ = tls.sock.shutdown(Shutdown::Write);
    Ok(())
}

/// The head with `Host`'s port replaced by the upstream's and `Connection: close`.
fn rewrite_head(head: &str, front_port: u16, upstream_port: u16) -> String {
    let mut out = String::with_capacity(head.len() + 32);
    let mut lines = head.trim_end_matches("\r\n").split("\r\n");
    if let Some(request_line) = lines.next() {
        out.push_str(request_line);
        out.push_str("\r\n");
    }
    for line in lines {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection") {
            continue;
        }
        if name.eq_ignore_ascii_case("host") {
            let value = line[name.len() + 1..].trim();
            let host = value
                .strip_suffix(&format!(":{front_port}"))
                .unwrap_or(value);
            out.push_str(&format!("Host: {host}:{upstream_port}\r\n"));
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
