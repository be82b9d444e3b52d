//! MLflow REST API 2.0, model registry part: registered models, model versions, tags and aliases. Each
//! handler reads the request's fields, calls one `Tracking` registry function and shapes the answer.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use orchard_api::endpoints::{self as api, Endpoint};
use orchard_api::requests as rq;
use orchard_api::wire::registry::{ModelVersionOut, RegisteredModelOut};
use orchard_tracking::registry::{ModelVersion, RegisteredModel};
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::request::Req;
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

// ------------------------------------------------------------------------------------------ registered models

async fn create_registered_model(State(s): State<AppState>, Req(r): Req<rq::CreateRegisteredModelRequest>) -> JsonResult {
    let m = s.tracking.create_registered_model(&r.name, r.description.as_deref(), &r.tags).await?;
    model_json(&m)
}

async fn get_registered_model(State(s): State<AppState>, Req(r): Req<rq::ModelNameRequest>) -> JsonResult {
    model_json(&s.tracking.get_registered_model(&r.name).await?)
}

async fn rename_registered_model(State(s): State<AppState>, Req(r): Req<rq::RenameRegisteredModelRequest>) -> JsonResult {
    model_json(&s.tracking.rename_registered_model(&r.name, &r.new_name).await?)
}

async fn update_registered_model(State(s): State<AppState>, Req(r): Req<rq::UpdateRegisteredModelRequest>) -> JsonResult {
    model_json(&s.tracking.update_registered_model(&r.name, r.description.as_deref()).await?)
}

async fn delete_registered_model(State(s): State<AppState>, Req(r): Req<rq::ModelNameRequest>) -> JsonResult {
    s.tracking.delete_registered_model(&r.name).await?;
    ok()
}

async fn search_registered_models(State(s): State<AppState>, Req(r): Req<rq::SearchRegistryRequest>) -> JsonResult {
    let page = s
        .tracking
        .search_registered_models(&r.filter, r.max_results, &r.order_by, &r.page_token)
        .await?;
    let models: Vec<RegisteredModelOut> = page.items.iter().map(RegisteredModelOut::new).collect();
    Ok(Json(listing("registered_models", models, page.next_page_token)))
}

async fn get_latest_versions(State(s): State<AppState>, Req(r): Req<rq::GetLatestVersionsRequest>) -> JsonResult {
    let versions = s.tracking.get_latest_versions(&r.name, &r.stages).await?;
    Ok(Json(versions_json(&versions, None)))
}

async fn set_registered_model_tag(State(s): State<AppState>, Req(r): Req<rq::SetRegisteredModelTagRequest>) -> JsonResult {
    s.tracking.set_registered_model_tag(&r.name, &r.key, &r.value).await?;
    ok()
}

async fn delete_registered_model_tag(
    State(s): State<AppState>,
    Req(r): Req<rq::DeleteRegisteredModelTagRequest>,
) -> JsonResult {
    s.tracking.delete_registered_model_tag(&r.name, &r.key).await?;
    ok()
}

// -------------------------------------------------------------------------------------------------- aliases

async fn set_registered_model_alias(State(s): State<AppState>, Req(r): Req<rq::SetAliasRequest>) -> JsonResult {
    s.tracking.set_registered_model_alias(&r.name, &r.alias, &r.version).await?;
    ok()
}

async fn delete_registered_model_alias(State(s): State<AppState>, Req(r): Req<rq::AliasRequest>) -> JsonResult {
    s.tracking.delete_registered_model_alias(&r.name, &r.alias).await?;
    ok()
}

async fn get_model_version_by_alias(State(s): State<AppState>, Req(r): Req<rq::AliasRequest>) -> JsonResult {
    version_json(&s.tracking.get_model_version_by_alias(&r.name, &r.alias).await?)
}

// ------------------------------------------------------------------------------------------- model versions

async fn create_model_version(State(s): State<AppState>, Req(r): Req<rq::CreateModelVersionRequest>) -> JsonResult {
    let v = s
        .tracking
        .create_model_version(
            &r.name,
            &r.source,
            r.run_id.as_deref(),
            &r.tags,
            r.run_link.as_deref(),
            r.description.as_deref(),
            r.model_id.as_deref(),
        )
        .await?;
    version_json(&v)
}

async fn get_model_version(State(s): State<AppState>, Req(r): Req<rq::ModelVersionRequest>) -> JsonResult {
    version_json(&s.tracking.get_model_version(&r.name, &r.version).await?)
}

async fn update_model_version(State(s): State<AppState>, Req(r): Req<rq::UpdateModelVersionRequest>) -> JsonResult {
    version_json(&s.tracking.update_model_version(&r.name, &r.version, r.description.as_deref()).await?)
}

async fn delete_model_version(State(s): State<AppState>, Req(r): Req<rq::ModelVersionRequest>) -> JsonResult {
    s.tracking.delete_model_version(&r.name, &r.version).await?;
    ok()
}

async fn transition_model_version_stage(State(s): State<AppState>, Req(r): Req<rq::TransitionStageRequest>) -> JsonResult {
    let archive = r.archive_existing_versions.unwrap_or(false);
    version_json(&s.tracking.transition_model_version_stage(&r.name, &r.version, &r.stage, archive).await?)
}

async fn set_model_version_tag(State(s): State<AppState>, Req(r): Req<rq::SetModelVersionTagRequest>) -> JsonResult {
    s.tracking.set_model_version_tag(&r.name, &r.version, &r.key, &r.value).await?;
    ok()
}

async fn delete_model_version_tag(State(s): State<AppState>, Req(r): Req<rq::DeleteModelVersionTagRequest>) -> JsonResult {
    s.tracking.delete_model_version_tag(&r.name, &r.version, &r.key).await?;
    ok()
}

async fn get_model_version_download_uri(State(s): State<AppState>, Req(r): Req<rq::ModelVersionRequest>) -> JsonResult {
    let uri = s.tracking.get_model_version_download_uri(&r.name, &r.version).await?;
    Ok(Json(json!({ "artifact_uri": uri })))
}

async fn search_model_versions(State(s): State<AppState>, Req(r): Req<rq::SearchRegistryRequest>) -> JsonResult {
    let page = s
        .tracking
        .search_model_versions(&r.filter, r.max_results, &r.order_by, &r.page_token)
        .await?;
    Ok(Json(versions_json(&page.items, page.next_page_token)))
}

/// `{"<key>": [...], "next_page_token": …}`, each part left out when empty (protobuf's JSON).
fn listing<T: serde::Serialize>(key: &str, items: Vec<T>, next_page_token: Option<String>) -> Value {
    let mut out = serde_json::Map::new();
    if !items.is_empty() {
        out.insert(key.into(), serde_json::to_value(items).unwrap_or_default());
    }
    if let Some(t) = next_page_token {
        out.insert("next_page_token".into(), Value::String(t));
    }
    Value::Object(out)
}

fn versions_json(versions: &[ModelVersion], next_page_token: Option<String>) -> Value {
    listing("model_versions", versions.iter().map(ModelVersionOut::new).collect(), next_page_token)
}
