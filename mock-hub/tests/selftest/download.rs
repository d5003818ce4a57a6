//! Resolve and CDN: direct files, LFS redirects, signed URLs, ranges, resolve-cache, commits.

use super::*;

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
