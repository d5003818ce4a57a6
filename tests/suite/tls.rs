//! Trust for https behind a TLS-inspecting proxy: a TLS front end with a CA generated at test time
//! stands in for the proxy in front of the mock hub (the Hub on `https://127.0.0.1:PORT`, its CDN
//! on `https://localhost:PORT`). Checked through `lemon_pull::check_trust`, which builds its
//! client from the same trust configuration as a pull: the CA as a bundle (option or environment
//! variable) is trusted, without it the certificate is refused with a message saying how to fix
//! it, broken bundles are invalid arguments naming the file, and https never redirects to http.
//!
//! The environment variables are read by the library itself, so those cases run this test binary
//! again as a child process with the variables set (`child_check_trust`).

use std::path::Path;
use std::process::Command;

use crate::common::TempDir;
use crate::common::tls_front::{TestPki, TlsFront};
use lemon_pull::{BundleSource, Trust, check_trust};
use lemon_pull::{Error, Status};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";

/// A hub with one regular and one LFS file, and a TLS front end whose CDN answers over https.
fn setup() -> (MockHub, TlsFront) {
    let hub = MockHub::start();
    hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", b"{}".to_vec()),
            MockFile::lfs("model.gguf", pseudo_random_bytes(7, 100_000)),
        ],
    );
    let front = TlsFront::start(hub.port());
    hub.set_cdn_base(Some(&front.cdn_base()));
    (hub, front)
}

fn api_url(front: &TlsFront) -> String {
    format!("{}/api/models/{REPO}/revision/main", front.endpoint())
}

fn lfs_url(front: &TlsFront) -> String {
    format!("{}/{REPO}/resolve/main/model.gguf", front.endpoint())
}

fn network_message(r: lemon_pull::Result<lemon_pull::TrustCheck>) -> String {
    match r {
        Err(Error::Network { message, .. }) => message,
        other => panic!("expected a network error, got {other:?}"),
    }
}

fn assert_untrusted(message: &str) {
    for part in ["not trusted", "SSL_CERT_FILE", "--ca-bundle", "ca_bundle"] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn the_generated_ca_as_bundle_is_trusted_for_hub_and_cdn() {
    let (hub, front) = setup();
    let dir = TempDir::new("tls-ok");
    let bundle = front.pki().write_ca_pem(dir.path());

    let ok = check_trust(&api_url(&front), Some(&bundle)).expect("hub over TLS");
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.trust,
        Trust::Bundle {
            path: bundle.clone(),
            source: BundleSource::Option,
            certificates: 1
        }
    );

    // The LFS file: a 302 from the Hub to a signed https URL on the CDN host, both through TLS.
    let ok = check_trust(&lfs_url(&front), Some(&bundle)).expect("hub then CDN over TLS");
    assert_eq!(ok.status, 200);
    let cdn = format!("{}/cdn/", front.cdn_base());
    assert!(ok.url.starts_with(&cdn), "{}", ok.url);
    let cdn_host = format!("localhost:{}", hub.port());
    assert!(
        hub.requests()
            .iter()
            .any(|r| r.host == cdn_host && r.path.starts_with("/cdn/") && r.status == 200),
        "the mock served the CDN request: {:?}",
        hub.requests()
    );

    // The same CA as a DER certificate (a Windows `.cer` export).
    let der = dir.path().join("test-ca.cer");
    std::fs::write(&der, &front.pki().ca_der).expect("write DER");
    assert_eq!(
        check_trust(&api_url(&front), Some(&der))
            .expect("DER")
            .status,
        200
    );
}

#[test]
fn without_the_ca_the_certificate_is_not_trusted() {
    let (hub, front) = setup();
    // No bundle: the environment's roots (the system store on a clean machine) do not hold
    // the test CA.
    assert_untrusted(&network_message(check_trust(&api_url(&front), None)));

    // A bundle with another CA: refused too, and the message names the bundle in use.
    let dir = TempDir::new("tls-other-ca");
    let other = TestPki::generate().write_ca_pem(dir.path());
    let message = network_message(check_trust(&api_url(&front), Some(&other)));
    assert_untrusted(&message);
    assert!(
        message.contains(&other.display().to_string()) && message.contains("ca_bundle option"),
        "{message}"
    );
    // The handshake failed: the mock never saw a request.
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
}

#[test]
fn missing_or_garbage_bundles_are_invalid_arguments_naming_the_file() {
    let (hub, front) = setup();
    let dir = TempDir::new("tls-bad-bundle");
    let missing = dir.path().join("no-such-bundle.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").expect("write");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "ask IT for the proxy certificate\n").expect("write");
    for (path, what) in [
        (&missing, "cannot be read"),
        (&garbage, "holds no usable certificate"),
        (&text, "holds no usable certificate"),
    ] {
        let err = check_trust(&api_url(&front), Some(path)).expect_err("bad bundle");
        assert_eq!(err.status(), Status::InvalidArgument, "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains(what),
            "{message}"
        );
    }
    // Refused before any connection.
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
}

#[test]
fn https_is_never_redirected_to_http() {
    let (hub, front) = setup();
    let dir = TempDir::new("tls-downgrade");
    let bundle = front.pki().write_ca_pem(dir.path());
    // The Hub (over https) now signs CDN URLs on plain http.
    hub.set_cdn_base(Some(&hub.cdn_base()));
    let err = check_trust(&lfs_url(&front), Some(&bundle)).expect_err("downgrade");
    assert_eq!(err.status(), Status::InvalidResponse, "{err}");
    assert!(
        err.to_string().contains("refusing redirect from https"),
        "{err}"
    );
    let cdn_host = format!("localhost:{}", hub.port());
    assert!(
        !hub.requests().iter().any(|r| r.host == cdn_host),
        "the http CDN URL was not fetched: {:?}",
        hub.requests()
    );
}

// ---------------------------------------------------------------------------------------------
// The environment, through a child process
// ---------------------------------------------------------------------------------------------

const CHILD_URL: &str = "LEMON_PULL_TLS_CHILD_URL";
const CHILD_BUNDLE: &str = "LEMON_PULL_TLS_CHILD_BUNDLE";

/// Run by `in_child` only: one `check_trust` with the process environment, result on stdout.
#[test]
#[ignore = "helper: run in a child process by the environment tests"]
fn child_check_trust() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let bundle = std::env::var_os(CHILD_BUNDLE).map(std::path::PathBuf::from);
    match check_trust(&url, bundle.as_deref()) {
        Ok(ok) => println!("RESULT ok {} {}", ok.status, ok.trust),
        Err(e) => println!("RESULT err {} {e}", e.status().name()),
    }
}

/// Runs `child_check_trust` against `url` with only `vars` of the TLS-related variables set.
fn in_child(url: &str, bundle: Option<&Path>, vars: &[(&str, &Path)]) -> String {
    let mut c = Command::new(std::env::current_exe().expect("test binary"));
    c.args([
        "tls::child_check_trust",
        "--exact",
        "--ignored",
        "--nocapture",
    ]);
    for v in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    c.env(CHILD_URL, url);
    if let Some(b) = bundle {
        c.env(CHILD_BUNDLE, b);
    }
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.output().expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "no result from the child: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    line.to_string()
}

#[test]
fn bundle_variables_are_trusted_in_order() {
    let (_hub, front) = setup();
    let dir = TempDir::new("tls-env");
    let ca = front.pki().write_ca_pem(dir.path());
    let missing = dir.path().join("missing.pem");
    let url = api_url(&front);

    for var in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
        let r = in_child(&url, None, &[(var, &ca)]);
        assert!(
            r.starts_with("ok 200") && r.contains(&format!("(from {var})")),
            "{var}: {r}"
        );
    }
    // A broken higher-precedence variable is an error naming it, not skipped.
    let r = in_child(
        &url,
        None,
        &[("SSL_CERT_FILE", &missing), ("REQUESTS_CA_BUNDLE", &ca)],
    );
    assert!(
        r.starts_with("err invalid_argument")
            && r.contains("from SSL_CERT_FILE")
            && r.contains(&missing.display().to_string()),
        "{r}"
    );
    // A bundle replaces the defaults: one without the test CA is refused.
    let other = TestPki::generate();
    let other_dir = TempDir::new("tls-env-other");
    let other_ca = other.write_ca_pem(other_dir.path());
    let r = in_child(&url, None, &[("REQUESTS_CA_BUNDLE", &other_ca)]);
    assert!(r.starts_with("err network"), "{r}");
    assert_untrusted(&r);
    // The option wins over every variable, even a broken one.
    let r = in_child(&url, Some(&ca), &[("SSL_CERT_FILE", &missing)]);
    assert!(
        r.starts_with("ok 200") && r.contains("ca_bundle option"),
        "{r}"
    );
    // No bundle anywhere: the system store, which does not hold the test CA.
    let r = in_child(&url, None, &[]);
    assert!(r.starts_with("err network"), "{r}");
    assert_untrusted(&r);
}

/// The system-store step reads what the operating system offers; on Linux and the BSDs that is
/// the CA files, which `SSL_CERT_DIR` replaces: a corporate root placed there is trusted. A system
/// without any CA file falls back to the Mozilla roots instead of trusting nothing.
#[cfg(all(unix, not(target_vendor = "apple"), not(target_os = "android")))]
#[test]
fn the_system_store_trusts_roots_installed_there() {
    let (_hub, front) = setup();
    let dir = TempDir::new("tls-system");
    front.pki().write_ca_pem(dir.path());
    let r = in_child(&api_url(&front), None, &[("SSL_CERT_DIR", dir.path())]);
    assert_eq!(r, "ok 200 the system trust store");

    let empty = TempDir::new("tls-no-system-roots");
    let r = in_child(&api_url(&front), None, &[("SSL_CERT_DIR", empty.path())]);
    assert!(r.starts_with("err network"), "{r}");
    assert_untrusted(&r);
    assert!(
        r.contains("the Mozilla roots built into lemon-pull (the system trust store is unusable"),
        "{r}"
    );
}

#[test]
fn a_pull_through_the_inspection_proxy_needs_its_ca() {
    let (hub, front) = setup();
    let dir = TempDir::new("tls-pull-ca");
    let bundle = front.pki().write_ca_pem(dir.path());

    // With the CA: the pull goes Hub → 302 → CDN, all over TLS, and verifies.
    let cache = TempDir::new("tls-pull");
    let mut o = crate::common::options(&front.endpoint(), cache.path(), REPO);
    o.ca_bundle = Some(bundle);
    let out = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect("pull over TLS");
    assert_eq!(
        std::fs::read(out.snapshot_path.join("model.gguf")).expect("read"),
        pseudo_random_bytes(7, 100_000)
    );
    let cdn_host = format!("localhost:{}", hub.port());
    assert!(hub.requests().iter().any(|r| r.host == cdn_host));

    // Without it: a network error saying the certificate is not trusted and how to fix it.
    let cache = TempDir::new("tls-pull-untrusted");
    let o = crate::common::options(&front.endpoint(), cache.path(), REPO);
    let t0 = std::time::Instant::now();
    let err = lemon_pull::pull(&o, &mut lemon_pull::Silent).expect_err("untrusted");
    assert_eq!(
        err.status(),
        Status::InvalidResponse,
        "not retried as a network error: {err}"
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "failed at once, no retries"
    );
    assert_untrusted(&err.to_string());
}
