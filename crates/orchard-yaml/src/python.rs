//! Python's text for values: what `repr(float)` and `str(x)` give, and the float forms of the YAML writers
//! the peers use. Hydra embeds `str(value)` in strings, DVC puts it in command lines and run-cache keys, and
//! both print floats in files; getting one digit or one capital letter different changes a hash or a command.

use crate::node::Node;

/// Python's `repr(float)`: the shortest digits that read back to the same float, in exponent form when the
/// decimal exponent is below -4 or from 16 (`1e-05`, `1e+16`, always two exponent digits), else with at least
/// one decimal (`3.0`); `nan`, `inf`, `-inf`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the same shortest digits; its exponent is the decimal exponent Python tests.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` of a finite float has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes the exponent as digits");
    if (-4..16).contains(&exp) {
        let plain = format!("{f}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// A float as ruamel (DVC's `dvc.lock`) writes it: `repr`, with YAML's `.nan`, `.inf`, `-.inf`.
pub fn yaml_float(f: f64) -> String {
    match f {
        f if f.is_nan() => ".nan".into(),
        f if f.is_infinite() => if f > 0.0 { ".inf" } else { "-.inf" }.into(),
        f => float_repr(f),
    }
}

/// A float as PyYAML (`OmegaConf.to_yaml`) writes it: as ruamel does, but an exponent form always gets a
/// decimal point (`1.0e-05`), so that YAML 1.1 readers do not take it for a string.
pub fn pyyaml_float(f: f64) -> String {
    let r = yaml_float(f);
    if !r.contains('.') && r.contains('e') {
        r.replacen('e', ".0e", 1)
    } else {
        r
    }
}

/// How `str()` spells booleans: Python's `True`/`False`, or the lower case DVC writes into commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booleans {
    Python,
    Lower,
}

/// Python's `str()` of a scalar (`None` for a `null`, `???` for a missing value); `None` for a map or list,
/// whose text depends on the caller (Hydra writes JSON, DVC refuses them).
pub fn scalar_str(n: &Node, booleans: Booleans) -> Option<String> {
    Some(match n {
        Node::Str(s) => s.clone(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => float_repr(*f),
        Node::Bool(b) => match (booleans, b) {
            (Booleans::Python, true) => "True".into(),
            (Booleans::Python, false) => "False".into(),
            (Booleans::Lower, b) => b.to_string(),
        },
        Node::Null => "None".into(),
        Node::Missing => "???".into(),
        Node::Map(_) | Node::List(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn json_as_python_dumps_it() {
        let v = serde_json::json!({"b": [1, 2.5, "é\u{1F600}"], "a": {"y": null, "x": true}});
        assert_eq!(json_dumps(&v, true), r#"{"a": {"x": true, "y": null}, "b": [1, 2.5, "\u00e9\ud83d\ude00"]}"#);
        assert_eq!(json_dumps(&v, false), r#"{"b": [1, 2.5, "\u00e9\ud83d\ude00"], "a": {"y": null, "x": true}}"#);
    }

    #[test]
    fn floats_follow_python() {
        for (f, repr) in [
            (0.1, "0.1"),
            (1e-3, "0.001"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (3.0, "3.0"),
            (123456.5, "123456.5"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1e20, "1e+20"),
            (-2.5e100, "-2.5e+100"),
            (9999999999999998.0, "9999999999999998.0"),
            (-0.0, "-0.0"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(float_repr(f), repr, "{f:e}");
        }
        assert_eq!(yaml_float(1e-5), "1e-05");
        assert_eq!(yaml_float(f64::INFINITY), ".inf");
        assert_eq!(pyyaml_float(1e-5), "1.0e-05");
        assert_eq!(pyyaml_float(2.0), "2.0");
        assert_eq!(pyyaml_float(f64::NAN), ".nan");
    }

    #[test]
    fn str_spells_booleans_as_asked() {
        assert_eq!(scalar_str(&Node::Bool(true), Booleans::Python).as_deref(), Some("True"));
        assert_eq!(scalar_str(&Node::Bool(false), Booleans::Lower).as_deref(), Some("false"));
        assert_eq!(scalar_str(&Node::Null, Booleans::Lower).as_deref(), Some("None"));
        assert_eq!(scalar_str(&Node::empty_map(), Booleans::Python), None);
    }

    proptest! {
        /// Whatever the float, its repr reads back to the same value (what makes it the shortest round trip).
        #[test]
        fn repr_round_trips(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let text = float_repr(f);
            prop_assert_eq!(text.parse::<f64>().unwrap(), f, "{}", text);
            let e = format!("{f:e}");
            let exp: i32 = e.split_once('e').unwrap().1.parse().unwrap();
            prop_assert_eq!(text.contains('e'), !(-4..16).contains(&exp), "{}", text);
        }
    }
}

/// A JSON string as Python's `json.dumps` writes it with `ensure_ascii=True`: short escapes for the usual
/// controls, `\u00XX` for the others and for DEL, and every non-ASCII character as `\uXXXX` (UTF-16 surrogate
/// pairs beyond the BMP), lowercase hex.
pub fn push_json_ascii(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `json.dumps(value)` (with `sort_keys=sort_keys`): `", "` and `": "` between items, floats as
/// `repr`, non-ASCII escaped — the text DVC hashes for its run cache and MLflow stores in JSON-valued tags.
pub fn json_dumps(v: &serde_json::Value, sort_keys: bool) -> String {
    let mut out = String::new();
    dump_into(v, sort_keys, &mut out);
    out
}

fn dump_into(v: &serde_json::Value, sort_keys: bool, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(f)) => out.push_str(&float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => push_json_ascii(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dump_into(item, sort_keys, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            if sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_json_ascii(out, k);
                out.push_str(": ");
                dump_into(&m[k], sort_keys, out);
            }
            out.push('}');
        }
    }
}
