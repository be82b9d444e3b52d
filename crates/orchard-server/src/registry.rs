//! MLflow REST API 2.0, model registry part: registered models, model versions, tags and aliases. Each
//! handler reads the request's fields, calls one `Tracking` registry function and shapes the answer.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use orchard_api::endpoints::{self as api, Endpoint};
use orchard_api::wire::registry::{ModelVersionOut, RegisteredModelOut};
use orchard_tracking::registry::{ModelVersion, RegisteredModel};
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::request::Fields;
use crate::tracking::tags;
use crate::state::AppState;

type JsonResult = ApiResult<Json<Value>>;

fn ok() -> JsonResult {
    Ok(Json(json!({})))
}

/// The routes below `/api/2.0/mlflow` (also mounted under `/ajax-api/2.0/mlflow`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registered-models/create", post(create_registered_model))
        .route("/registered-models/get", get(get_registered_model))
        .route("/registered-models/rename", post(rename_registered_model))
        .route(
            "/registered-models/update",
            axum::routing::patch(update_registered_model),
        )
        .route(
            "/registered-models/delete",
            axum::routing::delete(delete_registered_model),
        )
        .route("/registered-models/search", get(search_registered_models))
        .route(
            api::GetLatestVersions::PATH,
            get(get_latest_versions).post(get_latest_versions),
        )
        .route("/registered-models/set-tag", post(set_registered_model_tag))
        .route(
            "/registered-models/delete-tag",
            axum::routing::delete(delete_registered_model_tag),
        )
        .route(
            api::GetModelVersionByAlias::PATH,
            get(get_model_version_by_alias)
                .post(set_registered_model_alias)
                .delete(delete_registered_model_alias),
        )
        .route("/model-versions/create", post(create_model_version))
        .route("/model-versions/get", get(get_model_version))
        .route(
            "/model-versions/update",
            axum::routing::patch(update_model_version),
        )
        .route(
            "/model-versions/delete",
            axum::routing::delete(delete_model_version),
        )
        .route("/model-versions/search", get(search_model_versions))
        .route(
            api::GetModelVersionDownloadUri::PATH,
            get(get_model_version_download_uri),
        )
        .route(
            "/model-versions/transition-stage",
            post(transition_model_version_stage),
        )
        .route("/model-versions/set-tag", post(set_model_version_tag))
        .route(
            "/model-versions/delete-tag",
            axum::routing::delete(delete_model_version_tag),
        )
}

fn model_json(m: &RegisteredModel) -> JsonResult {
    Ok(Json(json!({ "registered_model": RegisteredModelOut::new(m) })))
}

fn version_json(v: &ModelVersion) -> JsonResult {
    Ok(Json(json!({ "model_version": ModelVersionOut::new(v) })))
}

/// `order_by` arrives as a repeated query key, or (from some clients) one comma-free string.
fn order_by(f: &Fields) -> ApiResult<Vec<String>> {
    f.str_list("order_by")
}

// ------------------------------------------------------------------------------------------ registered models

async fn create_registered_model(State(s): State<AppState>, f: Fields) -> JsonResult {
    let m = s
        .tracking
        .create_registered_model(
            &f.str("name")?,
            f.opt_str("description")?.as_deref(),
            &tags(&f, "tags")?,
        )
        .await?;
    model_json(&m)
}

async fn get_registered_model(State(s): State<AppState>, f: Fields) -> JsonResult {
    let m = s.tracking.get_registered_model(&f.str("name")?).await?;
    model_json(&m)
}

async fn rename_registered_model(State(s): State<AppState>, f: Fields) -> JsonResult {
    let m = s
        .tracking
        .rename_registered_model(&f.str("name")?, &f.str("new_name")?)
        .await?;
    model_json(&m)
}

async fn update_registered_model(State(s): State<AppState>, f: Fields) -> JsonResult {
    let m = s
        .tracking
        .update_registered_model(&f.str("name")?, f.opt_str("description")?.as_deref())
        .await?;
    model_json(&m)
}

async fn delete_registered_model(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking.delete_registered_model(&f.str("name")?).await?;
    ok()
}

async fn search_registered_models(State(s): State<AppState>, f: Fields) -> JsonResult {
    let page = s
        .tracking
        .search_registered_models(
            &f.str_or_empty("filter")?,
            f.opt_i64("max_results")?,
            &order_by(&f)?,
            &f.str_or_empty("page_token")?,
        )
        .await?;
    let mut out = serde_json::Map::new();
    if !page.items.is_empty() {
        out.insert(
            "registered_models".into(),
            serde_json::to_value(page.items.iter().map(RegisteredModelOut::new).collect::<Vec<_>>())
                .unwrap_or_default(),
        );
    }
    if let Some(t) = page.next_page_token {
        out.insert("next_page_token".into(), Value::String(t));
    }
    Ok(Json(Value::Object(out)))
}

async fn get_latest_versions(State(s): State<AppState>, f: Fields) -> JsonResult {
    let versions = s
        .tracking
        .get_latest_versions(&f.str("name")?, &f.str_list("stages")?)
        .await?;
    Ok(Json(versions_json(&versions, None)))
}

async fn set_registered_model_tag(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .set_registered_model_tag(&f.str("name")?, &f.str("key")?, &f.str_or_empty("value")?)
        .await?;
    ok()
}

async fn delete_registered_model_tag(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .delete_registered_model_tag(&f.str("name")?, &f.str("key")?)
        .await?;
    ok()
}

// -------------------------------------------------------------------------------------------------- aliases

async fn set_registered_model_alias(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .set_registered_model_alias(&f.str("name")?, &f.str_or_empty("alias")?, &f.str("version")?)
        .await?;
    ok()
}

async fn delete_registered_model_alias(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .delete_registered_model_alias(&f.str("name")?, &f.str_or_empty("alias")?)
        .await?;
    ok()
}

async fn get_model_version_by_alias(State(s): State<AppState>, f: Fields) -> JsonResult {
    let v = s
        .tracking
        .get_model_version_by_alias(&f.str("name")?, &f.str_or_empty("alias")?)
        .await?;
    version_json(&v)
}

// ------------------------------------------------------------------------------------------- model versions

async fn create_model_version(State(s): State<AppState>, f: Fields) -> JsonResult {
    let v = s
        .tracking
        .create_model_version(
            &f.str("name")?,
            &f.str("source")?,
            f.opt_str("run_id")?.as_deref(),
            &tags(&f, "tags")?,
            f.opt_str("run_link")?.as_deref(),
            f.opt_str("description")?.as_deref(),
            f.opt_str("model_id")?.as_deref(),
        )
        .await?;
    version_json(&v)
}

async fn get_model_version(State(s): State<AppState>, f: Fields) -> JsonResult {
    let v = s
        .tracking
        .get_model_version(&f.str("name")?, &f.str("version")?)
        .await?;
    version_json(&v)
}

async fn update_model_version(State(s): State<AppState>, f: Fields) -> JsonResult {
    let v = s
        .tracking
        .update_model_version(
            &f.str("name")?,
            &f.str("version")?,
            f.opt_str("description")?.as_deref(),
        )
        .await?;
    version_json(&v)
}

async fn delete_model_version(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .delete_model_version(&f.str("name")?, &f.str("version")?)
        .await?;
    ok()
}

async fn transition_model_version_stage(State(s): State<AppState>, f: Fields) -> JsonResult {
    let v = s
        .tracking
        .transition_model_version_stage(
            &f.str("name")?,
            &f.str("version")?,
            &f.str("stage")?,
            f.opt_bool("archive_existing_versions")?.unwrap_or(false),
        )
        .await?;
    version_json(&v)
}

async fn set_model_version_tag(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .set_model_version_tag(
            &f.str("name")?,
            &f.str("version")?,
            &f.str("key")?,
            &f.str_or_empty("value")?,
        )
        .await?;
    ok()
}

async fn delete_model_version_tag(State(s): State<AppState>, f: Fields) -> JsonResult {
    s.tracking
        .delete_model_version_tag(&f.str("name")?, &f.str("version")?, &f.str("key")?)
        .await?;
    ok()
}

async fn get_model_version_download_uri(State(s): State<AppState>, f: Fields) -> JsonResult {
    let uri = s
        .tracking
        .get_model_version_download_uri(&f.str("name")?, &f.str("version")?)
        .await?;
    Ok(Json(json!({ "artifact_uri": uri })))
}

async fn search_model_versions(State(s): State<AppState>, f: Fields) -> JsonResult {
    let page = s
        .tracking
        .search_model_versions(
            &f.str_or_empty("filter")?,
            f.opt_i64("max_results")?,
            &order_by(&f)?,
            &f.str_or_empty("page_token")?,
        )
        .await?;
    Ok(Json(versions_json(&page.items, page.next_page_token)))
}

fn versions_json(versions: &[ModelVersion], next_page_token: Option<String>) -> Value {
    let mut out = serde_json::Map::new();
    if !versions.is_empty() {
        out.insert(
            "model_versions".into(),
            serde_json::to_value(versions.iter().map(ModelVersionOut::new).collect::<Vec<_>>())
                .unwrap_or_default(),
        );
    }
    if let Some(t) = next_page_token {
        out.insert("next_page_token".into(), Value::String(t));
    }
    Value::Object(out)
}
