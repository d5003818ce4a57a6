//! The run itself: arguments, the repos and their commits, tallies, and the loop of steps.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lemon_pull::{Cancel, Event, Flow, PullOptions, RetryPolicy, Totals};
use serde_json::Value;

use mock_hub::{Fault, MockFile, MockHub, Target, pseudo_random_bytes};

mod checks;
mod pulls;
mod steps;

use pulls::*;
use steps::*;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const REPOS: usize = 3;
/// Per-connection rate of the mock, so that kills and mid-pull commits land inside transfers.
const RATE: u64 = 24 * MIB;

// -----------------------------------------------------------------------------------------
// Arguments, randomness
// -----------------------------------------------------------------------------------------

struct Args {
    seed: u64,
    pulls: usize,
    deadline: Duration,
    cli: PathBuf,
    work: Option<PathBuf>,
    verbose: bool,
    /// Self-check of the checks: after step 10, damage the cache the way a bug would.
    tamper: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seed: random_seed(),
        pulls: 180,
        deadline: Duration::from_secs(270),
        cli: PathBuf::new(),
        work: None,
        verbose: false,
        tamper: false,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        let mut value = || raw.next().ok_or(format!("{arg} needs a value"));
        let number = |s: String| s.parse::<u64>().map_err(|_| format!("not a number: {s}"));
        match arg.as_str() {
            "--seed" => args.seed = number(value()?)?,
            "--pulls" => args.pulls = number(value()?)? as usize,
            "--deadline" => args.deadline = Duration::from_secs(number(value()?)?),
            "--resume-pull" => args.cli = PathBuf::from(value()?),
            "--work" => args.work = Some(PathBuf::from(value()?)),
            "--verbose" => args.verbose = true,
            "--tamper" => args.tamper = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !args.cli.is_file() {
        return Err("--resume-pull PATH (the built CLI) is required".into());
    }
    Ok(args)
}

fn random_seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ u64::from(std::process::id()).rotate_left(32)) % 1_000_000_007
}

/// splitmix64: one stream per run, all decisions drawn from it in order.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

// -----------------------------------------------------------------------------------------
// Repos and their commits
// -----------------------------------------------------------------------------------------

/// One file of a repo: path, LFS or not, size range, and its current content seed.
struct Slot {
    path: String,
    lfs: bool,
    size: (u64, u64),
    /// Chance in percent that a commit move changes it.
    churn: u64,
}

struct Repo {
    name: String,
    slots: Vec<Slot>,
    /// Current content per branch (`main`, `dev`): one `MockFile` per slot.
    branches: BTreeMap<&'static str, Vec<MockFile>>,
    /// Every commit made, oldest first (pinned pulls pick from these).
    commits: Vec<String>,
}

impl Repo {
    fn new(i: usize) -> Repo {
        let slot = |path: String, lfs, size, churn| Slot {
            path,
            lfs,
            size,
            churn,
        };
        let mut slots = vec![
            slot(format!("config-{i}.json"), false, (100, 400), 100),
            slot(
                format!("tokenizer-{i}.json"),
                false,
                (64 * KIB, 400 * KIB),
                40,
            ),
            slot(format!("model-{i}.gguf"), true, (MIB, 5 * MIB), 40),
            slot(
                format!("sub/weights-{i}.safetensors"),
                true,
                (MIB, 3 * MIB),
                40,
            ),
        ];
        if i == 0 {
            // Over the 16 MiB threshold: the only file fetched by several connections.
            slots.push(slot(
                format!("big-{i}.gguf"),
                true,
                (17 * MIB, 20 * MIB),
                15,
            ));
        }
        Repo {
            name: format!("chaos/repo-{i}"),
            slots,
            branches: BTreeMap::new(),
            commits: Vec::new(),
        }
    }

    /// The next version of `branch`: some files changed, the others kept (so that a pull
    /// after a commit move has bytes to salvage).
    fn next_files(&self, branch: &str, rng: &mut Rng) -> Vec<MockFile> {
        let old = self.branches.get(branch);
        self.slots
            .iter()
            .enumerate()
            .map(|(k, s)| match old {
                Some(files) if !rng.chance(s.churn) => files[k].clone(),
                _ => {
                    let len = rng.range(s.size.0, s.size.1) as usize;
                    let bytes = pseudo_random_bytes(rng.next(), len);
                    if s.lfs {
                        MockFile::lfs(&s.path, bytes)
                    } else {
                        MockFile::regular(&s.path, bytes)
                    }
                }
            })
            .collect()
    }
}

/// What a commit holds: path → (size, sha256).
type Expected = BTreeMap<String, (u64, [u8; 32])>;

fn expected_of(files: &[MockFile]) -> Expected {
    files
        .iter()
        .map(|f| {
            let b = f.bytes();
            (f.path.clone(), (b.len() as u64, sha256(&b)))
        })
        .collect()
}

/// The identity of a file on disk between two looks: any rewrite, replacement or truncation
/// changes one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Print {
    len: u64,
    ino: u64,
    mtime_ns: i128,
}

fn print_of(path: &Path) -> Option<Print> {
    let m = fs::symlink_metadata(path).ok()?;
    Some(Print {
        len: m.len(),
        ino: m.ino(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

// -----------------------------------------------------------------------------------------
// Tallies
// -----------------------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    pulls: usize,
    steps: usize,
    outcomes: BTreeMap<String, usize>,
    faults: BTreeMap<&'static str, usize>,
    faults_fired: usize,
    kills: usize,
    sigints: usize,
    cancels: usize,
    mid_pull_commits: usize,
    commit_moves: usize,
    gc_applies: usize,
    concurrent: usize,
    bytes_downloaded: u64,
    bytes_reused: u64,
    bytes_salvaged: u64,
    bytes_needed: u64,
    trash_left: usize,
    violations: Vec<String>,
    unexpected: Vec<String>,
}

/// How one pull ended, as the checks need it.
#[derive(Debug)]
struct Ended {
    label: String,
    /// `ok`, a status name, or `killed`.
    outcome: String,
    /// On success: the commit and its snapshot folder.
    success: Option<(String, PathBuf)>,
    /// Whether an error was expected (cancelled, killed).
    provoked: bool,
    message: String,
    downloaded: u64,
    reused: u64,
    salvaged: u64,
}

// -----------------------------------------------------------------------------------------
// The run
// -----------------------------------------------------------------------------------------

struct Chaos {
    hub: MockHub,
    root: PathBuf,
    cache: PathBuf,
    cli: PathBuf,
    rng: Rng,
    repos: Vec<Repo>,
    expected: HashMap<String, Expected>,
    /// Snapshots seen complete: folder → file → print. They must never change.
    committed: BTreeMap<PathBuf, BTreeMap<String, Print>>,
    tally: Tally,
    /// Faults queued in the current step.
    queued: usize,
    /// Snapshot folders `gc --apply` removed in the current step (may not be verified).
    gc_removed: Vec<PathBuf>,
    verbose: bool,
}

pub fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chaos: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "chaos seed {} (replay: --seed {}), target {} pulls, deadline {} s",
        args.seed,
        args.seed,
        args.pulls,
        args.deadline.as_secs()
    );
    let started = Instant::now();
    let root = args.work.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("lemon-pull-chaos-{}", std::process::id()))
    });
    let _ = fs::remove_dir_all(&root);
    if let Err(e) = fs::create_dir_all(&root) {
        eprintln!("chaos: {}: {e}", root.display());
        return ExitCode::from(2);
    }
    let mut chaos = Chaos::new(&args, root.clone());
    while chaos.tally.pulls < args.pulls && started.elapsed() < args.deadline {
        chaos.step();
        if args.tamper && chaos.tally.steps == 10 {
            chaos.tamper();
        }
    }
    chaos.final_check();
    chaos.summary(started.elapsed(), args.seed);
    let failed = !chaos.tally.violations.is_empty();
    if !failed && args.work.is_none() {
        let _ = fs::remove_dir_all(&root);
    }
    if failed {
        println!("work folder kept: {}", root.display());
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

impl Chaos {
    fn new(args: &Args, root: PathBuf) -> Chaos {
        let hub = MockHub::start();
        hub.set_rate_limit(Some(RATE));
        let mut chaos = Chaos {
            hub,
            cache: root.join("cache"),
            root,
            cli: args.cli.clone(),
            rng: Rng(args.seed),
            repos: (0..REPOS).map(Repo::new).collect(),
            expected: HashMap::new(),
            committed: BTreeMap::new(),
            tally: Tally::default(),
            queued: 0,
            gc_removed: Vec::new(),
            verbose: args.verbose,
        };
        for r in 0..REPOS {
            for branch in ["main", "dev"] {
                let files = chaos.repos[r].next_files(branch, &mut chaos.rng);
                chaos.commit(r, branch, files);
            }
        }
        chaos
    }

    /// Commits `files` as the new head of `branch` and records what the commit holds.
    fn commit(&mut self, r: usize, branch: &'static str, files: Vec<MockFile>) -> String {
        let sha = self.hub.commit(&self.repos[r].name, branch, files.clone());
        self.expected.insert(sha.clone(), expected_of(&files));
        let repo = &mut self.repos[r];
        repo.commits.push(sha.clone());
        repo.branches.insert(branch, files);
        sha
    }

    fn say(&self, line: &str) {
        if self.verbose {
            println!("{line}");
        }
    }

    /// One step, drawn at random; then the checks of the repo it touched.
    fn step(&mut self) {
        self.tally.steps += 1;
        self.queued = 0;
        self.gc_removed.clear();
        let r = self.rng.below(REPOS as u64) as usize;
        // Most steps find the repo moved on since the last pull of it: work to do, bytes
        // to salvage from the older snapshots.
        if self.rng.chance(45) {
            self.move_commit(r);
        }
        let ended = match self.rng.below(100) {
            0..=39 => vec![self.lib_pull(r)],
            40..=74 => vec![self.cli_pull(r)],
            75..=91 => self.pair(r),
            _ => {
                self.gc_apply(r);
                Vec::new()
            }
        };
        self.tally.faults_fired += self.fired_and_cleared();
        for e in &ended {
            self.account(e);
        }
        self.check(r, &ended);
    }

    /// How many queued faults fired; the rest are dropped so the next step starts clean.
    fn fired_and_cleared(&mut self) -> usize {
        let pending = self.hub.pending_faults();
        self.hub.clear_faults();
        self.queued.saturating_sub(pending)
    }
}
