//! Reading MLflow requests by field name, with MLflow's leniency (numbers may arrive as strings, doubles as
//! "NaN"/"Infinity", a repeated query key is a list) and MLflow's wording when a required field is missing or
//! mistyped. A request is one JSON object (a body) or a query string turned into one; [`FromFields`] reads
//! a typed request out of it, so an endpoint's fields are named once, in its request type.

use serde_json::{Map, Value};

use orchard_tracking::{TrackingError, ViewType};

/// A request type read from the fields of a request (or of an object nested in one).
pub trait FromFields: Sized {
    fn from_fields(f: &Fields) -> Result<Self, TrackingError>;
}

impl FromFields for Fields {
    fn from_fields(f: &Fields) -> Result<Self, TrackingError> {
        Ok(f.clone())
    }
}

/// The fields of one request (or of one object nested in it).
#[derive(Debug, Clone)]
pub struct Fields(pub Map<String, Value>);

const API_DOCS: &str = "See the API docs for more information about request parameters.";

fn missing(name: &str) -> TrackingError {
    TrackingError::MissingField { field: name.to_string(), docs: true }
}

fn bad(name: &str, value: &Value) -> TrackingError {
    let ty = match value {
        Value::String(_) => "str",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::Bool(_) => "bool",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
        Value::Null => "NoneType",
    };
    TrackingError::invalid_value(name, value.to_string(), format!(":  Hint: Value was of type '{ty}'. {API_DOCS}"))
}

/// A string as it may be stored: without NUL characters.
fn storable<'a>(name: &str, s: &'a str) -> Result<&'a str, TrackingError> {
    if s.contains('\0') {
        let shown = serde_json::to_string(&s.chars().take(100).collect::<String>()).unwrap_or_default();
        return Err(TrackingError::invalid_value(name, shown, ": a NUL character (\\u0000) cannot be stored"));
    }
    Ok(s)
}

impl Fields {
    /// A present, non-null value.
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A string field. A JSON number is refused as MLflow's parser refuses it (`{"run_id": 31}` is a 400 naming
    /// `run_id`, not a lookup of run "31"), and so is a NUL character, which no engine stores the same way
    /// (PostgreSQL refuses it outright).
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, TrackingError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => storable(name, s).map(|s| Some(s.to_string())),
            Some(other) => Err(bad(name, other)),
        }
    }

    /// A string that must be present and non-empty.
    pub fn str(&self, name: &str) -> Result<String, TrackingError> {
        match self.opt_str(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(missing(name)),
        }
    }

    /// A string whose absence means "".
    pub fn str_or_empty(&self, name: &str) -> Result<String, TrackingError> {
        Ok(self.opt_str(name)?.unwrap_or_default())
    }

    /// `run_id` (the name given), falling back to the deprecated `run_uuid`.
    pub fn run_id(&self, _name: &str) -> Result<String, TrackingError> {
        match self.opt_str("run_id")?.filter(|s| !s.is_empty()) {
            Some(s) => Ok(s),
            None => self.str("run_uuid").map_err(|_| missing("run_id")),
        }
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, TrackingError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Some(f as i64)),
                    _ => Err(bad(name, &Value::Number(n.clone()))),
                },
            },
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(v @ Value::String(s)) => {
                s.trim().parse::<i64>().map(Some).map_err(|_| bad(name, v))
            }
            Some(other) => Err(bad(name, other)),
        }
    }

    /// A double: a JSON number, a numeric string, or protobuf's "NaN", "Infinity", "-Infinity".
    pub fn opt_f64(&self, name: &str) -> Result<Option<f64>, TrackingError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| bad(name, &Value::Number(n.clone()))),
            Some(v @ Value::String(s)) => match s.as_str() {
                "NaN" | "nan" => Ok(Some(f64::NAN)),
                "Infinity" | "inf" => Ok(Some(f64::INFINITY)),
                "-Infinity" | "-inf" => Ok(Some(f64::NEG_INFINITY)),
                other => other
                    .trim()
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| bad(name, v)),
            },
            Some(other) => Err(bad(name, other)),
        }
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, TrackingError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(Value::String(s)) => Err(TrackingError::invalid(format!(
                "Invalid boolean value: {s}, must be 'true' or 'false'."
            ))),
            Some(other) => Err(bad(name, other)),
        }
    }

    /// A repeated string field: a JSON array, or one or more query-string occurrences.
    /// Required numbers: as above, and present.
    pub fn i64(&self, name: &str) -> Result<i64, TrackingError> {
        self.opt_i64(name)?.ok_or_else(|| missing(name))
    }

    pub fn f64(&self, name: &str) -> Result<f64, TrackingError> {
        self.opt_f64(name)?.ok_or_else(|| missing(name))
    }

    /// A repeated field, each element read by `item`; a lone string stands for a list of one where
    /// `lone_string` allows it (as MLflow's query-string parsing does for repeated strings).
    fn repeated<T>(
        &self,
        name: &str,
        lone_string: bool,
        item: impl Fn(&Value) -> Result<T, TrackingError>,
    ) -> Result<Vec<T>, TrackingError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(item).collect(),
            Some(v @ Value::String(_)) if lone_string => Ok(vec![item(v)?]),
            Some(other) => Err(bad(name, other)),
        }
    }

    pub fn str_list(&self, name: &str) -> Result<Vec<String>, TrackingError> {
        self.repeated(name, true, |v| match v {
            Value::String(s) => storable(name, s).map(str::to_string),
            other => Err(bad(name, other)),
        })
    }

    /// A repeated message field: each element as its own [`Fields`].
    pub fn objects(&self, name: &str) -> Result<Vec<Fields>, TrackingError> {
        self.repeated(name, false, |v| match v {
            Value::Object(m) => Ok(Fields(m.clone())),
            other => Err(bad(name, other)),
        })
    }

    pub fn object(&self, name: &str) -> Result<Option<Fields>, TrackingError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Fields(m.clone()))),
            Some(other) => Err(bad(name, other)),
        }
    }

    /// A repeated message field read as typed items; an item's errors name it (`metrics[3].value`).
    pub fn list<T: FromFields>(&self, name: &str) -> Result<Vec<T>, TrackingError> {
        self.objects(name)?
            .iter()
            .enumerate()
            .map(|(i, item)| Fields::nested(&format!("{name}[{i}]"), || T::from_fields(item)))
            .collect()
    }

    /// A repeated message field whose items' errors name the item's field alone (as MLflow reports
    /// `models` and `order_by`).
    pub fn list_unnamed<T: FromFields>(&self, name: &str) -> Result<Vec<T>, TrackingError> {
        self.objects(name)?.iter().map(T::from_fields).collect()
    }

    /// A repeated string field that must not be empty.
    pub fn required_list(&self, name: &str) -> Result<Vec<String>, TrackingError> {
        let items = self.str_list(name)?;
        if items.is_empty() {
            return Err(missing(name));
        }
        Ok(items)
    }

    /// A search's view type: MLflow's names or their numbers (a protobuf enum takes both); absent is
    /// `ACTIVE_ONLY`.
    pub fn view_type(&self, name: &str) -> Result<ViewType, TrackingError> {
        let text = match self.get(name) {
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => self.opt_str(name)?,
        };
        Ok(match text.as_deref() {
            None | Some("") | Some("ACTIVE_ONLY") | Some("1") => ViewType::ActiveOnly,
            Some("DELETED_ONLY") | Some("2") => ViewType::DeletedOnly,
            Some("ALL") | Some("3") => ViewType::All,
            Some(other) => {
                let rule = ": expected ACTIVE_ONLY, DELETED_ONLY or ALL";
                return Err(TrackingError::invalid_value(name, format!("\"{other}\""), rule));
            }
        })
    }

    /// Prefixes errors from a nested object with its path (`metrics[3].value`).
    pub fn nested<T>(path: &str, f: impl FnOnce() -> Result<T, TrackingError>) -> Result<T, TrackingError> {
        f().map_err(|e| e.in_field(path))
    }
}

/// Turns a query string into JSON: a key seen once maps to its string, a repeated key to a list.
pub fn query_to_fields(query: &str) -> Fields {
    let mut map = Map::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let v = Value::String(v.into_owned());
        match map.get_mut(k.as_ref()) {
            None => {
                map.insert(k.into_owned(), v);
            }
            Some(Value::Array(items)) => items.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, v]);
            }
        }
    }
    Fields(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a client sends as a query string, reading any field answers a value or a 400 — no panic.
        #[test]
        fn arbitrary_query_strings_never_panic(q in "[a-z_=&%0-9A-Z.+-]{0,60}") {
            let f = query_to_fields(&q);
            for name in ["run_id", "max_results", "run_ids", "value", "flag"] {
                let _ = f.opt_str(name);
                let _ = f.opt_i64(name);
                let _ = f.opt_f64(name);
                let _ = f.opt_bool(name);
                let _ = f.str_list(name);
                let _ = f.objects(name);
            }
        }

        /// Numbers survive the trip through a query string.
        #[test]
        fn integers_and_doubles_read_back(i in any::<i64>(), x in -1.0e300f64..1.0e300) {
            let f = query_to_fields(&format!("i={i}&x={x:e}"));
            prop_assert_eq!(f.opt_i64("i").unwrap(), Some(i));
            prop_assert_eq!(f.opt_f64("x").unwrap(), Some(x));
        }
    }

    #[test]
    fn query_strings_become_fields() {
        let f = query_to_fields("run_ids=a&run_ids=b&metric_key=loss&max_results=10&flag=TRUE");
        assert_eq!(f.str_list("run_ids").unwrap(), vec!["a", "b"]);
        assert_eq!(f.str("metric_key").unwrap(), "loss");
        assert_eq!(f.opt_i64("max_results").unwrap(), Some(10));
        assert_eq!(f.opt_bool("flag").unwrap(), Some(true));
        let one = query_to_fields("run_ids=a");
        assert_eq!(one.str_list("run_ids").unwrap(), vec!["a"]);
    }

    #[test]
    fn strings_are_strings_without_nul() {
        let f = Fields(serde_json::from_str(r#"{"name": 123, "run_id": "a\u0000b", "ids": ["x", 7], "view": 3}"#).unwrap());
        let e = f.str("name").unwrap_err().to_string();
        assert!(e.starts_with("Invalid value 123 for parameter 'name' supplied:  Hint: Value was of type 'int'."), "{e}");
        let e = f.str("run_id").unwrap_err().to_string();
        assert_eq!(e, "Invalid value \"a\\u0000b\" for parameter 'run_id' supplied: a NUL character (\\u0000) cannot be stored");
        assert!(f.str_list("ids").unwrap_err().to_string().contains("'ids'"));
        assert_eq!(f.view_type("view").unwrap(), ViewType::All, "an enum may come as its number");
    }

    #[test]
    fn doubles_accept_protobuf_spellings() {
        let f = Fields(
            serde_json::from_str(r#"{"a": "NaN", "b": "-Infinity", "c": 1.5, "d": "2", "e": [1]}"#)
                .unwrap(),
        );
        assert!(f.f64("a").unwrap().is_nan());
        assert_eq!(f.f64("b").unwrap(), f64::NEG_INFINITY);
        assert_eq!(f.f64("c").unwrap(), 1.5);
        assert_eq!(f.f64("d").unwrap(), 2.0);
        assert!(f.f64("e").is_err());
        assert!(f.f64("missing").is_err());
    }
}
