//! Which certificate authorities a pull trusts for https, for networks whose proxy inspects TLS.
//!
//! A corporate TLS-inspection proxy re-signs every https answer with the organisation's own root
//! certificate. That root is in the operating system's trust store (IT installs it there) and
//! often in a PEM bundle the user's other tools already point at, but never in the Mozilla roots
//! compiled into a program. So the roots are chosen in this order; the first that applies wins:
//!
//! 1. **An explicit CA bundle**: the `ca_bundle` pull option (`--ca-bundle` on the command line,
//!    `ca_bundle` in the C ABI).
//! 2. **`SSL_CERT_FILE`** (OpenSSL, curl, Python's `ssl` and httpx).
//! 3. **`REQUESTS_CA_BUNDLE`** (Python requests).
//! 4. **`CURL_CA_BUNDLE`** (curl, and requests as a fallback).
//! 5. **The operating system's trust store**, through rustls-platform-verifier: the Windows
//!    certificate store, the macOS keychain, and on Linux and the BSDs the distribution's CA file
//!    or folder (`/etc/ssl/certs/ca-certificates.crt`, `/etc/pki/tls/certs/ca-bundle.crt`, ...;
//!    a non-empty `SSL_CERT_DIR` replaces them there). Roots installed by IT are trusted.
//! 6. **Mozilla's roots compiled into the library** (webpki-roots), only when the system store
//!    cannot be used: in practice a Linux system or container without any CA file (no
//!    `ca-certificates` package), where step 5 would trust nothing at all.
//!
//! A bundle (steps 1-4) **replaces** the default roots, as it does for curl and requests: it must
//! hold every root needed, the proxy's and, for hosts the proxy does not inspect, the public ones
//! (a copy of the system bundle with the corporate root appended is the usual answer). To add a
//! root to the defaults instead, install it in the system trust store; step 5 then trusts it.
//!
//! A bundle is a PEM file with any number of `-----BEGIN CERTIFICATE-----` blocks (other blocks,
//! such as keys, are ignored), a single DER certificate (a `.cer` exported by Windows), or a folder
//! of such files (OpenSSL's hashed `certs/` layout). Environment values that are empty or blank
//! count as unset. A bundle that cannot be read, or holds no usable certificate, fails the pull
//! with an invalid-argument error naming the file and where its name came from; there is never a
//! silent fallback to other roots, and a broken `SSL_CERT_FILE` is not skipped for a working
//! `REQUESTS_CA_BUNDLE`.
//!
//! When a server's certificate is refused, the error says that it is not trusted, which roots
//! were in use, and how to add the proxy's root. [`check_trust`] makes one request with this
//! configuration, as a diagnostic.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::error::{Error, Result};

/// Environment variables that name a CA bundle, in order of precedence.
pub const BUNDLE_VARIABLES: [&str; 3] = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"];

/// Largest bundle file read; the system bundles are a few hundred KiB.
const MAX_BUNDLE_BYTES: u64 = 64 << 20;

/// Where the name of a CA bundle came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleSource {
    /// The `ca_bundle` pull option.
    Option,
    /// This environment variable.
    Env(&'static str),
}

impl fmt::Display for BundleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleSource::Option => write!(f, "the ca_bundle option"),
            BundleSource::Env(var) => write!(f, "{var}"),
        }
    }
}

/// The roots a TLS configuration trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// Only the certificates of a CA bundle.
    Bundle {
        /// The bundle file or folder.
        path: PathBuf,
        /// Where its name came from.
        source: BundleSource,
        /// Usable certificates it holds.
        certificates: usize,
    },
    /// The operating system's trust store.
    System,
    /// Mozilla's roots compiled into the library, because the system store cannot be used.
    Mozilla {
        /// Why the system store cannot be used.
        reason: String,
    },
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::Bundle {
                path,
                source,
                certificates,
            } => write!(
                f,
                "the {certificates} certificate(s) of CA bundle {} (from {source})",
                path.display()
            ),
            Trust::System => write!(f, "the system trust store"),
            Trust::Mozilla { reason } => write!(
                f,
                "the Mozilla roots built into lemon-pull (the system trust store is unusable: {reason})"
            ),
        }
    }
}

/// Like [`tls_config`], and also which roots were chosen (for error messages and diagnostics).
/// `read_environment` lets `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` name a
/// bundle when `ca_bundle` is `None`.
pub(crate) fn configure(
    ca_bundle: Option<&Path>,
    read_environment: bool,
) -> Result<(TlsConfig, Trust)> {
    let from_env = |name: &str| std::env::var_os(name);
    let nothing = |_: &str| None;
    let env: &dyn Fn(&str) -> Option<OsString> = if read_environment {
        &from_env
    } else {
        &nothing
    };
    configure_with(ca_bundle, env, &system_store_usable)
}

/// [`configure`] with the environment and the system-store check injected (for tests).
fn configure_with(
    ca_bundle: Option<&Path>,
    env: &dyn Fn(&str) -> Option<OsString>,
    system_store: &dyn Fn() -> std::result::Result<(), String>,
) -> Result<(TlsConfig, Trust)> {
    let (roots, trust) = match choose_bundle(ca_bundle, env) {
        Some((path, source)) => {
            let certs = load_bundle(&path, source)?;
            let trust = Trust::Bundle {
                path,
                source,
                certificates: certs.len(),
            };
            (RootCerts::Specific(Arc::new(certs)), trust)
        }
        None => match system_store() {
            Ok(()) => (RootCerts::PlatformVerifier, Trust::System),
            Err(reason) => (RootCerts::WebPki, Trust::Mozilla { reason }),
        },
    };
    Ok((TlsConfig::builder().root_certs(roots).build(), trust))
}

/// The CA bundle to use, if any, and where its name came from: the explicit one, else the first
/// bundle variable that is set to something other than blanks.
fn choose_bundle(
    ca_bundle: Option<&Path>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Option<(PathBuf, BundleSource)> {
    if let Some(path) = ca_bundle.filter(|p| !is_blank(p.as_os_str())) {
        return Some((path.to_path_buf(), BundleSource::Option));
    }
    BUNDLE_VARIABLES.iter().find_map(|&var| {
        env(var)
            .filter(|v| !is_blank(v))
            .map(|v| (PathBuf::from(v), BundleSource::Env(var)))
    })
}

fn is_blank(v: &std::ffi::OsStr) -> bool {
    v.to_str().is_some_and(|s| s.trim().is_empty())
}

/// The usable certificates of the bundle at `path` (a file, or a folder of files); an
/// [`Error::InvalidArgument`] naming it when it cannot be read or holds none.
fn load_bundle(path: &Path, source: BundleSource) -> Result<Vec<Certificate<'static>>> {
    let invalid = |what: String| {
        Error::InvalidArgument(format!(
            "CA bundle {} (from {source}) {what}",
            path.display()
        ))
    };
    let meta = std::fs::metadata(path).map_err(|e| invalid(format!("cannot be read: {e}")))?;
    let mut found = Found::default();
    if meta.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| invalid(format!("cannot be read: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect::<Vec<_>>();
        let mut files = entries
            .into_iter()
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
            .collect::<Vec<_>>();
        files.sort();
        // In a folder, files that are not certificates (READMEs, CRLs) are skipped.
        for file in files {
            if let Ok(bytes) = read_limited(&file) {
                found.add(&bytes);
            }
        }
    } else if meta.is_file() {
        let bytes = read_limited(path).map_err(|e| invalid(format!("cannot be read: {e}")))?;
        found.add(&bytes);
    } else {
        return Err(invalid("is neither a file nor a folder".into()));
    }
    if found.certs.is_empty() {
        let detail = match found.rejected {
            0 => String::new(),
            n => format!("; {n} certificate block(s) could not be parsed"),
        };
        return Err(invalid(format!(
            "holds no usable certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks \
             or one DER certificate){detail}"
        )));
    }
    Ok(found.certs)
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_BUNDLE_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// Certificates collected from bundle files.
#[derive(Default)]
struct Found {
    certs: Vec<Certificate<'static>>,
    /// Certificate blocks that are malformed or not usable as a trust anchor.
    rejected: usize,
}

impl Found {
    fn add(&mut self, bytes: &[u8]) {
        let mut pem_items = 0;
        for item in ureq::tls::parse_pem(bytes) {
            pem_items += 1;
            match item {
                Ok(PemItem::Certificate(cert)) => self.keep(cert),
                Ok(_) => {}
                Err(_) => {
                    // Broken base64 or an unterminated block: nothing after it can be trusted.
                    self.rejected += 1;
                    break;
                }
            }
        }
        // No PEM at all: maybe one DER certificate (an ASN.1 SEQUENCE).
        if pem_items == 0 && bytes.first() == Some(&0x30) {
            self.keep(Certificate::from_der(bytes).to_owned());
        }
    }

    /// Keeps `cert` if rustls can use it as a root (ureq would silently drop it otherwise).
    fn keep(&mut self, cert: Certificate<'static>) {
        let der = rustls::pki_types::CertificateDer::from(cert.der());
        if rustls::RootCertStore::empty().add(der).is_ok() {
            self.certs.push(cert);
        } else {
            self.rejected += 1;
        }
    }
}

/// Whether the platform verifier can be built here: the same construction ureq performs on its
/// first https connection, which fails only when the system offers no root at all (a Linux
/// system without CA files). [`configure`] falls back to Mozilla's roots then, instead of
/// trusting nothing. A success is remembered for the process (building the verifier parses the
/// system's CA files, some milliseconds); a failure is checked again on the next call.
fn system_store_usable() -> std::result::Result<(), String> {
    static USABLE: OnceLock<()> = OnceLock::new();
    if USABLE.get().is_some() {
        return Ok(());
    }
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    rustls_platform_verifier::Verifier::new(provider).map_err(|e| e.to_string())?;
    let _ = USABLE.set(());
    Ok(())
}

/// The rustls error behind a ureq error, if any (rustls reports handshake failures through
/// `std::io::Error`, which ureq keeps as [`ureq::Error::Io`]).
fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// True when `e` is a refused server certificate: not a transient failure, retrying cannot help.
pub(crate) fn is_certificate_error(e: &ureq::Error) -> bool {
    matches!(rustls_error(e), Some(rustls::Error::InvalidCertificate(_)))
}

/// The message of a transport error: `e` itself, or for a refused server certificate, that it is
/// not trusted, which roots were in use, and how to trust a TLS-inspecting proxy.
pub(crate) fn error_message(e: &ureq::Error, trust: &Trust) -> String {
    match rustls_error(e) {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            let why = match cert {
                rustls::CertificateError::UnknownIssuer => {
                    "issued by an unknown certificate authority".to_string()
                }
                other => other.to_string(),
            };
            format!(
                "TLS certificate not trusted: {why} (trusted here: {trust}). If a proxy inspects \
                 TLS on this network, set the ca_bundle option (--ca-bundle) or SSL_CERT_FILE to \
                 a PEM file with its root certificate, or install that root in the system trust \
                 store"
            )
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::trust::check_trust;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "lemon-pull-tls-unit-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("create temp dir");
            TempDir(p)
        }

        fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, bytes).expect("write");
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ca(name: &str) -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(&key).expect("self-signed")
    }

    fn env(vars: &[(&'static str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn usable() -> std::result::Result<(), String> {
        Ok(())
    }

    fn unusable() -> std::result::Result<(), String> {
        Err("No CA certificates were loaded from the system".into())
    }

    fn trust_of(
        ca_bundle: Option<&Path>,
        vars: &[(&'static str, &str)],
        system: &dyn Fn() -> std::result::Result<(), String>,
    ) -> Result<Trust> {
        configure_with(ca_bundle, &env(vars), system).map(|(_, t)| t)
    }

    fn invalid_message(r: Result<Trust>) -> String {
        match r {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn bundle_precedence_option_then_variables_in_order() {
        let opt = Path::new("/opt.pem");
        let all = [
            ("SSL_CERT_FILE", "/ssl.pem"),
            ("REQUESTS_CA_BUNDLE", "/requests.pem"),
            ("CURL_CA_BUNDLE", "/curl.pem"),
        ];
        let choose = |o: Option<&Path>, vars: &[(&'static str, &str)]| {
            choose_bundle(o, &env(vars)).map(|(p, s)| (p.display().to_string(), s))
        };
        assert_eq!(
            choose(Some(opt), &all),
            Some(("/opt.pem".into(), BundleSource::Option))
        );
        assert_eq!(
            choose(None, &all),
            Some(("/ssl.pem".into(), BundleSource::Env("SSL_CERT_FILE")))
        );
        assert_eq!(
            choose(None, &all[1..]),
            Some((
                "/requests.pem".into(),
                BundleSource::Env("REQUESTS_CA_BUNDLE")
            ))
        );
        assert_eq!(
            choose(None, &all[2..]),
            Some(("/curl.pem".into(), BundleSource::Env("CURL_CA_BUNDLE")))
        );
        assert_eq!(choose(None, &[]), None);
        // Blank values count as unset, for the option and for the variables.
        assert_eq!(
            choose(
                Some(Path::new("")),
                &[("SSL_CERT_FILE", "  "), ("REQUESTS_CA_BUNDLE", ""), all[2]]
            ),
            Some(("/curl.pem".into(), BundleSource::Env("CURL_CA_BUNDLE")))
        );
        // Other variables play no part.
        assert_eq!(
            choose(None, &[("SSL_CERT_DIR", "/d"), ("HF_HOME", "/h")]),
            None
        );
    }

    #[test]
    fn without_a_bundle_the_system_store_then_mozilla_roots() {
        assert_eq!(trust_of(None, &[], &usable).expect("system"), Trust::System);
        let t = trust_of(None, &[], &unusable).expect("fallback");
        assert_eq!(
            t,
            Trust::Mozilla {
                reason: "No CA certificates were loaded from the system".into()
            }
        );
        assert!(t.to_string().contains("Mozilla roots"), "{t}");
        let (config, _) = configure_with(None, &env(&[]), &usable).expect("system config");
        assert!(matches!(config.root_certs(), RootCerts::PlatformVerifier));
        let (config, _) = configure_with(None, &env(&[]), &unusable).expect("fallback config");
        assert!(matches!(config.root_certs(), RootCerts::WebPki));
    }

    #[test]
    fn a_bundle_replaces_the_default_roots() {
        let dir = TempDir::new();
        let a = ca("A");
        let b = ca("B");
        let pem = dir.write("two.pem", format!("{}\n{}", a.pem(), b.pem()));
        let path = pem.to_str().expect("utf-8");
        for (vars, source) in [
            (
                vec![("SSL_CERT_FILE", path)],
                BundleSource::Env("SSL_CERT_FILE"),
            ),
            (
                vec![("REQUESTS_CA_BUNDLE", path)],
                BundleSource::Env("REQUESTS_CA_BUNDLE"),
            ),
            (
                vec![("CURL_CA_BUNDLE", path)],
                BundleSource::Env("CURL_CA_BUNDLE"),
            ),
        ] {
            // The system store is not consulted: a bundle wins even when it is usable.
            let (config, trust) = configure_with(None, &env(&vars), &usable).expect("bundle");
            assert_eq!(
                trust,
                Trust::Bundle {
                    path: pem.clone(),
                    source,
                    certificates: 2
                }
            );
            match config.root_certs() {
                RootCerts::Specific(certs) => {
                    assert_eq!(certs[0].der(), a.der().as_ref());
                    assert_eq!(certs[1].der(), b.der().as_ref());
                }
                other => panic!("{other:?}"),
            }
        }
        // The option wins over every variable, even a broken one (it is never read).
        let t = trust_of(
            Some(&pem),
            &[("SSL_CERT_FILE", "/no/such/file.pem")],
            &usable,
        )
        .expect("option");
        assert!(
            matches!(
                &t,
                Trust::Bundle {
                    source: BundleSource::Option,
                    certificates: 2,
                    ..
                }
            ),
            "{t:?}"
        );
        assert!(t.to_string().contains("from the ca_bundle option"), "{t}");
    }

    #[test]
    fn unreadable_or_empty_bundles_are_errors_naming_the_file() {
        let dir = TempDir::new();
        let missing = dir.0.join("missing.pem");
        let garbage = dir.write("garbage.pem", "this is not a certificate\n");
        let empty = dir.write("empty.pem", "");
        let key_only = dir.write(
            "key.pem",
            rcgen::KeyPair::generate().expect("key").serialize_pem(),
        );
        let broken_pem = dir.write(
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\n@@@not base64@@@\n-----END CERTIFICATE-----\n",
        );
        // Valid base64, but not a certificate rustls can use as a root.
        let not_der = dir.write(
            "notder.pem",
            "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n",
        );
        let empty_dir = dir.0.join("empty-dir");
        std::fs::create_dir(&empty_dir).expect("mkdir");
        for (path, expect) in [
            (&missing, "cannot be read"),
            (&garbage, "holds no usable certificate"),
            (&empty, "holds no usable certificate"),
            (&key_only, "holds no usable certificate"),
            (&broken_pem, "could not be parsed"),
            (&not_der, "1 certificate block(s) could not be parsed"),
            (&empty_dir, "holds no usable certificate"),
        ] {
            let shown = path.display().to_string();
            // Explicit: named, with its source.
            let m = invalid_message(trust_of(Some(path), &[], &usable));
            assert!(m.contains(&shown), "{m}");
            assert!(m.contains("from the ca_bundle option"), "{m}");
            assert!(m.contains(expect), "{expect}: {m}");
            // From a variable: named with the variable.
            let m = invalid_message(trust_of(None, &[("REQUESTS_CA_BUNDLE", &shown)], &usable));
            assert!(
                m.contains(&shown) && m.contains("from REQUESTS_CA_BUNDLE"),
                "{m}"
            );
            let e = Error::InvalidArgument(m);
            assert_eq!(e.status(), crate::error::Status::InvalidArgument);
        }
        // A broken higher-precedence variable is an error, not skipped for a working one.
        let good = dir.write("good.pem", ca("G").pem());
        let m = invalid_message(trust_of(
            None,
            &[
                ("SSL_CERT_FILE", missing.to_str().expect("utf-8")),
                ("REQUESTS_CA_BUNDLE", good.to_str().expect("utf-8")),
            ],
            &usable,
        ));
        assert!(m.contains("from SSL_CERT_FILE"), "{m}");
    }

    #[test]
    fn der_files_folders_and_mixed_pem_are_accepted() {
        let dir = TempDir::new();
        let a = ca("A");
        let b = ca("B");
        // One DER certificate, as Windows exports a `.cer`.
        let der = dir.write("root.cer", a.der());
        let t = trust_of(Some(&der), &[], &usable).expect("der");
        assert!(
            matches!(
                t,
                Trust::Bundle {
                    certificates: 1,
                    ..
                }
            ),
            "{t:?}"
        );
        // PEM with text around the blocks and a private key: the certificate is used.
        let mixed = dir.write(
            "mixed.pem",
            format!(
                "Subject: A\n{}\n{}",
                a.pem(),
                rcgen::KeyPair::generate().expect("key").serialize_pem()
            ),
        );
        let t = trust_of(Some(&mixed), &[], &usable).expect("mixed");
        assert!(
            matches!(
                t,
                Trust::Bundle {
                    certificates: 1,
                    ..
                }
            ),
            "{t:?}"
        );
        // A folder: every certificate of every file; other files are skipped.
        let folder = dir.0.join("certs");
        std::fs::create_dir(&folder).expect("mkdir");
        std::fs::write(folder.join("a.0"), a.pem()).expect("write");
        std::fs::write(folder.join("b.0"), b.pem()).expect("write");
        std::fs::write(folder.join("README"), "not a certificate").expect("write");
        let t = trust_of(Some(&folder), &[], &usable).expect("folder");
        assert!(
            matches!(
                t,
                Trust::Bundle {
                    certificates: 2,
                    ..
                }
            ),
            "{t:?}"
        );
    }

    #[test]
    fn certificate_errors_explain_how_to_trust_a_proxy() {
        let unknown = ureq::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert!(is_certificate_error(&unknown));
        let m = error_message(&unknown, &Trust::System);
        for part in [
            "not trusted",
            "unknown certificate authority",
            "the system trust store",
            "SSL_CERT_FILE",
            "--ca-bundle",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
        let direct = ureq::Error::Rustls(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        ));
        assert!(is_certificate_error(&direct));
        assert!(error_message(&direct, &Trust::System).contains("not trusted"));
        // Anything else keeps its own message.
        let other = ureq::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert!(!is_certificate_error(&other));
        assert_eq!(error_message(&other, &Trust::System), other.to_string());
    }

    #[test]
    fn check_trust_refuses_non_http_urls() {
        for url in ["ftp://x/y", "file:///etc/passwd", "not a url"] {
            let e = check_trust(url, None).expect_err(url);
            assert_eq!(e.status(), crate::error::Status::InvalidArgument, "{e}");
        }
    }
}
