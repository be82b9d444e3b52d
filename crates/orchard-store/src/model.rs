//! The records the store keeps. Field names follow MLflow's entities so that the layers above can pass them
//! through without renaming; the wire format itself (JSON shapes) is the server's business.

use serde::{Deserialize, Serialize};

pub const ACTIVE: &str = "active";
pub const DELETED: &str = "deleted";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

/// One logged point of a metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    /// Set on points returned by bulk history queries, which span several runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
}

impl Metric {
    pub fn new(key: impl Into<String>, value: f64, timestamp: i64, step: i64) -> Metric {
        Metric {
            key: key.into(),
            value,
            timestamp,
            step,
            run_id: None,
            model_id: None,
            dataset_name: None,
            dataset_digest: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInput {
    pub tags: Vec<Tag>,
    pub dataset: Dataset,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

/// A run with everything MLflow returns for it: latest metric values, params, tags, inputs and outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub info: RunInfo,
    pub metrics: Vec<Metric>,
    pub params: Vec<Tag>,
    pub tags: Vec<Tag>,
    pub dataset_inputs: Vec<DatasetInput>,
    pub model_inputs: Vec<String>,
    pub model_outputs: Vec<ModelOutput>,
}

/// What `create_run` needs; the domain layer fills in ids, names and URIs.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub run_id: String,
    pub experiment_id: i64,
    pub user_id: String,
    pub run_name: String,
    pub status: String,
    pub start_time: Option<i64>,
    pub artifact_uri: String,
    pub tags: Vec<Tag>,
}

/// Changes to a run's info; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct RunUpdate {
    pub status: Option<String>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedModel {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub artifact_uri: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub status: String,
    pub lifecycle_stage: String,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub status_message: Option<String>,
    pub tags: Vec<Tag>,
    pub params: Vec<Tag>,
    pub metrics: Vec<Metric>,
}

#[derive(Clone, Debug)]
pub struct NewLoggedModel {
    pub model_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub artifact_uri: String,
    pub status: String,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub tags: Vec<Tag>,
    pub params: Vec<Tag>,
}

/// MLflow keeps the run name both as a column and as this tag.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

// ------------------------------------------------------------------------------------------ model registry

/// The stage a deleted version is kept under.
pub const DELETED_STAGE: &str = "Deleted_Internal";
/// The tag that marks a registered model as a prompt (hidden from model searches unless asked for).
pub const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
    /// (alias, version number)
    pub aliases: Vec<(String, i64)>,
    /// For each stage, the live version with the highest number (stages in the order first met).
    pub latest_versions: Vec<ModelVersion>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: i64,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub description: Option<String>,
    pub current_stage: String,
    /// What the client registered (`runs:/…`, `models:/m-…`, `s3://…`), kept verbatim.
    pub source: String,
    /// Where the version's files are: the source, or for `models:/…` sources the resolved artifact location.
    pub storage_location: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    pub model_id: Option<String>,
    pub tags: Vec<Tag>,
    pub aliases: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    pub storage_location: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub model_id: Option<String>,
    pub tags: Vec<Tag>,
}

/// A dataset some run of an experiment used, with the context it was used in (`mlflow.data.context`:
/// training, eval, …; none when the input had no such tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DatasetSummary {
    pub experiment_id: String,
    pub name: String,
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// An experiment's active runs at a glance: how many, and the latest time one of them started or ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExperimentActivity {
    pub experiment_id: String,
    pub runs: i64,
    pub last_activity_ms: Option<i64>,
}

/// One run's metric as a chart of a given width draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSeries {
    pub run_id: String,
    /// (step, value), in step order: each bucket's first, lowest, highest and last point.
    pub points: Vec<(i64, f64)>,
    /// Finite points in the range, before reduction.
    pub total: u64,
}
