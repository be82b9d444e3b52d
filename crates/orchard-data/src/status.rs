//! `status`: how the workspace and the cache differ from what the `.dvc` files record, in DVC's terms
//! (`not in cache`, `deleted`, `modified`, `new`).

use std::fs;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::dvcfile::Out;
use crate::error::Result;
use crate::hash::{self, DirEntry, HashKind, Oid};
use crate::progress::Progress;
use crate::repo::Repo;
use crate::workspace;

/// `.dvc` file (relative path) → output path → state, only for outputs that differ.
pub type Status = IndexMap<String, IndexMap<String, &'static str>>;

pub fn status(repo: &Repo, cwd: &Path, targets: &[PathBuf]) -> Result<Status> {
    let files = repo.dvc_files()?;
    let selected = repo.select(&files, cwd, targets)?;
    let mut result = Status::new();
    for t in &selected {
        let out = repo.out(&files, t);
        if let Some(state) = out_status(repo, out, &t.abs)? {
            result
                .entry(repo.rel(&files[t.file].path))
                .or_default()
                .insert(t.rel.clone(), state);
        }
    }
    repo.close();
    Ok(result)
}

fn out_status(repo: &Repo, out: &Out, abs: &Path) -> Result<Option<&'static str>> {
    let meta = fs::metadata(abs).ok();
    // The cache check and the workspace hash are independent: done side by side on two cores.
    let (cached, current) = rayon::join(
        || match &out.oid {
            Some(oid) if out.cache => in_cache(repo, oid).map(Some),
            _ => Ok(None),
        },
        || match (&meta, &out.oid) {
            (Some(m), Some(recorded)) => current_oid(repo, abs, m, recorded.kind).map(Some),
            _ => Ok(None),
        },
    );
    if cached? == Some(false) {
        return Ok(Some("not in cache"));
    }
    let Some(meta) = meta else {
        return Ok(Some("deleted"));
    };
    let (Some(recorded), Some(current)) = (&out.oid, current?) else {
        return Ok(Some("new"));
    };
    if current.value != recorded.value || (meta.is_file() && out.isexec != crate::fsutil::is_exec(&meta)) {
        return Ok(Some("modified"));
    }
    Ok(None)
}

/// The content id the workspace has now at `abs`, hashed the way the recorded id was.
pub fn current_oid(repo: &Repo, abs: &Path, meta: &fs::Metadata, kind: HashKind) -> Result<Oid> {
    if meta.is_file() {
        let md5 = workspace::hash_one(abs, meta, kind, &repo.state)?;
        return Ok(Oid::new(kind, md5));
    }
    let files = workspace::walk(&repo.root, abs)?;
    let md5s = workspace::hash_all(&files, kind, &repo.state, &Progress::hidden())?;
    let mut entries: Vec<DirEntry> = files
        .into_iter()
        .zip(md5s)
        .map(|(f, md5)| DirEntry {
            relpath: f.relpath,
            md5,
        })
        .collect();
    Ok(Oid::new(kind, hash::dir_oid(&hash::dir_listing_bytes(&mut entries))))
}

/// Whether an object (and, for a directory, every file it lists) is in the cache.
pub fn in_cache(repo: &Repo, oid: &Oid) -> Result<bool> {
    if !repo.cache.exists(oid) {
        return Ok(false);
    }
    if oid.is_dir() {
        let entries = match repo.cache.load_dir(oid) {
            Ok(e) => e,
            Err(_) => return Ok(false),
        };
        let oids: Vec<Oid> = entries.iter().map(|e| Oid::new(oid.kind, &e.md5)).collect();
        return Ok(repo.cache.all_present(&oids));
    }
    Ok(true)
}
