//! YAML in and out, the way OmegaConf reads and prints it.
//!
//! Reading: yaml-rust2's event parser gives each scalar with its quoting; plain scalars are then typed with
//! the YAML 1.1 rules of PyYAML's safe loader (so `yes`/`off` are booleans, `1_000` an int) plus OmegaConf's
//! extra float rule (`1e-3` without a dot), and without timestamps. Duplicate keys are an error.
//!
//! Writing: block style, two-space indent, list items at their key's column, and strings that would read back
//! as something else ('1', 'true', '', 'null') in single quotes — what `OmegaConf.to_yaml` prints.

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

// ------------------------------------------------------------------------------------------------ output

/// Prints a config as `OmegaConf.to_yaml` does.
pub fn to_yaml(node: &Node) -> String {
    let mut out = String::new();
    match node {
        Node::Map(m) if m.is_empty() => out.push_str("{}\n"),
        Node::List(l) if l.is_empty() => out.push_str("[]\n"),
        Node::Map(_) | Node::List(_) => write_block(node, 0, &mut out),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn write_block(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Map(m) => {
            for (k, v) in m {
                out.push_str(&pad);
                out.push_str(&key_text(k));
                out.push(':');
                match v {
                    Node::Map(c) if !c.is_empty() => {
                        out.push('\n');
                        write_block(v, indent + 2, out);
                    }
                    // PyYAML puts a mapping's list items at the key's own column.
                    Node::List(c) if !c.is_empty() => {
                        out.push('\n');
                        write_block(v, indent, out);
                    }
                    _ => {
                        out.push(' ');
                        let column = indent + key_text(k).chars().count() + 2;
                        out.push_str(&inline(v, indent + 2, column));
                        out.push('\n');
                    }
                }
            }
        }
        Node::List(l) => {
            for v in l {
                out.push_str(&pad);
                out.push_str("- ");
                match v {
                    Node::Map(c) if !c.is_empty() => {
                        // The first key sits after the dash; the rest align with it.
                        let mut inner = String::new();
                        write_block(v, indent + 2, &mut inner);
                        out.push_str(inner.trim_start());
                    }
                    Node::List(c) if !c.is_empty() => {
                        let mut inner = String::new();
                        write_block(v, indent + 2, &mut inner);
                        out.push_str(inner.trim_start());
                    }
                    _ => {
                        out.push_str(&inline(v, indent + 2, indent + 2));
                        out.push('\n');
                    }
                }
            }
        }
        scalar => {
            out.push_str(&pad);
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

/// A value written after `key: ` or `- `; `column` is where it starts (PyYAML folds long strings at 80).
fn inline(node: &Node, indent: usize, column: usize) -> String {
    match node {
        Node::Map(_) => "{}".into(),
        Node::List(_) => "[]".into(),
        Node::Str(s) if s.contains('\n') && !s.chars().any(|c| c.is_control() && c != '\n') => {
            single_quoted_multiline(s, indent)
        }
        Node::Str(s) => fold(&quote_if_needed(s), column, indent),
        other => scalar_text(other),
    }
}

/// PyYAML's line folding (best width 80): a single space reached past column 80 becomes a line break and
/// the indent. Applies to plain and single-quoted scalars; the quotes themselves are never split from text.
fn fold(text: &str, column: usize, indent: usize) -> String {
    if text.starts_with('"') || text.chars().count() + column <= 80 {
        return text.to_string();
    }
    let quoted = text.starts_with('\'');
    let chars: Vec<char> = text.chars().collect();
    let (first, last) = if quoted {
        (1, chars.len() - 1)
    } else {
        (0, chars.len())
    };
    let mut out = String::new();
    let mut col = column;
    for (i, &c) in chars.iter().enumerate() {
        let single_space =
            c == ' ' && i > first && i + 1 < last && chars[i - 1] != ' ' && chars[i + 1] != ' ';
        if single_space && col > 80 {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
            continue;
        }
        out.push(c);
        col += 1;
    }
    out
}

/// PyYAML's single-quoted style for text with line breaks: a run of n breaks is written as n + 1 line breaks
/// (one alone would fold into a space), each continuation indented.
fn single_quoted_multiline(s: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::from("'");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            let mut n = 1;
            while chars.peek() == Some(&'\n') {
                chars.next();
                n += 1;
            }
            for _ in 0..=n {
                out.push('\n');
            }
            out.push_str(&pad);
        } else if c == '\'' {
            out.push_str("''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

fn key_text(k: &str) -> String {
    quote_if_needed(k)
}

pub(crate) fn float_text(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    // Python's repr, lower-cased, with ".0" forced into exponent forms: 1e-05 → 1.0e-05.
    let r = python_float_repr(f);
    if !r.contains('.') && r.contains('e') {
        r.replacen('e', ".0e", 1)
    } else {
        r
    }
}

/// Python's `repr(float)`: the shortest text that reads back the same, in exponent form outside 1e-4..1e16.
pub(crate) fn python_float_repr(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let exp = f.abs().log10().floor() as i32;
    if !(-4..16).contains(&exp) {
        // Rust's `{:e}` is shortest-round-trip: 1e-5 → "1e-5"; Python writes "1e-05".
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        let sign = if e < 0 { "-" } else { "+" };
        format!("{m}e{sign}{:02}", e.abs())
    } else {
        let s = format!("{f}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    }
}

fn scalar_text(node: &Node) -> String {
    match node {
        Node::Null => "null".into(),
        Node::Missing => "???".into(),
        Node::Bool(b) => if *b { "true" } else { "false" }.into(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => float_text(*f),
        Node::Str(s) => quote_if_needed(s),
        Node::Map(_) => "{}".into(),
        Node::List(_) => "[]".into(),
    }
}

/// YAML 1.1's timestamp forms: `2024-01-01`, `2024-1-1T10:00:00Z`, …
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut parts = date.split('-');
    let ok_num = |p: Option<&str>| {
        p.is_some_and(|p| (1..=2).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()))
    };
    let date_ok = ok_num(parts.next()) && ok_num(parts.next()) && parts.next().is_none();
    match time {
        None => date_ok && date.len() == 5,
        Some(t) => date_ok && t.trim_start().split(':').count() >= 3,
    }
}

/// Plain when the text reads back as the same string; otherwise single-quoted (or double-quoted when it has
/// characters single quotes cannot carry).
fn quote_if_needed(s: &str) -> String {
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return serde_json::to_string(s).unwrap_or_default();
    }
    let special_start = s.starts_with([
        ' ', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
        '`',
    ]) || s == "-"
        || s.starts_with("- ");
    // OmegaConf's dumper also quotes YAML 1.1's one-letter booleans, and PyYAML quotes what its (dumping)
    // resolver would read as a timestamp.
    let looks_special = matches!(s, "y" | "Y" | "n" | "N") || looks_like_timestamp(s);
    let plain_ok = !s.is_empty()
        && !looks_special
        && resolve_plain(s) == Node::Str(s.to_string())
        && s != "???"
        && !special_start
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #");
    if plain_ok {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
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

    #[test]
    fn prints_like_omegaconf() {
        let n = parse("name: iris\nlr: 1e-5\nflag: 'yes'\nempty: ''\nnum: '1'\nnested:\n  xs:\n  - 1\n  - a: 2\n    b: 3\n  none: null\n  m: {}\n").unwrap();
        assert_eq!(
            to_yaml(&n),
            "name: iris\nlr: 1.0e-05\nflag: 'yes'\nempty: ''\nnum: '1'\nnested:\n  xs:\n  - 1\n  - a: 2\n    b: 3\n  none: null\n  m: {}\n"
        );
        assert_eq!(python_float_repr(0.1), "0.1");
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(123456.5), "123456.5");
        assert_eq!(float_text(2.0), "2.0");
    }

    proptest! {
        /// What is printed reads back to the same tree.
        #[test]
        fn print_then_parse_round_trips(
            keys in proptest::collection::vec("[a-z_][a-z0-9_]{0,6}", 1..5),
            strs in proptest::collection::vec("[ -~]{0,12}", 1..5),
            ints in proptest::collection::vec(any::<i64>(), 1..3),
        ) {
            let mut m = IndexMap::new();
            for (i, k) in keys.iter().enumerate() {
                let v = match i % 3 {
                    0 => Node::Str(strs[i % strs.len()].clone()),
                    1 => Node::Int(ints[i % ints.len()]),
                    _ => Node::List(strs.iter().map(|s| Node::Str(s.clone())).collect()),
                };
                m.insert(k.clone(), v);
            }
            let n = Node::Map(m);
            let text = to_yaml(&n);
            let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(back, n, "{}", text);
        }

        /// Long strings are folded at 80 columns and read back unchanged.
        #[test]
        fn folded_strings_round_trip(words in proptest::collection::vec("[a-z]{1,9}", 10..40), quote in any::<bool>()) {
            let mut text = words.join(" ");
            if quote {
                text = format!("yes {text}");
            }
            let mut m = IndexMap::new();
            m.insert("key".to_string(), Node::Str(text.clone()));
            m.insert("list".to_string(), Node::List(vec![Node::Str(text.clone())]));
            let out = to_yaml(&Node::Map(m.clone()));
            prop_assert!(out.lines().all(|l| l.chars().count() < 100), "{}", out);
            prop_assert_eq!(parse(&out).unwrap(), Node::Map(m), "{}", out);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = parse(&s);
        }
    }
}
