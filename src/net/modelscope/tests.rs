use super::*;

/// Every vector of `tests/fixtures/modelscope_fingerprints.json`, computed by compiling lemonade's
/// own `registry_tree_snapshot_id` (integrations/lemonade/fingerprint_vectors.cpp), matches ours.
#[test]
fn fingerprints_equal_lemonades() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/modelscope_fingerprints.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    let fixture: Value = serde_json::from_str(&text).expect("json");
    let vectors = fixture["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 10);
    for v in vectors {
        let entries: Vec<Entry> = v["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| Entry {
                path: e["path"].as_str().expect("path").to_string(),
                size: e["size"].as_u64().expect("size"),
                directory: e["is_directory"].as_bool().expect("is_directory"),
                sha256: e["hash"].as_str().expect("hash").to_string(),
            })
            .collect();
        let revision = v["revision"].as_str().expect("revision");
        let want = v["snapshot_id"].as_str().expect("snapshot_id");
        assert_eq!(tree_snapshot_id(revision, &entries), want, "{}", v["name"]);
        assert!(crate::repo_path::is_tree_snapshot_id(want), "{want}");
    }
}

const SHA: &str = "0f343b0931126a20f133d67c2b018a3b5e6f8a4c3b2a1908172635445362718a";

fn listing(body: &str) -> Result<(String, Vec<RemoteFile>)> {
    parse_listing("http://ms/api", "org/m", "master", body)
}

#[test]
fn every_body_shape_gives_the_same_listing() {
    let entries = format!(
        r#"[{{"Path":"sub","Name":"sub","Type":"tree","Size":0,"Sha256":""}},
            {{"Path":"sub/m.gguf","Name":"m.gguf","Type":"blob","Size":5,"Sha256":"{SHA}"}},
            {{"Path":"config.json","Type":"blob","Size":"12","Sha256":""}}]"#
    );
    let lower = entries
        .replace("\"Path\"", "\"path\"")
        .replace("\"Type\"", "\"type\"")
        .replace("\"Size\"", "\"size\"")
        .replace("\"Sha256\"", "\"sha256\"");
    let shapes = [
        entries.clone(),
        format!(r#"{{"Code":200,"Success":true,"Data":{entries}}}"#),
        format!(
            r#"{{"Code":200,"Success":true,"Message":"success","Data":{{"Files":{entries}}}}}"#
        ),
        format!(r#"{{"Data":{{"files":{lower}}}}}"#),
    ];
    let first = listing(&shapes[0]).expect("bare array");
    assert!(first.0.starts_with("modelscope-master-"));
    assert_eq!(first.1.len(), 2, "folders are not files");
    assert_eq!(first.1[0].path, "config.json");
    assert_eq!(first.1[0].size, 12);
    assert_eq!(first.1[0].id.algorithm(), "size-only");
    assert_eq!(first.1[1].id, ContentId::Sha256(SHA.to_string()));
    for body in &shapes[1..] {
        assert_eq!(listing(body).expect("shape"), first, "{body}");
    }
}

#[test]
fn a_changed_tree_is_another_snapshot() {
    let one = format!(r#"[{{"Path":"m.gguf","Size":5,"Sha256":"{SHA}"}}]"#);
    let two =
        format!(r#"[{{"Path":"m.gguf","Size":5,"Sha256":"{SHA}"}},{{"Path":"d","Type":"dir"}}]"#);
    let (a, _) = listing(&one).expect("one");
    let (b, _) = listing(&two).expect("two");
    assert_ne!(
        a, b,
        "a folder entry enters the fingerprint, as in lemonade"
    );
    // A size-only file's identity is bound to its snapshot: it never matches another tree's.
    let sized =
        |size: u32| format!(r#"[{{"Path":"c.json","Size":{size}}},{{"Path":"x","Size":1}}]"#);
    let (s1, f1) = listing(&sized(3)).expect("s1");
    let (s2, f2) = listing(&sized(4)).expect("s2");
    assert_ne!(s1, s2);
    assert_ne!(
        f1[1].id, f2[1].id,
        "x is unchanged, but its size-only id is per snapshot"
    );
}

#[test]
fn failure_envelopes_are_typed() {
    for body in [
        r#"{"Code":10010205001,"Success":false,"Message":"Model not found"}"#,
        r#"{"Code":"E3001","Message":"x"}"#,
        r#"{"code":404}"#,
        r#"{"Success":false,"Message":"Permission denied"}"#,
    ] {
        assert!(
            matches!(listing(body), Err(Error::RepoNotFound { .. })),
            "{body}: {:?}",
            listing(body)
        );
    }
    let e = listing(r#"{"Code":500,"Message":"internal trouble"}"#).expect_err("failure");
    assert!(matches!(e, Error::InvalidResponse { .. }), "{e:?}");
    assert!(e.to_string().contains("internal trouble (code 500)"), "{e}");
    for ok in [
        r#"{"Code":"OK","Data":[]}"#,
        r#"{"Code":0,"Success":true,"Data":[]}"#,
    ] {
        assert!(listing(ok).is_ok(), "{ok}");
    }
    for bad in ["", "{", r#"{"Data":{"Files":7}}"#, r#"{"Data":"x"}"#, "7"] {
        assert!(
            matches!(listing(bad), Err(Error::InvalidResponse { .. })),
            "{bad}"
        );
    }
}

#[test]
fn hostile_entries_are_refused() {
    for body in [
        r#"[{"Path":"../x","Size":1}]"#,
        r#"[{"Path":"a","Size":1,"Sha256":"nothex"}]"#,
        r#"[{"Path":"a","Size":1},{"Path":"a","Size":2}]"#,
        r#"[{"Path":"a","Size":1},{"Path":"a/b","Size":2}]"#,
        r#"[{"Path":"big","Size":18446744073709551615}]"#,
    ] {
        assert!(listing(body).is_err(), "{body}");
    }
}

#[test]
fn sizes_are_read_as_lemonade_reads_them() {
    let size = |v: &str| json_size(&serde_json::from_str(v).expect("json"));
    assert_eq!(size(r#"{"size":5,"Size":7}"#), 5);
    assert_eq!(
        size(r#"{"size":1.5,"Size":7}"#),
        7,
        "a fraction is passed over"
    );
    assert_eq!(size(r#"{"size":null,"FileSize":"9"}"#), 9);
    assert_eq!(size(r#"{"size":-3,"Size":7}"#), 0);
    assert_eq!(size(r#"{"file_size":" 42abc"}"#), 42);
    assert_eq!(size(r#"{"Size":"abc"}"#), 0);
    assert_eq!(size(r#"{"Size":"99999999999999999999999"}"#), 0);
    assert_eq!(size("{}"), 0);
    assert_eq!(stoull("-1"), u64::MAX);
}

#[test]
fn urls_are_encoded_as_lemonade_encodes_them() {
    assert_eq!(
        listing_url("https://modelscope.cn", "Qwen/Qwen3 8B", "release/v1"),
        "https://modelscope.cn/api/v1/models/Qwen/Qwen3%208B/repo/files?Revision=release%2Fv1&Recursive=True"
    );
    assert_eq!(
        file_url("https://m", "o/n", "master", "sub dir/模型.gguf"),
        "https://m/api/v1/models/o/n/repo?Revision=master&FilePath=sub%20dir%2F%E6%A8%A1%E5%9E%8B.gguf"
    );
}
