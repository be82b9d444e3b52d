//! The entities as a client reads them back: owned, and lenient where MLflow servers differ (int64 as a
//! number or a string, doubles as `"NaN"`/`"Infinity"`, empty lists and fields left out). The same shapes
//! [`crate::wire`] writes; `tests/round_trip.rs` checks that every entity written there reads back here.

use serde::{Deserialize, Deserializer, Serialize};

/// A `{key, value}` pair: a param or a tag (the domain's own type: its JSON is the wire's).
pub use orchard_tracking::Tag as KeyValue;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    #[serde(default)]
    pub artifact_location: String,
    #[serde(default)]
    pub lifecycle_stage: String,
    #[serde(default, deserialize_with = "opt_int64")]
    pub creation_time: Option<i64>,
    #[serde(default, deserialize_with = "opt_int64")]
    pub last_update_time: Option<i64>,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    #[serde(default)]
    pub run_name: String,
    pub experiment_id: String,
    #[serde(default)]
    pub user_id: String,
    pub status: String,
    #[serde(default, deserialize_with = "opt_int64")]
    pub start_time: Option<i64>,
    #[serde(default, deserialize_with = "opt_int64")]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub artifact_uri: String,
    #[serde(default)]
    pub lifecycle_stage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    #[serde(deserialize_with = "double")]
    pub value: f64,
    #[serde(deserialize_with = "int64")]
    pub timestamp: i64,
    #[serde(default, deserialize_with = "int64")]
    pub step: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunData {
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default)]
    pub params: Vec<KeyValue>,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    pub info: RunInfo,
    #[serde(default)]
    pub data: RunData,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    #[serde(deserialize_with = "string_or_number")]
    pub version: String,
    #[serde(default, deserialize_with = "opt_int64")]
    pub creation_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "opt_int64")]
    pub last_updated_timestamp: Option<i64>,
    #[serde(default)]
    pub current_stage: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub model_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    #[serde(default)]
    pub name: String,
    pub artifact_uri: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub source_run_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
}

/// One entry of an artifact listing, named relative to the listed folder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileInfo {
    pub path: String,
    #[serde(default)]
    pub is_dir: bool,
    #[serde(default, deserialize_with = "opt_int64")]
    pub file_size: Option<i64>,
}

// ------------------------------------------------------------------------------------- protobuf JSON leniency

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Int(i64),
    Float(f64),
    Str(String),
}

fn int64_of<E: serde::de::Error>(v: NumberOrString) -> Result<i64, E> {
    match v {
        NumberOrString::Int(i) => Ok(i),
        NumberOrString::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
        NumberOrString::Float(f) => Err(E::custom(format!("{f} is not an int64"))),
        NumberOrString::Str(s) => s.trim().parse().map_err(|_| E::custom(format!("'{s}' is not an int64"))),
    }
}

/// An int64, which protobuf's JSON may write as a number or a string.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    int64_of(NumberOrString::deserialize(d)?)
}

fn opt_int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<NumberOrString>::deserialize(d)?.map(int64_of).transpose()
}

/// A double: a number, or one of protobuf's strings for the values JSON lacks.
fn double<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Int(i) => Ok(i as f64),
        NumberOrString::Float(f) => Ok(f),
        NumberOrString::Str(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other.parse().map_err(|_| serde::de::Error::custom(format!("'{other}' is not a double"))),
        },
    }
}

/// A model version's number: a string in MLflow's JSON, a number from some clients.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match NumberOrString::deserialize(d)? {
        NumberOrString::Int(i) => i.to_string(),
        NumberOrString::Float(f) => f.to_string(),
        NumberOrString::Str(s) => s,
    })
}
