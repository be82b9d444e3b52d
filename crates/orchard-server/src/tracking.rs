//! MLflow REST API 2.0, tracking part: each handler reads the request's fields, calls one `Tracking` function
//! and shapes the answer.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orchard_tracking::artifacts::proxied_path;
use orchard_tracking::{DatasetInput, Metric, ModelOutput, Tag, TrackingError, ViewType};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::request::Fields;
use orchard_api::endpoints::{self as api, Endpoint};
use orchard_api::wire;
use crate::state::AppState;

type JsonResult = ApiResult<Json<Value>>;

fn ok() -> JsonResult {
    Ok(Json(json!({})))
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

pub(crate) fn tags(f: &Fields, name: &str) -> ApiResult<Vec<Tag>> {
    f.objects(name)?
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Fields::nested(&format!("{name}[{i}]"), || {
                Ok(Tag::new(t.str("key")?, t.str_or_empty("value")?))
            })
        })
        .collect()
}

fn view_type(f: &Fields, name: &str) -> ApiResult<ViewType> {
    Ok(match f.opt_str(name)?.as_deref() {
        None | Some("") | Some("ACTIVE_ONLY") | Some("1") => ViewType::ActiveOnly,
        Some("DELETED_ONLY") | Some("2") => ViewType::DeletedOnly,
        Some("ALL") | Some("3") => ViewType::All,
        Some(other) => {
            return Err(TrackingError::invalid(format!(
                "Invalid value \"{other}\" for parameter '{name}' supplied: expected ACTIVE_ONLY, DELETED_ONLY or ALL"
            ))
            .into())
        }
    })
}

// ------------------------------------------------------------------------------------------------ experiments

async fn create_experiment(State(s): State<AppState>, f: Fields) -> JsonResult {
    let id = s
        .tracking
        .create_experiment(
            &f.str("name")?,
            f.opt_str("artifact_location")?.as_deref(),
            &tags(&f, "tags")?,
        )
        .await?;
    Ok(Json(json!({ "experiment_id": id })))
}

async fn get_experiment(State(s): State<AppState>, f: Fields) -> JsonResult {
    let e = s.tracking.get_experiment(&f.str("experiment_id")?).await?;
    Ok(Json(json!({ "experiment": wire::ExperimentOut(&e) })))
}

async fn get_experiment_by_name(State(s): State<AppState>, f: Fields) -> JsonResult {
    let e = s
        .tracking
        .get_experiment_by_name(&f.str("experiment_name")?)
        .await?;
    Ok(Json(json!({ "experiment": wire::ExperimentOut(&e) })))
}

async fn search_experiments(State(s): State<AppState>, f: Fields) -> ApiResult<Response> {
    let page = s
        .tracking
        .search_experiments(
            view_type(&f, "view_type")?,
            f.opt_i64("max_results")?,
            &f.str_or_empty("filter")?,
            &f.str_list("order_by")?,
            &f.str_or_empty("page_token")?,
        )
        .await?;
    Ok(Json(wire::PageOut {
        key: "experiments",
        items: wire::List(&page.items, wire::ExperimentOut),
        next_page_token: page.next_page_token.clone(),
    })
    .into_response())
}

async fn update_experiment(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .rename_experiment(&f.str("experiment_id")?, &f.str("new_name")?)
        .await?;
    ok()
}

async fn delete_experiment(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .delete_experiment(&f.str("experiment_id")?)
        .await?;
    ok()
}

async fn restore_experiment(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .restore_experiment(&f.str("experiment_id")?)
        .await?;
    ok()
}

async fn set_experiment_tag(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .set_experiment_tag(
            &f.str("experiment_id")?,
            &f.str("key")?,
            &f.str_or_empty("value")?,
        )
        .await?;
    ok()
}

async fn delete_experiment_tag(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .delete_experiment_tag(&f.str("experiment_id")?, &f.str("key")?)
        .await?;
    ok()
}

// ------------------------------------------------------------------------------------------------------- runs

async fn create_run(State(s): State<AppState>, f: Fields) -> JsonResult {
    let run = s
        .tracking
        .create_run(
            &f.str_or_empty("experiment_id")?,
            &f.str_or_empty("user_id")?,
            f.opt_str("run_name")?.as_deref(),
            f.opt_i64("start_time")?,
            &tags(&f, "tags")?,
        )
        .await?;
    Ok(Json(json!({ "run": wire::RunOut(&run) })))
}

async fn get_run(State(s): State<AppState>, f: Fields) -> JsonResult {
    let run = s.tracking.get_run(&f.run_id()?).await?;
    Ok(Json(json!({ "run": wire::RunOut(&run) })))
}

async fn update_run(State(s): State<AppState>, f: Fields) -> JsonResult {
    let info = s
        .tracking
        .update_run(
            &f.run_id()?,
            f.opt_str("status")?.as_deref(),
            f.opt_i64("end_time")?,
            f.opt_str("run_name")?.as_deref(),
        )
        .await?;
    Ok(Json(json!({ "run_info": wire::RunInfoOut(&info) })))
}

async fn delete_run(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking.delete_run(&f.run_id()?).await?;
    ok()
}

async fn restore_run(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking.restore_run(&f.run_id()?).await?;
    ok()
}

async fn search_runs(State(s): State<AppState>, f: Fields) -> ApiResult<Response> {
    let page = s
        .tracking
        .search_runs(
            &f.str_list("experiment_ids")?,
            &f.str_or_empty("filter")?,
            view_type(&f, "run_view_type")?,
            f.opt_i64("max_results")?,
            &f.str_list("order_by")?,
            &f.str_or_empty("page_token")?,
        )
        .await?;
    Ok(Json(wire::PageOut {
        key: "runs",
        items: wire::List(&page.items, wire::RunOut),
        next_page_token: page.next_page_token.clone(),
    })
    .into_response())
}

fn read_metric(m: &Fields) -> ApiResult<Metric> {
    let mut metric = Metric::new(
        m.str("key")?,
        m.f64("value")?,
        m.i64("timestamp")?,
        m.opt_i64("step")?.unwrap_or(0),
    );
    metric.model_id = m.opt_str("model_id")?.filter(|s| !s.is_empty());
    metric.dataset_name = m.opt_str("dataset_name")?.filter(|s| !s.is_empty());
    metric.dataset_digest = m.opt_str("dataset_digest")?.filter(|s| !s.is_empty());
    Ok(metric)
}

async fn log_metric(State(s): State<AppState>, f: Fields) -> JsonResult {
    let run_id = f.run_id()?;
    s.tracking.log_metric(&run_id, read_metric(&f)?).await?;
    ok()
}

async fn log_param(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .log_param(&f.run_id()?, &f.str("key")?, &f.str_or_empty("value")?)
        .await?;
    ok()
}

async fn set_tag(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .set_tag(&f.run_id()?, &f.str("key")?, &f.str_or_empty("value")?)
        .await?;
    ok()
}

async fn delete_tag(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking.delete_tag(&f.run_id()?, &f.str("key")?).await?;
    ok()
}

async fn log_batch(State(s): State<AppState>, f: Fields) -> JsonResult {
    let metrics = f
        .objects("metrics")?
        .iter()
        .enumerate()
        .map(|(i, m)| Fields::nested(&format!("metrics[{i}]"), || read_metric(m)))
        .collect::<ApiResult<Vec<_>>>()?;
    let params = tags(&f, "params")?;
    let tags = tags(&f, "tags")?;
    s.tracking
        .log_batch(&f.str("run_id")?, &metrics, &params, &tags)
        .await?;
    ok()
}

async fn log_inputs(State(s): State<AppState>, f: Fields) -> JsonResult {
    let mut datasets = Vec::new();
    for (i, d) in f.objects("datasets")?.iter().enumerate() {
        let input = Fields::nested(&format!("datasets[{i}]"), || {
            let ds = d
                .object("dataset")?
                .ok_or_else(|| ApiError::from(TrackingError::invalid("Dataset cannot be None")))?;
            Ok(DatasetInput {
                tags: tags(d, "tags")?,
                dataset: orchard_tracking::Dataset {
                    name: ds.str_or_empty("name")?,
                    digest: ds.str_or_empty("digest")?,
                    source_type: ds.str_or_empty("source_type")?,
                    source: ds.str_or_empty("source")?,
                    schema: ds.opt_str("schema")?,
                    profile: ds.opt_str("profile")?,
                },
            })
        })?;
        datasets.push(input);
    }
    let models = f
        .objects("models")?
        .iter()
        .map(|m| m.str("model_id"))
        .collect::<ApiResult<Vec<_>>>()?;
    s.tracking
        .log_inputs(&f.str("run_id")?, &datasets, &models)
        .await?;
    ok()
}

async fn log_outputs(State(s): State<AppState>, f: Fields) -> JsonResult {
    let models = f
        .objects("models")?
        .iter()
        .map(|m| {
            Ok(ModelOutput {
                model_id: m.str("model_id")?,
                step: m.opt_i64("step")?.unwrap_or(0),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    s.tracking.log_outputs(&f.str("run_id")?, &models).await?;
    ok()
}

async fn get_metric_history(State(s): State<AppState>, f: Fields) -> ApiResult<Response> {
    let page = s
        .tracking
        .get_metric_history(
            &f.run_id()?,
            &f.str("metric_key")?,
            f.opt_i64("max_results")?,
            &f.str_or_empty("page_token")?,
        )
        .await?;
    Ok(Json(wire::PageOut {
        key: "metrics",
        items: wire::List(&page.items, wire::MetricOut),
        next_page_token: page.next_page_token.clone(),
    })
    .into_response())
}

async fn get_metric_history_bulk_interval(State(s): State<AppState>, f: Fields) -> JsonResult {
    let run_ids = f.str_list("run_ids")?;
    if run_ids.is_empty() {
        return Err(TrackingError::invalid(
            "Missing value for required parameter 'run_ids'. See the API docs for more information about request parameters.",
        )
        .into());
    }
    let points = s
        .tracking
        .get_metric_history_bulk_interval(
            &run_ids,
            &f.str("metric_key")?,
            f.opt_i64("start_step")?,
            f.opt_i64("end_step")?,
            f.opt_i64("max_results")?,
        )
        .await?;
    Ok(Json(
        json!({ "metrics": wire::List(&points, wire::MetricOut) }),
    ))
}

/// `artifacts/list` of the tracking API: a run's artifacts, with the run's root URI.
async fn list_run_artifacts(State(s): State<AppState>, f: Fields) -> JsonResult {
    let run = s.tracking.get_run(&f.run_id()?).await?;
    let sub = f.str_or_empty("path")?;
    let files = list_under(&s, &run.info.artifact_uri, &sub).await?;
    Ok(Json(
        json!({ "root_uri": run.info.artifact_uri, "files": files }),
    ))
}

/// Lists `sub` below an artifact root the server proxies; entries are named relative to the root.
async fn list_under(s: &AppState, root_uri: &str, sub: &str) -> ApiResult<Vec<Value>> {
    let (Some(artifacts), Some(root)) = (&s.artifacts, proxied_path(root_uri)) else {
        return Ok(Vec::new());
    };
    let sub = if sub.is_empty() {
        String::new()
    } else {
        orchard_blob::safe_path(sub).map_err(TrackingError::from)?
    };
    let dir = if sub.is_empty() {
        root
    } else {
        format!("{root}/{sub}")
    };
    let files = artifacts.list(&dir).await?;
    Ok(files
        .iter()
        .map(|fi| {
            let mut fi = fi.clone();
            if !sub.is_empty() {
                fi.path = format!("{sub}/{}", fi.path);
            }
            serde_json::to_value(wire::FileInfoOut(&fi)).unwrap_or_default()
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------- logged models

async fn create_logged_model(State(s): State<AppState>, f: Fields) -> JsonResult {
    let m = s
        .tracking
        .create_logged_model(
            &f.str("experiment_id")?,
            f.opt_str("name")?.as_deref(),
            f.opt_str("model_type")?.as_deref(),
            f.opt_str("source_run_id")?.as_deref(),
            &tags(&f, "params")?,
            &tags(&f, "tags")?,
        )
        .await?;
    Ok(Json(json!({ "model": wire::LoggedModelOut(&m) })))
}

async fn get_logged_model(State(s): State<AppState>, Path(model_id): Path<String>) -> JsonResult {
    let m = s.tracking.get_logged_model(&model_id).await?;
    Ok(Json(json!({ "model": wire::LoggedModelOut(&m) })))
}

async fn finalize_logged_model(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    f: Fields,
) -> JsonResult {
    let m = s
        .tracking
        .finalize_logged_model(&model_id, &f.str("status")?)
        .await?;
    Ok(Json(json!({ "model": wire::LoggedModelOut(&m) })))
}

async fn delete_logged_model(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
) -> JsonResult {
    s.tracking.delete_logged_model(&model_id).await?;
    ok()
}

async fn log_logged_model_params(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    f: Fields,
) -> JsonResult {
    s.tracking
        .log_logged_model_params(&model_id, &tags(&f, "params")?)
        .await?;
    ok()
}

async fn set_logged_model_tags(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    f: Fields,
) -> JsonResult {
    s.tracking
        .set_logged_model_tags(&model_id, &tags(&f, "tags")?)
        .await?;
    ok()
}

async fn delete_logged_model_tag(
    State(s): State<AppState>,
    Path((model_id, key)): Path<(String, String)>,
) -> JsonResult {
    s.tracking.delete_logged_model_tag(&model_id, &key).await?;
    ok()
}

async fn search_logged_models(State(s): State<AppState>, f: Fields) -> ApiResult<Response> {
    let experiment_ids = f.str_list("experiment_ids")?;
    if experiment_ids.is_empty() {
        return Err(TrackingError::invalid(
            "Missing value for required parameter 'experiment_ids'. See the API docs for more information about request parameters.",
        )
        .into());
    }
    let order_by = f
        .objects("order_by")?
        .iter()
        .map(|o| {
            Ok((
                o.str("field_name")?,
                o.opt_bool("ascending")?.unwrap_or(true),
            ))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let page = s
        .tracking
        .search_logged_models(
            &experiment_ids,
            &f.str_or_empty("filter")?,
            &order_by,
            f.opt_i64("max_results")?,
            &f.str_or_empty("page_token")?,
        )
        .await?;
    Ok(Json(wire::PageOut {
        key: "models",
        items: wire::List(&page.items, wire::LoggedModelOut),
        next_page_token: page.next_page_token.clone(),
    })
    .into_response())
}

async fn list_logged_model_artifacts(
    State(s): State<AppState>,
    Path(model_id): Path<String>,
    f: Fields,
) -> JsonResult {
    let m = s.tracking.get_logged_model(&model_id).await?;
    let files = list_under(
        &s,
        &m.artifact_uri,
        &f.str_or_empty("artifact_directory_path")?,
    )
    .await?;
    Ok(Json(json!({ "root_uri": m.artifact_uri, "files": files })))
}
