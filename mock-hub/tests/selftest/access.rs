//! Errors and access control: tokens, private and gated repos, renames, malformed requests.

use super::*;

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
