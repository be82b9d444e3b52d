//! `gc`: remove cache (and optionally remote) objects no longer referenced by the workspace, or by any
//! commit of the git history with `--all-commits`.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use crate::dvcfile::DvcFile;
use crate::error::{DataError, Result};
use crate::hash::Oid;
use crate::repo::Repo;
use crate::transfer::{self, Remote};

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GcReport {
    pub removed_from_cache: u64,
    pub removed_from_remote: Option<u64>,
    /// Directories whose listing was missing, so their files could not be kept by name.
    pub missing_listings: Vec<String>,
}

pub struct GcScope {
    pub all_commits: bool,
    pub cloud: bool,
    pub remote: Option<String>,
}

pub async fn gc(repo: &Repo, scope: &GcScope) -> Result<GcReport> {
    let mut report = GcReport::default();
    let mut outs: Vec<Oid> = Vec::new();
    for f in repo.dvc_files()? {
        outs.extend(f.outs.iter().filter_map(|o| o.oid.clone()));
    }
    if scope.all_commits {
        outs.extend(history_oids(&repo.root)?);
    }
    // Keep each output's object and, for a directory, every file its listing names.
    let mut used: HashSet<Oid> = HashSet::new();
    for oid in outs {
        if oid.is_dir() {
            match repo.cache.load_dir(&oid) {
                Ok(entries) => used.extend(entries.iter().map(|e| Oid::new(oid.kind, &e.md5))),
                Err(_) => report.missing_listings.push(oid.value.clone()),
            }
        }
        used.insert(oid);
    }
    if !report.missing_listings.is_empty() && !scope.cloud {
        // DVC asks before losing the files of a directory whose listing it cannot read; refusing is the
        // safe answer without a terminal.
        return Err(DataError::Invalid(format!(
            "Missing cache for directory object(s) {}; the files inside could not be kept. Fetch them first (`orchard data fetch`).",
            report.missing_listings.join(", ")
        )));
    }
    // Listings before files, as DVC does, so an interrupted gc never leaves a listing without its files.
    let mut objects = repo.cache.all_objects();
    objects.sort_by_key(|(o, _)| !o.is_dir());
    for (oid, path) in objects {
        if !used.contains(&oid) {
            std::fs::remove_file(&path).map_err(|e| DataError::Io {
                path: path.clone(),
                source: e,
            })?;
            repo.state.forget(&path);
            report.removed_from_cache += 1;
        }
    }
    if scope.cloud {
        let remote = Remote::open(repo, scope.remote.as_deref())?;
        let mut removed = 0;
        let mut objects = transfer::remote_objects(&remote).await?;
        objects.sort_by_key(|o| !o.is_dir());
        for oid in objects {
            if !used.contains(&oid) {
                transfer::delete_remote_object(&remote, &oid).await?;
                removed += 1;
            }
        }
        report.removed_from_remote = Some(removed);
    }
    repo.close();
    Ok(report)
}

/// The output ids recorded in `.dvc` files of every commit reachable from any ref.
fn history_oids(root: &Path) -> Result<Vec<Oid>> {
    let git = |args: &[&str]| -> Result<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .map_err(|e| DataError::Invalid(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(DataError::Invalid(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mut oids = Vec::new();
    let mut seen_blobs = HashSet::new();
    for commit in git(&["rev-list", "--all"])?.lines() {
        for line in git(&["ls-tree", "-r", commit])?.lines() {
            // "<mode> blob <sha>\t<path>"
            let Some((meta, path)) = line.split_once('\t') else { continue };
            if !path.ends_with(".dvc") {
                continue;
            }
            let Some(sha) = meta.split_whitespace().nth(2) else { continue };
            if !seen_blobs.insert(sha.to_string()) {
                continue;
            }
            let text = git(&["cat-file", "blob", sha])?;
            // A file that does not parse in some old commit cannot name objects we must keep.
            if let Ok(f) = DvcFile::parse(&root.join(path), &text) {
                oids.extend(f.outs.into_iter().filter_map(|o| o.oid));
            }
        }
    }
    Ok(oids)
}
