//! `resume-pull status` and `resume-pull gc`: look at and tidy a repository's cache folder.

use std::process::ExitCode;

use lemon_pull::Cancel;
use lemon_pull::resolve_cache_dir;
use lemon_pull::split_repo_variant;
use lemon_pull::{gc, status};
use serde_json::json;

use crate::args::Args;
use crate::render::{bytes, println_json};

fn repo_and_root(a: &Args) -> Result<(String, std::path::PathBuf), lemon_pull::Error> {
    let (repo, _variant) = split_repo_variant(a.repo.trim())?;
    Ok((repo, resolve_cache_dir(a.cache_dir.as_deref())?))
}

fn fail(a: &Args, e: &lemon_pull::Error) -> ExitCode {
    if a.json {
        println_json(
            &json!({"status": "error", "error": {"code": e.status().name(), "message": e.to_string()}}),
        );
    } else {
        eprintln!("error: {e}");
    }
    ExitCode::from(if e.status() == lemon_pull::Status::InvalidArgument {
        2
    } else {
        1
    })
}

/// Prints each snapshot folder of the repository.
pub fn run_status(a: &Args) -> ExitCode {
    let st = match repo_and_root(a).and_then(|(repo, root)| status(&root, &repo, a.registry)) {
        Ok(st) => st,
        Err(e) => return fail(a, &e),
    };
    if a.json {
        println_json(&json!({
            "status": "ok",
            "repo": st.repo,
            "dir": st.dir.display().to_string(),
            "snapshots": st.snapshots.iter().map(|s| json!({
                "name": s.name, "committed": s.committed, "refs": s.refs, "files": s.files,
                "partials": s.partials, "bytes_complete": s.bytes_complete,
                "bytes_partial": s.bytes_partial, "bytes_missing": s.bytes_missing,
                "bytes_salvageable": s.bytes_salvageable,
            })).collect::<Vec<_>>(),
            "stale_partials": st.stale_partials.iter().map(|(p, n)| json!({
                "path": p.display().to_string(), "bytes": n,
            })).collect::<Vec<_>>(),
        }));
        return ExitCode::SUCCESS;
    }
    println!("{} in {}", st.repo, st.dir.display());
    if st.snapshots.is_empty() {
        println!("  no snapshots");
    }
    for s in &st.snapshots {
        let state = if s.committed {
            "committed"
        } else {
            "in progress"
        };
        let refs = if s.refs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", s.refs.join(", "))
        };
        let missing = s
            .bytes_missing
            .map(|m| format!(", {} missing", bytes(m)))
            .unwrap_or_default();
        let salvage = if s.bytes_salvageable > 0 {
            format!(", {} salvageable", bytes(s.bytes_salvageable))
        } else {
            String::new()
        };
        println!(
            "  {}{refs}: {state}, {} files + {} partial ({} present{missing}{salvage})",
            s.name,
            s.files,
            s.partials,
            bytes(s.bytes_complete + s.bytes_partial)
        );
    }
    for (p, n) in &st.stale_partials {
        println!(
            "  abandoned partial of another tool: {} ({})",
            p.display(),
            bytes(*n)
        );
    }
    ExitCode::SUCCESS
}

/// Lists, or with `--apply` removes, superseded snapshots and abandoned partials.
pub fn run_gc(a: &Args) -> ExitCode {
    let report = match repo_and_root(a)
        .and_then(|(repo, root)| gc(&root, &repo, a.registry, a.apply, &Cancel::default()))
    {
        Ok(r) => r,
        Err(e) => return fail(a, &e),
    };
    if a.json {
        println_json(&json!({
            "status": "ok",
            "applied": report.applied,
            "bytes": report.bytes(),
            "snapshots": report.snapshots.iter().map(|(n, b)| json!({"name": n, "bytes": b})).collect::<Vec<_>>(),
            "partials": report.partials.iter().map(|(p, b)| json!({"path": p.display().to_string(), "bytes": b})).collect::<Vec<_>>(),
            "note": report.note,
        }));
        return ExitCode::SUCCESS;
    }
    let verb = if report.applied {
        "removed"
    } else {
        "would remove"
    };
    for (n, b) in &report.snapshots {
        println!("{verb} snapshot {n} ({})", bytes(*b));
    }
    for (p, b) in &report.partials {
        println!("{verb} abandoned partial {} ({})", p.display(), bytes(*b));
    }
    if let Some(note) = &report.note {
        println!("note: {note}");
    }
    println!(
        "{verb} {} in total{}",
        bytes(report.bytes()),
        if report.applied {
            ""
        } else {
            " (dry run; add --apply)"
        }
    );
    ExitCode::SUCCESS
}
