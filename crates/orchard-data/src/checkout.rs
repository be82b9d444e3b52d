//! `checkout`: make the workspace match the `.dvc` files, linking objects out of the cache.
//!
//! Nothing is changed until every planned change has been checked: files that would be overwritten or
//! deleted must have their current content in the cache (or `--force`), so no unsaved work is lost. Every
//! object is verified before it is linked; a missing or corrupt one fails its output, which is reported.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::cache::Check;
use crate::error::{DataError, Result};
use crate::fsutil;
use crate::hash::{HashKind, Oid};
use crate::progress::Progress;
use crate::repo::{Repo, Tracked};
use crate::workspace;

/// What a checkout changed, per output (`A`dded, `M`odified, `D`eleted) and per file.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CheckoutReport {
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub deleted: Vec<String>,
    pub files_added: u64,
    pub files_modified: u64,
    pub files_deleted: u64,
    /// Outputs that could not be checked out (object missing or corrupt in the cache).
    pub failed: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Create,
    Replace,
}

struct Plan {
    /// (object, destination, exec, what it is) for each file to write.
    writes: Vec<(Oid, PathBuf, bool, Op)>,
    /// Files to remove (extra files in a tracked folder).
    removes: Vec<PathBuf>,
    /// Exec-bit fixes only.
    chmods: Vec<(PathBuf, bool)>,
    /// Per output: was it absent before, and did anything change.
    outputs: Vec<(String, bool, bool, bool)>,
    failed: Vec<String>,
}

pub fn checkout(
    repo: &Repo,
    cwd: &Path,
    targets: &[PathBuf],
    force: bool,
    relink: bool,
    allow_missing: bool,
    show_progress: bool,
) -> Result<CheckoutReport> {
    let files = repo.dvc_files()?;
    let selected = repo.select(&files, cwd, targets)?;
    checkout_outputs(repo, &files, &selected, force, relink, allow_missing, show_progress)
}

pub fn checkout_outputs(
    repo: &Repo,
    files: &[crate::dvcfile::DvcFile],
    selected: &[Tracked],
    force: bool,
    relink: bool,
    allow_missing: bool,
    show_progress: bool,
) -> Result<CheckoutReport> {
    let mut plan = Plan {
        writes: Vec::new(),
        removes: Vec::new(),
        chmods: Vec::new(),
        outputs: Vec::new(),
        failed: Vec::new(),
    };
    let mut unsaved = Vec::new();
    for t in selected {
        let out = repo.out(files, t);
        let Some(oid) = &out.oid else { continue };
        if !out.cache {
            continue;
        }
        plan_output(repo, t, oid, out.isexec, relink, &mut plan, &mut unsaved)?;
    }
    if !force && !unsaved.is_empty() {
        return Err(DataError::Unsaved(unsaved));
    }

    // Verify the objects once each (in parallel), then write.
    let mut unique: Vec<Oid> = plan.writes.iter().map(|w| w.0.clone()).collect();
    unique.sort();
    unique.dedup();
    let checks: HashMap<Oid, Check> = unique
        .par_iter()
        .map(|o| Ok((o.clone(), repo.cache.check(o)?)))
        .collect::<Result<_>>()?;

    let progress = Progress::new("Checkout", plan.writes.len() as u64, show_progress);
    for p in &plan.removes {
        fsutil::remove_path(p).map_err(|e| DataError::Io {
            path: p.clone(),
            source: e,
        })?;
        repo.state.forget(p);
    }
    let bad: Vec<Option<PathBuf>> = plan
        .writes
        .par_iter()
        .map(|(oid, dest, exec, _)| {
            if checks.get(oid) != Some(&Check::Ok) {
                return Ok(Some(dest.clone()));
            }
            repo.cache.link_out(oid, dest, *exec)?;
            progress.inc(fs::metadata(dest).map(|m| m.len()).unwrap_or(0));
            Ok(None)
        })
        .collect::<Result<_>>()?;
    for (p, exec) in &plan.chmods {
        fsutil::set_exec(p, *exec).map_err(|e| DataError::Io {
            path: p.clone(),
            source: e,
        })?;
    }
    progress.finish();

    let bad: Vec<PathBuf> = bad.into_iter().flatten().collect();
    let mut report = CheckoutReport::default();
    for (oid, dest, _, op) in &plan.writes {
        if bad.contains(dest) {
            continue;
        }
        let _ = oid;
        match op {
            Op::Create => report.files_added += 1,
            Op::Replace => report.files_modified += 1,
        }
    }
    report.files_deleted = plan.removes.len() as u64;
    let failed_outputs: Vec<String> = selected
        .iter()
        .filter(|t| bad.iter().any(|b| b.starts_with(&t.abs)))
        .map(|t| t.rel.clone())
        .chain(plan.failed.iter().cloned())
        .collect();
    for (rel, absent, changed, is_dir) in &plan.outputs {
        if failed_outputs.contains(rel) {
            continue;
        }
        let shown = if *is_dir { format!("{rel}/") } else { rel.clone() };
        if *absent {
            report.added.push(shown);
        } else if *changed {
            report.modified.push(shown);
        }
    }
    report.failed = failed_outputs;
    repo.close();
    if !report.failed.is_empty() && !allow_missing {
        return Err(DataError::CheckoutFailed(report.failed));
    }
    Ok(report)
}

fn plan_output(
    repo: &Repo,
    t: &Tracked,
    oid: &Oid,
    isexec: bool,
    relink: bool,
    plan: &mut Plan,
    unsaved: &mut Vec<String>,
) -> Result<()> {
    let current = fs::metadata(&t.abs).ok();
    let absent = current.is_none();
    if !oid.is_dir() {
        let mut write = true;
        let mut chmod = false;
        if let Some(meta) = &current {
            if meta.is_file() {
                let md5 = workspace::hash_one(&t.abs, meta, oid.kind, &repo.state)?;
                if md5 == oid.digest() {
                    if !relink {
                        write = false;
                        chmod = fsutil::is_exec(meta) != isexec;
                    }
                } else if !saved(repo, &md5) {
                    unsaved.push(t.rel.clone());
                }
            } else {
                // A folder where a file should be: every file in it must be saved (link_out removes it).
                for f in workspace::walk(&repo.root, &t.abs)? {
                    let md5 = workspace::hash_one(&f.abs, &f.meta, HashKind::Md5, &repo.state)?;
                    if !saved(repo, &md5) {
                        unsaved.push(repo.rel(&f.abs));
                    }
                }
            }
        }
        if write {
            let op = if absent { Op::Create } else { Op::Replace };
            plan.writes.push((oid.clone(), t.abs.clone(), isexec, op));
        }
        if chmod {
            plan.chmods.push((t.abs.clone(), isexec));
        }
        plan.outputs.push((t.rel.clone(), absent, write || chmod, false));
        return Ok(());
    }

    // A directory: the listing says what must be there.
    if repo.cache.check(oid)? != Check::Ok {
        plan.failed.push(t.rel.clone());
        return Ok(());
    }
    let entries = repo.cache.load_dir(oid)?;
    let mut have: BTreeMap<String, (PathBuf, fs::Metadata)> = BTreeMap::new();
    match &current {
        Some(meta) if meta.is_dir() => {
            for f in workspace::walk(&repo.root, &t.abs)? {
                have.insert(f.relpath, (f.abs, f.meta));
            }
        }
        Some(_) => {
            // A file where a folder should be.
            let md5 = workspace::hash_one(&t.abs, current.as_ref().unwrap(), HashKind::Md5, &repo.state)?;
            if !saved(repo, &md5) {
                unsaved.push(t.rel.clone());
            }
            plan.removes.push(t.abs.clone());
        }
        None => {}
    }
    // Hash what is there (in parallel, state-assisted) to find what differs.
    let existing: Vec<(&String, &(PathBuf, fs::Metadata))> = have.iter().collect();
    let md5s: Vec<String> = existing
        .par_iter()
        .map(|(_, (abs, meta))| workspace::hash_one(abs, meta, oid.kind, &repo.state))
        .collect::<Result<_>>()?;
    let current_md5: HashMap<&String, &String> =
        existing.iter().map(|(k, _)| *k).zip(md5s.iter()).collect();
    let mut changed = false;
    for e in &entries {
        let dest = t.abs.join(&e.relpath);
        match current_md5.get(&e.relpath) {
            Some(md5) if **md5 == e.md5 && !relink => {}
            Some(md5) => {
                if **md5 != e.md5 && !saved(repo, md5) {
                    unsaved.push(repo.rel(&dest));
                }
                plan.writes.push((Oid::new(oid.kind, &e.md5), dest, false, Op::Replace));
                changed = true;
            }
            None => {
                plan.writes.push((Oid::new(oid.kind, &e.md5), dest, false, Op::Create));
                changed = true;
            }
        }
    }
    let wanted: std::collections::HashSet<&str> =
        entries.iter().map(|e| e.relpath.as_str()).collect();
    for (rel, (abs, _)) in &have {
        if !wanted.contains(rel.as_str()) {
            let md5 = current_md5[rel];
            if !saved(repo, md5) {
                unsaved.push(repo.rel(abs));
            }
            plan.removes.push(abs.clone());
            changed = true;
        }
    }
    if absent && entries.is_empty() {
        // An empty tracked folder still exists after checkout.
        fs::create_dir_all(&t.abs).map_err(|e| DataError::Io {
            path: t.abs.clone(),
            source: e,
        })?;
    }
    plan.outputs.push((t.rel.clone(), absent, changed, true));
    Ok(())
}

/// Whether content with this md5 is safe in the cache (so overwriting the workspace file loses nothing).
fn saved(repo: &Repo, md5: &str) -> bool {
    repo.cache.exists(&Oid::new(HashKind::Md5, md5))
        || repo.cache.exists(&Oid::new(HashKind::LegacyMd5Dos2Unix, md5))
}
