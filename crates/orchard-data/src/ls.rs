//! `ls`: the files of a tracked directory as recorded (from its `.dir` listing), or a tracked file.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::hash::Oid;
use crate::repo::Repo;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Listed {
    pub path: String,
    pub md5: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

pub fn ls(repo: &Repo, cwd: &Path, target: &Path) -> Result<Vec<Listed>> {
    let files = repo.dvc_files()?;
    let selected = repo.select(&files, cwd, &[PathBuf::from(target)])?;
    let mut out = Vec::new();
    for t in selected {
        let o = repo.out(&files, &t);
        let Some(oid) = &o.oid else { continue };
        if !oid.is_dir() {
            out.push(Listed {
                path: t.rel.clone(),
                md5: oid.value.clone(),
                size: o.size,
            });
            continue;
        }
        let entries = repo.cache.load_dir(oid).map_err(|_| {
            DataError::Invalid(format!(
                "the listing of '{}' ({}) is not in the cache; run `orchard data fetch {}` first",
                t.rel, oid.value, t.rel
            ))
        })?;
        for e in entries {
            let child = Oid::new(oid.kind, &e.md5);
            let size = std::fs::metadata(repo.cache.path(&child)).ok().map(|m| m.len());
            out.push(Listed {
                path: format!("{}/{}", t.rel, e.relpath),
                md5: e.md5,
                size,
            });
        }
    }
    Ok(out)
}
