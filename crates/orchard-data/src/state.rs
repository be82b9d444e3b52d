//! The state index: (inode, mtime, size) of a file → its md5, so `status` after `add` does not read the data
//! again. DVC keeps the same idea in a machine-local SQLite; ours lives in `.dvc/tmp/` (git-ignored), one line
//! per file, loaded whole and rewritten atomically — tens of thousands of entries load in milliseconds.
//!
//! A stale or damaged index only costs a rehash: an entry is used only when all three stamps match, and a
//! line that does not parse is skipped.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::fsutil;
use crate::hash::HashKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub ino: u64,
    pub mtime_ns: i128,
    pub size: u64,
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            ino: meta.ino(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            size: meta.size(),
        }
    }
}

type Key = (PathBuf, HashKind);

pub struct State {
    file: PathBuf,
    entries: Mutex<HashMap<Key, (Stamp, String)>>,
    dirty: Mutex<bool>,
}

const HEADER: &str = "orchard-state 1\n";

impl State {
    /// Loads the index kept at `file` (an absent or unreadable file is an empty index).
    pub fn load(file: PathBuf) -> State {
        let mut entries = HashMap::new();
        if let Ok(text) = fs::read_to_string(&file) {
            if let Some(body) = text.strip_prefix(HEADER) {
                for line in body.lines() {
                    if let Some((key, value)) = parse_line(line) {
                        entries.insert(key, value);
                    }
                }
            }
        }
        State {
            file,
            entries: Mutex::new(entries),
            dirty: Mutex::new(false),
        }
    }

    /// The recorded md5 of `path` if its stamps still match `meta`.
    pub fn get(&self, path: &Path, kind: HashKind, meta: &fs::Metadata) -> Option<String> {
        let entries = self.entries.lock().ok()?;
        let (stamp, md5) = entries.get(&(path.to_path_buf(), kind))?;
        (*stamp == Stamp::of(meta)).then(|| md5.clone())
    }

    pub fn put(&self, path: &Path, kind: HashKind, meta: &fs::Metadata, md5: &str) {
        if path.as_os_str().to_string_lossy().contains(['\n', '\t']) {
            return; // cannot be written on one line; such a file is simply rehashed
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                (path.to_path_buf(), kind),
                (Stamp::of(meta), md5.to_string()),
            );
        }
        if let Ok(mut d) = self.dirty.lock() {
            *d = true;
        }
    }

    pub fn forget(&self, path: &Path) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(p, _), _| !p.starts_with(path));
        }
        if let Ok(mut d) = self.dirty.lock() {
            *d = true;
        }
    }

    /// Writes the index back if it changed. Failing to save only loses speed, so errors are ignored.
    pub fn save(&self) {
        let dirty = self.dirty.lock().map(|d| *d).unwrap_or(false);
        if !dirty {
            return;
        }
        let Ok(entries) = self.entries.lock() else {
            return;
        };
        let mut text = String::with_capacity(HEADER.len() + entries.len() * 120);
        text.push_str(HEADER);
        for ((path, kind), (stamp, md5)) in entries.iter() {
            let k = match kind {
                HashKind::Md5 => 'm',
                HashKind::LegacyMd5Dos2Unix => 'l',
            };
            text.push_str(&format!(
                "{k}\t{md5}\t{}\t{}\t{}\t{}\n",
                stamp.ino,
                stamp.mtime_ns,
                stamp.size,
                path.display()
            ));
        }
        let _ = fsutil::write_atomic(&self.file, text.as_bytes());
    }
}

fn parse_line(line: &str) -> Option<(Key, (Stamp, String))> {
    let mut parts = line.splitn(6, '\t');
    let kind = match parts.next()? {
        "m" => HashKind::Md5,
        "l" => HashKind::LegacyMd5Dos2Unix,
        _ => return None,
    };
    let md5 = parts.next()?.to_string();
    let ino = parts.next()?.parse().ok()?;
    let mtime_ns = parts.next()?.parse().ok()?;
    let size = parts.next()?.parse().ok()?;
    let path = PathBuf::from(parts.next()?);
    Some((
        (path, kind),
        (
            Stamp {
                ino,
                mtime_ns,
                size,
            },
            md5,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reload_and_expire_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a.txt");
        fs::write(&data, "one").unwrap();
        let state = State::load(dir.path().join("state"));
        let meta = fs::metadata(&data).unwrap();
        state.put(&data, HashKind::Md5, &meta, "x");
        state.save();
        let state = State::load(dir.path().join("state"));
        assert_eq!(state.get(&data, HashKind::Md5, &meta).as_deref(), Some("x"));
        assert_eq!(state.get(&data, HashKind::LegacyMd5Dos2Unix, &meta), None);
        fs::write(&data, "three").unwrap();
        let meta = fs::metadata(&data).unwrap();
        assert_eq!(state.get(&data, HashKind::Md5, &meta), None);
    }

    #[test]
    fn a_damaged_index_is_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("state"), "orchard-state 1\nm\tbad\n\0\0").unwrap();
        let state = State::load(dir.path().join("state"));
        assert!(state.entries.lock().unwrap().is_empty());
    }
}
