//! The value tree: what a YAML file, an override value or a composed config is, with OmegaConf's value kinds.

use indexmap::IndexMap;

/// One value of a config. Maps keep their keys in insertion order, as OmegaConf does.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Map(IndexMap<String, Node>),
    List(Vec<Node>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// `???`: a value that must be given (by an override) before it is read.
    Missing,
}

impl Node {
    pub fn empty_map() -> Node {
        Node::Map(IndexMap::new())
    }

    /// The text of a string node.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, Node>> {
        match self {
            Node::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut IndexMap<String, Node>> {
        match self {
            Node::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The node at a dotted path (`a.b.0.c`; list items by index).
    pub fn get_path(&self, path: &str) -> Option<&Node> {
        if path.is_empty() {
            return Some(self);
        }
        let mut cur = self;
        for part in path.split('.') {
            cur = match cur {
                Node::Map(m) => m.get(part)?,
                Node::List(l) => l.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// A short name of the kind of value, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Map(_) => "dict",
            Node::List(_) => "list",
            Node::Str(_) => "str",
            Node::Int(_) => "int",
            Node::Float(_) => "float",
            Node::Bool(_) => "bool",
            Node::Null => "None",
            Node::Missing => "missing",
        }
    }

    /// As JSON (for `--json` and the tests that compare with Hydra): NaN and ±inf, which JSON lacks, become the
    /// strings "nan", "inf", "-inf"; `???` stays "???".
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Map(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Node::List(l) => Value::Array(l.iter().map(Node::to_json).collect()),
            Node::Str(s) => Value::String(s.clone()),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) if f.is_nan() => Value::String("nan".into()),
            Node::Float(f) if f.is_infinite() => {
                Value::String(if *f > 0.0 { "inf" } else { "-inf" }.into())
            }
            Node::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Node::Bool(b) => Value::Bool(*b),
            Node::Null => Value::Null,
            Node::Missing => Value::String("???".into()),
        }
    }
}

/// OmegaConf's merge: maps merge key by key (new keys appended, existing keys keep their place), anything
/// else is replaced by the incoming value — lists included.
pub fn merge(base: &mut Node, incoming: Node) {
    match (base, incoming) {
        (Node::Map(b), Node::Map(i)) => {
            for (k, v) in i {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, i) => *b = i,
    }
}
