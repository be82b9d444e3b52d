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

use crate::request::{empty, one_call_handlers, JsonResult, Req};
use crate::state::AppState;


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

// ---------------------------------------------------------------------------- registered models and aliases

one_call_handlers! {
    create_registered_model(CreateRegisteredModelRequest) => |t, r| model_json(t.create_registered_model(&r.name, r.description.as_deref(), &r.tags));
    get_registered_model(ModelNameRequest) => |t, r| model_json(t.get_registered_model(&r.name));
    rename_registered_model(RenameRegisteredModelRequest) => |t, r| model_json(t.rename_registered_model(&r.name, &r.new_name));
    update_registered_model(UpdateRegisteredModelRequest) => |t, r| model_json(t.update_registered_model(&r.name, r.description.as_deref()));
    delete_registered_model(ModelNameRequest) => |t, r| empty(t.delete_registered_model(&r.name));
    set_registered_model_tag(SetRegisteredModelTagRequest) => |t, r| empty(t.set_registered_model_tag(&r.name, &r.key, &r.value));
    delete_registered_model_tag(DeleteRegisteredModelTagRequest) => |t, r| empty(t.delete_registered_model_tag(&r.name, &r.key));
    set_registered_model_alias(SetAliasRequest) => |t, r| empty(t.set_registered_model_alias(&r.name, &r.alias, &r.version));
    delete_registered_model_alias(AliasRequest) => |t, r| empty(t.delete_registered_model_alias(&r.name, &r.alias));
    get_model_version_by_alias(AliasRequest) => |t, r| version_json(t.get_model_version_by_alias(&r.name, &r.alias));
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

// ------------------------------------------------------------------------------------------- model versions

one_call_handlers! {
    get_model_version(ModelVersionRequest) => |t, r| version_json(t.get_model_version(&r.name, &r.version));
    update_model_version(UpdateModelVersionRequest) => |t, r| version_json(t.update_model_version(&r.name, &r.version, r.description.as_deref()));
    delete_model_version(ModelVersionRequest) => |t, r| empty(t.delete_model_version(&r.name, &r.version));
    set_model_version_tag(SetModelVersionTagRequest) => |t, r| empty(t.set_model_version_tag(&r.name, &r.version, &r.key, &r.value));
    delete_model_version_tag(DeleteModelVersionTagRequest) => |t, r| empty(t.delete_model_version_tag(&r.name, &r.version, &r.key));
}

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

async fn transition_model_version_stage(State(s): State<AppState>, Req(r): Req<rq::TransitionStageRequest>) -> JsonResult {
    let archive = r.archive_existing_versions.unwrap_or(false);
    version_json(&s.tracking.transition_model_version_stage(&r.name, &r.version, &r.stage, archive).await?)
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
