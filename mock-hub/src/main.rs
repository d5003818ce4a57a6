//! A standalone mock Hugging Face Hub serving one directory as one repo, for manual runs and
//! benchmarks against curl or other clients. It speaks ModelScope's download API too, at the
//! same address (`MODELSCOPE_ENDPOINT=http://127.0.0.1:PORT`), with `master` = `main`.
//!
//! ```text
//! cargo run --release -p mock-hub -- [--port N] [--repo org/name]
//!     [--lfs-threshold BYTES] [--generate BYTES] [--cdn-base URL] DIR
//! ```
//!
//! Prints `mock-hub listening on http://127.0.0.1:PORT (repo org/name, commit <sha>)` and serves
//! until killed. Steer it with the admin routes, e.g.
//! `curl -X POST 'http://127.0.0.1:PORT/admin/fault?target=anyfile&kind=drop&bytes=1000000'`,
//! `curl -X POST 'http://127.0.0.1:PORT/admin/commit'` (re-scan DIR as a new commit of `main`,
//! which `master` follows),
//! `curl 'http://127.0.0.1:PORT/admin/stats'`.
//!
//! `--cdn-base URL` (or `POST /admin/cdn?base=URL`, empty for this mock again) points the signed
//! redirects at another server that serves each LFS file as `URL/cdn/<sha256>`: the benchmark
//! puts nginx there, a real web server being the fairer baseline.
#![forbid(unsafe_code)]

use mock_hub::{MockFile, MockHub, PseudoRandom};
use std::convert::Infallible;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: mock-hub [--port N] [--repo org/name] [--lfs-threshold BYTES] [--generate BYTES] [--cdn-base URL] DIR";
const DEFAULT_LFS_THRESHOLD: u64 = 1 << 20;
/// Weights are stored through LFS whatever their size, as `.gitattributes` does on the Hub.
const LFS_EXTENSIONS: [&str; 3] = ["gguf", "safetensors", "bin"];

struct Args {
    port: u16,
    repo: Option<String>,
    lfs_threshold: u64,
    generate: Option<u64>,
    cdn_base: Option<String>,
    dir: PathBuf,
}

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "-h" || arg == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("mock-hub: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("mock-hub: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> io::Result<Infallible> {
    if let Some(bytes) = args.generate {
        generate_if_empty(&args.dir, bytes)?;
    }
    let dir = fs::canonicalize(&args.dir)?;
    let repo = args.repo.unwrap_or_else(|| default_repo(&dir));
    let hub = MockHub::start_on(args.port)?;
    hub.set_cdn_base(args.cdn_base.as_deref());
    let sha = hub.try_commit(&repo, "main", scan(&dir, args.lfs_threshold)?)?;
    // ModelScope clients ask for `master` by default; both APIs serve the same commit.
    hub.set_ref(&repo, "master", &sha);
    let threshold = args.lfs_threshold;
    hub.on_admin_commit(move |_, _| scan(&dir, threshold).map_err(|e| e.to_string()));
    let mut stdout = io::stdout().lock();
    writeln!(
        stdout,
        "mock-hub listening on {} (repo {repo}, commit {sha})",
        hub.endpoint()
    )?;
    stdout.flush()?;
    drop(stdout);
    loop {
        std::thread::park();
    }
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        repo: None,
        lfs_threshold: DEFAULT_LFS_THRESHOLD,
        generate: None,
        cdn_base: None,
        dir: PathBuf::new(),
    };
    let mut dir = None;
    while let Some(arg) = raw.next() {
        let mut value = |name: &str| raw.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => args.port = number(&value("--port")?)?,
            "--repo" => args.repo = Some(value("--repo")?),
            "--lfs-threshold" => args.lfs_threshold = number(&value("--lfs-threshold")?)?,
            "--generate" => args.generate = Some(number(&value("--generate")?)?),
            "--cdn-base" => args.cdn_base = Some(value("--cdn-base")?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if dir.is_some() => return Err("only one DIR".to_owned()),
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    args.dir = dir.ok_or("missing DIR")?;
    Ok(args)
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn default_repo(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy());
    format!("local/{name}")
}

/// Every regular file under `dir`, as one commit. Big files and weights become LFS files read
/// lazily from disk; the rest is loaded into memory.
fn scan(dir: &Path, lfs_threshold: u64) -> io::Result<Vec<MockFile>> {
    let mut files = Vec::new();
    walk(dir, "", lfs_threshold, &mut files)?;
    Ok(files)
}

fn walk(dir: &Path, prefix: &str, lfs_threshold: u64, out: &mut Vec<MockFile>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            eprintln!("mock-hub: skipping non-UTF-8 name {:?}", entry.path());
            continue;
        };
        let repo_path = format!("{prefix}{name}");
        let disk = entry.path();
        let meta = fs::metadata(&disk)?;
        if meta.is_dir() {
            walk(&disk, &format!("{repo_path}/"), lfs_threshold, out)?;
        } else if meta.is_file() {
            out.push(if is_lfs(&name, meta.len(), lfs_threshold) {
                MockFile::lfs_from_path(&repo_path, disk)
            } else {
                MockFile::regular(&repo_path, fs::read(&disk)?)
            });
        }
    }
    Ok(())
}

fn is_lfs(name: &str, size: u64, lfs_threshold: u64) -> bool {
    let ext = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    size >= lfs_threshold || LFS_EXTENSIONS.contains(&ext)
}

/// A small fake GGUF model, only if `dir` is missing or empty (never clobbers real files).
fn generate_if_empty(dir: &Path, bytes: u64) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    if fs::read_dir(dir)?.next().is_some() {
        return Ok(());
    }
    fs::write(
        dir.join("config.json"),
        "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\"\n}\n",
    )?;
    let vocab: Vec<String> = (0..512).map(|i| format!("\"tok{i}\": {i}")).collect();
    let tokenizer = format!(
        "{{\"version\": \"1.0\", \"model\": {{\"vocab\": {{{}}}}}}}\n",
        vocab.join(", ")
    );
    fs::write(dir.join("tokenizer.json"), tokenizer)?;
    write_gguf(&dir.join("model-Q4_K_M.gguf"), 4, bytes)?;
    write_gguf(&dir.join("model-Q8_0.gguf"), 8, bytes)
}

/// `GGUF` magic and version 3, then deterministic noise, streamed so that any size fits in memory.
fn write_gguf(path: &Path, seed: u64, size: u64) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let header = [b"GGUF".as_slice(), &3u32.to_le_bytes()].concat();
    let header_len = header
        .len()
        .min(usize::try_from(size).unwrap_or(usize::MAX));
    out.write_all(&header[..header_len])?;
    let mut left = size - header_len as u64;
    let mut noise = PseudoRandom::new(seed);
    let mut buf = vec![0; 1 << 20];
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        noise.fill(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()
}
