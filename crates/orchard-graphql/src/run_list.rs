//! `mlflowSearchRuns`' list of runs, written straight to JSON.
//!
//! async-graphql resolves every field of every object as its own future and builds a tree of values that is then
//! converted and serialized: for a page of 1,000 runs (each with its params, metrics and tags, some 100,000
//! fields) that took more than the search itself, where the REST API serializes the same runs straight to bytes.
//! Here the query's selection under `runs` is read once (aliases, repeated fields and fragments merged, as GraphQL
//! merges them; `@skip`/`@include` are already applied by async-graphql) and the runs are written as JSON text,
//! which async-graphql's `raw_value` token places in the answer as it is.
//!
//! The schema (names, types, what introspection shows) stays that of [`RunOut`]'s objects, and so do the values:
//! a test compares this output with `mlflowGetRun`'s, which async-graphql resolves through those objects, over
//! every field and random selections. `experiment` and `modelVersions` read the store per run; a query that asks
//! for them is resolved by async-graphql as before.

use std::borrow::Cow;

use async_graphql::parser::types::{FragmentDefinition, Selection, SelectionSet};
use async_graphql::{registry, ContextSelectionSet, Name, OutputType, Positioned, QueryPathSegment, ServerResult, Value};
use async_graphql_value::RAW_VALUE_TOKEN;
use orchard_tracking::{DatasetInput, Metric, ModelOutput, Run, RunInfo, Tag};
use serde::Serialize;
use std::collections::HashMap;

use crate::objects::{RunOut, RunStatus};

/// A page of runs (`[MlflowRunExtension!]`).
pub struct RunList(pub Vec<RunOut>);

impl OutputType for RunList {
    fn type_name() -> Cow<'static, str> {
        <Vec<RunOut> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<RunOut> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut registry::Registry) -> String {
        <Vec<RunOut> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<async_graphql::parser::types::Field>,
    ) -> ServerResult<Value> {
        match asked_here(ctx) {
            Some(asks) if !asks.iter().any(|a| a.name == "experiment" || a.name == "modelVersions") => {
                let mut out = Vec::with_capacity(self.0.len() * 1024);
                list(&mut out, &self.0, |out, run| write_run(out, &asks, &run.0));
                // serde_json wrote it, so it is UTF-8; were it not, async-graphql answers instead.
                if let Ok(json) = String::from_utf8(out) {
                    return Ok(Value::Object([(Name::new(RAW_VALUE_TOKEN), Value::String(json))].into_iter().collect()));
                }
            }
            _ => {}
        }
        self.0.resolve(ctx, field).await
    }
}

/// What the query asks of each run at this place in the answer: every selection of this key, and of each key
/// above it, merged from the operation down. async-graphql resolves each occurrence of a repeated key on its own
/// and merges their values, keeping the first where a value is not an object or list (as this list's JSON text
/// is not); so every occurrence writes the whole merged selection, and the first is kept whole. `None` (the
/// objects answer instead) when a fragment is missing or a key above or below names two different fields.
fn asked_here<'q>(ctx: &ContextSelectionSet<'q>) -> Option<Vec<Ask<'q>>> {
    let env = ctx.query_env;
    let mut keys = Vec::new();
    let mut node = ctx.path_node.as_ref();
    while let Some(n) = node {
        if let QueryPathSegment::Name(key) = n.segment {
            keys.push(key);
        }
        node = n.parent;
    }
    let mut sets = vec![&env.operation.node.selection_set.node];
    for key in keys.into_iter().rev() {
        sets = group(&sets, &env.fragments)?.into_iter().find(|g| g.key == key)?.sets;
    }
    Ask::compile(&sets, &env.fragments)
}

/// One key of an object in the answer: the response key (the alias, or the field's name), the field, and what
/// is asked of it when it is an object.
struct Ask<'q> {
    key: &'q str,
    name: &'q str,
    fields: Vec<Ask<'q>>,
}

/// The occurrences of one key in a selection: its field and the selection sets of every occurrence.
struct Group<'q> {
    key: &'q str,
    name: &'q str,
    sets: Vec<&'q SelectionSet>,
}

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// The keys the selection sets ask for, in the order they first appear (a fragment's fields take its place);
/// `None` when a fragment is missing or a key names two different fields.
fn group<'q>(sets: &[&'q SelectionSet], fragments: &'q Fragments) -> Option<Vec<Group<'q>>> {
    let mut found: Vec<Group<'q>> = Vec::new();
    for set in sets {
        let mut stack: Vec<std::slice::Iter<'q, Positioned<Selection>>> = vec![set.items.iter()];
        while let Some(items) = stack.last_mut() {
            let Some(selection) = items.next() else {
                stack.pop();
                continue;
            };
            match &selection.node {
                Selection::Field(f) => {
                    let (key, sub) = (f.node.response_key().node.as_str(), &f.node.selection_set.node);
                    let name = f.node.name.node.as_str();
                    match found.iter_mut().find(|g| g.key == key) {
                        Some(g) if g.name == name => g.sets.push(sub),
                        // One key naming two fields (possible across copies of a parent, which validation does
                        // not compare): async-graphql's merge of such values is left to async-graphql.
                        Some(_) => return None,
                        None => found.push(Group { key, name, sets: vec![sub] }),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let fragment = fragments.get(&spread.node.fragment_name.node)?;
                    stack.push(fragment.node.selection_set.node.items.iter());
                }
                Selection::InlineFragment(inline) => stack.push(inline.node.selection_set.node.items.iter()),
            }
        }
    }
    Some(found)
}

impl<'q> Ask<'q> {
    /// The whole tree the selection sets ask for, repeated keys merged at every level.
    fn compile(sets: &[&'q SelectionSet], fragments: &'q Fragments) -> Option<Vec<Ask<'q>>> {
        group(sets, fragments)?
            .into_iter()
            .map(|g| Some(Ask { key: g.key, name: g.name, fields: Ask::compile(&g.sets, fragments)? }))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------- JSON writing

/// JSON text of a string or number, as serde_json writes it (and so as the rest of the answer is written).
fn value(out: &mut Vec<u8>, v: &(impl Serialize + ?Sized)) {
    // Writing a string or a number into memory has no failure to report.
    serde_json::to_writer(&mut *out, v).expect("a string or number written to memory");
}

fn long(out: &mut Vec<u8>, n: i64) {
    value(out, &n.to_string());
}

fn list<T>(out: &mut Vec<u8>, items: impl IntoIterator<Item = T>, mut each: impl FnMut(&mut Vec<u8>, T)) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

/// An object of type `typename`: each asked key, its value written by `field` (or the type's name). An object
/// asked for nothing (every field skipped by `@skip`/`@include`) is null, as async-graphql answers it.
fn object(out: &mut Vec<u8>, asks: &[Ask], typename: &str, mut field: impl FnMut(&mut Vec<u8>, &Ask)) {
    if asks.is_empty() {
        out.extend_from_slice(b"null");
        return;
    }
    out.push(b'{');
    for (i, ask) in asks.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        value(out, ask.key);
        out.push(b':');
        match ask.name {
            "__typename" => value(out, typename),
            _ => field(out, ask),
        }
    }
    out.push(b'}');
}

// ------------------------------------------------------------------ the objects, as `objects.rs` defines them

fn write_run(out: &mut Vec<u8>, asks: &[Ask], run: &Run) {
    object(out, asks, "MlflowRunExtension", |out, ask| match ask.name {
        "info" => write_info(out, &ask.fields, &run.info),
        "data" => object(out, &ask.fields, "MlflowRunData", |out, ask| match ask.name {
            "metrics" => list(out, &run.metrics, |out, m| write_metric(out, &ask.fields, m)),
            "params" => list(out, &run.params, |out, t| write_tag(out, &ask.fields, "MlflowParam", t)),
            "tags" => list(out, &run.tags, |out, t| write_tag(out, &ask.fields, "MlflowRunTag", t)),
            _ => out.extend_from_slice(b"null"),
        }),
        "inputs" => object(out, &ask.fields, "MlflowRunInputs", |out, ask| match ask.name {
            "datasetInputs" => list(out, &run.dataset_inputs, |out, d| write_dataset_input(out, &ask.fields, d)),
            "modelInputs" => list(out, &run.model_inputs, |out, id| {
                object(out, &ask.fields, "MlflowModelInput", |out, ask| match ask.name {
                    "modelId" => value(out, id),
                    _ => out.extend_from_slice(b"null"),
                })
            }),
            _ => out.extend_from_slice(b"null"),
        }),
        "outputs" => object(out, &ask.fields, "MlflowRunOutputs", |out, ask| match ask.name {
            "modelOutputs" => list(out, &run.model_outputs, |out, m| write_model_output(out, &ask.fields, m)),
            _ => out.extend_from_slice(b"null"),
        }),
        _ => out.extend_from_slice(b"null"),
    })
}

fn write_info(out: &mut Vec<u8>, asks: &[Ask], info: &RunInfo) {
    object(out, asks, "MlflowRunInfo", |out, ask| match ask.name {
        "runId" | "runUuid" => value(out, &info.run_id),
        "runName" => value(out, &info.run_name),
        "experimentId" => value(out, &info.experiment_id),
        "userId" => value(out, &info.user_id),
        "status" => match RunStatus::of(&info.status) {
            Some(_) => value(out, &info.status),
            None => out.extend_from_slice(b"null"),
        },
        "startTime" => long(out, info.start_time.unwrap_or(0)),
        "endTime" => long(out, info.end_time.unwrap_or(0)),
        "artifactUri" => value(out, &info.artifact_uri),
        "lifecycleStage" => value(out, &info.lifecycle_stage),
        _ => out.extend_from_slice(b"null"),
    })
}

fn write_metric(out: &mut Vec<u8>, asks: &[Ask], m: &Metric) {
    object(out, asks, "MlflowMetricExtension", |out, ask| match ask.name {
        "key" => value(out, &m.key),
        // GraphQL's Float has no NaN or infinity: such a value reads as null (see `objects.rs`).
        "value" if m.value.is_finite() => value(out, &m.value),
        "timestamp" => long(out, m.timestamp),
        "step" => long(out, m.step),
        "runId" => value(out, m.run_id.as_deref().unwrap_or("")),
        "datasetName" => value(out, m.dataset_name.as_deref().unwrap_or("")),
        "datasetDigest" => value(out, m.dataset_digest.as_deref().unwrap_or("")),
        "modelId" => value(out, m.model_id.as_deref().unwrap_or("")),
        _ => out.extend_from_slice(b"null"),
    })
}

fn write_tag(out: &mut Vec<u8>, asks: &[Ask], typename: &str, t: &Tag) {
    object(out, asks, typename, |out, ask| match ask.name {
        "key" => value(out, &t.key),
        "value" => value(out, &t.value),
        _ => out.extend_from_slice(b"null"),
    })
}

fn write_dataset_input(out: &mut Vec<u8>, asks: &[Ask], input: &DatasetInput) {
    let d = &input.dataset;
    object(out, asks, "MlflowDatasetInput", |out, ask| match ask.name {
        "tags" => list(out, &input.tags, |out, t| write_tag(out, &ask.fields, "MlflowInputTag", t)),
        "dataset" => object(out, &ask.fields, "MlflowDataset", |out, ask| match ask.name {
            "name" => value(out, &d.name),
            "digest" => value(out, &d.digest),
            "sourceType" => value(out, &d.source_type),
            "source" => value(out, &d.source),
            "schema" => value(out, d.schema.as_deref().unwrap_or("")),
            "profile" => value(out, d.profile.as_deref().unwrap_or("")),
            _ => out.extend_from_slice(b"null"),
        }),
        _ => out.extend_from_slice(b"null"),
    })
}

fn write_model_output(out: &mut Vec<u8>, asks: &[Ask], m: &ModelOutput) {
    object(out, asks, "MlflowModelOutput", |out, ask| match ask.name {
        "modelId" => value(out, &m.model_id),
        "step" => long(out, m.step),
        _ => out.extend_from_slice(b"null"),
    })
}
