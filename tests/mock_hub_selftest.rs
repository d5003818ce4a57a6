//! Tests of the mock Hub itself: if the mock drifts from the real protocol, every client test
//! built on it lies. Independent of `lemon_pull`: plain ureq (redirects off) and raw sockets.

mod support;

use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::mock_hub::{Fault, MockFile, MockHub, PseudoRandom, Target, pseudo_random_bytes};

const REPO: &str = "org/model";
const CONFIG: &[u8] = b"{\"a\": 1}\n";
/// `git hash-object` of `CONFIG`, `hello\n` and the empty file (values from the reference).
const CONFIG_BLOB: &str = "cb5b2f69babc53f9145b45ad20b9a075d48717ef";
const HELLO_BLOB: &str = "ce013625030ba8dba906f756967f9e9ca394464a";
const EMPTY_BLOB: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
const BIG_LEN: usize = 300_000;

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------------------
// Metadata and listing
// ------------------------------------------------------------------------------------------------

#[test]
fn listing_with_blobs_reports_sizes_git_ids_and_lfs() {
    let f = fixture();
    let reply = get(&f.url("/api/models/org/model?blobs=true"), &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(reply.header("x-request-id").is_some());
    let info = reply.json();
    assert_eq!(info["id"], REPO);
    assert_eq!(info["modelId"], REPO);
    assert_eq!(info["sha"], f.sha.as_str());
    assert_eq!(info["private"], false);
    assert_eq!(info["gated"], false);
    assert_eq!(info["disabled"], false);
    assert!(info["_id"].is_string() && info["lastModified"].is_string());

    let siblings = siblings(&info);
    assert_eq!(siblings.len(), 5, "files only, no directories");
    let config = sibling(&siblings, "config.json");
    assert_eq!(config["blobId"], CONFIG_BLOB);
    assert_eq!(config["size"], CONFIG.len());
    assert!(config.get("lfs").is_none());
    assert_eq!(
        sibling(&siblings, "sub/dir/notes.txt")["blobId"],
        HELLO_BLOB
    );
    assert_eq!(sibling(&siblings, "empty.txt")["blobId"], EMPTY_BLOB);

    let model = sibling(&siblings, "model.gguf");
    let sha256 = sha256_hex(&f.big);
    let pointer = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {BIG_LEN}\n"
    );
    assert_eq!(model["size"], BIG_LEN);
    assert_eq!(model["blobId"], git_blob_id(pointer.as_bytes()).as_str());
    assert_eq!(model["lfs"]["sha256"], sha256.as_str());
    assert_eq!(model["lfs"]["size"], BIG_LEN);
    assert_eq!(model["lfs"]["pointerSize"], 125 + BIG_LEN.to_string().len());
    assert_eq!(model["lfs"]["pointerSize"], pointer.len());
}

#[test]
fn listing_variants_blobs_case_plain_and_without_sizes() {
    let f = fixture();
    let upper = get(&f.url("/api/models/org/model?blobs=True"), &[]).json();
    assert_eq!(
        sibling(&siblings(&upper), "config.json")["blobId"],
        CONFIG_BLOB
    );

    let plain = get(&f.url("/api/models/org/model"), &[]).json();
    for s in siblings(&plain) {
        assert_eq!(
            s.as_object().expect("object").len(),
            1,
            "only rfilename: {s}"
        );
    }

    f.hub.set_listing_sizes(false);
    let sizeless = get(&f.url("/api/models/org/model?blobs=true"), &[]).json();
    let model = sibling(&siblings(&sizeless), "model.gguf").clone();
    assert!(
        model.get("size").is_none() && model.get("lfs").is_none(),
        "{model}"
    );
}

#[test]
fn empty_file_committed_as_lfs_is_a_regular_blob() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", vec![MockFile::lfs("empty.bin", Vec::new())]);
    let info = get(
        &format!("{}/api/models/org/model?blobs=true", hub.endpoint()),
        &[],
    )
    .json();
    let empty = sibling(&siblings(&info), "empty.bin").clone();
    assert_eq!(empty["blobId"], EMPTY_BLOB);
    assert_eq!(empty["size"], 0);
    assert!(empty.get("lfs").is_none());
    let reply = head(
        &format!("{}/org/model/resolve/main/empty.bin", hub.endpoint()),
        &[],
    );
    assert_eq!(reply.status, 200);
}

#[test]
fn revisions_resolve_in_every_accepted_form() {
    let f = fixture();
    let pr = f.hub.commit(
        REPO,
        "feat/x",
        vec![MockFile::regular("config.json", "{}\n")],
    );
    f.hub.set_ref(REPO, "refs/pr/1", &pr);
    f.hub.set_ref(REPO, "v1.0", &f.sha);
    assert_eq!(
        f.hub.ref_sha(REPO, "refs/pr/1").as_deref(),
        Some(pr.as_str())
    );
    assert_eq!(f.hub.ref_sha(REPO, "main").as_deref(), Some(f.sha.as_str()));

    let sha_at = |rev: &str| {
        let reply = get(
            &f.url(&format!("/api/models/org/model/revision/{rev}")),
            &[],
        );
        assert_eq!(reply.status, 200, "revision {rev}");
        reply.json()["sha"].as_str().expect("sha").to_owned()
    };
    assert_eq!(sha_at("refs%2Fpr%2F1"), pr);
    assert_eq!(sha_at("refs/pr/1"), pr);
    assert_eq!(sha_at("feat%2Fx"), pr);
    assert_eq!(sha_at("v1.0"), f.sha);
    assert_eq!(sha_at("main"), f.sha);
    assert_eq!(sha_at(&f.sha), f.sha);
    assert_eq!(
        sha_at(&pr),
        pr,
        "old and new commits stay addressable by sha"
    );

    let missing = get(&f.url("/api/models/org/model/revision/nope"), &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), Some("RevisionNotFound"));
    assert_eq!(
        missing.header("x-error-message"),
        Some("Invalid rev id: nope")
    );
    assert!(missing.json()["error"].is_string());

    let tree = get(
        &f.url("/api/models/org/model/tree/refs/pr/1?recursive=true"),
        &[],
    );
    assert_eq!(tree.status, 200);
    let file = head(&f.url("/org/model/resolve/refs%2Fpr%2F1/config.json"), &[]);
    assert_eq!(file.header("x-repo-commit"), Some(pr.as_str()));
    let verbatim = head(&f.url("/org/model/resolve/refs/pr/1/config.json"), &[]);
    assert_eq!(verbatim.header("x-repo-commit"), Some(pr.as_str()));
}

#[test]
fn bare_legacy_repo_ids_work_on_every_route() {
    let hub = MockHub::start();
    let sha = hub.commit(
        "gpt2",
        "main",
        vec![MockFile::regular("config.json", CONFIG)],
    );
    let base = hub.endpoint();
    assert_eq!(
        get(&format!("{base}/api/models/gpt2"), &[]).json()["sha"],
        sha.as_str()
    );
    let rev = get(&format!("{base}/api/models/gpt2/revision/main"), &[]).json();
    assert_eq!(rev["sha"], sha.as_str());
    let tree = get(&format!("{base}/api/models/gpt2/tree/main"), &[]).json();
    assert_eq!(tree[0]["path"], "config.json");
    let file = get(&format!("{base}/gpt2/resolve/main/config.json"), &[]);
    assert_eq!(file.body, CONFIG);
}

#[test]
fn tree_lists_directories_in_hub_key_order_and_paginates_with_absolute_link() {
    let f = fixture();
    f.hub.set_tree_page_size(2);
    let first = f.url(&format!(
        "/api/models/org/model/tree/{}?recursive=true&expand=false",
        f.sha
    ));
    let mut next = Some(first);
    let mut entries = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let reply = get(&url, &[]);
        assert_eq!(reply.status, 200);
        pages += 1;
        entries.extend(reply.json().as_array().expect("array").clone());
        if let Some(link) = reply.header("link") {
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.strip_suffix(">; rel=\"next\""))
                .expect("Link format");
            assert!(
                target.starts_with(&f.hub.endpoint()),
                "absolute, own host: {target}"
            );
            assert!(
                target.contains("recursive=true&expand=false&cursor="),
                "{target}"
            );
            next = Some(target.to_owned());
        }
    }
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        [
            "config.json",
            "empty.txt",
            "model.gguf",
            "sub",
            "sub/dir",
            "sub/dir/notes.txt",
            "sub/my file.txt"
        ]
    );
    assert_eq!(pages, 4);
    let sub_dir = &entries[4];
    assert_eq!(sub_dir["type"], "directory");
    // The git tree holding just `notes.txt` = "hello\n".
    let mut tree = b"100644 notes.txt\0".to_vec();
    tree.extend(
        (0..20).map(|i| u8::from_str_radix(&HELLO_BLOB[2 * i..2 * i + 2], 16).expect("hex")),
    );
    let mut hasher = Sha1::new();
    hasher.update(format!("tree {}\0", tree.len()));
    hasher.update(&tree);
    assert_eq!(sub_dir["oid"], hex(&hasher.finalize()).as_str());

    let model = &entries[2];
    assert_eq!(model["type"], "file");
    assert_eq!(model["lfs"]["oid"], sha256_hex(&f.big).as_str());
    assert_eq!(model["lfs"]["size"], BIG_LEN);

    f.hub.set_tree_page_size(1000);
    let raw = get(
        &f.url("/api/models/org/model/tree/main?recursive=false"),
        &[],
    )
    .text();
    let model_text = raw
        .split("},{")
        .find(|e| e.contains("model.gguf"))
        .expect("model entry");
    let order: Vec<usize> = ["\"type\"", "\"oid\"", "\"size\"", "\"lfs\"", "\"path\""]
        .iter()
        .map(|k| model_text.find(k).expect("key present"))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "key order: {model_text}"
    );
    assert!(raw.contains("\"lfs\":{\"oid\":"), "lfs key order: {raw}");
}

#[test]
fn tree_lists_one_directory_level_unless_recursive() {
    let f = fixture();
    let paths = |url: &str| -> Vec<String> {
        let reply = get(&f.url(url), &[]);
        assert_eq!(reply.status, 200, "{url}");
        reply
            .json()
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e["path"].as_str().expect("path").to_owned())
            .collect()
    };
    assert_eq!(
        paths("/api/models/org/model/tree/main"),
        ["config.json", "empty.txt", "model.gguf", "sub"]
    );
    assert_eq!(
        paths("/api/models/org/model/tree/main/sub"),
        ["sub/dir", "sub/my file.txt"]
    );
    assert_eq!(
        paths("/api/models/org/model/tree/main/sub%2Fdir?recursive=true"),
        ["sub/dir/notes.txt"]
    );
    let missing = get(&f.url("/api/models/org/model/tree/main/nope"), &[]);
    assert_eq!(missing.status, 404);
    let bad_cursor = get(&f.url("/api/models/org/model/tree/main?cursor=zzz"), &[]);
    assert_eq!(bad_cursor.status, 400);
}

#[test]
fn hostile_file_names_are_listed_verbatim() {
    let hub = MockHub::start();
    let names = ["../evil", "/abs", "a\\b", "nul\0name", "C:/drive"];
    hub.commit(
        REPO,
        "main",
        names.iter().map(|n| MockFile::regular(n, "x")).collect(),
    );
    let tree = get(
        &format!(
            "{}/api/models/org/model/tree/main?recursive=true",
            hub.endpoint()
        ),
        &[],
    )
    .json();
    let listed: Vec<&str> = tree
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["type"] == "file")
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    for name in names {
        assert!(listed.contains(&name), "{name:?} missing from {listed:?}");
    }
    let info = get(&format!("{}/api/models/org/model", hub.endpoint()), &[]).json();
    assert_eq!(siblings(&info).len(), names.len());
}

// ------------------------------------------------------------------------------------------------
// Resolve and CDN
// ------------------------------------------------------------------------------------------------

#[test]
fn regular_file_is_served_directly_with_git_etag() {
    let f = fixture();
    let url = f.url("/org/model/resolve/main/config.json");
    let meta = head(&url, &[]);
    assert_eq!(meta.status, 200);
    assert_eq!(meta.header("content-length"), Some("9"));
    assert_eq!(
        meta.header("etag"),
        Some(format!("\"{CONFIG_BLOB}\"").as_str())
    );
    assert_eq!(meta.header("x-repo-commit"), Some(f.sha.as_str()));
    assert_eq!(meta.header("accept-ranges"), Some("bytes"));
    assert!(meta.body.is_empty());
    assert_eq!(get(&url, &[]).body, CONFIG);

    let spaced = get(&f.url("/org/model/resolve/main/sub/my%20file.txt"), &[]);
    assert_eq!(spaced.body, b"spaced\n");

    let missing = head(&f.url("/org/model/resolve/main/missing.json"), &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), Some("EntryNotFound"));
    assert_eq!(
        missing.header("x-repo-commit"),
        Some(f.sha.as_str()),
        "drives .no_exist"
    );
}

#[test]
fn if_none_match_gets_304() {
    let f = fixture();
    let url = f.url("/org/model/resolve/main/config.json");
    let etag = format!("\"{CONFIG_BLOB}\"");
    let reply = head(&url, &[("If-None-Match", &etag)]);
    assert_eq!(reply.status, 304);
    assert_eq!(reply.header("x-repo-commit"), Some(f.sha.as_str()));
    assert_eq!(head(&url, &[("If-None-Match", "\"other\"")]).status, 200);
}

#[test]
fn lfs_file_redirects_to_the_cdn_host_with_linked_headers() {
    let f = fixture();
    let sha256 = sha256_hex(&f.big);
    for method in ["HEAD", "GET"] {
        let reply = request(method, &f.url("/org/model/resolve/main/model.gguf"), &[]);
        assert_eq!(reply.status, 302, "{method}");
        let location = reply.header("location").expect("Location");
        assert!(
            location.starts_with(&format!("{}/cdn/{sha256}?", f.hub.cdn_base())),
            "absolute, other host: {location}"
        );
        assert!(location.contains("X-Amz-Signature=") && location.contains("Expires="));
        assert_eq!(
            reply.header("x-linked-etag"),
            Some(format!("\"{sha256}\"").as_str())
        );
        assert_eq!(
            reply.header("x-linked-size"),
            Some(BIG_LEN.to_string().as_str())
        );
        assert_eq!(reply.header("x-repo-commit"), Some(f.sha.as_str()));
        let length: usize = reply
            .header("content-length")
            .expect("length")
            .parse()
            .expect("number");
        assert_ne!(
            length, BIG_LEN,
            "a redirect's Content-Length is its own body"
        );
        if method == "GET" {
            assert_eq!(reply.body.len(), length);
            assert!(reply.text().starts_with("Found. Redirecting to "));
        }
    }
    let cdn = get(&f.cdn_url("model.gguf"), &[]);
    assert_eq!(cdn.status, 200);
    assert_eq!(sha256_hex(&cdn.body), sha256);
    assert_eq!(cdn.header("accept-ranges"), Some("bytes"));
    assert!(cdn.header("x-repo-commit").is_none() && cdn.header("x-linked-etag").is_none());
    assert_ne!(cdn.header("etag"), Some(format!("\"{sha256}\"").as_str()));
}

#[test]
fn hosts_are_not_interchangeable() {
    let f = fixture();
    let cdn = f.cdn_url("model.gguf");
    let on_hub_host = cdn.replace(&f.hub.cdn_base(), &f.hub.endpoint());
    assert_eq!(
        get(&on_hub_host, &[]).status,
        404,
        "CDN path on the Hub host"
    );
    let on_cdn_host = format!("{}/org/model/resolve/main/config.json", f.hub.cdn_base());
    assert_eq!(
        get(&on_cdn_host, &[]).status,
        404,
        "Hub route on the CDN host"
    );
    let api_on_cdn_host = format!("{}/api/models/org/model", f.hub.cdn_base());
    assert_eq!(get(&api_on_cdn_host, &[]).status, 404);
}

#[test]
fn cdn_checks_its_signature_and_expiry() {
    let f = fixture();
    let cdn = f.cdn_url("model.gguf");
    let (base, signature) = cdn.split_once("X-Amz-Signature=").expect("signature");
    let forged = get(
        &format!("{base}X-Amz-Signature={}", "0".repeat(signature.len())),
        &[],
    );
    assert_eq!(forged.status, 403);
    let (before, _) = cdn.split_once("Expires=").expect("Expires");
    let (_, after) = cdn.split_once("&X-Amz-Algorithm").expect("rest");
    let extended = get(
        &format!("{before}Expires=9999999999&X-Amz-Algorithm{after}"),
        &[],
    );
    assert_eq!(extended.status, 403, "Expires is covered by the signature");

    f.hub.set_cdn_ttl(Some(Duration::from_millis(200)));
    let short = f.cdn_url("model.gguf");
    assert_eq!(get(&short, &[("Range", "bytes=0-0")]).status, 206);
    std::thread::sleep(Duration::from_millis(300));
    let expired = get(&short, &[("Range", "bytes=1-")]);
    assert_eq!(expired.status, 403);
    assert!(
        expired.text().contains("<Code>AccessDenied</Code>"),
        "{}",
        expired.text()
    );
    assert_eq!(
        get(&f.cdn_url("model.gguf"), &[]).status,
        200,
        "a fresh URL works"
    );
}

#[test]
fn ranges_follow_rfc_9110_on_resolve_and_cdn() {
    let f = fixture();
    let resolve = f.url("/org/model/resolve/main/config.json");
    let cdn = f.cdn_url("model.gguf");
    let cases: [(&str, &[u8], &str); 2] = [(&resolve, CONFIG, "resolve"), (&cdn, &f.big, "cdn")];
    for (url, content, name) in cases {
        let n = content.len();
        let check = |range: String, first: usize, last: usize| {
            let reply = get(url, &[("Range", &range)]);
            assert_eq!(reply.status, 206, "{name} {range}");
            let expected = format!("bytes {first}-{last}/{n}");
            assert_eq!(
                reply.header("content-range"),
                Some(expected.as_str()),
                "{name} {range}"
            );
            assert_eq!(reply.body, &content[first..=last], "{name} {range}");
        };
        check("bytes=0-0".into(), 0, 0);
        check("bytes=2-4".into(), 2, 4);
        check(format!("bytes=5-{}", n + 100), 5, n - 1);
        check(format!("bytes=5-{n}"), 5, n - 1);
        check("bytes=3-".into(), 3, n - 1);
        check("bytes=-4".into(), n - 4, n - 1);
        check(format!("bytes=-{}", n + 10), 0, n - 1);
        for unsatisfiable in [
            format!("bytes={n}-"),
            format!("bytes={}-{}", n + 5, n + 10),
            "bytes=-0".into(),
        ] {
            let reply = get(url, &[("Range", &unsatisfiable)]);
            assert_eq!(reply.status, 416, "{name} {unsatisfiable}");
            assert_eq!(
                reply.header("content-range"),
                Some(format!("bytes */{n}").as_str())
            );
        }
        let whole = get(url, &[]);
        assert_eq!((whole.status, whole.body.len()), (200, n));
        assert!(whole.header("content-range").is_none());
        let ignored = get(url, &[("Range", "bytes=4-2")]);
        assert_eq!(ignored.status, 200, "an invalid range is ignored");
    }
}

#[test]
fn zero_length_file_has_no_satisfiable_range() {
    let f = fixture();
    let url = f.url("/org/model/resolve/main/empty.txt");
    let reply = get(&url, &[("Range", "bytes=0-0")]);
    assert_eq!(reply.status, 416);
    assert_eq!(reply.header("content-range"), Some("bytes */0"));
    let whole = get(&url, &[]);
    assert_eq!((whole.status, whole.body.len()), (200, 0));
}

#[test]
fn resolve_cache_mode_answers_relative_307_whose_target_serves_with_or_without_query() {
    let f = fixture();
    f.hub.set_resolve_cache_redirect(true);
    let reply = head(&f.url("/org/model/resolve/main/config.json"), &[]);
    assert_eq!(reply.status, 307);
    let location = reply.header("location").expect("Location");
    let prefix = format!("/api/resolve-cache/models/org/model/{}/config.json?", f.sha);
    assert!(location.starts_with(&prefix), "{location}");
    assert!(
        location.ends_with(&format!("=&etag=%22{CONFIG_BLOB}%22")),
        "{location}"
    );
    assert!(location.contains("%2Forg%2Fmodel%2Fresolve%2Fmain%2Fconfig.json="));
    let with_query = get(&f.url(location), &[]);
    assert_eq!(
        (with_query.status, with_query.body.as_slice()),
        (200, CONFIG)
    );
    assert_eq!(with_query.header("x-repo-commit"), Some(f.sha.as_str()));
    let without_query = head(&f.url(prefix.trim_end_matches('?')), &[]);
    assert_eq!(without_query.status, 200);
    assert_eq!(
        without_query.header("etag"),
        Some(format!("\"{CONFIG_BLOB}\"").as_str())
    );
    let lfs = head(&f.url("/org/model/resolve/main/model.gguf"), &[]);
    assert_eq!(lfs.status, 302, "LFS files still go to the CDN");
}

#[test]
fn content_from_disk_is_read_lazily() {
    let dir = std::env::temp_dir().join(format!("mock-hub-selftest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let disk = dir.join("weights.bin");
    let bytes = pseudo_random_bytes(3, 70_000);
    std::fs::write(&disk, &bytes).expect("write");
    let hub = MockHub::start();
    hub.commit(
        REPO,
        "main",
        vec![MockFile::lfs_from_path("weights.bin", disk)],
    );
    let location = get(
        &format!("{}/org/model/resolve/main/weights.bin", hub.endpoint()),
        &[],
    )
    .header("location")
    .expect("Location")
    .to_owned();
    let reply = get(&location, &[("Range", "bytes=1000-")]);
    assert_eq!(reply.body, &bytes[1000..]);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn commit_moves_the_branch_and_keeps_unchanged_lfs_ids() {
    let f = fixture();
    let second = f.hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", "{\"a\": 2}\n"),
            MockFile::lfs("model.gguf", f.big.clone()),
        ],
    );
    assert_ne!(second, f.sha);
    assert_eq!(
        f.hub.ref_sha(REPO, "main").as_deref(),
        Some(second.as_str())
    );
    let new = get(&f.url("/api/models/org/model?blobs=true"), &[]).json();
    let old = get(
        &f.url(&format!(
            "/api/models/org/model/revision/{}?blobs=true",
            f.sha
        )),
        &[],
    )
    .json();
    assert_eq!(new["sha"], second.as_str());
    assert_eq!(old["sha"], f.sha.as_str());
    let lfs =
        |info: &serde_json::Value| sibling(&siblings(info), "model.gguf")["lfs"]["sha256"].clone();
    assert_eq!(lfs(&new), lfs(&old));
    assert_ne!(
        sibling(&siblings(&new), "config.json")["blobId"],
        CONFIG_BLOB
    );
    assert_eq!(
        siblings(&new).len(),
        2,
        "the tree is exactly the committed files"
    );
    let pinned = head(
        &f.url(&format!("/org/model/resolve/{}/config.json", f.sha)),
        &[],
    );
    assert_eq!(
        pinned.header("etag"),
        Some(format!("\"{CONFIG_BLOB}\"").as_str())
    );
}

// ------------------------------------------------------------------------------------------------
// Errors and access control
// ------------------------------------------------------------------------------------------------

#[test]
fn auth_error_matrix_matches_the_hub() {
    let f = fixture();
    let hub = &f.hub;
    let files = || vec![MockFile::regular("config.json", CONFIG)];
    hub.commit("org/private", "main", files());
    hub.set_private("org/private", Some("hf_owner"));
    hub.commit("org/gated", "main", files());
    hub.set_gated("org/gated", Some("hf_approved"));
    hub.commit("org/off", "main", files());
    hub.set_disabled("org/off", true);
    let (owner, approved, other, bogus) = (
        bearer("hf_owner"),
        bearer("hf_approved"),
        bearer("hf_nobody"),
        bearer("hf_bogus"),
    );
    hub.add_token("hf_nobody");

    struct Case<'a> {
        path: &'a str,
        auth: Option<&'a str>,
        status: u16,
        code: Option<&'a str>,
        message: Option<&'a str>,
    }
    let private_api = "/api/models/org/private";
    let private_file = "/org/private/resolve/main/config.json";
    let gated_file = "/org/gated/resolve/main/config.json";
    let cases = [
        Case {
            path: private_api,
            auth: None,
            status: 401,
            code: Some("RepoNotFound"),
            message: Some("Invalid username or password."),
        },
        Case {
            path: private_file,
            auth: None,
            status: 401,
            code: Some("RepoNotFound"),
            message: Some("Invalid username or password."),
        },
        Case {
            path: private_api,
            auth: Some(&other),
            status: 404,
            code: Some("RepoNotFound"),
            message: None,
        },
        Case {
            path: private_file,
            auth: Some(&other),
            status: 404,
            code: Some("RepoNotFound"),
            message: None,
        },
        Case {
            path: private_api,
            auth: Some(&owner),
            status: 200,
            code: None,
            message: None,
        },
        Case {
            path: private_file,
            auth: Some(&owner),
            status: 200,
            code: None,
            message: None,
        },
        Case {
            path: "/api/models/org/missing",
            auth: None,
            status: 401,
            code: Some("RepoNotFound"),
            message: None,
        },
        Case {
            path: "/api/models/org/missing",
            auth: Some(&other),
            status: 404,
            code: Some("RepoNotFound"),
            message: None,
        },
        Case {
            path: "/api/models/org/model",
            auth: Some(&bogus),
            status: 401,
            code: None,
            message: Some("Invalid credentials in Authorization header"),
        },
        Case {
            path: "/org/model/resolve/main/config.json",
            auth: Some(&bogus),
            status: 401,
            code: None,
            message: Some("Invalid credentials in Authorization header"),
        },
        Case {
            path: "/api/models/org/gated",
            auth: None,
            status: 200,
            code: None,
            message: None,
        },
        Case {
            path: "/api/models/org/gated/tree/main",
            auth: None,
            status: 200,
            code: None,
            message: None,
        },
        Case {
            path: gated_file,
            auth: None,
            status: 401,
            code: Some("GatedRepo"),
            message: None,
        },
        Case {
            path: gated_file,
            auth: Some(&other),
            status: 403,
            code: Some("GatedRepo"),
            message: None,
        },
        Case {
            path: gated_file,
            auth: Some(&approved),
            status: 200,
            code: None,
            message: None,
        },
        Case {
            path: "/api/models/org/off",
            auth: None,
            status: 403,
            code: None,
            message: Some("Access to this resource is disabled."),
        },
        Case {
            path: "/org/off/resolve/main/config.json",
            auth: None,
            status: 403,
            code: None,
            message: Some("Access to this resource is disabled."),
        },
    ];
    for case in cases {
        let headers: Vec<(&str, &str)> = case
            .auth
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        let reply = head(&f.url(case.path), &headers);
        let label = format!("{} with {:?}", case.path, case.auth);
        assert_eq!(reply.status, case.status, "{label}");
        assert_eq!(reply.error_code(), case.code, "{label}");
        if let Some(message) = case.message {
            assert_eq!(reply.header("x-error-message"), Some(message), "{label}");
        }
        assert!(reply.header("x-request-id").is_some(), "{label}");
        if case.status >= 400 {
            let body = get(&f.url(case.path), &headers).json();
            assert!(body["error"].is_string(), "{label}: {body}");
        }
    }
    let gated = get(&f.url("/api/models/org/gated"), &[]).json();
    assert_eq!(gated["gated"], "manual");
    let gated_401 = head(&f.url(gated_file), &[]);
    assert!(
        gated_401
            .header("x-error-message")
            .expect("message")
            .contains("Please log in.")
    );
}

#[test]
fn renamed_repo_answers_relative_307_keeping_the_query() {
    let f = fixture();
    f.hub.rename_repo(REPO, "neworg/model");
    let cases = [
        (
            "/api/models/org/model/revision/main?blobs=true",
            "/api/models/neworg/model/revision/main?blobs=true",
        ),
        ("/api/models/org/model", "/api/models/neworg/model"),
        (
            "/api/models/org/model/tree/main?recursive=true&expand=false",
            "/api/models/neworg/model/tree/main?recursive=true&expand=false",
        ),
        (
            "/org/model/resolve/main/config.json",
            "/neworg/model/resolve/main/config.json",
        ),
    ];
    for (old, new) in cases {
        let reply = get(&f.url(old), &[]);
        assert_eq!(reply.status, 307, "{old}");
        assert_eq!(reply.header("location"), Some(new), "{old}");
        assert_eq!(
            reply.text(),
            format!("Temporary Redirect. Redirecting to {new}")
        );
        assert_eq!(get(&f.url(new), &[]).status, 200, "{new}");
    }

    let hub = MockHub::start();
    hub.commit(
        "bert-base-uncased",
        "main",
        vec![MockFile::regular("config.json", CONFIG)],
    );
    hub.rename_repo("bert-base-uncased", "google-bert/bert-base-uncased");
    let reply = get(
        &format!("{}/api/models/bert-base-uncased", hub.endpoint()),
        &[],
    );
    assert_eq!(
        reply.header("location"),
        Some("/api/models/google-bert/bert-base-uncased")
    );
    assert_eq!(
        reply.header("content-length"),
        Some("76"),
        "same body as the real Hub"
    );
}

#[test]
fn malformed_requests_get_400_and_the_server_keeps_serving() {
    let f = fixture();
    let port = f.hub.port();
    // Connection: close, because a routed 400 rightly keeps the connection open.
    let host = format!("Host: 127.0.0.1:{port}\r\nConnection: close\r\n");
    let bad = [
        "HELLO\r\n\r\n".to_owned(),
        "GET /x HTTP/1.1\r\n\r\n".to_owned(),
        format!("GET /api/models/org/model/revision/%zz HTTP/1.1\r\n{host}\r\n"),
        format!("GET /api/models/org/model?blobs=%G1 HTTP/1.1\r\n{host}\r\n"),
        format!("GET /org/model/resolve/main/%FF HTTP/1.1\r\n{host}\r\n"),
        format!("POST /admin/rate HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n"),
        format!("GET / HTTP/1.1\r\n{host}X: {}\r\n\r\n", "a".repeat(70_000)),
        format!("GET / HTTP/1.1\r\n{host}Content-Length: nope\r\n\r\n"),
        format!("GET / HTTP/1.1\r\n{host}bad header\r\n\r\n"),
    ];
    for request in &bad {
        let reply = raw(port, request);
        assert_eq!(
            reply.status(),
            400,
            "{:?}",
            &request[..request.len().min(60)]
        );
    }
    let post = raw(
        port,
        &format!("POST /org/model/resolve/main/config.json HTTP/1.1\r\n{host}\r\n"),
    );
    assert_eq!(post.status(), 405);
    assert_eq!(
        head(&f.url("/org/model/resolve/main/config.json"), &[]).status,
        200
    );
}

// ------------------------------------------------------------------------------------------------
// Faults
// ------------------------------------------------------------------------------------------------

#[test]
fn status_faults_carry_retry_headers_and_are_consumed_once() {
    let f = fixture();
    let target = Target::Resolve("config.json".into());
    f.hub.push_fault(
        target.clone(),
        Fault::Status {
            code: 429,
            retry_after: Some("1".into()),
        },
    );
    f.hub.push_fault(
        target,
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    assert_eq!(f.hub.pending_faults(), 2);
    let url = f.url("/org/model/resolve/main/config.json");
    let limited = head(&url, &[]);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.header("ratelimit"), Some("\"resolvers\";r=0;t=1"));
    assert!(limited.header("ratelimit-policy").is_some());
    assert!(limited.header("x-request-id").is_some());
    assert_eq!(head(&url, &[]).status, 503);
    assert_eq!(head(&url, &[]).status, 200);
    assert_eq!(f.hub.pending_faults(), 0);

    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    f.hub.push_fault(
        Target::Api,
        Fault::Status {
            code: 429,
            retry_after: Some(date.into()),
        },
    );
    let api = get(&f.url("/api/models/org/model"), &[]);
    assert_eq!((api.status, api.header("retry-after")), (429, Some(date)));
    assert!(
        api.header("ratelimit").is_none(),
        "only a number of seconds makes a RateLimit t"
    );

    f.hub.push_fault(
        Target::Tree,
        Fault::Status {
            code: 500,
            retry_after: None,
        },
    );
    assert_eq!(
        get(&f.url("/api/models/org/model/tree/main"), &[]).status,
        500
    );

    f.hub.push_fault(
        Target::Cdn("model.gguf".into()),
        Fault::Status {
            code: 403,
            retry_after: None,
        },
    );
    let cdn = get(&f.cdn_url("model.gguf"), &[]);
    assert_eq!(cdn.status, 403);
    assert!(cdn.text().starts_with("<?xml"), "CDN errors are XML");
}

#[test]
fn fault_targets_select_their_requests() {
    let f = fixture();
    f.hub.push_fault(
        Target::AnyFile,
        Fault::Status {
            code: 502,
            retry_after: None,
        },
    );
    assert_eq!(
        head(&f.url("/org/model/resolve/main/config.json"), &[]).status,
        200,
        "AnyFile is GET only"
    );
    assert_eq!(get(&f.url("/api/models/org/model"), &[]).status, 200);
    assert_eq!(
        get(&f.url("/org/model/resolve/main/config.json"), &[]).status,
        502
    );

    f.hub
        .push_fault(Target::Resolve("model.gguf".into()), Fault::DropAfter(10));
    assert_eq!(
        get(&f.url("/org/model/resolve/main/model.gguf"), &[]).status,
        302
    );
    assert_eq!(
        f.hub.pending_faults(),
        1,
        "a redirect has no file body to cut"
    );
    f.hub.clear_faults();
    assert_eq!(f.hub.pending_faults(), 0);
}

#[test]
fn drop_after_announces_the_full_length_then_closes() {
    let f = fixture();
    let cdn = f.cdn_url("model.gguf");
    f.hub
        .push_fault(Target::Cdn("model.gguf".into()), Fault::DropAfter(1000));
    let reply = raw_cdn_get(&f.hub, &cdn, "");
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.header("content-length"),
        Some(BIG_LEN.to_string().as_str())
    );
    assert_eq!(reply.body, &f.big[..1000]);

    f.hub.push_fault(Target::AnyFile, Fault::DropAfter(500));
    let ranged = raw_cdn_get(&f.hub, &cdn, "Range: bytes=1000-\r\n");
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.header("content-length"),
        Some((BIG_LEN - 1000).to_string().as_str())
    );
    assert_eq!(ranged.body, &f.big[1000..1500]);
    assert_eq!(f.hub.bytes_served(REPO, "model.gguf"), 1500);

    let port = f.hub.port();
    f.hub
        .push_fault(Target::Resolve("config.json".into()), Fault::DropAfter(3));
    let direct = raw(
        port,
        &format!(
            "GET /org/model/resolve/main/config.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        ),
    );
    assert_eq!(
        (direct.header("content-length"), direct.body.as_slice()),
        (Some("9"), &CONFIG[..3])
    );
}

#[test]
fn ignore_range_and_wrong_content_range_misanswer_a_range() {
    let f = fixture();
    let cdn = f.cdn_url("model.gguf");
    f.hub.push_fault(Target::AnyFile, Fault::IgnoreRange);
    let whole = get(&cdn, &[("Range", "bytes=10-")]);
    assert_eq!((whole.status, whole.body.len()), (200, BIG_LEN));
    assert!(whole.header("content-range").is_none());

    f.hub
        .push_fault(Target::Cdn("model.gguf".into()), Fault::WrongContentRange);
    let shifted = get(&cdn, &[("Range", "bytes=10-")]);
    assert_eq!(shifted.status, 206);
    let expected = format!("bytes 11-{}/{BIG_LEN}", BIG_LEN - 1);
    assert_eq!(shifted.header("content-range"), Some(expected.as_str()));
    assert_eq!(shifted.body, &f.big[11..]);

    f.hub.push_fault(Target::AnyFile, Fault::IgnoreRange);
    assert_eq!(get(&cdn, &[]).status, 200);
    assert_eq!(
        f.hub.pending_faults(),
        1,
        "range faults wait for a ranged request"
    );
}

#[test]
fn stall_after_goes_silent_mid_body_then_closes() {
    let f = fixture();
    let cdn = f.cdn_url("model.gguf");
    let stall = Duration::from_millis(400);
    f.hub
        .push_fault(Target::AnyFile, Fault::StallAfter { bytes: 100, stall });
    let reply = raw_cdn_get(&f.hub, &cdn, "");
    assert_eq!(
        reply.header("content-length"),
        Some(BIG_LEN.to_string().as_str())
    );
    assert_eq!(reply.body, &f.big[..100]);
    assert!(reply.elapsed >= stall, "{:?}", reply.elapsed);
}

#[test]
fn no_response_reads_the_request_then_says_nothing() {
    let f = fixture();
    let wait = Duration::from_millis(300);
    f.hub.push_fault(Target::Api, Fault::NoResponse(wait));
    let port = f.hub.port();
    let reply = raw(
        port,
        &format!("GET /api/models/org/model HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    );
    assert!(reply.head.is_empty() && reply.body.is_empty());
    assert!(reply.elapsed >= wait);
    let last = f.hub.requests().pop().expect("logged");
    assert_eq!(
        (last.path.as_str(), last.status),
        ("/api/models/org/model", 0)
    );
}

#[test]
fn rate_limit_paces_file_bodies_per_connection() {
    let f = fixture();
    let cdn = f.cdn_url("model.gguf");
    f.hub.set_rate_limit(Some(200_000));
    let started = Instant::now();
    let reply = get(&cdn, &[("Range", "bytes=0-99999")]);
    assert_eq!(reply.body.len(), 100_000);
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    let api_started = Instant::now();
    get(&f.url("/api/models/org/model?blobs=true"), &[]);
    assert!(
        api_started.elapsed() < Duration::from_millis(400),
        "metadata is not paced"
    );
    f.hub.set_rate_limit(None);
    let fast = Instant::now();
    get(&cdn, &[]);
    assert!(fast.elapsed() < Duration::from_secs(2));
}

// ------------------------------------------------------------------------------------------------
// Accounting, logging, connections, admin
// ------------------------------------------------------------------------------------------------

#[test]
fn bytes_served_counts_file_content_only_and_attributes_cdn_bytes() {
    let f = fixture();
    get(&f.url("/org/model/resolve/main/config.json"), &[]);
    head(&f.url("/org/model/resolve/main/config.json"), &[]);
    get(&f.url("/api/models/org/model?blobs=true"), &[]);
    let cdn = f.cdn_url("model.gguf");
    get(&cdn, &[]);
    get(&cdn, &[("Range", "bytes=0-99")]);
    assert_eq!(f.hub.bytes_served(REPO, "config.json"), 9);
    assert_eq!(f.hub.bytes_served(REPO, "model.gguf"), BIG_LEN as u64 + 100);
    assert_eq!(f.hub.bytes_served(REPO, "empty.txt"), 0);
    assert_eq!(f.hub.bytes_served_total(), BIG_LEN as u64 + 109);
    f.hub.reset_counters();
    assert_eq!(f.hub.bytes_served_total(), 0);
    assert_eq!(f.hub.bytes_served(REPO, "model.gguf"), 0);
}

#[test]
fn request_log_records_what_the_client_sent() {
    let f = fixture();
    let token = bearer("hf_owner");
    f.hub
        .commit("org/private", "main", vec![MockFile::regular("x", "x")]);
    f.hub.set_private("org/private", Some("hf_owner"));
    get(
        &f.url("/org/model/resolve/main/config.json"),
        &[
            ("Authorization", &token),
            ("Range", "bytes=0-0"),
            ("User-Agent", "selftest/1"),
        ],
    );
    let cdn = f.cdn_url("model.gguf");
    get(&cdn, &[("Authorization", &token)]);
    let log = f.hub.requests();
    let first = &log[0];
    assert_eq!(first.method, "GET");
    assert_eq!(first.host, format!("127.0.0.1:{}", f.hub.port()));
    assert_eq!(first.path, "/org/model/resolve/main/config.json");
    assert_eq!(first.authorization.as_deref(), Some(token.as_str()));
    assert_eq!(first.range.as_deref(), Some("bytes=0-0"));
    assert_eq!(first.user_agent.as_deref(), Some("selftest/1"));
    assert_eq!(first.status, 206);
    let cdn_entry = log.last().expect("CDN request");
    assert_eq!(cdn_entry.host, format!("localhost:{}", f.hub.port()));
    assert_eq!(cdn_entry.status, 200, "the CDN serves it...");
    assert_eq!(
        cdn_entry.authorization.as_deref(),
        Some(token.as_str()),
        "...but records the leak"
    );
    assert!(cdn_entry.path.starts_with("/cdn/") && cdn_entry.path.contains("X-Amz-Signature="));
    f.hub.clear_requests();
    assert!(f.hub.requests().is_empty());
}

#[test]
fn keep_alive_serves_several_requests_and_honours_connection_close() {
    let f = fixture();
    let port = f.hub.port();
    let one = format!(
        "HEAD /org/model/resolve/main/config.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    );
    let two = format!(
        "GET /org/model/resolve/main/config.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    let reply = raw(port, &format!("{one}{two}"));
    let all = format!("{}{}", reply.head, String::from_utf8_lossy(&reply.body));
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    assert!(all.contains("Connection: close"));
    assert!(
        all.ends_with("{\"a\": 1}\n"),
        "closed right after the second body: {all}"
    );
    assert!(reply.elapsed < Duration::from_secs(5));

    let old = raw(
        port,
        &format!(
            "GET /org/model/resolve/main/config.json HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        ),
    );
    assert_eq!(
        (old.status(), old.body.as_slice()),
        (200, CONFIG),
        "HTTP/1.0 closes by default"
    );
}

#[test]
fn dropping_the_hub_stops_the_listener_and_open_connections() {
    let hub = MockHub::start();
    hub.commit(REPO, "main", vec![MockFile::regular("config.json", CONFIG)]);
    let port = hub.port();
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    idle.write_all(
        format!(
            "HEAD /org/model/resolve/main/config.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("send");
    let mut first = [0; 12];
    idle.read_exact(&mut first).expect("answer");
    drop(hub);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "listener closed"
    );
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    let _ = idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut after = Vec::new();
    let n = idle.read_to_end(&mut after).unwrap_or(0);
    assert_eq!(n, 0, "a pooled connection is not served after drop");
}

#[test]
fn admin_routes_steer_the_hub() {
    let f = fixture();
    let port = f.hub.port();
    let admin = |method: &str, path: &str| {
        let reply = raw(
            port,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        );
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        (reply.status(), body)
    };
    let (status, body) = admin(
        "POST",
        "/admin/fault?target=cdn:model.gguf&kind=drop&bytes=10",
    );
    assert_eq!((status, body["pending_faults"].as_u64()), (200, Some(1)));
    let dropped = raw_cdn_get(&f.hub, &f.cdn_url("model.gguf"), "");
    assert_eq!(dropped.body.len(), 10);
    for fault in [
        "target=anyfile&kind=status&code=503&retry_after=2&count=2",
        "target=resolve:config.json&kind=ignore_range",
        "target=api&kind=no_response&ms=10",
        "target=tree&kind=stall&bytes=5&ms=10",
        "target=anyfile&kind=wrong_content_range",
    ] {
        assert_eq!(
            admin("POST", &format!("/admin/fault?{fault}")).0,
            200,
            "{fault}"
        );
    }
    assert_eq!(f.hub.pending_faults(), 6);
    assert_eq!(
        admin("POST", "/admin/fault?target=nowhere&kind=drop&bytes=1").0,
        400
    );
    assert_eq!(admin("POST", "/admin/fault?target=api&kind=drop").0, 400);

    assert_eq!(admin("POST", "/admin/rate?bps=1000").0, 200);
    assert_eq!(admin("POST", "/admin/rate?bps=0").0, 200);
    let (_, stats) = admin("GET", "/admin/stats");
    assert_eq!(stats["bytes_served_total"].as_u64(), Some(10));
    assert_eq!(admin("POST", "/admin/reset").0, 200);
    assert_eq!(f.hub.pending_faults(), 0);
    assert_eq!(f.hub.bytes_served_total(), 0);
    assert!(f.hub.requests().is_empty(), "admin calls are not logged");

    let (status, body) = admin("POST", "/admin/cdn?base=http://localhost:9/");
    assert_eq!(
        (status, body["cdn_base"].as_str()),
        (200, Some("http://localhost:9/"))
    );
    assert!(
        f.cdn_url("model.gguf")
            .starts_with("http://localhost:9/cdn/")
    );
    assert_eq!(admin("POST", "/admin/cdn?base=ftp://x").0, 400);
    assert_eq!(admin("POST", "/admin/cdn?base=").0, 200);
    assert!(
        f.cdn_url("model.gguf")
            .starts_with(&format!("{}/cdn/", f.hub.cdn_base()))
    );

    assert_eq!(admin("POST", "/admin/commit").0, 404, "no hook installed");
    f.hub.on_admin_commit(|repo, branch| {
        assert_eq!((repo, branch), (REPO, "main"));
        Ok(vec![MockFile::regular("config.json", "{}\n")])
    });
    let (status, body) = admin("POST", "/admin/commit?repo=org/model&branch=main");
    assert_eq!(status, 200);
    assert_eq!(f.hub.ref_sha(REPO, "main").as_deref(), body["sha"].as_str());
    assert_eq!(admin("GET", "/admin/nope").0, 404);
}

#[test]
fn pseudo_random_bytes_are_deterministic_and_streamable() {
    let whole = pseudo_random_bytes(42, 1001);
    assert_eq!(whole, pseudo_random_bytes(42, 1001));
    assert_ne!(whole, pseudo_random_bytes(43, 1001));
    let mut stream = PseudoRandom::new(42);
    let mut pieces = Vec::new();
    for size in [1, 7, 8, 3, 500, 482] {
        let mut buf = vec![0; size];
        stream.fill(&mut buf);
        pieces.extend(buf);
    }
    assert_eq!(pieces, whole);
}
