//! `/compare?run=<id>&run=…`: runs side by side — their params and latest metrics in one table (with "only
//! differences", which MLflow's compare view lacks: mlflow#3763) and one chart per metric with every run
//! overlaid.

use std::collections::BTreeMap;

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
/// Cells a section shows unless all are asked for (`rows=all`), and the fewest rows: a thousand runs may hold
/// thousands of metric keys between them, and a table (or a chart per key) of all of them is too long to read
/// and to draw. A few runs show every key.
const CELLS_SHOWN: usize = 50_000;
const MIN_ROWS_SHOWN: usize = 50;
/// Keys the scatter's choosers offer, per kind.
const KEYS_OFFERED: usize = 200;

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

/// A key and the runs that have it (by position, ascending) with their values: a thousand runs may hold thousands
/// of keys between them, each in a few runs, so rows are kept sparse until they are shown.
struct Key<'a> {
    name: &'a str,
    present: Vec<(usize, String)>,
}

impl Key<'_> {
    /// Whether the runs disagree: some lack the key, or two values differ.
    fn differs(&self, runs: usize) -> bool {
        self.present.len() < runs || self.present.iter().any(|(_, v)| *v != self.present[0].1)
    }

    fn row(&self, runs: usize) -> Row {
        let mut values = vec![None; runs];
        for (i, v) in &self.present {
            values[*i] = Some(v.clone());
        }
        Row { name: self.name.to_string(), values }
    }
}

/// The params' and metrics' keys of `runs`, those most runs have first (by name among equals): with many runs,
/// the keys they share are the ones to read.
fn keys(runs: &[Run]) -> (Vec<Key<'_>>, Vec<Key<'_>>) {
    let mut params: BTreeMap<&str, Vec<(usize, String)>> = BTreeMap::new();
    let mut metrics: BTreeMap<&str, Vec<(usize, String)>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        for p in &r.params {
            params.entry(&p.key).or_default().push((i, p.value.clone()));
        }
        for m in &r.metrics {
            metrics.entry(&m.key).or_default().push((i, number(m.value)));
        }
    }
    (ranked(params), ranked(metrics))
}

fn ranked(map: BTreeMap<&str, Vec<(usize, String)>>) -> Vec<Key<'_>> {
    let mut keys: Vec<Key> = map.into_iter().map(|(name, present)| Key { name, present }).collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.present.len()));
    keys
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
    let all_rows = pairs.iter().any(|(k, v)| k == "rows" && v == "all");
    if ids.is_empty() {
        return error_page(&TrackingError::missing("run"));
    }
    if ids.len() > MAX_RUNS {
        return error_page(&TrackingError::invalid(format!("At most {MAX_RUNS} runs can be compared, got {}", ids.len())));
    }
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let runs = match ui.tracking.get_runs(&ids).await {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let view = ChartView::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (all_params, all_metrics) = keys(&runs);
    let n = runs.len();
    // Each section: its rows (only those that differ, if asked) and how many there were before the cut.
    let shown = |keys: &[Key]| -> (Vec<Row>, usize) {
        let kept: Vec<&Key> = keys.iter().filter(|k| !only_differences || k.differs(n)).collect();
        let limit = if all_rows { kept.len() } else { (CELLS_SHOWN / n.max(1)).max(MIN_ROWS_SHOWN) };
        (kept.iter().take(limit).map(|k| k.row(n)).collect(), kept.len())
    };
    let (params, metrics) = (shown(&all_params), shown(&all_metrics));
    let offered = |keys: &[Key]| -> Vec<Row> { keys.iter().take(KEYS_OFFERED).map(|k| k.row(n)).collect() };
    let plots = plots_section(&runs, &offered(&all_params), &offered(&all_metrics), &pairs);
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
    // A chart for each metric the table shows.
    let metric_keys: Vec<&str> = metrics.0.iter().map(|r| r.name.as_str()).collect();
    let mut with_all: Vec<(&str, &str)> = pairs.iter().filter(|(k, _)| k != "rows").map(|(k, v)| (k.as_str(), v.as_str())).collect();
    with_all.push(("rows", "all"));
    let section = |title: &str, id: &str, (rows, of): &(Vec<Row>, usize)| {
        html! {
            h2 { (title) " (" (of) ")" }
            @if rows.len() < *of {
                p.muted { "The " (rows.len()) " keys most of these runs have, of " (of) ". "
                    a href={ "/compare" (query(&with_all)) } { "Show all " (of) } }
            }
            @if rows.is_empty() { p.muted { @if only_differences { "No differences." } @else { "None logged." } } } @else {
                div.table-wrap { table.data.compare id=(id) {
                    thead { tr { th.first { "" } @for r in &runs { th { a href={ "/runs/" (r.info.run_id) } { (label(r)) } } } } }
                    tbody { @for row in rows.iter() {
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
