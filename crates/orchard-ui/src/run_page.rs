//! A run's page: its overview (status, times, duration, parent and source), latest metrics and a chart of each,
//! params, tags, datasets and the files it logged (each previewed on the page, see [`crate::previews`], and a
//! download through the server's `/get-artifact`).

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::html;
use orchard_tracking::artifacts::list_root;
use orchard_tracking::Run;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::charts::{chart, controls, ChartView};
use crate::layout::{chart_page, duration, error_page, mono_row, number, overview, time, Section};
use crate::previews::{files_panel, preview, Owner};
use crate::run_edits::DESCRIPTION_TAG;
use crate::state::Ui;

const PARENT_TAG: &str = "mlflow.parentRunId";

fn tag<'a>(run: &'a Run, key: &str) -> Option<&'a str> {
    run.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

pub async fn show(State(ui): State<Ui>, Path(run_id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let run = match ui.tracking.get_run(&run_id).await {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let experiment = match ui.tracking.get_experiment(&run.info.experiment_id).await {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
    // The folder of the artifact browser, from `?path=`.
    let dir = pairs.iter().find(|(k, _)| k == "path").map(|(_, v)| v.clone()).unwrap_or_default();
    // The file previewed, from `?file=`.
    let file = pairs.iter().find(|(k, _)| k == "file").map(|(_, v)| v.clone()).unwrap_or_default();
    let owner = Owner::Run(&run);
    let shown = if file.is_empty() { None } else { Some(preview(&ui, &owner, &file).await) };
    let view = ChartView::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let files = list_root(ui.artifacts.as_ref(), &run.info.artifact_uri, &dir).await;
    let info = &run.info;
    let name = if info.run_name.is_empty() { info.run_id.clone() } else { info.run_name.clone() };
    let mut metrics = run.metrics.clone();
    metrics.sort_by(|a, b| a.key.cmp(&b.key));
    let mut params = run.params.clone();
    params.sort_by(|a, b| a.key.cmp(&b.key));
    let user_tags: Vec<_> = run.tags.iter().filter(|t| !t.key.starts_with("mlflow.")).collect();
    let system_tags: Vec<_> = run.tags.iter().filter(|t| t.key.starts_with("mlflow.")).collect();
    let content = html! {
        h1 { (name) " " span class={ "badge " (info.status) } { (info.status.to_lowercase()) } }
        div.grid2 {
            div.panel {
                (overview("Run ID", &info.run_id, &experiment, html! {
                    tr { td { "Started" } td { (time(info.start_time)) } }
                    tr { td { "Ended" } td { (time(info.end_time)) } }
                    tr { td { "Duration" } td { (duration(info.start_time, info.end_time)) } }
                    tr { td { "User" } td { (info.user_id) } }
                    @if let Some(parent) = tag(&run, PARENT_TAG) {
                        // The tag is whatever a client set: encoded as one path segment.
                        tr { td { "Parent run" } td { a.mono href={ "/runs/" (utf8_percent_encode(parent, NON_ALPHANUMERIC)) } { (parent) } } }
                    }
                    @if let Some(source) = tag(&run, "mlflow.source.name") { tr { td { "Source" } td.mono { (source) } } }
                    @if let Some(commit) = tag(&run, "mlflow.source.git.commit") { tr { td { "Git commit" } td.mono { (commit) } } }
                    (mono_row("Artifacts", &info.artifact_uri))
                    @if !run.model_outputs.is_empty() {
                        tr { td { "Logged models" } td { @for (i, m) in run.model_outputs.iter().enumerate() {
                            @if i > 0 { ", " }
                            a.mono href={ "/logged-models/" (utf8_percent_encode(&m.model_id, NON_ALPHANUMERIC)) } { (m.model_id) }
                        } } }
                    }
                    @if info.lifecycle_stage == "deleted" { tr { td { "State" } td { span.badge.deleted { "deleted" } } } }
                }))
                h2 { "Description" }
                @let description = tag(&run, DESCRIPTION_TAG).unwrap_or("");
                @if description.is_empty() { p.muted { "No description." } } @else { p.description { (description) } }
                details.edit {
                    summary.muted { "Edit the description" }
                    form method="post" action={ "/runs/" (info.run_id) "/description" } {
                        textarea name="description" rows="4" aria-label="Description" { (description) }
                        button.primary type="submit" { "Save" }
                    }
                }
            }
            div.panel {
                h2 { "Metrics (" (metrics.len()) ")" }
                @if metrics.is_empty() { p.muted { "No metrics logged." } } @else {
                    table.data.kv #metrics { tbody { @for m in &metrics {
                        tr { td { (m.key) } td.num title=(m.value) { (number(m.value)) } td.muted { "step " (m.step) } }
                    } } }
                }
            }
            @if !metrics.is_empty() {
                div.panel.wide {
                    h2 { "Charts" }
                    (controls(&view, &[("path", dir.as_str())]))
                    div.charts { @for m in &metrics { (chart(&m.key, &[(info.run_id.as_str(), name.as_str())])) } }
                }
            }
            div.panel {
                h2 { "Parameters (" (params.len()) ")" }
                @if params.is_empty() { p.muted { "No parameters logged." } } @else {
                    table.data.kv #params { tbody { @for p in &params { tr { td { (p.key) } td { (p.value) } } } } }
                }
            }
            div.panel {
                h2 { "Tags" }
                @if user_tags.is_empty() { p.muted { "No tags." } } @else {
                    table.data.kv #tags { tbody { @for t in &user_tags {
                        tr { td { (t.key) } td { (t.value) }
                             td.actions { form method="post" action={ "/runs/" (info.run_id) "/tags/delete" } {
                                 input type="hidden" name="key" value=(t.key);
                                 button.link type="submit" title={ "Remove the tag " (t.key) } aria-label={ "Remove the tag " (t.key) } { "✕" }
                             } } }
                    } } }
                }
                // Setting an existing key changes its value, as MLflow's set_tag does.
                form.add-tag #add-tag method="post" action={ "/runs/" (info.run_id) "/tags" } {
                    input type="text" name="key" placeholder="key" aria-label="Tag key" required;
                    input type="text" name="value" placeholder="value" aria-label="Tag value";
                    button type="submit" { "Set tag" }
                }
                @if !system_tags.is_empty() {
                    details { summary.muted { "MLflow's own tags (" (system_tags.len()) ")" }
                        table.data.kv { tbody { @for t in &system_tags { tr { td { (t.key) } td { (t.value) } } } } }
                    }
                }
            }
            @if !run.dataset_inputs.is_empty() {
                div.panel {
                    h2 { "Datasets" }
                    table.data { thead { tr { th { "Name" } th { "Digest" } th { "Source" } th { "Context" } } }
                        tbody { @for d in &run.dataset_inputs {
                            tr { td { (d.dataset.name) } td.mono { (d.dataset.digest) } td { (d.dataset.source_type) }
                                 td { (d.tags.iter().find(|t| t.key == "mlflow.data.context").map(|t| t.value.as_str()).unwrap_or("")) } }
                        } }
                    }
                }
            }
            div.panel {
                (files_panel(&format!("/runs/{}", info.run_id), &owner, &dir, &file, &files))
            }
            @if let Some(shown) = &shown { (shown) }
        }
    };
    let crumbs = [("Experiments", "/".to_string()), (experiment.name.as_str(), format!("/experiments/{}", experiment.experiment_id))];
    chart_page(&name, Section::Experiments, &crumbs, content)
}
