//! `dvc.lock` (schema 2.0), read and written as DVC writes it: `schema: '2.0'` first, stages in the order
//! they were first locked, per stage `cmd`, `deps`, `params`, `outs` (metrics and plots among the outs),
//! entries sorted by path with keys `path, hash, md5, size[, nfiles][, isexec]`, params grouped by file
//! (`params.yaml` first, then by path) with top-level keys sorted — in ruamel's block style.

use std::path::Path;

use indexmap::IndexMap;
use orchard_yaml::python::yaml_float;
use orchard_yaml::Node;

use crate::spec::Cmd;
use crate::error::{PipelineError, Result};

pub const FILE_NAME: &str = "dvc.lock";

/// A dependency's or output's recorded content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashEntry {
    pub path: String,
    pub md5: Option<String>,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    pub isexec: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LockEntry {
    pub cmd: Cmd,
    pub deps: Vec<HashEntry>,
    /// File → key → value.
    pub params: IndexMap<String, IndexMap<String, Node>>,
    pub outs: Vec<HashEntry>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Lock {
    pub stages: IndexMap<String, LockEntry>,
}

fn bad(reason: impl Into<String>) -> PipelineError {
    PipelineError::Invalid(format!("'{FILE_NAME}' is invalid: {}", reason.into()))
}

fn entries(node: Option<&Node>) -> Result<Vec<HashEntry>> {
    let Some(node) = node else { return Ok(Vec::new()) };
    let Node::List(items) = node else { return Err(bad("deps and outs must be lists")) };
    items
        .iter()
        .map(|item| {
            let m = item.as_map().ok_or_else(|| bad("a dep or out must be a dictionary"))?;
            let text = |k: &str| match m.get(k) {
                Some(Node::Str(s)) => Some(s.clone()),
                _ => None,
            };
            let num = |k: &str| match m.get(k) {
                Some(Node::Int(i)) if *i >= 0 => Some(*i as u64),
                _ => None,
            };
            Ok(HashEntry {
                path: text("path").ok_or_else(|| bad("a dep or out has no path"))?,
                md5: text("md5"),
                size: num("size"),
                nfiles: num("nfiles"),
                isexec: matches!(m.get("isexec"), Some(Node::Bool(true))),
            })
        })
        .collect()
}

impl Lock {
    pub fn load(dir: &Path) -> Result<Lock> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Lock::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lock::default()),
            Err(e) => Err(PipelineError::io(&path, e)),
        }
    }

    pub fn parse(text: &str) -> Result<Lock> {
        let doc = orchard_yaml::parse(text).map_err(|e| bad(e.to_string()))?;
        let Some(doc) = doc.as_map() else { return Ok(Lock::default()) };
        match doc.get("schema") {
            Some(Node::Str(s)) if s == "2.0" => {}
            other => return Err(bad(format!("unsupported schema {other:?} (Orchard reads schema '2.0')"))),
        }
        let mut stages = IndexMap::new();
        if let Some(Node::Map(m)) = doc.get("stages") {
            for (name, entry) in m {
                stages.insert(name.clone(), entry_from(name, entry)?);
            }
        }
        Ok(Lock { stages })
    }

    /// The file's text, byte for byte as DVC writes it.
    pub fn to_yaml(&self) -> String {
        let mut out = String::from("schema: '2.0'\nstages:\n");
        for (name, e) in &self.stages {
            out.push_str("  ");
            out.push_str(&key(name));
            out.push_str(":\n");
            write_entry(e, 4, &mut out);
        }
        out
    }

    /// Like [`Lock::to_yaml`], reusing the text of entries that have not changed since `cache` saw them: a
    /// long pipeline saves dvc.lock after every stage, and rendering every entry each time made that quadratic.
    pub fn to_yaml_reusing(&self, cache: &mut std::collections::HashMap<String, (LockEntry, String)>) -> String {
        let mut out = String::from("schema: '2.0'\nstages:\n");
        for (name, e) in &self.stages {
            match cache.get(name) {
                Some((seen, text)) if seen == e => out.push_str(text),
                _ => {
                    let mut text = format!("  {}:\n", key(name));
                    write_entry(e, 4, &mut text);
                    out.push_str(&text);
                    cache.insert(name.clone(), (e.clone(), text));
                }
            }
        }
        out
    }

    /// Writes the file atomically (aside, then renamed).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(FILE_NAME);
        orchard_data::fsutil::write_atomic(&path, self.to_yaml().as_bytes()).map_err(PipelineError::Data)
    }
}

/// One stage's entry (also a run cache value file, which is an entry alone).
pub fn parse_entry(text: &str) -> Result<LockEntry> {
    let doc = orchard_yaml::parse(text).map_err(|e| bad(e.to_string()))?;
    entry_from("run", &doc)
}

fn entry_from(name: &str, entry: &Node) -> Result<LockEntry> {
    let e = entry.as_map().ok_or_else(|| bad(format!("stage '{name}' must be a dictionary")))?;
    let cmd = match e.get("cmd") {
        Some(Node::Str(s)) => Cmd::One(s.clone()),
        Some(Node::List(items)) => Cmd::List(
            items
                .iter()
                .map(|i| match i {
                    Node::Str(s) => s.clone(),
                    other => other.to_json().to_string(),
                })
                .collect(),
        ),
        _ => return Err(bad(format!("stage '{name}' has no cmd"))),
    };
    let mut params = IndexMap::new();
    if let Some(Node::Map(files)) = e.get("params") {
        for (file, values) in files {
            params.insert(file.clone(), values.as_map().cloned().unwrap_or_default());
        }
    }
    Ok(LockEntry { cmd, deps: entries(e.get("deps"))?, params, outs: entries(e.get("outs"))? })
}

/// One entry's body at `indent` (also the run cache's value file, at indent 0).
pub fn write_entry(e: &LockEntry, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match &e.cmd {
        Cmd::One(s) => {
            out.push_str(&format!("{pad}cmd: "));
            out.push_str(&scalar_str(s, indent + 2, indent + 5));
            out.push('\n');
        }
        Cmd::List(items) => {
            out.push_str(&format!("{pad}cmd:\n"));
            for i in items {
                out.push_str(&format!("{pad}- {}\n", scalar_str(i, indent + 2, indent + 2)));
            }
        }
    }
    let list = |name: &str, items: &[HashEntry], out: &mut String| {
        if items.is_empty() {
            return;
        }
        out.push_str(&format!("{pad}{name}:\n"));
        for h in items {
            out.push_str(&format!("{pad}- path: {}\n", scalar_str(&h.path, indent + 4, indent + 8)));
            if let Some(md5) = &h.md5 {
                out.push_str(&format!("{pad}  hash: md5\n{pad}  md5: {md5}\n"));
            }
            if let Some(size) = h.size {
                out.push_str(&format!("{pad}  size: {size}\n"));
            }
            if let Some(n) = h.nfiles {
                out.push_str(&format!("{pad}  nfiles: {n}\n"));
            }
            if h.isexec {
                out.push_str(&format!("{pad}  isexec: true\n"));
            }
        }
    };
    list("deps", &e.deps, out);
    if !e.params.is_empty() {
        out.push_str(&format!("{pad}params:\n"));
        for (file, values) in &e.params {
            out.push_str(&format!("{pad}  {}:\n", key(file)));
            write_map(values, indent + 4, out);
        }
    }
    list("outs", &e.outs, out);
}

fn write_map(m: &IndexMap<String, Node>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in m {
        out.push_str(&pad);
        out.push_str(&key(k));
        out.push(':');
        write_value(v, indent, key(k).chars().count() + indent + 2, out);
    }
}

/// A value after `key:` (the colon written): nested blocks on the next lines, scalars after a space.
fn write_value(v: &Node, indent: usize, column: usize, out: &mut String) {
    match v {
        Node::Map(m) if !m.is_empty() => {
            out.push('\n');
            write_map(m, indent + 2, out);
        }
        Node::List(items) if !items.is_empty() => {
            out.push('\n');
            write_list(items, indent, out);
        }
        Node::Null => out.push('\n'),
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2, column));
            out.push('\n');
        }
    }
}

fn write_list(items: &[Node], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        out.push_str(&pad);
        out.push('-');
        match item {
            Node::Map(m) if !m.is_empty() => {
                let mut inner = String::new();
                write_map(m, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(inner.trim_start());
            }
            Node::List(l) if !l.is_empty() => {
                let mut inner = String::new();
                write_list(l, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(inner.trim_start());
            }
            Node::Null => out.push('\n'),
            other => {
                out.push(' ');
                out.push_str(&scalar(other, indent + 2, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn key(k: &str) -> String {
    scalar_str(k, 0, 0)
}

fn scalar(node: &Node, indent: usize, column: usize) -> String {
    match node {
        Node::Str(s) => scalar_str(s, indent, column),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => yaml_float(*f),
        Node::Bool(b) => b.to_string(),
        Node::Null | Node::Missing => String::new(),
        Node::Map(_) => "{}".into(),
        Node::List(_) => "[]".into(),
    }
}

/// Whether a string may be written plain (unquoted) and read back as the same string.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.trim() != s || s.chars().any(|c| c.is_control()) {
        return false;
    }
    let first = s.chars().next().expect("non-empty");
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) && !(matches!(first, '-' | '?' | ':') && s.len() > 1 && !s[1..].starts_with(' ')) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if s.starts_with("- ") || s.starts_with("? ") || s.starts_with(": ") {
        return false;
    }
    // Reads back as a string (not a number, boolean, null…) under YAML 1.1 and 1.2 rules alike.
    let yaml12_special = matches!(s.to_ascii_lowercase().as_str(), "true" | "false" | "null" | "~");
    !yaml12_special && matches!(orchard_yaml::resolve_plain(s), Node::Str(_))
}

/// ruamel's choice: plain when possible; else double quotes when the text holds `'` or a line break; else
/// single quotes. Long plain scalars fold at spaces past column 80, continuing at `indent`.
fn scalar_str(s: &str, indent: usize, column: usize) -> String {
    if plain_ok(s) {
        return fold(s, indent, column);
    }
    if s.contains('\'') || s.contains('\n') {
        return serde_json::to_string(s).unwrap_or_default();
    }
    format!("'{s}'")
}

fn fold(s: &str, indent: usize, column: usize) -> String {
    if column + s.chars().count() <= 80 || !s.contains(' ') || s.contains("  ") {
        return s.to_string();
    }
    let mut out = String::new();
    let mut col = column;
    for (i, word) in s.split(' ').enumerate() {
        let len = word.chars().count();
        if i > 0 {
            if col + 1 + len > 80 && col > indent {
                out.push_str(" \n");
                out.push_str(&" ".repeat(indent));
                col = indent;
            } else {
                out.push(' ');
                col += 1;
            }
        }
        out.push_str(word);
        col += len;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reused_entries_render_the_same_text() {
        let text = "schema: '2.0'\nstages:\n  a:\n    cmd: echo a > a\n    outs:\n    - path: a\n      hash: md5\n      md5: 60b725f10c9c85c70d97880dfe8191b3\n      size: 2\n  b:\n    cmd: echo b\n";
        let mut lock = Lock::parse(text).unwrap();
        let mut cache = std::collections::HashMap::new();
        assert_eq!(lock.to_yaml_reusing(&mut cache), lock.to_yaml());
        lock.stages.get_mut("b").unwrap().cmd = Cmd::One("echo changed".into());
        assert_eq!(lock.to_yaml_reusing(&mut cache), lock.to_yaml());
        assert!(lock.to_yaml().contains("echo changed"));
    }

    use super::*;

    fn entry(path: &str, md5: &str, size: u64, nfiles: Option<u64>) -> HashEntry {
        HashEntry { path: path.into(), md5: Some(md5.into()), size: Some(size), nfiles, isexec: false }
    }

    #[test]
    fn written_as_dvc_writes_it() {
        let mut params = IndexMap::new();
        let mut p = IndexMap::new();
        p.insert("lr".to_string(), Node::Float(0.01));
        p.insert("train.depth".to_string(), Node::Int(5));
        let mut opt = IndexMap::new();
        opt.insert("name".to_string(), Node::Str("adam".into()));
        opt.insert("beta".to_string(), Node::Float(0.9));
        p.insert("train.opt".to_string(), Node::Map(opt));
        params.insert("params.yaml".to_string(), p);
        let mut c = IndexMap::new();
        c.insert("y".to_string(), Node::List(vec![Node::Str("a".into()), Node::Str("b".into())]));
        params.insert("custom.yaml".to_string(), c);
        let e = LockEntry {
            cmd: Cmd::List(vec!["mkdir -p out/dir".into(), "echo '{\"acc\": 0.5}' > metrics.json".into()]),
            deps: vec![entry("data/dir", "a7f22647ee2d2f131ca0cd6872128114.dir", 6, Some(3))],
            params,
            outs: vec![entry("metrics.json", "e26523fedc4685d9c06d2683dc27f2d3", 13, None)],
        };
        let mut lock = Lock::default();
        lock.stages.insert("train".into(), e);
        let text = lock.to_yaml();
        assert_eq!(
            text,
            "schema: '2.0'\nstages:\n  train:\n    cmd:\n    - mkdir -p out/dir\n    - \"echo '{\\\"acc\\\": 0.5}' > metrics.json\"\n    deps:\n    - path: data/dir\n      hash: md5\n      md5: a7f22647ee2d2f131ca0cd6872128114.dir\n      size: 6\n      nfiles: 3\n    params:\n      params.yaml:\n        lr: 0.01\n        train.depth: 5\n        train.opt:\n          name: adam\n          beta: 0.9\n      custom.yaml:\n        y:\n        - a\n        - b\n    outs:\n    - path: metrics.json\n      hash: md5\n      md5: e26523fedc4685d9c06d2683dc27f2d3\n      size: 13\n"
        );
        assert_eq!(Lock::parse(&text).unwrap(), lock);
    }

    #[test]
    fn floats_and_quoting_follow_python() {
        assert_eq!(yaml_float(1e-3), "0.001");
        assert_eq!(yaml_float(1e-5), "1e-05");
        assert_eq!(yaml_float(1e20), "1e+20");
        assert_eq!(yaml_float(3.0), "3.0");
        assert_eq!(yaml_float(0.1), "0.1");
        assert_eq!(scalar_str("1.0", 0, 0), "'1.0'");
        assert_eq!(scalar_str("a: b", 0, 0), "'a: b'");
        assert_eq!(scalar_str("", 0, 0), "''");
        assert_eq!(scalar_str("yes", 0, 0), "'yes'");
        assert_eq!(scalar_str("python train.py", 0, 0), "python train.py");
    }

    proptest::proptest! {
        /// Any string value survives a write and a read.
        #[test]
        fn commands_round_trip(cmd in "[ -~]{0,100}") {
            let mut lock = Lock::default();
            lock.stages.insert("s".into(), LockEntry { cmd: Cmd::One(cmd.clone()), deps: vec![], params: IndexMap::new(), outs: vec![] });
            let back = Lock::parse(&lock.to_yaml()).unwrap();
            let got = match &back.stages["s"].cmd { Cmd::One(s) => s.clone(), Cmd::List(_) => String::new() };
            proptest::prop_assert!(got == cmd, "{:?} → {:?}", cmd, got);
        }
    }
}
