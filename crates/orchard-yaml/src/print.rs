//! Printing a tree as `OmegaConf.to_yaml` does: block style, two-space indent, list items at their key's
//! column, long strings folded at 80 columns, and strings that would read back as something else ('1',
//! 'true', '', 'null') in single quotes.

use crate::node::Node;
use crate::python::pyyaml_float;
use crate::read::resolve_plain;

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

fn scalar_text(node: &Node) -> String {
    match node {
        Node::Null => "null".into(),
        Node::Missing => "???".into(),
        Node::Bool(b) => if *b { "true" } else { "false" }.into(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => pyyaml_float(*f),
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
    use crate::read::parse;
    use indexmap::IndexMap;
    use proptest::prelude::*;

    #[test]
    fn prints_like_omegaconf() {
        let n = parse("name: iris\nlr: 1e-5\nflag: 'yes'\nempty: ''\nnum: '1'\nnested:\n  xs:\n  - 1\n  - a: 2\n    b: 3\n  none: null\n  m: {}\n").unwrap();
        assert_eq!(
            to_yaml(&n),
            "name: iris\nlr: 1.0e-05\nflag: 'yes'\nempty: ''\nnum: '1'\nnested:\n  xs:\n  - 1\n  - a: 2\n    b: 3\n  none: null\n  m: {}\n"
        );
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
    }
}
