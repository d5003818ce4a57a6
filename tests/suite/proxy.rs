//! Proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`): the CLI
//! reaches the hub and its CDN host through a local CONNECT proxy, and bypasses it for `NO_PROXY`.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::common::TempDir;
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};

const REPO: &str = "org/model";

/// A minimal HTTP CONNECT proxy on 127.0.0.1 that records the targets it tunnelled to.
struct Proxy {
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = targets.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || tunnel(client, &seen));
            }
        });
        Proxy { port, targets }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn targets(&self) -> Vec<String> {
        self.targets.lock().expect("lock").clone()
    }
}

fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Skip the rest of the request head.
    let mut header = String::new();
    while reader
        .read_line(&mut header)
        .map(|n| n > 2)
        .unwrap_or(false)
    {
        header.clear();
    }
    let mut parts = line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ =
            (&client).write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    seen.lock().expect("lock").push(target.to_string());
    let Ok(upstream) = TcpStream::connect(target.replace("localhost", "127.0.0.1")) else {
        let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let _ = (&client).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let (c2, u2) = (
        client.try_clone().expect("clone"),
        upstream.try_clone().expect("clone"),
    );
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut &u2);
        let _ = u2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut &upstream, &mut &c2);
    let _ = c2.shutdown(Shutdown::Write);
    let _ = up.join();
}

fn run(hub: &MockHub, cache: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(crate::common::resume_pull());
    for v in [
        "HF_TOKEN",
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        c.env_remove(v);
    }
    c.envs(env.iter().copied())
        .args([
            "--quiet",
            "--token",
            "",
            "--endpoint",
            &hub.endpoint(),
            "--cache-dir",
        ])
        .arg(cache)
        .arg(REPO)
        .output()
        .expect("run")
}

fn repo() -> MockHub {
    let hub = MockHub::start();
    hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", b"{}".to_vec()),
            MockFile::lfs("model.gguf", pseudo_random_bytes(1, 500_000)),
        ],
    );
    hub
}

#[test]
fn environment_proxies_carry_hub_and_cdn_traffic() {
    for var in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy"] {
        let hub = repo();
        let proxy = Proxy::start();
        let cache = TempDir::new("proxy");
        let out = run(&hub, cache.path(), &[(var, &proxy.url())]);
        assert!(
            out.status.success(),
            "{var}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let targets = proxy.targets();
        let port = hub.port();
        assert!(
            targets.contains(&format!("127.0.0.1:{port}")),
            "{var}: hub through the proxy: {targets:?}"
        );
        assert!(
            targets.contains(&format!("localhost:{port}")),
            "{var}: CDN through the proxy: {targets:?}"
        );
    }
}

#[test]
fn no_proxy_bypasses_the_proxy() {
    let hub = repo();
    let proxy = Proxy::start();
    let cache = TempDir::new("no-proxy");
    let out = run(
        &hub,
        cache.path(),
        &[
            ("HTTPS_PROXY", &proxy.url()),
            ("NO_PROXY", "127.0.0.1,localhost"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        proxy.targets().is_empty(),
        "bypassed: {:?}",
        proxy.targets()
    );
}
