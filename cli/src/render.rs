//! How progress is shown: a live bar on a terminal, periodic plain lines otherwise, or JSON events.

use std::io::Write;
use std::time::{Duration, Instant};

use lemon_pull::{Event, FileInfo, Source, Totals};
use serde_json::{Value, json};

/// Output mode chosen from the flags and whether stderr is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Lines,
    Json,
    Quiet,
}

/// Turns events into output.
pub struct Renderer {
    mode: Mode,
    started: Instant,
    last_draw: Instant,
    last_line: Instant,
    /// Smoothed download rate in bytes/s.
    rate: f64,
    last_sample: (Instant, u64),
    bar_drawn: bool,
}

impl Renderer {
    pub fn new(mode: Mode) -> Self {
        let now = Instant::now();
        Renderer {
            mode,
            started: now,
            last_draw: now - Duration::from_secs(1),
            last_line: now,
            rate: 0.0,
            last_sample: (now, 0),
            bar_drawn: false,
        }
    }

    pub fn event(&mut self, ev: &Event<'_>) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => println_json(&event_json(ev)),
            Mode::Bar | Mode::Lines => self.human(ev),
        }
    }

    fn human(&mut self, ev: &Event<'_>) {
        match ev {
            Event::Resolved {
                repo,
                revision,
                commit,
            } => {
                self.say(&format!("{repo}@{revision} → commit {commit}"));
            }
            Event::WaitingForLock { path, .. } => {
                self.say(&format!(
                    "waiting for another download to finish (lock {})",
                    path.display()
                ));
            }
            Event::Plan { totals } => self.say(&format!(
                "{} files, {} total, {} already on disk",
                totals.total_files,
                bytes(totals.total_bytes),
                bytes(totals.done_bytes)
            )),
            Event::Progress {
                file,
                file_done,
                totals,
            } => self.progress(file, *file_done, totals),
            Event::FileDone {
                file,
                reused,
                totals,
            } if self.mode == Mode::Lines || *reused => {
                let how = if *reused { "already complete" } else { "done" };
                self.update_rate(totals.bytes_downloaded);
                self.say(&format!(
                    "[{}/{}] {} {how}",
                    file.index, totals.total_files, file.path
                ));
            }
            Event::FileDone { totals, .. } => self.update_rate(totals.bytes_downloaded),
            Event::Retry {
                file,
                attempt,
                delay,
                reason,
            } => {
                let what = file.map(|f| f.path).unwrap_or("API call");
                self.say(&format!(
                    "retry {attempt} of {what} in {:.1}s: {reason}",
                    delay.as_secs_f64()
                ));
            }
            Event::Restart { file, reason } => self.say(&format!("{}: {reason}", file.path)),
            Event::FromCache { cause } => {
                self.say(&format!("{cause}; answering from the cache"));
            }
            _ => self.human_housekeeping(ev),
        }
    }

    /// Lines for bytes moved between snapshot folders.
    fn human_housekeeping(&mut self, ev: &Event<'_>) {
        match ev {
            Event::Salvaged {
                file,
                from,
                bytes: n,
                how,
            } => {
                let verb = if *how == Source::Link {
                    "linked"
                } else {
                    "salvaged"
                };
                self.say(&format!(
                    "{}: {verb} {} from snapshot {from}",
                    file.path,
                    bytes(*n)
                ));
            }
            Event::Reclaimed {
                snapshot, bytes: n, ..
            } => {
                self.say(&format!(
                    "removed orphaned snapshot {snapshot} ({})",
                    bytes(*n)
                ));
            }
            _ => {}
        }
    }

    fn update_rate(&mut self, downloaded: u64) {
        let now = Instant::now();
        let (t0, b0) = self.last_sample;
        let dt = now.duration_since(t0).as_secs_f64();
        if dt >= 0.25 {
            let inst = downloaded.saturating_sub(b0) as f64 / dt;
            // Exponential smoothing keeps the rate and ETA from jumping around.
            self.rate = if self.rate == 0.0 {
                inst
            } else {
                0.7 * self.rate + 0.3 * inst
            };
            self.last_sample = (now, downloaded);
        }
    }

    fn progress(&mut self, file: &FileInfo<'_>, file_done: u64, t: &Totals) {
        self.update_rate(t.bytes_downloaded);
        let pct = if t.total_bytes == 0 {
            100.0
        } else {
            t.done_bytes as f64 * 100.0 / t.total_bytes as f64
        };
        let eta = if self.rate > 1.0 {
            clock(Duration::from_secs_f64(
                t.total_bytes.saturating_sub(t.done_bytes) as f64 / self.rate,
            ))
        } else {
            "--:--".into()
        };
        match self.mode {
            Mode::Bar if self.last_draw.elapsed() >= Duration::from_millis(100) => {
                self.last_draw = Instant::now();
                let width = terminal_width();
                let head = format!(
                    "{pct:5.1}% {}/{} {}/s ETA {eta} [{}/{}] ",
                    bytes(t.done_bytes),
                    bytes(t.total_bytes),
                    bytes(self.rate as u64),
                    file.index,
                    t.total_files
                );
                // The file name gets up to 24 columns before the bar takes what is left.
                let head_len = head.chars().count();
                let name_room = width.saturating_sub(head_len + 1).min(24);
                let bar_w = width.saturating_sub(head_len + name_room + 4).min(30);
                let name = shorten(file.path, width.saturating_sub(head_len + bar_w + 4));
                let filled = ((pct / 100.0) * bar_w as f64) as usize;
                let bar = format!(
                    "[{}{}]",
                    "#".repeat(filled.min(bar_w)),
                    "-".repeat(bar_w - filled.min(bar_w))
                );
                let line = if bar_w >= 5 {
                    format!("{bar} {head}{name}")
                } else {
                    // Narrow terminal: the essentials, then as much of the file name as fits.
                    let short = format!("{pct:5.1}% {}/s ETA {eta} ", bytes(self.rate as u64));
                    let room = width.saturating_sub(short.chars().count() + 1);
                    let line = format!("{short}{}", shorten(file.path, room));
                    line.chars().take(width.saturating_sub(1)).collect()
                };
                eprint!("\r{line}\x1b[K");
                let _ = std::io::stderr().flush();
                self.bar_drawn = true;
            }
            Mode::Lines if self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                eprintln!(
                    "{pct:5.1}% {}/{} {}/s ETA {eta} {} {}/{}",
                    bytes(t.done_bytes),
                    bytes(t.total_bytes),
                    bytes(self.rate as u64),
                    file.path,
                    bytes(file_done),
                    bytes(file.size)
                );
            }
            _ => {}
        }
    }

    /// Prints a message line, clearing the bar first so they do not interleave.
    pub fn say(&mut self, msg: &str) {
        if self.mode == Mode::Quiet || self.mode == Mode::Json {
            return;
        }
        if self.bar_drawn {
            eprint!("\r\x1b[K");
            self.bar_drawn = false;
        }
        eprintln!("{msg}");
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }
}

pub fn println_json(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn totals_json(t: &Totals) -> Value {
    json!({
        "total_files": t.total_files,
        "total_bytes": t.total_bytes,
        "done_bytes": t.done_bytes,
        "bytes_downloaded": t.bytes_downloaded,
        "bytes_reused": t.bytes_reused,
        "bytes_salvaged": t.bytes_salvaged,
    })
}

fn file_json(f: &FileInfo<'_>) -> Value {
    json!({ "repo": f.repo, "path": f.path, "index": f.index, "size": f.size })
}

/// One JSON object per event; `event` names the kind.
pub fn event_json(ev: &Event<'_>) -> Value {
    match ev {
        Event::Resolved {
            repo,
            revision,
            commit,
        } => {
            json!({"event": "resolved", "repo": repo, "revision": revision, "commit": commit})
        }
        Event::WaitingForLock { repo, path } => {
            json!({"event": "waiting_for_lock", "repo": repo, "lock": path.display().to_string()})
        }
        Event::PlanFile {
            file,
            source,
            on_disk,
            ..
        } => json!({
            "event": "plan_file", "file": file_json(file), "source": source.name(), "on_disk": on_disk
        }),
        Event::Plan { totals } => json!({"event": "plan", "totals": totals_json(totals)}),
        Event::FileStart {
            file,
            offset,
            totals,
        } => json!({
            "event": "file_start", "file": file_json(file), "offset": offset, "totals": totals_json(totals)
        }),
        Event::Progress {
            file,
            file_done,
            totals,
        } => json!({
            "event": "progress", "file": file_json(file), "file_done": file_done, "totals": totals_json(totals)
        }),
        Event::FileDone {
            file,
            reused,
            totals,
        } => json!({
            "event": "file_done", "file": file_json(file), "reused": reused, "totals": totals_json(totals)
        }),
        Event::Retry {
            file,
            attempt,
            delay,
            reason,
        } => json!({
            "event": "retry", "file": file.as_ref().map(file_json), "attempt": attempt,
            "delay_ms": delay.as_millis() as u64, "reason": reason
        }),
        Event::Restart { file, reason } => {
            json!({"event": "restart", "file": file_json(file), "reason": reason})
        }
        Event::Salvaged {
            file,
            from,
            bytes,
            how,
        } => json!({
            "event": "salvaged", "file": file_json(file), "from": from, "bytes": bytes, "how": how.name()
        }),
        _ => pulse_json(ev),
    }
}

/// Events that end the pull or say how it is getting on, rather than what it did to one file.
fn pulse_json(ev: &Event<'_>) -> Value {
    match ev {
        Event::Reclaimed {
            repo,
            snapshot,
            bytes,
        } => {
            json!({"event": "reclaimed", "repo": repo, "snapshot": snapshot, "bytes": bytes})
        }
        Event::Complete {
            repo,
            commit,
            snapshot,
            totals,
        } => json!({
            "event": "complete", "repo": repo, "commit": commit,
            "snapshot_path": snapshot.display().to_string(), "totals": totals_json(totals)
        }),
        Event::Tick { phase, totals } => {
            json!({"event": "tick", "phase": phase.name(), "totals": totals_json(totals)})
        }
        Event::FromCache { cause } => json!({"event": "from_cache", "cause": cause}),
        _ => json!({"event": "other"}),
    }
}

/// `1.5 GiB` style sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w >= 20)
        .unwrap_or(80)
}

/// Keeps the end of a name (the file name matters most) within `max` chars.
fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max <= 1 {
        return String::new();
    }
    let tail: String = s.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_names() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(shorten("abcdef", 4), "…def");
        assert_eq!(shorten("abc", 4), "abc");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }
}
