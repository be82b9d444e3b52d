//! `mlflowSearchRuns` writes its page of runs itself, for speed (src/run_list.rs); `mlflowGetRun` answers the same
//! run through async-graphql's objects. The same selection asked of both must read the same, for every field,
//! alias, repetition, fragment and `@skip`/`@include` a client may send — checked here on hand-picked queries
//! and on random selections, over a run holding every kind of value (NaN and infinite metrics, quotes, control
//! characters and non-ASCII text, datasets, model inputs and outputs).

use orchard_graphql::{GraphQl, GraphQlQuery, Limits};
use orchard_tracking::{Dataset, DatasetInput, Metric, ModelOutput, Store, Tag, Tracking};
use proptest::prelude::*;
use serde_json::{json, Value};

const AWKWARD: &str = "q\"uote\\ back\nline\u{1}ctl ünï 🌳 </script>";

struct Fixture {
    graphql: GraphQl,
    experiment: String,
    run: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:///{}/o.db", dir.path().display())).await.unwrap();
    let t = Tracking::new(store, "mlflow-artifacts:/").await.unwrap();
    let experiment = t.create_experiment("runs", None, &[]).await.unwrap();
    let run = t.create_run(&experiment, AWKWARD, Some(AWKWARD), Some(1_700_000_000_000), &[Tag::new("t", AWKWARD)]).await.unwrap();
    let id = run.info.run_id.clone();
    let model = t.create_logged_model(&experiment, Some("m"), None, Some(&id), &[], &[]).await.unwrap();
    let mut with_model = Metric::new("acc", 0.25, 5, 3);
    with_model.model_id = Some(model.model_id.clone());
    with_model.dataset_name = Some("train".into());
    with_model.dataset_digest = Some("d1".into());
    let metrics = [
        Metric::new("nan", f64::NAN, 1, 0),
        Metric::new("inf", f64::INFINITY, 2, 0),
        Metric::new("big", 1e300, 3, -1),
        Metric::new("odd/key: -.0", -0.0, 4, i64::MAX),
        with_model,
    ];
    let params = [Tag::new("lr", "0.1"), Tag::new("name", AWKWARD)];
    t.log_batch(&id, &metrics, &params, &[Tag::new("k", "")]).await.unwrap();
    let dataset = Dataset {
        name: "iris".into(),
        digest: "abc".into(),
        source_type: "local".into(),
        source: AWKWARD.into(),
        schema: Some("{\"mlflow_colspec\": []}".into()),
        profile: None,
    };
    let input = DatasetInput { tags: vec![Tag::new("mlflow.data.context", "training")], dataset };
    t.log_inputs(&id, &[input], &[model.model_id.clone()]).await.unwrap();
    t.log_outputs(&id, &[ModelOutput { model_id: model.model_id.clone(), step: 7 }]).await.unwrap();
    t.update_run(&id, Some("FINISHED"), Some(1_700_000_100_000), None).await.unwrap();
    let limits = Limits { max_root_fields: 10, max_aliases: 1_000 };
    Fixture { graphql: GraphQl::new(t, None, limits), experiment, run: id, _dir: dir }
}

impl Fixture {
    /// The selection asked of the run through both roots: (search's run, getRun's run, the whole answer's text).
    async fn both(&self, selection: &str, fragments: &str) -> (Value, Value, String) {
        // GraphQL refuses variables a query does not use.
        let used: Vec<String> = ["yes", "no"]
            .iter()
            .filter(|v| selection.contains(&format!("${v}")))
            .map(|v| format!("${v}: Boolean!"))
            .collect();
        let declared = if used.is_empty() { String::new() } else { format!("({})", used.join(", ")) };
        let query = format!(
            "query q{declared} {{
               s: mlflowSearchRuns(input: {{experimentIds: [\"{e}\"]}}) {{ runs {{ {selection} }} }}
               g: mlflowGetRun(input: {{runId: \"{r}\"}}) {{ run {{ {selection} }} }}
             }} {fragments}",
            e = self.experiment,
            r = self.run,
        );
        let variables = Some(json!({ "yes": true, "no": false })).filter(|_| !used.is_empty());
        let q = GraphQlQuery { query, variables, operation_name: None };
        let text = String::from_utf8(self.graphql.execute(q).await).unwrap();
        let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(answer["errors"], Value::Null, "{text}");
        let searched = answer["data"]["s"]["runs"].as_array().unwrap_or_else(|| panic!("{text}"));
        assert_eq!(searched.len(), 1, "{text}");
        (searched[0].clone(), answer["data"]["g"]["run"].clone(), text)
    }
}

const EVERYTHING: &str = "__typename
  info { __typename runId runUuid runName experimentId userId status startTime endTime artifactUri lifecycleStage }
  data { __typename metrics { __typename key value timestamp step runId datasetName datasetDigest modelId }
         params { __typename key value } tags { __typename key value } }
  inputs { __typename datasetInputs { __typename tags { __typename key value }
                                      dataset { __typename name digest sourceType source schema profile } }
           modelInputs { __typename modelId } }
  outputs { __typename modelOutputs { __typename modelId step } }";

#[tokio::test]
async fn every_field_reads_as_getrun_reads_it() {
    let f = fixture().await;
    let (searched, got, _) = f.both(EVERYTHING, "").await;
    assert_eq!(searched, got);
    // The values themselves, as MLflow's schema gives them.
    assert_eq!(got["info"]["status"], "FINISHED");
    assert_eq!(got["info"]["startTime"], "1700000000000");
    assert_eq!(got["info"]["runName"], AWKWARD);
    let metrics = got["data"]["metrics"].as_array().unwrap();
    let value = |key: &str| metrics.iter().find(|m| m["key"] == key).unwrap()["value"].clone();
    assert_eq!(value("nan"), Value::Null, "GraphQL's Float has no NaN");
    assert_eq!(value("inf"), Value::Null);
    assert_eq!(value("big"), json!(1e300));
    assert_eq!(metrics.iter().find(|m| m["key"] == "odd/key: -.0").unwrap()["step"], i64::MAX.to_string());
    assert_eq!(got["outputs"]["modelOutputs"][0]["step"], "7");
    assert_eq!(got["inputs"]["datasetInputs"][0]["dataset"]["profile"], "");
}

#[tokio::test]
async fn aliases_repeats_fragments_and_directives_merge_as_graphql_says() {
    let f = fixture().await;
    let fragments = "fragment P on MlflowRunData { params { value } }
                     fragment D on MlflowRunExtension { data { ...P params { key } } }";
    let (searched, got, text) = f
        .both(
            "b: info { status } a: info { runId } info { runName } info { userId }
             ...D ... on MlflowRunExtension { data { tags { key } } }
             skipped: info @skip(if: $yes) { runId } kept: info @include(if: $yes) { runId }
             gone: outputs @include(if: $no) { __typename }",
            fragments,
        )
        .await;
    assert_eq!(searched, got);
    assert_eq!(got["info"], json!({ "runName": AWKWARD, "userId": AWKWARD }), "repeated keys merge");
    assert_eq!(got["data"]["params"][0], json!({ "value": "0.1", "key": "lr" }), "so do fragments' fields");
    assert!(got.get("skipped").is_none() && got.get("gone").is_none() && got["kept"]["runId"] == f.run.as_str());
    // Keys come in the order they were asked, in both answers.
    let order = r#"{"b":{"status":"FINISHED"},"a":{"runId":"#;
    assert_eq!(text.matches(order).count(), 2, "{text}");
}

#[tokio::test]
async fn repeated_runs_and_roots_merge_too() {
    let f = fixture().await;
    let (e, r) = (&f.experiment, &f.run);
    let query = format!(
        "{{ s: mlflowSearchRuns(input: {{experimentIds: [\"{e}\"]}}) {{ runs {{ info {{ runId }} }} }}
            s: mlflowSearchRuns(input: {{experimentIds: [\"{e}\"]}}) {{ runs {{ data {{ params {{ key }} }} }} nextPageToken }}
            g: mlflowGetRun(input: {{runId: \"{r}\"}}) {{ run {{ info {{ runId }} }} }}
            g: mlflowGetRun(input: {{runId: \"{r}\"}}) {{ run {{ data {{ params {{ key }} }} }} }} }}"
    );
    let text = String::from_utf8(f.graphql.execute(GraphQlQuery { query, ..Default::default() }).await).unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    let searched = &answer["data"]["s"]["runs"][0];
    assert_eq!(searched, &answer["data"]["g"]["run"], "{text}");
    assert_eq!(searched, &json!({ "info": { "runId": r }, "data": { "params": [{ "key": "lr" }, { "key": "name" }] } }));
    assert_eq!(answer["data"]["s"]["nextPageToken"], Value::Null);
}

#[tokio::test]
async fn everything_skipped_reads_null_and_a_key_for_two_fields_is_left_to_async_graphql() {
    let f = fixture().await;
    let (searched, got, _) = f.both("info { ... @skip(if: $yes) { runId } } data { params { key } }", "").await;
    assert_eq!(searched, got);
    assert_eq!(got["info"], Value::Null, "an object asked for nothing is null");
    let (searched, got, _) = f.both("... @include(if: $no) { __typename }", "").await;
    assert_eq!((searched, got), (Value::Null, Value::Null));
    // Valid to async-graphql (the two `data` are compared apart), though GraphQL's spec forbids it.
    let (searched, got, _) = f.both("data { metrics { key } } data { metrics: params { value } }", "").await;
    assert_eq!(searched, got);
}

#[tokio::test]
async fn a_run_asked_for_its_experiment_is_still_answered() {
    let f = fixture().await;
    let (searched, got, _) = f.both("info { runId } experiment { name } modelVersions { name }", "").await;
    assert_eq!(searched, got);
    assert_eq!(got["experiment"]["name"], "runs");
    assert_eq!(got["modelVersions"], json!([]));
}

/// A random selection of the run's fields: each field kept or not, aliased, repeated, or wrapped in an inline
/// fragment, recursively.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Leaf,
    Object(&'static [(&'static str, Shape)]),
}

const KV: Shape = Shape::Object(&[("key", Shape::Leaf), ("value", Shape::Leaf), ("__typename", Shape::Leaf)]);
const RUN: &[(&str, Shape)] = &[
    ("__typename", Shape::Leaf),
    (
        "info",
        Shape::Object(&[
            ("runId", Shape::Leaf), ("runUuid", Shape::Leaf), ("runName", Shape::Leaf), ("experimentId", Shape::Leaf),
            ("userId", Shape::Leaf), ("status", Shape::Leaf), ("startTime", Shape::Leaf), ("endTime", Shape::Leaf),
            ("artifactUri", Shape::Leaf), ("lifecycleStage", Shape::Leaf), ("__typename", Shape::Leaf),
        ]),
    ),
    (
        "data",
        Shape::Object(&[
            (
                "metrics",
                Shape::Object(&[
                    ("key", Shape::Leaf), ("value", Shape::Leaf), ("timestamp", Shape::Leaf), ("step", Shape::Leaf),
                    ("runId", Shape::Leaf), ("datasetName", Shape::Leaf), ("datasetDigest", Shape::Leaf),
                    ("modelId", Shape::Leaf),
                ]),
            ),
            ("params", KV),
            ("tags", KV),
        ]),
    ),
    (
        "inputs",
        Shape::Object(&[
            (
                "datasetInputs",
                Shape::Object(&[
                    ("tags", KV),
                    (
                        "dataset",
                        Shape::Object(&[
                            ("name", Shape::Leaf), ("digest", Shape::Leaf), ("sourceType", Shape::Leaf),
                            ("source", Shape::Leaf), ("schema", Shape::Leaf), ("profile", Shape::Leaf),
                        ]),
                    ),
                ]),
            ),
            ("modelInputs", Shape::Object(&[("modelId", Shape::Leaf)])),
        ]),
    ),
    ("outputs", Shape::Object(&[("modelOutputs", Shape::Object(&[("modelId", Shape::Leaf), ("step", Shape::Leaf)]))])),
];

/// Writes a selection of `fields` driven by `dice` (each roll one number; an exhausted supply reads as 0).
fn select(fields: &[(&str, Shape)], dice: &mut impl Iterator<Item = u8>, aliases: &mut usize, out: &mut String) {
    let start = out.len();
    for (name, shape) in fields {
        let roll = dice.next().unwrap_or(0);
        if roll % 3 == 0 {
            continue;
        }
        let copies = if roll % 7 == 1 { 2 } else { 1 };
        for _ in 0..copies {
            let inline = roll % 5 == 2;
            if inline {
                out.push_str("... { ");
            }
            if roll % 4 == 3 {
                *aliases += 1;
                out.push_str(&format!("x{}: ", *aliases));
            }
            out.push_str(name);
            if let Shape::Object(inner) = shape {
                out.push_str(" { ");
                select(inner, dice, aliases, out);
                out.push_str(" }");
            }
            out.push(' ');
            if inline {
                out.push_str("} ");
            }
        }
    }
    if out.len() == start {
        out.push_str("__typename");
    }
}

#[test]
fn random_selections_read_as_getrun_reads_them() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = rt.block_on(fixture());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 96, ..ProptestConfig::default() });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 8..160), |dice| {
            let mut selection = String::new();
            select(RUN, &mut dice.into_iter(), &mut 0, &mut selection);
            let (searched, got, text) = rt.block_on(f.both(&selection, ""));
            prop_assert_eq!(searched, got, "{} -> {}", selection, text);
            Ok(())
        })
        .unwrap();
}
