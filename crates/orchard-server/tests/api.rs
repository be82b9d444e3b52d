//! The HTTP layer in-process: routing, request parsing and MLflow's error shapes, without a network or Python.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use orchard_server::{app, AppState};
use orchard_store::Store;
use orchard_tracking::artifacts::Artifacts;
use orchard_tracking::Tracking;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Fixture {
    app: axum::Router,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:///{}/o.db", dir.path().display()))
        .await
        .unwrap();
    let tracking = Tracking::new(store, "mlflow-artifacts:/").await.unwrap();
    let blob = orchard_blob::BlobStore::open(&format!("file://{}/artifacts", dir.path().display()))
        .unwrap();
    Fixture {
        app: {
            let artifacts = Some(Artifacts::new(blob));
            let graphql = orchard_graphql::GraphQl::new(tracking.clone(), artifacts.clone(), Default::default());
            app(AppState { tracking, artifacts, gateway: None, graphql })
        },
        _dir: dir,
    }
}

impl Fixture {
    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(
                body.map(|b| Body::from(b.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, &format!("/api/2.0/mlflow/{path}"), Some(body))
            .await
    }
}


/// The `message` of an MLflow error body.
fn message(body: &serde_json::Value) -> &str {
    body["message"].as_str().expect("an error body has a message")
}

#[tokio::test]
async fn unknown_routes_are_endpoint_not_found() {
    let f = fixture().await;
    let (status, body) = f
        .call(Method::GET, "/api/2.0/mlflow/traces/search", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND");
    let (status, body) = f
        .call(Method::GET, "/api/2.0/mlflow/runs/create", None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(message(&body).contains("GET"));
}

#[tokio::test]
async fn errors_carry_mlflow_codes_and_statuses() {
    let f = fixture().await;
    let (status, body) = f.post("experiments/create", json!({})).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_PARAMETER_VALUE"))
    );
    let (status, _) = f.post("experiments/create", json!({"name": "a"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = f.post("experiments/create", json!({"name": "a"})).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("RESOURCE_ALREADY_EXISTS"))
    );
    let (status, body) = f
        .call(Method::GET, "/api/2.0/mlflow/runs/get?run_id=nope", None)
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    // Renaming a deleted experiment is INVALID_STATE, a 500 in MLflow's mapping.
    let (_, created) = f.post("experiments/create", json!({"name": "b"})).await;
    let id = created["experiment_id"].as_str().unwrap().to_string();
    f.post("experiments/delete", json!({"experiment_id": id}))
        .await;
    let (status, body) = f
        .post(
            "experiments/update",
            json!({"experiment_id": id, "new_name": "c"}),
        )
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("INVALID_STATE"))
    );
}

#[tokio::test]
async fn get_requests_read_the_query_string() {
    let f = fixture().await;
    let (_, run) = f
        .post(
            "runs/create",
            json!({"experiment_id": "0", "start_time": 5}),
        )
        .await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let metrics: Vec<Value> = (0..3)
        .map(|i| json!({"key": "m", "value": i as f64, "timestamp": "7", "step": i.to_string()}))
        .collect();
    let (status, _) = f
        .post(
            "runs/log-batch",
            json!({"run_id": run_id, "metrics": metrics}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = f
        .call(
            Method::GET,
            &format!(
                "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=m&max_results=2"
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["metrics"].as_array().unwrap().len(), 2);
    assert_eq!(body["next_page_token"], "eyJvZmZzZXQiOiAyfQ==");
    let (status, body) = f
        .call(
            Method::GET,
            "/ajax-api/2.0/mlflow/experiments/search?max_results=5&view_type=ALL",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["experiments"][0]["name"], "Default");
    let (status, body) = f
        .call(
            Method::GET,
            "/api/2.0/mlflow/metrics/get-history?run_id=x&metric_key=m&max_results=abc",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("max_results"));
}

#[tokio::test]
async fn nested_field_errors_name_their_path() {
    let f = fixture().await;
    let (_, run) = f.post("runs/create", json!({"experiment_id": "0"})).await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let (status, body) = f
        .post("runs/log-batch", json!({"run_id": run_id, "metrics": [{"key": "a", "value": 1, "timestamp": 1}, {"key": "b", "timestamp": 1}]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("'metrics[1].value'"),
        "{body}"
    );
}
