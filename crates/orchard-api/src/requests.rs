//! Every request of MLflow's tracking and registry API as a type: its fields, named once. The server reads
//! each one out of a request's fields ([`FromFields`], with MLflow's leniency and wording); a client sends
//! it as JSON (empty fields left out, as protobuf's JSON does).
//!
//! Fields are read in the order they are declared, which is the order MLflow reports the first bad one in.

use orchard_tracking::{Tag, TrackingError, ViewType};
use serde::{Deserialize, Serialize};

use crate::fields::{Fields, FromFields};

/// Whether a field is left out of a request a client sends: an absent option, an empty list or string.
/// Numbers and booleans are always sent (zero is a value).
pub trait Omit {
    fn omit(&self) -> bool {
        false
    }
}

impl<T> Omit for Option<T> {
    fn omit(&self) -> bool {
        self.is_none()
    }
}

impl<T> Omit for Vec<T> {
    fn omit(&self) -> bool {
        self.is_empty()
    }
}

impl Omit for String {
    fn omit(&self) -> bool {
        self.is_empty()
    }
}

impl Omit for i64 {}
impl Omit for f64 {}
impl Omit for bool {}

impl Omit for ViewType {
    fn omit(&self) -> bool {
        *self == ViewType::ActiveOnly
    }
}

/// Request types: for each, the struct (sent by clients) and how the server reads it (`field: Type = accessor`, the
/// accessor a method of [`Fields`] taking the field's name).
macro_rules! request {
    ($($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty = $read:ident),* $(,)? })*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $(
                #[serde(default, skip_serializing_if = "Omit::omit")]
                pub $field: $ty,
            )*
        }

        impl FromFields for $name {
            fn from_fields(f: &Fields) -> Result<Self, TrackingError> {
                Ok($name { $($field: f.$read(stringify!($field))?,)* })
            }
        }
    )*};
}

// ------------------------------------------------------------------------------------------ nested objects

/// A param or tag: `{key, value}` (the key required, the value may be empty).
impl FromFields for Tag {
    fn from_fields(f: &Fields) -> Result<Self, TrackingError> {
        Ok(Tag::new(f.str("key")?, f.str_or_empty("value")?))
    }
}

request! {
    /// A metric point as logged (`log-metric` without the run, an item of `log-batch`).
    MetricIn {
        key: String = str,
        value: f64 = f64,
        timestamp: i64 = i64,
        step: Option<i64> = opt_i64,
        model_id: Option<String> = opt_str,
        dataset_name: Option<String> = opt_str,
        dataset_digest: Option<String> = opt_str,
    }

    /// A dataset of `log-inputs`.
    DatasetIn {
        name: String = str_or_empty,
        digest: String = str_or_empty,
        source_type: String = str_or_empty,
        source: String = str_or_empty,
        schema: Option<String> = opt_str,
        profile: Option<String> = opt_str,
    }
}

/// A dataset input of `log-inputs`: its tags and the dataset (required).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetInputIn {
    #[serde(default, skip_serializing_if = "Omit::omit")]
    pub tags: Vec<Tag>,
    pub dataset: DatasetIn,
}

impl FromFields for DatasetInputIn {
    fn from_fields(f: &Fields) -> Result<Self, TrackingError> {
        // MLflow looks for the dataset before reading anything of the input.
        let dataset = f.object("dataset")?.ok_or_else(|| TrackingError::invalid("Dataset cannot be None"))?;
        let tags = f.list("tags")?;
        Ok(DatasetInputIn { tags, dataset: DatasetIn::from_fields(&dataset)? })
    }
}

request! {
    /// A model named by id (`log-inputs`' models).
    ModelIdIn { model_id: String = str }

    /// A model a run produced, at a step (`outputs`).
    ModelOutputIn { model_id: String = str, step: Option<i64> = opt_i64 }

    /// A dataset `logged-models/search` is restricted to.
    DatasetFilterIn { dataset_name: String = str_or_empty, dataset_digest: Option<String> = opt_str }

    /// One ordering of `logged-models/search`.
    OrderByIn { field_name: String = str, ascending: Option<bool> = opt_bool }
}

// --------------------------------------------------------------------------------------------- experiments

request! {
    /// `experiments/create`.
    CreateExperimentRequest { name: String = str, artifact_location: Option<String> = opt_str, tags: Vec<Tag> = list }

    /// `experiments/get`, `experiments/delete`, `experiments/restore`.
    ExperimentIdRequest { experiment_id: String = str }

    /// `experiments/get-by-name`.
    GetExperimentByNameRequest { experiment_name: String = str }

    /// `experiments/search`.
    SearchExperimentsRequest {
        view_type: ViewType = view_type,
        max_results: Option<i64> = opt_i64,
        filter: String = str_or_empty,
        order_by: Vec<String> = str_list,
        page_token: String = str_or_empty,
    }

    /// `experiments/update` (a rename).
    UpdateExperimentRequest { experiment_id: String = str, new_name: String = str }

    /// `experiments/set-experiment-tag`.
    SetExperimentTagRequest { experiment_id: String = str, key: String = str, value: String = str_or_empty }

    /// `experiments/delete-experiment-tag`.
    DeleteExperimentTagRequest { experiment_id: String = str, key: String = str }
}

// ---------------------------------------------------------------------------------------------------- runs

request! {
    /// `runs/create`.
    CreateRunRequest {
        experiment_id: String = str_or_empty,
        user_id: String = str_or_empty,
        run_name: Option<String> = opt_str,
        start_time: Option<i64> = opt_i64,
        tags: Vec<Tag> = list,
    }

    /// `runs/get`, `runs/delete`, `runs/restore` (`run_uuid` is read when `run_id` is absent).
    RunIdRequest { run_id: String = run_id }

    /// `runs/update`.
    UpdateRunRequest {
        run_id: String = run_id,
        status: Option<String> = opt_str,
        end_time: Option<i64> = opt_i64,
        run_name: Option<String> = opt_str,
    }

    /// `runs/search`.
    SearchRunsRequest {
        experiment_ids: Vec<String> = str_list,
        filter: String = str_or_empty,
        run_view_type: ViewType = view_type,
        max_results: Option<i64> = opt_i64,
        order_by: Vec<String> = str_list,
        page_token: String = str_or_empty,
    }
}

/// `runs/log-metric`: a run and one metric point (the point's fields at the top level, as MLflow takes them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogMetricRequest {
    #[serde(default, skip_serializing_if = "Omit::omit")]
    pub run_id: String,
    #[serde(flatten)]
    pub metric: MetricIn,
}

impl FromFields for LogMetricRequest {
    fn from_fields(f: &Fields) -> Result<Self, TrackingError> {
        Ok(LogMetricRequest { run_id: f.run_id("run_id")?, metric: MetricIn::from_fields(f)? })
    }
}

request! {
    /// `runs/log-parameter` and `runs/set-tag`: one key and value on a run.
    RunKeyValueRequest { run_id: String = run_id, key: String = str, value: String = str_or_empty }

    /// `runs/delete-tag`.
    DeleteTagRequest { run_id: String = run_id, key: String = str }

    /// `runs/log-batch`.
    LogBatchRequest {
        metrics: Vec<MetricIn> = list,
        params: Vec<Tag> = list,
        tags: Vec<Tag> = list,
        run_id: String = str,
    }

    /// `runs/log-inputs`.
    LogInputsRequest { datasets: Vec<DatasetInputIn> = list, models: Vec<ModelIdIn> = list_unnamed, run_id: String = str }

    /// `runs/outputs`.
    LogOutputsRequest { models: Vec<ModelOutputIn> = list_unnamed, run_id: String = str }

    /// `metrics/get-history`.
    GetMetricHistoryRequest {
        run_id: String = run_id,
        metric_key: String = str,
        max_results: Option<i64> = opt_i64,
        page_token: String = str_or_empty,
    }

    /// `metrics/get-history-bulk-interval`.
    GetMetricHistoryBulkIntervalRequest {
        run_ids: Vec<String> = required_list,
        metric_key: String = str,
        start_step: Option<i64> = opt_i64,
        end_step: Option<i64> = opt_i64,
        max_results: Option<i64> = opt_i64,
    }

    /// `artifacts/list` of the tracking API.
    ListRunArtifactsRequest { run_id: String = run_id, path: String = str_or_empty }
}

// ------------------------------------------------------------------------------------------- logged models

request! {
    /// `logged-models` (create).
    CreateLoggedModelRequest {
        experiment_id: String = str,
        name: Option<String> = opt_str,
        model_type: Option<String> = opt_str,
        source_run_id: Option<String> = opt_str,
        params: Vec<Tag> = list,
        tags: Vec<Tag> = list,
    }

    /// `logged-models/{id}` (finalize).
    FinalizeLoggedModelRequest { status: String = str }

    /// `logged-models/{id}/params`.
    LoggedModelParamsRequest { params: Vec<Tag> = list }

    /// `logged-models/{id}/tags`.
    LoggedModelTagsRequest { tags: Vec<Tag> = list }

    /// `logged-models/search`.
    SearchLoggedModelsRequest {
        experiment_ids: Vec<String> = required_list,
        datasets: Vec<DatasetFilterIn> = list_unnamed,
        order_by: Vec<OrderByIn> = list_unnamed,
        filter: String = str_or_empty,
        max_results: Option<i64> = opt_i64,
        page_token: String = str_or_empty,
    }

    /// `logged-models/{id}/artifacts/directories`.
    ListLoggedModelArtifactsRequest { artifact_directory_path: String = str_or_empty }

    /// The artifact proxy's listing (`mlflow-artifacts/artifacts?path=…`).
    ListArtifactsRequest { path: String = str_or_empty }
}

// -------------------------------------------------------------------------------------------- the registry

request! {
    /// `registered-models/create`.
    CreateRegisteredModelRequest { name: String = str, description: Option<String> = opt_str, tags: Vec<Tag> = list }

    /// `registered-models/get`, `registered-models/delete`.
    ModelNameRequest { name: String = str }

    /// `registered-models/rename`.
    RenameRegisteredModelRequest { name: String = str, new_name: String = str }

    /// `registered-models/update`.
    UpdateRegisteredModelRequest { name: String = str, description: Option<String> = opt_str }

    /// `registered-models/search` and `model-versions/search`.
    SearchRegistryRequest {
        filter: String = str_or_empty,
        max_results: Option<i64> = opt_i64,
        order_by: Vec<String> = str_list,
        page_token: String = str_or_empty,
    }

    /// `registered-models/get-latest-versions`.
    GetLatestVersionsRequest { name: String = str, stages: Vec<String> = str_list }

    /// `registered-models/set-tag`.
    SetRegisteredModelTagRequest { name: String = str, key: String = str, value: String = str_or_empty }

    /// `registered-models/delete-tag`.
    DeleteRegisteredModelTagRequest { name: String = str, key: String = str }

    /// `registered-models/alias` (set).
    SetAliasRequest { name: String = str, alias: String = str_or_empty, version: String = str }

    /// `registered-models/alias` (get, delete).
    AliasRequest { name: String = str, alias: String = str_or_empty }

    /// `model-versions/create`.
    CreateModelVersionRequest {
        name: String = str,
        source: String = str,
        run_id: Option<String> = opt_str,
        tags: Vec<Tag> = list,
        run_link: Option<String> = opt_str,
        description: Option<String> = opt_str,
        model_id: Option<String> = opt_str,
    }

    /// `model-versions/get`, `model-versions/delete`, `model-versions/get-download-uri`.
    ModelVersionRequest { name: String = str, version: String = str }

    /// `model-versions/update`.
    UpdateModelVersionRequest { name: String = str, version: String = str, description: Option<String> = opt_str }

    /// `model-versions/transition-stage`.
    TransitionStageRequest {
        name: String = str,
        version: String = str,
        stage: String = str,
        archive_existing_versions: Option<bool> = opt_bool,
    }

    /// `model-versions/set-tag`.
    SetModelVersionTagRequest { name: String = str, version: String = str, key: String = str, value: String = str_or_empty }

    /// `model-versions/delete-tag`.
    DeleteModelVersionTagRequest { name: String = str, version: String = str, key: String = str }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> Fields {
        Fields(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn what_a_client_sends_the_server_reads_back() {
        let sent = LogBatchRequest {
            run_id: "r1".into(),
            metrics: vec![MetricIn { key: "acc".into(), value: 0.0, timestamp: 5, step: Some(0), ..MetricIn::default() }],
            params: vec![Tag::new("lr", "0.1")],
            tags: vec![],
        };
        let json = serde_json::to_string(&sent).unwrap();
        assert!(json.contains("\"value\":0.0"), "zero is a value: {json}");
        assert!(!json.contains("\"tags\""), "empty lists are left out: {json}");
        assert_eq!(LogBatchRequest::from_fields(&fields(&json)).unwrap(), sent);
        let search = SearchRunsRequest { run_view_type: ViewType::All, ..SearchRunsRequest::default() };
        let json = serde_json::to_string(&search).unwrap();
        assert_eq!(json, r#"{"run_view_type":"ALL"}"#);
        assert_eq!(SearchRunsRequest::from_fields(&fields(&json)).unwrap(), search);
    }

    #[test]
    fn bad_fields_are_named_from_the_top() {
        let e = LogBatchRequest::from_fields(&fields(r#"{"run_id": "r", "metrics": [{"key": "a", "value": "x", "timestamp": 1}]}"#))
            .unwrap_err();
        assert!(e.to_string().starts_with("Invalid value \"x\" for parameter 'metrics[0].value' supplied"), "{e}");
        let e = RunIdRequest::from_fields(&fields("{}")).unwrap_err();
        assert_eq!(e, TrackingError::MissingField { field: "run_id".into(), docs: true });
        let e = LogInputsRequest::from_fields(&fields(r#"{"run_id": "r", "datasets": [{"tags": []}]}"#)).unwrap_err();
        assert_eq!(e.to_string(), "Dataset cannot be None");
        let e = GetMetricHistoryBulkIntervalRequest::from_fields(&fields("{}")).unwrap_err();
        assert_eq!(e, TrackingError::MissingField { field: "run_ids".into(), docs: true }, "checked before metric_key");
    }
}
