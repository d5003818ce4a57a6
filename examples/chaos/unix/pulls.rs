//! Running pulls: through the library in-process, or as a `resume-pull` process to watch,
//! interrupt and read.

use super::*;

// -----------------------------------------------------------------------------------------
// Running pulls
// -----------------------------------------------------------------------------------------

pub(super) fn done_bytes(ev: &Event<'_>) -> Option<u64> {
    match ev {
        Event::Progress { totals, .. }
        | Event::FileStart { totals, .. }
        | Event::FileDone { totals, .. }
        | Event::Tick { totals, .. } => Some(totals.done_bytes),
        _ => None,
    }
}

/// One library pull as planned; returns how it ended and the commit it made mid-pull.
pub(super) fn run_lib(hub: &MockHub, cache: &Path, plan: &Plan) -> (Ended, Option<String>) {
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
pub(super) fn run_cli(
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
pub(super) fn watch_cli(
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

pub(super) fn read_cli_result(v: &Value, ended: &mut Ended) {
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
