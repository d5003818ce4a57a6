//! ModelScope's download API: listing shapes, folder entries, sha256 knobs, failure answers,
//! auth by bearer or cookie, direct and redirected downloads, faults and accounting.

use super::*;
use mock_hub::ListingShape;

/// The fixture's files, committed to `master` as a ModelScope test does.
fn ms_fixture() -> Fixture {
    let hub = MockHub::start();
    let big = pseudo_random_bytes(7, BIG_LEN);
    let sha = hub.commit(
        REPO,
        "master",
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

const LISTING: &str = "/api/v1/models/org/model/repo/files?Revision=master&Recursive=True";
const PATHS: [&str; 7] = [
    "config.json",
    "empty.txt",
    "model.gguf",
    "sub",
    "sub/dir",
    "sub/dir/notes.txt",
    "sub/my file.txt",
];

fn file_url(f: &Fixture, rev: &str, path: &str) -> String {
    f.url(&format!(
        "/api/v1/models/org/model/repo?Revision={rev}&FilePath={path}"
    ))
}

/// The entries of any listing shape, and the key their path is under.
fn entries(body: &serde_json::Value) -> (Vec<serde_json::Value>, &'static str) {
    if let Some(array) = body.as_array() {
        return (array.clone(), "Path");
    }
    let data = &body["Data"];
    if let Some(array) = data.as_array() {
        return (array.clone(), "Path");
    }
    if let Some(files) = data["Files"].as_array() {
        return (files.clone(), "Path");
    }
    let files = data["files"].as_array().expect("a file list");
    (files.clone(), "path")
}

fn paths(body: &serde_json::Value) -> Vec<String> {
    let (entries, key) = entries(body);
    entries
        .iter()
        .map(|e| e[key].as_str().expect("path").to_owned())
        .collect()
}

fn entry<'a>(entries: &'a [serde_json::Value], path: &str) -> &'a serde_json::Value {
    entries
        .iter()
        .find(|e| e["Path"] == path || e["path"] == path)
        .unwrap_or_else(|| panic!("no entry {path}"))
}

#[test]
fn envelope_listing_has_files_and_folders_sorted_by_path() {
    let f = ms_fixture();
    let reply = get(&f.url(LISTING), &[]);
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["Code"], 200);
    assert_eq!(body["Success"], true);
    assert_eq!(body["Message"], "success");
    assert!(body["RequestId"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(paths(&body), PATHS);

    let (listed, _) = entries(&body);
    let notes = entry(&listed, "sub/dir/notes.txt");
    assert_eq!(notes["Name"], "notes.txt");
    assert_eq!(notes["Type"], "blob");
    assert_eq!(notes["Size"], 6);
    assert_eq!(notes["Sha256"], sha256_hex(b"hello\n").as_str());
    assert_eq!(notes["Revision"], f.sha.as_str());
    assert_eq!(notes["IsLFS"], false);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let committed = notes["CommittedDate"].as_u64().expect("unix seconds");
    assert!(committed <= now && committed + 600 > now, "{committed}");
    let model = entry(&listed, "model.gguf");
    assert_eq!(model["IsLFS"], true);
    assert_eq!(model["Size"], BIG_LEN);
    assert_eq!(model["Sha256"], sha256_hex(&f.big).as_str());
    let folder = entry(&listed, "sub/dir");
    assert_eq!(
        folder,
        &serde_json::json!({"Name": "dir", "Path": "sub/dir", "Type": "tree", "Size": 0, "Sha256": ""})
    );
    assert_eq!(
        entry(&listed, "empty.txt")["Sha256"],
        sha256_hex(b"").as_str()
    );
}

#[test]
fn revision_may_be_a_commit_or_an_encoded_branch_and_defaults_to_master() {
    let f = ms_fixture();
    let old = f.sha.clone();
    f.hub.set_ref(REPO, "feat/x", &old);
    let new = f
        .hub
        .commit(REPO, "master", vec![MockFile::regular("only.txt", "1")]);
    let at = |query: &str| {
        let reply = get(
            &f.url(&format!("/api/v1/models/org/model/repo/files?{query}")),
            &[],
        );
        assert_eq!(reply.status, 200, "{query}: {}", reply.text());
        paths(&reply.json())
    };
    assert_eq!(at(&format!("Revision={old}&Recursive=True")), PATHS);
    assert_eq!(at("Revision=feat%2Fx&Recursive=True"), PATHS);
    assert_eq!(at("Revision=master&Recursive=True"), ["only.txt"]);
    assert_eq!(at("Recursive=True"), ["only.txt"]);
    f.hub.set_ref(REPO, "master", &old);
    assert_eq!(
        at("Revision=master"),
        ["config.json", "empty.txt", "model.gguf", "sub"],
        "not recursive: the root only"
    );
    let file = get(&file_url(&f, &new, "only.txt"), &[]);
    assert_eq!((file.status, file.body.as_slice()), (200, b"1".as_slice()));
}

#[test]
fn every_listing_shape_carries_the_same_entries() {
    let f = ms_fixture();
    f.hub.set_modelscope_listing_shape(ListingShape::DataArray);
    let body = get(&f.url(LISTING), &[]).json();
    assert_eq!(body["Code"], 200);
    assert!(body["Data"].is_array(), "{body}");
    assert_eq!(paths(&body), PATHS);

    f.hub.set_modelscope_listing_shape(ListingShape::BareArray);
    let body = get(&f.url(LISTING), &[]).json();
    assert!(body.is_array(), "{body}");
    assert_eq!(paths(&body), PATHS);

    f.hub.set_modelscope_listing_shape(ListingShape::LowerFiles);
    let body = get(&f.url(LISTING), &[]).json();
    assert!(body.get("Code").is_none() && body["Data"]["Files"].is_null());
    assert_eq!(paths(&body), PATHS);
    let (listed, _) = entries(&body);
    assert_eq!(
        entry(&listed, "config.json"),
        &serde_json::json!({"name": "config.json", "path": "config.json", "type": "blob", "size": 9, "sha256": sha256_hex(CONFIG)})
    );
    assert_eq!(entry(&listed, "sub")["type"], "tree");

    f.hub.set_modelscope_listing_shape(ListingShape::Envelope);
    assert!(get(&f.url(LISTING), &[]).json()["Data"]["Files"].is_array());
}

#[test]
fn sha256_can_be_omitted_or_replaced_and_size_lies_apply() {
    let f = ms_fixture();
    f.hub.set_modelscope_sha256(REPO, "model.gguf", None);
    f.hub
        .set_modelscope_sha256(REPO, "config.json", Some("abc123"));
    f.hub.set_size_lie(REPO, "sub/dir/notes.txt", 5);
    let (listed, _) = entries(&get(&f.url(LISTING), &[]).json());
    let model = entry(&listed, "model.gguf");
    assert!(model.get("Sha256").is_none(), "{model}");
    assert_eq!(model["Size"], BIG_LEN, "only the hash is left out");
    assert_eq!(entry(&listed, "config.json")["Sha256"], "abc123");
    assert_eq!(entry(&listed, "sub/dir/notes.txt")["Size"], 11);

    f.hub.reset_modelscope_sha256(REPO, "model.gguf");
    let (listed, _) = entries(&get(&f.url(LISTING), &[]).json());
    assert_eq!(
        entry(&listed, "model.gguf")["Sha256"],
        sha256_hex(&f.big).as_str()
    );
}

#[test]
fn failures_answer_modelscope_envelopes() {
    let f = ms_fixture();
    let missing = get(
        &f.url("/api/v1/models/org/nope/repo/files?Revision=master&Recursive=True"),
        &[],
    );
    assert_eq!(missing.status, 404);
    let body = missing.json();
    assert_eq!(
        (&body["Code"], &body["Success"], &body["Message"]),
        (
            &serde_json::json!(404),
            &serde_json::json!(false),
            &serde_json::json!("Model not found")
        )
    );
    assert!(missing.error_code().is_none(), "no Hub headers");
    let bad_rev = get(
        &f.url("/api/v1/models/org/model/repo/files?Revision=nope&Recursive=True"),
        &[],
    );
    assert_eq!(bad_rev.status, 404);
    assert_eq!(bad_rev.json()["Success"], false);

    let envelope = "{\"Code\":10010205001,\"Success\":false,\"Message\":\"model not found\"}";
    f.hub
        .set_modelscope_listing_answer(Some((200, envelope.to_owned())));
    let forced = get(&f.url(LISTING), &[]);
    assert_eq!((forced.status, forced.text().as_str()), (200, envelope));
    for status in [401, 403, 500] {
        let body = format!("{{\"Code\":{status},\"Success\":false,\"Message\":\"x\"}}");
        f.hub
            .set_modelscope_listing_answer(Some((status, body.clone())));
        let reply = get(&f.url(LISTING), &[]);
        assert_eq!((reply.status, reply.text()), (status, body));
    }
    let file = get(&file_url(&f, "master", "config.json"), &[]);
    assert_eq!(file.status, 200, "the knob is about listings only");
    f.hub.set_modelscope_listing_answer(None);
    assert_eq!(paths(&get(&f.url(LISTING), &[]).json()), PATHS);

    let unknown = get(&file_url(&f, "master", "nope.bin"), &[]);
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["Code"], 404);
    let no_path = get(&f.url("/api/v1/models/org/model/repo?Revision=master"), &[]);
    assert_eq!(no_path.status, 400);
}

#[test]
fn private_repos_take_a_bearer_token_or_the_session_cookie() {
    let f = ms_fixture();
    f.hub.set_private(REPO, Some("ms_owner"));
    let file = file_url(&f, "master", "config.json");
    for url in [f.url(LISTING), file.clone()] {
        let denied = get(&url, &[]);
        assert_eq!(denied.status, 401, "{url}");
        assert_eq!(denied.json()["Code"], 401);
        assert_eq!(get(&url, &[("Authorization", "Bearer other")]).status, 401);
        assert_eq!(get(&url, &[("Cookie", "m_session_id=other")]).status, 401);
        assert_eq!(
            get(&url, &[("Authorization", &bearer("ms_owner"))]).status,
            200
        );
        let cookie = "theme=dark; m_session_id=ms_owner";
        assert_eq!(get(&url, &[("Cookie", cookie)]).status, 200, "{url}");
    }
    get(
        &file,
        &[
            ("Authorization", "Bearer ms_owner"),
            ("Cookie", "m_session_id=ms_owner"),
        ],
    );
    let last = f.hub.requests().pop().expect("logged");
    assert_eq!(last.authorization.as_deref(), Some("Bearer ms_owner"));
    assert_eq!(last.cookie.as_deref(), Some("m_session_id=ms_owner"));
    assert_eq!(last.status, 200);

    f.hub.set_public(REPO);
    f.hub.set_gated(REPO, Some("ms_approved"));
    assert_eq!(get(&f.url(LISTING), &[]).status, 200, "metadata stays open");
    assert_eq!(get(&file, &[]).status, 401);
    let cookie = [("Cookie", "m_session_id=ms_approved")];
    assert_eq!(get(&file, &cookie).body, CONFIG);
    f.hub.set_disabled(REPO, true);
    assert_eq!(get(&f.url(LISTING), &cookie).status, 403);
}

#[test]
fn direct_downloads_serve_bytes_and_ranges_without_hub_headers() {
    let f = ms_fixture();
    let url = file_url(&f, "master", "model.gguf");
    let meta = head(&url, &[]);
    assert_eq!(meta.status, 200);
    assert_eq!(
        meta.header("content-length"),
        Some(BIG_LEN.to_string().as_str())
    );
    assert_eq!(meta.header("accept-ranges"), Some("bytes"));
    for absent in [
        "x-repo-commit",
        "x-linked-etag",
        "x-linked-size",
        "location",
    ] {
        assert!(meta.header(absent).is_none(), "{absent}");
    }
    assert_eq!(get(&url, &[]).body, f.big);

    let part = get(&url, &[("Range", "bytes=10-19")]);
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 10-19/{BIG_LEN}").as_str())
    );
    assert_eq!(part.body, &f.big[10..20]);
    let tail = get(&url, &[("Range", &format!("bytes={}-", BIG_LEN - 5))]);
    assert_eq!(
        (tail.status, tail.body.as_slice()),
        (206, &f.big[BIG_LEN - 5..])
    );
    let past = get(&url, &[("Range", &format!("bytes={BIG_LEN}-"))]);
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{BIG_LEN}").as_str())
    );
    assert_eq!(past.json()["Code"], 416);

    let spaced = get(&file_url(&f, &f.sha, "sub%2Fmy%20file.txt"), &[]);
    assert_eq!(spaced.body, b"spaced\n");
    assert_eq!(
        f.hub.bytes_served(REPO, "model.gguf"),
        BIG_LEN as u64 + 10 + 5
    );
    assert_eq!(f.hub.bytes_served(REPO, "sub/my file.txt"), 7);
    assert_eq!(f.hub.bytes_served_total(), BIG_LEN as u64 + 10 + 5 + 7);
    let logged = f.hub.requests();
    assert!(
        logged
            .iter()
            .any(|r| r.path.contains("FilePath=sub%2Fmy%20file.txt"))
    );
}

#[test]
fn redirect_mode_sends_every_file_to_the_cdn_host() {
    let f = ms_fixture();
    f.hub.set_modelscope_redirect(true);
    for (path, content) in [
        ("model.gguf", f.big.clone()),
        ("config.json", CONFIG.to_vec()),
    ] {
        let reply = get(
            &file_url(&f, "master", path),
            &[("Authorization", "Bearer t")],
        );
        assert_eq!(reply.status, 302, "{path}");
        for absent in ["x-repo-commit", "x-linked-etag", "x-linked-size"] {
            assert!(reply.header(absent).is_none(), "{absent}");
        }
        let location = reply.header("location").expect("Location").to_owned();
        let sha256 = sha256_hex(&content);
        assert!(
            location.starts_with(&format!("{}/cdn/{sha256}?", f.hub.cdn_base())),
            "{location}"
        );
        assert_eq!(get(&location, &[]).body, content);
        let part = get(&location, &[("Range", "bytes=1-3")]);
        assert_eq!((part.status, part.body.as_slice()), (206, &content[1..4]));
    }
    assert_eq!(f.hub.bytes_served(REPO, "config.json"), 9 + 3);
    assert_eq!(f.hub.bytes_served(REPO, "model.gguf"), BIG_LEN as u64 + 3);

    f.hub.set_modelscope_redirect(false);
    assert_eq!(get(&file_url(&f, "master", "config.json"), &[]).status, 200);
}

#[test]
fn faults_and_rate_limits_apply_to_the_modelscope_routes() {
    let f = ms_fixture();
    let status = |code| Fault::Status {
        code,
        retry_after: None,
    };
    f.hub.push_fault(Target::Api, status(500));
    assert_eq!(get(&f.url(LISTING), &[]).status, 500);
    f.hub
        .push_fault(Target::Resolve("config.json".into()), status(503));
    let file = file_url(&f, "master", "config.json");
    assert_eq!(get(&file_url(&f, "master", "empty.txt"), &[]).status, 200);
    assert_eq!(get(&file, &[]).status, 503, "the fault waited for its path");
    assert_eq!(f.hub.pending_faults(), 0);

    f.hub.push_fault(Target::AnyFile, Fault::DropAfter(1000));
    let port = f.hub.port();
    let cut = raw(
        port,
        &format!(
            "GET /api/v1/models/org/model/repo?Revision=master&FilePath=model.gguf HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(cut.status(), 200);
    assert_eq!(
        cut.header("content-length"),
        Some(BIG_LEN.to_string().as_str())
    );
    assert_eq!(cut.body, &f.big[..1000]);

    f.hub.set_modelscope_redirect(true);
    f.hub
        .push_fault(Target::Cdn("model.gguf".into()), status(500));
    let location = get(&file_url(&f, "master", "model.gguf"), &[])
        .header("location")
        .expect("Location")
        .to_owned();
    assert_eq!(get(&location, &[]).status, 500);
    f.hub.set_modelscope_redirect(false);

    f.hub.set_rate_limit(Some(200_000));
    let started = Instant::now();
    assert_eq!(get(&file_url(&f, "master", "model.gguf"), &[]).body, f.big);
    assert!(started.elapsed() >= Duration::from_millis(1200), "paced");
}
