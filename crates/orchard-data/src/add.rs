//! `add` and `commit`: hash data, store it in the cache, record it in a `.dvc` file.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::config::LinkType;
use crate::dvcfile::{DvcFile, Out};
use crate::error::{DataError, Result};
use crate::fsutil;
use crate::hash::{self, DirEntry, HashKind, Oid};
use crate::progress::Progress;
use crate::repo::Repo;
use crate::workspace;

/// What adding one path produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Added {
    /// The `.dvc` file written, relative to the repository root.
    pub dvc_file: String,
    pub path: String,
    pub md5: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfiles: Option<u64>,
    /// The `.gitignore` changed, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gitignore: Option<String>,
}

/// The content of an output after it was stored in the cache.
pub struct Built {
    pub oid: Oid,
    pub size: u64,
    pub nfiles: Option<u64>,
    pub isexec: bool,
}

/// `add PATH...`: each path gets (or updates) the `.dvc` file beside it.
pub fn add(repo: &Repo, cwd: &Path, targets: &[PathBuf], show_progress: bool) -> Result<Vec<Added>> {
    let files = repo.dvc_files()?;
    let tracked = repo.tracked(&files)?;
    let mut results = Vec::new();
    for target in targets {
        let abs = repo.resolve(cwd, target)?;
        let rel = repo.rel(&abs);
        let name = abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".dvc") || name == "dvc.yaml" || name == "dvc.lock" {
            return Err(DataError::DvcFileAsOutput(rel));
        }
        let meta = match fs::symlink_metadata(&abs) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DataError::OutputMissing(rel))
            }
            Err(e) => {
                return Err(DataError::Io {
                    path: abs.clone(),
                    source: e,
                })
            }
        };
        let meta = if meta.file_type().is_symlink() {
            fs::metadata(&abs).map_err(|_| DataError::NotFileOrDir(rel.clone()))?
        } else {
            meta
        };
        if !meta.is_file() && !meta.is_dir() {
            return Err(DataError::NotFileOrDir(rel));
        }
        if workspace::is_ignored(&repo.root, &abs, meta.is_dir())? {
            return Err(DataError::Ignored(rel));
        }
        // Reuse the .dvc file that already tracks this exact path; refuse overlaps with other outputs.
        let mut existing: Option<(usize, usize)> = None;
        for t in &tracked {
            if t.abs == abs {
                existing = Some((t.file, t.out));
            } else if abs.starts_with(&t.abs) || t.abs.starts_with(&abs) {
                return Err(DataError::Overlap {
                    path: rel,
                    other: t.rel.clone(),
                });
            }
        }
        let built = build(repo, &abs, &rel, show_progress)?;
        let (mut file, out_index) = match existing {
            Some((fi, oi)) => (files[fi].clone(), oi),
            None => {
                let path = abs.with_file_name(format!("{name}.dvc"));
                let out = Out {
                    path: name.clone(),
                    oid: None,
                    size: None,
                    nfiles: None,
                    isexec: false,
                    cache: true,
                    push: true,
                    remote: None,
                };
                (DvcFile::new(path, out), 0)
            }
        };
        let out = &mut file.outs[out_index];
        out.oid = Some(built.oid.clone());
        out.size = Some(built.size);
        out.nfiles = built.nfiles;
        out.isexec = built.isexec;
        file.save()?;
        let gitignore = repo.gitignore(&abs)?;
        results.push(Added {
            dvc_file: repo.rel(&file.path),
            path: rel,
            md5: built.oid.value,
            size: built.size,
            nfiles: built.nfiles,
            gitignore: gitignore.map(|g| repo.rel(&g)),
        });
    }
    if repo.autostage() {
        let mut paths: Vec<PathBuf> = Vec::new();
        for a in &results {
            paths.push(repo.root.join(&a.dvc_file));
            paths.extend(a.gitignore.iter().map(|g| repo.root.join(g)));
        }
        repo.git_add(&paths)?;
    }
    repo.close();
    Ok(results)
}

/// Hashes a file or folder and stores it in the cache (always as DVC 3 `md5`).
pub fn build(repo: &Repo, abs: &Path, rel: &str, show_progress: bool) -> Result<Built> {
    let meta = fs::metadata(abs).map_err(|e| DataError::Io {
        path: abs.to_path_buf(),
        source: e,
    })?;
    let symlinked = repo.config.link_types()?.first() == Some(&LinkType::Symlink);
    if meta.is_file() {
        let progress = Progress::new("Adding", 1, show_progress);
        let known = repo.state.get(abs, HashKind::Md5, &meta);
        let (md5, size) = repo.cache.ingest(abs, known.as_deref())?;
        let oid = Oid::new(HashKind::Md5, md5);
        record(repo, abs, &meta, &oid, symlinked)?;
        progress.inc(size);
        return Ok(Built {
            oid,
            size,
            nfiles: None,
            isexec: fsutil::is_exec(&meta),
        });
    }
    let files = workspace::walk(&repo.root, abs)?;
    if files.is_empty() {
        eprintln!("WARNING: '{rel}' is empty.");
    }
    let progress = Progress::new("Adding", files.len() as u64, show_progress);
    let hashed: Vec<(String, u64)> = files
        .par_iter()
        .map(|f| {
            let known = repo.state.get(&f.abs, HashKind::Md5, &f.meta);
            let (md5, size) = repo.cache.ingest(&f.abs, known.as_deref())?;
            record(repo, &f.abs, &f.meta, &Oid::new(HashKind::Md5, &md5), symlinked)?;
            progress.inc(size);
            Ok((md5, size))
        })
        .collect::<Result<_>>()?;
    let size = hashed.iter().map(|(_, s)| s).sum();
    let mut entries: Vec<DirEntry> = files
        .iter()
        .zip(&hashed)
        .map(|(f, (md5, _))| DirEntry {
            relpath: f.relpath.clone(),
            md5: md5.clone(),
        })
        .collect();
    let listing = hash::dir_listing_bytes(&mut entries);
    let oid = Oid::new(HashKind::Md5, hash::dir_oid(&listing));
    repo.cache.add_bytes(&oid, &listing)?;
    progress.finish();
    Ok(Built {
        oid,
        size,
        nfiles: Some(files.len() as u64),
        isexec: false,
    })
}

/// Remembers a workspace file's hash in the state index (and makes it a symlink when `cache.type` says so).
fn record(repo: &Repo, abs: &Path, meta: &fs::Metadata, oid: &Oid, symlinked: bool) -> Result<()> {
    if symlinked {
        repo.cache.link_out(oid, abs, false)?;
    } else {
        // The stamps from before the ingest still hold: reading, hardlinking or chmod-ing a file leaves its
        // inode, size and mtime as they were.
        repo.state.put(abs, HashKind::Md5, meta, oid.digest());
    }
    Ok(())
}

/// `commit [TARGETS]`: records the current workspace content of tracked outputs that changed. Like DVC
/// without a terminal to ask on, a changed output needs `force`.
pub fn commit(
    repo: &Repo,
    cwd: &Path,
    targets: &[PathBuf],
    force: bool,
    show_progress: bool,
) -> Result<Vec<Added>> {
    let mut files = repo.dvc_files()?;
    let selected = repo.select(&files, cwd, targets)?;
    let mut results = Vec::new();
    for t in selected {
        let out = files[t.file].outs[t.out].clone();
        if !out.cache && out.oid.is_some() {
            continue;
        }
        if !t.abs.exists() {
            return Err(DataError::OutputMissing(t.rel.clone()));
        }
        let built = build(repo, &t.abs, &t.rel, show_progress)?;
        let changed = out.oid.as_ref().map(|o| o.value.as_str()) != Some(built.oid.value.as_str())
            || out.isexec != built.isexec;
        if changed && !force && out.oid.is_some() {
            return Err(DataError::Invalid(format!(
                "unable to commit changed stage: '{}'. Use `-f|--force` to force.",
                repo.rel(&files[t.file].path)
            )));
        }
        let file = &mut files[t.file];
        let o = &mut file.outs[t.out];
        o.oid = Some(built.oid.clone());
        o.size = Some(built.size);
        o.nfiles = built.nfiles;
        o.isexec = built.isexec;
        file.save()?;
        results.push(Added {
            dvc_file: repo.rel(&file.path),
            path: t.rel.clone(),
            md5: built.oid.value,
            size: built.size,
            nfiles: built.nfiles,
            gitignore: None,
        });
    }
    repo.close();
    Ok(results)
}
