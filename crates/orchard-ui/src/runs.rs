//! The runs table of an experiment: MLflow's search grammar as the filter (a mistake is shown inline, with the
//! API's message and the column it names), sorting by any column, the params/metrics/tags a person chooses as
//! columns (by default the params and metrics that differ between the runs shown), server-side pages, and
//! nested runs (a pipeline run's stage runs) under their parent unless the table is sorted on a column.
//!
//! Everything the table shows lives in the URL (`filter`, `order`, `col`, `page`, `view`), so a view can be
//! bookmarked and shared.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{html, Markup};
use orchard_tracking::{Run, TrackingError, ViewType};

use crate::layout::{duration, error_page, number, page, query, time, Section};
use crate::state::Ui;

/// Runs per page: enough to compare at a glance, few enough to draw at once.
const PAGE_SIZE: i64 = 100;
/// Columns offered by default, per kind (the chooser offers every key of the page).
const DEFAULT_COLUMNS: usize = 12;
/// Keys listed in the column chooser, per kind.
const CHOOSER_KEYS: usize = 500;
const PARENT_TAG: &str = "mlflow.parentRunId";
const SOURCE_TAG: &str = "mlflow.source.name";

/// A chosen column: a param, a metric or a tag, named as in the search grammar (`params.lr`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    Param(String),
    Metric(String),
    Tag(String),
}

impl Column {
    pub fn parse(text: &str) -> Option<Column> {
        if let Some(k) = text.strip_prefix("params.") {
            return Some(Column::Param(k.to_string()));
        }
        if let Some(k) = text.strip_prefix("metrics.") {
            return Some(Column::Metric(k.to_string()));
        }
        text.strip_prefix("tags.").map(|k| Column::Tag(k.to_string()))
    }

    /// The name in the search grammar, backquoted when the key needs it (`metrics.\`val loss\``).
    pub fn search_name(&self) -> String {
        let (kind, key) = self.parts();
        if key.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            format!("{kind}.{key}")
        } else {
            format!("{kind}.`{key}`")
        }
    }

    /// The value of `col=` in the URL.
    pub fn url_name(&self) -> String {
        let (kind, key) = self.parts();
        format!("{kind}.{key}")
    }

    fn parts(&self) -> (&'static str, &str) {
        match self {
            Column::Param(k) => ("params", k),
            Column::Metric(k) => ("metrics", k),
            Column::Tag(k) => ("tags", k),
        }
    }

    fn cell(&self, run: &Run) -> (String, bool) {
        let find = |list: &[orchard_tracking::Tag], key: &str| list.iter().find(|t| t.key == key).map(|t| t.value.clone());
        match self {
            Column::Param(k) => (find(&run.params, k).unwrap_or_default(), false),
            Column::Tag(k) => (find(&run.tags, k).unwrap_or_default(), false),
            Column::Metric(k) => (run.metrics.iter().find(|m| &m.key == k).map(|m| number(m.value)).unwrap_or_default(), true),
        }
    }
}

/// What the URL asks of the table.
#[derive(Default, Debug, PartialEq)]
pub struct TableQuery {
    pub filter: String,
    pub order: String,
    pub page: String,
    pub view: String,
    pub columns: Vec<Column>,
}

impl TableQuery {
    pub fn parse(raw: Option<&str>) -> TableQuery {
        let mut q = TableQuery::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match &*k {
                "filter" => q.filter = v.into_owned(),
                "order" => q.order = v.into_owned(),
                "page" => q.page = v.into_owned(),
                "view" => q.view = v.into_owned(),
                "col" => q.columns.extend(Column::parse(&v)),
                _ => {}
            }
        }
        q
    }

    fn view_type(&self) -> ViewType {
        match self.view.as_str() {
            "deleted" => ViewType::DeletedOnly,
            "all" => ViewType::All,
            _ => ViewType::ActiveOnly,
        }
    }

    /// This view's URL with some parts changed.
    fn url(&self, experiment_id: &str, order: &str, page: &str) -> String {
        let cols: Vec<String> = self.columns.iter().map(Column::url_name).collect();
        let mut pairs: Vec<(&str, &str)> = vec![("filter", &self.filter), ("order", order), ("view", &self.view), ("page", page)];
        pairs.extend(cols.iter().map(|c| ("col", c.as_str())));
        format!("/experiments/{experiment_id}{}", query(&pairs))
    }

    /// The order a header's link asks: descending first, ascending when already descending on it.
    fn order_for(&self, name: &str) -> String {
        if self.order.eq_ignore_ascii_case(&format!("{name} DESC")) {
            format!("{name} ASC")
        } else {
            format!("{name} DESC")
        }
    }

    fn sorted_on(&self, name: &str) -> Option<&'static str> {
        let o = self.order.to_ascii_lowercase();
        let n = name.to_ascii_lowercase();
        if o == format!("{n} desc") {
            Some(" ↓")
        } else if o == n || o == format!("{n} asc") {
            Some(" ↑")
        } else {
            None
        }
    }
}

/// The params and metrics whose values differ between the runs that have them (all of them when there is one
/// run), at most
/// `DEFAULT_COLUMNS` of each kind.
pub fn default_columns(runs: &[Run]) -> Vec<Column> {
    let mut params: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut metrics: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for run in runs {
        for p in &run.params {
            params.entry(&p.key).or_default().insert(&p.value);
        }
        for m in &run.metrics {
            metrics.entry(&m.key).or_default().insert(m.value.to_bits());
        }
    }
    // Among the runs that have the key: a pipeline's stage runs lack their parent's params, and that alone is
    // no difference worth a column.
    let differs = |values: usize| runs.len() <= 1 || values > 1;
    let mut out: Vec<Column> = params
        .iter()
        .filter(|(_, v)| differs(v.len()))
        .take(DEFAULT_COLUMNS)
        .map(|(k, _)| Column::Param(k.to_string()))
        .collect();
    out.extend(
        metrics
            .iter()
            .filter(|(_, v)| differs(v.len()))
            .take(DEFAULT_COLUMNS)
            .map(|(k, _)| Column::Metric(k.to_string())),
    );
    out
}

/// Runs in table order: each parent followed by its children on this page (recursively), the rest as found.
fn nested_order(runs: &[Run]) -> Vec<(&Run, usize)> {
    let ids: BTreeSet<&str> = runs.iter().map(|r| r.info.run_id.as_str()).collect();
    fn parent_of<'a>(r: &'a Run, ids: &BTreeSet<&str>) -> Option<&'a str> {
        let parent = r.tags.iter().find(|t| t.key == PARENT_TAG).map(|t| t.value.as_str())?;
        (ids.contains(parent) && parent != r.info.run_id).then_some(parent)
    }
    let mut children: HashMap<&str, Vec<&Run>> = HashMap::new();
    for r in runs {
        if let Some(p) = parent_of(r, &ids) {
            children.entry(p).or_default().push(r);
        }
    }
    let mut out = Vec::with_capacity(runs.len());
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    fn place<'a>(r: &'a Run, depth: usize, children: &HashMap<&str, Vec<&'a Run>>, placed: &mut BTreeSet<&'a str>, out: &mut Vec<(&'a Run, usize)>) {
        if !placed.insert(r.info.run_id.as_str()) {
            return;
        }
        out.push((r, depth));
        for c in children.get(r.info.run_id.as_str()).into_iter().flatten() {
            place(c, depth + 1, children, placed, out);
        }
    }
    for r in runs.iter().filter(|r| parent_of(r, &ids).is_none()) {
        place(r, 0, &children, &mut placed, &mut out);
    }
    // Runs whose parents form a loop (never placed above) still appear.
    for r in runs {
        place(r, 0, &children, &mut placed, &mut out);
    }
    out
}

fn tag<'a>(run: &'a Run, key: &str) -> &'a str {
    run.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str()).unwrap_or("")
}

pub async fn table(State(ui): State<Ui>, Path(experiment_id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let q = TableQuery::parse(raw.as_deref());
    let experiment = match ui.tracking.get_experiment(&experiment_id).await {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    // The stored id, not the path's text (which the lookup trims), goes into the page's links.
    let experiment_id = experiment.experiment_id.clone();
    let order: Vec<String> = if q.order.is_empty() { vec![] } else { vec![q.order.clone()] };
    let searched = ui.tracking.search_runs(&[experiment_id.clone()], &q.filter, q.view_type(), Some(PAGE_SIZE), &order, &q.page).await;
    let (runs, next, mistake): (Vec<Run>, Option<String>, Option<TrackingError>) = match searched {
        Ok(p) => (p.items, p.next_page_token, None),
        // A mistake in the filter or the order is the user's to fix: shown above an empty table.
        Err(e) if e.code() == orchard_tracking::ErrorCode::InvalidParameterValue => (vec![], None, Some(e)),
        Err(e) => return error_page(&e),
    };
    let columns = if q.columns.is_empty() { default_columns(&runs) } else { q.columns.clone() };
    let content = html! {
        h1 { (experiment.name) }
        p.muted { "Experiment " code { (experiment.experiment_id) } " · artifacts at " code { (experiment.artifact_location) } }
        form.toolbar method="get" action={ "/experiments/" (experiment_id) } {
            input.grow type="search" name="filter" value=(q.filter) aria-label="Filter runs"
                placeholder="Filter: metrics.accuracy > 0.9 AND params.model = 'lgbm'";
            @for c in &q.columns { input type="hidden" name="col" value=(c.url_name()); }
            @if !q.order.is_empty() { input type="hidden" name="order" value=(q.order); }
            select name="view" aria-label="Which runs" {
                option value="" selected[q.view.is_empty()] { "Active runs" }
                option value="deleted" selected[q.view == "deleted"] { "Deleted runs" }
                option value="all" selected[q.view == "all"] { "All runs" }
            }
            button.primary type="submit" { "Search" }
            @if !q.filter.is_empty() || !q.order.is_empty() || !q.columns.is_empty() || !q.view.is_empty() {
                a.button href={ "/experiments/" (experiment_id) } { "Reset" }
            }
            a.button href={ "/experiments/" (experiment_id) "/models" } { "Logged models" }
        }
        @if let Some(e) = &mistake { div.error role="alert" { (e.to_string()) } }
        (column_chooser(&experiment_id, &q, &runs, &columns))
        @if runs.is_empty() {
            @if mistake.is_none() { div.panel.empty { "No runs match." } }
        } @else {
            // The table's checkboxes belong to this form (their `form` attribute): it opens the comparison.
            form #compare .toolbar method="get" action="/compare" {
                button type="submit" { "Compare selected runs" }
                span.muted { "tick two or more runs" }
            }
            (runs_table(&experiment_id, &q, &runs, &columns))
            div.pager {
                @if !q.page.is_empty() { a.button href=(q.url(&experiment_id, &q.order, "")) { "← First page" } }
                @if let Some(token) = &next { a.button href=(q.url(&experiment_id, &q.order, token)) { "Next page →" } }
            }
        }
    };
    let crumbs = [("Experiments", "/".to_string())];
    page(&experiment.name, Section::Experiments, &crumbs, content)
}

fn column_chooser(experiment_id: &str, q: &TableQuery, runs: &[Run], chosen: &[Column]) -> Markup {
    let mut keys: BTreeSet<Column> = BTreeSet::new();
    for r in runs {
        keys.extend(r.params.iter().map(|p| Column::Param(p.key.clone())));
        keys.extend(r.metrics.iter().map(|m| Column::Metric(m.key.clone())));
        keys.extend(r.tags.iter().filter(|t| !t.key.starts_with("mlflow.")).map(|t| Column::Tag(t.key.clone())));
    }
    keys.extend(chosen.iter().cloned());
    let total = keys.len();
    html! {
        details.columns.panel {
            summary { "Columns (" (chosen.len()) " shown of " (total) ")" }
            form method="get" action={ "/experiments/" (experiment_id) } {
                input type="hidden" name="filter" value=(q.filter);
                input type="hidden" name="order" value=(q.order);
                input type="hidden" name="view" value=(q.view);
                div.choices {
                    @for key in keys.iter().take(CHOOSER_KEYS * 3) {
                        label { input type="checkbox" name="col" value=(key.url_name()) checked[chosen.contains(key)]; " " (key.url_name()) }
                    }
                }
                @if total > CHOOSER_KEYS * 3 { p.muted { "Showing the first " (CHOOSER_KEYS * 3) " keys; add others with col= in the URL." } }
                button.primary type="submit" { "Show these columns" }
            }
        }
    }
}

fn runs_table(experiment_id: &str, q: &TableQuery, runs: &[Run], columns: &[Column]) -> Markup {
    let header = |label: &str, name: &str| {
        let sorted = q.sorted_on(name);
        html! { a.sorted[sorted.is_some()] href=(q.url(experiment_id, &q.order_for(name), "")) { (label) (sorted.unwrap_or("")) } }
    };
    html! {
        div.table-wrap {
            table.data #runs {
                thead { tr {
                    th.first { (header("Run", "attributes.run_name")) }
                    th { (header("Status", "attributes.status")) }
                    th { (header("Started", "attributes.start_time")) }
                    th { "Duration" }
                    th { (header("User", "attributes.user_id")) }
                    th { "Source" }
                    @for c in columns {
                        th title=(c.url_name()) { (header(&c.url_name(), &c.search_name())) }
                    }
                } }
                tbody {
                    // Sorted on a column, the table follows the sort; otherwise stage runs sit under their parent.
                    @let rows = if q.order.is_empty() { nested_order(runs) } else { runs.iter().map(|r| (r, 0)).collect() };
                    @for (run, depth) in rows {
                        tr.child[depth > 0] {
                            td.first { input type="checkbox" name="run" value=(run.info.run_id) form="compare" aria-label="Select to compare"; " "
                                       a href={ "/runs/" (run.info.run_id) } { (if run.info.run_name.is_empty() { &run.info.run_id } else { &run.info.run_name }) } }
                            td { span class={ "badge " (run.info.status) } { (run.info.status.to_lowercase()) }
                                 @if run.info.lifecycle_stage == "deleted" { " " span.badge.deleted { "deleted" } } }
                            td { (time(run.info.start_time)) }
                            td.num { (duration(run.info.start_time, run.info.end_time)) }
                            td { (run.info.user_id) }
                            td title=(tag(run, SOURCE_TAG)) { (tag(run, SOURCE_TAG).rsplit('/').next().unwrap_or("")) }
                            @for c in columns {
                                @let (value, numeric) = c.cell(run);
                                td.num[numeric] title=(value) { (value) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchard_tracking::{Metric, RunInfo, Tag};

    fn run(id: &str, params: &[(&str, &str)], metrics: &[(&str, f64)], parent: Option<&str>) -> Run {
        let mut tags = vec![];
        if let Some(p) = parent {
            tags.push(Tag::new(PARENT_TAG, p));
        }
        Run {
            info: RunInfo {
                run_id: id.into(),
                run_name: id.into(),
                experiment_id: "1".into(),
                user_id: String::new(),
                status: "FINISHED".into(),
                start_time: Some(1),
                end_time: Some(2),
                artifact_uri: String::new(),
                lifecycle_stage: "active".into(),
            },
            metrics: metrics.iter().map(|(k, v)| Metric::new(*k, *v, 0, 0)).collect(),
            params: params.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
            tags,
            dataset_inputs: vec![],
            model_inputs: vec![],
            model_outputs: vec![],
        }
    }

    #[test]
    fn by_default_the_columns_are_what_differs() {
        let runs = [
            run("a", &[("lr", "0.1"), ("seed", "7")], &[("acc", 0.9), ("n", 3.0)], None),
            run("b", &[("lr", "0.2"), ("seed", "7")], &[("acc", 0.8), ("n", 3.0), ("extra", 1.0)], None),
        ];
        let cols: Vec<String> = default_columns(&runs).iter().map(Column::url_name).collect();
        assert_eq!(cols, ["params.lr", "metrics.acc"], "seed and n are equal; extra has one value");
        let one: Vec<String> = default_columns(&runs[..1]).iter().map(Column::url_name).collect();
        assert_eq!(one, ["params.lr", "params.seed", "metrics.acc", "metrics.n"], "one run: everything");
    }

    #[test]
    fn children_follow_their_parent_and_loops_still_show() {
        let runs = [
            run("child", &[], &[], Some("parent")),
            run("other", &[], &[], None),
            run("parent", &[], &[], None),
            run("grandchild", &[], &[], Some("child")),
            run("x", &[], &[], Some("y")),
            run("y", &[], &[], Some("x")),
        ];
        let order: Vec<(&str, usize)> = nested_order(&runs).iter().map(|(r, d)| (r.info.run_id.as_str(), *d)).collect();
        assert_eq!(order, [("other", 0), ("parent", 0), ("child", 1), ("grandchild", 2), ("x", 0), ("y", 1)]);
    }

    #[test]
    fn the_url_holds_the_whole_view() {
        let q = TableQuery::parse(Some("filter=metrics.acc+%3E+0.5&order=metrics.acc+DESC&col=params.lr&col=metrics.val%20loss&col=bogus&page=tok"));
        assert_eq!(q.filter, "metrics.acc > 0.5");
        assert_eq!(q.columns, [Column::Param("lr".into()), Column::Metric("val loss".into())]);
        assert_eq!(q.columns[1].search_name(), "metrics.`val loss`");
        assert_eq!(q.order_for("metrics.acc"), "metrics.acc ASC");
        assert_eq!(q.order_for("params.lr"), "params.lr DESC");
        assert_eq!(q.sorted_on("metrics.acc"), Some(" ↓"));
        let url = q.url("3", &q.order, "");
        assert_eq!(url, "/experiments/3?filter=metrics.acc+%3E+0.5&order=metrics.acc+DESC&col=params.lr&col=metrics.val+loss");
        assert_eq!(TableQuery::parse(Some(&url[url.find('?').unwrap() + 1..])).columns, q.columns);
    }
}
