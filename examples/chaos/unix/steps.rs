//! Plans and faults: what each step does, chosen by the seeded generator.

use super::*;

// -----------------------------------------------------------------------------------------
// Plans and faults
// -----------------------------------------------------------------------------------------

/// How a CLI process is interrupted, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kill {
    None,
    /// SIGKILL once this many bytes are done.
    AtByte(u64),
    /// SIGKILL after this long (also before any byte: resolve, lock, plan, salvage).
    After(Duration),
    /// SIGINT (the CLI cancels, keeps its partials, reports `cancelled`) at this byte.
    Interrupt(u64),
}

/// What one pull does.
pub(super) struct Plan {
    pub(super) label: String,
    pub(super) repo: usize,
    pub(super) name: String,
    pub(super) revision: String,
    pub(super) connections: u32,
    /// Library pulls: cancel from the callback at this byte.
    pub(super) cancel_at: Option<u64>,
    /// Move this branch to these files once this many bytes are done.
    pub(super) move_at: Option<(u64, &'static str, Vec<MockFile>)>,
    pub(super) kill: Kill,
}

impl Chaos {
    /// A random plan for a pull of repo `r`; `cli` chooses the CLI's kinds of interruption.
    pub(super) fn plan(&mut self, r: usize, cli: bool) -> Plan {
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
    pub(super) fn inject(&mut self, r: usize, n: u64, cli: bool) -> Vec<&'static str> {
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

    pub(super) fn lib_pull(&mut self, r: usize) -> Ended {
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

    pub(super) fn cli_pull(&mut self, r: usize) -> Ended {
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
    pub(super) fn after_move(&mut self, plan: &mut Plan, moved: Option<String>) {
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
    pub(super) fn pair(&mut self, r: usize) -> Vec<Ended> {
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

    pub(super) fn move_commit(&mut self, r: usize) {
        let branch = if self.rng.chance(65) { "main" } else { "dev" };
        let files = self.repos[r].next_files(branch, &mut self.rng);
        self.commit(r, branch, files);
        self.tally.commit_moves += 1;
        self.say(&format!("commit move {} {branch}", self.repos[r].name));
    }

    pub(super) fn gc_apply(&mut self, r: usize) {
        let report = gc_apply(&self.cache, &self.repos[r].name);
        self.gc_done(r, report);
    }

    /// After `gc --apply`: it must not fail; what it removed may no longer be checked.
    pub(super) fn gc_done(&mut self, r: usize, report: lemon_pull::Result<Vec<String>>) {
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

    pub(super) fn repo_dir(&self, r: usize) -> PathBuf {
        self.cache
            .join(format!("models--{}", self.repos[r].name.replace('/', "--")))
    }

    /// Records a violation; one that persists is printed once (and counted once).
    pub(super) fn violation(&mut self, what: String) {
        if !self.tally.violations.contains(&what) {
            println!("VIOLATION (step {}): {what}", self.tally.steps);
            self.tally.violations.push(what);
        }
    }

    pub(super) fn account(&mut self, e: &Ended) {
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
pub(super) fn by_design(e: &mut Ended, faults: &[&str]) {
    if e.outcome == "invalid_response"
        && faults.contains(&"short_body")
        && e.message.contains("but the listing says")
    {
        e.outcome = "invalid_response (short 200 body)".into();
        e.provoked = true;
    }
}

/// `gc --apply`: the names of the snapshot folders it removed.
pub(super) fn gc_apply(cache: &Path, repo: &str) -> lemon_pull::Result<Vec<String>> {
    let report = lemon_pull::gc(
        cache,
        repo,
        lemon_pull::Registry::HuggingFace,
        true,
        &Cancel::new(None, None),
    )?;
    Ok(report.snapshots.into_iter().map(|(name, _)| name).collect())
}

pub(super) fn status(code: u16, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        code,
        retry_after: retry_after.map(str::to_owned),
    }
}

pub(super) fn short(revision: &str) -> &str {
    &revision[..revision.len().min(8)]
}
