//! Chaos run (issue 15, item 5): many pulls of small repos against the in-process mock hub while
//! faults are injected at random, with the cache's invariants checked after every step.
//!
//! ```text
//! cargo build --bin resume-pull --example chaos
//! target/debug/examples/chaos --resume-pull target/debug/resume-pull [--seed N] [--pulls N]
//!     [--deadline SECS] [--work DIR] [--verbose] [--tamper]
//! ```
//! `bench/chaos.sh` does both (and runs a fixed seed plus a random one).
//!
//! Each step, chosen by the seeded generator, is one of: a library pull (random connections,
//! revision, faults; sometimes cancelled at a random byte, sometimes with the branch moved
//! mid-pull), a `resume-pull` process (the same, plus SIGKILL or SIGINT at a random byte or
//! moment), two pulls of one repo at once (same revision, two revisions, or a CLI process beside a
//! library pull), a pull beside `gc --apply`, a commit move between pulls, or `gc --apply` alone.
//! Faults: cut bodies, short bodies, stalls (the watchdog fires), no answer, 5xx, 429 with
//! `Retry-After`, expired CDN URLs (403), `200` to a `Range`, a wrong `Content-Range`, API 503.
//!
//! After every step, for the repo it touched: every successful pull's snapshot holds exactly the
//! commit's files with the hub's sha256 and no partial or manifest; every ref names a complete,
//! verified snapshot; no snapshot that was once complete changed or vanished (unless `gc --apply`
//! removed it as superseded); after a success no stray file (a `.tmp`, a file the commit does not
//! have, unknown state) is left anywhere in the repo folder, only partials, manifests and
//! sidecars of other in-progress snapshots; nothing appears outside the cache; `status` and a
//! `gc` dry run do not fail. At the end every complete snapshot is hashed once more.
//!
//! The seed fixes the sequence of steps, faults and kill points; thread and network timing still
//! vary from run to run, so a replay takes the same decisions but not always the same paths.
//! Exit status: 0 when no invariant was violated, 1 otherwise, 2 for bad arguments. `--tamper`
//! damages the cache after step 10 (a flipped byte in a complete snapshot, a stray temp file, a
//! file outside the cache), to show that the checks catch it: that run must exit 1.

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    unix::main()
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    eprintln!("chaos: needs Unix (it sends SIGKILL and SIGINT to resume-pull)");
    std::process::ExitCode::from(2)
}

#[cfg(unix)]
mod unix {
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

    // -----------------------------------------------------------------------------------------
    // Plans and faults
    // -----------------------------------------------------------------------------------------

    /// How a CLI process is interrupted, if at all.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kill {
        None,
        /// SIGKILL once this many bytes are done.
        AtByte(u64),
        /// SIGKILL after this long (also before any byte: resolve, lock, plan, salvage).
        After(Duration),
        /// SIGINT (the CLI cancels, keeps its partials, reports `cancelled`) at this byte.
        Interrupt(u64),
    }

    /// What one pull does.
    struct Plan {
        label: String,
        repo: usize,
        name: String,
        revision: String,
        connections: u32,
        /// Library pulls: cancel from the callback at this byte.
        cancel_at: Option<u64>,
        /// Move this branch to these files once this many bytes are done.
        move_at: Option<(u64, &'static str, Vec<MockFile>)>,
        kill: Kill,
    }

    impl Chaos {
        /// A random plan for a pull of repo `r`; `cli` chooses the CLI's kinds of interruption.
        fn plan(&mut self, r: usize, cli: bool) -> Plan {
            let repo = &self.repos[r];
            let size: u64 = repo.branches["main"]
                .iter()
                .map(|f| f.bytes().len() as u64)
                .sum();
            let revision = match self.rng.below(100) {
                0..=64 => "main".to_string(),
                65..=89 => "dev".to_string(),
                // A pinned older commit: its snapshot may exist, complete, already.
                _ => repo.commits[self.rng.below(repo.commits.len() as u64) as usize].clone(),
            };
            let connections = match self.rng.below(3) {
                0 => 1,
                1 => self.rng.range(2, 4) as u32,
                _ => self.rng.range(5, 8) as u32,
            };
            let at = |rng: &mut Rng| rng.below(size.max(1));
            let branch = if revision == "dev" { "dev" } else { "main" };
            let move_at = if self.rng.chance(15) {
                let files = self.repos[r].next_files(branch, &mut self.rng);
                Some((at(&mut self.rng), branch, files))
            } else {
                None
            };
            let cancel_at = (!cli && self.rng.chance(15)).then(|| at(&mut self.rng));
            let kill = match (cli, self.rng.below(100)) {
                (false, _) | (true, 45..) => Kill::None,
                (true, 0..=19) => Kill::AtByte(at(&mut self.rng)),
                (true, 20..=31) => Kill::After(Duration::from_millis(self.rng.range(5, 400))),
                (true, _) => Kill::Interrupt(at(&mut self.rng)),
            };
            Plan {
                label: String::new(),
                repo: r,
                name: self.repos[r].name.clone(),
                revision,
                connections,
                cancel_at,
                move_at,
                kill,
            }
        }

        /// Queues `n` random faults on repo `r`'s files (and the API). The CLI waits its own
        /// default backoff (about 2 s a retry) and stall timeout (60 s), so its stalls are short
        /// silences that end in a cut connection.
        fn inject(&mut self, r: usize, n: u64, cli: bool) -> Vec<&'static str> {
            let mut kinds = Vec::new();
            for _ in 0..n {
                let slots = &self.repos[r].slots;
                let slot = &slots[self.rng.below(slots.len() as u64) as usize];
                let (path, lfs, size) = (slot.path.clone(), slot.lfs, slot.size.1);
                // Half the faults hit whichever file is fetched next: a named file may well be
                // reused or salvaged, and its fault then never fires.
                let target = match (self.rng.chance(50), lfs) {
                    (true, _) => Target::AnyFile,
                    (false, true) => Target::Cdn(path.clone()),
                    (false, false) => Target::Resolve(path.clone()),
                };
                let silence = Duration::from_millis(if cli { 300 } else { 1500 });
                let bytes = self.rng.below(size);
                let (kind, target, fault) = match self.rng.below(12) {
                    0 => ("drop", target, Fault::DropAfter(bytes)),
                    1 => ("drop_early", target, Fault::DropAfter(bytes % (64 * KIB))),
                    2 => ("short_body", target, Fault::ShortBody(bytes)),
                    3 => (
                        "stall",
                        target,
                        Fault::StallAfter {
                            bytes,
                            stall: silence,
                        },
                    ),
                    4 => ("no_response", target, Fault::NoResponse(silence)),
                    5 | 6 => {
                        let code = [500, 502, 503, 504][self.rng.below(4) as usize];
                        ("5xx", target, status(code, None))
                    }
                    7 => ("429_retry_after", target, status(429, Some("1"))),
                    // Only a CDN's 403 is an expired URL; the Hub's is final.
                    8 if lfs => ("expired_url_403", Target::Cdn(path), status(403, None)),
                    8 | 9 => ("200_to_range", target, Fault::IgnoreRange),
                    10 => ("wrong_content_range", target, Fault::WrongContentRange),
                    _ => ("api_503", Target::Api, status(503, None)),
                };
                self.hub.push_fault(target, fault);
                *self.tally.faults.entry(kind).or_default() += 1;
                self.queued += 1;
                kinds.push(kind);
            }
            kinds
        }

        fn lib_pull(&mut self, r: usize) -> Ended {
            let mut plan = self.plan(r, false);
            let n = self.rng.below(4);
            let faults = self.inject(r, n, false);
            plan.label = format!(
                "lib {} {} x{} {faults:?}",
                plan.name,
                short(&plan.revision),
                plan.connections
            );
            let (mut ended, moved) = run_lib(&self.hub, &self.cache, &plan);
            by_design(&mut ended, &faults);
            self.after_move(&mut plan, moved);
            ended
        }

        fn cli_pull(&mut self, r: usize) -> Ended {
            let mut plan = self.plan(r, true);
            let n = self.rng.below(2);
            let faults = self.inject(r, n, true);
            plan.label = format!(
                "cli {} {} x{} {:?} {faults:?}",
                plan.name,
                short(&plan.revision),
                plan.connections,
                plan.kill
            );
            let (mut ended, moved) = run_cli(&self.cli, &self.hub, &self.cache, &self.root, &plan);
            by_design(&mut ended, &faults);
            self.after_move(&mut plan, moved);
            ended
        }

        /// Records a commit a pull made mid-transfer.
        fn after_move(&mut self, plan: &mut Plan, moved: Option<String>) {
            if let (Some(sha), Some((_, branch, files))) = (moved, plan.move_at.take()) {
                self.tally.mid_pull_commits += 1;
                self.expected.insert(sha.clone(), expected_of(&files));
                let repo = &mut self.repos[plan.repo];
                repo.commits.push(sha);
                repo.branches.insert(branch, files);
            }
        }

        /// Two things at once on one repo: two pulls of one revision, of two revisions, a CLI
        /// process beside a library pull, or a pull beside `gc --apply`.
        fn pair(&mut self, r: usize) -> Vec<Ended> {
            self.tally.concurrent += 1;
            let variant = self.rng.below(4);
            let mut a = self.plan(r, false);
            let mut b = self.plan(r, variant == 2);
            a.cancel_at = None;
            b.cancel_at = None;
            b.kill = Kill::None;
            // One commit move at most, so the two plans do not race for the branch.
            b.move_at = None;
            match variant {
                0 => b.revision = a.revision.clone(),
                1 | 2 => {
                    a.revision = "main".into();
                    b.revision = "dev".into();
                    if a.move_at.as_ref().is_some_and(|m| m.1 != "main") {
                        a.move_at = None;
                    }
                }
                _ => {}
            }
            let n = self.rng.below(3);
            let faults = self.inject(r, n, variant == 2);
            a.label = format!(
                "pair{variant} lib {} {} x{} {faults:?}",
                a.name,
                short(&a.revision),
                a.connections
            );
            b.label = format!(
                "pair{variant} {} {} {} x{}",
                if variant == 2 { "cli" } else { "lib" },
                b.name,
                short(&b.revision),
                b.connections
            );
            let (hub, cache, root, cli) = (&self.hub, &self.cache, &self.root, &self.cli);
            let (first, second, gc) = std::thread::scope(|s| {
                let one = s.spawn(|| run_lib(hub, cache, &a));
                let (two, gc) = match variant {
                    2 => (Some(run_cli(cli, hub, cache, root, &b)), None),
                    3 => {
                        std::thread::sleep(Duration::from_millis(20));
                        (None, Some(gc_apply(cache, &b.name)))
                    }
                    _ => (Some(run_lib(hub, cache, &b)), None),
                };
                let one = one
                    .join()
                    .unwrap_or_else(|_| panic!("pull thread panicked"));
                (one, two, gc)
            });
            let mut ended = vec![first.0];
            by_design(&mut ended[0], &faults);
            self.after_move(&mut a, first.1);
            if let Some((mut e, moved)) = second {
                by_design(&mut e, &faults);
                ended.push(e);
                self.after_move(&mut b, moved);
            }
            if let Some(report) = gc {
                self.gc_done(r, report);
            }
            ended
        }

        fn move_commit(&mut self, r: usize) {
            let branch = if self.rng.chance(65) { "main" } else { "dev" };
            let files = self.repos[r].next_files(branch, &mut self.rng);
            self.commit(r, branch, files);
            self.tally.commit_moves += 1;
            self.say(&format!("commit move {} {branch}", self.repos[r].name));
        }

        fn gc_apply(&mut self, r: usize) {
            let report = gc_apply(&self.cache, &self.repos[r].name);
            self.gc_done(r, report);
        }

        /// After `gc --apply`: it must not fail; what it removed may no longer be checked.
        fn gc_done(&mut self, r: usize, report: lemon_pull::Result<Vec<String>>) {
            self.tally.gc_applies += 1;
            match report {
                Ok(rep) => {
                    let snaps = self.repo_dir(r).join("snapshots");
                    for name in &rep {
                        let dir = snaps.join(name);
                        self.committed.remove(&dir);
                        self.gc_removed.push(dir);
                    }
                    self.say(&format!(
                        "gc --apply {}: removed {rep:?}",
                        self.repos[r].name
                    ));
                }
                Err(e) => self.violation(format!("gc --apply {} failed: {e}", self.repos[r].name)),
            }
        }

        fn repo_dir(&self, r: usize) -> PathBuf {
            self.cache
                .join(format!("models--{}", self.repos[r].name.replace('/', "--")))
        }

        /// Records a violation; one that persists is printed once (and counted once).
        fn violation(&mut self, what: String) {
            if !self.tally.violations.contains(&what) {
                println!("VIOLATION (step {}): {what}", self.tally.steps);
                self.tally.violations.push(what);
            }
        }

        fn account(&mut self, e: &Ended) {
            self.tally.pulls += 1;
            *self.tally.outcomes.entry(e.outcome.clone()).or_default() += 1;
            self.tally.bytes_downloaded += e.downloaded;
            self.tally.bytes_reused += e.reused;
            self.tally.bytes_salvaged += e.salvaged;
            match e.outcome.as_str() {
                "killed" => self.tally.kills += 1,
                "cancelled" if e.label.starts_with("cli") => self.tally.sigints += 1,
                "cancelled" => self.tally.cancels += 1,
                _ => {}
            }
            if let Some((commit, _)) = &e.success {
                self.tally.bytes_needed += self
                    .expected
                    .get(commit)
                    .map_or(0, |x| x.values().map(|v| v.0).sum());
            }
            if e.success.is_none() && !e.provoked {
                self.tally
                    .unexpected
                    .push(format!("{}: {} {}", e.label, e.outcome, e.message));
            }
            self.say(&format!(
                "{} -> {} {}",
                e.label,
                e.outcome,
                if e.success.is_none() {
                    e.message.as_str()
                } else {
                    ""
                }
            ));
        }
    }

    /// A `200` whose `Content-Length` is less than the listed size is refused as an invalid
    /// response, by design (the library never writes a body that cannot be the file): an
    /// expected outcome of a short-body fault, not a surprise.
    fn by_design(e: &mut Ended, faults: &[&str]) {
        if e.outcome == "invalid_response"
            && faults.contains(&"short_body")
            && e.message.contains("but the listing says")
        {
            e.outcome = "invalid_response (short 200 body)".into();
            e.provoked = true;
        }
    }

    /// `gc --apply`: the names of the snapshot folders it removed.
    fn gc_apply(cache: &Path, repo: &str) -> lemon_pull::Result<Vec<String>> {
        let report = lemon_pull::gc(
            cache,
            repo,
            lemon_pull::Registry::HuggingFace,
            true,
            &Cancel::new(None, None),
        )?;
        Ok(report.snapshots.into_iter().map(|(name, _)| name).collect())
    }

    fn status(code: u16, retry_after: Option<&str>) -> Fault {
        Fault::Status {
            code,
            retry_after: retry_after.map(str::to_owned),
        }
    }

    fn short(revision: &str) -> &str {
        &revision[..revision.len().min(8)]
    }

    // -----------------------------------------------------------------------------------------
    // Running pulls
    // -----------------------------------------------------------------------------------------

    fn done_bytes(ev: &Event<'_>) -> Option<u64> {
        match ev {
            Event::Progress { totals, .. }
            | Event::FileStart { totals, .. }
            | Event::FileDone { totals, .. }
            | Event::Tick { totals, .. } => Some(totals.done_bytes),
            _ => None,
        }
    }

    /// One library pull as planned; returns how it ended and the commit it made mid-pull.
    fn run_lib(hub: &MockHub, cache: &Path, plan: &Plan) -> (Ended, Option<String>) {
        let mut o = PullOptions::new(plan.name.clone());
        o.endpoint = Some(hub.endpoint());
        o.cache_dir = Some(cache.to_path_buf());
        o.token = Some(String::new());
        o.revision = Some(plan.revision.clone());
        o.connections = plan.connections;
        o.retry = RetryPolicy {
            max_retries: 8,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_total_wait: Duration::from_secs(20),
        };
        o.stall_timeout = Duration::from_secs(1);
        o.connect_timeout = Duration::from_secs(2);
        let mut moved = None;
        let mut cancelled = false;
        let mut stopped = Totals::default();
        let result = lemon_pull::pull(&o, &mut |ev: &Event<'_>| {
            if let Event::Stopped { totals, .. } = ev {
                stopped = *totals;
            }
            let Some(done) = done_bytes(ev) else {
                return Flow::Continue;
            };
            if let Some((at, branch, files)) = &plan.move_at
                && moved.is_none()
                && done >= *at
            {
                moved = Some(hub.commit(&plan.name, branch, files.clone()));
            }
            if plan.cancel_at.is_some_and(|at| done >= at) {
                cancelled = true;
                return Flow::Cancel;
            }
            Flow::Continue
        });
        let ended = match result {
            Ok(out) => Ended {
                label: plan.label.clone(),
                outcome: "ok".into(),
                success: Some((out.commit.clone(), out.snapshot_path.clone())),
                provoked: false,
                message: String::new(),
                downloaded: out.totals.bytes_downloaded,
                reused: out.totals.bytes_reused,
                salvaged: out.totals.bytes_salvaged,
            },
            Err(e) => Ended {
                label: plan.label.clone(),
                outcome: e.status().name().into(),
                success: None,
                provoked: cancelled && e.status() == lemon_pull::Status::Cancelled,
                message: e.to_string(),
                downloaded: stopped.bytes_downloaded,
                reused: stopped.bytes_reused,
                salvaged: stopped.bytes_salvaged,
            },
        };
        (ended, moved)
    }

    /// One `resume-pull --json` process as planned, interrupted as planned.
    fn run_cli(
        cli: &Path,
        hub: &MockHub,
        cache: &Path,
        root: &Path,
        plan: &Plan,
    ) -> (Ended, Option<String>) {
        let home = root.join("home");
        let _ = fs::create_dir_all(&home);
        let spawned = Command::new(cli)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .args(["--json", "--token", "", "--endpoint", &hub.endpoint()])
            .args(["--connections", &plan.connections.to_string()])
            .args(["--revision", &plan.revision, "--cache-dir"])
            .arg(cache)
            .arg(&plan.name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut ended = Ended {
            label: plan.label.clone(),
            outcome: "killed".into(),
            success: None,
            provoked: false,
            message: String::new(),
            downloaded: 0,
            reused: 0,
            salvaged: 0,
        };
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                ended.outcome = "spawn_failed".into();
                ended.message = e.to_string();
                return (ended, None);
            }
        };
        let (last, moved, interrupted) = watch_cli(&mut child, hub, plan);
        let _ = child.wait();
        ended.provoked = interrupted;
        if let Some(v) = last {
            read_cli_result(&v, &mut ended);
        }
        (ended, moved)
    }

    /// Reads the CLI's JSON lines until it exits, killing or interrupting it as planned. Returns
    /// its last result line, the commit made mid-pull, and whether it was interrupted.
    fn watch_cli(
        child: &mut Child,
        hub: &MockHub,
        plan: &Plan,
    ) -> (Option<Value>, Option<String>, bool) {
        let Some(stdout) = child.stdout.take() else {
            return (None, None, false);
        };
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let (mut last, mut moved, mut interrupted) = (None, None, false);
        loop {
            let line = match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(line) => Some(line),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut done = None;
            if let Some(v) = line.and_then(|l| serde_json::from_str::<Value>(&l).ok()) {
                done = v["totals"]["done_bytes"].as_u64();
                if v.get("status").is_some() {
                    last = Some(v);
                }
            }
            if let (Some(d), Some((at, branch, files))) = (done, &plan.move_at)
                && moved.is_none()
                && d >= *at
            {
                moved = Some(hub.commit(&plan.name, branch, files.clone()));
            }
            if interrupted {
                continue;
            }
            let fire = match plan.kill {
                Kill::None => false,
                Kill::After(t) => started.elapsed() >= t,
                Kill::AtByte(at) | Kill::Interrupt(at) => done.is_some_and(|d| d >= at),
            };
            if fire {
                interrupted = true;
                if let Kill::Interrupt(_) = plan.kill {
                    let _ = Command::new("kill")
                        .args(["-INT", &child.id().to_string()])
                        .status();
                } else {
                    let _ = child.kill();
                }
            }
        }
        let _ = reader.join();
        (last, moved, interrupted)
    }

    fn read_cli_result(v: &Value, ended: &mut Ended) {
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        ended.downloaded = n("bytes_downloaded");
        ended.reused = n("bytes_reused");
        ended.salvaged = n("bytes_salvaged");
        match v["status"].as_str() {
            Some("ok") => {
                ended.outcome = "ok".into();
                ended.provoked = false;
                let commit = v["commit"].as_str().unwrap_or_default().to_string();
                let snap = PathBuf::from(v["snapshot_path"].as_str().unwrap_or_default());
                ended.success = Some((commit, snap));
            }
            _ => {
                ended.outcome = v["error"]["code"].as_str().unwrap_or("unknown").to_string();
                ended.message = v["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                // Only a cancel answers an interrupt; any other error was not provoked.
                ended.provoked &= ended.outcome == "cancelled";
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Invariants
    // -----------------------------------------------------------------------------------------

    /// Every file below `dir`, relative, `/`-separated (symlinks listed, not followed).
    fn files_below(dir: &Path) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(rd) = fs::read_dir(dir) else { return };
            for e in rd.flatten() {
                let p = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() => walk(base, &p, out),
                    _ => {
                        if let Ok(rel) = p.strip_prefix(base) {
                            out.push(rel.to_string_lossy().replace('\\', "/"));
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    impl Chaos {
        /// The checks after a step on repo `r`.
        fn check(&mut self, r: usize, ended: &[Ended]) {
            let mut succeeded = false;
            for e in ended {
                let Some((commit, snap)) = &e.success else {
                    continue;
                };
                succeeded = true;
                if self.gc_removed.contains(snap) {
                    continue;
                }
                if let Err(why) = self.verify_snapshot(snap, commit) {
                    self.violation(format!("{}: success, but {why}", e.label));
                }
            }
            self.check_refs(r);
            self.check_committed(false);
            if succeeded {
                self.check_strays(r);
            }
            self.check_outside();
            let name = self.repos[r].name.clone();
            if let Err(e) =
                lemon_pull::status(&self.cache, &name, lemon_pull::Registry::HuggingFace)
            {
                self.violation(format!("status {name} failed: {e}"));
            }
            if let Err(e) = lemon_pull::gc(
                &self.cache,
                &name,
                lemon_pull::Registry::HuggingFace,
                false,
                &Cancel::new(None, None),
            ) {
                self.violation(format!("gc (dry run) {name} failed: {e}"));
            }
        }

        /// `snap` holds exactly the files of `commit`, each with its sha256; it is then tracked
        /// as complete (or, when tracked already, must not have changed).
        fn verify_snapshot(&mut self, snap: &Path, commit: &str) -> Result<(), String> {
            let Some(expected) = self.expected.get(commit) else {
                return Err(format!("{commit} is no commit this run made"));
            };
            let found = files_below(snap);
            let want: Vec<&String> = expected.keys().collect();
            if found.iter().collect::<Vec<_>>() != want {
                return Err(format!(
                    "{} holds {found:?}, expected {want:?}",
                    snap.display()
                ));
            }
            let mut prints = BTreeMap::new();
            for (path, (size, digest)) in expected {
                let file = snap.join(path);
                let bytes = fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                if bytes.len() as u64 != *size || sha256(&bytes) != *digest {
                    return Err(format!(
                        "{} does not match the hub's sha256",
                        file.display()
                    ));
                }
                prints.insert(
                    path.clone(),
                    print_of(&file).unwrap_or(Print {
                        len: 0,
                        ino: 0,
                        mtime_ns: 0,
                    }),
                );
            }
            match self.committed.get(snap) {
                Some(known) if *known != prints => {
                    let changed: Vec<&String> = prints
                        .keys()
                        .filter(|p| known.get(*p) != prints.get(*p))
                        .collect();
                    Err(format!(
                        "complete snapshot {} changed: {changed:?} rewritten",
                        snap.display()
                    ))
                }
                Some(_) => Ok(()),
                None => {
                    self.committed.insert(snap.to_path_buf(), prints);
                    Ok(())
                }
            }
        }

        /// Every ref names a complete snapshot of the right commit.
        fn check_refs(&mut self, r: usize) {
            let dir = self.repo_dir(r);
            for rel in files_below(&dir.join("refs")) {
                let name = rel.rsplit('/').next().unwrap_or("");
                if name.starts_with('.') {
                    continue; // a temp file: judged by `check_strays`
                }
                let commit = fs::read_to_string(dir.join("refs").join(&rel)).unwrap_or_default();
                let snap = dir.join("snapshots").join(&commit);
                if let Err(why) = self.verify_snapshot(&snap, &commit) {
                    self.violation(format!("refs/{rel} = {commit:?}: {why}"));
                }
            }
        }

        /// No complete snapshot changed or vanished; with `full`, each file is hashed again.
        fn check_committed(&mut self, full: bool) {
            let mut bad = Vec::new();
            for (snap, prints) in &self.committed {
                let now = files_below(snap);
                if now.iter().ne(prints.keys()) {
                    bad.push(format!(
                        "complete snapshot {} now holds {now:?}",
                        snap.display()
                    ));
                    continue;
                }
                for (path, print) in prints {
                    if print_of(&snap.join(path)).as_ref() != Some(print) {
                        bad.push(format!(
                            "complete snapshot file {}/{path} changed",
                            snap.display()
                        ));
                    }
                }
                if full {
                    let commit = snap
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    for (path, (_, digest)) in self.expected.get(&commit).into_iter().flatten() {
                        let ok = fs::read(snap.join(path)).is_ok_and(|b| sha256(&b) == *digest);
                        if !ok {
                            bad.push(format!(
                                "{}/{path} no longer matches its sha256",
                                snap.display()
                            ));
                        }
                    }
                }
            }
            for b in bad {
                self.violation(b);
            }
        }

        /// After a success: only what belongs may be in the repo folder.
        fn check_strays(&mut self, r: usize) {
            let dir = self.repo_dir(r);
            let mut bad = Vec::new();
            for rel in files_below(&dir) {
                let parts: Vec<&str> = rel.split('/').collect();
                let ok = match parts.as_slice() {
                    ["refs", .., last] => !last.starts_with('.'),
                    ["snapshots", commit, rest @ ..] => {
                        let path = rest.join("/");
                        let file = path.strip_suffix(".partial").unwrap_or(&path);
                        path == ".download_manifest.json"
                            || self
                                .expected
                                .get(*commit)
                                .is_some_and(|x| x.contains_key(file))
                    }
                    [".lemon-pull", "lock"] => true,
                    [".lemon-pull", "verified", f] | [".lemon-pull", "partials", f] => {
                        f.ends_with(".json") && !f.starts_with('.')
                    }
                    [".lemon-pull", "trash", ..] => {
                        self.tally.trash_left += 1;
                        true
                    }
                    _ => false,
                };
                if !ok {
                    bad.push(format!(
                        "after a success, stray file {}/{rel}",
                        dir.display()
                    ));
                }
            }
            for b in bad {
                self.violation(b);
            }
        }

        /// Nothing outside the cache: the work folder holds `cache/` and the CLI's empty home.
        fn check_outside(&mut self) {
            let mut bad = Vec::new();
            for rel in files_below(&self.root) {
                if !(rel.starts_with("cache/models--chaos--repo-") || rel == "cache/CACHEDIR.TAG") {
                    bad.push(format!("file outside a repo folder: {rel}"));
                }
            }
            for b in bad {
                self.violation(b);
            }
        }

        /// `--tamper`: one byte of a complete snapshot flipped in place (same length), a stray
        /// temp file beside a ref, a file outside the cache. Each must be reported.
        fn tamper(&mut self) {
            println!("tampering with the cache (--tamper): expect violations");
            let first = self.committed.iter().next();
            if let Some((snap, prints)) = first
                && let Some(path) = prints.keys().next()
                && let Ok(mut bytes) = fs::read(snap.join(path))
                && let Some(byte) = bytes.first_mut()
            {
                *byte ^= 1;
                let _ = fs::write(snap.join(path), bytes);
            }
            let refs = self.repo_dir(0).join("refs");
            let _ = fs::create_dir_all(&refs);
            let _ = fs::write(refs.join(".main.999.tmp"), "x");
            let _ = fs::write(self.root.join("outside.txt"), "x");
        }

        fn final_check(&mut self) {
            self.check_committed(true);
            for r in 0..REPOS {
                let name = self.repos[r].name.clone();
                if let Err(e) =
                    lemon_pull::status(&self.cache, &name, lemon_pull::Registry::HuggingFace)
                {
                    self.violation(format!("final status {name} failed: {e}"));
                }
            }
            let (waste, bound) = self.waste();
            if waste > bound {
                self.violation(format!(
                    "the hub served {waste} bytes more than the pulls counted, above the bound {bound}"
                ));
            }
        }

        /// Bytes the hub sent that no pull counted as downloaded (lost to kills, cancels, cut or
        /// corrupted answers, commit moves), and the stated bound: each such event may lose at most
        /// one in-flight copy of the largest file (a piece per connection never exceeds it, and a
        /// checkpoint interval, 32 MiB, is larger than any file here).
        fn waste(&self) -> (u64, u64) {
            let t = &self.tally;
            let served = self.hub.bytes_served_total();
            let events =
                (t.kills + t.sigints + t.cancels + t.faults_fired + t.mid_pull_commits) as u64;
            let largest = 20 * MIB;
            (
                served.saturating_sub(t.bytes_downloaded),
                (events + 1) * largest,
            )
        }

        fn summary(&self, wall: Duration, seed: u64) {
            let t = &self.tally;
            fn list<K: std::fmt::Display>(m: &BTreeMap<K, usize>) -> String {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            let injected: usize = t.faults.values().sum();
            let mib = |b: u64| format!("{:.1} MiB", b as f64 / MIB as f64);
            println!("---- chaos summary (seed {seed}) ----");
            println!(
                "steps {}, pulls {} ({} concurrent steps)",
                t.steps, t.pulls, t.concurrent
            );
            println!("outcomes: {}", list(&t.outcomes));
            println!(
                "interruptions: {} SIGKILL, {} SIGINT, {} callback cancels",
                t.kills, t.sigints, t.cancels
            );
            println!(
                "commit moves: {} mid-pull, {} between pulls; gc --apply: {}",
                t.mid_pull_commits, t.commit_moves, t.gc_applies
            );
            println!(
                "faults injected {injected} (fired {}): {}",
                t.faults_fired,
                list(&t.faults)
            );
            println!(
                "bytes: served by the hub {}, downloaded {}, reused {}, salvaged {}; successful pulls needed {}",
                mib(self.hub.bytes_served_total()),
                mib(t.bytes_downloaded),
                mib(t.bytes_reused),
                mib(t.bytes_salvaged),
                mib(t.bytes_needed)
            );
            let (waste, bound) = self.waste();
            println!(
                "waste (served but not counted by any pull) {} (bound {})",
                mib(waste),
                mib(bound)
            );
            println!(
                "complete snapshots tracked {}, trash entries seen after successes {}",
                self.committed.len(),
                t.trash_left
            );
            println!(
                "errors not provoked by a cancel or kill: {}",
                t.unexpected.len()
            );
            for u in t.unexpected.iter().take(10) {
                println!("  {u}");
            }
            println!("invariant violations: {}", t.violations.len());
            for v in t.violations.iter().take(20) {
                println!("  {v}");
            }
            println!("wall time {:.1} s", wall.as_secs_f64());
        }
    }
}
