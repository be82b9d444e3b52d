//! A pipeline in its repository: paths resolved against each stage's `wdir`, dependencies and outputs
//! hashed as DVC hashes them, the DAG between stages, and what changed since `dvc.lock` was written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use orchard_yaml::Node;
use orchard_data::hash::{self, DirEntry, HashKind, Oid};
use orchard_data::{workspace, Repo};

use crate::lock::{HashEntry, Lock, LockEntry};
use crate::spec::{self, ParamsFiles, Pipeline, Stage};
use crate::error::{PipelineError, Result};

pub struct Project {
    pub root: PathBuf,
    pub repo: Repo,
    pub pipeline: Pipeline,
    /// Where params files are read from (the files on disk, or for a dry run the text they would get).
    pub params: ParamsFiles,
}

/// How one dependency, parameter or output differs from the lock, in `dvc status`'s words.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// `changed deps`: path → status, or a params file → key → status.
    Deps(IndexMap<String, DepChange>),
    /// `changed outs`: path → `deleted` / `modified` / `not in cache`.
    Outs(IndexMap<String, &'static str>),
    AlwaysChanged,
    Command,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DepChange {
    Path(&'static str),
    Params(IndexMap<String, &'static str>),
    /// A whole params file that the lock does not have.
    NewFile,
}

impl Change {
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        match self {
            Change::Deps(m) => {
                let mut o = Map::new();
                for (k, v) in m {
                    o.insert(
                        k.clone(),
                        match v {
                            DepChange::Path(s) => json!(s),
                            DepChange::NewFile => json!("new"),
                            DepChange::Params(p) => Value::Object(p.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
                        },
                    );
                }
                json!({ "changed deps": Value::Object(o) })
            }
            Change::Outs(m) => json!({ "changed outs": m }),
            Change::AlwaysChanged => json!("always changed"),
            Change::Command => json!("changed command"),
        }
    }
}

/// A path's content as the lock records it.
pub fn hash_path(repo: &Repo, abs: &Path) -> Result<Option<(Oid, u64, Option<u64>)>> {
    let meta = match std::fs::metadata(abs) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PipelineError::io(abs, e)),
    };
    if meta.is_file() {
        let md5 = workspace::hash_one(abs, &meta, HashKind::Md5, &repo.state)?;
        return Ok(Some((Oid::new(HashKind::Md5, md5), meta.len(), None)));
    }
    let files = workspace::walk(&repo.root, abs)?;
    let md5s = workspace::hash_all(&files, HashKind::Md5, &repo.state, &orchard_data::progress::Progress::hidden())?;
    let size = files.iter().map(|f| f.meta.len()).sum();
    let n = files.len() as u64;
    let mut entries: Vec<DirEntry> =
        files.into_iter().zip(md5s).map(|(f, md5)| DirEntry { relpath: f.relpath, md5 }).collect();
    let oid = Oid::new(HashKind::Md5, hash::dir_oid(&hash::dir_listing_bytes(&mut entries)));
    Ok(Some((oid, size, Some(n))))
}

/// The value of a dotted key in a params tree (`train.lr`), or of a plain key holding dots.
pub fn param_value<'a>(data: &'a Node, key: &str) -> Option<&'a Node> {
    data.as_map().and_then(|m| m.get(key)).or_else(|| data.get_path(key))
}

impl Project {
    pub fn open(root: &Path) -> Result<Project> {
        Project::open_with(root, ParamsFiles::default())
    }

    /// The project with its params files read through `params` (a dry run's params.yaml-to-be).
    pub fn open_with(root: &Path, params: ParamsFiles) -> Result<Project> {
        let repo = Repo::find(root)?;
        let root = repo.root.clone();
        let pipeline = spec::load(&root, &params)?;
        Ok(Project { root, repo, pipeline, params })
    }

    pub fn lock(&self) -> Result<Lock> {
        Lock::load(&self.root)
    }

    pub fn wdir(&self, stage: &Stage) -> PathBuf {
        orchard_data::fsutil::normalize(&self.root.join(&stage.wdir))
    }

    pub fn abs(&self, stage: &Stage, path: &str) -> PathBuf {
        orchard_data::fsutil::normalize(&self.wdir(stage).join(path))
    }

    /// Each stage's upstream stages (those producing one of its dependencies), by index. A dependency
    /// inside a produced folder, or a folder holding a produced path, counts.
    pub fn upstream(&self) -> Result<Vec<Vec<usize>>> {
        let mut producers: Vec<(PathBuf, usize)> = Vec::new();
        let mut seen: HashMap<PathBuf, &str> = HashMap::new();
        for (i, s) in self.pipeline.stages.iter().enumerate() {
            for o in &s.outs {
                let abs = self.abs(s, &o.path);
                if let Some(other) = seen.insert(abs.clone(), &s.name) {
                    return Err(PipelineError::Invalid(format!(
                        "output '{}' is specified in: {other}, {}. Use `dvc remove` with any of the above targets to stop tracking the overlapping output.",
                        o.path, s.name
                    )));
                }
                producers.push((abs, i));
            }
        }
        // Looked up by path rather than compared pairwise (a 1,000-stage pipeline made that a million
        // comparisons): the producers of each path, and of each folder holding produced paths.
        let mut exact: HashMap<&Path, Vec<usize>> = HashMap::new();
        let mut holding: HashMap<&Path, Vec<usize>> = HashMap::new();
        for (p, j) in &producers {
            exact.entry(p.as_path()).or_default().push(*j);
            for a in p.ancestors().skip(1) {
                holding.entry(a).or_default().push(*j);
            }
        }
        let mut up = vec![Vec::new(); self.pipeline.stages.len()];
        for (i, s) in self.pipeline.stages.iter().enumerate() {
            for d in &s.deps {
                let abs = self.abs(s, d);
                // The dep itself or a folder it sits in is produced; or the dep is a folder holding outputs.
                let found = abs.ancestors().filter_map(|a| exact.get(a)).flatten().chain(holding.get(abs.as_path()).into_iter().flatten());
                for &j in found {
                    if j != i && !up[i].contains(&j) {
                        up[i].push(j);
                    }
                }
            }
        }
        for u in &mut up {
            // The order a pairwise scan gave: by stage position.
            u.sort_unstable();
        }
        // A cycle would make repro wait forever: refuse it by name.
        let mut state = vec![0u8; up.len()];
        fn visit(i: usize, up: &[Vec<usize>], state: &mut [u8], names: &[&str]) -> Result<()> {
            match state[i] {
                1 => return Err(PipelineError::Invalid(format!("Pipeline has a cycle involving: {}", names[i]))),
                2 => return Ok(()),
                _ => {}
            }
            state[i] = 1;
            for &j in &up[i] {
                visit(j, up, state, names)?;
            }
            state[i] = 2;
            Ok(())
        }
        let names: Vec<&str> = self.pipeline.stages.iter().map(|s| s.name.as_str()).collect();
        for i in 0..up.len() {
            visit(i, &up, &mut state, &names)?;
        }
        Ok(up)
    }

    /// The stages to consider for `targets` (all when empty), upstream first, as `dvc repro` orders them.
    pub fn plan(&self, targets: &[String], single: bool) -> Result<Vec<usize>> {
        let up = self.upstream()?;
        let mut roots = Vec::new();
        if targets.is_empty() {
            roots.extend(0..self.pipeline.stages.len());
        } else {
            for t in targets {
                let t = t.trim_start_matches("dvc.yaml:");
                let matched: Vec<usize> = self
                    .pipeline
                    .stages
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.name == t || s.name.split('@').next() == Some(t))
                    .map(|(i, _)| i)
                    .collect();
                if matched.is_empty() {
                    return Err(PipelineError::Invalid(format!("'{t}' does not exist")));
                }
                roots.extend(matched);
            }
        }
        let mut order = Vec::new();
        let mut done = vec![false; up.len()];
        fn post(i: usize, up: &[Vec<usize>], done: &mut [bool], order: &mut Vec<usize>, single: bool) {
            if done[i] {
                return;
            }
            done[i] = true;
            if !single {
                for &j in &up[i] {
                    post(j, up, done, order, single);
                }
            }
            order.push(i);
        }
        for r in roots {
            post(r, &up, &mut done, &mut order, single);
        }
        Ok(order)
    }

    fn params_of(&self, stage: &Stage) -> Result<IndexMap<String, Option<Node>>> {
        // File → its data (None when the file does not exist).
        let mut out = IndexMap::new();
        for p in &stage.params {
            let abs = self.abs(stage, &p.file);
            let data = if self.params.exists(&abs) { Some(self.params.load(&abs)?) } else { None };
            out.insert(p.file.clone(), data);
        }
        Ok(out)
    }

    /// The current values of the stage's tracked params, as the lock records them: `params.yaml` first,
    /// then files by path; keys sorted. A missing file or key is an error naming it.
    pub fn current_params(&self, stage: &Stage) -> Result<IndexMap<String, IndexMap<String, Node>>> {
        let data = self.params_of(stage)?;
        let mut files: Vec<&crate::spec::ParamsSpec> = stage.params.iter().collect();
        files.sort_by(|a, b| (a.file != "params.yaml", &a.file).cmp(&(b.file != "params.yaml", &b.file)));
        let mut out = IndexMap::new();
        for p in files {
            let Some(tree) = data.get(&p.file).and_then(Option::as_ref) else {
                return Err(PipelineError::Invalid(format!("Parameters file '{}' does not exist", p.file)));
            };
            let mut values: IndexMap<String, Node> = out.shift_remove(&p.file).unwrap_or_default();
            match &p.keys {
                Some(keys) => {
                    let mut missing = Vec::new();
                    for k in keys {
                        match param_value(tree, k) {
                            Some(v) => {
                                values.insert(k.clone(), v.clone());
                            }
                            None => missing.push(k.as_str()),
                        }
                    }
                    if !missing.is_empty() {
                        return Err(PipelineError::Invalid(format!(
                            "Parameters '{}' are missing from '{}'.",
                            missing.join(", "),
                            p.file
                        )));
                    }
                }
                None => {
                    if let Some(m) = tree.as_map() {
                        values.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                }
            }
            values.sort_keys();
            out.insert(p.file.clone(), values);
        }
        Ok(out)
    }

    /// What differs between the workspace and the stage's lock entry (empty: up to date).
    pub fn changes(&self, stage: &Stage, locked: Option<&LockEntry>) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        let mut deps = IndexMap::new();
        if !stage.frozen {
            for d in &stage.deps {
                let now = hash_path(&self.repo, &self.abs(stage, d))?;
                let was = locked.and_then(|l| l.deps.iter().find(|e| e.path == *d)).and_then(|e| e.md5.clone());
                match (now, was) {
                    (None, _) => {
                        deps.insert(d.clone(), DepChange::Path("deleted"));
                    }
                    (Some((oid, _, _)), Some(was)) if oid.value == was => {}
                    (Some(_), _) => {
                        deps.insert(d.clone(), DepChange::Path("modified"));
                    }
                }
            }
            let data = self.params_of(stage)?;
            for p in &stage.params {
                let was = locked.and_then(|l| l.params.get(&p.file));
                let Some(tree) = data.get(&p.file).and_then(Option::as_ref) else {
                    deps.insert(p.file.clone(), DepChange::Path("deleted"));
                    continue;
                };
                let Some(was) = was else {
                    deps.insert(p.file.clone(), DepChange::NewFile);
                    continue;
                };
                let keys: Vec<String> = match &p.keys {
                    Some(k) => k.clone(),
                    // A whole file: its keys now and the ones locked (a key removed from the file is `deleted`).
                    None => {
                        let mut k: Vec<String> = tree.as_map().map(|m| m.keys().cloned().collect()).unwrap_or_default();
                        k.extend(was.keys().filter(|w| !k.contains(w)).cloned().collect::<Vec<_>>());
                        k
                    }
                };
                let mut per_key = IndexMap::new();
                for k in keys {
                    match (param_value(tree, &k), was.get(&k)) {
                        (None, _) => {
                            per_key.insert(k, "deleted");
                        }
                        (Some(_), None) => {
                            per_key.insert(k, "new");
                        }
                        (Some(a), Some(b)) if !same_value(a, b) => {
                            per_key.insert(k, "modified");
                        }
                        _ => {}
                    }
                }
                if !per_key.is_empty() {
                    deps.insert(p.file.clone(), DepChange::Params(per_key));
                }
            }
        }
        if !deps.is_empty() {
            changes.push(Change::Deps(deps));
        }
        let mut outs = IndexMap::new();
        for o in &stage.outs {
            let abs = self.abs(stage, &o.path);
            let now = hash_path(&self.repo, &abs)?;
            let was = locked.and_then(|l| l.outs.iter().find(|e| e.path == o.path)).and_then(|e| e.md5.clone());
            match (now, was) {
                (None, _) => {
                    outs.insert(o.path.clone(), "deleted");
                }
                (Some((oid, _, _)), Some(was)) if oid.value == was => {
                    if o.cache && !orchard_data::status::in_cache(&self.repo, &oid)? {
                        outs.insert(o.path.clone(), "not in cache");
                    }
                }
                (Some(_), _) => {
                    outs.insert(o.path.clone(), "modified");
                }
            }
        }
        if !outs.is_empty() {
            changes.push(Change::Outs(outs));
        }
        if stage.always_changed {
            changes.push(Change::AlwaysChanged);
        }
        if locked.is_some_and(|l| l.cmd != stage.cmd) {
            changes.push(Change::Command);
        }
        if locked.is_none() && changes.is_empty() {
            // Never run (a stage with no deps and no outs): nothing to compare, so it is due.
            changes.push(Change::Command);
        }
        Ok(changes)
    }

    /// The lock entry describing the workspace now (after a run): deps and outs hashed, params read.
    pub fn entry_now(&self, stage: &Stage, outs: Vec<HashEntry>) -> Result<LockEntry> {
        let mut deps = Vec::new();
        for d in &stage.deps {
            let abs = self.abs(stage, d);
            let (oid, size, nfiles) = hash_path(&self.repo, &abs)?
                .ok_or_else(|| PipelineError::Invalid(format!("dependency '{d}' does not exist")))?;
            deps.push(HashEntry { path: d.clone(), md5: Some(oid.value), size: Some(size), nfiles, isexec: false });
        }
        deps.sort_by(|a, b| a.path.cmp(&b.path));
        let mut outs = outs;
        outs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(LockEntry { cmd: stage.cmd.clone(), deps, params: self.current_params(stage)?, outs })
    }
}

/// Python's `==` between parameter values: 1 == 1.0, and maps compare regardless of key order.
fn same_value(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Int(x), Node::Float(y)) | (Node::Float(y), Node::Int(x)) => (*x as f64) == *y,
        (Node::Map(x), Node::Map(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w))),
        (Node::List(x), Node::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_value(v, w)),
        _ => a == b,
    }
}
