//! The invariants checked after every step and at the end, and the summary.

use super::*;

// -----------------------------------------------------------------------------------------
// Invariants
// -----------------------------------------------------------------------------------------

/// Every file below `dir`, relative, `/`-separated (symlinks listed, not followed).
pub(super) fn files_below(dir: &Path) -> Vec<String> {
    pub(super) fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
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
    pub(super) fn check(&mut self, r: usize, ended: &[Ended]) {
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
        if let Err(e) = lemon_pull::status(&self.cache, &name, lemon_pull::Registry::HuggingFace) {
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
    pub(super) fn verify_snapshot(&mut self, snap: &Path, commit: &str) -> Result<(), String> {
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
    pub(super) fn check_refs(&mut self, r: usize) {
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
    pub(super) fn check_committed(&mut self, full: bool) {
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
    pub(super) fn check_strays(&mut self, r: usize) {
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
    pub(super) fn check_outside(&mut self) {
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
    pub(super) fn tamper(&mut self) {
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

    pub(super) fn final_check(&mut self) {
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
    pub(super) fn waste(&self) -> (u64, u64) {
        let t = &self.tally;
        let served = self.hub.bytes_served_total();
        let events = (t.kills + t.sigints + t.cancels + t.faults_fired + t.mid_pull_commits) as u64;
        let largest = 20 * MIB;
        (
            served.saturating_sub(t.bytes_downloaded),
            (events + 1) * largest,
        )
    }

    pub(super) fn summary(&self, wall: Duration, seed: u64) {
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
