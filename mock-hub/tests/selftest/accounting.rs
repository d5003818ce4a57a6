//! Accounting, logging, connections and the admin routes.

use super::*;

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
