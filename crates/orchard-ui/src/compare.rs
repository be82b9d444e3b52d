//! `/compare?run=<id>&run=…`: runs side by side — their params and latest metrics in one table (with "only
//! differences", which MLflow's compare view lacks: mlflow#3763) and one chart per metric with every run
//! overlaid.

use std::collections::BTreeSet;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::html;
use orchard_tracking::{Run, TrackingError};

use crate::charts::{chart, controls, ChartView, MAX_RUNS};
use crate::layout::{chart_page, error_page, number, query, Section};
use crate::state::Ui;

/// The most runs a chart of the compare page overlays.
const MAX_OVERLAID: usize = 50;

/// A run's label in tables and legends: its name, or its id when it has none.
fn label(run: &Run) -> &str {
    if run.info.run_name.is_empty() { &run.info.run_id } else { &run.info.run_name }
}

/// A row of the table: its name and each run's value (`None` where the run has none).
struct Row {
    name: String,
    values: Vec<Option<String>>,
}

impl Row {
    fn differs(&self) -> bool {
        self.values.iter().any(|v| v != &self.values[0])
    }
}

fn rows(runs: &[Run]) -> (Vec<Row>, Vec<Row>) {
    let param_keys: BTreeSet<&str> = runs.iter().flat_map(|r| r.params.iter().map(|p| p.key.as_str())).collect();
    let metric_keys: BTreeSet<&str> = runs.iter().flat_map(|r| r.metrics.iter().map(|m| m.key.as_str())).collect();
    let params = param_keys
        .into_iter()
        .map(|k| Row {
            name: k.to_string(),
            values: runs.iter().map(|r| r.params.iter().find(|p| p.key == k).map(|p| p.value.clone())).collect(),
        })
        .collect();
    let metrics = metric_keys
        .into_iter()
        .map(|k| Row {
            name: k.to_string(),
            values: runs.iter().map(|r| r.metrics.iter().find(|m| m.key == k).map(|m| number(m.value))).collect(),
        })
        .collect();
    (params, metrics)
}

pub async fn show(State(ui): State<Ui>, RawQuery(raw): RawQuery) -> Response {
    let raw = raw.unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    let mut ids: Vec<&str> = Vec::new();
    for (k, v) in &pairs {
        if k == "run" && !ids.contains(&v.as_str()) {
            ids.push(v);
        }
    }
    let only_differences = pairs.iter().any(|(k, v)| k == "diff" && v == "1");
    if ids.is_empty() {
        return error_page(&TrackingError::missing("run"));
    }
    if ids.len() > MAX_RUNS {
        return error_page(&TrackingError::invalid(format!("At most {MAX_RUNS} runs can be compared, got {}", ids.len())));
    }
    let mut runs = Vec::with_capacity(ids.len());
    for id in &ids {
        match ui.tracking.get_run(id).await {
            Ok(r) => runs.push(r),
            Err(e) => return error_page(&e),
        }
    }
    let view = ChartView::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (params, metrics) = rows(&runs);
    let shown = |rows: Vec<Row>| -> Vec<Row> { rows.into_iter().filter(|r| !only_differences || r.differs()).collect() };
    let (params, metrics) = (shown(params), shown(metrics));
    // The same page with "only differences" switched: every other setting kept.
    let mut switched: Vec<(&str, &str)> = pairs.iter().filter(|(k, _)| k != "diff").map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if !only_differences {
        switched.push(("diff", "1"));
    }
    let keep: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(k, _)| k == "run" || k == "diff")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // A chart with hundreds of lines reads as noise and costs the browser dearly: charts overlay the first runs.
    let chart_runs: Vec<(&str, &str)> = runs.iter().take(MAX_OVERLAID).map(|r| (r.info.run_id.as_str(), label(r))).collect();
    let metric_keys: BTreeSet<&str> = runs.iter().flat_map(|r| r.metrics.iter().map(|m| m.key.as_str())).collect();
    let section = |title: &str, id: &str, rows: &[Row]| {
        html! {
            h2 { (title) " (" (rows.len()) ")" }
            @if rows.is_empty() { p.muted { @if only_differences { "No differences." } @else { "None logged." } } } @else {
                div.table-wrap { table.data.compare id=(id) {
                    thead { tr { th.first { "" } @for r in &runs { th { a href={ "/runs/" (r.info.run_id) } { (label(r)) } } } } }
                    tbody { @for row in rows {
                        tr.differs[row.differs()] {
                            td.first { (row.name) }
                            @for v in &row.values { td { @match v { Some(v) => { (v) } None => { span.muted { "–" } } } } }
                        }
                    } }
                } }
            }
        }
    };
    let content = html! {
        h1 { "Comparing " (runs.len()) " runs" }
        div.toolbar {
            a.button href={ "/compare" (query(&switched)) } aria-pressed=(only_differences) {
                @if only_differences { "Show everything" } @else { "Only differences" }
            }
        }
        div.panel { (section("Parameters", "compare-params", &params)) }
        div.panel { (section("Metrics", "compare-metrics", &metrics)) }
        @if !metric_keys.is_empty() {
            div.panel {
                h2 { "Charts" }
                @if runs.len() > MAX_OVERLAID { p.muted { "The charts overlay the first " (MAX_OVERLAID) " of the " (runs.len()) " runs." } }
                (controls(&view, &keep))
                div.charts { @for key in &metric_keys { (chart(key, &chart_runs)) } }
            }
        }
    };
    let crumbs = [("Experiments", "/".to_string())];
    chart_page("Compare runs", Section::Experiments, &crumbs, content)
}
