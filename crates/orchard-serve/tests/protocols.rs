//! The three protocols in process, against a small hand-written LightGBM model with a feature spec.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use orchard_model::Model;
use orchard_serve::{Fixed, ServedModel, Serving};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Binary model on two features: x <= 0.5 → leaf 0 (raw -1), else y <= 2 → leaf 1 (raw 0.5), else leaf 2 (raw 2).
const MODEL: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\n\
objective=binary sigmoid:1\nfeature_names=x y\nfeature_infos=[0:1] [0:4]\ntree_sizes=1\n\nTree=0\nnum_leaves=3\n\
num_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=0.5 2\ndecision_type=2 2\nleft_child=-1 -2\n\
right_child=1 -3\nleaf_value=-1 0.5 2\nleaf_weight=1 1 1\nleaf_count=1 1 1\ninternal_value=0 0\n\
internal_weight=0 0\ninternal_count=3 2\nis_linear=0\nshrinkage=1\n\n\nend of trees\n";

fn p(raw: f64) -> f64 {
    1.0 / (1.0 + (-raw).exp())
}

fn serving(max_body: usize) -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.txt"), MODEL).unwrap();
    std::fs::write(
        dir.path().join("feature_spec.json"),
        r#"{"inputs": ["x", "y"], "columns": ["x", "y"], "classes": ["no", "yes"], "label": "answer"}"#,
    )
    .unwrap();
    let model = Model::load(dir.path()).unwrap();
    let served = ServedModel { name: "m".into(), version: "3".into(), source: "test".into(), engine: orchard_serve::Engine::Native(model) };
    let mut s = Serving::new(Arc::new(Fixed(Arc::new(served))));
    s.max_body_bytes = max_body;
    (orchard_serve::router(s), dir)
}

async fn call(app: &axum::Router, method: &str, uri: &str, content_type: &str, body: impl Into<Body>) -> (StatusCode, Value, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

async fn post(app: &axum::Router, uri: &str, body: Value) -> (StatusCode, Value) {
    let (s, v, _) = call(app, "POST", uri, "application/json", body.to_string()).await;
    (s, v)
}

#[tokio::test]
async fn predict_invocations_and_v2_agree_with_the_model() {
    let (app, _dir) = serving(1 << 20);
    let (s, v) = post(&app, "/predict", json!({"x": 1.0, "y": 3.0})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["answer"], "yes");
    assert_eq!(v["probabilities"]["yes"].as_f64().unwrap(), p(2.0));
    assert_eq!(v["request_id"].as_str().unwrap().len(), 36);

    let (_, v) = post(&app, "/predict", json!([{"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 1.0}])).await;
    assert_eq!(v["predictions"][0]["answer"], "no");
    assert_eq!(v["predictions"][1]["probabilities"]["yes"].as_f64().unwrap(), p(0.5));

    // MLflow's scoring protocol answers P(class 1) for binary models, as the lightgbm flavor does.
    let want = json!({"predictions": [p(-1.0), p(2.0)]});
    for body in [
        json!({"dataframe_split": {"columns": ["y", "x"], "data": [[0, 0], [3, 1]]}}),
        json!({"dataframe_records": [{"x": 0, "y": 0}, {"x": 1, "y": 3}]}),
        json!({"instances": [[0, 0], [1, 3]]}),
        json!({"inputs": {"x": [0, 1], "y": [0, 3]}}),
    ] {
        let (s, v) = post(&app, "/invocations", body.clone()).await;
        assert_eq!((s, &v), (StatusCode::OK, &want), "{body}");
    }
    let (s, v, _) = call(&app, "POST", "/invocations", "text/csv", "x,y\n0,0\n1,3\n").await;
    assert_eq!((s, v), (StatusCode::OK, want));

    let (s, v) = post(&app, "/v2/models/m/versions/3/infer", json!({"id": "r1", "inputs": [
        {"name": "input", "shape": [2, 2], "datatype": "FP64", "data": [[0, 0], [1, 3]]}]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["id"].clone(), v["model_version"].clone()), (json!("r1"), json!("3")));
    assert_eq!(v["outputs"][0]["data"], json!(["no", "yes"]));
    assert_eq!(v["outputs"][1]["shape"], json!([2, 2]));
    let (s, v) = post(&app, "/v2/models/m/infer", json!({"inputs": [
        {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]},
        {"name": "y", "shape": [1, 1], "datatype": "FP32", "data": [[1]]}],
        "outputs": [{"name": "probabilities"}]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(v["outputs"][0]["data"][1].as_f64().unwrap(), p(0.5));
}

#[tokio::test]
async fn bad_input_is_a_client_error_naming_the_problem() {
    let (app, _dir) = serving(256);
    for (uri, body, status, needle) in [
        ("/predict", json!({"x": 1}), 400, "missing field 'y'"),
        ("/predict", json!({"x": 1, "y": 2, "z": 3}), 400, "unknown field 'z'"),
        ("/predict", json!({"x": "one", "y": 2}), 400, "field 'x' must be a number, got string"),
        ("/invocations", json!({"instances": [[1, 2, 3]]}), 400, "3 values for 2 columns"),
        ("/invocations", json!({"instances": [[1, 2]], "inputs": [[1, 2]]}), 400, "exactly one of"),
        ("/invocations", json!({"dataframe_split": {"columns": ["x", "x"], "data": [[1, 2]]}}), 400, "given twice"),
        ("/v2/models/m/infer", json!({"inputs": [{"name": "t", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}), 400, "does not fit 2 features"),
        ("/v2/models/m/infer", json!({"inputs": [{"name": "t", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}]}), 400, "holds 4 values"),
        ("/v2/models/m/versions/9/infer", json!({"inputs": []}), 404, "version '9'"),
        ("/v2/models/other/infer", json!({"inputs": []}), 404, "not served here"),
    ] {
        let (s, v) = post(&app, uri, body.clone()).await;
        assert_eq!(s.as_u16(), status, "{uri} {body}: {v}");
        let message = v["message"].as_str().or(v["error"].as_str()).unwrap_or_default();
        assert!(message.contains(needle), "{uri} {body}: {message}");
    }
    let (s, v, _) = call(&app, "POST", "/predict", "application/json", "{\"x\": NaN}").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("malformed JSON"));
    let (s, _, _) = call(&app, "POST", "/predict", "application/json", "[".repeat(300)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _, _) = call(&app, "POST", "/invocations", "application/xml", "<x/>").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _, text) = call(&app, "GET", "/metrics", "text/plain", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(text.contains("orchard_requests_total{route=\"/predict\",status=\"400\"} 4"), "{text}");
    assert!(text.contains("orchard_requests_total{route=\"/predict\",status=\"413\"} 1"), "{text}");
    assert!(text.contains("orchard_model_info{model=\"m\",version=\"3\"} 1"));
}
