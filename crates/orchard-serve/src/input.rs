//! Request bodies of the three protocols, read into model rows.
//!
//! - `/predict`: one JSON object of named features — nested objects flatten with `_`
//!   (`{"sepal": {"length": 5.1}}` → `sepal_length`) — or a list of such objects;
//! - `/invocations` (MLflow's scoring protocol): `dataframe_split`, `dataframe_records`, `instances`, `inputs`,
//!   or CSV with a header row;
//! - Open Inference Protocol v2: `inputs` tensors — one `[n, features]` tensor, or one tensor per named input.
//!
//! Every problem becomes an [`InputError`] that names the field, the row or the tensor at fault.

use indexmap::IndexMap;
use orchard_model::{Model, Value};
use serde_json::Value as Json;

/// Bad input: the message names what was wrong. Always the client's fault (HTTP 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl From<orchard_model::ModelError> for InputError {
    fn from(e: orchard_model::ModelError) -> Self {
        InputError(e.to_string())
    }
}

fn bad<T>(message: impl Into<String>) -> Result<T, InputError> {
    Err(InputError(message.into()))
}

/// Rows ready for the model: row-major values, `n` rows.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rows {
    pub values: Vec<f64>,
    pub n: usize,
}

fn scalar(v: &Json, what: &str) -> Result<Value, InputError> {
    Ok(match v {
        Json::Number(n) => Value::Num(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Value::Str(s.clone()),
        Json::Bool(b) => Value::Bool(*b),
        Json::Null => Value::Null,
        Json::Array(_) | Json::Object(_) => return bad(format!("{what} must be a single value, got a JSON {}", kind(v))),
    })
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Bool(_) => "boolean",
        Json::Null => "null",
        Json::Array(_) => "list",
        Json::Object(_) => "object",
    }
}

/// Flattens nested objects: `{"sepal": {"length": 5.1}}` → `sepal_length = 5.1`.
fn flatten(prefix: &str, obj: &serde_json::Map<String, Json>, out: &mut IndexMap<String, Value>) -> Result<(), InputError> {
    for (k, v) in obj {
        let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}_{k}") };
        match v {
            Json::Object(inner) => flatten(&name, inner, out)?,
            other => {
                let value = scalar(other, &format!("field '{name}'"))?;
                if out.insert(name.clone(), value).is_some() {
                    return bad(format!("field '{name}' is given twice (once nested, once flat)"));
                }
            }
        }
    }
    Ok(())
}

fn push_record(model: &Model, obj: &serde_json::Map<String, Json>, rows: &mut Rows, row: Option<usize>) -> Result<(), InputError> {
    let mut fields = IndexMap::new();
    flatten("", obj, &mut fields)?;
    model
        .row_from_fields(&fields, &mut rows.values)
        .map_err(|e| at_row(e.into(), row))?;
    rows.n += 1;
    Ok(())
}

fn at_row(e: InputError, row: Option<usize>) -> InputError {
    match row {
        Some(r) => InputError(format!("row {r}: {}", e.0)),
        None => e,
    }
}

/// `/predict`: an object, or a non-empty list of objects. Returns the rows and whether a list was sent.
pub fn predict_body(model: &Model, body: &Json) -> Result<(Rows, bool), InputError> {
    let mut rows = Rows::default();
    match body {
        Json::Object(obj) => {
            push_record(model, obj, &mut rows, None)?;
            Ok((rows, false))
        }
        Json::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Json::Object(obj) => push_record(model, obj, &mut rows, Some(i))?,
                    other => return bad(format!("row {i}: expected a JSON object of features, got a {}", kind(other))),
                }
            }
            Ok((rows, true))
        }
        Json::Array(_) => bad("expected at least one row, got an empty list"),
        other => bad(format!("expected a JSON object of features (or a list of them), got a {}", kind(other))),
    }
}

/// Rows given as columns + lists of values (`dataframe_split`, CSV).
fn push_table(model: &Model, columns: &[String], data: &[Vec<Value>], rows: &mut Rows) -> Result<(), InputError> {
    for (i, values) in data.iter().enumerate() {
        if values.len() != columns.len() {
            return bad(format!("row {i}: {} values for {} columns", values.len(), columns.len()));
        }
        let mut fields = IndexMap::new();
        for (c, v) in columns.iter().zip(values) {
            if fields.insert(c.clone(), v.clone()).is_some() {
                return bad(format!("column '{c}' is given twice"));
            }
        }
        model
            .row_from_fields(&fields, &mut rows.values)
            .map_err(|e| at_row(e.into(), Some(i)))?;
        rows.n += 1;
    }
    Ok(())
}

/// `[[v, …], …]` → rows of values; `what` names the rows in messages.
fn lists_of_values(data: &[Json], what: &str) -> Result<Vec<Vec<Value>>, InputError> {
    data.iter()
        .enumerate()
        .map(|(i, row)| match row {
            Json::Array(vals) => vals
                .iter()
                .enumerate()
                .map(|(j, v)| scalar(v, &format!("{what} row {i} value {j}")))
                .collect::<Result<Vec<_>, _>>(),
            other => bad(format!("{what} row {i} must be a list of values, got a {}", kind(other))),
        })
        .collect()
}

/// Rows given positionally, in the model's input order (`instances: [[…], …]`, tensors).
fn push_positional(model: &Model, data: &[Json], rows: &mut Rows, what: &str) -> Result<(), InputError> {
    let columns = model.inputs().to_vec();
    push_table(model, &columns, &lists_of_values(data, what)?, rows)
}

/// `{col: [v, …], …}`: columns of equal length.
fn push_columns(model: &Model, obj: &serde_json::Map<String, Json>, rows: &mut Rows) -> Result<(), InputError> {
    let mut columns = Vec::new();
    let mut lists = Vec::new();
    for (k, v) in obj {
        match v {
            Json::Array(items) => {
                columns.push(k.clone());
                lists.push(items);
            }
            other => {
                // A single record written as an object of scalars.
                let _ = other;
                return push_record(model, obj, rows, None);
            }
        }
    }
    let n = lists.first().map(|l| l.len()).unwrap_or(0);
    if let Some((c, l)) = columns.iter().zip(&lists).find(|(_, l)| l.len() != n) {
        return bad(format!("column '{c}' has {} values, the others {n}", l.len()));
    }
    let table = (0..n)
        .map(|i| {
            columns
                .iter()
                .zip(&lists)
                .map(|(c, l)| scalar(&l[i], &format!("column '{c}' value {i}")))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    push_table(model, &columns, &table, rows)
}

fn push_list(model: &Model, items: &[Json], rows: &mut Rows, what: &str) -> Result<(), InputError> {
    if items.iter().all(|i| i.is_object()) {
        for (i, item) in items.iter().enumerate() {
            if let Json::Object(obj) = item {
                push_record(model, obj, rows, Some(i))?;
            }
        }
        Ok(())
    } else if items.iter().all(|i| i.is_array()) {
        push_positional(model, items, rows, what)
    } else if items.iter().all(|i| !i.is_array() && !i.is_object()) && model.inputs().len() == items.len() {
        // One row given as a flat list.
        push_positional(model, &[Json::Array(items.to_vec())], rows, what)
    } else {
        bad(format!("'{what}' must be a list of records or a list of rows"))
    }
}

/// `/invocations` with a JSON body.
pub fn invocations_json(model: &Model, body: &Json) -> Result<Rows, InputError> {
    let Json::Object(obj) = body else {
        return bad("the body must be a JSON object with one of 'dataframe_split', 'dataframe_records', 'instances', 'inputs'");
    };
    let formats: Vec<&str> = ["dataframe_split", "dataframe_records", "instances", "inputs"]
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    if formats.len() != 1 {
        return bad(format!(
            "the body must have exactly one of 'dataframe_split', 'dataframe_records', 'instances', 'inputs' (found: {})",
            if formats.is_empty() { "none".to_string() } else { formats.join(", ") }
        ));
    }
    if let Some(extra) = obj.keys().find(|k| *k != formats[0] && *k != "params") {
        return bad(format!("unexpected key '{extra}' next to '{}'", formats[0]));
    }
    let mut rows = Rows::default();
    let payload = &obj[formats[0]];
    match (formats[0], payload) {
        ("dataframe_split", Json::Object(split)) => {
            let columns: Vec<String> = match split.get("columns") {
                Some(Json::Array(cols)) => cols
                    .iter()
                    .map(|c| match c {
                        Json::String(s) => Ok(s.clone()),
                        other => bad(format!("dataframe_split columns must be strings, got a {}", kind(other))),
                    })
                    .collect::<Result<_, _>>()?,
                None => model.inputs().to_vec(),
                Some(other) => return bad(format!("dataframe_split 'columns' must be a list, got a {}", kind(other))),
            };
            let data = match split.get("data") {
                Some(Json::Array(d)) => d,
                _ => return bad("dataframe_split needs 'data': a list of rows"),
            };
            push_table(model, &columns, &lists_of_values(data, "data")?, &mut rows)?;
        }
        ("dataframe_records", Json::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Json::Object(o) => push_record(model, o, &mut rows, Some(i))?,
                    other => return bad(format!("dataframe_records row {i} must be an object, got a {}", kind(other))),
                }
            }
        }
        ("instances" | "inputs", Json::Array(items)) => push_list(model, items, &mut rows, formats[0])?,
        ("instances" | "inputs", Json::Object(cols)) => push_columns(model, cols, &mut rows)?,
        (format, other) => return bad(format!("'{format}' has the wrong shape: a JSON {}", kind(other))),
    }
    if rows.n == 0 {
        return bad("no rows to predict");
    }
    Ok(rows)
}

/// `/invocations` with `text/csv`: a header row naming the columns, then one row per line.
pub fn invocations_csv(model: &Model, text: &str) -> Result<Rows, InputError> {
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| InputError("empty CSV body".into()))?;
    let columns: Vec<String> = split_csv(header).map_err(|e| InputError(format!("CSV header: {e}")))?;
    let mut table = Vec::new();
    for (i, line) in lines.enumerate() {
        let cells = split_csv(line).map_err(|e| InputError(format!("CSV row {i}: {e}")))?;
        table.push(
            cells
                .into_iter()
                .map(|c| match c.trim().parse::<f64>() {
                    // `NaN` (and an empty cell) is how pandas writes a missing value.
                    Ok(x) if x.is_nan() => Value::Null,
                    Ok(x) => Value::Num(x),
                    Err(_) if c.trim().is_empty() => Value::Null,
                    // pandas writes booleans as True / False.
                    Err(_) if matches!(c.trim(), "True" | "true") => Value::Bool(true),
                    Err(_) if matches!(c.trim(), "False" | "false") => Value::Bool(false),
                    Err(_) => Value::Str(c),
                })
                .collect(),
        );
    }
    let mut rows = Rows::default();
    push_table(model, &columns, &table, &mut rows)?;
    if rows.n == 0 {
        return bad("no rows to predict");
    }
    Ok(rows)
}

/// One CSV line (RFC 4180 quoting: `"a, b"`, `""` for a quote).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, ',') => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
            }
            (_, c) => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("unclosed quote".into());
    }
    out.push(cur);
    Ok(out)
}

/// One tensor of an Open Inference Protocol v2 request, its data flattened (row-major).
pub struct Tensor<'a> {
    pub name: &'a str,
    pub shape: Vec<usize>,
    pub data: Vec<&'a Json>,
    pub datatype: &'a str,
}

impl Tensor<'_> {
    /// The value at `at`, checked against the tensor's datatype.
    pub fn value(&self, at: usize) -> Result<Value, InputError> {
        match (self.datatype, self.data[at]) {
            ("BYTES", Json::String(s)) => Ok(Value::Str(s.clone())),
            ("BOOL", Json::Bool(b)) => Ok(Value::Bool(*b)),
            // JSON has no NaN: null stands for a missing value in floating-point tensors.
            ("FP64" | "FP32" | "FP16", Json::Null) => Ok(Value::Null),
            (dt, Json::Number(n)) if dt != "BYTES" && dt != "BOOL" => match fits(dt, n) {
                true => Ok(Value::Num(n.as_f64().unwrap_or(f64::NAN))),
                false => bad(format!("input '{}' value {at}: {n} is out of range for {dt}", self.name)),
            },
            (dt, other) => bad(format!("input '{}' value {at}: a JSON {} is not {dt}", self.name, kind(other))),
        }
    }

    /// A two-dimensional tensor as a list of rows.
    pub fn rows(&self) -> Vec<Vec<&Json>> {
        let width = self.shape.get(1).copied().unwrap_or(1).max(1);
        self.data.chunks(width).map(<[&Json]>::to_vec).collect()
    }
}

/// The `inputs` of an Open Inference Protocol v2 request, each checked: a known datatype, a shape that holds
/// its data, and values of that datatype.
pub fn v2_tensors(body: &Json) -> Result<Vec<Tensor<'_>>, InputError> {
    let tensors = match body.get("inputs") {
        Some(Json::Array(t)) if !t.is_empty() => t,
        _ => return bad("the request needs 'inputs': a non-empty list of tensors"),
    };
    let mut parsed = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        let name = t.get("name").and_then(Json::as_str).ok_or_else(|| InputError(format!("input {i} has no 'name'")))?;
        let datatype = t.get("datatype").and_then(Json::as_str).ok_or_else(|| InputError(format!("input '{name}' has no 'datatype'")))?;
        if !matches!(datatype, "FP64" | "FP32" | "FP16" | "INT64" | "INT32" | "INT16" | "INT8" | "UINT8" | "UINT16" | "UINT32" | "UINT64" | "BOOL" | "BYTES") {
            return bad(format!("input '{name}': unknown datatype '{datatype}'"));
        }
        let shape: Vec<usize> = match t.get("shape") {
            Some(Json::Array(dims)) => dims
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(|| InputError(format!("input '{name}': shape must hold non-negative integers"))))
                .collect::<Result<_, _>>()?,
            _ => return bad(format!("input '{name}' has no 'shape'")),
        };
        let mut data = Vec::new();
        fn flat<'a>(v: &'a Json, out: &mut Vec<&'a Json>) {
            match v {
                Json::Array(items) => items.iter().for_each(|i| flat(i, out)),
                other => out.push(other),
            }
        }
        match t.get("data") {
            Some(d @ Json::Array(_)) => flat(d, &mut data),
            _ => return bad(format!("input '{name}' has no 'data' list")),
        }
        // Checked: a shape of huge dimensions must not wrap around to the data's length.
        let expected = shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
        if expected != Some(data.len()) {
            let holds = expected.map_or("more than 2^64".to_string(), |e| e.to_string());
            return bad(format!("input '{name}': shape {shape:?} holds {holds} values but 'data' has {}", data.len()));
        }
        let tensor = Tensor { name, shape, data, datatype };
        for at in 0..tensor.data.len() {
            tensor.value(at)?;
        }
        parsed.push(tensor);
    }
    Ok(parsed)
}

/// Predictions as one v2 output tensor: numbers as FP64 (INT64 when all are whole), booleans as BOOL, text
/// as BYTES, equal-length lists as a second dimension; anything else as BYTES holding each value's JSON.
pub fn v2_output(name: &str, predictions: &[Json]) -> Json {
    let n = predictions.len();
    let all = |f: fn(&Json) -> bool| predictions.iter().all(f);
    if all(|p| p.is_i64() || p.is_u64()) {
        return serde_json::json!({ "name": name, "datatype": "INT64", "shape": [n], "data": predictions });
    }
    if all(Json::is_number) {
        return serde_json::json!({ "name": name, "datatype": "FP64", "shape": [n], "data": predictions });
    }
    if all(Json::is_boolean) {
        return serde_json::json!({ "name": name, "datatype": "BOOL", "shape": [n], "data": predictions });
    }
    if all(Json::is_string) {
        return serde_json::json!({ "name": name, "datatype": "BYTES", "shape": [n], "data": predictions });
    }
    let width = predictions.first().and_then(Json::as_array).map_or(0, Vec::len);
    let rows_of_numbers = width > 0
        && predictions.iter().all(|p| p.as_array().is_some_and(|r| r.len() == width && r.iter().all(Json::is_number)));
    if rows_of_numbers {
        let flat: Vec<&Json> = predictions.iter().filter_map(Json::as_array).flatten().collect();
        return serde_json::json!({ "name": name, "datatype": "FP64", "shape": [n, width], "data": flat });
    }
    let texts: Vec<String> = predictions.iter().map(Json::to_string).collect();
    serde_json::json!({ "name": name, "datatype": "BYTES", "shape": [n], "data": texts })
}

/// Open Inference Protocol v2 `inputs`.
pub fn v2_inputs(model: &Model, body: &Json) -> Result<Rows, InputError> {
    let parsed = v2_tensors(body)?;
    let width = model.inputs().len();
    let mut rows = Rows::default();
    if parsed.len() == 1 && !model.inputs().iter().any(|i| i == parsed[0].name) {
        // One matrix: [n, features] (or [features] for one row).
        let t = &parsed[0];
        let n = match t.shape.as_slice() {
            [n, w] if *w == width => *n,
            [w] if *w == width => 1,
            other => return bad(format!("input '{}': shape {other:?} does not fit {width} features ([n, {width}] expected)", t.name)),
        };
        let columns = model.inputs().to_vec();
        let table = (0..n)
            .map(|r| (0..width).map(|c| t.value(r * width + c)).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        push_table(model, &columns, &table, &mut rows)?;
    } else {
        // One tensor per named input, each [n] or [n, 1].
        let n = parsed[0].data.len();
        let mut columns = Vec::new();
        for t in &parsed {
            if !matches!(t.shape.as_slice(), [_] | [_, 1]) || t.data.len() != n {
                return bad(format!("input '{}': per-feature tensors must all have shape [{n}] or [{n}, 1]", t.name));
            }
            columns.push(t.name.to_string());
        }
        let table = (0..n)
            .map(|r| parsed.iter().map(|t| t.value(r)).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        push_table(model, &columns, &table, &mut rows)?;
    }
    if rows.n == 0 {
        return bad("no rows to predict");
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(split_csv("a,b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_csv("\"a, b\",\"say \"\"hi\"\"\",").unwrap(), ["a, b", "say \"hi\"", ""]);
        assert!(split_csv("\"open").is_err());
    }

    #[test]
    fn a_v2_shape_too_large_to_count_is_refused_not_wrapped() {
        let body = serde_json::json!({ "inputs": [{ "name": "x", "datatype": "FP64", "shape": [4294967296u64, 4294967296u64], "data": [] }] });
        let e = v2_tensors(&body).err().unwrap().0;
        assert!(e.contains("holds more than 2^64 values but 'data' has 0"), "{e}");
    }

    #[test]
    fn oip_values_must_fit_their_datatype() {
        let n = |text: &str| serde_json::from_str::<serde_json::Number>(text).unwrap();
        assert!(fits("INT8", &n("127")) && fits("INT8", &n("-128")) && fits("INT8", &n("3.0")));
        assert!(!fits("INT8", &n("1000")) && !fits("INT8", &n("1.5")) && !fits("UINT8", &n("-1")));
        assert!(fits("UINT64", &n("18446744073709551615")) && !fits("INT64", &n("18446744073709551615")));
        assert!(fits("FP16", &n("65504")) && !fits("FP16", &n("70000")) && !fits("FP32", &n("1e39")));
        assert!(fits("FP64", &n("1e300")));
    }

    proptest::proptest! {
        /// Any line either splits or is refused; fields without quotes or commas come back as they were.
        #[test]
        fn csv_splitting_never_panics(line in "[a-z0-9,\" .-]{0,40}") {
            let _ = split_csv(&line);
        }

        #[test]
        fn plain_fields_round_trip(fields in proptest::collection::vec("[a-z0-9 .-]{0,8}", 1..6)) {
            let line = fields.join(",");
            proptest::prop_assert_eq!(split_csv(&line).unwrap(), fields);
        }
    }
}

/// Whether a JSON number is a value of an OIP datatype: a whole number within the integer types' range, a
/// float within FP16's or FP32's (`INT8` holding 1000 is a client's mistake, not a value to clamp).
fn fits(datatype: &str, n: &serde_json::Number) -> bool {
    let x = n.as_f64().unwrap_or(f64::NAN);
    // The number as a whole value when it is one (`1000`, or `1000.0` as some clients write it).
    let whole = n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    let whole = whole.or_else(|| (x.fract() == 0.0 && x.abs() < 1e38).then_some(x as i128));
    let int_in = |lo: i128, hi: i128| whole.is_some_and(|v| (lo..=hi).contains(&v));
    match datatype {
        "INT8" => int_in(i8::MIN.into(), i8::MAX.into()),
        "INT16" => int_in(i16::MIN.into(), i16::MAX.into()),
        "INT32" => int_in(i32::MIN.into(), i32::MAX.into()),
        "INT64" => int_in(i64::MIN.into(), i64::MAX.into()),
        "UINT8" => int_in(0, u8::MAX.into()),
        "UINT16" => int_in(0, u16::MAX.into()),
        "UINT32" => int_in(0, u32::MAX.into()),
        "UINT64" => int_in(0, u64::MAX.into()),
        "FP16" => x.abs() <= 65504.0,
        "FP32" => x.abs() <= f32::MAX as f64,
        _ => true,
    }
}
