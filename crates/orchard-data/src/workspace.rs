//! Reading the workspace: listing a tracked folder the way DVC sees it (`.dvcignore` patterns applied, `.git`
//! and `.dvc` never included) and hashing files in parallel with the state index's help.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{DataError, IoContext, Result};
use crate::fsutil;
use crate::hash::{self, HashKind};
use crate::progress::Progress;
use crate::state::State;

/// Folder names DVC never looks into.
const ALWAYS_IGNORED: [&str; 3] = [".git", ".dvc", ".hg"];

/// A file found under a tracked folder.
#[derive(Clone, Debug)]
pub struct WalkedFile {
    /// Inside the tracked folder, `/`-separated.
    pub relpath: String,
    pub abs: PathBuf,
    pub meta: fs::Metadata,
}

/// Lists the files below `dir` (recursively, sorted by relpath), honouring `.dvcignore` files from `root`
/// down. Symlinks to files count as files, as DVC follows them.
pub fn walk(root: &Path, dir: &Path) -> Result<Vec<WalkedFile>> {
    let mut builder = ignore::WalkBuilder::new(dir);
    builder
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .follow_links(false)
        .add_custom_ignore_filename(".dvcignore")
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && ALWAYS_IGNORED.contains(&e.file_name().to_string_lossy().as_ref()))
        });
    let outer = ancestor_ignores(root, dir)?;
    let mut files = Vec::new();
    for entry in builder.build() {
        let entry = entry.map_err(|e| DataError::Invalid(format!("cannot list {}: {e}", dir.display())))?;
        let path = entry.path();
        if path == dir {
            continue;
        }
        let ft = match entry.file_type() {
            Some(ft) => ft,
            None => continue,
        };
        let meta = if ft.is_symlink() {
            match fs::metadata(path) {
                Ok(m) if m.is_file() => m,
                _ => continue,
            }
        } else if ft.is_file() {
            entry.metadata().map_err(|e| {
                DataError::Invalid(format!("cannot read {}: {e}", path.display()))
            })?
        } else {
            continue;
        };
        if ignored_by(&outer, path, false) {
            continue;
        }
        let rel = path.strip_prefix(dir).unwrap_or(path);
        files.push(WalkedFile {
            relpath: fsutil::posix(rel),
            abs: path.to_path_buf(),
            meta,
        });
    }
    files.sort_by(|a, b| a.relpath.cmp(&b.relpath));
    Ok(files)
}

/// The `.dvcignore` files of `dir`'s ancestors up to the repository root (outermost first); each one's
/// patterns are relative to its own folder, as in git.
fn ancestor_ignores(root: &Path, dir: &Path) -> Result<Vec<ignore::gitignore::Gitignore>> {
    let mut folders = Vec::new();
    let mut cur = dir.parent();
    while let Some(p) = cur {
        if !p.starts_with(root) {
            break;
        }
        folders.push(p.to_path_buf());
        cur = p.parent();
    }
    let mut out = Vec::new();
    for folder in folders.iter().rev() {
        let f = folder.join(".dvcignore");
        if f.is_file() {
            let mut b = ignore::gitignore::GitignoreBuilder::new(folder);
            if let Some(e) = b.add(&f) {
                return Err(DataError::Invalid(format!("{}: {e}", f.display())));
            }
            out.push(
                b.build()
                    .map_err(|e| DataError::Invalid(format!("{}: {e}", f.display())))?,
            );
        }
    }
    Ok(out)
}

fn ignored_by(chain: &[ignore::gitignore::Gitignore], path: &Path, is_dir: bool) -> bool {
    chain
        .iter()
        .any(|g| g.matched_path_or_any_parents(path, is_dir).is_ignore())
}

/// Whether `path` (inside `root`) is ignored by a `.dvcignore` above it.
pub fn is_ignored(root: &Path, path: &Path, is_dir: bool) -> Result<bool> {
    Ok(ignored_by(&ancestor_ignores(root, path)?, path, is_dir))
}

/// Hashes files in parallel; the state index answers for files unchanged since they were last hashed.
pub fn hash_all(
    files: &[WalkedFile],
    kind: HashKind,
    state: &State,
    progress: &Progress,
) -> Result<Vec<String>> {
    files
        .par_iter()
        .map(|f| {
            let md5 = hash_one(&f.abs, &f.meta, kind, state)?;
            progress.inc(f.meta.len());
            Ok(md5)
        })
        .collect()
}

pub fn hash_one(path: &Path, meta: &fs::Metadata, kind: HashKind, state: &State) -> Result<String> {
    if let Some(md5) = state.get(path, kind, meta) {
        return Ok(md5);
    }
    let (md5, _) = hash::hash_file(path, kind).at(path)?;
    state.put(path, kind, meta, &md5);
    Ok(md5)
}
