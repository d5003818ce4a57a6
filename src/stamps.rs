//! Verified-file stamps: remember that a file was verified, so pulling a complete snapshot again
//! costs a few `stat` calls instead of re-hashing gigabytes.
//!
//! A stamp ties a content id to what `stat` says about the file (size, modification time, and the
//! file's identity on the volume). Any write, replacement or touch changes one of those, and then
//! the file is hashed again. Stamps live in `.lemon-pull/verified/<commit>.json`, outside the
//! snapshot, so lemonade never sees them.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::cache::write_atomic;
use crate::error::Result;
use crate::verify::ContentId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: u128,
    file_id: u64,
    algorithm: String,
    id: String,
}

/// The stamps of one snapshot, loaded once per pull and saved after changes.
#[derive(Debug)]
pub struct Stamps {
    path: PathBuf,
    entries: BTreeMap<String, Stamp>,
    dirty: bool,
}

fn stamps_path(state_dir: &Path, commit: &str) -> PathBuf {
    state_dir.join("verified").join(format!("{commit}.json"))
}

impl Stamps {
    /// Deletes the stamps of `commit` (its snapshot folder is gone).
    pub fn remove(state_dir: &Path, commit: &str) -> Result<()> {
        crate::cache::remove_file_if_exists(&stamps_path(state_dir, commit))
    }

    /// Loads the stamps of `commit` from `state_dir` (an unreadable file counts as empty).
    pub fn load(state_dir: &Path, commit: &str) -> Stamps {
        let path = stamps_path(state_dir, commit);
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Stamps {
            path,
            entries,
            dirty: false,
        }
    }

    /// Whether `file` (repo path `rel`) was verified as `id` and has not changed since.
    pub fn is_verified(&self, rel: &str, file: &Path, id: &ContentId) -> bool {
        let (Some(stamp), Ok(meta)) = (self.entries.get(rel), std::fs::metadata(file)) else {
            return false;
        };
        meta.is_file() && *stamp == make_stamp(&meta, id)
    }

    /// The id recorded for `rel`, whether or not the file still matches it.
    pub fn recorded_id(&self, rel: &str) -> Option<ContentId> {
        let stamp = self.entries.get(rel)?;
        ContentId::from_parts(&stamp.algorithm, &stamp.id)
    }

    /// The id `file` verified as, if its stamp still matches what `stat` says.
    pub fn verified_id(&self, rel: &str, file: &Path) -> Option<ContentId> {
        self.recorded_id(rel)
            .filter(|id| self.is_verified(rel, file, id))
    }

    /// Records that `file` verified as `id`.
    pub fn mark(&mut self, rel: &str, file: &Path, id: &ContentId) {
        if let Ok(meta) = std::fs::metadata(file) {
            self.entries.insert(rel.to_string(), make_stamp(&meta, id));
            self.dirty = true;
        }
    }

    /// Writes the stamps if they changed.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let json = serde_json::to_vec(&self.entries)
            .map_err(|e| crate::Error::Internal(format!("stamps json: {e}")))?;
        write_atomic(&self.path, &json)?;
        self.dirty = false;
        Ok(())
    }
}

fn make_stamp(meta: &Metadata, id: &ContentId) -> Stamp {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Stamp {
        size: meta.len(),
        mtime_ns,
        file_id: crate::platform::file_id(meta),
        algorithm: id.algorithm().to_string(),
        id: id.hex().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_survives_reload_and_detects_changes() {
        let dir = std::env::temp_dir().join(format!("lp-stamps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("model.bin");
        std::fs::write(&f, b"abc").expect("write");
        let id = ContentId::Sha256("cd".repeat(32));
        let mut s = Stamps::load(&dir, "c1");
        assert!(!s.is_verified("model.bin", &f, &id));
        s.mark("model.bin", &f, &id);
        s.save().expect("save");
        let s = Stamps::load(&dir, "c1");
        assert!(s.is_verified("model.bin", &f, &id));
        assert!(!s.is_verified("model.bin", &f, &ContentId::Sha256("ef".repeat(32))));
        std::fs::write(&f, b"abcd").expect("rewrite");
        assert!(!s.is_verified("model.bin", &f, &id));
        std::fs::remove_dir_all(&dir).ok();
    }
}
