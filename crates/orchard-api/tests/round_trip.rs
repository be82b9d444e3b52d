//! What the server writes (`wire`) is what a client reads (`read`): every entity, with its optional parts
//! present and absent, and the values JSON cannot hold.

use orchard_api::{read, wire};
use orchard_tracking::registry::ModelVersion;
use orchard_tracking::{Experiment, Metric, Run, RunInfo, Tag};

fn through<T: serde::de::DeserializeOwned>(value: impl serde::Serialize) -> T {
    let text = serde_json::to_string(&value).expect("serializes");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn info(end_time: Option<i64>) -> RunInfo {
    RunInfo {
        run_id: "abc".into(),
        run_name: "gentle-fox".into(),
        experiment_id: "3".into(),
        user_id: "ana".into(),
        status: "FINISHED".into(),
        start_time: Some(1_700_000_000_000),
        end_time,
        artifact_uri: "mlflow-artifacts:/3/abc/artifacts".into(),
        lifecycle_stage: "active".into(),
    }
}

#[test]
fn experiments_read_back() {
    for tags in [vec![], vec![Tag::new("team", "ml")]] {
        let e = Experiment {
            experiment_id: "7".into(),
            name: "iris".into(),
            artifact_location: "mlflow-artifacts:/7".into(),
            lifecycle_stage: "active".into(),
            creation_time: 1,
            last_update_time: 2,
            tags: tags.clone(),
        };
        let back: read::Experiment = through(wire::ExperimentOut(&e));
        assert_eq!(back.experiment_id, "7");
        assert_eq!(back.name, "iris");
        assert_eq!(back.artifact_location, e.artifact_location);
        assert_eq!((back.creation_time, back.last_update_time), (Some(1), Some(2)));
        assert_eq!(back.tags, tags.iter().map(|t| read::KeyValue::new(&t.key, &t.value)).collect::<Vec<_>>());
    }
}

#[test]
fn runs_read_back_with_non_finite_metrics() {
    let values = [0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e300];
    let run = Run {
        info: info(None),
        metrics: values.iter().enumerate().map(|(i, v)| Metric::new(format!("m{i}"), *v, 10, i as i64)).collect(),
        params: vec![Tag::new("lr", "0.1")],
        tags: vec![Tag::new("mlflow.runName", "gentle-fox")],
        dataset_inputs: vec![],
        model_inputs: vec![],
        model_outputs: vec![],
    };
    let back: read::Run = through(wire::RunOut(&run));
    assert_eq!(back.info.run_id, "abc");
    assert_eq!(back.info.end_time, None);
    assert_eq!(back.info.start_time, Some(1_700_000_000_000));
    assert_eq!(back.data.params, vec![read::KeyValue::new("lr", "0.1")]);
    for (m, v) in back.data.metrics.iter().zip(values) {
        assert!(m.value == v || (m.value.is_nan() && v.is_nan()), "{} read back as {}", v, m.value);
    }
    let finished: read::RunInfo = through(wire::RunInfoOut(&info(Some(5))));
    assert_eq!(finished.end_time, Some(5));
}

#[test]
fn model_versions_read_back() {
    let v = ModelVersion {
        name: "iris".into(),
        version: 12,
        creation_timestamp_ms: 1,
        last_updated_timestamp_ms: 2,
        description: Some(String::new()),
        current_stage: "None".into(),
        source: "runs:/abc/model".into(),
        storage_location: "mlflow-artifacts:/3/abc/artifacts/model".into(),
        run_id: Some("abc".into()),
        run_link: None,
        status: "READY".into(),
        status_message: None,
        model_id: None,
        tags: vec![Tag::new("k", "v")],
        aliases: vec!["champion".into()],
    };
    let back: read::ModelVersion = through(wire::registry::ModelVersionOut::new(&v));
    assert_eq!(back.version, "12");
    assert_eq!(back.source, "runs:/abc/model");
    assert_eq!(back.run_id.as_deref(), Some("abc"));
    assert_eq!(back.description, None, "an empty description is left out");
    assert_eq!(back.aliases, vec!["champion".to_string()]);
}

#[test]
fn int64_fields_may_arrive_as_strings() {
    let text = r#"{"run_id":"a","experiment_id":"1","status":"RUNNING","start_time":"17","end_time":null}"#;
    let info: read::RunInfo = serde_json::from_str(text).unwrap();
    assert_eq!(info.start_time, Some(17));
    let version: read::ModelVersion = serde_json::from_str(r#"{"name":"m","version":3}"#).unwrap();
    assert_eq!(version.version, "3");
    assert!(serde_json::from_str::<read::RunInfo>(r#"{"run_id":"a","experiment_id":"1","status":"X","start_time":"soon"}"#).is_err());
}
