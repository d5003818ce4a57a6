//! `resume-pull`: pull a Hugging Face model into the local cache, resuming whatever is on disk.

mod args;
mod housekeeping;
mod render;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lemon_pull::Source;
use lemon_pull::{CancelToken, Component, Error, FileSpec, Flow, PullOptions, PullOutcome, Status};
use serde_json::json;

use args::{Args, Command, USAGE};
use render::{Mode, Renderer, bytes, println_json};

/// Exit status after SIGINT/SIGTERM, as shells report a death by SIGINT.
const EXIT_INTERRUPTED: u8 = 130;
/// If the pull has not wound down this long after a signal, exit anyway: what the checkpoints (and,
/// for a parallel partial, its segments record) say is on disk was fsync'd first, so at most the
/// bytes since the last checkpoint are fetched again.
const FORCE_EXIT_AFTER: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("resume-pull {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Pull(a)) => run(*a),
        Ok(Command::Status(a)) => housekeeping::run_status(&a),
        Ok(Command::Gc(a)) => housekeeping::run_gc(&a),
        Err(msg) => usage_error(&msg),
    }
}

/// One line saying what is wrong and where the help is, as common CLIs do: the full help would
/// bury the message.
fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}\nrun `resume-pull --help` for usage");
    ExitCode::from(2)
}

fn run(a: Args) -> ExitCode {
    let mode = if a.json {
        Mode::Json
    } else if a.quiet {
        Mode::Quiet
    } else if std::io::stderr().is_terminal() {
        Mode::Bar
    } else {
        Mode::Lines
    };
    let token = CancelToken::new();
    let interrupted = install_signal_handler(&token);

    let mut opts = PullOptions::new(a.repo.clone());
    // A person at a terminal expects huggingface_hub's variables and token file to apply.
    opts.read_environment = true;
    for spec in &a.with {
        match Component::parse(spec) {
            Ok(c) => opts.components.push(c),
            Err(e) => return usage_error(&e.to_string()),
        }
    }
    opts.registry = a.registry;
    opts.revision = a.revision;
    opts.commit = a.commit;
    opts.files = a.files.into_iter().map(FileSpec::new).collect();
    opts.cache_fallback = !a.no_cache_fallback;
    opts.keep_unchanged_snapshot = a.keep_unchanged;
    opts.cache_dir = a.cache_dir;
    opts.endpoint = a.endpoint;
    opts.token = a.token;
    opts.include = a.include;
    opts.exclude = a.exclude;
    opts.dry_run = a.dry_run;
    opts.offline = a.offline;
    opts.ca_bundle = a.ca_bundle;
    if let Some(t) = a.dns_timeout {
        opts.dns_timeout = t;
    }
    opts.max_bytes_per_sec = a.max_rate;
    if let Some(n) = a.connections {
        opts.connections = n;
    }
    opts.cancel = Some(token);

    let mut renderer = Renderer::new(mode);
    let mut kept = Kept::default();
    let result = lemon_pull::pull(&opts, &mut |ev: &lemon_pull::Event<'_>| {
        kept.note(ev);
        renderer.event(ev);
        Flow::Continue
    });
    let was_interrupted = interrupted.is_some_and(|f| f.load(Ordering::SeqCst));
    match result {
        Ok(outcome) => {
            report_success(&mut renderer, &outcome);
            ExitCode::SUCCESS
        }
        Err(e) => {
            report_failure(&mut renderer, &a.repo, &e, &kept);
            if was_interrupted || e.status() == Status::Cancelled {
                ExitCode::from(EXIT_INTERRUPTED)
            } else if e.status() == Status::InvalidArgument {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// First SIGINT/SIGTERM cancels the pull (partials are kept); if it has not returned within
/// [`FORCE_EXIT_AFTER`], or a second signal arrives, the process exits with 130 regardless.
fn install_signal_handler(token: &CancelToken) -> Option<&'static AtomicBool> {
    static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    let token = token.clone();
    let installed = ctrlc::set_handler(move || {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(EXIT_INTERRUPTED.into());
        }
        token.cancel();
        std::thread::spawn(|| {
            std::thread::sleep(FORCE_EXIT_AFTER);
            std::process::exit(EXIT_INTERRUPTED.into());
        });
    });
    installed.ok().map(|()| &INTERRUPTED)
}

fn report_success(r: &mut Renderer, o: &PullOutcome) {
    let t = &o.totals;
    if r.mode() == Mode::Json {
        println_json(&json!({
            "status": "ok",
            "repo": o.repo,
            "revision": o.revision,
            "commit": o.commit,
            "snapshot_path": o.snapshot_path.display().to_string(),
            "dry_run": o.dry_run,
            "from_cache": o.from_cache,
            "registry": o.registry.name(),
            "files_not_hash_verified": o.plan.iter().filter(|p| !p.hash_verified).count(),
            "connections": o.connections,
            "bytes_downloaded": t.bytes_downloaded,
            "bytes_reused": t.bytes_reused,
            "bytes_salvaged": t.bytes_salvaged,
            "files": o.files,
            "repos": o.repos.iter().map(|r| json!({
                "repo": r.repo, "revision": r.revision, "commit": r.commit,
                "snapshot_path": r.snapshot_path.display().to_string(),
            })).collect::<Vec<_>>(),
            "reclaimed": o.reclaimed.iter().map(|r| json!({
                "repo": r.repo, "snapshot": r.snapshot, "bytes": r.bytes,
            })).collect::<Vec<_>>(),
            "plan": o.plan.iter().map(|p| json!({
                "repo": p.repo, "path": p.path, "size": p.size, "source": p.source.name(),
                "on_disk": p.on_disk, "to_download": p.missing(), "from": p.from,
                "hash_verified": p.hash_verified,
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    if o.dry_run {
        print_plan(o);
        return;
    }
    let secs = r.elapsed().as_secs_f64().max(0.001);
    r.say(&format!(
        "done: {} files, {} downloaded ({}/s), {} reused, {} salvaged",
        o.files,
        bytes(t.bytes_downloaded),
        bytes((t.bytes_downloaded as f64 / secs) as u64),
        bytes(t.bytes_reused),
        bytes(t.bytes_salvaged),
    ));
    let unverified = o.plan.iter().filter(|p| !p.hash_verified).count();
    if unverified > 0 {
        r.say(&format!(
            "note: {unverified} file(s) had no hash in the listing and were checked by size only"
        ));
    }
    // The snapshot path alone on stdout, so scripts can capture it.
    println!("{}", o.snapshot_path.display());
}

fn print_plan(o: &PullOutcome) {
    println!(
        "plan for {}@{} (commit {}) into {}",
        o.repo,
        o.revision,
        o.commit,
        o.snapshot_path.display()
    );
    let mut to_download = 0;
    for p in &o.plan {
        let from = p.from.as_deref().unwrap_or("?");
        let what = match p.source {
            Source::Present => "target: present (verified)".to_string(),
            Source::Resume => format!("target: resume partial ({} on disk)", bytes(p.on_disk)),
            Source::SalvagePartial => {
                format!("salvaged from {from} (partial, {})", bytes(p.on_disk))
            }
            Source::SalvageFile => format!("salvaged from {from} (complete)"),
            Source::Link => format!("hardlinked from committed {from}"),
            _ => "download".to_string(),
        };
        to_download += p.missing();
        println!("  {:<48} {:>10}  {what}", p.path, bytes(p.size));
    }
    println!(
        "to download: {} of {}",
        bytes(to_download),
        bytes(o.plan.iter().map(|p| p.size).sum())
    );
    for r in &o.reclaimed {
        println!(
            "would remove orphaned snapshot {} of {} ({})",
            r.snapshot,
            r.repo,
            bytes(r.bytes)
        );
    }
}

/// What a failed pull had done, from its events: the plan, and what it left on disk.
#[derive(Default)]
struct Kept {
    plan: Vec<serde_json::Value>,
    totals: lemon_pull::Totals,
    snapshot: Option<String>,
    on_disk: u64,
}

impl Kept {
    fn note(&mut self, ev: &lemon_pull::Event<'_>) {
        match ev {
            lemon_pull::Event::PlanFile {
                file,
                source,
                on_disk,
                ..
            } => self.plan.push(json!({
                "repo": file.repo, "path": file.path, "size": file.size, "source": source.name(),
                "on_disk": on_disk, "to_download": file.size.saturating_sub(*on_disk),
            })),
            lemon_pull::Event::Stopped {
                totals,
                snapshot,
                on_disk,
            } => {
                self.totals = *totals;
                self.snapshot = snapshot.map(|p| p.display().to_string());
                self.on_disk = *on_disk;
            }
            _ => {}
        }
    }
}

fn report_failure(r: &mut Renderer, repo: &str, e: &Error, kept: &Kept) {
    let status = e.status();
    if r.mode() == Mode::Json {
        let kind = if status == Status::Cancelled {
            "cancelled"
        } else {
            "error"
        };
        println_json(&json!({
            "status": kind,
            "repo": repo,
            "commit": null,
            "snapshot_path": null,
            "error": { "code": status.name(), "message": e.to_string(), "http_status": e.http_status() },
            "bytes_downloaded": kept.totals.bytes_downloaded,
            "bytes_reused": kept.totals.bytes_reused,
            "bytes_salvaged": kept.totals.bytes_salvaged,
            "kept_in": kept.snapshot,
            "bytes_on_disk": kept.on_disk,
            "plan": kept.plan,
        }));
    } else if status == Status::Cancelled {
        r.say(&format!(
            "interrupted: {} kept on disk; run the same command again to resume",
            render::bytes(kept.on_disk)
        ));
    } else {
        r.say(&format!("error: {e}"));
        if r.mode() == Mode::Quiet {
            eprintln!("error: {e}");
        }
    }
}
