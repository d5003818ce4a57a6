//! The `resume-pull` binary's contract: flags, `--json` events and result, exit codes, SIGINT.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, tree};
use mock_hub::{MockFile, MockHub, pseudo_random_bytes};
use serde_json::Value;

const REPO: &str = "org/model";

fn cli(hub: &MockHub, cache: &std::path::Path) -> Command {
    let mut c = Command::new(common::resume_pull());
    c.env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN")
        .env_remove("HF_ENDPOINT")
        .env("HF_HOME", cache.join("hf-home"))
        .arg("--endpoint")
        .arg(hub.endpoint())
        .arg("--cache-dir")
        .arg(cache);
    c
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn repo_with(size: usize) -> (MockHub, String) {
    let hub = MockHub::start();
    let sha = hub.commit(
        REPO,
        "main",
        vec![
            MockFile::regular("config.json", b"{}".to_vec()),
            MockFile::lfs("model.gguf", pseudo_random_bytes(9, size)),
        ],
    );
    (hub, sha)
}

#[test]
fn json_mode_streams_events_and_ends_with_a_result() {
    let (hub, sha) = repo_with(2 << 20);
    let cache = TempDir::new("cli-json");
    let out = cli(&hub, cache.path())
        .arg("--json")
        .arg(REPO)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let kinds: Vec<_> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    for k in ["resolved", "plan", "file_start", "file_done", "complete"] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
    let result = lines.last().expect("result line");
    assert_eq!(result["status"], "ok");
    assert_eq!(result["repo"], REPO);
    assert_eq!(result["commit"], sha.as_str());
    assert_eq!(result["files"], 2);
    assert_eq!(result["bytes_downloaded"], (2 << 20) + 2);
    assert_eq!(result["bytes_reused"], 0);
    assert_eq!(result["bytes_salvaged"], 0);
    let snap = result["snapshot_path"].as_str().expect("snapshot path");
    assert_eq!(
        tree(std::path::Path::new(snap)),
        ["config.json", "model.gguf"]
    );
    assert!(result.get("error").is_none());
}

#[test]
fn failures_report_code_and_exit_1() {
    let (hub, _) = repo_with(1000);
    let cache = TempDir::new("cli-fail");
    let out = cli(&hub, cache.path())
        .args(["--json", "org/missing"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out.stdout);
    let result = lines.last().expect("result");
    assert_eq!(result["status"], "error");
    assert_eq!(result["error"]["code"], "repo_not_found");
    // A failure says what was done and kept: nothing, here (it failed before planning).
    assert_eq!(result["bytes_downloaded"], 0);
    assert_eq!(result["bytes_on_disk"], 0);
    assert_eq!(result["plan"], serde_json::json!([]));
    assert!(
        result["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("org/missing")
    );
}

#[test]
fn usage_errors_exit_2_and_help_and_version_work() {
    let out = Command::new(common::resume_pull()).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(common::resume_pull())
        .args(["--bogus", "a/b"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown option --bogus"));
    // One line of error and a pointer to the help, not the whole help text.
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "error: unknown option --bogus",
            "run `resume-pull --help` for usage"
        ],
        "{stderr}"
    );
    let out = Command::new(common::resume_pull())
        .args(["--with", "no-colon", "a/b"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 2);
    let out = Command::new(common::resume_pull())
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    for flag in [
        "--revision",
        "--cache-dir",
        "--endpoint",
        "--token",
        "--include",
        "--exclude",
        "--json",
        "--quiet",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    let out = Command::new(common::resume_pull())
        .arg("--version")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("resume-pull "));
    let out = Command::new(common::resume_pull())
        .args(["--endpoint", "ftp://x", "a/b"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "invalid endpoint is a usage error"
    );
}

#[test]
fn plain_output_when_not_a_terminal() {
    let (hub, _) = repo_with(100_000);
    let cache = TempDir::new("cli-plain");
    let out = cli(&hub, cache.path()).arg(REPO).output().expect("run");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let snapshots = cache.path().join("models--org--model/snapshots");
    assert!(
        stdout.trim().starts_with(&snapshots.display().to_string()),
        "stdout is the snapshot path: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("done:"), "{stderr}");
    assert!(!stderr.contains('\r'), "no bar redraws when not a terminal");
    let out = cli(&hub, cache.path())
        .args(["--quiet", REPO])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "quiet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
#[test]
fn sigint_stops_within_a_second_keeps_partial_and_rerun_resumes() {
    let size = 24 << 20;
    let (hub, sha) = repo_with(size);
    hub.set_rate_limit(Some(4 << 20));
    let cache = TempDir::new("cli-sigint");
    let mut child = cli(&hub, cache.path())
        .args(["--json", REPO])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    // Wait until bytes of the big file are flowing.
    loop {
        let line = lines
            .next()
            .expect("a progress event before the end")
            .expect("line");
        let v: Value = serde_json::from_str(&line).expect("json");
        if v["event"] == "progress" && v["file"]["path"] == "model.gguf" {
            break;
        }
    }
    let t0 = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?} to stop",
        t0.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    let result: Value = serde_json::from_str(rest.last().expect("result line")).expect("json");
    assert_eq!(result["status"], "cancelled");

    let snap = cache.path().join("models--org--model/snapshots").join(&sha);
    let partial = std::fs::metadata(snap.join("model.gguf.partial"))
        .expect("partial kept")
        .len();
    assert!(partial > 0);

    hub.set_rate_limit(None);
    // Let the hub notice the dead connection before counting afresh.
    std::thread::sleep(Duration::from_millis(500));
    hub.reset_counters();
    let out = cli(&hub, cache.path())
        .args(["--json", REPO])
        .output()
        .expect("rerun");
    assert!(out.status.success());
    let result = json_lines(&out.stdout).pop().expect("result");
    assert_eq!(result["status"], "ok");
    assert_eq!(
        hub.bytes_served(REPO, "model.gguf"),
        size as u64 - partial,
        "resumed, not restarted"
    );
    let last_range = hub.requests().into_iter().rev().find_map(|r| r.range);
    assert_eq!(last_range, Some(format!("bytes={partial}-")));
    assert!(result["bytes_reused"].as_u64().expect("reused") >= partial);
}

#[test]
fn dry_run_writes_nothing() {
    let (hub, _) = repo_with(50_000);
    let cache = TempDir::new("cli-dry");
    let out = cli(&hub, cache.path())
        .args(["--dry-run", REPO])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("model.gguf") && stdout.contains("download"),
        "{stdout}"
    );
    assert!(
        !cache.path().join("models--org--model").exists(),
        "dry run wrote to the cache"
    );
    assert_eq!(hub.bytes_served_total(), 0);
}

/// Runs the CLI with only the given HF variables set (the user's own are removed).
fn cli_env(
    vars: &[(&str, &std::path::Path)],
    extra: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut c = Command::new(common::resume_pull());
    for v in [
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN",
        "HF_ENDPOINT",
        "HF_HOME",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "XDG_CACHE_HOME",
    ] {
        c.env_remove(v);
    }
    for (k, v) in vars {
        c.env(k, v);
    }
    for (k, v) in extra {
        c.env(k, v);
    }
    c.args(args).output().expect("run")
}

#[test]
fn cache_root_follows_the_documented_precedence() {
    let (hub, sha) = repo_with(1000);
    let t = TempDir::new("cli-env-cache");
    let p = |s: &str| t.path().join(s);
    let ep = hub.endpoint();
    let cases: Vec<(Vec<(&str, std::path::PathBuf)>, std::path::PathBuf)> = vec![
        (
            vec![
                ("HF_HUB_CACHE", p("a")),
                ("HUGGINGFACE_HUB_CACHE", p("b")),
                ("HF_HOME", p("c")),
            ],
            p("a"),
        ),
        (
            vec![("HUGGINGFACE_HUB_CACHE", p("b")), ("HF_HOME", p("c"))],
            p("b"),
        ),
        (
            vec![("HF_HOME", p("c")), ("XDG_CACHE_HOME", p("d"))],
            p("c/hub"),
        ),
        (
            vec![("XDG_CACHE_HOME", p("d")), ("HOME", p("e"))],
            p("d/huggingface/hub"),
        ),
        (vec![("HOME", p("e"))], p("e/.cache/huggingface/hub")),
    ];
    for (vars, want) in cases {
        let vars: Vec<(&str, &std::path::Path)> =
            vars.iter().map(|(k, v)| (*k, v.as_path())).collect();
        let out = cli_env(&vars, &[("HF_ENDPOINT", &ep)], &["--quiet", REPO]);
        assert!(
            out.status.success(),
            "{vars:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let snap = want.join("models--org--model/snapshots").join(&sha);
        assert!(
            snap.join("model.gguf").is_file(),
            "{vars:?} should use {}",
            want.display()
        );
    }
    let out = cli_env(
        &[("HF_HUB_CACHE", &p("a"))],
        &[("HF_ENDPOINT", &ep)],
        &[
            "--cache-dir",
            &p("z").display().to_string(),
            "--quiet",
            REPO,
        ],
    );
    assert!(out.status.success());
    assert!(
        p("z/models--org--model").is_dir(),
        "--cache-dir wins over the environment"
    );
}

#[test]
fn token_follows_the_documented_precedence() {
    let (hub, _) = repo_with(1000);
    hub.set_private(REPO, Some("hf_allowed"));
    for t in ["hf_env", "hf_legacy", "hf_file", "hf_home_file", "hf_flag"] {
        hub.add_token(t);
    }
    let t = TempDir::new("cli-env-token");
    let home = t.path().join("hf-home");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(home.join("token"), "hf_home_file\n").expect("token file");
    let token_path = t.path().join("tok");
    std::fs::write(&token_path, "hf_file").expect("token path");
    let cache = t.path().join("cache");
    let ep = hub.endpoint();
    let cache_s = cache.display().to_string();
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a [&'a str], Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("HF_TOKEN", "hf_env"),
                ("HUGGING_FACE_HUB_TOKEN", "hf_legacy"),
            ],
            &["--token", "hf_flag"],
            Some("hf_flag"),
        ),
        (
            vec![
                ("HF_TOKEN", "hf_env"),
                ("HUGGING_FACE_HUB_TOKEN", "hf_legacy"),
            ],
            &[],
            Some("hf_env"),
        ),
        (
            vec![("HUGGING_FACE_HUB_TOKEN", "hf_legacy")],
            &[],
            Some("hf_legacy"),
        ),
        (
            vec![("HF_TOKEN_PATH", token_path.to_str().expect("utf8"))],
            &[],
            Some("hf_file"),
        ),
        (vec![], &[], Some("hf_home_file")),
        // As huggingface_hub: no token unless one is passed explicitly.
        (
            vec![
                ("HF_TOKEN", "hf_env"),
                ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1"),
            ],
            &[],
            None,
        ),
        (
            vec![("HF_HUB_DISABLE_IMPLICIT_TOKEN", "true")],
            &["--token", "hf_flag"],
            Some("hf_flag"),
        ),
    ];
    for (env, flags, want) in cases {
        hub.clear_requests();
        let mut args = vec![
            "--endpoint",
            ep.as_str(),
            "--cache-dir",
            cache_s.as_str(),
            "--json",
        ];
        args.extend_from_slice(flags);
        args.push(REPO);
        let _ = cli_env(&[("HF_HOME", &home)], &env, &args);
        let first = hub.requests().into_iter().next().expect("a request");
        assert_eq!(
            first.authorization,
            want.map(|t| format!("Bearer {t}")),
            "{env:?} {flags:?}"
        );
    }
}

#[test]
fn hf_hub_download_timeout_sets_the_stall_watchdog() {
    use mock_hub::{Fault, Target};
    let (hub, _) = repo_with(3 << 20);
    hub.push_fault(
        Target::Cdn("model.gguf".into()),
        Fault::StallAfter {
            bytes: 1 << 20,
            stall: Duration::from_secs(30),
        },
    );
    let cache = TempDir::new("cli-timeout");
    let t0 = Instant::now();
    let out = cli(&hub, cache.path())
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "0.5")
        .args(["--json", REPO])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the 0.5 s watchdog fired, not the 30 s stall"
    );
    let retried = json_lines(&out.stdout)
        .iter()
        .any(|l| l["event"] == "retry");
    assert!(retried, "the stalled body was retried");
}

#[test]
fn status_and_gc_commands() {
    let (hub, old) = repo_with(200_000);
    let cache = TempDir::new("cli-status");
    assert!(
        cli(&hub, cache.path())
            .args(["--quiet", REPO])
            .status()
            .expect("pull")
            .success()
    );
    let new = hub.commit(
        REPO,
        "main",
        vec![MockFile::regular("config.json", b"{\"v\": 2}".to_vec())],
    );
    assert!(
        cli(&hub, cache.path())
            .args(["--quiet", REPO])
            .status()
            .expect("pull")
            .success()
    );

    let run = |args: &[&str]| {
        Command::new(common::resume_pull())
            .env_remove("HF_HUB_CACHE")
            .arg("--cache-dir")
            .arg(cache.path())
            .args(args)
            .output()
            .expect("run")
    };
    let out = run(&["status", REPO]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{new} [main]: committed")), "{text}");
    assert!(text.contains(&format!("{old}: committed")), "{text}");

    let out = run(&["--json", "gc", REPO]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["applied"], false);
    assert_eq!(v["snapshots"][0]["name"], old.as_str());
    let snaps = cache.path().join("models--org--model/snapshots");
    assert!(snaps.join(&old).exists(), "dry run by default");
    let out = run(&["gc", REPO, "--apply"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!snaps.join(&old).exists() && snaps.join(&new).exists());
    assert_eq!(
        run(&["status"]).status.code(),
        Some(2),
        "status needs a repo"
    );
    assert_eq!(
        run(&["--apply", REPO]).status.code(),
        Some(2),
        "--apply only with gc"
    );
}

#[test]
fn help_and_readme_document_the_same_flags() {
    let help = String::from_utf8(
        Command::new(common::resume_pull())
            .arg("--help")
            .output()
            .expect("help")
            .stdout,
    )
    .expect("utf8");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split("## `resume-pull` reference")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a resume-pull reference section");
    let flags = |text: &str| -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| {
                w.starts_with("--")
                    && w.len() > 2
                    && w[2..].starts_with(|c: char| c.is_ascii_lowercase())
            })
            .map(str::to_string)
            .collect()
    };
    let (in_help, in_readme) = (flags(&help), flags(section));
    assert!(!in_help.is_empty());
    assert_eq!(
        in_help, in_readme,
        "flags in --help vs the README's reference section"
    );
    for cmd in ["status <REPO>", "gc <REPO>"] {
        assert!(
            help.contains(cmd) && section.contains(cmd),
            "{cmd} documented in both"
        );
    }
}

#[test]
fn an_unreachable_hub_is_answered_from_the_cache_and_the_result_says_so() {
    let (hub, sha) = repo_with(1000);
    let cache = TempDir::new("cli-unreachable");
    let first = cli(&hub, cache.path()).arg(REPO).output().expect("run");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let refusing = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://127.0.0.1:{}", l.local_addr().expect("addr").port())
    };
    let run = |extra: &[&str]| {
        let mut c = cli(&hub, cache.path());
        c.args(["--json", "--endpoint", &refusing])
            .args(extra)
            .arg(REPO);
        let started = std::time::Instant::now();
        let out = c.output().expect("run");
        (out, started.elapsed())
    };
    let (out, took) = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    assert!(lines.iter().any(|l| l["event"] == "from_cache"));
    let result = lines.last().expect("result");
    assert_eq!(result["from_cache"], true);
    assert_eq!(result["commit"], sha.as_str());
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");

    let (out, _) = run(&["--no-cache-fallback"]);
    assert_eq!(out.status.code(), Some(1));
    let result = json_lines(&out.stdout).pop().expect("result");
    assert_eq!(result["error"]["code"], "network");
}

#[test]
fn keep_unchanged_keeps_the_snapshot_when_only_an_unselected_file_changed() {
    let hub = MockHub::start();
    let files = |readme: &str| {
        vec![
            MockFile::regular("README.md", readme.as_bytes().to_vec()),
            MockFile::regular("config.json", b"{}".to_vec()),
        ]
    };
    let first = hub.commit(REPO, "main", files("v1"));
    let cache = TempDir::new("cli-keep");
    let pull = || {
        cli(&hub, cache.path())
            .args([
                "--json",
                "--keep-unchanged",
                "--include",
                "config.json",
                REPO,
            ])
            .output()
            .expect("run")
    };
    assert!(pull().status.success());
    hub.commit(REPO, "main", files("v2"));
    let out = pull();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = json_lines(&out.stdout).pop().expect("result");
    assert_eq!(
        result["commit"],
        first.as_str(),
        "the kept snapshot is active"
    );
    assert_eq!(result["bytes_downloaded"], 0);
}

/// `--registry modelscope` (or lemonade's URL form) reads ModelScope's variables, never the Hub's:
/// `MODELSCOPE_ENDPOINT`, then `MODELSCOPE_API_TOKEN` sent as bearer and session cookie; `status`
/// finds the ModelScope folder.
#[test]
fn modelscope_reads_its_own_environment() {
    let hub = MockHub::start();
    hub.commit(
        REPO,
        "master",
        vec![MockFile::lfs("m.gguf", pseudo_random_bytes(3, 4096))],
    );
    hub.set_private(REPO, Some("ms-token"));
    let cache = TempDir::new("cli-modelscope");
    let run = |args: &[&str]| {
        Command::new(common::resume_pull())
            .env("HF_TOKEN", "hf-token-must-not-travel")
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .env("MODELSCOPE_ENDPOINT", hub.endpoint())
            .env("MODELSCOPE_API_TOKEN", "ms-token")
            .env("MODELSCOPE_ACCESS_TOKEN", "second-choice")
            .arg("--cache-dir")
            .arg(cache.path())
            .args(args)
            .output()
            .expect("run")
    };
    let out = run(&["--json", "https://modelscope.cn/models/org/model"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = json_lines(&out.stdout);
    let result = lines.last().expect("result");
    assert_eq!(result["registry"], "modelscope");
    assert_eq!(result["files_not_hash_verified"], 0);
    let commit = result["commit"].as_str().expect("commit");
    assert!(commit.starts_with("modelscope-master-"), "{commit}");
    assert!(
        cache
            .path()
            .join("modelscope--models--org--model/snapshots")
            .join(commit)
            .join("m.gguf")
            .is_file()
    );
    for r in hub
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
    {
        assert_eq!(
            r.authorization.as_deref(),
            Some("Bearer ms-token"),
            "{}",
            r.path
        );
        assert_eq!(r.cookie.as_deref(), Some("m_session_id=ms-token"));
    }
    let st = run(&["status", "--registry", "modelscope", "--json", REPO]);
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let v: Value = serde_json::from_slice(&st.stdout).expect("json");
    assert_eq!(v["snapshots"][0]["name"], commit);
    assert_eq!(v["snapshots"][0]["committed"], true);
}
