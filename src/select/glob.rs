//! Include / exclude globs with the meaning of `huggingface_hub`'s `allow_patterns` /
//! `ignore_patterns` (Python `fnmatch`): `*` crosses `/`, a pattern ending in `/` means everything
//! below it, matching is case-sensitive, and a malformed pattern is an invalid argument.

use crate::error::Error;

/// Compiles every pattern, or fails on the first malformed one.
pub(super) fn compile_all(patterns: &[String]) -> Result<Vec<Glob>, Error> {
    patterns.iter().map(|p| Glob::new(p)).collect()
}

/// One element of a compiled glob.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `?`
    Any,
    /// `*` (runs of stars are folded into one)
    Star,
    /// `[...]` / `[!...]`, as inclusive ranges.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Tok {
    fn matches(&self, c: char) -> bool {
        match self {
            Tok::Lit(l) => *l == c,
            Tok::Any => true,
            Tok::Star => false,
            Tok::Set { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// A compiled `fnmatch` pattern.
#[derive(Debug, Clone)]
pub(super) struct Glob {
    toks: Vec<Tok>,
}

impl Glob {
    /// Compiles `pattern`; [`Error::InvalidArgument`] for an unterminated `[` or a reversed range.
    pub(super) fn new(pattern: &str) -> Result<Glob, Error> {
        let invalid =
            |why: &str| Error::InvalidArgument(format!("invalid glob pattern {pattern:?}: {why}"));
        // huggingface_hub treats `dir/` as "everything under dir".
        let mut chars: Vec<char> = pattern.chars().collect();
        if pattern.ends_with('/') {
            chars.push('*');
        }
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => {
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                }
                '?' => toks.push(Tok::Any),
                '[' => {
                    let negated = chars.get(i) == Some(&'!');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(&lo) = chars.get(i) else {
                            return Err(invalid("unterminated `[`"));
                        };
                        // `]` right after `[` or `[!` is a member, as in fnmatch.
                        if lo == ']' && !first {
                            i += 1;
                            break;
                        }
                        first = false;
                        if let (Some('-'), Some(&hi)) = (chars.get(i + 1), chars.get(i + 2))
                            && hi != ']'
                        {
                            if hi < lo {
                                return Err(invalid("reversed range in `[...]`"));
                            }
                            ranges.push((lo, hi));
                            i += 3;
                        } else {
                            ranges.push((lo, lo));
                            i += 1;
                        }
                    }
                    toks.push(Tok::Set { negated, ranges });
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Glob { toks })
    }

    /// Wildcard matching with a single backtrack point (the last `*`): O(len(text) × len(pattern))
    /// at worst, so hostile patterns like `*a*a*a*a*b` cannot blow up.
    pub(super) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let toks = &self.toks;
        let (mut p, mut t) = (0, 0);
        // (pattern position after the last `*`, text position that `*` resumes from)
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match toks.get(p) {
                Some(Tok::Star) => {
                    p += 1;
                    star = Some((p, t));
                    continue;
                }
                Some(tok) if tok.matches(text[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                // Let the last `*` swallow one more character and retry from there.
                Some((sp, st)) => {
                    p = sp;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            }
        }
        toks.get(p..)
            .is_some_and(|rest| rest.iter().all(|tok| *tok == Tok::Star))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str, t: &str) -> bool {
        Glob::new(p).expect("test pattern is valid").matches(t)
    }

    #[test]
    fn glob_basics() {
        assert!(glob("*.json", "config.json"));
        assert!(glob("*.json", "sub/dir/config.json"), "`*` crosses `/`");
        assert!(!glob("*.json", "config.jsonl"));
        assert!(glob("?.txt", "a.txt"));
        assert!(!glob("?.txt", "ab.txt"));
        assert!(glob("a?b", "a/b"));
        assert!(glob("[abc].md", "b.md"));
        assert!(!glob("[abc].md", "d.md"));
        assert!(glob("[!abc].md", "d.md"));
        assert!(!glob("[!abc].md", "a.md"));
        assert!(glob("model-[0-9][0-9].bin", "model-07.bin"));
        assert!(!glob("model-[0-9][0-9].bin", "model-7a.bin"));
        assert!(glob("[]]", "]"));
        assert!(glob("[!]]", "a"));
        assert!(!glob("[!]]", "]"));
        assert!(glob("[a-]", "-"));
        assert!(glob("[-a]", "-"));
        assert!(glob("[^a]", "^"), "`^` is literal in fnmatch");
        assert!(glob("a\\b", "a\\b"), "backslash is literal");
        assert!(glob("モ*.json", "モデル.json"));
        assert!(glob("", ""));
        assert!(!glob("", "a"));
        assert!(glob("*", ""));
        assert!(glob("**", "a/b"));
        assert!(!glob("*.JSON", "a.json"), "case-sensitive");
    }

    #[test]
    fn glob_directory_pattern() {
        assert!(glob("vae/", "vae/ae.safetensors"));
        assert!(glob("vae/", "vae/sub/x"));
        assert!(!glob("vae/", "other/vae.txt"));
        assert!(!glob("vae/", "vae"));
    }

    #[test]
    fn hostile_glob_is_not_exponential() {
        let text = "a".repeat(20_000);
        let g = Glob::new("*a*a*a*a*a*a*a*a*a*a*b").unwrap();
        let start = std::time::Instant::now();
        assert!(!g.matches(&text));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert!(
            Glob::new("*a*a*a*a*b")
                .unwrap()
                .matches(&format!("{text}b"))
        );
    }
}
