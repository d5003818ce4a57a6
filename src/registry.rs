//! The registries a pull can download from: the Hugging Face Hub and ModelScope. Everything after
//! the listing (selection, salvage, transfer, verification, commit) is the same for both; what
//! differs is named here: endpoint, default revision, cache folder, ref name, manifest label.
//! The ModelScope API itself lives in `net::modelscope`.

use crate::error::{Error, Result};

/// Where a repository lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Registry {
    /// The Hugging Face Hub: commits are 40-hex shas, snapshot folders are named by them.
    #[default]
    HuggingFace,
    /// ModelScope: no commit sha is exposed, so a snapshot is named by a fingerprint of the
    /// listed file tree (lemonade's `tree_snapshot_id`), `modelscope-<revision>-<16 hex>`; a
    /// changed tree is a new snapshot folder.
    ModelScope,
}

impl Registry {
    /// Parses lemonade's names (`huggingface`, `hf`, `modelscope`, `ms`; any case, trimmed).
    pub fn parse(name: &str) -> Result<Registry> {
        match name.trim().to_ascii_lowercase().as_str() {
            "huggingface" | "hugging_face" | "hf" => Ok(Registry::HuggingFace),
            "modelscope" | "ms" => Ok(Registry::ModelScope),
            other => Err(Error::InvalidArgument(format!(
                "unknown registry {other:?} (expected huggingface or modelscope)"
            ))),
        }
    }

    /// `huggingface` or `modelscope`: lemonade's `registry_source` value.
    pub fn name(self) -> &'static str {
        match self {
            Registry::HuggingFace => "huggingface",
            Registry::ModelScope => "modelscope",
        }
    }

    /// The public endpoint.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Registry::HuggingFace => "https://huggingface.co",
            Registry::ModelScope => "https://modelscope.cn",
        }
    }

    /// The revision pulled when none is given.
    pub fn default_revision(self) -> &'static str {
        match self {
            Registry::HuggingFace => "main",
            Registry::ModelScope => "master",
        }
    }

    /// The cache folder of `repo`: `models--org--name` or `modelscope--models--org--name`
    /// (lemonade's `registry_repo_cache_dir_name`).
    pub fn folder_name(self, repo: &str) -> String {
        let mut name = String::from(match self {
            Registry::HuggingFace => "models",
            Registry::ModelScope => "modelscope--models",
        });
        for part in repo.split('/') {
            name.push_str("--");
            name.push_str(part);
        }
        name
    }

    /// The file under `refs/` that records which snapshot `revision` is. lemonade writes
    /// `refs/main` for a ModelScope repository pulled at its default revision (`master`), and
    /// reads it back to find the active snapshot; any other revision keeps its own name.
    pub fn ref_name(self, revision: &str) -> &str {
        match self {
            Registry::ModelScope if revision == "master" => "main",
            _ => revision,
        }
    }

    /// Whether a snapshot is a commit the server confirms on every download (`X-Repo-Commit`).
    pub(crate) fn confirms_commit(self) -> bool {
        self == Registry::HuggingFace
    }
}

impl std::fmt::Display for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Registry::HuggingFace => "Hugging Face",
            Registry::ModelScope => "ModelScope",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_folders_and_refs() {
        assert_eq!(
            Registry::parse(" ModelScope ").ok(),
            Some(Registry::ModelScope)
        );
        assert_eq!(Registry::parse("ms").ok(), Some(Registry::ModelScope));
        assert_eq!(Registry::parse("HF").ok(), Some(Registry::HuggingFace));
        assert!(Registry::parse("github").is_err());
        assert_eq!(
            Registry::ModelScope.folder_name("Qwen/Qwen3-8B-GGUF"),
            "modelscope--models--Qwen--Qwen3-8B-GGUF"
        );
        assert_eq!(Registry::HuggingFace.folder_name("gpt2"), "models--gpt2");
        assert_eq!(Registry::ModelScope.ref_name("master"), "main");
        assert_eq!(Registry::ModelScope.ref_name("v1.0"), "v1.0");
        assert_eq!(Registry::HuggingFace.ref_name("master"), "master");
    }
}
