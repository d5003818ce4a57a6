//! Faults: each injected fault does what it says, once, to the requests it targets.

use super::*;

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
