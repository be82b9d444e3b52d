//! `dvc.yaml`: stages with `cmd`, `wdir`, `deps`, `params`, `outs`, `metrics`, `plots`, `frozen`,
//! `always_changed`, `desc`, `meta`, `vars`; `foreach`/`do` and `matrix` expansion; `vars` and `${…}`
//! interpolation — validated as strictly as DVC validates it, so a file Orchard accepts is one `dvc` accepts.
//!
//! Orchard's own settings live where DVC allows anything: `meta: {orchard: {retries, retry_delay, timeout}}`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use orchard_yaml::python::{self, Booleans};
use orchard_yaml::Node;

use crate::error::{PipelineError, Result};

pub const FILE_NAME: &str = "dvc.yaml";

/// A stage's command: DVC keeps the form it was written in (and compares it that way).
#[derive(Clone, Debug, PartialEq)]
pub enum Cmd {
    One(String),
    List(Vec<String>),
}

impl Cmd {
    /// The command lines run one after the other (a multi-line string is one line per line, as DVC runs it).
    pub fn lines(&self) -> Vec<String> {
        match self {
            Cmd::One(s) => s.lines().map(str::to_string).filter(|l| !l.trim().is_empty()).collect(),
            Cmd::List(v) => v.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutKind {
    Out,
    Metric,
    Plot,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OutSpec {
    /// As written, relative to the stage's `wdir`.
    pub path: String,
    pub kind: OutKind,
    pub cache: bool,
    pub persist: bool,
}

/// Tracked parameters of one file: the listed keys, or the whole file.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamsSpec {
    pub file: String,
    pub keys: Option<Vec<String>>,
}

/// Orchard's extensions, from `meta.orchard`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RetryPolicy {
    pub retries: u32,
    pub retry_delay: Duration,
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: String,
    pub cmd: Cmd,
    /// Relative to the folder of `dvc.yaml`, `/`-separated (`.` when not given).
    pub wdir: String,
    pub deps: Vec<String>,
    pub params: Vec<ParamsSpec>,
    pub outs: Vec<OutSpec>,
    pub frozen: bool,
    pub always_changed: bool,
    pub desc: Option<String>,
    pub policy: RetryPolicy,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub stages: Vec<Stage>,
}

impl Pipeline {
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

const TOP_KEYS: [&str; 7] = ["stages", "vars", "params", "metrics", "plots", "artifacts", "datasets"];
const STAGE_KEYS: [&str; 12] =
    ["cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "frozen", "always_changed", "desc", "meta", "vars"];
const OUT_KEYS: [&str; 9] = ["cache", "persist", "remote", "push", "desc", "type", "labels", "meta", "checkpoint"];

fn invalid(reason: String) -> PipelineError {
    PipelineError::Invalid(format!("'{FILE_NAME}' validation failed.\n\n{reason}"))
}

fn extra_key(path: &[&str]) -> PipelineError {
    invalid(format!("extra keys not allowed, in {}", path.join(" -> ")))
}

/// Reads `dvc.yaml` in `dir` (with `params.yaml` and `vars` files relative to it, read through `params`).
pub fn load(dir: &Path, params: &ParamsFiles) -> Result<Pipeline> {
    let path = dir.join(FILE_NAME);
    let text = std::fs::read_to_string(&path).map_err(|e| PipelineError::io(&path, e))?;
    parse(&text, dir, params)
}

pub fn parse(text: &str, dir: &Path, params: &ParamsFiles) -> Result<Pipeline> {
    let doc = orchard_yaml::parse(text)
        .map_err(|e| PipelineError::Invalid(format!("'{FILE_NAME}' is invalid.\n\n{e}")))?;
    let doc = match doc {
        Node::Map(m) => m,
        Node::Null => IndexMap::new(),
        other => return Err(invalid(format!("expected a dictionary, got {}", other.kind()))),
    };
    for key in doc.keys() {
        if !TOP_KEYS.contains(&key.as_str()) {
            return Err(extra_key(&[key]));
        }
    }
    let mut context = Node::empty_map();
    let default_params = dir.join("params.yaml");
    if params.exists(&default_params) {
        merge_vars(&mut context, params.load(&default_params)?, "params.yaml")?;
    }
    if let Some(vars) = doc.get("vars") {
        load_vars(&mut context, vars, dir, params)?;
    }
    let mut stages = Vec::new();
    match doc.get("stages") {
        None | Some(Node::Null) => {}
        Some(Node::Map(defs)) => {
            for (name, def) in defs {
                expand(name, def, &context, dir, params, &mut stages)?;
            }
        }
        Some(other) => return Err(invalid(format!("expected a dictionary for stages, got {}", other.kind()))),
    }
    Ok(Pipeline { stages })
}

/// Where params and vars files are read from: the files on disk, except those given here as text.
/// `orchard repro --dry` composes the config with its overrides into the `params.yaml` it would write and
/// checks the stages against that text without writing anything: every reader of params (vars, the stages'
/// params, the lock) goes through the same `ParamsFiles`, which the project carries.
#[derive(Clone, Debug, Default)]
pub struct ParamsFiles {
    overlay: Vec<(PathBuf, String)>,
}

impl ParamsFiles {
    /// The files on disk, with `path` read as `text` instead.
    pub fn with(mut self, path: &Path, text: String) -> ParamsFiles {
        self.overlay.retain(|(p, _)| p != path);
        self.overlay.push((path.to_path_buf(), text));
        self
    }

    fn text(&self, path: &Path) -> Option<&str> {
        self.overlay.iter().find(|(p, _)| p == path).map(|(_, t)| t.as_str())
    }

    /// Whether a params file exists, as [`ParamsFiles::load`] sees it.
    pub fn exists(&self, path: &Path) -> bool {
        path.is_file() || self.text(path).is_some()
    }

    /// A params / vars file: YAML (JSON is YAML too).
    pub fn load(&self, path: &Path) -> Result<Node> {
        let text = match self.text(path) {
            Some(t) => t.to_string(),
            None => std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?,
        };
        orchard_yaml::parse(&text)
            .map_err(|e| PipelineError::Invalid(format!("unable to read parameters from '{}': {e}", path.display())))
    }
}

fn merge_vars(context: &mut Node, incoming: Node, source: &str) -> Result<()> {
    let (Node::Map(into), Node::Map(from)) = (context, incoming) else {
        return Err(PipelineError::Invalid(format!("vars from '{source}' must be a dictionary")));
    };
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Node::Map(a)), Node::Map(b)) => {
                let mut sub = Node::Map(std::mem::take(a));
                merge_vars(&mut sub, Node::Map(b), source)?;
                *a = match sub {
                    Node::Map(m) => m,
                    _ => unreachable!("merge keeps a map a map"),
                };
            }
            (Some(_), _) => {
                return Err(PipelineError::Invalid(format!(
                    "failed to parse 'vars' in '{FILE_NAME}': Cannot overwrite '{k}' while merging '{source}'"
                )))
            }
            (None, v) => {
                into.insert(k, v);
            }
        }
    }
    Ok(())
}

fn load_vars(context: &mut Node, vars: &Node, dir: &Path, params: &ParamsFiles) -> Result<()> {
    let items = match vars {
        Node::List(items) => items.clone(),
        other => vec![other.clone()],
    };
    for item in items {
        match item {
            Node::Str(spec) => {
                if spec.contains("${") {
                    return Err(PipelineError::Invalid(format!(
                        "failed to parse 'vars' in '{FILE_NAME}': interpolating is not allowed: '{spec}'"
                    )));
                }
                let (file, keys) = match spec.split_once(':') {
                    Some((f, k)) => (f, Some(k.split(',').map(str::trim).collect::<Vec<_>>())),
                    None => (spec.as_str(), None),
                };
                let mut data = params.load(&dir.join(file))?;
                if let Some(keys) = keys {
                    let mut picked = IndexMap::new();
                    for k in keys {
                        let v = data
                            .get_path(k)
                            .cloned()
                            .ok_or_else(|| PipelineError::Invalid(format!("could not find '{k}' in '{file}'")))?;
                        picked.insert(k.to_string(), v);
                    }
                    data = Node::Map(picked);
                }
                merge_vars(context, data, file)?;
            }
            map @ Node::Map(_) => merge_vars(context, map, "vars")?,
            other => {
                return Err(invalid(format!("expected a file name or a dictionary in vars, got {}", other.kind())))
            }
        }
    }
    Ok(())
}

/// Python's `str()` of a value, as DVC puts it inside a longer string (booleans lower-case, as DVC does).
fn python_str(node: &Node) -> Option<String> {
    match node {
        Node::Missing => None,
        n => python::scalar_str(n, Booleans::Lower),
    }
}

/// Looks up `a.b`, `a[0]`, `a.b[1].c` in the context.
fn select<'a>(context: &'a Node, expr: &str) -> Option<&'a Node> {
    let mut cur = context;
    for part in expr.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = cur.as_map()?.get(key)?;
        }
        let mut rest = rest;
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            let index: usize = stripped[..end].trim().parse().ok()?;
            cur = match cur {
                Node::List(items) => items.get(index)?,
                _ => return None,
            };
            rest = &stripped[end + 1..];
        }
    }
    Some(cur)
}

/// Interpolates `${…}` in a string: the whole string `${x}` keeps x's type; inside text, values are
/// written as Python's `str()`. `\${` is a literal `${`.
fn interpolate_str(s: &str, context: &Node, at: &str) -> Result<Node> {
    let fail = |m: String| PipelineError::Invalid(format!("failed to parse '{at}' in '{FILE_NAME}': {m}"));
    let trimmed = s.trim();
    if trimmed.starts_with("${") && trimmed.ends_with('}') && trimmed.matches("${").count() == 1 && s == trimmed {
        let expr = trimmed[2..trimmed.len() - 1].trim();
        return select(context, expr).cloned().ok_or_else(|| fail(format!("Could not find '{expr}'")));
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if i > 0 && rest.as_bytes()[i - 1] == b'\\' {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or_else(|| fail(format!("unclosed interpolation in '{s}'")))? + i;
        let expr = rest[i + 2..end].trim();
        let value = select(context, expr).ok_or_else(|| fail(format!("Could not find '{expr}'")))?;
        let text = python_str(value)
            .ok_or_else(|| fail(format!("Cannot interpolate data of type '{}'", py_type(value))))?;
        out.push_str(&text);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(Node::Str(out))
}

fn py_type(n: &Node) -> &'static str {
    match n {
        Node::Map(_) => "dict",
        Node::List(_) => "list",
        _ => "object",
    }
}

fn interpolate(node: &Node, context: &Node, at: &str) -> Result<Node> {
    Ok(match node {
        Node::Str(s) if s.contains("${") => interpolate_str(s, context, at)?,
        Node::Map(m) => {
            let mut out = IndexMap::new();
            for (k, v) in m {
                let key = match interpolate_str(k, context, at)? {
                    Node::Str(s) => s,
                    other => python_str(&other).unwrap_or_default(),
                };
                out.insert(key, interpolate(v, context, &format!("{at}.{k}"))?);
            }
            Node::Map(out)
        }
        Node::List(items) => Node::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| interpolate(v, context, &format!("{at}[{i}]")))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

fn with_vars(context: &Node, extra: Vec<(&str, Node)>) -> Node {
    let mut c = context.clone();
    if let Node::Map(m) = &mut c {
        for (k, v) in extra {
            m.insert(k.to_string(), v);
        }
    }
    c
}

fn expand(name: &str, def: &Node, context: &Node, dir: &Path, params: &ParamsFiles, stages: &mut Vec<Stage>) -> Result<()> {
    let map = def.as_map().ok_or_else(|| invalid(format!("expected a dictionary, in stages -> {name}")))?;
    if let Some(foreach) = map.get("foreach") {
        for key in map.keys() {
            if key != "foreach" && key != "do" {
                return Err(extra_key(&["stages", name, key]));
            }
        }
        let body = map.get("do").ok_or_else(|| invalid(format!("required key not provided, in stages -> {name} -> do")))?;
        let foreach = interpolate(foreach, context, &format!("stages.{name}.foreach"))?;
        let items: Vec<(String, Vec<(&str, Node)>)> = match &foreach {
            Node::List(items) => {
                let complex = items.iter().any(|i| matches!(i, Node::Map(_) | Node::List(_)));
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let suffix = if complex { i.to_string() } else { python_str(item).unwrap_or_default() };
                        (suffix, vec![("item", item.clone())])
                    })
                    .collect()
            }
            Node::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), vec![("item", v.clone()), ("key", Node::Str(k.clone()))]))
                .collect(),
            other => return Err(invalid(format!("foreach must be a list or a dictionary, got {}", other.kind()))),
        };
        for (suffix, extra) in items {
            let full = format!("{name}@{suffix}");
            stages.push(build(&full, body, &with_vars(context, extra), dir, params)?);
        }
        return Ok(());
    }
    if let Some(matrix) = map.get("matrix") {
        let matrix = interpolate(matrix, context, &format!("stages.{name}.matrix"))?;
        let axes = matrix.as_map().ok_or_else(|| invalid(format!("matrix must be a dictionary, in stages -> {name}")))?;
        let mut combos: Vec<(Vec<String>, IndexMap<String, Node>)> = vec![(Vec::new(), IndexMap::new())];
        for (axis, values) in axes {
            let Node::List(values) = values else {
                return Err(invalid(format!("matrix values must be lists, in stages -> {name} -> matrix -> {axis}")));
            };
            let mut next = Vec::new();
            for (parts, item) in &combos {
                for (i, v) in values.iter().enumerate() {
                    let fragment = match v {
                        Node::Map(_) | Node::List(_) => format!("{axis}{i}"),
                        other => python_str(other).unwrap_or_default(),
                    };
                    let mut parts = parts.clone();
                    parts.push(fragment);
                    let mut item = item.clone();
                    item.insert(axis.clone(), v.clone());
                    next.push((parts, item));
                }
            }
            combos = next;
        }
        let mut body = map.clone();
        body.shift_remove("matrix");
        let body = Node::Map(body);
        for (parts, item) in combos {
            let suffix = parts.join("-");
            let extra = vec![("item", Node::Map(item)), ("key", Node::Str(suffix.clone()))];
            stages.push(build(&format!("{name}@{suffix}"), &body, &with_vars(context, extra), dir, params)?);
        }
        return Ok(());
    }
    stages.push(build(name, def, context, dir, params)?);
    Ok(())
}

fn strings(node: &Node, what: &str) -> Result<Vec<String>> {
    match node {
        Node::Null => Ok(Vec::new()),
        Node::List(items) => items
            .iter()
            .map(|i| match i {
                Node::Str(s) => Ok(s.clone()),
                other => Err(invalid(format!("expected a string in {what}, got {}", other.kind()))),
            })
            .collect(),
        other => Err(invalid(format!("expected a list for {what}, got {}", other.kind()))),
    }
}

fn bool_of(node: Option<&Node>, what: &str) -> Result<bool> {
    match node {
        None | Some(Node::Null) => Ok(false),
        Some(Node::Bool(b)) => Ok(*b),
        Some(other) => Err(invalid(format!("expected a boolean for {what}, got {}", other.kind()))),
    }
}

fn outs_of(node: &Node, kind: OutKind, stage: &str, key: &str) -> Result<Vec<OutSpec>> {
    let items = match node {
        Node::Null => return Ok(Vec::new()),
        Node::List(items) => items,
        other => return Err(invalid(format!("expected a list, in stages -> {stage} -> {key}, got {}", other.kind()))),
    };
    items
        .iter()
        .map(|item| match item {
            Node::Str(path) => Ok(OutSpec { path: path.clone(), kind, cache: true, persist: false }),
            Node::Map(m) if m.len() == 1 => {
                let (path, opts) = m.iter().next().expect("one entry");
                let opts = match opts {
                    Node::Null => IndexMap::new(),
                    Node::Map(o) => o.clone(),
                    _ => return Err(invalid(format!("expected a dictionary, in stages -> {stage} -> {key} -> {path}"))),
                };
                for k in opts.keys() {
                    if !OUT_KEYS.contains(&k.as_str()) {
                        return Err(extra_key(&["stages", stage, key, path, k]));
                    }
                }
                Ok(OutSpec {
                    path: path.clone(),
                    kind,
                    cache: match opts.get("cache") {
                        None => true,
                        v => bool_of(v, "cache")?,
                    },
                    persist: bool_of(opts.get("persist"), "persist")?,
                })
            }
            other => Err(invalid(format!("unexpected {} in stages -> {stage} -> {key}", other.kind()))),
        })
        .collect()
}

fn seconds(node: Option<&Node>, what: &str) -> Result<Option<Duration>> {
    match node {
        None | Some(Node::Null) => Ok(None),
        Some(Node::Int(i)) if *i >= 0 => Ok(Some(Duration::from_secs(*i as u64))),
        Some(Node::Float(f)) if *f >= 0.0 => Duration::try_from_secs_f64(*f)
            .map(Some)
            .map_err(|_| invalid(format!("meta.orchard.{what} is too large: {f}"))),
        Some(other) => Err(invalid(format!("meta.orchard.{what} must be a number of seconds, got {other:?}"))),
    }
}

fn build(name: &str, def: &Node, context: &Node, dir: &Path, params: &ParamsFiles) -> Result<Stage> {
    let raw = def.as_map().ok_or_else(|| invalid(format!("expected a dictionary, in stages -> {name}")))?;
    for key in raw.keys() {
        if !STAGE_KEYS.contains(&key.as_str()) {
            return Err(extra_key(&["stages", name, key]));
        }
    }
    let mut context = context.clone();
    if let Some(vars) = raw.get("vars") {
        load_vars(&mut context, vars, dir, params)?;
    }
    // `meta` is free-form and never interpolated by DVC's schema checks; everything else is.
    let mut to_interpolate = raw.clone();
    let meta = to_interpolate.shift_remove("meta");
    to_interpolate.shift_remove("vars");
    let m = match interpolate(&Node::Map(to_interpolate), &context, &format!("stages.{name}"))? {
        Node::Map(m) => m,
        _ => unreachable!("a map interpolates to a map"),
    };
    let cmd = match m.get("cmd") {
        Some(Node::Str(s)) => Cmd::One(s.clone()),
        Some(Node::List(_)) => Cmd::List(strings(&m["cmd"], "cmd")?),
        Some(Node::Int(_) | Node::Float(_) | Node::Bool(_)) => Cmd::One(python_str(&m["cmd"]).unwrap_or_default()),
        Some(other) => return Err(invalid(format!("expected a string or a list for stages -> {name} -> cmd, got {}", other.kind()))),
        None => return Err(invalid(format!("required key not provided, in stages -> {name} -> cmd"))),
    };
    let wdir = match m.get("wdir") {
        Some(Node::Str(s)) => s.trim_end_matches('/').to_string(),
        None | Some(Node::Null) => ".".into(),
        Some(other) => return Err(invalid(format!("expected a string for wdir, got {}", other.kind()))),
    };
    let deps = m.get("deps").map(|d| strings(d, "deps")).transpose()?.unwrap_or_default();
    let mut params = Vec::new();
    if let Some(p) = m.get("params") {
        let Node::List(items) = p else {
            return Err(invalid(format!("expected a list for stages -> {name} -> params")));
        };
        let mut default_keys = Vec::new();
        for item in items {
            match item {
                Node::Str(k) => default_keys.push(k.clone()),
                Node::Map(files) => {
                    for (file, keys) in files {
                        let keys = match keys {
                            Node::Null => None,
                            Node::List(_) => Some(strings(keys, "params")?),
                            _ => return Err(invalid(format!("expected a list of keys for params -> {file}"))),
                        };
                        let keys = keys.filter(|k| !k.is_empty());
                        params.push(ParamsSpec { file: file.clone(), keys });
                    }
                }
                other => return Err(invalid(format!("unexpected {} in stages -> {name} -> params", other.kind()))),
            }
        }
        if !default_keys.is_empty() {
            params.insert(0, ParamsSpec { file: "params.yaml".into(), keys: Some(default_keys) });
        }
    }
    let mut outs = Vec::new();
    for (key, kind) in [("outs", OutKind::Out), ("metrics", OutKind::Metric), ("plots", OutKind::Plot)] {
        if let Some(v) = m.get(key) {
            outs.extend(outs_of(v, kind, name, key)?);
        }
    }
    let policy = match meta.as_ref().and_then(|meta| meta.as_map()).and_then(|meta| meta.get("orchard")) {
        None | Some(Node::Null) => RetryPolicy::default(),
        Some(Node::Map(o)) => {
            for k in o.keys() {
                if !["retries", "retry_delay", "timeout"].contains(&k.as_str()) {
                    return Err(PipelineError::Invalid(format!(
                        "unknown key 'meta.orchard.{k}' in stage '{name}' (known: retries, retry_delay, timeout)"
                    )));
                }
            }
            RetryPolicy {
                retries: match o.get("retries") {
                    None | Some(Node::Null) => 0,
                    Some(Node::Int(i)) if (0..=1000).contains(i) => *i as u32,
                    Some(other) => {
                        return Err(PipelineError::Invalid(format!(
                            "meta.orchard.retries of stage '{name}' must be a whole number from 0 to 1000, got {other:?}"
                        )))
                    }
                },
                retry_delay: seconds(o.get("retry_delay"), "retry_delay")?.unwrap_or_default(),
                timeout: seconds(o.get("timeout"), "timeout")?,
            }
        }
        Some(_) => return Err(PipelineError::Invalid(format!("meta.orchard of stage '{name}' must be a dictionary"))),
    };
    Ok(Stage {
        name: name.to_string(),
        cmd,
        wdir,
        deps,
        params,
        outs,
        frozen: bool_of(m.get("frozen"), "frozen")?,
        always_changed: bool_of(m.get("always_changed"), "always_changed")?,
        desc: match m.get("desc") {
            Some(Node::Str(s)) => Some(s.clone()),
            _ => None,
        },
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(text: &str, files: &[(&str, &str)]) -> Result<Pipeline> {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        parse(text, dir.path(), &ParamsFiles::default())
    }

    #[test]
    fn stages_params_outs_and_orchard_meta() {
        let p = parse_in(
            "stages:\n  train:\n    cmd: python train.py --lr ${train.lr}\n    deps: [data.csv]\n    params:\n    - train.lr\n    - conf.yaml: [a]\n    outs:\n    - model.txt\n    metrics:\n    - m.json:\n        cache: false\n    meta:\n      orchard: {retries: 2, retry_delay: 0.5, timeout: 60}\n",
            &[("params.yaml", "train:\n  lr: 0.1\n")],
        )
        .unwrap();
        let s = &p.stages[0];
        assert_eq!(s.cmd, Cmd::One("python train.py --lr 0.1".into()));
        assert_eq!(s.params[0], ParamsSpec { file: "params.yaml".into(), keys: Some(vec!["train.lr".into()]) });
        assert_eq!(s.params[1].file, "conf.yaml");
        assert_eq!(s.outs.len(), 2);
        assert!(!s.outs[1].cache && s.outs[1].kind == OutKind::Metric);
        assert_eq!(s.policy.retries, 2);
        assert_eq!(s.policy.timeout, Some(Duration::from_secs(60)));
    }

    #[test]
    fn foreach_and_matrix_names_follow_dvc() {
        let p = parse_in(
            "vars:\n- n: 3\nstages:\n  fe:\n    foreach: [x, y]\n    do:\n      cmd: echo ${item} ${n}\n  fd:\n    foreach: {a: 1, b: 2}\n    do:\n      cmd: echo ${key}=${item}\n  mx:\n    matrix:\n      m: [p, q]\n      k: [1, 2]\n    cmd: echo ${item.m}${item.k} ${key}\n",
            &[],
        )
        .unwrap();
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["fe@x", "fe@y", "fd@a", "fd@b", "mx@p-1", "mx@p-2", "mx@q-1", "mx@q-2"]);
        assert_eq!(p.stages[1].cmd, Cmd::One("echo y 3".into()));
        assert_eq!(p.stages[3].cmd, Cmd::One("echo b=2".into()));
        assert_eq!(p.stages[5].cmd, Cmd::One("echo p2 p-2".into()));
    }

    #[test]
    fn strict_schema_and_missing_variables() {
        let e = parse_in("stages:\n  a:\n    cmd: echo\n    outz: [x]\n", &[]).unwrap_err().to_string();
        assert!(e.contains("extra keys not allowed, in stages -> a -> outz"), "{e}");
        let e = parse_in("stagez: {}\n", &[]).unwrap_err().to_string();
        assert!(e.contains("extra keys not allowed, in stagez"), "{e}");
        let e = parse_in("stages:\n  a:\n    deps: [x]\n", &[]).unwrap_err().to_string();
        assert!(e.contains("required key not provided, in stages -> a -> cmd"), "{e}");
        let e = parse_in("stages:\n  a:\n    cmd: echo ${nope}\n", &[]).unwrap_err().to_string();
        assert!(e.contains("Could not find 'nope'"), "{e}");
        let e = parse_in("stages:\n  a:\n    cmd: echo\n    meta: {orchard: {retry: 1}}\n", &[]).unwrap_err().to_string();
        assert!(e.contains("meta.orchard.retry"), "{e}");
        // Anything else under meta is the user's.
        assert!(parse_in("stages:\n  a:\n    cmd: echo\n    meta: {owner: me, x: [1]}\n", &[]).is_ok());
    }

    #[test]
    fn escaped_interpolation_and_typed_whole_values() {
        let p = parse_in("vars:\n- xs: [1, 2]\n  t: true\nstages:\n  a:\n    cmd: echo \\${x} ${t} ${xs[1]}\n    always_changed: ${t}\n", &[]).unwrap();
        assert_eq!(p.stages[0].cmd, Cmd::One("echo ${x} true 2".into()));
        assert!(p.stages[0].always_changed);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "[a-z:\\- \\n\\[\\]{}$.@0-9]{0,120}") {
            let dir = std::env::temp_dir();
            let _ = parse(&text, &dir, &ParamsFiles::default());
        }
    }
}
