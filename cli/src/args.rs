//! Command-line parsing for `resume-pull`. Hand-written: the grammar is small and a parser crate
//! would be the biggest dependency of the binary.

use std::path::PathBuf;

use lemon_pull::Registry;

pub const USAGE: &str = "\
resume-pull — resumable, verified Hugging Face model downloads

USAGE:
    resume-pull [OPTIONS] <REPO[:VARIANT]>
    resume-pull status <REPO> [--cache-dir DIR] [--json]
    resume-pull gc <REPO> [--apply] [--cache-dir DIR] [--json]

COMMANDS:
    status <REPO>         Show each snapshot folder: committed or in progress, files, bytes
                          present and missing, bytes a later pull could salvage
    gc <REPO>             List (or with --apply remove) superseded snapshot folders and other
                          tools' abandoned partials

ARGS:
    <REPO[:VARIANT]>      Repository id (org/name), optionally with a GGUF variant (org/name:Q4_K_M);
                          a https://huggingface.co/org/name or https://modelscope.cn/models/org/name
                          URL names the repository and its registry

OPTIONS:
    --registry <NAME>     huggingface or modelscope (folder modelscope--models--org--name,
                          snapshots named by lemonade's tree fingerprint) [default: huggingface]
    --revision <REV>      Branch, tag, commit sha or refs/pr/N [default: main; ModelScope: master]
    --cache-dir <DIR>     Cache root [default: HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub]
    --endpoint <URL>      Hub endpoint [default: HF_ENDPOINT or https://huggingface.co;
                          ModelScope: MODELSCOPE_ENDPOINT or https://modelscope.cn]
    --token <TOKEN>       Access token [default: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, token file;
                          ModelScope: MODELSCOPE_API_TOKEN, MODELSCOPE_ACCESS_TOKEN]
    --include <GLOB>      Only files matching GLOB (repeatable)
    --exclude <GLOB>      Skip files matching GLOB (repeatable)
    --with <REPO:PATH>    Also pull this exact file from another repository (repeatable)
    --commit <SHA>        Pull exactly this commit (what you listed), even if the revision moved;
                          refs/<REV> names it afterwards
    --file <PATH>         Pull exactly this file, no glob meaning (repeatable; instead of
                          --include/--exclude/VARIANT)
    --max-rate <RATE>     Bandwidth cap in bytes/s over all connections (e.g. 50M, 20MiB)
    --connections <N>     Ranged connections per file of 16 MiB or more: 1-64, or auto (start
                          with one, add while they raise the rate, up to 16) [default: 1]
    --dry-run             Print where every file's bytes would come from; write nothing
    --ca-bundle <FILE>    CA bundle (PEM, DER or folder) replacing the default roots
                          [default: SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, system store]
    --offline             Use the cache only, no network (also HF_HUB_OFFLINE=1)
    --dns-timeout <SECS>  Give up on a host name lookup after SECS seconds [default: 10]
    --keep-unchanged      When the revision moved but no selected file changed, keep the
                          snapshot refs/<REV> names (no new folder; lemonade's behaviour)
    --no-cache-fallback   Fail when the hub cannot be reached, instead of answering from a
                          complete cached snapshot
    --json                Newline-delimited JSON events on stdout; last line is the result
    --quiet               No progress output (errors are still printed)
    --apply               With gc: really delete (gc is a dry run without it)
    -h, --help            Print this help
    -V, --version         Print the version

EXIT CODES:
    0 success, 1 failure, 2 usage error, 130 interrupted (partials are kept; run again to resume)
";

/// Parsed command line.
#[derive(Debug, Default)]
pub struct Args {
    pub repo: String,
    pub registry: Registry,
    /// Whether `--registry` was given (a repository URL must then agree with it).
    pub registry_given: bool,
    pub revision: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub endpoint: Option<String>,
    pub token: Option<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub with: Vec<String>,
    pub commit: Option<String>,
    pub files: Vec<String>,
    pub no_cache_fallback: bool,
    pub keep_unchanged: bool,
    pub max_rate: Option<u64>,
    pub connections: Option<u32>,
    pub dry_run: bool,
    pub offline: bool,
    pub ca_bundle: Option<PathBuf>,
    pub dns_timeout: Option<std::time::Duration>,
    pub json: bool,
    pub quiet: bool,
    pub apply: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Pull(Box<Args>),
    Status(Box<Args>),
    Gc(Box<Args>),
    Help,
    Version,
}

/// Parses arguments (without the program name). `Err` holds a usage message.
pub fn parse(mut argv: impl Iterator<Item = std::ffi::OsString>) -> Result<Command, String> {
    let mut args = Args::default();
    let mut positional: Vec<String> = Vec::new();
    let mut only_positional = false;
    while let Some(raw) = argv.next() {
        let arg = raw
            .into_string()
            .map_err(|a| format!("argument {a:?} is not valid UTF-8"))?;
        if only_positional || !arg.starts_with('-') || arg == "-" {
            positional.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => argv
                    .next()
                    .ok_or_else(|| format!("{name} needs a value ({what})"))?
                    .into_string()
                    .map_err(|a| format!("value {a:?} of {name} is not valid UTF-8")),
            }
        };
        match name.as_str() {
            "--" => only_positional = true,
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--registry" => {
                args.registry = Registry::parse(&value("NAME")?).map_err(|e| e.to_string())?;
                args.registry_given = true;
            }
            "--revision" => args.revision = Some(value("REV")?),
            "--cache-dir" => args.cache_dir = Some(PathBuf::from(value("DIR")?)),
            "--endpoint" => args.endpoint = Some(value("URL")?),
            "--token" => args.token = Some(value("TOKEN")?),
            "--include" => args.include.push(value("GLOB")?),
            "--exclude" => args.exclude.push(value("GLOB")?),
            "--with" => args.with.push(value("REPO:PATH")?),
            "--commit" => args.commit = Some(value("SHA")?),
            "--file" => args.files.push(value("PATH")?),
            "--no-cache-fallback" => args.no_cache_fallback = true,
            "--keep-unchanged" => args.keep_unchanged = true,
            "--max-rate" => args.max_rate = Some(parse_rate(&value("RATE")?)?),
            "--connections" => args.connections = Some(parse_connections(&value("N")?)?),
            "--dry-run" => args.dry_run = true,
            "--offline" => args.offline = true,
            "--ca-bundle" => args.ca_bundle = Some(PathBuf::from(value("FILE")?)),
            "--dns-timeout" => args.dns_timeout = Some(parse_seconds(&value("SECS")?)?),
            "--json" => args.json = true,
            "--apply" => args.apply = true,
            "--quiet" | "-q" => args.quiet = true,
            _ => return Err(format!("unknown option {name}")),
        }
        if inline.is_some()
            && matches!(
                name.as_str(),
                "--dry-run"
                    | "--offline"
                    | "--json"
                    | "--quiet"
                    | "--apply"
                    | "--no-cache-fallback"
                    | "--keep-unchanged"
            )
        {
            return Err(format!("{name} takes no value"));
        }
    }
    command_of(args, &positional)
}

/// The command the positional arguments name, with its repository.
fn command_of(mut args: Args, positional: &[String]) -> Result<Command, String> {
    let (command, repo) = match positional {
        [cmd, repo] if cmd == "status" => ("status", repo.clone()),
        [cmd, repo] if cmd == "gc" => ("gc", repo.clone()),
        [repo] if repo != "status" && repo != "gc" => ("pull", repo.clone()),
        [] => return Err("missing <REPO[:VARIANT]>".into()),
        [cmd] => return Err(format!("{cmd} needs a <REPO>")),
        [_, extra, ..] => return Err(format!("unexpected extra argument {extra:?}")),
    };
    if args.apply && command != "gc" {
        return Err("--apply only goes with gc".into());
    }
    args.repo = match repo_of_url(&repo) {
        Some((registry, _)) if args.registry_given && registry != args.registry => {
            return Err(format!(
                "{repo} is a {registry} URL, but --registry says {}",
                args.registry
            ));
        }
        Some((registry, id)) => {
            args.registry = registry;
            id
        }
        None => repo,
    };
    let args = Box::new(args);
    Ok(match command {
        "status" => Command::Status(args),
        "gc" => Command::Gc(args),
        _ => Command::Pull(args),
    })
}

/// The registry and `org/name` of a repository URL, as lemonade recognises them
/// (`detect_registry_url`): the first two path segments after the prefix, query and fragment
/// dropped.
fn repo_of_url(value: &str) -> Option<(Registry, String)> {
    const PREFIXES: [(&str, Registry); 8] = [
        ("https://huggingface.co/", Registry::HuggingFace),
        ("http://huggingface.co/", Registry::HuggingFace),
        ("https://modelscope.cn/models/", Registry::ModelScope),
        ("https://www.modelscope.cn/models/", Registry::ModelScope),
        ("http://modelscope.cn/models/", Registry::ModelScope),
        ("http://www.modelscope.cn/models/", Registry::ModelScope),
        ("https://modelscope.ai/models/", Registry::ModelScope),
        ("https://www.modelscope.ai/models/", Registry::ModelScope),
    ];
    PREFIXES.iter().find_map(|(prefix, registry)| {
        let rest = value.strip_prefix(prefix)?;
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).take(2).collect();
        Some((*registry, segments.join("/")))
    })
}

/// `auto` ([`lemon_pull::AUTO_CONNECTIONS`]) or a whole number of connections in
/// `1..=MAX_CONNECTIONS`.
fn parse_connections(raw: &str) -> Result<u32, String> {
    let max = lemon_pull::MAX_CONNECTIONS;
    if raw.trim().eq_ignore_ascii_case("auto") {
        return Ok(lemon_pull::AUTO_CONNECTIONS);
    }
    match raw.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "--connections {raw:?}: expected auto or a number from 1 to {max}"
        )),
    }
}

/// A positive number of seconds (fractions allowed) of at most a day, for `--dns-timeout`.
fn parse_seconds(raw: &str) -> Result<std::time::Duration, String> {
    match raw.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(std::time::Duration::from_secs_f64(s)),
        _ => Err(format!(
            "--dns-timeout {raw:?}: expected seconds, more than 0 and at most 86400"
        )),
    }
}

/// `1500000`, `50M`, `50MB`, `20MiB`, `1G/s`: decimal `K`/`M`/`G`, binary `Ki`/`Mi`/`Gi`.
fn parse_rate(raw: &str) -> Result<u64, String> {
    let bad = || format!("--max-rate {raw:?}: expected bytes per second like 50M or 20MiB");
    let s = raw.trim().trim_end_matches("/s").trim_end_matches('B');
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" => 1.0,
        "K" | "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let rate = (n * mult).round();
    if !rate.is_finite() || rate < 1.0 || rate > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(rate as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Command, String> {
        parse(v.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn parses_flags_and_repeats() {
        let Ok(Command::Pull(a)) = p(&[
            "--include",
            "*.json",
            "--include=*.gguf",
            "o/n:Q4",
            "--json",
        ]) else {
            panic!("should parse");
        };
        assert_eq!(a.repo, "o/n:Q4");
        assert_eq!(a.include, ["*.json", "*.gguf"]);
        assert!(a.json);
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1500000"), Ok(1_500_000));
        assert_eq!(parse_rate("50M"), Ok(50_000_000));
        assert_eq!(parse_rate("50MB/s"), Ok(50_000_000));
        assert_eq!(parse_rate("20MiB"), Ok(20 << 20));
        assert_eq!(parse_rate("1.5G"), Ok(1_500_000_000));
        for bad in ["", "0", "-5M", "fast", "5X", "1e9"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connections() {
        let Ok(Command::Pull(a)) = p(&["--connections", "8", "o/n"]) else {
            panic!("should parse");
        };
        assert_eq!(a.connections, Some(8));
        let Ok(Command::Pull(a)) = p(&["--connections=1", "o/n"]) else {
            panic!("should parse");
        };
        assert_eq!(a.connections, Some(1));
        let Ok(Command::Pull(a)) = p(&["--connections", "auto", "o/n"]) else {
            panic!("should parse");
        };
        assert_eq!(a.connections, Some(lemon_pull::AUTO_CONNECTIONS));
        for bad in ["0", "65", "-1", "two", "", "automatic"] {
            assert!(p(&["--connections", bad, "o/n"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_timeout() {
        let Ok(Command::Pull(a)) = p(&["--dns-timeout", "2.5", "o/n"]) else {
            panic!("should parse");
        };
        assert_eq!(a.dns_timeout, Some(std::time::Duration::from_millis(2500)));
        let Ok(Command::Pull(a)) = p(&["o/n"]) else {
            panic!("should parse");
        };
        assert_eq!(a.dns_timeout, None);
        for bad in ["0", "-1", "soon", "", "NaN", "inf", "100000"] {
            assert!(p(&["--dns-timeout", bad, "o/n"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn registries_by_option_and_url() {
        let pulled = |v: &[&str]| match p(v) {
            Ok(Command::Pull(a)) | Ok(Command::Status(a)) => (a.registry, a.repo),
            other => panic!("{v:?}: {other:?}"),
        };
        assert_eq!(pulled(&["o/n"]), (Registry::HuggingFace, "o/n".into()));
        assert_eq!(
            pulled(&["--registry", "modelscope", "o/n"]),
            (Registry::ModelScope, "o/n".into())
        );
        assert_eq!(
            pulled(&["https://www.modelscope.cn/models/Qwen/Qwen3-8B-GGUF/files?x=1"]),
            (Registry::ModelScope, "Qwen/Qwen3-8B-GGUF".into())
        );
        assert_eq!(
            pulled(&[
                "status",
                "--registry=ms",
                "https://modelscope.ai/models/o/n"
            ]),
            (Registry::ModelScope, "o/n".into())
        );
        assert_eq!(
            pulled(&["https://huggingface.co/o/n#readme"]),
            (Registry::HuggingFace, "o/n".into())
        );
        assert!(p(&["--registry", "github", "o/n"]).is_err());
        assert!(p(&["--registry", "hf", "https://modelscope.cn/models/o/n"]).is_err());
    }

    #[test]
    fn usage_errors() {
        assert!(p(&[]).is_err());
        assert!(p(&["a/b", "c/d"]).is_err());
        assert!(p(&["--bogus", "a/b"]).is_err());
        assert!(p(&["a/b", "--revision"]).is_err());
        assert!(p(&["--json=1", "a/b"]).is_err());
        assert!(p(&["gc", "--apply=1", "a/b"]).is_err());
        assert!(matches!(p(&["--help", "x"]), Ok(Command::Help)));
    }
}
