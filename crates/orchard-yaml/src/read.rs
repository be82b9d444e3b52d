//! Reading YAML the way OmegaConf (PyYAML's safe loader) reads it.
//!
//! yaml-rust2's event parser gives each scalar with its quoting; plain scalars are then typed with
//! the YAML 1.1 rules of PyYAML's safe loader (so `yes`/`off` are booleans, `1_000` an int) plus OmegaConf's
//! extra float rule (`1e-3` without a dot), and without timestamps. Duplicate keys are an error.

use indexmap::IndexMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::node::Node;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct YamlError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

enum Frame {
    Map(IndexMap<String, Node>, Option<String>),
    List(Vec<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    error: Option<YamlError>,
    anchors: std::collections::HashMap<usize, Node>,
    pending_anchor: Vec<usize>,
}

impl Builder {
    fn fail(&mut self, message: String, mark: Marker) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                message,
                line: mark.line(),
                column: mark.col() + 1,
            });
        }
    }

    fn push_value(&mut self, value: Node, mark: Marker) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::List(items)) => items.push(value),
            Some(Frame::Map(map, key)) => match key.take() {
                None => {
                    let k = match value {
                        Node::Str(s) => s,
                        Node::Int(i) => i.to_string(),
                        Node::Bool(b) => if b { "True" } else { "False" }.to_string(),
                        Node::Float(f) => f.to_string(),
                        Node::Null => "None".to_string(),
                        _ => {
                            self.fail("a mapping key must be a scalar".into(), mark);
                            return;
                        }
                    };
                    if map.contains_key(&k) {
                        self.fail(format!("duplicate key: {k}"), mark);
                        return;
                    }
                    *key = Some(k);
                }
                Some(k) => {
                    map.insert(k, value);
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let node = if style == TScalarStyle::Plain && tag.is_none() {
                    resolve_plain(&text)
                } else {
                    Node::Str(text)
                };
                let node = if matches!(&node, Node::Str(s) if s == "???") {
                    Node::Missing
                } else {
                    node
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node, mark);
            }
            Event::SequenceStart(anchor, _) => {
                self.pending_anchor.push(anchor);
                self.stack.push(Frame::List(Vec::new()));
            }
            Event::MappingStart(anchor, _) => {
                self.pending_anchor.push(anchor);
                self.stack.push(Frame::Map(IndexMap::new(), None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::List(items)) => Node::List(items),
                    Some(Frame::Map(map, _)) => Node::Map(map),
                    None => return,
                };
                if let Some(anchor) = self.pending_anchor.pop().filter(|a| *a > 0) {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node, mark);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.push_value(node, mark),
                None => self.fail("unknown alias".into(), mark),
            },
            _ => {}
        }
    }
}

/// Parses one YAML document. An empty document is an empty map.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| YamlError {
        message: e.info().to_string(),
        line: e.marker().line(),
        column: e.marker().col() + 1,
    })?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(match builder.root {
        None | Some(Node::Null) => Node::empty_map(),
        Some(n) => n,
    })
}

/// Types a plain scalar as PyYAML's safe loader does under OmegaConf (YAML 1.1, no timestamps).
pub fn resolve_plain(s: &str) -> Node {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Node::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Node::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Node::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Node::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Node::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Node::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_yaml11_int(s) {
        return Node::Int(i);
    }
    if is_yaml11_float(s) {
        if let Ok(f) = s.replace('_', "").parse::<f64>() {
            return Node::Float(f);
        }
    }
    Node::Str(s.to_string())
}

fn parse_yaml11_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let digits = |radix: u32, t: &str| -> Option<i64> {
        let clean: String = t.chars().filter(|c| *c != '_').collect();
        if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        i64::from_str_radix(&clean, radix).ok()
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        digits(16, h)?
    } else if let Some(b) = body.strip_prefix("0b") {
        digits(2, b)?
    } else if body.len() > 1 && body.starts_with('0') {
        digits(8, &body[1..])?
    } else {
        if !body.as_bytes()[0].is_ascii_digit() || body.starts_with('_') {
            return None;
        }
        digits(10, body)?
    };
    Some(if neg { -v } else { v })
}

/// PyYAML's float pattern with OmegaConf's addition (an exponent without a dot), sexagesimal left out.
fn is_yaml11_float(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    if let Some(e) = exponent {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        if e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    match mantissa.split_once('.') {
        Some((int, frac)) => {
            let int_ok = int.is_empty()
                || (int.as_bytes()[0].is_ascii_digit()
                    && int.chars().all(|c| c.is_ascii_digit() || c == '_'));
            let frac_ok = frac.chars().all(|c| c.is_ascii_digit() || c == '_');
            // `.5` needs a digit after the dot; `1.` is a float.
            int_ok
                && frac_ok
                && !(int.is_empty() && frac.is_empty())
                && (!int.is_empty() || frac.as_bytes().first().is_some_and(u8::is_ascii_digit))
        }
        None => {
            exponent.is_some()
                && !mantissa.is_empty()
                && mantissa.as_bytes()[0].is_ascii_digit()
                && mantissa.chars().all(|c| c.is_ascii_digit() || c == '_')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    #[test]
    fn plain_scalars_are_typed_like_pyyaml() {
        assert_eq!(resolve_plain("yes"), Node::Bool(true));
        assert_eq!(resolve_plain("Off"), Node::Bool(false));
        assert_eq!(resolve_plain("1_000"), Node::Int(1000));
        assert_eq!(resolve_plain("0x1f"), Node::Int(31));
        assert_eq!(resolve_plain("010"), Node::Int(8));
        assert_eq!(resolve_plain("1e-3"), Node::Float(1e-3));
        assert_eq!(resolve_plain("1.5"), Node::Float(1.5));
        assert_eq!(resolve_plain("1."), Node::Float(1.0));
        assert_eq!(resolve_plain(".5"), Node::Float(0.5));
        assert_eq!(resolve_plain("2020-01-01"), Node::Str("2020-01-01".into()));
        assert_eq!(resolve_plain("1.2.3"), Node::Str("1.2.3".into()));
        assert_eq!(resolve_plain("e5"), Node::Str("e5".into()));
        assert_eq!(resolve_plain("~"), Node::Null);
    }

    #[test]
    fn parses_documents() {
        let n = parse("a: 1\nb:\n  c: [x, 'y', \"1\"]\n  d: ???\nlist:\n- 1\n- k: v\n").unwrap();
        assert_eq!(n.get_path("a"), Some(&Node::Int(1)));
        assert_eq!(n.get_path("b.c.2"), Some(&Node::Str("1".into())));
        assert_eq!(n.get_path("b.d"), Some(&Node::Missing));
        assert_eq!(n.get_path("list.1.k"), Some(&Node::Str("v".into())));
        assert_eq!(parse("").unwrap(), Node::empty_map());
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate key"), "{e}");
        assert!(parse("a: [1, 2\n").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = parse(&s);
        }
    }
}
