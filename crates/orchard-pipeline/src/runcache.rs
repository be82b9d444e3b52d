//! DVC's run cache: `.dvc/cache/runs/<key[:2]>/<key>/<value>`, where the key names a stage's inputs (command,
//! dependencies, params and the output paths) and the value its full lock entry. A stage seen before with the
//! same inputs gets its outputs back from the cache instead of running again — and `dvc` reads the same
//! entries, since both hashes are computed as DVC computes them (sha256 of Python's sorted `json.dumps`).

use std::path::PathBuf;

use orchard_data::hash::{HashKind, Oid};
use sha2::{Digest, Sha256};

use crate::lock::{self, LockEntry};
use crate::project::Project;
use crate::spec::{OutKind, Stage};
use crate::error::{PipelineError, Result};

/// Whether DVC would cache the stage: it needs deps and outs, must not always change, and its outputs must
/// all be cached and not persisted (metrics and plots may opt out of the cache).
pub fn cacheable(stage: &Stage) -> bool {
    !stage.deps.is_empty()
        && !stage.outs.is_empty()
        && !stage.always_changed
        && stage.outs.iter().all(|o| !o.persist && (o.cache || o.kind != OutKind::Out))
}


/// The entry as DVC hashes it: sizes and file counts left out; outputs as paths only for the key.
fn hashed(e: &LockEntry, outs_as_paths: bool) -> String {
    use serde_json::{json, Map, Value};
    let mut m = Map::new();
    m.insert(
        "cmd".into(),
        match &e.cmd {
            crate::spec::Cmd::One(s) => json!(s),
            crate::spec::Cmd::List(v) => json!(v),
        },
    );
    let files = |items: &[lock::HashEntry]| -> Value {
        Value::Array(
            items
                .iter()
                .map(|h| {
                    let mut o = Map::new();
                    o.insert("path".into(), json!(h.path));
                    if let Some(md5) = &h.md5 {
                        o.insert("hash".into(), json!("md5"));
                        o.insert("md5".into(), json!(md5));
                    }
                    if h.isexec {
                        o.insert("isexec".into(), json!(true));
                    }
                    Value::Object(o)
                })
                .collect(),
        )
    };
    if !e.deps.is_empty() {
        m.insert("deps".into(), files(&e.deps));
    }
    if !e.params.is_empty() {
        let p: Map<String, Value> = e
            .params
            .iter()
            .map(|(f, kv)| (f.clone(), Value::Object(kv.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())))
            .collect();
        m.insert("params".into(), Value::Object(p));
    }
    if !e.outs.is_empty() {
        let outs = if outs_as_paths { json!(e.outs.iter().map(|o| o.path.clone()).collect::<Vec<_>>()) } else { files(&e.outs) };
        m.insert("outs".into(), outs);
    }
    let mut text = String::new();
    text.push_str(&orchard_yaml::python::json_dumps(&Value::Object(m), true));
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn key_dir(project: &Project, e: &LockEntry) -> PathBuf {
    let key = hashed(e, true);
    project.repo.config.cache_dir().join("runs").join(&key[..2]).join(key)
}

/// Where a finished stage's entry goes and its text, or None when the same run is recorded already.
pub fn entry_file(project: &Project, e: &LockEntry) -> Option<(PathBuf, String)> {
    let path = key_dir(project, e).join(hashed(e, false));
    if path.exists() {
        return None;
    }
    let mut text = String::new();
    lock::write_entry(e, 0, &mut text);
    Some((path, text))
}

/// Writes an entry (whole or not at all; write_atomic makes the key's folder).
pub fn write(path: &std::path::Path, text: &str) -> Result<()> {
    orchard_data::fsutil::write_atomic(path, text.as_bytes()).map_err(PipelineError::Data)
}

/// The newest recorded run for these inputs whose outputs are all in the cache.
pub fn lookup(project: &Project, inputs: &LockEntry) -> Result<Option<LockEntry>> {
    let dir = key_dir(project, inputs);
    let Ok(listing) = std::fs::read_dir(&dir) else { return Ok(None) };
    let mut runs: Vec<(std::time::SystemTime, PathBuf)> = listing
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    runs.sort();
    for (_, path) in runs.into_iter().rev() {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(entry) = lock::parse_entry(&text) else { continue };
        let mut all = true;
        for o in &entry.outs {
            let Some(md5) = &o.md5 else { all = false; break };
            if !orchard_data::status::in_cache(&project.repo, &Oid::new(HashKind::Md5, md5.clone()))? {
                all = false;
                break;
            }
        }
        if all {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}

/// Puts a recorded run's outputs in the workspace from the cache.
pub fn restore(project: &Project, stage: &Stage, e: &LockEntry) -> Result<()> {
    let cache = &project.repo.cache;
    for o in &e.outs {
        let Some(md5) = &o.md5 else { continue };
        let oid = Oid::new(HashKind::Md5, md5.clone());
        let dest = project.abs(stage, &o.path);
        if dest.exists() {
            orchard_data::fsutil::remove_path(&dest).map_err(|err| PipelineError::io(&dest, err))?;
        }
        if oid.is_dir() {
            for f in cache.load_dir(&oid)? {
                cache.link_out(&Oid::new(HashKind::Md5, f.md5.clone()), &dest.join(&f.relpath), false)?;
            }
            std::fs::create_dir_all(&dest).map_err(|err| PipelineError::io(&dest, err))?;
        } else {
            cache.link_out(&oid, &dest, o.isexec)?;
        }
    }
    Ok(())
}

