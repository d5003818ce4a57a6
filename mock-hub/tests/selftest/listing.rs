//! Metadata and listing: repo info, siblings, `/tree` pages, revisions, repo ids.

use super::*;

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
