//! GGUF variants: which files `org/repo:VARIANT` selects, with lemonade's rules (exact file
//! names, `*`, variant groups, the suffix and folder rules, shard series and the files every variant
//! brings along). The rules and where they differ from lemonade are described in the `select`
//! module docs.

use std::collections::BTreeMap;

use crate::error::Error;

/// Root files every variant brings along: llama.cpp ignores them, but lemonade's other backends and
/// the update check read them.
const VARIANT_EXTRAS: [&str; 4] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
];

/// Extensions that make a variant an exact file name rather than a quantization label.
const FILE_VARIANT_EXTENSIONS: [&str; 5] = [".safetensors", ".pth", ".ckpt", ".gguf", ".bin"];

/// Resolves a variant to positions in `listing` (sorted, unique paths).
pub(super) fn variant_files(
    repo: &str,
    listing: &[&str],
    variant: &str,
) -> Result<Vec<usize>, Error> {
    if variant.is_empty() {
        return Err(Error::InvalidArgument(
            "empty variant (omit it to select the whole repository)".to_string(),
        ));
    }
    let not_found = |message: String| Error::FileNotFound {
        repo: repo.to_string(),
        path: variant.to_string(),
        message,
    };
    let lower = variant.to_lowercase();

    let mut files = if FILE_VARIANT_EXTENSIONS.iter().any(|e| lower.ends_with(e)) {
        exact_file(listing, variant, &lower).map_err(not_found)?
    } else if variant == "*" {
        let all: Vec<usize> = (0..listing.len())
            .filter(|&i| is_gguf(listing[i]))
            .collect();
        if all.is_empty() {
            return Err(not_found("the repository has no .gguf files".to_string()));
        }
        all
    } else {
        gguf_variant(listing, variant, &lower).map_err(not_found)?
    };

    for extra in VARIANT_EXTRAS {
        if let Ok(i) = listing.binary_search(&extra) {
            files.push(i);
        }
    }
    files.sort_unstable();
    files.dedup();
    Ok(files)
}

/// The one file a file-name variant names, plus the rest of its shard series.
fn exact_file(listing: &[&str], variant: &str, lower: &str) -> Result<Vec<usize>, String> {
    let hit = if let Ok(i) = listing.binary_search(&variant) {
        i
    } else {
        let by_path: Vec<usize> = (0..listing.len())
            .filter(|&i| listing[i].to_lowercase() == lower)
            .collect();
        let candidates = if by_path.is_empty() {
            let name = lower.rsplit('/').next().unwrap_or(lower);
            (0..listing.len())
                .filter(|&i| file_name(listing[i]).to_lowercase() == name)
                .collect()
        } else {
            by_path
        };
        match candidates.as_slice() {
            // A group may carry a file-like name (a folder `m.bin/`, a root `x.bin.gguf`): it is
            // listed as a variant, so its name must select it.
            [] => {
                return by_group_name(listing, variant, lower, &gguf_groups(listing))?
                    .ok_or_else(|| "no file has this path or file name".to_string());
            }
            [one] => *one,
            many => {
                return Err(format!(
                    "several files match this name: {}",
                    join_paths(listing, many)
                ));
            }
        }
    };
    Ok(series_of(listing, hit))
}

/// The group, suffix and folder rules, in that order.
fn gguf_variant(listing: &[&str], variant: &str, lower: &str) -> Result<Vec<usize>, String> {
    let groups = gguf_groups(listing);
    if let Some(files) = by_group_name(listing, variant, lower, &groups)? {
        return Ok(files);
    }
    if let Some(files) = by_suffix(listing, variant, lower)? {
        return Ok(files);
    }
    let in_folder = by_folder(listing, lower);
    if !in_folder.is_empty() {
        return Ok(in_folder);
    }
    Err(nothing_matched(listing, variant, lower, &groups))
}

/// The group named `lower` (case-insensitively), if exactly one is; several are ambiguous.
fn by_group_name(
    listing: &[&str],
    variant: &str,
    lower: &str,
    groups: &[Group],
) -> Result<Option<Vec<usize>>, String> {
    let named: Vec<&Group> = groups
        .iter()
        .filter(|g| g.name.to_lowercase() == lower)
        .collect();
    match named.as_slice() {
        [one] => Ok(Some(one.files.clone())),
        [] => Ok(None),
        many => Err(ambiguous(listing, variant, many)),
    }
}

/// Whether the file at `path` may be picked by a suffix or folder rule: a `.gguf` file, and an
/// mmproj one only when the variant asks for a projector.
fn eligible(path: &str, lower: &str) -> bool {
    is_gguf(path) && (!is_mmproj(path) || lower.contains("mmproj"))
}

/// The one shard series (or single file) matching `*<variant>.gguf`; several are ambiguous.
fn by_suffix(listing: &[&str], variant: &str, lower: &str) -> Result<Option<Vec<usize>>, String> {
    let suffix = format!("{lower}.gguf");
    let mut series: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for i in (0..listing.len())
        .filter(|&i| eligible(listing[i], lower))
        .filter(|&i| listing[i].to_lowercase().ends_with(&suffix))
    {
        series.entry(series_key(listing[i])).or_default().push(i);
    }
    match series.len() {
        0 => Ok(None),
        1 => {
            let first = series.into_values().flatten().next();
            Ok(Some(
                first.map(|i| series_of(listing, i)).unwrap_or_default(),
            ))
        }
        _ => {
            let files: Vec<usize> = series.into_values().flatten().collect();
            Err(format!(
                "Multiple GGUF variant groups matched '{variant}': {}",
                join_paths(listing, &files)
            ))
        }
    }
}

/// The eligible files under a folder `<variant>/`, or else under a top-level folder ending in
/// `-<variant>/` or `_<variant>/`.
fn by_folder(listing: &[&str], lower: &str) -> Vec<usize> {
    let folder = lower.trim_end_matches('/');
    let prefix = format!("{folder}/");
    let in_folder: Vec<usize> = (0..listing.len())
        .filter(|&i| eligible(listing[i], lower))
        .filter(|&i| listing[i].to_lowercase().starts_with(&prefix))
        .collect();
    if !in_folder.is_empty() {
        return in_folder;
    }
    let dash = format!("-{folder}/");
    let underscore = format!("_{folder}/");
    (0..listing.len())
        .filter(|&i| eligible(listing[i], lower))
        .filter(|&i| match listing[i].find('/') {
            Some(slash) => listing[i].get(..=slash).is_some_and(|top| {
                let top = top.to_lowercase();
                top.ends_with(&dash) || top.ends_with(&underscore)
            }),
            None => false,
        })
        .collect()
}

/// The message when no rule picked anything: the groups sharing the label when names were widened
/// (only then can a label match no name), else the available variants.
fn nothing_matched(listing: &[&str], variant: &str, lower: &str, groups: &[Group]) -> String {
    let by_label: Vec<&Group> = groups
        .iter()
        .filter(|g| {
            g.label
                .as_deref()
                .is_some_and(|l| l.to_lowercase() == lower)
        })
        .collect();
    if !by_label.is_empty() {
        return ambiguous(listing, variant, &by_label);
    }
    let mut names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        "the repository has no GGUF variants".to_string()
    } else {
        format!("available variants: {}", names.join(", "))
    }
}

fn ambiguous(listing: &[&str], variant: &str, groups: &[&Group]) -> String {
    let mut files: Vec<usize> = groups
        .iter()
        .flat_map(|g| g.files.iter().copied())
        .collect();
    files.sort_unstable();
    files.dedup();
    format!(
        "Multiple GGUF variant groups matched '{variant}': {}",
        join_paths(listing, &files)
    )
}

fn join_paths(listing: &[&str], files: &[usize]) -> String {
    files
        .iter()
        .map(|&i| listing[i])
        .collect::<Vec<_>>()
        .join(", ")
}

/// A GGUF variant group: what one variant name selects.
#[derive(Debug)]
struct Group {
    /// What the user types after `:`.
    name: String,
    /// The quantization label the group was found by, when there is one.
    label: Option<String>,
    /// Positions in the listing, ascending.
    files: Vec<usize>,
}

/// Groups the non-mmproj `.gguf` files of a listing (see the `select` module docs).
fn gguf_groups(listing: &[&str]) -> Vec<Group> {
    let mut folders: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    // label -> series key -> files
    let mut labelled: BTreeMap<String, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    let mut unlabelled: BTreeMap<String, Vec<usize>> = BTreeMap::new();

    for (i, path) in listing.iter().enumerate() {
        if !is_gguf(path) || is_mmproj(path) {
            continue;
        }
        match path.split_once('/') {
            Some((top, _)) if !top.is_empty() => folders.entry(top).or_default().push(i),
            _ => match quant_label(path) {
                Some(label) => labelled
                    .entry(label)
                    .or_default()
                    .entry(series_key(path))
                    .or_default()
                    .push(i),
                None => unlabelled.entry(series_key(path)).or_default().push(i),
            },
        }
    }

    let mut groups = Vec::new();
    for (folder, files) in folders {
        let label = quant_label(folder);
        groups.push(Group {
            name: label.clone().unwrap_or_else(|| folder.to_string()),
            label,
            files,
        });
    }
    for (label, series) in labelled {
        let widen = series.len() > 1;
        for files in series.into_values() {
            let name = if widen {
                files.first().map(|&i| stem(listing[i])).unwrap_or_default()
            } else {
                label.clone()
            };
            groups.push(Group {
                name,
                label: Some(label.clone()),
                files,
            });
        }
    }
    for files in unlabelled.into_values() {
        groups.push(Group {
            name: files
                .first()
                .map(|&i| unlabelled_name(listing[i]))
                .unwrap_or_default(),
            label: None,
            files,
        });
    }
    groups
}

fn is_gguf(path: &str) -> bool {
    path.to_ascii_lowercase().ends_with(".gguf")
}

fn is_mmproj(path: &str) -> bool {
    path.to_ascii_lowercase().contains("mmproj")
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Splits `base-00001-of-00003.gguf` into (`base`, `00003`).
fn shard_parts(name: &str) -> Option<(&str, &str)> {
    let body = name.get(..name.len().checked_sub(5)?)?;
    if !name.get(body.len()..)?.eq_ignore_ascii_case(".gguf") {
        return None;
    }
    let (rest, total) = body.rsplit_once("-of-")?;
    let (base, index) = rest.rsplit_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(index) && digits(total)).then_some((base, total))
}

/// Files of one shard series share this key; any other file is its own series.
fn series_key(path: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, path),
    };
    match shard_parts(name) {
        Some((base, total)) => match dir {
            Some(dir) => format!("{dir}/{base}\0{total}"),
            None => format!("{base}\0{total}"),
        },
        None => path.to_string(),
    }
}

/// The file and the rest of its shard series, if it is a shard.
fn series_of(listing: &[&str], hit: usize) -> Vec<usize> {
    if shard_parts(file_name(listing[hit])).is_none() {
        return vec![hit];
    }
    let key = series_key(listing[hit]);
    (0..listing.len())
        .filter(|&i| is_gguf(listing[i]) && series_key(listing[i]) == key)
        .collect()
}

/// The group name of a label-less root file: its stem, or its file name when the stem is empty
/// (`.gguf`, `-00001-of-00002.gguf`), since an empty variant selects nothing and the file name
/// selects the file and its series.
fn unlabelled_name(path: &str) -> String {
    match stem(path) {
        s if s.is_empty() => file_name(path).to_string(),
        s => s,
    }
}

/// A file name without `.gguf` and without the shard suffix.
pub(super) fn stem(path: &str) -> String {
    let name = file_name(path);
    if let Some((base, _)) = shard_parts(name) {
        return base.to_string();
    }
    name.get(..name.len().saturating_sub(5))
        .unwrap_or(name)
        .to_string()
}

/// The quantization label in a file or folder name, upper-cased, as lemonade's regex finds it:
/// `(?:^|[-._/])((?:UD[-_])?(?:Q\d+(?:_\d)?(?:_K)?(?:_(?:M|S|L|XL|XXL))?|IQ\d+(?:_(?:M|S|L|XS|XXS|NL))?
/// |F(?:16|32)|BF16|MXFP\d+(?:_MOE)?))(?=[-._/]|$)`, case-insensitive, leftmost match, with the
/// regex's own preference order among alternatives.
pub(super) fn quant_label(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let is_sep = |c: u8| matches!(c, b'-' | b'.' | b'_' | b'/');
    let starts = std::iter::once(0).chain((0..b.len()).filter(|&i| is_sep(b[i])).map(|i| i + 1));
    for start in starts {
        for end in label_ends(b, start) {
            if end == b.len() || is_sep(b[end]) {
                // The label is ASCII, so `start..end` are char boundaries.
                return s.get(start..end).map(str::to_ascii_uppercase);
            }
        }
    }
    None
}

/// Every end position of a label starting at `start`, in the regex's preference order.
fn label_ends(b: &[u8], start: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut after_prefix = Vec::with_capacity(2);
    if let Some(p) = lit(b, start, "UD").and_then(|p| one_of(b, p, b"-_")) {
        after_prefix.push(p);
    }
    after_prefix.push(start);
    for p in after_prefix {
        if let Some(p) = lit(b, p, "Q") {
            for p in digit_runs(b, p) {
                for p in opt(b, p, |b, p| lit(b, p, "_").and_then(|p| one_digit(b, p))) {
                    for p in opt(b, p, |b, p| lit(b, p, "_K")) {
                        out.extend(opt_alts(b, p, &["_M", "_S", "_L", "_XL", "_XXL"]));
                    }
                }
            }
        }
        if let Some(p) = lit(b, p, "IQ") {
            for p in digit_runs(b, p) {
                out.extend(opt_alts(b, p, &["_M", "_S", "_L", "_XS", "_XXS", "_NL"]));
            }
        }
        if let Some(p) = lit(b, p, "F") {
            out.extend(["16", "32"].iter().filter_map(|l| lit(b, p, l)));
        }
        out.extend(lit(b, p, "BF16"));
        if let Some(p) = lit(b, p, "MXFP") {
            for p in digit_runs(b, p) {
                out.extend(opt(b, p, |b, p| lit(b, p, "_MOE")));
            }
        }
    }
    out
}

/// Matches `text` case-insensitively at `p`.
fn lit(b: &[u8], p: usize, text: &str) -> Option<usize> {
    let end = p.checked_add(text.len())?;
    b.get(p..end)?
        .eq_ignore_ascii_case(text.as_bytes())
        .then_some(end)
}

fn one_of(b: &[u8], p: usize, set: &[u8]) -> Option<usize> {
    b.get(p).filter(|c| set.contains(c)).map(|_| p + 1)
}

fn one_digit(b: &[u8], p: usize) -> Option<usize> {
    b.get(p).filter(|c| c.is_ascii_digit()).map(|_| p + 1)
}

/// `\d+`, greedy: longest run first.
fn digit_runs(b: &[u8], p: usize) -> impl Iterator<Item = usize> {
    let run = b
        .get(p..)
        .map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count());
    (p + 1..=p + run).rev()
}

/// `(?:x)?`, greedy: with `x` first, then without.
fn opt(b: &[u8], p: usize, x: impl Fn(&[u8], usize) -> Option<usize>) -> Vec<usize> {
    x(b, p).into_iter().chain(std::iter::once(p)).collect()
}

/// `(?:a|b|...)?`: each alternative in order, then none.
fn opt_alts(b: &[u8], p: usize, alts: &[&str]) -> Vec<usize> {
    alts.iter()
        .filter_map(|a| lit(b, p, a))
        .chain(std::iter::once(p))
        .collect()
}

/// The names of the variant groups of a listing, sorted and without duplicates.
pub(super) fn variant_names(listing: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = gguf_groups(listing).into_iter().map(|g| g.name).collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let cases = [
            ("m-Q4_K_M.gguf", Some("Q4_K_M")),
            ("m-q4_k_m.gguf", Some("Q4_K_M")),
            ("m-Q8_0.gguf", Some("Q8_0")),
            ("m-Q4_K.gguf", Some("Q4_K")),
            ("m-Q4_K_XL.gguf", Some("Q4_K_XL")),
            ("m-UD-Q4_K_XL.gguf", Some("UD-Q4_K_XL")),
            ("m-UD_Q2_K_XXL-00001-of-00002.gguf", Some("UD_Q2_K_XXL")),
            ("m-IQ4_XS.gguf", Some("IQ4_XS")),
            ("m-IQ2_XXS.gguf", Some("IQ2_XXS")),
            ("m-IQ4_NL.gguf", Some("IQ4_NL")),
            ("Llama-3.2-1B-Instruct-F16.gguf", Some("F16")),
            ("m.BF16.gguf", Some("BF16")),
            ("m-F32.gguf", Some("F32")),
            ("gpt-oss-MXFP4.gguf", Some("MXFP4")),
            ("gpt-oss-mxfp4_moe.gguf", Some("MXFP4_MOE")),
            ("Qwen3-8B-Q4_1.gguf", Some("Q4_1")),
            ("Qwen3.6-27B-MTP-IMAT-IQ4_XS-Q8nextn.gguf", Some("IQ4_XS")),
            ("Q6_K", Some("Q6_K")),
            ("Model-Q6_K", Some("Q6_K")),
            // Not labels: no separator before or after.
            ("qwen2.5-7b.gguf", None),
            ("model.gguf", None),
            ("mQ4_0.gguf", None),
            ("m-F16x.gguf", None),
            ("", None),
            // The regex backtracks to a shorter label that is followed by a separator.
            ("m-Q4_K_Mx.gguf", Some("Q4_K")),
            ("m-Q4_0x.gguf", Some("Q4")),
            ("a-IQ4_XSx.gguf", Some("IQ4")),
            ("m-Q4_K_L_x.gguf", Some("Q4_K_L")),
            ("m-Q4_1_K_S.gguf", Some("Q4_1_K_S")),
            ("m-Q12.gguf", Some("Q12")),
            ("x-UD-Q4", Some("UD-Q4")),
            ("UD-x-Q4", Some("Q4")),
            ("é-Q4_0.gguf", Some("Q4_0")),
        ];
        // Expectations checked against Python's `re` with lemonade's pattern (same backtracking
        // order as std::regex's ECMAScript grammar for this pattern).
        for (s, want) in cases {
            assert_eq!(quant_label(s).as_deref(), want, "{s}");
        }
    }

    #[test]
    fn shard_parsing() {
        assert_eq!(
            shard_parts("m-Q6_K-00001-of-00002.gguf"),
            Some(("m-Q6_K", "00002"))
        );
        assert_eq!(shard_parts("m-00001-of-00002.GGUF"), Some(("m", "00002")));
        assert_eq!(shard_parts("m-00001-of-00002.gguf.partial"), None);
        assert_eq!(shard_parts("m-of-00002.gguf"), None);
        assert_eq!(shard_parts("m-x-of-00002.gguf"), None);
        assert_eq!(shard_parts(".gguf"), None);
        assert_eq!(shard_parts("é"), None);
        assert_eq!(stem("a/b/m-Q6_K-00001-of-00002.gguf"), "m-Q6_K");
        assert_eq!(stem("m.GGUF"), "m");
    }
}
