//! MLflow REST API 2.0, tracking part: each handler reads the request's fields, calls one `Tracking` function
//! and shapes the answer.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orchard_tracking::artifacts::list_root;
use orchard_api::requests as rq;
use orchard_tracking::{DatasetFilter, DatasetInput, Experiment, LoggedModel, Metric, ModelOutput, Page, Run, RunInfo};
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::request::{empty, one_call_handlers, JsonResult, Req};
use orchard_api::endpoints::{self as api, Endpoint};
use orchard_api::wire;
use crate::state::AppState;

fn experiment_json(e: &Experiment) -> JsonResult {
    Ok(Json(json!({ "experiment": wire::ExperimentOut(e) })))
}

fn run_json(run: &Run) -> JsonResult {
    Ok(Json(json!({ "run": wire::RunOut(run) })))
}

fn run_info_json(info: &RunInfo) -> JsonResult {
    Ok(Json(json!({ "run_info": wire::RunInfoOut(info) })))
}

fn logged_model_json(m: &LoggedModel) -> JsonResult {
    Ok(Json(json!({ "model": wire::LoggedModelOut(m) })))
}

/// The routes below `/api/2.0/mlflow` (also mounted under `/ajax-api/2.0/mlflow`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(api::CreateExperiment::PATH, post(create_experiment))
        .route("/experiments/get", get(get_experiment))
        .route(api::GetExperimentByName::PATH, get(get_experiment_by_name))
        .route(
            "/experiments/search",
            get(search_experiments).post(search_experiments),
        )
        .route("/experiments/update", post(update_experiment))
        .route("/experiments/delete", post(delete_experiment))
        .route("/experiments/restore", post(restore_experiment))
        .route("/experiments/set-experiment-tag", post(set_experiment_tag))
        .route(
            "/experiments/delete-experiment-tag",
            post(delete_experiment_tag),
        )
        .route(api::CreateRun::PATH, post(create_run))
        .route(api::GetRun::PATH, get(get_run))
        .route(api::UpdateRun::PATH, post(update_run))
        .route("/runs/delete", post(delete_run))
        .route("/runs/restore", post(restore_run))
        .route("/runs/search", post(search_runs))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-parameter", post(log_param))
        .route(api::LogBatch::PATH, post(log_batch))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-inputs", post(log_inputs))
        .route("/runs/outputs", post(log_outputs))
        .route("/metrics/get-history", get(get_metric_history))
        .route(
            "/metrics/get-history-bulk-interval",
            get(get_metric_history_bulk_interval),
        )
        .route("/artifacts/list", get(list_run_artifacts))
        .route("/logged-models", post(create_logged_model))
        .route("/logged-models/search", post(search_logged_models))
        .route(
            api::GetLoggedModel::PATH,
            get(get_logged_model)
                .patch(finalize_logged_model)
                .delete(delete_logged_model),
        )
        .route(
            "/logged-models/{model_id}/params",
            post(log_logged_model_params),
        )
        .route(
            "/logged-models/{model_id}/tags",
            axum::routing::patch(set_logged_model_tags),
        )
        .route(
            "/logged-models/{model_id}/tags/{tag_key}",
            axum::routing::delete(delete_logged_model_tag),
        )
        .route(
            "/logged-models/{model_id}/artifacts/directories",
            get(list_logged_model_artifacts),
        )
}

// ------------------------------------------------------------------------------------------------ experiments

one_call_handlers! {
    get_experiment(ExperimentIdRequest) => |t, r| experiment_json(t.get_experiment(&r.experiment_id));
    get_experiment_by_name(GetExperimentByNameRequest) => |t, r| experiment_json(t.get_experiment_by_name(&r.experiment_name));
    update_experiment(UpdateExperimentRequest) => |t, r| empty(t.rename_experiment(&r.experiment_id, &r.new_name));
    delete_experiment(ExperimentIdRequest) => |t, r| empty(t.delete_experiment(&r.experiment_id));
    restore_experiment(ExperimentIdRequest) => |t, r| empty(t.restore_experiment(&r.experiment_id));
    set_experiment_tag(SetExperimentTagRequest) => |t, r| empty(t.set_experiment_tag(&r.experiment_id, &r.key, &r.value));
    delete_experiment_tag(DeleteExperimentTagRequest) => |t, r| empty(t.delete_experiment_tag(&r.experiment_id, &r.key));
}

async fn create_experiment(State(s): State<AppState>, Req(r): Req<rq::CreateExperimentRequest>) -> JsonResult {
    let id = s.tracking.create_experiment(&r.name, r.artifact_location.as_deref(), &r.tags).await?;
    Ok(Json(json!({ "experiment_id": id })))
}

async fn search_experiments(State(s): State<AppState>, Req(r): Req<rq::SearchExperimentsRequest>) -> ApiResult<Response> {
    let page = s
        .tracking
        .search_experiments(r.view_type, r.max_results, &r.filter, &r.order_by, &r.page_token)
        .await?;
    Ok(page_json("experiments", &page, wire::ExperimentOut))
}

// ------------------------------------------------------------------------------------------------------- runs

one_call_handlers! {
    get_run(RunIdRequest) => |t, r| run_json(t.get_run(&r.run_id));
    update_run(UpdateRunRequest) => |t, r| run_info_json(t.update_run(&r.run_id, r.status.as_deref(), r.end_time, r.run_name.as_deref()));
    delete_run(RunIdRequest) => |t, r| empty(t.delete_run(&r.run_id));
    restore_run(RunIdRequest) => |t, r| empty(t.restore_run(&r.run_id));
    log_param(RunKeyValueRequest) => |t, r| empty(t.log_param(&r.run_id, &r.key, &r.value));
    set_tag(RunKeyValueRequest) => |t, r| empty(t.set_tag(&r.run_id, &r.key, &r.value));
    delete_tag(DeleteTagRequest) => |t, r| empty(t.delete_tag(&r.run_id, &r.key));
}

async fn create_run(State(s): State<AppState>, Req(r): Req<rq::CreateRunRequest>) -> JsonResult {
    let run = s
        .tracking
        .create_run(&r.experiment_id, &r.user_id, r.run_name.as_deref(), r.start_time, &r.tags)
        .await?;
    run_json(&run)
}

async fn search_runs(State(s): State<AppState>, Req(r): Req<rq::SearchRunsRequest>) -> ApiResult<Response> {
    let page = s
        .tracking
        .search_runs(&r.experiment_ids, &r.filter, r.run_view_type, r.max_results, &r.order_by, &r.page_token)
        .await?;
    Ok(page_json("runs", &page, wire::RunOut))
}

/// A logged metric point as the domain has it (empty optional strings are absent).
fn metric(m: rq::MetricIn) -> Metric {
    let mut metric = Metric::new(m.key, m.value, m.timestamp, m.step.unwrap_or(0));
    metric.model_id = m.model_id.filter(|s| !s.is_empty());
    metric.dataset_name = m.dataset_name.filter(|s| !s.is_empty());
    metric.dataset_digest = m.dataset_digest.filter(|s| !s.is_empty());
    metric
}

async fn log_metric(State(s): State<AppState>, Req(r): Req<rq::LogMetricRequest>) -> JsonResult {
    s.tracking.log_metric(&r.run_id, metric(r.metric)).await?;
    empty(&())
}

async fn log_batch(State(s): State<AppState>, Req(r): Req<rq::LogBatchRequest>) -> JsonResult {
    let metrics: Vec<Metric> = r.metrics.into_iter().map(metric).collect();
    s.tracking.log_batch(&r.run_id, &metrics, &r.params, &r.tags).await?;
    empty(&())
}

async fn log_inputs(State(s): State<AppState>, Req(r): Req<rq::LogInputsRequest>) -> JsonResult {
    let datasets: Vec<DatasetInput> = r
        .datasets
        .into_iter()
        .map(|d| DatasetInput {
            tags: d.tags,
            dataset: orchard_tracking::Dataset {
                name: d.dataset.name,
                digest: d.dataset.digest,
                source_type: d.dataset.source_type,
                source: d.dataset.source,
                schema: d.dataset.schema,
                profile: d.dataset.profile,
            },
        })
        .collect();
    let models: Vec<String> = r.models.into_iter().map(|m| m.model_id).collect();
    s.tracking.log_inputs(&r.run_id, &datasets, &models).await?;
    empty(&())
}

async fn log_outputs(State(s): State<AppState>, Req(r): Req<rq::LogOutputsRequest>) -> JsonResult {
    let models: Vec<ModelOutput> =
        r.models.into_iter().map(|m| ModelOutput { model_id: m.model_id, step: m.step.unwrap_or(0) }).collect();
    s.tracking.log_outputs(&r.run_id, &models).await?;
    empty(&())
}

async fn get_metric_history(State(s): State<AppState>, Req(r): Req<rq::GetMetricHistoryRequest>) -> ApiResult<Response> {
    let page = s
        .tracking
        .get_metric_history(&r.run_id, &r.metric_key, r.max_results, &r.page_token)
        .await?;
    Ok(page_json("metrics", &page, wire::MetricOut))
}

async fn get_metric_history_bulk_interval(
    State(s): State<AppState>,
    Req(r): Req<rq::GetMetricHistoryBulkIntervalRequest>,
) -> JsonResult {
    let points = s
        .tracking
        .get_metric_history_bulk_interval(&r.run_ids, &r.metric_key, r.start_step, r.end_step, r.max_results)
        .await?;
    Ok(Json(json!({ "metrics": wire::List(&points, wire::MetricOut) })))
}

/// A page of results as `{"<key>": [...], "next_page_token": …}`, written straight from the entities.
fn page_json<'a, T, W: serde::Serialize>(key: &'static str, page: &'a Page<T>, shape: fn(&'a T) -> W) -> Response {
    Json(wire::PageOut { key, items: wire::List(&page.items, shape), next_page_token: page.next_page_token.clone() })
        .into_response()
}

/// `artifacts/list` of the tracking API: a run's artifacts, with the run's root URI.
async fn list_run_artifacts(State(s): State<AppState>, Req(r): Req<rq::ListRunArtifactsRequest>) -> JsonResult {
    let run = s.tracking.get_run(&r.run_id).await?;
    let files = list_under(&s, &run.info.artifact_uri, &r.path).await?;
    Ok(Json(json!({ "root_uri": run.info.artifact_uri, "files": files })))
}

/// Lists `sub` below an artifact root as MLflow's `files`; entries are named relative to the root.
async fn list_under(s: &AppState, root_uri: &str, sub: &str) -> ApiResult<Vec<Value>> {
    let files = list_root(s.artifacts.as_ref(), root_uri, sub).await?;
    Ok(files.iter().map(|f| serde_json::to_value(wire::FileInfoOut(f)).unwrap_or_default()).collect())
}

// ---------------------------------------------------------------------------------------------- logged models

async fn create_logged_model(State(s): State<AppState>, Req(r): Req<rq::CreateLoggedModelRequest>) -> JsonResult {
    let m = s
        .tracking
        .create_logged_model(
            &r.experiment_id,
            r.name.as_deref(),
            r.model_type.as_deref(),
            r.source_run_id.as_deref(),
            &r.params,
            &r.tags,
        )
        .await?;
    logged_model_json(&m)
}

async fn get_logged_model(State(s): State<AppState>, Path(model_id): Path<String>) -> JsonResult {
    let m = s.tracking.get_logged_model(&model_id).await?;
    logged_model_json(&m)
}

async fn finalize_logged_model(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    Req(r): Req<rq::FinalizeLoggedModelRequest>,
) -> JsonResult {
    let m = s.tracking.finalize_logged_model(&model_id, &r.status).await?;
    logged_model_json(&m)
}

async fn delete_logged_model(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
) -> JsonResult {
    s.tracking.delete_logged_model(&model_id).await?;
    empty(&())
}

async fn log_logged_model_params(State(s): State<AppState>, Path(model_id): Path<String>, Req(r): Req<rq::LoggedModelParamsRequest>) -> JsonResult {
    s.tracking.log_logged_model_params(&model_id, &r.params).await?;
    empty(&())
}

async fn set_logged_model_tags(State(s): State<AppState>, Path(model_id): Path<String>, Req(r): Req<rq::LoggedModelTagsRequest>) -> JsonResult {
    s.tracking.set_logged_model_tags(&model_id, &r.tags).await?;
    empty(&())
}

async fn delete_logged_model_tag(
    State(s): State<AppState>,
    Path((model_id, key)): Path<(String, String)>,
) -> JsonResult {
    s.tracking.delete_logged_model_tag(&model_id, &key).await?;
    empty(&())
}

async fn search_logged_models(State(s): State<AppState>, Req(r): Req<rq::SearchLoggedModelsRequest>) -> ApiResult<Response> {
    let datasets: Vec<DatasetFilter> =
        r.datasets.into_iter().map(|d| DatasetFilter { name: d.dataset_name, digest: d.dataset_digest.filter(|g| !g.is_empty()) }).collect();
    let order_by: Vec<(String, bool)> =
        r.order_by.into_iter().map(|o| (o.field_name, o.ascending.unwrap_or(true))).collect();
    let page = s
        .tracking
        .search_logged_models(&r.experiment_ids, &datasets, &r.filter, &order_by, r.max_results, &r.page_token)
        .await?;
    Ok(page_json("models", &page, wire::LoggedModelOut))
}

async fn list_logged_model_artifacts(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    Req(r): Req<rq::ListLoggedModelArtifactsRequest>,
) -> JsonResult {
    let m = s.tracking.get_logged_model(&model_id).await?;
    let files = list_under(&s, &m.artifact_uri, &r.artifact_directory_path).await?;
    Ok(Json(json!({ "root_uri": m.artifact_uri, "files": files })))
}
