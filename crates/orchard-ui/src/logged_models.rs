//! Logged models (MLflow 3 keeps a model apart from the run that made it): `/experiments/{id}/models` lists an
//! experiment's, `/logged-models/{id}` shows one — its status, source run, params, metrics, tags and files, with
//! the same previews as a run's (an `MLmodel`'s signature, say).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::html;
use orchard_tracking::artifacts::list_root;

use crate::layout::{error_page, mono_row, number, overview, page, query, time, Section};
use crate::previews::{files_panel, preview, Owner};
use crate::state::Ui;

/// Models per page.
const PAGE_SIZE: i64 = 100;

/// A client-given id as one path segment.
fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub async fn list(State(ui): State<Ui>, Path(experiment_id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let experiment = match ui.tracking.get_experiment(&experiment_id).await {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    let token = form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let order = [("creation_timestamp".to_string(), false)];
    let found = ui
        .tracking
        .search_logged_models(&[experiment.experiment_id.clone()], &[], "", &order, Some(PAGE_SIZE), &token)
        .await;
    let found = match found {
        Ok(f) => f,
        Err(e) => return error_page(&e),
    };
    let id = &experiment.experiment_id;
    let content = html! {
        h1 { "Logged models · " (experiment.name) }
        div.toolbar { a.button href={ "/experiments/" (id) } { "← Runs" } }
        @if found.items.is_empty() {
            div.panel.empty { "No logged models in this experiment. mlflow.<flavor>.log_model(…) logs one." }
        } @else {
            div.table-wrap { table.data #logged-models {
                thead { tr { th.first { "Name" } th { "Status" } th { "Type" } th { "Source run" } th { "Created" } th { "Metrics" } } }
                tbody { @for m in &found.items {
                    tr {
                        td.first { a href={ "/logged-models/" (m.model_id) } { (m.name) } }
                        td { span class={ "badge " (m.status) } { (m.status.to_lowercase().replace('_', " ")) } }
                        td { (m.model_type.as_deref().unwrap_or("")) }
                        td { @if let Some(run) = m.source_run_id.as_deref().filter(|r| !r.is_empty()) {
                            a.mono href={ "/runs/" (segment(run)) } { (run.get(..8).unwrap_or(run)) } } }
                        td { (time(Some(m.creation_timestamp_ms))) }
                        td.num { (m.metrics.iter().map(|x| &x.key).collect::<std::collections::BTreeSet<_>>().len()) }
                    }
                } }
            } }
            @if let Some(next) = &found.next_page_token {
                div.pager { a.button href={ "/experiments/" (id) "/models" (query(&[("page", next)])) } { "Next page →" } }
            }
        }
    };
    let crumbs = [("Experiments", "/".to_string()), (experiment.name.as_str(), format!("/experiments/{id}"))];
    page(&format!("Logged models · {}", experiment.name), Section::Experiments, &crumbs, content)
}

pub async fn show(State(ui): State<Ui>, Path(model_id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let model = match ui.tracking.get_logged_model(&model_id).await {
        Ok(m) => m,
        Err(e) => return error_page(&e),
    };
    let experiment = match ui.tracking.get_experiment(&model.experiment_id).await {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
    let (dir, file) = (value("path"), value("file"));
    let owner = Owner::LoggedModel(&model);
    let files = list_root(ui.artifacts.as_ref(), &model.artifact_uri, &dir).await;
    let shown = if file.is_empty() { None } else { Some(preview(&ui, &owner, &file).await) };
    // The latest value of each metric (by step, then time), as a run's page shows them.
    let mut latest: BTreeMap<&str, &orchard_tracking::Metric> = BTreeMap::new();
    for m in &model.metrics {
        let newer = latest.get(m.key.as_str()).is_none_or(|l| (m.step, m.timestamp) >= (l.step, l.timestamp));
        if newer {
            latest.insert(&m.key, m);
        }
    }
    let page_url = format!("/logged-models/{}", model.model_id);
    let content = html! {
        h1 { (model.name) " " span class={ "badge " (model.status) } { (model.status.to_lowercase().replace('_', " ")) } }
        div.grid2 {
            div.panel {
                (overview("Model ID", &model.model_id, &experiment, html! {
                    @if let Some(run) = model.source_run_id.as_deref().filter(|r| !r.is_empty()) {
                        tr { td { "Source run" } td { a.mono href={ "/runs/" (segment(run)) } { (run) } } }
                    }
                    @if let Some(t) = &model.model_type { tr { td { "Type" } td { (t) } } }
                    tr { td { "Created" } td { (time(Some(model.creation_timestamp_ms))) } }
                    (mono_row("Artifacts", &model.artifact_uri))
                    @if let Some(m) = model.status_message.as_deref().filter(|m| !m.is_empty()) { tr { td { "Status message" } td { (m) } } }
                }))
            }
            div.panel {
                h2 { "Metrics (" (latest.len()) ")" }
                @if latest.is_empty() { p.muted { "No metrics logged." } } @else {
                    table.data.kv #model-metrics { tbody { @for (key, m) in &latest {
                        tr { td { (key) } td.num title=(m.value) { (number(m.value)) }
                             td.muted { @if let Some(d) = &m.dataset_name { (d) } } }
                    } } }
                }
            }
            div.panel {
                h2 { "Parameters (" (model.params.len()) ")" }
                @if model.params.is_empty() { p.muted { "No parameters logged." } } @else {
                    table.data.kv #model-params { tbody { @for p in &model.params { tr { td { (p.key) } td { (p.value) } } } } }
                }
                h2 { "Tags" }
                @let tags: Vec<_> = model.tags.iter().filter(|t| !t.key.starts_with("mlflow.")).collect();
                @if tags.is_empty() { p.muted { "No tags." } } @else {
                    table.data.kv { tbody { @for t in &tags { tr { td { (t.key) } td { (t.value) } } } } }
                }
            }
            div.panel { (files_panel(&page_url, &owner, &dir, &file, &files)) }
            @if let Some(shown) = &shown { (shown) }
        }
    };
    let crumbs = [
        ("Experiments", "/".to_string()),
        (experiment.name.as_str(), format!("/experiments/{}", experiment.experiment_id)),
        ("Logged models", format!("/experiments/{}/models", experiment.experiment_id)),
    ];
    page(&model.name, Section::Experiments, &crumbs, content)
}
