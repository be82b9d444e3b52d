//! The model registry's entities as MLflow's protobuf JSON writes them: empty fields and lists left out, a
//! version's number as a string.

use orchard_tracking::registry::{ModelVersion, RegisteredModel};
use serde::Serialize;

#[derive(Serialize)]
struct KeyValue<'a> {
    key: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct AliasOut<'a> {
    alias: &'a str,
    version: String,
}

/// A registered model as MLflow's protobuf JSON writes it: empty fields and lists left out.
#[derive(Serialize)]
pub struct RegisteredModelOut<'a> {
    name: &'a str,
    creation_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_updated_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    latest_versions: Vec<ModelVersionOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<KeyValue<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<AliasOut<'a>>,
}

impl<'a> RegisteredModelOut<'a> {
    pub fn new(m: &'a RegisteredModel) -> Self {
        RegisteredModelOut {
            name: &m.name,
            creation_timestamp: m.creation_timestamp_ms,
            last_updated_timestamp: Some(m.last_updated_timestamp_ms).filter(|t| *t != 0),
            description: m.description.as_deref().filter(|d| !d.is_empty()),
            latest_versions: m.latest_versions.iter().map(ModelVersionOut::new).collect(),
            tags: m
                .tags
                .iter()
                .map(|t| KeyValue { key: &t.key, value: &t.value })
                .collect(),
            aliases: m
                .aliases
                .iter()
                .map(|(alias, version)| AliasOut { alias, version: version.to_string() })
                .collect(),
        }
    }
}

#[derive(Serialize)]
pub struct ModelVersionOut<'a> {
    name: &'a str,
    version: String,
    creation_timestamp: i64,
    last_updated_timestamp: i64,
    current_stage: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<&'a str>,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<KeyValue<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_link: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_id: Option<&'a str>,
}

impl<'a> ModelVersionOut<'a> {
    pub fn new(v: &'a ModelVersion) -> Self {
        let nonempty = |s: &'a Option<String>| s.as_deref().filter(|s| !s.is_empty());
        ModelVersionOut {
            name: &v.name,
            version: v.version.to_string(),
            creation_timestamp: v.creation_timestamp_ms,
            last_updated_timestamp: v.last_updated_timestamp_ms,
            current_stage: &v.current_stage,
            description: nonempty(&v.description),
            source: &v.source,
            run_id: nonempty(&v.run_id),
            status: &v.status,
            status_message: nonempty(&v.status_message),
            tags: v
                .tags
                .iter()
                .map(|t| KeyValue { key: &t.key, value: &t.value })
                .collect(),
            run_link: nonempty(&v.run_link),
            aliases: v.aliases.iter().map(String::as_str).collect(),
            model_id: nonempty(&v.model_id),
        }
    }
}
