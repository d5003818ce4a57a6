//! Tests of the mock Hub itself: if the mock drifts from the real protocol, every client test
//! built on it lies. Independent of `lemon_pull`: plain ureq (redirects off) and raw sockets.

mod access;
mod accounting;
mod binary;
mod download;
mod faults;
mod listing;
mod modelscope;

use mock_hub::{Fault, MockFile, MockHub, PseudoRandom, Target, pseudo_random_bytes};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const REPO: &str = "org/model";
const CONFIG: &[u8] = b"{\"a\": 1}\n";
/// `git hash-object` of `CONFIG`, `hello\n` and the empty file (values from the reference).
const CONFIG_BLOB: &str = "cb5b2f69babc53f9145b45ad20b9a075d48717ef";
const HELLO_BLOB: &str = "ce013625030ba8dba906f756967f9e9ca394464a";
const EMPTY_BLOB: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
const BIG_LEN: usize = 300_000;

struct Fixture {
    hub: MockHub,
    sha: String,
    big: Vec<u8>,
}

fn fixture() -> Fixture {
    let hub = MockHub::start();
    let big = pseudo_random_bytes(7, BIG_LEN);
    let sha = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", CONFIG),
            MockFile::regular("sub/dir/notes.txt", "hello\n"),
            MockFile::regular("sub/my file.txt", "spaced\n"),
            MockFile::regular("empty.txt", ""),
            MockFile::lfs("model.gguf", big.clone()),
        ],
    );
    Fixture { hub, sha, big }
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hub.endpoint())
    }

    /// A fresh signed CDN URL for `path`, taken from the resolve redirect.
    fn cdn_url(&self, path: &str) -> String {
        let reply = get(&self.url(&format!("/{REPO}/resolve/main/{path}")), &[]);
        assert_eq!(reply.status, 302, "{path} should redirect");
        reply.header("location").expect("Location").to_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn error_code(&self) -> Option<&str> {
        self.header("x-error-code")
    }
}

fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let agent = agent();
    let response = if method == "HEAD" {
        let mut req = agent.head(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.call()
    } else {
        let mut req = agent.get(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.call()
    };
    let mut response = response.expect("HTTP exchange");
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .expect("body");
    Reply {
        status: response.status().as_u16(),
        headers,
        body,
    }
}

fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    request("GET", url, headers)
}

fn head(url: &str, headers: &[(&str, &str)]) -> Reply {
    request("HEAD", url, headers)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn git_blob_id(content: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", content.len()));
    hasher.update(content);
    hex(&hasher.finalize())
}

fn sha256_hex(content: &[u8]) -> String {
    hex(&Sha256::digest(content))
}

/// A raw exchange, for what an HTTP client library would hide (truncation, silence, framing).
struct Raw {
    head: String,
    body: Vec<u8>,
    elapsed: Duration,
}

impl Raw {
    fn status(&self) -> u16 {
        self.head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` verbatim and reads until the server closes (or 10 s pass).
fn raw(port: u16, request: &str) -> Raw {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    let elapsed = started.elapsed();
    let split = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(received.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&received[..split]).into_owned();
    Raw {
        head,
        body: received[split..].to_vec(),
        elapsed,
    }
}

/// `GET` of a CDN URL over a raw socket, with `Connection: close` so that EOF ends the body.
fn raw_cdn_get(hub: &MockHub, cdn_url: &str, extra: &str) -> Raw {
    let target = cdn_url.strip_prefix(&hub.cdn_base()).expect("CDN URL");
    let port = hub.port();
    raw(
        port,
        &format!(
            "GET {target} HTTP/1.1\r\nHost: localhost:{port}\r\n{extra}Connection: close\r\n\r\n"
        ),
    )
}

fn siblings(info: &serde_json::Value) -> Vec<serde_json::Value> {
    info["siblings"].as_array().expect("siblings").clone()
}

fn sibling<'a>(siblings: &'a [serde_json::Value], path: &str) -> &'a serde_json::Value {
    siblings
        .iter()
        .find(|s| s["rfilename"] == path)
        .unwrap_or_else(|| panic!("no sibling {path}"))
}
