//! Hydra's command-line override grammar: `key=value`, `+key=value`, `++key=value`, `~key[=value]`,
//! `group=option`, `group@package=option`, with lists, dicts, quoted strings, escapes, interpolations and
//! sweeps (`a=1,2`, `choice()`, `range()`, `glob()`, `sort()`, `shuffle()`).
//!
//! Values are typed as Hydra types them: `1` an int, `1.5`/`1e-3`/`inf`/`nan` floats, `true`/`False` booleans,
//! `null` None, anything else a string (surrounding spaces dropped). Errors name the column.

use indexmap::IndexMap;

use orchard_yaml::python::{self, Booleans};
use orchard_yaml::Node;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Error parsing override '{input}'\n{message} at column {column}")]
pub struct OverrideError {
    pub input: String,
    pub message: String,
    /// 1-based.
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideKind {
    /// `key=value`: change an existing value (or choose a group option).
    Change,
    /// `+key=value`: add a value that must not exist yet.
    Add,
    /// `++key=value`: add or change.
    ForceAdd,
    /// `~key` or `~key=value`: delete.
    Delete,
}

/// A sweep: several values for one key, one job each.
#[derive(Debug, Clone, PartialEq)]
pub enum Sweep {
    Choice(Vec<Node>),
    Range {
        start: f64,
        stop: f64,
        step: f64,
        ints: bool,
    },
    Glob {
        include: Vec<String>,
        exclude: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Single(Node),
    Sweep(Sweep),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub kind: OverrideKind,
    /// `db`, `a.b.c`, or a group path `server/db`.
    pub key: String,
    /// The `@package` part, if any.
    pub package: Option<String>,
    /// `None` for `~key`.
    pub value: Option<Value>,
    /// The override as typed.
    pub input: String,
}

impl Override {
    pub fn is_sweep(&self) -> bool {
        matches!(self.value, Some(Value::Sweep(_)))
    }
}

struct P<'a> {
    input: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> P<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, OverrideError> {
        Err(OverrideError {
            input: self.input.to_string(),
            message: message.into(),
            column: self.pos + 1,
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn key(&mut self) -> Result<(String, Option<String>), OverrideError> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '$'))
        {
            self.pos += 1;
        }
        let key: String = self.chars[start..self.pos].iter().collect();
        if key.is_empty() {
            return self.err("expected a key");
        }
        let package = if self.eat('@') {
            let s = self.pos;
            while matches!(self.peek(), Some(c) if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '$'))
            {
                self.pos += 1;
            }
            Some(self.chars[s..self.pos].iter().collect())
        } else {
            None
        };
        Ok((key, package))
    }

    /// value := element | element (',' element)+   (a simple choice sweep)
    fn value(&mut self) -> Result<Value, OverrideError> {
        if self.peek().is_none() {
            // `key=` sets the empty string.
            return Ok(Value::Single(Node::Str(String::new())));
        }
        let first = self.element(true)?;
        if self.peek() == Some(',') {
            let mut items = vec![first];
            while self.eat(',') {
                items.push(match self.element(true)? {
                    Element::Node(n) => Element::Node(n),
                    Element::Sweep(_) => return self.err("a sweep cannot be an item of a sweep"),
                });
            }
            let nodes = items
                .into_iter()
                .map(|e| match e {
                    Element::Node(n) => Ok(n),
                    Element::Sweep(_) => self.err("a sweep cannot be an item of a sweep"),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Value::Sweep(Sweep::Choice(nodes)));
        }
        match first {
            Element::Node(n) => Ok(Value::Single(n)),
            Element::Sweep(s) => Ok(Value::Sweep(s)),
        }
    }

    fn element(&mut self, top: bool) -> Result<Element, OverrideError> {
        self.skip_ws();
        let e = match self.peek() {
            Some('[') => Element::Node(self.list()?),
            Some('{') => Element::Node(self.dict()?),
            Some('\'' | '"') => {
                let s = self.quoted()?;
                Element::Node(Node::Str(s))
            }
            _ => {
                if let Some(f) = self.function()? {
                    f
                } else {
                    Element::Node(self.primitive(top)?)
                }
            }
        };
        self.skip_ws();
        Ok(e)
    }

    fn list(&mut self) -> Result<Node, OverrideError> {
        let mut items = Vec::new();
        self.items('[', ']', |p| match p.element(false)? {
            Element::Node(n) => {
                items.push(n);
                Ok(())
            }
            Element::Sweep(_) => p.err("a sweep cannot be a list item"),
        })?;
        Ok(Node::List(items))
    }

    /// `open`, items read by `item` separated by commas, `close`: the frame of a list or dict.
    fn items(
        &mut self,
        open: char,
        close: char,
        mut item: impl FnMut(&mut Self) -> Result<(), OverrideError>,
    ) -> Result<(), OverrideError> {
        self.eat(open);
        self.skip_ws();
        if self.eat(close) {
            return Ok(());
        }
        loop {
            item(self)?;
            if self.closes(close)? {
                return Ok(());
            }
        }
    }

    /// After an item of a list or dict: `,` (another item follows: false) or `close` (the end: true); anything
    /// else is ANTLR's error, as Hydra reports it.
    fn closes(&mut self, close: char) -> Result<bool, OverrideError> {
        if self.eat(',') {
            return Ok(false);
        }
        if self.eat(close) {
            return Ok(true);
        }
        self.err(match self.peek() {
            Some(c) => format!("mismatched input '{c}' expecting {{',', '{close}'}}"),
            None => format!("missing '{close}' at '<EOF>'"),
        })
    }

    fn dict(&mut self) -> Result<Node, OverrideError> {
        let mut map = IndexMap::new();
        self.items('{', '}', |p| {
            p.skip_ws();
            let start = p.pos;
            while matches!(p.peek(), Some(c) if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '$' | '/' | '+' | '%' | '*' | '@' | '?' | '|'))
            {
                p.pos += 1;
            }
            let key: String = p.chars[start..p.pos].iter().collect();
            if key.is_empty() {
                return p.err("expected a dictionary key");
            }
            p.skip_ws();
            if !p.eat(':') {
                return p.err(format!("missing ':' after dictionary key '{key}'"));
            }
            match p.element(false)? {
                Element::Node(n) => {
                    map.insert(key, n);
                    Ok(())
                }
                Element::Sweep(_) => p.err("a sweep cannot be a dictionary value"),
            }
        })?;
        Ok(Node::Map(map))
    }

    fn quoted(&mut self) -> Result<String, OverrideError> {
        let q = self.peek().unwrap_or('\'');
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = start;
                    return self.err(format!("unterminated quoted string starting with {q}"));
                }
                Some('\\') if matches!(self.chars.get(self.pos + 1), Some(c) if *c == q || *c == '\\') =>
                {
                    s.push(self.chars[self.pos + 1]);
                    self.pos += 2;
                }
                Some(c) if c == q => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `name(args)` for the sweep and cast functions; `None` if what follows is not a call.
    fn function(&mut self) -> Result<Option<Element>, OverrideError> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if name.is_empty() || self.peek() != Some('(') {
            self.pos = start;
            return Ok(None);
        }
        let known = [
            "choice", "range", "glob", "sort", "shuffle", "interval", "tag", "int", "float", "str",
            "bool",
        ];
        if !known.contains(&name.as_str()) {
            self.pos = start;
            return Ok(None);
        }
        self.eat('(');
        let mut args: Vec<(Option<String>, Element)> = Vec::new();
        self.skip_ws();
        if !self.eat(')') {
            loop {
                self.skip_ws();
                // `name=value` keyword argument?
                let save = self.pos;
                let mut kw = None;
                let s = self.pos;
                while matches!(self.peek(), Some(c) if c.is_alphanumeric() || c == '_') {
                    self.pos += 1;
                }
                if self.pos > s && self.peek() == Some('=') {
                    kw = Some(self.chars[s..self.pos].iter().collect::<String>());
                    self.pos += 1;
                } else {
                    self.pos = save;
                }
                let e = self.element(false)?;
                args.push((kw, e));
                if self.eat(',') {
                    continue;
                }
                if self.eat(')') {
                    break;
                }
                return self.err(format!("missing ')' in call to {name}"));
            }
        }
        let nodes = |args: &[(Option<String>, Element)]| -> Vec<Node> {
            args.iter()
                .filter(|(k, _)| k.is_none())
                .flat_map(|(_, e)| match e {
                    Element::Node(n) => vec![n.clone()],
                    Element::Sweep(Sweep::Choice(items)) => items.clone(),
                    Element::Sweep(_) => vec![],
                })
                .collect()
        };
        let num = |n: &Node| match n {
            Node::Int(i) => Some(*i as f64),
            Node::Float(f) => Some(*f),
            _ => None,
        };
        let el = match name.as_str() {
            "choice" => Element::Sweep(Sweep::Choice(nodes(&args))),
            "range" => {
                let vals: Vec<&Node> = args
                    .iter()
                    .filter_map(|(_, e)| {
                        if let Element::Node(n) = e {
                            Some(n)
                        } else {
                            None
                        }
                    })
                    .collect();
                let ints = vals.iter().all(|n| matches!(n, Node::Int(_)));
                let nums: Vec<f64> = vals.iter().filter_map(|n| num(n)).collect();
                if nums.len() != vals.len() || nums.is_empty() || nums.len() > 3 {
                    return self.err("range() takes 1 to 3 numbers: range(start, stop[, step])");
                }
                let (start, stop, step) = match nums.len() {
                    1 => (0.0, nums[0], 1.0),
                    2 => (nums[0], nums[1], 1.0),
                    _ => (nums[0], nums[1], nums[2]),
                };
                if step == 0.0 {
                    return self.err("range() step must not be zero");
                }
                Element::Sweep(Sweep::Range {
                    start,
                    stop,
                    step,
                    ints,
                })
            }
            "glob" => {
                let strs = |n: &Node| -> Vec<String> {
                    match n {
                        Node::List(l) => l.iter().filter_map(Node::as_str).map(str::to_string).collect(),
                        Node::Str(s) => vec![s.clone()],
                        _ => vec![],
                    }
                };
                let mut include = Vec::new();
                let mut exclude = Vec::new();
                for (i, (kw, e)) in args.iter().enumerate() {
                    let Element::Node(n) = e else { continue };
                    match (kw.as_deref(), i) {
                        (Some("exclude"), _) | (None, 1) => exclude = strs(n),
                        _ => include = strs(n),
                    }
                }
                Element::Sweep(Sweep::Glob { include, exclude })
            }
            "sort" => {
                let reverse = args.iter().any(|(k, e)| {
                    k.as_deref() == Some("reverse") && matches!(e, Element::Node(Node::Bool(true)))
                });
                let swept = args
                    .iter()
                    .find_map(|(k, e)| if k.is_none() { Some(e.clone()) } else { None });
                match swept {
                    Some(Element::Sweep(Sweep::Range {
                        start,
                        stop,
                        step,
                        ints,
                    })) if reverse => {
                        let mut vals = range_values(start, stop, step, ints);
                        vals.reverse();
                        Element::Sweep(Sweep::Choice(vals))
                    }
                    Some(Element::Sweep(s @ Sweep::Range { .. })) => Element::Sweep(s),
                    _ => {
                        let mut vals = nodes(&args);
                        vals.sort_by(compare_nodes);
                        if reverse {
                            vals.reverse();
                        }
                        Element::Sweep(Sweep::Choice(vals))
                    }
                }
            }
            "int" | "float" | "str" | "bool" => {
                let vals = nodes(&args);
                let cast = |n: &Node| cast(&name, n);
                let swept = args.iter().any(|(_, e)| matches!(e, Element::Sweep(_)));
                let cast_vals: Result<Vec<Node>, String> = vals.iter().map(cast).collect();
                let cast_vals = match cast_vals {
                    Ok(v) => v,
                    Err(m) => return self.err(m),
                };
                if swept {
                    Element::Sweep(Sweep::Choice(cast_vals))
                } else {
                    match cast_vals.into_iter().next() {
                        Some(n) => Element::Node(n),
                        None => return self.err(format!("{name}() needs a value")),
                    }
                }
            }
            other => return self.err(format!("{other}() is not supported by the basic sweeper")),
        };
        Ok(Some(el))
    }

    /// An unquoted value: runs of characters, escapes and interpolations, up to a structural character.
    fn primitive(&mut self, top: bool) -> Result<Node, OverrideError> {
        let mut text = String::new();
        let mut raw_simple = true; // no escapes or interpolations: may be typed as a number/bool/null
        let start = self.pos;
        loop {
            match self.peek() {
                None => break,
                Some('\\') => match self.chars.get(self.pos + 1) {
                    Some(c) if "\\()[]{}:=, \t".contains(*c) => {
                        text.push(*c);
                        self.pos += 2;
                        raw_simple = false;
                    }
                    _ => {
                        text.push('\\');
                        self.pos += 1;
                    }
                },
                Some('$') if self.chars.get(self.pos + 1) == Some(&'{') => {
                    // An interpolation is kept verbatim, nested braces included.
                    let mut depth = 0;
                    loop {
                        match self.peek() {
                            None => return self.err("unterminated interpolation '${'"),
                            Some(c) => {
                                text.push(c);
                                self.pos += 1;
                                if c == '{' {
                                    depth += 1;
                                } else if c == '}' {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    raw_simple = false;
                }
                Some(',') | Some(']') | Some('}') => break,
                Some(':' | ')') if !top => break,
                Some(c @ ('[' | '{' | '(' | ')' | '=' | '\'' | '"')) => {
                    return self.err(format!(
                        "extraneous input '{c}': quote the value or escape it with '\\\\'"
                    ));
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        if self.pos == start {
            return self.err("expected a value");
        }
        let trimmed = text.trim_matches([' ', '\t']);
        if raw_simple {
            Ok(type_primitive(trimmed))
        } else {
            Ok(Node::Str(trimmed.to_string()))
        }
    }
}

#[derive(Debug, Clone)]
enum Element {
    Node(Node),
    Sweep(Sweep),
}

/// Types an unquoted override value as Hydra does.
pub fn type_primitive(s: &str) -> Node {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "null" => return Node::Null,
        "true" => return Node::Bool(true),
        "false" => return Node::Bool(false),
        "inf" | "+inf" => return Node::Float(f64::INFINITY),
        "-inf" => return Node::Float(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Node::Float(f64::NAN),
        _ => {}
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let is_int = !body.is_empty()
        && (body == "0"
            || (body.as_bytes()[0] != b'0'
                && body.as_bytes()[0].is_ascii_digit()
                && !body.ends_with('_')
                && !body.contains("__")
                && body.chars().all(|c| c.is_ascii_digit() || c == '_')));
    if is_int {
        if let Ok(i) = s.replace('_', "").parse::<i64>() {
            return Node::Int(i);
        }
    }
    let float_like = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+' | '_'))
        && body.chars().any(|c| c.is_ascii_digit())
        && (body.contains('.') || body.contains(['e', 'E']))
        && body.as_bytes()[0] != b'e'
        && body.as_bytes()[0] != b'E';
    if float_like {
        if let Ok(f) = s.replace('_', "").parse::<f64>() {
            return Node::Float(f);
        }
    }
    Node::Str(s.to_string())
}

fn cast(kind: &str, n: &Node) -> Result<Node, String> {
    Ok(match (kind, n) {
        ("int", Node::Int(i)) => Node::Int(*i),
        ("int", Node::Float(f)) => Node::Int(*f as i64),
        ("int", Node::Bool(b)) => Node::Int(*b as i64),
        ("int", Node::Str(s)) => Node::Int(
            s.trim()
                .parse()
                .map_err(|_| format!("int('{s}') is not a number"))?,
        ),
        ("float", Node::Int(i)) => Node::Float(*i as f64),
        ("float", Node::Float(f)) => Node::Float(*f),
        ("float", Node::Str(s)) => Node::Float(
            s.trim()
                .parse()
                .map_err(|_| format!("float('{s}') is not a number"))?,
        ),
        ("str", Node::Float(f)) => Node::Str(python::float_repr(*f)),
        ("str", Node::Bool(b)) => Node::Str(if *b { "True" } else { "False" }.into()),
        ("str", Node::Null) => Node::Str("None".into()),
        ("str", Node::Int(i)) => Node::Str(i.to_string()),
        ("str", Node::Str(s)) => Node::Str(s.clone()),
        ("bool", Node::Bool(b)) => Node::Bool(*b),
        ("bool", Node::Int(i)) => Node::Bool(*i != 0),
        ("bool", Node::Str(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Node::Bool(true),
            "false" => Node::Bool(false),
            _ => return Err(format!("bool('{s}') is neither true nor false")),
        },
        (k, other) => return Err(format!("cannot cast {} to {k}", other.kind())),
    })
}

fn compare_nodes(a: &Node, b: &Node) -> std::cmp::Ordering {
    match (a, b) {
        (Node::Int(x), Node::Int(y)) => x.cmp(y),
        (Node::Int(_) | Node::Float(_), Node::Int(_) | Node::Float(_)) => {
            let f = |n: &Node| {
                if let Node::Int(i) = n {
                    *i as f64
                } else if let Node::Float(f) = n {
                    *f
                } else {
                    0.0
                }
            };
            f(a).total_cmp(&f(b))
        }
        (Node::Str(x), Node::Str(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

/// The values of `range(start, stop, step)`, Python-style (stop excluded).
pub fn range_values(start: f64, stop: f64, step: f64, ints: bool) -> Vec<Node> {
    let mut out = Vec::new();
    let mut i = 0u64;
    loop {
        let v = start + step * i as f64;
        if (step > 0.0 && v >= stop) || (step < 0.0 && v <= stop) || out.len() > 100_000 {
            break;
        }
        out.push(if ints {
            Node::Int(v as i64)
        } else {
            Node::Float(v)
        });
        i += 1;
    }
    out
}

/// Parses one override.
pub fn parse_override(input: &str) -> Result<Override, OverrideError> {
    let mut p = P {
        input,
        chars: input.chars().collect(),
        pos: 0,
    };
    let kind = if p.eat('~') {
        OverrideKind::Delete
    } else if p.eat('+') {
        if p.eat('+') {
            OverrideKind::ForceAdd
        } else {
            OverrideKind::Add
        }
    } else {
        OverrideKind::Change
    };
    let (key, package) = p.key()?;
    let value = if p.eat('=') {
        Some(p.value()?)
    } else if kind == OverrideKind::Delete && p.peek().is_none() {
        None
    } else if p.peek().is_none() {
        return p.err(format!("missing '=' after key '{key}'"));
    } else {
        return p.err(format!("unexpected '{}' in key", p.peek().unwrap_or(' ')));
    };
    if p.pos < p.chars.len() {
        return p.err(format!(
            "extraneous input '{}'",
            p.chars[p.pos..].iter().collect::<String>()
        ));
    }
    Ok(Override {
        kind,
        key,
        package,
        value,
        input: input.to_string(),
    })
}

/// An override value printed back the way it would be typed.
pub(crate) fn override_text(n: &Node) -> String {
    match n {
        Node::Null => "null".into(),
        other => python::scalar_str(other, Booleans::Lower).unwrap_or_else(|| other.to_json().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn single(s: &str) -> Node {
        match parse_override(s).unwrap().value {
            Some(Value::Single(n)) => n,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn kinds_keys_and_packages() {
        let o = parse_override("+db@backup=mysql").unwrap();
        assert_eq!(
            (o.kind, o.key.as_str(), o.package.as_deref()),
            (OverrideKind::Add, "db", Some("backup"))
        );
        assert_eq!(
            parse_override("++a.b=1").unwrap().kind,
            OverrideKind::ForceAdd
        );
        let d = parse_override("~trainer").unwrap();
        assert_eq!((d.kind, d.value), (OverrideKind::Delete, None));
        assert_eq!(parse_override("server/db=pg").unwrap().key, "server/db");
    }

    #[test]
    fn values_are_typed_like_hydra() {
        assert_eq!(single("a=1"), Node::Int(1));
        assert_eq!(single("a=-1_000"), Node::Int(-1000));
        assert_eq!(single("a=0.02"), Node::Float(0.02));
        assert_eq!(single("a=1e-3"), Node::Float(1e-3));
        assert_eq!(single("a=TRUE"), Node::Bool(true));
        assert_eq!(single("a=null"), Node::Null);
        assert_eq!(single("a=inf"), Node::Float(f64::INFINITY));
        assert_eq!(single("a=007"), Node::Str("007".into()));
        assert_eq!(single("a= hello world "), Node::Str("hello world".into()));
        assert_eq!(single("a="), Node::Str(String::new()));
        assert_eq!(single("a='1,2'"), Node::Str("1,2".into()));
        assert_eq!(single(r#"a="it's""#), Node::Str("it's".into()));
        assert_eq!(single(r"a=x\,y"), Node::Str("x,y".into()));
        assert_eq!(single("a=${b.c}"), Node::Str("${b.c}".into()));
        assert_eq!(
            single("a=${oc.env:HOME,/tmp}"),
            Node::Str("${oc.env:HOME,/tmp}".into())
        );
        assert_eq!(
            single("a=[1, x, [2]]"),
            Node::List(vec![
                Node::Int(1),
                Node::Str("x".into()),
                Node::List(vec![Node::Int(2)])
            ])
        );
        let d = single("a={x: 1, y: [a, b]}");
        assert_eq!(d.get_path("y.1"), Some(&Node::Str("b".into())));
        assert_eq!(
            single("a=/data/iris.csv"),
            Node::Str("/data/iris.csv".into())
        );
        assert_eq!(single("a=int(3.7)"), Node::Int(3));
    }

    #[test]
    fn sweeps() {
        let o = parse_override("lr=0.1,0.01").unwrap();
        assert_eq!(
            o.value,
            Some(Value::Sweep(Sweep::Choice(vec![
                Node::Float(0.1),
                Node::Float(0.01)
            ])))
        );
        let o = parse_override("n=range(1,4)").unwrap();
        assert_eq!(
            o.value,
            Some(Value::Sweep(Sweep::Range {
                start: 1.0,
                stop: 4.0,
                step: 1.0,
                ints: true
            }))
        );
        let o = parse_override("db=glob(*,exclude=sql*)").unwrap();
        assert_eq!(
            o.value,
            Some(Value::Sweep(Sweep::Glob {
                include: vec!["*".into()],
                exclude: vec!["sql*".into()]
            }))
        );
        let o = parse_override("x=choice(a,b)").unwrap();
        assert!(o.is_sweep());
        let o = parse_override("x=sort(3,1,2)").unwrap();
        assert_eq!(
            o.value,
            Some(Value::Sweep(Sweep::Choice(vec![
                Node::Int(1),
                Node::Int(2),
                Node::Int(3)
            ])))
        );
        assert_eq!(range_values(0.0, 1.0, 0.25, false).len(), 4);
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse_override("a=[1,2").unwrap_err();
        assert_eq!(e.column, 7, "{e}");
        let e = parse_override("=1").unwrap_err();
        assert_eq!(e.column, 1);
        let e = parse_override("a").unwrap_err();
        assert!(e.message.contains("missing '='"), "{e}");
        assert!(parse_override("a='x").is_err());
        assert!(parse_override("a=b=c").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_override(&s);
        }

        /// Quoting any text gives back exactly that text.
        #[test]
        fn quoted_strings_round_trip(s in "[^'\\\\]{0,20}") {
            let o = parse_override(&format!("k='{s}'")).unwrap();
            prop_assert_eq!(o.value, Some(Value::Single(Node::Str(s))));
        }

        /// Integers and simple floats are typed as numbers.
        #[test]
        fn numbers_are_typed(i in any::<i32>(), f in -1.0e6f64..1.0e6) {
            prop_assert_eq!(type_primitive(&i.to_string()), Node::Int(i as i64));
            let text = format!("{f:?}");
            prop_assert_eq!(type_primitive(&text), Node::Float(text.parse().unwrap()));
        }
    }
}
