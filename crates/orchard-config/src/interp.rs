//! OmegaConf-style `${...}` interpolation: node references (absolute `${a.b}`, relative `${.x}`, `${..x}`,
//! list items `${a.0}` or `${a[0]}`), nested interpolations (`${a.${b}}`), string interpolation
//! (`run_${seed}` — the pieces joined as Python's `str()` would print them), `\${` escapes, and the resolvers
//! Hydra users lean on: `oc.env`, `oc.select`, `now` and `hydra:`.

use orchard_yaml::python::{self, Booleans};
use orchard_yaml::Node;
use crate::error::ConfigError;

/// Whether a string holds an interpolation (an unescaped `${`).
pub fn has_interpolation(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(1))
        .any(|i| b[i] == b'$' && b[i + 1] == b'{' && (i == 0 || b[i - 1] != b'\\'))
}

/// What `${hydra:...}` answers.
#[derive(Debug, Clone, Default)]
pub struct HydraContext {
    pub runtime_cwd: String,
    pub job_name: String,
    pub choices: Vec<(String, String)>,
}

struct Resolver<'a> {
    root: &'a Node,
    hydra: &'a HydraContext,
    depth: usize,
}

/// Resolves every interpolation in `root`.
pub fn resolve_all(root: &Node, hydra: &HydraContext) -> Result<Node, ConfigError> {
    let r = Resolver {
        root,
        hydra,
        depth: 0,
    };
    r.resolve_tree(root, "")
}

/// The resolved value at a dotted path.
pub fn resolve_path(root: &Node, path: &str, hydra: &HydraContext) -> Result<Node, ConfigError> {
    let node = lookup(root, path)
        .ok_or_else(|| ConfigError::Interpolation(format!("Key '{path}' not found")))?;
    let r = Resolver {
        root,
        hydra,
        depth: 0,
    };
    r.resolve_tree(node, parent_of(path))
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('.').map(|(p, _)| p).unwrap_or("")
}

fn lookup<'n>(root: &'n Node, path: &str) -> Option<&'n Node> {
    // `a[0].b` is `a.0.b`.
    let normalized = path.replace('[', ".").replace(']', "");
    root.get_path(normalized.trim_matches('.'))
}

impl<'a> Resolver<'a> {
    /// `here` is the path of the container holding `node` (for relative references).
    fn resolve_tree(&self, node: &Node, here: &str) -> Result<Node, ConfigError> {
        Ok(match node {
            Node::Map(m) => {
                let mut out = indexmap::IndexMap::new();
                for (k, v) in m {
                    let path = if here.is_empty() {
                        k.clone()
                    } else {
                        format!("{here}.{k}")
                    };
                    out.insert(k.clone(), self.resolve_tree_at(v, &path)?);
                }
                Node::Map(out)
            }
            Node::List(l) => {
                let mut out = Vec::new();
                for (i, v) in l.iter().enumerate() {
                    let path = if here.is_empty() {
                        i.to_string()
                    } else {
                        format!("{here}.{i}")
                    };
                    out.push(self.resolve_tree_at(v, &path)?);
                }
                Node::List(out)
            }
            Node::Str(s) if has_interpolation(s) => self.resolve_string(s, here)?,
            Node::Str(s) if s.contains("\\${") => Node::Str(s.replace("\\${", "${")),
            other => other.clone(),
        })
    }

    /// Resolves the value stored at `path` (its container is the parent of `path`).
    fn resolve_tree_at(&self, node: &Node, path: &str) -> Result<Node, ConfigError> {
        match node {
            Node::Map(_) | Node::List(_) => self.resolve_tree(node, path),
            _ => self.resolve_tree(node, parent_of(path)),
        }
    }

    fn deeper(&self) -> Result<Resolver<'a>, ConfigError> {
        if self.depth > 64 {
            return Err(ConfigError::Interpolation(
                "interpolation cycle (or nesting deeper than 64)".into(),
            ));
        }
        Ok(Resolver {
            root: self.root,
            hydra: self.hydra,
            depth: self.depth + 1,
        })
    }

    /// A whole string: one `${...}` keeps the referenced value's type; anything else is a string.
    fn resolve_string(&self, s: &str, here: &str) -> Result<Node, ConfigError> {
        let pieces = split(s)?;
        if let [Piece::Interp(inner)] = pieces.as_slice() {
            return self.resolve_interp(inner, here);
        }
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(&t),
                Piece::Interp(inner) => {
                    out.push_str(&python_str(&self.resolve_interp(&inner, here)?))
                }
            }
        }
        Ok(Node::Str(out))
    }

    /// The inside of one `${...}` (nested interpolations in it resolved first).
    fn resolve_interp(&self, inner: &str, here: &str) -> Result<Node, ConfigError> {
        let d = self.deeper()?;
        let expr = if has_interpolation(inner) {
            match d.resolve_string(inner, here)? {
                Node::Str(s) => s,
                other => python_str(&other),
            }
        } else {
            inner.to_string()
        };
        let expr = expr.trim();
        // A resolver call `name:args`, unless it is a plain key (keys may not contain ':').
        if let Some((name, args)) = expr.split_once(':') {
            return d.call(name.trim(), args, here);
        }
        let path = if expr.starts_with('.') {
            let ups = expr.chars().take_while(|c| *c == '.').count();
            let mut base: Vec<&str> = if here.is_empty() {
                vec![]
            } else {
                here.split('.').collect()
            };
            for _ in 1..ups {
                base.pop();
            }
            let rest = &expr[ups..];
            let mut parts = base;
            if !rest.is_empty() {
                parts.push(rest);
            }
            parts.join(".")
        } else {
            expr.to_string()
        };
        let target = lookup(self.root, &path).ok_or_else(|| {
            ConfigError::Interpolation(format!("Interpolation key '{expr}' not found"))
        })?;
        if *target == Node::Missing {
            return Err(ConfigError::Interpolation(format!(
                "MissingMandatoryValue: Missing mandatory value: {path}"
            )));
        }
        d.resolve_tree_at(target, &path)
    }

    fn call(&self, name: &str, args: &str, here: &str) -> Result<Node, ConfigError> {
        let args = split_args(args);
        let arg = |i: usize| args.get(i).map(|s| s.trim().to_string());
        match name {
            "oc.env" => {
                let var = arg(0).unwrap_or_default();
                match std::env::var(&var) {
                    Ok(v) => Ok(Node::Str(v)),
                    Err(_) => match arg(1) {
                        Some(default) => Ok(default_value(&default)),
                        None => Err(ConfigError::Interpolation(format!(
                            "Environment variable '{var}' not found"
                        ))),
                    },
                }
            }
            "oc.select" => {
                let key = arg(0).unwrap_or_default();
                match lookup(self.root, &key) {
                    Some(Node::Missing) | None => {
                        Ok(arg(1).map(|d| default_value(&d)).unwrap_or(Node::Null))
                    }
                    Some(node) => self.resolve_tree_at(node, &key),
                }
            }
            "now" => Ok(Node::Str(strftime_utc(
                &arg(0).unwrap_or_else(|| "%Y-%m-%d_%H-%M-%S".into()),
            ))),
            "hydra" => {
                let key = arg(0).unwrap_or_default();
                match key.as_str() {
                    "runtime.cwd" => Ok(Node::Str(self.hydra.runtime_cwd.clone())),
                    "job.name" => Ok(Node::Str(self.hydra.job_name.clone())),
                    k if k.starts_with("runtime.choices.") => {
                        let g = &k["runtime.choices.".len()..];
                        Ok(self
                            .hydra
                            .choices
                            .iter()
                            .find(|(c, _)| c == g)
                            .map(|(_, v)| Node::Str(v.clone()))
                            .unwrap_or(Node::Null))
                    }
                    other => Err(ConfigError::Interpolation(format!(
                        "hydra:{other} is not available outside a Hydra run"
                    ))),
                }
            }
            other => {
                let _ = here;
                Err(ConfigError::Interpolation(format!(
                    "Unsupported interpolation type {other}"
                )))
            }
        }
    }
}

enum Piece {
    Text(String),
    Interp(String),
}

/// Splits a string into text and `${...}` pieces (braces nest; `\${` is literal).
fn split(s: &str) -> Result<Vec<Piece>, ConfigError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
            text.push_str("${");
            i += 3;
            continue;
        }
        if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
            let mut depth = 1;
            let mut j = i + 2;
            while j < chars.len() && depth > 0 {
                match chars[j] {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            if depth != 0 {
                return Err(ConfigError::Interpolation(format!(
                    "unterminated interpolation in '{s}'"
                )));
            }
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Interp(chars[i + 2..j - 1].iter().collect()));
            i = j;
            continue;
        }
        text.push(chars[i]);
        i += 1;
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// Resolver arguments: split on top-level commas (not inside quotes or brackets).
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (None, '[' | '{' | '(') => {
                depth += 1;
                cur.push(c);
            }
            (None, ']' | '}' | ')') => {
                depth -= 1;
                cur.push(c);
            }
            (None, ',') if depth == 0 => out.push(std::mem::take(&mut cur)),
            (None, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A resolver's default argument, typed like an override value (quotes make a string).
fn default_value(s: &str) -> Node {
    let t = s.trim();
    if t.len() >= 2
        && ((t.starts_with('\'') && t.ends_with('\'')) || (t.starts_with('"') && t.ends_with('"')))
    {
        return Node::Str(t[1..t.len() - 1].to_string());
    }
    crate::overrides::type_primitive(t)
}

/// Python's `str()` of a value, used when it is embedded in a longer string.
pub fn python_str(n: &Node) -> String {
    python::scalar_str(n, Booleans::Python).unwrap_or_else(|| n.to_json().to_string())
}

/// Python's `strftime` of the current time (UTC) through chrono, whose directives are Python's; a pattern
/// chrono cannot read is returned as written rather than failing the composition.
fn strftime_utc(fmt: &str) -> String {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(fmt).any(|item| matches!(item, Item::Error)) {
        return fmt.to_string();
    }
    chrono::Utc::now().format(fmt).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchard_yaml::parse;

    fn resolved(yaml: &str) -> Node {
        resolve_all(&parse(yaml).unwrap(), &HydraContext::default()).unwrap()
    }

    #[test]
    fn references_keep_types_and_strings_concatenate() {
        let n = resolved("a: {b: 3, flag: true}\nx: ${a.b}\ny: run_${a.b}_${a.flag}\nz: ${a}\nlst: [1, '${a.b}']\nrel:\n  k: 1\n  up: ${.k}\n  top: ${..x}\nesc: \\${a.b}\n");
        assert_eq!(n.get_path("x"), Some(&Node::Int(3)));
        assert_eq!(n.get_path("y"), Some(&Node::Str("run_3_True".into())));
        assert_eq!(n.get_path("z.b"), Some(&Node::Int(3)));
        assert_eq!(n.get_path("lst.1"), Some(&Node::Int(3)));
        assert_eq!(n.get_path("rel.up"), Some(&Node::Int(1)));
        assert_eq!(n.get_path("rel.top"), Some(&Node::Int(3)));
        assert_eq!(n.get_path("esc"), Some(&Node::Str("${a.b}".into())));
    }

    #[test]
    fn nested_and_resolvers() {
        std::env::set_var("ORCHARD_TEST_VAR", "from-env");
        let n = resolved("which: b\nopts: {a: 1, b: 2}\npick: ${opts.${which}}\nenv: ${oc.env:ORCHARD_TEST_VAR}\ndefault: ${oc.env:ORCHARD_NO_SUCH_VAR,fallback}\nsel: ${oc.select:nope,7}\n");
        assert_eq!(n.get_path("pick"), Some(&Node::Int(2)));
        assert_eq!(n.get_path("env"), Some(&Node::Str("from-env".into())));
        assert_eq!(n.get_path("default"), Some(&Node::Str("fallback".into())));
        assert_eq!(n.get_path("sel"), Some(&Node::Int(7)));
    }

    #[test]
    fn errors() {
        let e = resolve_all(&parse("a: ${nope}").unwrap(), &HydraContext::default()).unwrap_err();
        assert!(
            e.to_string().contains("Interpolation key 'nope' not found"),
            "{e}"
        );
        let e = resolve_all(
            &parse("a: ${b}\nb: ${a}").unwrap(),
            &HydraContext::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
        assert!(resolve_all(&parse("a: ${b}\nb: ???").unwrap(), &HydraContext::default()).is_err());
    }
}
