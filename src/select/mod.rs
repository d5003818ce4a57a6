//! Which files of a repository a pull takes.
//!
//! Two ways of choosing compose, in this order:
//!
//! 1. A **variant** (`org/repo:VARIANT`), with lemonade's rules from `identify_gguf_models` and
//!    `enumerate_gguf_variants`, so that lemon-pull downloads exactly what lemonade's loader will
//!    look for:
//!    - a name ending in `.safetensors`, `.pth`, `.ckpt`, `.gguf` or `.bin` is one exact file
//!      (case-insensitively, by full path or, when unique, by file name), or when no file has
//!      that name, the variant group of that name (a folder `m.bin/`);
//!    - `*` is every `.gguf` file;
//!    - otherwise, case-insensitively: a GGUF variant group by name (see below), then the unique
//!      file matching `*<variant>.gguf`, then the `.gguf` files under a folder `<variant>/`, or
//!      under a top-level folder ending in `-<variant>/` or `_<variant>/`.
//!
//!    Any variant also brings `config.json`, `tokenizer.json`, `tokenizer_config.json` and
//!    `tokenizer.model` from the repo root when they exist. A shard
//!    (`name-00001-of-00003.gguf`) always comes with the rest of its series, since llama.cpp cannot
//!    load one shard alone. Vision projectors (`mmproj` anywhere in the path) are never picked by a
//!    quantization variant unless the variant itself says `mmproj`; `*` and exact file names still
//!    reach them.
//! 2. **Include / exclude globs** with `huggingface_hub`'s `allow_patterns` / `ignore_patterns`
//!    meaning (Python `fnmatch`: `*` crosses `/`, a pattern ending in `/` means everything below
//!    it), case-sensitive. Includes keep files matching any include; excludes then drop matches.
//!
//! With neither, the whole repository is selected.
//!
//! # Variant groups
//! Non-mmproj `.gguf` files form groups the way lemonade's `enumerate_gguf_variants` does:
//! - files under a top-level folder form one group per folder, named after the quantization label
//!   found in the folder name (`Q6_K/`, `Model-Q6_K/` → `Q6_K`) or else the folder name itself;
//! - files at the root are grouped by the quantization label found in their name (`Q4_K_M`,
//!   `UD-Q4_K_XL`, `IQ4_XS`, `F16`, `BF16`, `MXFP4`, ...), upper-cased. A shard series is one group.
//!   When two different models share a label (`m-Q4_K_M.gguf`, `m-Q4_K_M-imatrix.gguf`), each is
//!   named by its file stem instead (`m-Q4_K_M`, `m-Q4_K_M-imatrix`), as current lemonade does, so
//!   that a bare `Q4_K_M` falls through to the suffix rule and picks `m-Q4_K_M.gguf`.
//! - a root file with no label is its own group, named by its stem without the shard suffix (by
//!   its file name when that leaves nothing, as for `.gguf`).
//!
//! # Interpretations where lemonade's rules are loose
//! - lemonade lists label-less files as variants only when no file has a label; here they are
//!   always groups, so `:model` selects all shards of `model-0000k-of-0000n.gguf`.
//! - Several groups with the matching name, several shard series matching `*<variant>.gguf`, or
//!   (when nothing else matched) several widened groups with the matching label are all reported
//!   as `FileNotFound` "Multiple GGUF variant groups matched ...", listing the files.
//! - A file named exactly that is a shard brings its whole series too: lemonade expands shard
//!   series picked by quantization name, and one shard alone cannot be loaded either way.
//! - lemonade's "empty variant → first GGUF file" has no equivalent: an empty variant is an
//!   invalid argument, and no variant means the whole repository.
//! - Draft/MTP companions, which newer lemonade reports separately, are ordinary groups here.
//! - A glob with an unterminated `[` or a reversed range (`[z-a]`) is an invalid argument, where
//!   Python's `fnmatch` would quietly treat it as a literal or as matching nothing.

mod gguf;
mod glob;

use crate::error::Error;
use gguf::variant_files;
use glob::compile_all;

/// What the caller asked for.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Glob patterns; when non-empty, only files matching at least one are kept.
    pub include: Vec<String>,
    /// Glob patterns; files matching any are dropped (applied after `include`).
    pub exclude: Vec<String>,
    /// A lemonade variant (`Q4_K_M`, `model.safetensors`, `*`, a folder), applied first.
    pub variant: Option<String>,
}

/// Picks the files to pull from `paths`, all repo-relative file paths at the commit.
///
/// Returns indices into `paths`, sorted by path, without duplicates (when a path is listed twice,
/// its first index is returned).
///
/// # Errors
/// - [`Error::InvalidArgument`] for a malformed glob or an empty variant;
/// - [`Error::FileNotFound`] when the variant names nothing in the listing, or is ambiguous; the
///   message lists the available variants or the competing files;
/// - [`Error::NoFilesSelected`] when the include/exclude patterns leave nothing.
pub fn select(repo: &str, paths: &[&str], sel: &Selection) -> Result<Vec<usize>, Error> {
    let include = compile_all(&sel.include)?;
    let exclude = compile_all(&sel.exclude)?;

    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by(|&a, &b| paths[a].cmp(paths[b]).then(a.cmp(&b)));
    order.dedup_by(|later, kept| paths[*later] == paths[*kept]);
    let listing: Vec<&str> = order.iter().map(|&i| paths[i]).collect();

    let mut chosen: Vec<usize> = match &sel.variant {
        Some(variant) => variant_files(repo, &listing, variant)?,
        None => (0..listing.len()).collect(),
    };
    let after_variant = chosen.len();
    if !include.is_empty() {
        chosen.retain(|&i| include.iter().any(|g| g.matches(listing[i])));
    }
    chosen.retain(|&i| !exclude.iter().any(|g| g.matches(listing[i])));

    if chosen.is_empty() {
        return Err(Error::NoFilesSelected {
            repo: repo.to_string(),
            detail: describe_empty(sel, after_variant, listing.len()),
        });
    }
    Ok(chosen.into_iter().map(|i| order[i]).collect())
}

fn describe_empty(sel: &Selection, after_variant: usize, total: usize) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &sel.variant {
        let files = if after_variant == 1 { "file" } else { "files" };
        parts.push(format!("variant {v:?} ({after_variant} {files})"));
    }
    if !sel.include.is_empty() {
        parts.push(format!("include {:?}", sel.include));
    }
    if !sel.exclude.is_empty() {
        parts.push(format!("exclude {:?}", sel.exclude));
    }
    if parts.is_empty() {
        return "the repository lists no files".to_string();
    }
    format!(
        "{} left no file out of {total} in the repository",
        parts.join(", ")
    )
}

/// Splits `org/repo:VARIANT` at the first `:` into the repo and the variant.
///
/// A bare repo gives `None`. Only the first `:` splits, so a variant may itself contain `:`.
///
/// # Errors
/// [`Error::InvalidArgument`] when the part before or after the `:` is empty.
pub fn split_repo_variant(spec: &str) -> Result<(String, Option<String>), Error> {
    match spec.split_once(':') {
        None => Ok((spec.to_string(), None)),
        Some(("", _)) => Err(Error::InvalidArgument(format!(
            "{spec:?}: missing repository before `:`"
        ))),
        Some((_, "")) => Err(Error::InvalidArgument(format!(
            "{spec:?}: empty variant after `:`"
        ))),
        Some((repo, variant)) => Ok((repo.to_string(), Some(variant.to_string()))),
    }
}

/// The names of the GGUF variant groups in a listing, sorted and without duplicates, e.g.
/// `["Q4_K_M", "Q6_K", "Q8_0"]`. Each name selects its group when given as the variant.
#[must_use]
pub fn available_variants(paths: &[&str]) -> Vec<String> {
    gguf::variant_names(paths)
}

#[cfg(test)]
mod tests {
    use super::gguf::{quant_label, stem};
    use super::glob::Glob;
    use super::*;

    const REPO: &str = "org/m-GGUF";
    const LISTING: [&str; 7] = [
        "m-Q4_K_M.gguf",
        "m-Q8_0.gguf",
        "Q6_K/m-Q6_K-00001-of-00002.gguf",
        "Q6_K/m-Q6_K-00002-of-00002.gguf",
        "mmproj-m-f16.gguf",
        "config.json",
        "README.md",
    ];

    fn names(paths: &[&str], idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| paths[i].to_string()).collect()
    }

    fn pick(paths: &[&str], sel: &Selection) -> Result<Vec<String>, Error> {
        select(REPO, paths, sel).map(|idx| names(paths, &idx))
    }

    fn variant(paths: &[&str], v: &str) -> Result<Vec<String>, Error> {
        pick(
            paths,
            &Selection {
                variant: Some(v.to_string()),
                ..Selection::default()
            },
        )
    }

    fn globs(paths: &[&str], include: &[&str], exclude: &[&str]) -> Result<Vec<String>, Error> {
        pick(
            paths,
            &Selection {
                include: include.iter().map(|s| s.to_string()).collect(),
                exclude: exclude.iter().map(|s| s.to_string()).collect(),
                variant: None,
            },
        )
    }

    fn not_found_message(r: Result<Vec<String>, Error>) -> String {
        match r {
            Err(Error::FileNotFound { message, .. }) => message,
            other => panic!("expected FileNotFound, got {other:?}"),
        }
    }

    // ---- variants: the brief's examples

    #[test]
    fn quant_variant_picks_file_and_config() {
        assert_eq!(
            variant(&LISTING, "Q4_K_M").unwrap(),
            ["config.json", "m-Q4_K_M.gguf"]
        );
        assert_eq!(
            variant(&LISTING, "q4_k_m").unwrap(),
            ["config.json", "m-Q4_K_M.gguf"]
        );
        assert_eq!(
            variant(&LISTING, "Q8_0").unwrap(),
            ["config.json", "m-Q8_0.gguf"]
        );
    }

    #[test]
    fn folder_group_takes_all_shards() {
        assert_eq!(
            variant(&LISTING, "Q6_K").unwrap(),
            [
                "Q6_K/m-Q6_K-00001-of-00002.gguf",
                "Q6_K/m-Q6_K-00002-of-00002.gguf",
                "config.json"
            ]
        );
    }

    #[test]
    fn missing_variant_lists_available() {
        let r = variant(&LISTING, "Q5_K_M");
        let msg = not_found_message(r);
        assert!(msg.contains("Q4_K_M, Q6_K, Q8_0"), "{msg}");
        match variant(&LISTING, "Q5_K_M").unwrap_err() {
            e @ Error::FileNotFound { .. } => {
                assert_eq!(e.status(), crate::error::Status::FileNotFound);
                assert!(e.to_string().contains("\"Q5_K_M\""), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shorter_label_does_not_pick_longer_one() {
        let msg = not_found_message(variant(&LISTING, "Q4_K"));
        assert!(msg.contains("available variants"), "{msg}");
        // Even when both exist, each picks its own file.
        let paths = ["m-Q4_K.gguf", "m-Q4_K_M.gguf"];
        assert_eq!(variant(&paths, "Q4_K").unwrap(), ["m-Q4_K.gguf"]);
        assert_eq!(variant(&paths, "Q4_K_M").unwrap(), ["m-Q4_K_M.gguf"]);
    }

    #[test]
    fn available_variants_of_listing() {
        assert_eq!(available_variants(&LISTING), ["Q4_K_M", "Q6_K", "Q8_0"]);
        assert!(available_variants(&["README.md", "model.safetensors"]).is_empty());
        assert!(available_variants(&[]).is_empty());
    }

    // ---- variants: other rules

    #[test]
    fn mmproj_is_not_picked_by_quant() {
        let paths = ["m-F16.gguf", "mmproj-m-F16.gguf", "m-Q4_0.gguf"];
        assert_eq!(variant(&paths, "F16").unwrap(), ["m-F16.gguf"]);
        assert_eq!(available_variants(&paths), ["F16", "Q4_0"]);
        // Only a projector matches the suffix: still not picked by a quantization variant.
        let paths = ["m-Q4_0.gguf", "mmproj-m-f16.gguf"];
        assert!(variant(&paths, "f16").is_err());
        // ...unless the variant names it.
        assert_eq!(
            variant(&paths, "mmproj-m-f16").unwrap(),
            ["mmproj-m-f16.gguf"]
        );
        assert_eq!(
            variant(&paths, "mmproj-m-f16.gguf").unwrap(),
            ["mmproj-m-f16.gguf"]
        );
    }

    #[test]
    fn star_takes_every_gguf() {
        assert_eq!(
            variant(&LISTING, "*").unwrap(),
            [
                "Q6_K/m-Q6_K-00001-of-00002.gguf",
                "Q6_K/m-Q6_K-00002-of-00002.gguf",
                "config.json",
                "m-Q4_K_M.gguf",
                "m-Q8_0.gguf",
                "mmproj-m-f16.gguf",
            ]
        );
        let msg = not_found_message(variant(&["README.md"], "*"));
        assert!(msg.contains("no .gguf"), "{msg}");
    }

    #[test]
    fn exact_file_variants() {
        let paths = [
            "split_files/vae/ae.safetensors",
            "model.safetensors",
            "Model.BIN",
            "weights/x.pth",
            "dup/a.ckpt",
            "other/a.ckpt",
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "tokenizer.model",
            "sub/tokenizer.json",
        ];
        let extras = [
            "config.json",
            "tokenizer.json",
            "tokenizer.model",
            "tokenizer_config.json",
        ];
        let with = |f: &str| {
            let mut v: Vec<String> = extras.iter().map(|s| s.to_string()).collect();
            v.push(f.to_string());
            v.sort();
            v
        };
        assert_eq!(
            variant(&paths, "model.safetensors").unwrap(),
            with("model.safetensors")
        );
        assert_eq!(
            variant(&paths, "MODEL.safetensors").unwrap(),
            with("model.safetensors")
        );
        assert_eq!(variant(&paths, "model.bin").unwrap(), with("Model.BIN"));
        // By file name when unique.
        assert_eq!(
            variant(&paths, "ae.safetensors").unwrap(),
            with("split_files/vae/ae.safetensors")
        );
        assert_eq!(variant(&paths, "x.pth").unwrap(), with("weights/x.pth"));
        // Ambiguous file name.
        let msg = not_found_message(variant(&paths, "a.ckpt"));
        assert!(
            msg.contains("dup/a.ckpt") && msg.contains("other/a.ckpt"),
            "{msg}"
        );
        assert_eq!(variant(&paths, "dup/a.ckpt").unwrap(), with("dup/a.ckpt"));
        // Missing.
        let msg = not_found_message(variant(&paths, "missing.safetensors"));
        assert!(msg.contains("no file has this path"), "{msg}");
    }

    #[test]
    fn exact_case_wins_over_case_insensitive_duplicates() {
        let paths = ["A.gguf", "a.gguf"];
        assert_eq!(variant(&paths, "a.gguf").unwrap(), ["a.gguf"]);
        assert!(variant(&paths, "A.GGUF").is_err());
    }

    #[test]
    fn exact_shard_name_brings_series() {
        let paths = [
            "big-Q4_K_M-00001-of-00003.gguf",
            "big-Q4_K_M-00002-of-00003.gguf",
            "big-Q4_K_M-00003-of-00003.gguf",
            "big-Q8_0-00001-of-00002.gguf",
            "big-Q8_0-00002-of-00002.gguf",
        ];
        assert_eq!(
            variant(&paths, "big-Q4_K_M-00001-of-00003.gguf").unwrap(),
            &paths[..3]
        );
        assert_eq!(variant(&paths, "Q4_K_M").unwrap(), &paths[..3]);
        assert_eq!(variant(&paths, "q8_0").unwrap(), &paths[3..]);
        assert_eq!(available_variants(&paths), ["Q4_K_M", "Q8_0"]);
    }

    #[test]
    fn root_shards_group_with_label() {
        let paths = [
            "Model-Q8_0.gguf",
            "Model-Q4_K_M-00001-of-00002.gguf",
            "Model-Q4_K_M-00002-of-00002.gguf",
            "config.json",
        ];
        assert_eq!(
            variant(&paths, "Q4_K_M").unwrap(),
            [
                "Model-Q4_K_M-00001-of-00002.gguf",
                "Model-Q4_K_M-00002-of-00002.gguf",
                "config.json"
            ]
        );
    }

    #[test]
    fn shared_label_widens_names_and_suffix_resolves() {
        let paths = [
            "Model-Q4_K_M.gguf",
            "Model-Q4_K_M-imatrix.gguf",
            "Model-Q8_0.gguf",
        ];
        assert_eq!(
            available_variants(&paths),
            ["Model-Q4_K_M", "Model-Q4_K_M-imatrix", "Q8_0"]
        );
        assert_eq!(variant(&paths, "Q4_K_M").unwrap(), ["Model-Q4_K_M.gguf"]);
        assert_eq!(
            variant(&paths, "model-q4_k_m-imatrix").unwrap(),
            ["Model-Q4_K_M-imatrix.gguf"]
        );
        // Neither file ends with the label: the user has to choose.
        let paths = ["A-Q4_K_M-imatrix.gguf", "A-Q4_K_M-other.gguf"];
        let msg = not_found_message(variant(&paths, "Q4_K_M"));
        assert!(
            msg.starts_with("Multiple GGUF variant groups matched 'Q4_K_M'"),
            "{msg}"
        );
        assert!(
            msg.contains("A-Q4_K_M-imatrix.gguf, A-Q4_K_M-other.gguf"),
            "{msg}"
        );
    }

    #[test]
    fn same_name_in_folder_and_root_is_ambiguous() {
        let paths = [
            "Q6_K/m-Q6_K-00001-of-00002.gguf",
            "Q6_K/m-Q6_K-00002-of-00002.gguf",
            "m-Q6_K.gguf",
        ];
        let msg = not_found_message(variant(&paths, "Q6_K"));
        assert!(
            msg.starts_with("Multiple GGUF variant groups matched 'Q6_K'"),
            "{msg}"
        );
        assert!(
            msg.contains("m-Q6_K.gguf") && msg.contains("00002-of-00002"),
            "{msg}"
        );
    }

    #[test]
    fn suffix_match_across_groups_is_ambiguous() {
        // Both end with `-it.gguf` but are different models.
        let paths = ["a/x-it.gguf", "b/y-it.gguf"];
        let msg = not_found_message(variant(&paths, "it"));
        assert!(
            msg.starts_with("Multiple GGUF variant groups matched 'it'"),
            "{msg}"
        );
        // A unique suffix match in a folder.
        let paths = ["gguf/model-Q4_K_M.gguf", "gguf/model-Q8_0.gguf"];
        assert_eq!(available_variants(&paths), ["gguf"]);
        assert_eq!(
            variant(&paths, "Q4_K_M").unwrap(),
            ["gguf/model-Q4_K_M.gguf"]
        );
        assert_eq!(variant(&paths, "gguf").unwrap(), paths);
    }

    #[test]
    fn suffix_rule_is_plain_suffix() {
        // lemonade's suffix rule has no separator requirement.
        let paths = ["qwen3.gguf", "other.gguf"];
        assert_eq!(variant(&paths, "qwen3").unwrap(), ["qwen3.gguf"]);
        assert_eq!(variant(&paths, "wen3").unwrap(), ["qwen3.gguf"]);
    }

    #[test]
    fn folder_rules() {
        let paths = [
            "Qwen3-Coder-Next-Q4_K_M/a-00001-of-00002.gguf",
            "Qwen3-Coder-Next-Q4_K_M/a-00002-of-00002.gguf",
            "weights_custom/b.gguf",
            "weights_custom/mmproj-b.gguf",
            "nested/deep/c.gguf",
            "nested/deep/notes.txt",
        ];
        // The folder's label names the group.
        assert_eq!(variant(&paths, "q4_k_m").unwrap(), &paths[..2]);
        // Exact folder name (group without a label, named by the folder).
        assert_eq!(
            variant(&paths, "weights_custom").unwrap(),
            ["weights_custom/b.gguf"]
        );
        // `_<variant>/` suffix of a top-level folder.
        assert_eq!(
            variant(&paths, "custom").unwrap(),
            ["weights_custom/b.gguf"]
        );
        // `-<variant>/` suffix.
        assert_eq!(variant(&paths, "Next-Q4_K_M").unwrap(), &paths[..2]);
        // A nested folder by prefix, trailing slash tolerated.
        assert_eq!(
            variant(&paths, "nested/deep").unwrap(),
            ["nested/deep/c.gguf"]
        );
        assert_eq!(
            variant(&paths, "nested/deep/").unwrap(),
            ["nested/deep/c.gguf"]
        );
    }

    #[test]
    fn unlabelled_files_are_groups() {
        let paths = [
            "model-00001-of-00002.gguf",
            "model-00002-of-00002.gguf",
            "draft.gguf",
        ];
        assert_eq!(available_variants(&paths), ["draft", "model"]);
        assert_eq!(variant(&paths, "MODEL").unwrap(), &paths[..2]);
        assert_eq!(variant(&paths, "draft").unwrap(), ["draft.gguf"]);
    }

    /// Found by the `select` fuzz target: `.gguf` was listed as the variant `""`, which no variant
    /// can name.
    #[test]
    fn unlabelled_files_with_empty_stems_are_named_by_file_name() {
        let paths = [
            ".gguf",
            "-00001-of-00002.gguf",
            "-00002-of-00002.gguf",
            "config.json",
        ];
        assert_eq!(
            available_variants(&paths),
            ["-00001-of-00002.gguf", ".gguf"]
        );
        assert_eq!(variant(&paths, ".gguf").unwrap(), [".gguf", "config.json"]);
        assert_eq!(
            variant(&paths, "-00001-of-00002.gguf").unwrap(),
            [
                "-00001-of-00002.gguf",
                "-00002-of-00002.gguf",
                "config.json"
            ]
        );
    }

    /// Found by the `select` fuzz target: the folder group `ne.bin` was listed as a variant, but
    /// the name was taken as a file name only, and no file has it.
    #[test]
    fn groups_with_file_like_names_are_selectable() {
        let paths = [
            "ne.bin/deep/c.gguf",
            "x.bin.gguf",
            "weights.bin",
            "weights.bin.gguf",
        ];
        assert_eq!(
            available_variants(&paths),
            ["ne.bin", "weights.bin", "x.bin"]
        );
        assert_eq!(variant(&paths, "ne.bin").unwrap(), ["ne.bin/deep/c.gguf"]);
        assert_eq!(variant(&paths, "X.BIN").unwrap(), ["x.bin.gguf"]);
        // A file of that name still wins, as in lemonade.
        assert_eq!(variant(&paths, "weights.bin").unwrap(), ["weights.bin"]);
        assert!(not_found_message(variant(&paths, "none.bin")).contains("no file has this"));
    }

    #[test]
    fn extras_only_from_root() {
        let paths = [
            "m-Q4_0.gguf",
            "sub/config.json",
            "tokenizer.model",
            "Config.json",
        ];
        assert_eq!(
            variant(&paths, "Q4_0").unwrap(),
            ["m-Q4_0.gguf", "tokenizer.model"]
        );
    }

    #[test]
    fn empty_variant_is_invalid() {
        assert!(matches!(
            variant(&LISTING, ""),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn no_gguf_at_all() {
        let msg = not_found_message(variant(&["README.md"], "Q4_K_M"));
        assert!(msg.contains("no GGUF variants"), "{msg}");
    }

    #[test]
    fn invalid_globs() {
        for p in ["[abc", "a[", "[!", "[]", "[z-a]"] {
            match Glob::new(p) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(&format!("{p:?}")), "{m}"),
                other => panic!("{p:?}: {other:?}"),
            }
        }
        let r = globs(&LISTING, &["[oops"], &[]);
        match r {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("[oops"), "{m}"),
            other => panic!("{other:?}"),
        }
        let r = globs(&LISTING, &[], &["ok", "x[9-0]"]);
        assert!(matches!(r, Err(Error::InvalidArgument(m)) if m.contains("x[9-0]")));
    }

    // ---- include / exclude

    #[test]
    fn no_selector_is_whole_repo() {
        let all = pick(&LISTING, &Selection::default()).unwrap();
        let mut want: Vec<String> = LISTING.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(all, want);
    }

    #[test]
    fn include_and_exclude() {
        assert_eq!(
            globs(&LISTING, &["*.json", "*.md"], &[]).unwrap(),
            ["README.md", "config.json"]
        );
        assert_eq!(
            globs(&LISTING, &["*.gguf"], &["mmproj*", "Q6_K/"]).unwrap(),
            ["m-Q4_K_M.gguf", "m-Q8_0.gguf"]
        );
        assert_eq!(
            globs(&LISTING, &[], &["*.gguf"]).unwrap(),
            ["README.md", "config.json"]
        );
    }

    #[test]
    fn variant_then_include_then_exclude() {
        let sel = Selection {
            include: vec!["*.gguf".into()],
            exclude: vec![],
            variant: Some("Q6_K".into()),
        };
        assert_eq!(
            pick(&LISTING, &sel).unwrap(),
            [
                "Q6_K/m-Q6_K-00001-of-00002.gguf",
                "Q6_K/m-Q6_K-00002-of-00002.gguf"
            ]
        );
        let sel = Selection {
            include: vec![],
            exclude: vec!["config.json".into()],
            variant: Some("Q4_K_M".into()),
        };
        assert_eq!(pick(&LISTING, &sel).unwrap(), ["m-Q4_K_M.gguf"]);
        // Include cannot add files the variant did not pick.
        let sel = Selection {
            include: vec!["README.md".into()],
            exclude: vec![],
            variant: Some("Q4_K_M".into()),
        };
        match pick(&LISTING, &sel) {
            Err(Error::NoFilesSelected { repo, detail }) => {
                assert_eq!(repo, REPO);
                assert!(detail.contains("\"Q4_K_M\" (2 files)"), "{detail}");
                assert!(detail.contains("README.md"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_results() {
        match globs(&LISTING, &["*.onnx"], &[]) {
            Err(e @ Error::NoFilesSelected { .. }) => {
                assert_eq!(e.status(), crate::error::Status::NoFilesSelected);
                let s = e.to_string();
                assert!(s.contains("*.onnx") && s.contains("out of 7"), "{s}");
            }
            other => panic!("{other:?}"),
        }
        match globs(&LISTING, &[], &["*"]) {
            Err(Error::NoFilesSelected { detail, .. }) => {
                assert!(detail.contains("exclude [\"*\"]"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
        match pick(&[], &Selection::default()) {
            Err(Error::NoFilesSelected { detail, .. }) => {
                assert_eq!(detail, "the repository lists no files")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn indices_are_sorted_by_path_and_unique() {
        let paths = ["b.txt", "a.txt", "c.gguf", "a.txt"];
        let idx = select(REPO, &paths, &Selection::default()).unwrap();
        assert_eq!(idx, [1, 0, 2]);
        let idx = select(
            REPO,
            &paths,
            &Selection {
                variant: Some("c.gguf".into()),
                ..Selection::default()
            },
        )
        .unwrap();
        assert_eq!(idx, [2]);
    }

    /// A tiny deterministic generator, so the test needs no dependency and always replays.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(self.0 >> 33).unwrap_or(0) % n.max(1)
        }

        fn string(&mut self, alphabet: &[&str], max: usize) -> String {
            let len = self.next(max + 1);
            (0..len)
                .map(|_| alphabet[self.next(alphabet.len())])
                .collect()
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        let path_parts = [
            "a",
            "Q",
            "4",
            "_K",
            "_M",
            "-",
            ".",
            "/",
            "gguf",
            ".gguf",
            "-00001-of-00002",
            "mmproj",
            "UD-",
            "IQ",
            "F16",
            "é",
            "モ",
            ":",
            "\\",
            "\0",
            " ",
            "config.json",
            "[",
            "]",
            "*",
        ];
        let pattern_parts = [
            "*", "?", "[", "]", "!", "-", "a", "/", "é", "\\", "[a-z]", "Q",
        ];
        let mut rng = Lcg(0x5eed);
        for _ in 0..2000 {
            let paths: Vec<String> = (0..rng.next(8))
                .map(|_| rng.string(&path_parts, 10))
                .collect();
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            let sel = Selection {
                include: (0..rng.next(3))
                    .map(|_| rng.string(&pattern_parts, 6))
                    .collect(),
                exclude: (0..rng.next(2))
                    .map(|_| rng.string(&pattern_parts, 6))
                    .collect(),
                variant: (rng.next(3) > 0).then(|| rng.string(&path_parts, 4)),
            };
            if let Ok(idx) = select(REPO, &refs, &sel) {
                assert!(idx.windows(2).all(|w| refs[w[0]] < refs[w[1]]));
            }
            let _ = available_variants(&refs);
            for p in &refs {
                let _ = crate::repo_path::validate_file_path(REPO, p);
                let _ = quant_label(p);
                let _ = stem(p);
            }
        }
    }

    // ---- repo:variant specs

    #[test]
    fn split_specs() {
        assert_eq!(
            split_repo_variant("org/repo:Q4_K_M").unwrap(),
            ("org/repo".to_string(), Some("Q4_K_M".to_string()))
        );
        assert_eq!(
            split_repo_variant("org/repo").unwrap(),
            ("org/repo".to_string(), None)
        );
        assert_eq!(
            split_repo_variant("org/repo:a:b").unwrap(),
            ("org/repo".to_string(), Some("a:b".to_string()))
        );
        assert_eq!(
            split_repo_variant("org/repo:*").unwrap().1.as_deref(),
            Some("*")
        );
        assert!(matches!(
            split_repo_variant("org/repo:"),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            split_repo_variant(":Q4"),
            Err(Error::InvalidArgument(_))
        ));
    }
}
