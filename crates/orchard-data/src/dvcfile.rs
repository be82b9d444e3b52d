//! `.dvc` files: the small YAML files, kept in git, that name the data they track by content hash.
//!
//! They are read into the generic YAML tree of `orchard-yaml` so that keys Orchard does not interpret
//! (`desc`, `meta`, `remote`, `labels`, …) survive a rewrite; only the hash fields are replaced, in the key order
//! DVC writes: `md5, size, nfiles, isexec, hash, path`.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use orchard_yaml::Node;

use crate::error::{DataError, IoContext, Result};
use crate::fsutil;
use crate::hash::{HashKind, Oid};

/// One tracked output of a `.dvc` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Out {
    /// As written in the file: relative to the `.dvc` file's folder (and its `wdir`), `/`-separated.
    pub path: String,
    /// The recorded content id, if the output has been committed.
    pub oid: Option<Oid>,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    pub isexec: bool,
    /// `cache: false` outputs are tracked by hash but never stored.
    pub cache: bool,
    /// `push: false` outputs stay out of remotes.
    pub push: bool,
    /// A per-output remote (`remote: name`).
    pub remote: Option<String>,
}

/// A parsed `.dvc` file.
#[derive(Clone, Debug)]
pub struct DvcFile {
    /// Absolute path of the file.
    pub path: PathBuf,
    pub outs: Vec<Out>,
    /// The whole document, to write back what we do not interpret.
    doc: IndexMap<String, Node>,
}

impl DvcFile {
    /// A new file tracking one output.
    pub fn new(path: PathBuf, out: Out) -> DvcFile {
        DvcFile {
            path,
            outs: vec![out],
            doc: IndexMap::new(),
        }
    }

    /// The folder outputs are relative to: the file's folder joined with its `wdir`.
    pub fn wdir(&self) -> PathBuf {
        let dir = self.path.parent().unwrap_or(Path::new("/")).to_path_buf();
        match self.doc.get("wdir") {
            Some(Node::Str(w)) => fsutil::normalize(&dir.join(w)),
            _ => dir,
        }
    }

    /// Absolute (lexically normalised) path of an output.
    pub fn out_path(&self, out: &Out) -> PathBuf {
        fsutil::normalize(&self.wdir().join(&out.path))
    }

    pub fn load(path: &Path) -> Result<DvcFile> {
        let text = std::fs::read_to_string(path).at(path)?;
        DvcFile::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<DvcFile> {
        let bad = |reason: String| DataError::BadDvcFile {
            path: path.display().to_string(),
            reason,
        };
        let node = orchard_yaml::parse(text).map_err(|e| bad(e.to_string()))?;
        let doc = match node {
            Node::Map(m) => m,
            Node::Null => IndexMap::new(),
            other => return Err(bad(format!("expected a mapping, found {}", other.kind()))),
        };
        let mut outs = Vec::new();
        match doc.get("outs") {
            None | Some(Node::Null) => {}
            Some(Node::List(items)) => {
                for (i, item) in items.iter().enumerate() {
                    outs.push(parse_out(item).map_err(|r| bad(format!("outs[{i}]: {r}")))?);
                }
            }
            Some(other) => return Err(bad(format!("'outs' must be a list, found {}", other.kind()))),
        }
        Ok(DvcFile {
            path: path.to_path_buf(),
            outs,
            doc,
        })
    }

    /// The file's text: the document with each output's fields updated.
    pub fn to_yaml(&self) -> String {
        let mut doc = self.doc.clone();
        let old_outs: Vec<IndexMap<String, Node>> = match doc.get("outs") {
            Some(Node::List(items)) => items
                .iter()
                .map(|n| n.as_map().cloned().unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        };
        let outs = self
            .outs
            .iter()
            .enumerate()
            .map(|(i, out)| Node::Map(dump_out(out, old_outs.get(i))))
            .collect();
        doc.insert("outs".into(), Node::List(outs));
        orchard_yaml::to_yaml(&Node::Map(doc))
    }

    pub fn save(&self) -> Result<()> {
        fsutil::write_atomic(&self.path, self.to_yaml().as_bytes())
    }
}

fn parse_out(item: &Node) -> std::result::Result<Out, String> {
    let map = item.as_map().ok_or("expected a mapping")?;
    let path = match map.get("path") {
        Some(Node::Str(s)) if !s.is_empty() => s.clone(),
        Some(Node::Int(i)) => i.to_string(),
        Some(Node::Float(f)) => f.to_string(),
        _ => return Err("missing 'path'".into()),
    };
    let kind = match map.get("hash") {
        None => HashKind::LegacyMd5Dos2Unix,
        Some(Node::Str(h)) if h == "md5" => HashKind::Md5,
        Some(other) => return Err(format!("unsupported hash '{}'", node_text(other))),
    };
    let oid = match map.get("md5") {
        None | Some(Node::Null) => None,
        Some(Node::Str(v)) if Oid::is_well_formed(v) => Some(Oid::new(kind, v.clone())),
        Some(other) => return Err(format!("bad md5 '{}'", node_text(other))),
    };
    let uint = |key: &str| -> std::result::Result<Option<u64>, String> {
        match map.get(key) {
            None | Some(Node::Null) => Ok(None),
            Some(Node::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(other) => Err(format!("bad {key} '{}'", node_text(other))),
        }
    };
    let flag = |key: &str, default: bool| match map.get(key) {
        Some(Node::Bool(b)) => Ok(*b),
        None | Some(Node::Null) => Ok(default),
        Some(other) => Err(format!("bad {key} '{}'", node_text(other))),
    };
    Ok(Out {
        path,
        oid,
        size: uint("size")?,
        nfiles: uint("nfiles")?,
        isexec: flag("isexec", false)?,
        cache: flag("cache", true)?,
        push: flag("push", true)?,
        remote: match map.get("remote") {
            Some(Node::Str(s)) => Some(s.clone()),
            _ => None,
        },
    })
}

fn node_text(n: &Node) -> String {
    orchard_yaml::to_yaml(n).trim_end().to_string()
}

/// The hash fields first, in DVC's order, then `path`, then whatever else the output had.
fn dump_out(out: &Out, old: Option<&IndexMap<String, Node>>) -> IndexMap<String, Node> {
    const OWN: [&str; 6] = ["md5", "size", "nfiles", "isexec", "hash", "path"];
    let mut m = IndexMap::new();
    if let Some(oid) = &out.oid {
        m.insert("md5".into(), Node::Str(oid.value.clone()));
    }
    if let Some(size) = out.size {
        m.insert("size".into(), Node::Int(size as i64));
    }
    if let Some(n) = out.nfiles {
        m.insert("nfiles".into(), Node::Int(n as i64));
    }
    if out.isexec {
        m.insert("isexec".into(), Node::Bool(true));
    }
    if out.oid.as_ref().is_none_or(|o| o.kind == HashKind::Md5) {
        m.insert("hash".into(), Node::Str("md5".into()));
    }
    m.insert("path".into(), Node::Str(out.path.clone()));
    if let Some(old) = old {
        for (k, v) in old {
            if !OWN.contains(&k.as_str()) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_dvc3_files() {
        let text = "outs:\n- md5: 510d46ca60e476e981459194332097b6.dir\n  size: 25816810\n  nfiles: 10000\n  hash: md5\n  path: many\n";
        let f = DvcFile::parse(Path::new("/r/many.dvc"), text).unwrap();
        assert_eq!(f.outs[0].oid.as_ref().unwrap().kind, HashKind::Md5);
        assert_eq!(f.outs[0].nfiles, Some(10000));
        assert_eq!(f.to_yaml(), text);
        assert_eq!(f.out_path(&f.outs[0]), PathBuf::from("/r/many"));
    }

    #[test]
    fn legacy_files_keep_their_shape_and_extra_keys_survive() {
        let text = "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 3\n  path: data.csv\n  desc: raw data\nmeta:\n  owner: ana\n";
        let f = DvcFile::parse(Path::new("/r/data.csv.dvc"), text).unwrap();
        assert_eq!(f.outs[0].oid.as_ref().unwrap().kind, HashKind::LegacyMd5Dos2Unix);
        assert_eq!(f.to_yaml(), text);
    }

    #[test]
    fn malformed_files_are_refused_with_the_reason() {
        for text in [
            "outs: 3\n",
            "outs:\n- size: 3\n",
            "outs:\n- md5: nothex\n  path: a\n",
            "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  hash: sha1\n  path: a\n",
            "- a\n",
            "outs: [\n",
        ] {
            let err = DvcFile::parse(Path::new("x.dvc"), text).unwrap_err();
            assert!(err.to_string().contains("x.dvc"), "{err}");
        }
    }

    use proptest::prelude::*;

    fn out_strategy() -> impl Strategy<Value = Out> {
        (
            // Paths with spaces, quotes, colons, non-ASCII and YAML-significant leading characters.
            "[a-zA-Z0-9 _./:#'\"\u{e9}\u{4e2d}-]{1,16}",
            proptest::option::of(("[0-9a-f]{32}", any::<bool>())),
            proptest::option::of(0u64..1 << 40),
            proptest::option::of(0u64..1 << 20),
            any::<bool>(),
        )
            .prop_filter("a path YAML reads back as text", |(p, ..)| !p.trim().is_empty() && p.trim() == p)
            .prop_map(|(path, oid, size, nfiles, isexec)| Out {
                path,
                oid: oid.map(|(hex, dir)| Oid::new(HashKind::Md5, if dir { format!("{hex}.dir") } else { hex })),
                size,
                nfiles,
                isexec,
                cache: true,
                push: true,
                remote: None,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever bytes a `.dvc` file holds, parsing answers Ok or a typed error naming the file: never a panic.
        #[test]
        fn parser_never_panics(text in "(outs|md5|size|nfiles|hash|path|isexec|wdir|- |: |\\n|  |[ -~]){0,60}") {
            if let Err(e) = DvcFile::parse(Path::new("p.dvc"), &text) {
                prop_assert!(e.to_string().contains("p.dvc"));
            }
        }

        /// A written file reads back to the same outputs, whatever the path's characters.
        #[test]
        fn written_files_read_back(outs in proptest::collection::vec(out_strategy(), 1..4)) {
            let mut f = DvcFile::new(PathBuf::from("/r/x.dvc"), outs[0].clone());
            f.outs = outs.clone();
            let text = f.to_yaml();
            let back = DvcFile::parse(Path::new("/r/x.dvc"), &text).unwrap();
            prop_assert_eq!(&back.outs, &outs, "{}", text);
            prop_assert_eq!(back.to_yaml(), text);
        }
    }
}
