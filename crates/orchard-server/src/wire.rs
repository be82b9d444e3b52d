//! MLflow's JSON shapes for the tracking entities (protobuf JSON as MLflow emits it): int64 as numbers,
//! non-finite doubles as the strings "NaN"/"Infinity"/"-Infinity", empty lists left out.

use orchard_tracking::artifacts::FileInfo;
use orchard_tracking::{Experiment, LoggedModel, Metric, Run, RunInfo, Tag};
use serde_json::{json, Map, Value};

/// A double as protobuf JSON writes it.
pub fn double(v: f64) -> Value {
    if v.is_nan() {
        Value::String("NaN".into())
    } else if v == f64::INFINITY {
        Value::String("Infinity".into())
    } else if v == f64::NEG_INFINITY {
        Value::String("-Infinity".into())
    } else {
        serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null)
    }
}

fn kv_list(items: &[Tag]) -> Value {
    Value::Array(items.iter().map(|t| json!({"key": t.key, "value": t.value})).collect())
}

/// Inserts `key: list` only when the list is not empty (protobuf JSON omits empty repeated fields).
fn put_list(obj: &mut Map<String, Value>, key: &str, list: Value) {
    if list.as_array().is_some_and(|a| !a.is_empty()) {
        obj.insert(key.into(), list);
    }
}

pub fn experiment(e: &Experiment) -> Value {
    let mut o = Map::new();
    o.insert("experiment_id".into(), json!(e.experiment_id));
    o.insert("name".into(), json!(e.name));
    o.insert("artifact_location".into(), json!(e.artifact_location));
    o.insert("lifecycle_stage".into(), json!(e.lifecycle_stage));
    o.insert("last_update_time".into(), json!(e.last_update_time));
    o.insert("creation_time".into(), json!(e.creation_time));
    put_list(&mut o, "tags", kv_list(&e.tags));
    Value::Object(o)
}

pub fn metric(m: &Metric) -> Value {
    let mut o = Map::new();
    o.insert("key".into(), json!(m.key));
    o.insert("value".into(), double(m.value));
    o.insert("timestamp".into(), json!(m.timestamp));
    o.insert("step".into(), json!(m.step));
    for (k, v) in [
        ("run_id", &m.run_id),
        ("model_id", &m.model_id),
        ("dataset_name", &m.dataset_name),
        ("dataset_digest", &m.dataset_digest),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    Value::Object(o)
}

pub fn run_info(i: &RunInfo) -> Value {
    let mut o = Map::new();
    o.insert("run_uuid".into(), json!(i.run_id));
    o.insert("run_id".into(), json!(i.run_id));
    o.insert("run_name".into(), json!(i.run_name));
    o.insert("experiment_id".into(), json!(i.experiment_id));
    o.insert("user_id".into(), json!(i.user_id));
    o.insert("status".into(), json!(i.status));
    o.insert("start_time".into(), json!(i.start_time.unwrap_or(0)));
    if let Some(end) = i.end_time.filter(|t| *t != 0) {
        o.insert("end_time".into(), json!(end));
    }
    o.insert("artifact_uri".into(), json!(i.artifact_uri));
    o.insert("lifecycle_stage".into(), json!(i.lifecycle_stage));
    Value::Object(o)
}

pub fn run(r: &Run) -> Value {
    let mut data = Map::new();
    put_list(&mut data, "metrics", Value::Array(r.metrics.iter().map(metric).collect()));
    put_list(&mut data, "params", kv_list(&r.params));
    put_list(&mut data, "tags", kv_list(&r.tags));
    let mut inputs = Map::new();
    let datasets: Vec<Value> = r
        .dataset_inputs
        .iter()
        .map(|d| {
            let mut ds = Map::new();
            ds.insert("name".into(), json!(d.dataset.name));
            ds.insert("digest".into(), json!(d.dataset.digest));
            ds.insert("source_type".into(), json!(d.dataset.source_type));
            ds.insert("source".into(), json!(d.dataset.source));
            if let Some(s) = &d.dataset.schema {
                ds.insert("schema".into(), json!(s));
            }
            if let Some(p) = &d.dataset.profile {
                ds.insert("profile".into(), json!(p));
            }
            let mut input = Map::new();
            put_list(&mut input, "tags", kv_list(&d.tags));
            input.insert("dataset".into(), Value::Object(ds));
            Value::Object(input)
        })
        .collect();
    put_list(&mut inputs, "dataset_inputs", Value::Array(datasets));
    put_list(&mut inputs, "model_inputs", Value::Array(r.model_inputs.iter().map(|m| json!({"model_id": m})).collect()));
    let mut outputs = Map::new();
    put_list(
        &mut outputs,
        "model_outputs",
        Value::Array(r.model_outputs.iter().map(|m| json!({"model_id": m.model_id, "step": m.step})).collect()),
    );
    json!({
        "info": run_info(&r.info),
        "data": Value::Object(data),
        "inputs": Value::Object(inputs),
        "outputs": Value::Object(outputs),
    })
}

pub fn logged_model(m: &LoggedModel) -> Value {
    let mut info = Map::new();
    info.insert("model_id".into(), json!(m.model_id));
    info.insert("experiment_id".into(), json!(m.experiment_id));
    info.insert("name".into(), json!(m.name));
    info.insert("artifact_uri".into(), json!(m.artifact_uri));
    info.insert("creation_timestamp_ms".into(), json!(m.creation_timestamp_ms));
    info.insert("last_updated_timestamp_ms".into(), json!(m.last_updated_timestamp_ms));
    if let Some(t) = &m.model_type {
        info.insert("model_type".into(), json!(t));
    }
    if let Some(r) = &m.source_run_id {
        info.insert("source_run_id".into(), json!(r));
    }
    info.insert("status".into(), json!(m.status));
    if let Some(s) = &m.status_message {
        info.insert("status_message".into(), json!(s));
    }
    put_list(&mut info, "tags", kv_list(&m.tags));
    let mut data = Map::new();
    put_list(&mut data, "params", kv_list(&m.params));
    put_list(&mut data, "metrics", Value::Array(m.metrics.iter().map(metric).collect()));
    json!({ "info": Value::Object(info), "data": Value::Object(data) })
}

pub fn file_info(f: &FileInfo) -> Value {
    let mut o = Map::new();
    o.insert("path".into(), json!(f.path));
    o.insert("is_dir".into(), json!(f.is_dir));
    if let Some(size) = f.file_size {
        o.insert("file_size".into(), json!(size));
    }
    Value::Object(o)
}
