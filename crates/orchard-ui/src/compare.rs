//! `/compare?run=<id>&run=…`: runs side by side — their params and latest metrics in one table (with "only
//! differences", which MLflow's compare view lacks: mlflow#3763) and one chart per metric with every run
//! overlaid.

use std::collections::BTreeSet;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::{html, Markup};
use orchard_tracking::{Run, TrackingError};

use crate::charts::{chart, controls, ChartView, MAX_RUNS};
use crate::plots::{parallel, scatter, Column};
use crate::layout::{chart_page, error_page, number, query, Section};
use crate::state::Ui;

/// The most runs a chart of the compare page overlays.
const MAX_OVERLAID: usize = 50;

/// A run's label in tables and legends: its name, or its id when it has none.
fn label(run: &Run) -> &str {
    if run.info.run_name.is_empty() { &run.info.run_id } else { &run.info.run_name }
}

/// A row of the table: its name and each run's value (`None` where the run has none).
#[derive(Clone)]
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
    let (all_params, all_metrics) = rows(&runs);
    let shown = |rows: &[Row]| -> Vec<Row> { rows.iter().filter(|r| !only_differences || r.differs()).cloned().collect() };
    let (params, metrics) = (shown(&all_params), shown(&all_metrics));
    let plots = plots_section(&runs, &all_params, &all_metrics, &pairs);
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
        (plots)
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

/// The most axes parallel coordinates draw.
const PARALLEL_AXES: usize = 12;

/// A scatter of any param or metric against any other (chosen with `sx`/`sy` in the URL) and parallel coordinates
/// over the params and metrics that differ, for two runs or more.
fn plots_section(runs: &[Run], params: &[Row], metrics: &[Row], pairs: &[(String, String)]) -> Markup {
    if runs.len() < 2 {
        return html! {};
    }
    let named: Vec<(String, &Row)> = params
        .iter()
        .map(|r| (format!("params.{}", r.name), r))
        .chain(metrics.iter().map(|r| (format!("metrics.{}", r.name), r)))
        .collect();
    if named.is_empty() {
        return html! {};
    }
    let asked = |key: &str| pairs.iter().find(|(k, _)| k == key).and_then(|(_, v)| named.iter().position(|(n, _)| n == v));
    let first_param = named.iter().position(|(n, r)| n.starts_with("params.") && r.differs());
    let first_metric = named.iter().position(|(n, _)| n.starts_with("metrics."));
    let sx = asked("sx").or(first_param).unwrap_or(0);
    let sy = asked("sy").or(first_metric).unwrap_or(named.len() - 1);
    let column = |i: usize| Column { name: &named[i].0, values: named[i].1.values.clone() };
    let labels: Vec<&str> = runs.iter().map(label).collect();
    let axes: Vec<Column> = named
        .iter()
        .filter(|(_, r)| r.differs())
        .take(PARALLEL_AXES)
        .map(|(n, r)| Column { name: n, values: r.values.clone() })
        .collect();
    let choose = |field: &str, chosen: usize| {
        html! {
            select name=(field) aria-label=(field) {
                @for (i, (n, _)) in named.iter().enumerate() { option value=(n) selected[i == chosen] { (n) } }
            }
        }
    };
    html! {
        div.panel #scatter {
            h2 { "Scatter" }
            form.plot-controls method="get" {
                @for (k, v) in pairs.iter().filter(|(k, _)| k != "sx" && k != "sy") { input type="hidden" name=(k) value=(v); }
                label { "x " (choose("sx", sx)) }
                label { "y " (choose("sy", sy)) }
                button type="submit" { "Plot" }
            }
            (scatter(&column(sx), &column(sy), &labels))
        }
        @if axes.len() >= 2 {
            div.panel #parallel {
                h2 { "Parallel coordinates" }
                p.muted { "The params and metrics that differ"
                    @if named.iter().filter(|(_, r)| r.differs()).count() > PARALLEL_AXES { " (the first " (PARALLEL_AXES) ")" }
                    "; hover a line for its run." }
                (parallel(&axes, &labels))
            }
        }
    }
}
