//! The README's "Try it offline" section, run as written: every command of its shell block is
//! executed in order (the mock hub example binary, `curl` calls to its admin routes, the file edit,
//! `resume-pull`), with `/tmp/…` moved into a temporary folder and `PORT` replaced by the hub's.
//! The pull whose comment says Ctrl-C gets a SIGINT once bytes are flowing. If the README's
//! commands change, this test runs the new ones; if they stop working, it fails.
#![cfg(unix)]

mod common;

use common::TempDir;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The shell block of the README's "Try it offline" section: each command with the comments of its
/// paragraph.
fn demo_commands() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Try it offline")
        .nth(1)
        .expect("README has a 'Try it offline' section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a ```sh block in that section");
    let mut out = Vec::new();
    let mut comments = String::new();
    for line in block.lines().map(str::trim) {
        if line.is_empty() {
            comments.clear();
        } else if let Some(c) = line.strip_prefix('#') {
            comments.push_str(c);
            comments.push('\n');
        } else {
            // A comment speaks for every command of its paragraph.
            out.push((line.to_string(), comments.clone()));
        }
    }
    out
}

/// Splits a command line into words, honouring single quotes (all the README uses).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in {line:?}");
    if in_word {
        out.push(word);
    }
    out
}

struct Demo {
    tmp: TempDir,
    port: Option<u16>,
    hub: Option<Child>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(hub) = &mut self.hub {
            let _ = hub.kill();
            let _ = hub.wait();
        }
    }
}

impl Demo {
    /// A word of the README with its machine-specific parts replaced.
    fn local(&self, word: &str) -> String {
        let word = match self.port {
            Some(port) => word.replace("PORT", &port.to_string()),
            None => word.to_string(),
        };
        match word.strip_prefix("/tmp/") {
            Some(rest) => self.tmp.path().join(rest).display().to_string(),
            None => word,
        }
    }

    fn hub_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port.expect("hub started"))
    }

    /// `cargo run --release -p mock-hub -- ARGS`: starts the binary `cargo test --workspace`
    /// built next to this test's binaries, and waits for its "listening" line.
    fn start_hub(&mut self, args: &[String]) {
        let exe = target_dir().join(format!("mock-hub{}", std::env::consts::EXE_SUFFIX));
        assert!(
            exe.is_file(),
            "{} is missing: run `cargo test --workspace` (it builds every binary) or `cargo build -p mock-hub`",
            exe.display()
        );
        let mut hub = Command::new(exe)
            .args(args.iter().map(|a| self.local(a)))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start mock-hub");
        let mut line = String::new();
        BufReader::new(hub.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("mock-hub prints where it listens");
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        self.port = Some(port);
        self.hub = Some(hub);
    }

    /// `curl -X POST 'URL'`: the admin call must succeed.
    fn curl(&self, args: &[String]) {
        let (method, url) = match args {
            [x, method, url] if x == "-X" => (method.as_str(), self.local(url)),
            [url] => ("GET", self.local(url)),
            _ => panic!("unexpected curl arguments {args:?}"),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let status = match method {
            "POST" => agent.post(&url).send_empty(),
            _ => agent.get(&url).call(),
        }
        .expect("admin call")
        .status()
        .as_u16();
        assert_eq!(status, 200, "{method} {url}");
    }

    fn resume_pull(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(common::resume_pull());
        cmd.args(args.iter().map(|a| self.local(a)))
            .env_remove("HF_TOKEN")
            .env_remove("HF_ENDPOINT")
            .env_remove("HF_HUB_OFFLINE")
            .env("HF_HOME", self.tmp.path().join("hf-home"));
        cmd
    }

    /// The pull the reader interrupts: SIGINT once some `.partial` under the cache has bytes.
    fn pull_and_interrupt(&self, args: &[String]) -> Output {
        let child = self
            .resume_pull(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn resume-pull");
        let started = Instant::now();
        while partial_bytes(self.tmp.path()) < 2_000_000 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no partial grew within a minute"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let kill = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        child.wait_with_output().expect("wait")
    }
}

fn target_dir() -> PathBuf {
    common::resume_pull()
        .parent()
        .expect("target dir")
        .to_path_buf()
}

/// Total size of every `*.partial` below `dir`.
fn partial_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => partial_bytes(&path),
                Ok(t) if t.is_file() && path.extension().is_some_and(|x| x == "partial") => {
                    e.metadata().map(|m| m.len()).unwrap_or(0)
                }
                _ => 0,
            }
        })
        .sum()
}

fn served_total(demo: &Demo) -> u64 {
    let body = ureq::get(&demo.hub_url("/admin/stats"))
        .call()
        .expect("stats")
        .into_body()
        .read_to_string()
        .expect("stats body");
    let v: serde_json::Value = serde_json::from_str(&body).expect("stats json");
    v["bytes_served_total"]
        .as_u64()
        .expect("bytes_served_total")
}

/// Every file of `dir`, recursively, as (relative path, bytes).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().expect("type").is_dir() {
            for (rel, bytes) in files(&entry.path()) {
                out.push((format!("{name}/{rel}"), bytes));
            }
        } else {
            out.push((name, std::fs::read(entry.path()).expect("read")));
        }
    }
    out.sort();
    out
}

#[test]
fn readme_try_it_offline_runs_as_written() {
    let commands = demo_commands();
    assert!(commands.len() >= 5, "the demo has its steps: {commands:?}");
    let mut demo = Demo {
        tmp: TempDir::new("readme-demo"),
        port: None,
        hub: None,
    };
    let mut pulls: Vec<Output> = Vec::new();
    let mut served_before_resume = 0;
    for (line, comment) in &commands {
        let w = words(line);
        match w.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["cargo", "run", "--release", "-p", "mock-hub", "--", ..] => {
                demo.start_hub(&w[6..]);
            }
            ["cargo", "run", "--release", "--", ..] if comment.contains("Ctrl-C") => {
                let out = demo.pull_and_interrupt(&w[4..]);
                assert_eq!(
                    out.status.code(),
                    Some(130),
                    "interrupted pull exits 130: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(partial_bytes(demo.tmp.path()) > 0, "the partial is kept");
                pulls.push(out);
            }
            ["cargo", "run", "--release", "--", ..] => {
                served_before_resume = served_total(&demo);
                let out = demo.resume_pull(&w[4..]).output().expect("resume-pull");
                assert!(
                    out.status.success(),
                    "{line}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                pulls.push(out);
            }
            ["curl", ..] => demo.curl(&w[1..]),
            ["echo", text, ">", path] => {
                std::fs::write(demo.local(path), format!("{text}\n")).expect("edit");
            }
            _ => panic!("the demo test does not know how to run {line:?}; teach it"),
        }
    }
    assert_eq!(pulls.len(), 2, "one interrupted pull and one resume");

    // The resume salvaged the interrupted bytes: it says so, and the hub served less than the
    // whole model; the snapshot holds exactly the files of the served folder.
    let resume = pulls.last().expect("resume");
    let said = String::from_utf8_lossy(&resume.stderr);
    let done = said
        .lines()
        .find(|l| l.starts_with("done:"))
        .unwrap_or_else(|| panic!("a summary line in {said}"));
    assert!(
        !done.contains(" 0 B salvaged"),
        "the resume salvaged bytes: {done}"
    );
    assert!(said.contains("salvaged"), "{said}");
    let model_dir = demo.tmp.path().join("demo-model");
    let model = files(&model_dir);
    let model_bytes: u64 = model.iter().map(|(_, b)| b.len() as u64).sum();
    let served_by_resume = served_total(&demo) - served_before_resume;
    assert!(
        served_by_resume < model_bytes - 1_000_000,
        "resume fetched {served_by_resume} of {model_bytes} bytes"
    );
    let snapshots = demo
        .tmp
        .path()
        .join("demo-cache/models--demo--model/snapshots");
    let folders: Vec<_> = std::fs::read_dir(&snapshots)
        .expect("snapshots")
        .flatten()
        .collect();
    assert_eq!(folders.len(), 1, "the old snapshot folder was reclaimed");
    assert_eq!(files(&folders[0].path()), model, "snapshot = served files");
}
