//! lemonade's `.download_manifest.json`: written before the first byte of a snapshot, removed after
//! it committed. Its presence is what tells lemonade a snapshot is in progress.
//!
//! We write a superset of lemonade's current schema (extra keys are ignored by lemonade) and read
//! every version found on users' disks: the current one (with `hash`), the April-2026 one (no
//! `hash`, no `registry_source`), an empty `{}`, and truncated or garbage files (then nothing is
//! known about the content, which is not an error).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::write_atomic;
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::verify::ContentId;

/// One file entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Repo-relative path.
    pub name: String,
    /// Download URL.
    pub url: String,
    /// Size in bytes (0 = unknown in old manifests).
    pub size: u64,
    /// Folder the file lives in (authoritative per lemonade; auxiliary repos differ from the main).
    pub download_path: Option<PathBuf>,
    /// Content id, when recorded (a size-only id is not written: lemonade knows no such hash).
    pub id: Option<ContentId>,
}

/// A manifest as read or to be written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Main repository id.
    pub repo_id: String,
    /// The registry of the main repository (`registry_source`).
    pub registry: Registry,
    /// Commit of the main repo's snapshot.
    pub commit_hash: String,
    /// The main snapshot folder.
    pub download_path: PathBuf,
    /// Files of all repos of the pull.
    pub files: Vec<ManifestFile>,
}

#[derive(Serialize, Deserialize, Default)]
struct Wire {
    #[serde(default)]
    repo_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registry_source: Option<String>,
    #[serde(default)]
    commit_hash: String,
    #[serde(default)]
    download_path: String,
    #[serde(default)]
    files_count: u64,
    #[serde(default)]
    files: Vec<WireFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lemon_pull: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize, Default)]
struct WireFile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    download_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<WireHash>,
    /// Legacy lemonade field: a bare sha256 string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WireHash {
    algorithm: String,
    value: String,
}

impl Manifest {
    /// Writes the manifest atomically in lemonade's schema.
    pub fn write(&self, path: &Path) -> Result<()> {
        let wire = Wire {
            repo_id: self.repo_id.clone(),
            registry_source: Some(self.registry.name().into()),
            commit_hash: self.commit_hash.clone(),
            download_path: self.download_path.to_string_lossy().into_owned(),
            files_count: self.files.len() as u64,
            files: self
                .files
                .iter()
                .map(|f| WireFile {
                    name: f.name.clone(),
                    url: f.url.clone(),
                    size: f.size,
                    download_path: f
                        .download_path
                        .as_ref()
                        .map(|p| p.to_string_lossy().into_owned()),
                    hash: f
                        .id
                        .as_ref()
                        .filter(|id| id.is_digest())
                        .map(|id| WireHash {
                            algorithm: id.algorithm().into(),
                            value: id.hex().into(),
                        }),
                    sha256: None,
                })
                .collect(),
            lemon_pull: Some(serde_json::json!({ "version": env!("CARGO_PKG_VERSION") })),
        };
        let json = serde_json::to_vec_pretty(&wire)
            .map_err(|e| Error::Internal(format!("manifest json: {e}")))?;
        write_atomic(path, &json)
    }

    /// Reads a manifest in any known version. `None` when the file is missing, empty, truncated or
    /// not a manifest: the caller then knows only that the snapshot is in progress.
    pub fn read(path: &Path) -> Option<Manifest> {
        let bytes = std::fs::read(path).ok()?;
        Self::parse(&bytes)
    }

    /// Parses manifest bytes; see [`Manifest::read`].
    pub fn parse(bytes: &[u8]) -> Option<Manifest> {
        let wire: Wire = serde_json::from_slice(bytes).ok()?;
        let files = wire
            .files
            .into_iter()
            .filter(|f| !f.name.is_empty())
            .map(|f| {
                let id = match (&f.hash, &f.sha256) {
                    (Some(h), _) => ContentId::from_parts(&h.algorithm, &h.value),
                    (None, Some(s)) => ContentId::from_parts("sha256", s),
                    (None, None) => None,
                };
                ManifestFile {
                    name: f.name,
                    url: f.url,
                    size: f.size,
                    download_path: f.download_path.filter(|p| !p.is_empty()).map(PathBuf::from),
                    id,
                }
            })
            .collect();
        Some(Manifest {
            repo_id: wire.repo_id,
            registry: wire
                .registry_source
                .and_then(|r| Registry::parse(&r).ok())
                .unwrap_or_default(),
            commit_hash: wire.commit_hash,
            download_path: PathBuf::from(wire.download_path),
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_current_april_empty_and_garbage() {
        let current = br#"{"commit_hash":"c","download_path":"/s/c","files":[{"download_path":"/s/c","hash":{"algorithm":"sha256","value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"name":"m.gguf","size":5,"url":"u"}],"files_count":1,"registry_source":"huggingface","repo_id":"o/n"}"#;
        let m = Manifest::parse(current).expect("current");
        assert_eq!(m.files[0].id, Some(ContentId::Sha256("a".repeat(64))));
        assert_eq!(m.files[0].download_path.as_deref(), Some(Path::new("/s/c")));

        let april = br#"{"repo_id":"o/n","commit_hash":"c","download_path":"/s/c","files_count":1,"files":[{"name":"m.gguf","url":"https://huggingface.co/o/n/resolve/main/m.gguf","size":0,"download_path":"/s/c"}]}"#;
        let m = Manifest::parse(april).expect("april");
        assert_eq!((m.files[0].id.clone(), m.files[0].size), (None, 0));

        let empty = Manifest::parse(b"{}").expect("empty object");
        assert!(empty.files.is_empty());
        assert!(Manifest::parse(b"{\"repo_id\": \"o/n\", \"fil").is_none());
        assert!(Manifest::parse(b"\x00\xff garbage").is_none());
        assert!(Manifest::parse(b"[1,2]").is_none());
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = std::env::temp_dir().join(format!("lp-manifest-{}", std::process::id()));
        let path = dir.join(".download_manifest.json");
        let m = Manifest {
            repo_id: "o/n".into(),
            registry: Registry::ModelScope,
            commit_hash: "c".repeat(40),
            download_path: dir.clone(),
            files: vec![ManifestFile {
                name: "config.json".into(),
                url: "http://h/o/n/resolve/c/config.json".into(),
                size: 3,
                download_path: Some(dir.clone()),
                id: Some(ContentId::GitSha1("b".repeat(40))),
            }],
        };
        m.write(&path).expect("write");
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(raw["files_count"], 1);
        assert_eq!(raw["registry_source"], "modelscope");
        assert_eq!(raw["files"][0]["hash"]["algorithm"], "git-sha1");
        assert_eq!(Manifest::read(&path), Some(m.clone()));
        // lemonade knows no size-only hash: such a file is written without one.
        let mut sized = m;
        sized.files[0].id = Some(ContentId::size_only(
            "modelscope-master-0",
            "config.json",
            3,
        ));
        sized.write(&path).expect("write");
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert!(raw["files"][0].get("hash").is_none(), "{raw}");
        assert_eq!(Manifest::read(&path).expect("read").files[0].id, None);
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &[u8] = br#"{"repo_id":"o/n","registry_source":"huggingface","commit_hash":"0123456789abcdef0123456789abcdef01234567","download_path":"/c/models--o--n/snapshots/0123456789abcdef0123456789abcdef01234567","files_count":2,"files":[{"name":"m.gguf","url":"https://huggingface.co/o/n/resolve/0123456789abcdef0123456789abcdef01234567/m.gguf","size":5,"download_path":"/c/models--o--n/snapshots/0123456789abcdef0123456789abcdef01234567","hash":{"algorithm":"sha256","value":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},{"name":"config.json","url":"u","size":0,"sha256":"bbbb"}],"lemon_pull":{"version":"0.1.0"}}"#;

    /// One edit of a byte string.
    #[derive(Debug, Clone)]
    enum Edit {
        Flip(usize, u8),
        Delete(usize),
        Insert(usize, u8),
        Truncate(usize),
        Splice(usize, String),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let at = any::<usize>();
        prop_oneof![
            (at, any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
            at.prop_map(Edit::Delete),
            (at, any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
            at.prop_map(Edit::Truncate),
            (
                at,
                prop_oneof![
                    Just("-1".to_string()),
                    Just("18446744073709551616".to_string()),
                    Just("null".to_string()),
                    Just("[]".to_string()),
                    Just("{}".to_string()),
                    Just("\"\\u0000\"".to_string()),
                    Just("1e999".to_string()),
                    "[\\[\\]{}\",:0-9a-z\\\\]{0,12}",
                ]
            )
                .prop_map(|(i, s)| Edit::Splice(i, s)),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, e: &Edit) {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match e {
            Edit::Flip(i, b) if !bytes.is_empty() => {
                let i = at(*i, bytes.len());
                bytes[i] ^= b | 1;
            }
            Edit::Delete(i) if !bytes.is_empty() => {
                let i = at(*i, bytes.len());
                bytes.remove(i);
            }
            Edit::Insert(i, b) => {
                let i = at(*i, bytes.len() + 1);
                bytes.insert(i, *b);
            }
            Edit::Truncate(i) => bytes.truncate(at(*i, bytes.len() + 1)),
            Edit::Splice(i, s) => {
                let i = at(*i, bytes.len() + 1);
                bytes.splice(i..i, s.bytes());
            }
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parse_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Manifest::parse(&bytes);
        }

        /// Mutations of a valid manifest never panic, and what parses has only named files.
        #[test]
        fn parse_never_panics_on_mutated_manifests(edits in proptest::collection::vec(edit(), 1..8)) {
            let mut bytes = VALID.to_vec();
            for e in &edits {
                apply(&mut bytes, e);
            }
            if let Some(m) = Manifest::parse(&bytes) {
                prop_assert!(m.files.iter().all(|f| !f.name.is_empty()));
            }
        }
    }

    #[test]
    fn the_seed_manifest_parses() {
        let m = Manifest::parse(VALID).expect("valid");
        assert_eq!(m.files.len(), 2);
        assert_eq!(
            m.files[1].id, None,
            "a short legacy sha256 is not a content id"
        );
    }
}
