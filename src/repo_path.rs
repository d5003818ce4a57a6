//! Validation and encoding of the names that cross a trust boundary.
//!
//! Repo ids and revisions come from users; file paths come from the server's listing. A file path is
//! joined onto a snapshot folder on disk, so a hostile or broken listing (`../x`, `/etc/x`, `C:\x`,
//! `CON`) must be refused before any path is built from it. The rules are the union of what Linux,
//! macOS and Windows can store safely, so a snapshot pulled on one OS stays valid when the cache is
//! shared or copied to another. This module also builds local paths segment by segment and
//! percent-encodes names for URLs.

use std::path::{Component, Path, PathBuf};

use crate::error::Error;

/// Longest repo id part the Hub accepts.
const MAX_REPO_PART: usize = 96;
/// Longest single path segment most file systems store (bytes on Linux, UTF-16 units on Windows;
/// bytes is never the looser of the two).
const MAX_SEGMENT: usize = 255;
/// Longest whole repo path we accept.
const MAX_PATH: usize = 1024;
/// Longest revision we accept.
const MAX_REVISION: usize = 256;
/// Suffix of in-progress downloads, written beside the final file.
const PARTIAL_SUFFIX: &str = ".partial";
/// Marker file of an incomplete snapshot.
const MANIFEST_NAME: &str = ".download_manifest.json";
/// How much of a rejected path an error message shows.
const MAX_DISPLAY: usize = 200;

/// Validates a user-supplied repo id: `org/name` or a bare legacy `name`.
///
/// Each part uses ASCII letters, digits, `-`, `_` and `.`; contains no `--` (the cache folder
/// separator, which would make `models--a--b` ambiguous) and no `..`; does not start or end with
/// `-` or `.`; and is at most 96 characters long.
///
/// # Errors
/// [`Error::InvalidArgument`] saying what is wrong.
pub fn validate_repo_id(repo: &str) -> Result<(), Error> {
    let bad = |why: String| Err(Error::InvalidArgument(format!("repo id {repo:?}: {why}")));
    if repo.is_empty() {
        return bad("is empty".into());
    }
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 2 {
        return bad("has more than one `/` (expected `org/name`)".into());
    }
    for part in parts {
        if part.is_empty() {
            return bad("has an empty part (expected `org/name`)".into());
        }
        if part.len() > MAX_REPO_PART {
            return bad(format!(
                "part {part:?} is longer than {MAX_REPO_PART} characters"
            ));
        }
        if let Some(c) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return bad(format!(
                "character {c:?} is not allowed (only ASCII letters, digits, `-`, `_`, `.`)"
            ));
        }
        if part.contains("--") {
            return bad(format!("part {part:?} contains `--`"));
        }
        if part.contains("..") {
            return bad(format!("part {part:?} contains `..`"));
        }
        if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
            return bad(format!("part {part:?} starts or ends with `-` or `.`"));
        }
    }
    Ok(())
}

/// Validates a repo-relative file path from the server before it is ever joined to a local folder.
///
/// Rejects: empty paths; paths longer than 1024 bytes; NUL and other control characters;
/// backslashes; absolute paths; empty segments (`a//b`, trailing `/`); `.` and `..` segments;
/// any `:` (drive letters, NTFS alternate streams); `<>"|?*`; segments longer than 255 bytes;
/// segments ending in a dot or a space; Windows device names (`CON`, `PRN`, `AUX`, `NUL`,
/// `COM0`-`COM9`, `LPT0`-`LPT9`, `CONIN$`, `CONOUT$`, with or without an extension); and names we
/// reserve: any segment ending in `.partial` or equal to `.download_manifest.json`
/// (case-insensitively, because the cache may live on a case-insensitive file system). The file
/// name itself is limited to 247 bytes so that its `.partial` still fits in 255.
///
/// # Errors
/// [`Error::UnsafePath`] with the path escaped for display and the rule it broke.
pub fn validate_file_path(repo: &str, path: &str) -> Result<(), Error> {
    match file_path_problem(path) {
        None => Ok(()),
        Some(reason) => Err(Error::UnsafePath {
            repo: repo.to_string(),
            path: display_path(path),
            reason,
        }),
    }
}

fn file_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("empty path");
    }
    if path.len() > MAX_PATH {
        return Some("path longer than 1024 bytes");
    }
    if path.chars().any(char::is_control) {
        return Some("path contains a NUL or other control character");
    }
    if path.contains('\\') {
        return Some("path contains a backslash");
    }
    if path.starts_with('/') {
        return Some("absolute path");
    }
    let mut segments = path.split('/').peekable();
    while let Some(seg) = segments.next() {
        if let Some(reason) = segment_problem(seg) {
            return Some(reason);
        }
        // The partial is `<name>.partial` in the same folder, so the name needs room for it.
        if segments.peek().is_none() && seg.len() + PARTIAL_SUFFIX.len() > MAX_SEGMENT {
            return Some("file name too long to keep a `.partial` beside it (over 247 bytes)");
        }
    }
    None
}

fn segment_problem(seg: &str) -> Option<&'static str> {
    if seg.is_empty() {
        return Some("empty path segment (`//` or trailing `/`)");
    }
    if seg == "." || seg == ".." {
        return Some("`.` or `..` path segment");
    }
    if let Some(reason) = windows_char_problem(seg) {
        return Some(reason);
    }
    if seg.len() > MAX_SEGMENT {
        return Some("path segment longer than 255 bytes");
    }
    if let Some(reason) = windows_form_problem(seg) {
        return Some(reason);
    }
    let lower = seg.to_ascii_lowercase();
    if lower.ends_with(PARTIAL_SUFFIX) {
        // `x.partial` from the server would be taken for (or clobber) our partial of `x`.
        return Some("names ending in `.partial` are reserved for partial downloads");
    }
    if lower == MANIFEST_NAME {
        // Lemonade treats a folder holding this file as an unfinished download.
        return Some("`.download_manifest.json` is reserved for the download manifest");
    }
    None
}

/// Why Windows cannot store `seg` as one file name, if it cannot.
fn windows_name_problem(seg: &str) -> Option<&'static str> {
    windows_char_problem(seg).or_else(|| windows_form_problem(seg))
}

/// Characters Windows refuses in a name.
fn windows_char_problem(seg: &str) -> Option<&'static str> {
    if seg.contains(':') {
        return Some("path segment contains `:` (drive letter or alternate data stream)");
    }
    if seg.contains(['<', '>', '"', '|', '?', '*']) {
        return Some("path segment contains a character Windows cannot store (`<>\"|?*`)");
    }
    None
}

/// Names Windows changes or takes for a device.
fn windows_form_problem(seg: &str) -> Option<&'static str> {
    if seg.ends_with(['.', ' ']) {
        // Windows silently strips these, so `a.` and `a` would land on the same file.
        return Some("path segment ends in a dot or a space");
    }
    if is_windows_device_name(seg) {
        return Some("path segment is a reserved Windows device name");
    }
    None
}

/// Windows maps these names to devices in every folder, whatever the extension (`aux.txt` too),
/// and ignores spaces before the extension (`NUL .txt`).
fn is_windows_device_name(seg: &str) -> bool {
    let stem = seg.split('.').next().unwrap_or(seg).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    let mut chars = upper.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: Vec<char> = chars.collect();
    (prefix == "COM" || prefix == "LPT")
        && rest.len() == 1
        && matches!(rest[0], '0'..='9' | '¹' | '²' | '³')
}

/// Escapes a path like `{:?}` and shortens it, so a hostile listing cannot flood a log line or
/// smuggle control characters into a terminal.
fn display_path(path: &str) -> String {
    if path.len() <= MAX_DISPLAY {
        return format!("{path:?}");
    }
    let mut cut = MAX_DISPLAY;
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{:?}… ({} bytes)",
        path.get(..cut).unwrap_or(""),
        path.len()
    )
}

/// Validates a revision given by a user: a branch, tag, 40-hex commit sha or `refs/pr/N`.
///
/// It must be non-empty, at most 256 bytes, free of control characters, of `..`, and of `\` and
/// `:` (which Git ref names never hold, and which on Windows could turn `refs/<rev>` into another
/// path), and free of empty and `.` parts (`/main`, `a//b`, `a/`, `./a`: Git refuses them, and
/// their `refs/<rev>` would be another revision's file or the `refs` folder itself). On Windows each `/`-separated part must also be a name Windows can store (no device
/// name, none of `<>"|?*`, no trailing dot or space). The revision is sent percent-encoded as one
/// URL segment and is stored under `refs/`, so these rules are about keeping it out of other
/// folders, not about Git's full ref grammar.
///
/// # Errors
/// [`Error::InvalidArgument`] saying what is wrong.
pub fn validate_revision(rev: &str) -> Result<(), Error> {
    match revision_problem(rev, crate::platform::windows_names()) {
        None => Ok(()),
        Some(why) => Err(Error::InvalidArgument(format!(
            "revision {} {why}",
            display_path(rev)
        ))),
    }
}

/// Why `rev` cannot be used; `windows` adds the rules for the `refs/<rev>` file on Windows.
pub(crate) fn revision_problem(rev: &str, windows: bool) -> Option<String> {
    let why = if rev.is_empty() {
        "is empty"
    } else if rev.len() > MAX_REVISION {
        "is longer than 256 bytes"
    } else if rev.chars().any(char::is_control) {
        "contains a control character"
    } else if rev.contains("..") {
        "contains `..`"
    } else if rev.contains(['\\', ':']) {
        // Git refuses both in ref names; on Windows `C:\x` or `\\host\x` pushed onto the refs
        // folder would replace it and write the ref elsewhere.
        "contains `\\` or `:`, which Git ref names cannot hold"
    } else if rev.split('/').any(|part| part.is_empty() || part == ".") {
        // `refs/<rev>` is built part by part: such parts vanish, so `a//b` would share the ref
        // file of `a/b`, and `/` would be the `refs` folder itself.
        "has an empty or `.` part between `/`, which Git ref names cannot hold"
    } else {
        let segment = rev
            .split('/')
            .filter(|_| windows)
            .find_map(windows_name_problem)?;
        return Some(format!(
            "cannot be stored as a file under `refs/` on Windows: {segment}"
        ));
    };
    Some(why.to_string())
}

/// Refuses a set of repo paths that a file system ignoring letter case cannot hold apart: two
/// files whose names differ only in case (`Model.bin`, `model.bin`), or a file whose name equals
/// a folder of another (`A` and `a/x`). Both would land on one file, and the second download would
/// silently replace the first under both names. A no-op where names keep their case.
///
/// # Errors
/// [`Error::UnsafePath`] naming both paths.
// Wired into the pull by `pull/` (owned elsewhere); see the README's Windows section.
pub(crate) fn check_case_collisions<'a>(
    repo: &str,
    paths: impl IntoIterator<Item = &'a str>,
) -> Result<(), Error> {
    if !crate::platform::names_fold_case() {
        return Ok(());
    }
    match case_collision(paths) {
        None => Ok(()),
        Some((first, second)) => Err(Error::UnsafePath {
            repo: repo.to_string(),
            path: format!(
                "{} (same name as {} ignoring letter case)",
                display_path(second),
                display_path(first)
            ),
            reason: "file names on this system ignore letter case, so both would land on one file",
        }),
    }
}

/// The first pair of distinct paths that are one path when letter case is ignored.
pub(crate) fn case_collision<'a>(
    paths: impl IntoIterator<Item = &'a str>,
) -> Option<(&'a str, &'a str)> {
    use std::collections::HashMap;
    let mut files: HashMap<String, &str> = HashMap::new();
    let mut folders: HashMap<String, &str> = HashMap::new();
    for path in paths {
        let folded = fold_case(path);
        if let Some(&other) = files.get(&folded).or_else(|| folders.get(&folded)) {
            if other != path {
                return Some((other, path));
            }
            continue;
        }
        for (i, _) in path.match_indices('/') {
            // Folded per prefix: upper case can change a character's length in bytes.
            let folder = fold_case(&path[..i]);
            if let Some(&other) = files.get(&folder) {
                return Some((other, path));
            }
            folders.entry(folder).or_insert(path);
        }
        files.insert(folded, path);
    }
    None
}

/// Upper-cases each character that has a one-character upper case, as NTFS's upcase table does
/// (`ß` stays `ß`; APFS folds a little more, which only makes this check miss rare pairs).
fn fold_case(path: &str) -> String {
    path.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Whether `rev` is a full commit sha: exactly 40 lower-case hex digits.
///
/// The Hub always answers with lower-case shas, so an upper-case one is treated as a ref name.
#[must_use]
pub fn is_commit_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `name` has the shape of a ModelScope snapshot folder: `modelscope-<revision>-<16 hex>`,
/// the revision part made of letters, digits, `-`, `_` and `.` only (lemonade's
/// `safe_revision_component`, at most 48 bytes), so it is a plain folder name everywhere.
pub fn is_tree_snapshot_id(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("modelscope-") else {
        return false;
    };
    let Some((revision, hash)) = rest.rsplit_once('-') else {
        return false;
    };
    !revision.is_empty()
        && revision.len() <= 48
        && revision != "."
        && revision != ".."
        && revision
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && hash.len() == 16
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Joins a repo path (validated by [`validate_file_path`]) onto `base`, one segment at a time.
///
/// Pushing segments one by one lets the platform pick its own separator. As defence in depth, any
/// segment that is not a plain name on this platform (empty, `.`, `..`, a root or a drive prefix)
/// is skipped, so even an unvalidated path cannot climb out of `base`.
#[must_use]
pub fn join_repo_path(base: &Path, path: &str) -> PathBuf {
    let mut out = base.to_path_buf();
    for seg in path.split('/') {
        let mut parts = Path::new(seg).components();
        if let (Some(Component::Normal(name)), None) = (parts.next(), parts.next()) {
            out.push(name);
        }
    }
    out
}

/// Percent-encodes a repo path for a URL, keeping `/` between segments.
///
/// RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) stay; every other byte of the UTF-8
/// encoding becomes `%XX`.
#[must_use]
pub fn encode_path(path: &str) -> String {
    encode(path, true)
}

/// Percent-encodes one URL segment with no safe characters besides the unreserved ones, so
/// `refs/pr/1` becomes `refs%2Fpr%2F1`.
#[must_use]
pub fn encode_segment(s: &str) -> String {
    encode(s, false)
}

fn encode(s: &str, keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(path: &str) -> &'static str {
        match validate_file_path("org/repo", path) {
            Err(Error::UnsafePath { reason, .. }) => reason,
            Err(e) => panic!("unexpected error for {path:?}: {e}"),
            Ok(()) => panic!("{path:?} was accepted"),
        }
    }

    fn accepted(path: &str) -> bool {
        validate_file_path("org/repo", path).is_ok()
    }

    #[test]
    fn repo_ids_accepted() {
        for repo in [
            "org/name",
            "unsloth/Qwen3-8B-GGUF",
            "ggml-org/gpt-oss-120b-GGUF",
            "a/b",
            "gpt2",
            "Org_1/model.v2",
            "black-forest-labs/FLUX.1-dev",
        ] {
            assert!(validate_repo_id(repo).is_ok(), "{repo}");
        }
        let long = "a".repeat(96);
        assert!(validate_repo_id(&format!("{long}/{long}")).is_ok());
    }

    #[test]
    fn repo_ids_rejected() {
        let long = "a".repeat(97);
        for repo in [
            "",
            "/",
            "org/",
            "/name",
            "a/b/c",
            "org/na--me",
            "org--x/name",
            "org/-name",
            "org/name-",
            "org/.name",
            "org/name.",
            "org/na..me",
            "..",
            "org/na me",
            "org/naïve",
            "org\\name",
            "org/name:Q4",
            "org/name\0",
            long.as_str(),
        ] {
            match validate_repo_id(repo) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains("repo id"), "{m}"),
                other => panic!("{repo:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn tree_snapshot_ids() {
        assert!(is_tree_snapshot_id("modelscope-master-0123456789abcdef"));
        assert!(is_tree_snapshot_id("modelscope-v1.0_rc-1-0123456789abcdef"));
        for bad in [
            "modelscope-master-0123456789ABCDEF",
            "modelscope--0123456789abcdef",
            "modelscope-master-0123456789abcde",
            "modelscope-..-0123456789abcdef",
            "modelscope-a/b-0123456789abcdef",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(!is_tree_snapshot_id(bad), "{bad}");
        }
    }

    #[test]
    fn realistic_file_paths_accepted() {
        for path in [
            "split_files/vae/ae.safetensors",
            "Q4_K_M/model-00001-of-00002.gguf",
            ".gitattributes",
            "README.md",
            "モデル.json",
            "config.json",
            "a b/c d.txt",
            "weights/model.safetensors.index.json",
            "console.txt",
            "com10.txt",
            "LPT",
            "auxiliary/x.bin",
            "x.partial.json",
            ".download_manifest.json.bak",
            "model-Q4_K_M.gguf",
        ] {
            assert!(accepted(path), "{path:?} rejected: {}", reason(path));
        }
        assert!(accepted(&"a".repeat(247)));
        // Exactly at the 1024-byte limit.
        let deep = format!("{}/dd", vec!["d"; 511].join("/"));
        assert_eq!(deep.len(), 1024);
        assert!(accepted(&deep));
    }

    #[test]
    fn hostile_paths_rejected() {
        assert_eq!(reason(""), "empty path");
        assert_eq!(reason("../evil"), "`.` or `..` path segment");
        assert_eq!(reason("a/../../evil"), "`.` or `..` path segment");
        assert_eq!(reason(".."), "`.` or `..` path segment");
        assert_eq!(reason("a/./b"), "`.` or `..` path segment");
        assert_eq!(reason("./a"), "`.` or `..` path segment");
        assert_eq!(reason("/abs"), "absolute path");
        assert_eq!(reason("a\\b"), "path contains a backslash");
        assert_eq!(reason("..\\evil"), "path contains a backslash");
        assert!(reason("C:/x").contains("`:`"));
        assert!(reason("C:").contains("`:`"));
        assert!(reason("a/file.txt:stream").contains("`:`"));
        assert_eq!(reason("a//b"), "empty path segment (`//` or trailing `/`)");
        assert_eq!(reason("a/"), "empty path segment (`//` or trailing `/`)");
        assert!(reason("a\0b").contains("control"));
        assert!(reason("a\nb").contains("control"));
        assert!(reason("a\u{7f}").contains("control"));
        assert!(reason("a\u{85}").contains("control"));
        for c in ['<', '>', '"', '|', '?', '*'] {
            assert!(
                reason(&format!("a{c}b")).contains("Windows cannot store"),
                "{c}"
            );
        }
        assert_eq!(reason("a./b"), "path segment ends in a dot or a space");
        assert_eq!(reason("a/b "), "path segment ends in a dot or a space");
        assert_eq!(reason("..."), "path segment ends in a dot or a space");
    }

    #[test]
    fn windows_device_names_rejected() {
        for path in [
            "CON",
            "con",
            "aux.txt",
            "dir/NUL",
            "nul.tar.gz",
            "PRN.md",
            "COM1",
            "com9.log",
            "LPT1",
            "lpt5.txt",
            "COM0",
            "COM¹",
            "CONIN$",
            "conout$.x",
            "NUL .txt",
            "CON/x.json",
        ] {
            assert_eq!(
                reason(path),
                "path segment is a reserved Windows device name",
                "{path}"
            );
        }
    }

    #[test]
    fn long_paths_rejected() {
        assert_eq!(
            reason(&"a".repeat(256)),
            "path segment longer than 255 bytes"
        );
        assert_eq!(
            reason(&format!("{}/x", "a".repeat(256))),
            "path segment longer than 255 bytes"
        );
        assert!(reason(&"a".repeat(248)).contains("`.partial`"));
        // A long directory name is fine as long as it fits in a segment.
        assert!(accepted(&format!("{}/x", "a".repeat(255))));
        let deep = format!("{}/ddd", vec!["d"; 511].join("/"));
        assert_eq!(deep.len(), 1025);
        assert_eq!(reason(&deep), "path longer than 1024 bytes");
        // Multi-byte names are measured in bytes.
        assert_eq!(
            reason(&"モ".repeat(86)),
            "path segment longer than 255 bytes"
        );
    }

    #[test]
    fn reserved_names_rejected() {
        assert!(reason("x.partial").contains("reserved for partial"));
        assert!(reason("dir/model.gguf.partial").contains("reserved for partial"));
        assert!(reason("X.PARTIAL").contains("reserved for partial"));
        assert!(reason("x.partial/y").contains("reserved for partial"));
        assert!(reason(".download_manifest.json").contains("manifest"));
        assert!(reason("sub/.Download_Manifest.json").contains("manifest"));
    }

    #[test]
    fn unsafe_path_error_is_escaped_and_bounded() {
        let err = validate_file_path("org/repo", "a\0b\n../x").unwrap_err();
        match &err {
            Error::UnsafePath { repo, path, .. } => {
                assert_eq!(repo, "org/repo");
                assert_eq!(path, "\"a\\0b\\n../x\"");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.status(), crate::error::Status::InvalidResponse);
        let huge = "é".repeat(100_000);
        match validate_file_path("org/repo", &huge) {
            Err(Error::UnsafePath { path, .. }) => {
                assert!(path.len() < 300, "{}", path.len());
                assert!(path.contains("200000 bytes"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn revisions() {
        for rev in [
            "main",
            "v1.0",
            "refs/pr/1",
            "refs/convert/parquet",
            "0123456789abcdef0123456789abcdef01234567",
            "feature/x-y",
        ] {
            assert!(validate_revision(rev).is_ok(), "{rev}");
        }
        for rev in ["", "a..b", "../main", "ma\0in", "main\n", &"a".repeat(257)] {
            assert!(
                matches!(validate_revision(rev), Err(Error::InvalidArgument(_))),
                "{rev:?}"
            );
        }
        assert!(validate_revision(&"a".repeat(256)).is_ok());
    }

    /// Found by the `repo_path` fuzz target: `/` was accepted and named the `refs` folder itself as
    /// its ref file; `a//b` shared the ref file of `a/b`.
    #[test]
    fn revisions_with_empty_or_dot_parts() {
        for rev in ["/", "/main", "main/", "a//b", ".", "./main", "refs/./pr/1"] {
            let err = validate_revision(rev).expect_err(rev);
            assert!(
                matches!(&err, Error::InvalidArgument(m) if m.contains("empty or `.` part")),
                "{rev:?}: {err:?}"
            );
        }
        for rev in [".hidden", "v1.0/.x", "a/b"] {
            assert!(validate_revision(rev).is_ok(), "{rev:?}");
        }
    }

    #[test]
    fn revisions_that_would_leave_the_refs_folder() {
        for rev in [r"C:\x", r"\\host\share\x", "C:x", r"a\b", "a:b"] {
            assert!(
                matches!(validate_revision(rev), Err(Error::InvalidArgument(_))),
                "{rev:?}"
            );
        }
    }

    #[test]
    fn revisions_windows_cannot_store_under_refs() {
        for rev in [
            "aux",
            "release/con.v1",
            "v1.",
            "feat/x ",
            "a|b",
            "what?",
            "a*",
        ] {
            let why = revision_problem(rev, true).unwrap_or_default();
            assert!(why.contains("on Windows"), "{rev:?}: {why}");
            assert_eq!(revision_problem(rev, false), None, "{rev:?} elsewhere");
        }
        for rev in [
            "main",
            "refs/pr/1",
            "v1.0",
            "feature/x-y",
            "auxiliary",
            "com10",
        ] {
            assert_eq!(revision_problem(rev, true), None, "{rev:?}");
        }
    }

    #[test]
    fn case_collisions() {
        let hit = |paths: &[&'static str]| case_collision(paths.iter().copied());
        assert_eq!(hit(&["a.bin", "b.bin", "A/x.bin"]), None);
        assert_eq!(hit(&["A/x.bin", "a/y.bin"]), None, "one folder is fine");
        assert_eq!(
            hit(&["a.bin", "a.bin"]),
            None,
            "a repeated path is one file"
        );
        assert_eq!(
            hit(&["Model.bin", "x", "model.BIN"]),
            Some(("Model.bin", "model.BIN"))
        );
        assert_eq!(hit(&["A", "a/x"]), Some(("A", "a/x")), "file then folder");
        assert_eq!(hit(&["a/x", "A"]), Some(("a/x", "A")), "folder then file");
        assert_eq!(hit(&["Ä.txt", "ä.txt"]), Some(("Ä.txt", "ä.txt")));
        assert_eq!(
            hit(&["ı/a", "I"]),
            Some(("ı/a", "I")),
            "byte lengths differ"
        );
        assert_eq!(
            hit(&["straße", "STRASSE"]),
            None,
            "no multi-character folding"
        );
        let err = check_case_collisions("o/n", ["Model.bin", "model.bin"]);
        if crate::platform::names_fold_case() {
            let msg = err.expect_err("refused").to_string();
            assert!(
                msg.contains("\"model.bin\"") && msg.contains("\"Model.bin\""),
                "{msg}"
            );
        } else {
            assert!(err.is_ok(), "names keep their case here");
        }
    }

    #[test]
    fn commit_shas() {
        assert!(is_commit_sha("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit_sha("0123456789ABCDEF0123456789abcdef01234567"));
        assert!(!is_commit_sha("0123456789abcdef0123456789abcdef0123456"));
        assert!(!is_commit_sha("0123456789abcdef0123456789abcdef012345678"));
        assert!(!is_commit_sha("g123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit_sha("main"));
        assert!(!is_commit_sha(""));
    }

    #[test]
    fn join_is_segment_wise() {
        let base = Path::new("base");
        let joined = join_repo_path(base, "split_files/vae/ae.safetensors");
        assert_eq!(
            joined,
            base.join("split_files").join("vae").join("ae.safetensors")
        );
        assert_eq!(joined.components().count(), 4);
        assert_eq!(
            join_repo_path(base, "モデル.json"),
            base.join("モデル.json")
        );
    }

    #[test]
    fn join_cannot_escape_base_even_unvalidated() {
        let base = Path::new("base");
        for hostile in ["../evil", "/abs", "a/../../b", "a//b", "./a", ""] {
            let joined = join_repo_path(base, hostile);
            assert!(joined.starts_with(base), "{hostile:?} -> {joined:?}");
            assert!(
                joined
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{hostile:?} -> {joined:?}"
            );
        }
        assert_eq!(join_repo_path(base, "a/../../b"), base.join("a").join("b"));
    }

    #[test]
    fn encoding() {
        assert_eq!(encode_path("a/b c.txt"), "a/b%20c.txt");
        assert_eq!(encode_path("Q4_K_M/m-1~2.gguf"), "Q4_K_M/m-1~2.gguf");
        assert_eq!(encode_path("モ"), "%E3%83%A2");
        assert_eq!(encode_path("a+b&c=d#e?f%g"), "a%2Bb%26c%3Dd%23e%3Ff%25g");
        assert_eq!(encode_segment("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode_segment("main"), "main");
        assert_eq!(encode_segment(""), "");
        assert_eq!(encode_segment("a b"), "a%20b");
    }
}
