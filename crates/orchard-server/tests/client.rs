//! The typed client (`orchard-client`) and the server (`orchard-server::launch`) talking over a real socket:
//! what the client sends is what the server reads, what the server answers is what the client reads, and a
//! model registered on the server is found and downloaded through its API, as `orchard serve` does.

use std::path::Path;

use orchard_api::endpoints::{
    AliasRequest, CreateExperiment, CreateExperimentRequest, CreateRun, CreateRunRequest, GetExperimentByName,
    GetExperimentByNameRequest, GetRun, LogBatch, LogBatchRequest, MetricIn, RunIdRequest, UpdateRun,
    UpdateRunRequest,
};
use orchard_api::read::KeyValue;
use orchard_client::{Client, ClientError};
use orchard_server::launch::{launch, Settings};
use orchard_server::model_source::ModelSource;

/// A one-split LightGBM regression on one feature (x <= 0.5 → 1, else 2).
const MODEL: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=0\nobjective=regression\nfeature_names=x\nfeature_infos=[0:1]\ntree_sizes=1\n\nTree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=0.5\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=1 2\nleaf_weight=1 1\nleaf_count=1 1\ninternal_value=0\ninternal_weight=0\ninternal_count=2\nis_linear=0\nshrinkage=1\n\n\nend of trees\n";

struct Server {
    url: String,
    dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        backend_store_uri: format!("sqlite:///{}/o.db", dir.path().display()),
        artifacts_destination: format!("file://{}/artifacts", dir.path().display()),
        serve_artifacts: true,
        default_artifact_root: None,
        gateway: None,
        prediction_log: false,
        scheduler: false,
        model_cache_dir: dir.path().join("cache"),
        graphql_limits: Default::default(),
        python: Default::default(),
    };
    let mut launched = launch(&settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = launched.take_app();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { url, dir, _task: task }
}

#[tokio::test]
async fn a_run_logged_through_the_client_reads_back() {
    let s = server().await;
    let client = Client::new(&s.url);
    let missing = client
        .call::<GetExperimentByName>(&GetExperimentByNameRequest { experiment_name: "iris".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.error_code(), Some("RESOURCE_DOES_NOT_EXIST"), "{missing}");
    let created = client
        .call::<CreateExperiment>(&CreateExperimentRequest { name: "iris".into(), ..Default::default() })
        .await
        .unwrap();
    let run = client
        .call::<CreateRun>(&CreateRunRequest {
            experiment_id: created.experiment_id.clone(),
            run_name: Some("first".into()),
            start_time: Some(1_000),
            tags: vec![KeyValue::new("team", "ml")],
            ..Default::default()
        })
        .await
        .unwrap()
        .run;
    assert_eq!(run.info.run_name, "first");
    let batch = LogBatchRequest {
        run_id: run.info.run_id.clone(),
        metrics: vec![
            MetricIn { key: "acc".into(), value: 0.0, timestamp: 5, step: Some(0), ..Default::default() },
            MetricIn { key: "loss".into(), value: 0.25, timestamp: 5, step: Some(3), ..Default::default() },
        ],
        params: vec![KeyValue::new("lr", "0.1")],
        tags: vec![],
    };
    client.call::<LogBatch>(&batch).await.unwrap();
    let finished = UpdateRunRequest {
        run_id: run.info.run_id.clone(),
        status: Some("FINISHED".into()),
        end_time: Some(2_000),
        run_name: None,
    };
    assert_eq!(client.call::<UpdateRun>(&finished).await.unwrap().run_info.status, "FINISHED");
    let back = client.call::<GetRun>(&RunIdRequest { run_id: run.info.run_id.clone() }).await.unwrap().run;
    assert_eq!(back.info.end_time, Some(2_000));
    assert_eq!(back.data.params, vec![KeyValue::new("lr", "0.1")]);
    let acc = back.data.metrics.iter().find(|m| m.key == "acc").expect("a metric of value 0 is logged");
    assert_eq!((acc.value, acc.step), (0.0, 0));
    assert!(back.data.tags.contains(&KeyValue::new("team", "ml")));

    // A bad request comes back as MLflow's error, with the field named.
    let bad = client.call::<LogBatch>(&LogBatchRequest { run_id: "no such run".into(), ..Default::default() }).await;
    match bad.unwrap_err() {
        ClientError::Api { status, error_code, message, .. } => {
            assert_eq!((status, error_code.as_str()), (400, "INVALID_PARAMETER_VALUE"));
            assert!(message.contains("parameter 'run_id'"), "{message}");
        }
        other => panic!("expected an API error, got {other}"),
    }
}

/// Registers a LightGBM text model as version 1 of `iris` behind `@champion`, through the REST API.
async fn register_model(s: &Server) {
    let http = reqwest::Client::new();
    let api = format!("{}/api/2.0/mlflow", s.url);
    let post = |path: &'static str, body: serde_json::Value| {
        let req = http.post(format!("{api}/{path}")).json(&body);
        async move {
            let res = req.send().await.unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.text().await.unwrap());
        }
    };
    let model = MODEL;
    http.put(format!("{}/api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts/model/model.txt", s.url))
        .body(model)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    post("registered-models/create", serde_json::json!({ "name": "iris" })).await;
    let source = "mlflow-artifacts:/0/r1/artifacts/model";
    post("model-versions/create", serde_json::json!({ "name": "iris", "source": source })).await;
    post("registered-models/alias", serde_json::json!({ "name": "iris", "alias": "champion", "version": "1" })).await;
}

#[tokio::test]
async fn a_registered_model_is_resolved_and_fetched_through_the_api() {
    let s = server().await;
    register_model(&s).await;
    let client = Client::new(&s.url);
    let found = client.resolve_model("models:/iris@champion").await.unwrap();
    assert_eq!((found.name.as_str(), found.version.as_str()), ("iris", "1"));
    let dest = s.dir.path().join("fetched");
    assert_eq!(client.download_dir(&found.artifact_uri, &dest).await.unwrap(), 1);
    assert!(dest.join("model.txt").is_file());
    let version = client
        .call::<orchard_api::endpoints::GetModelVersionByAlias>(&AliasRequest { name: "iris".into(), alias: "champion".into() })
        .await
        .unwrap()
        .model_version;
    assert_eq!(version.source, "mlflow-artifacts:/0/r1/artifacts/model");
    assert!(client.resolve_model("models:/iris@nobody").await.is_err());

    // `orchard serve models:/iris@champion` with MLFLOW_TRACKING_URI: the same model, loaded.
    let source = ModelSource {
        uri: "models:/iris@champion".into(),
        backend_store_uri: String::new(),
        backend_named: false,
        tracking_uri: Some(s.url.clone()),
        cache_dir: s.dir.path().join("serve-cache"),
        python: Default::default(),
    };
    let blob = orchard_blob::BlobStore::open(&format!("file://{}", s.dir.path().join("unused").display())).unwrap();
    let served = source.load(&orchard_tracking::artifacts::Artifacts::new(blob)).await.unwrap();
    assert_eq!((&*served.name, &*served.version), ("iris", "1"));
    assert!(empty_or_missing(&s.dir.path().join("serve-cache")), "the download is removed once loaded");
}

fn empty_or_missing(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true)
}
