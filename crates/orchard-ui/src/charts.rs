//! Metric charts: the data a chart draws (`GET /charts/series`) and the markup of a chart section.
//!
//! A chart asks for one metric of one or more runs at its own width in pixels and gets, per run, at most four
//! points per pixel column (each column's first, lowest, highest and last: no spike is lost, however long the
//! history); zooming asks again for the visible range, at full detail once it holds few enough points. Drawing
//! is uPlot's (vendored, MIT), started by `charts.js` when a chart scrolls into view.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use orchard_tracking::series::{Series, XAxis};
use orchard_tracking::TrackingError;
use serde::Serialize;

use crate::layout::status_of;
use crate::state::Ui;

/// The narrowest and widest chart the server draws for (pixels).
const WIDTHS: (usize, usize) = (16, 8_000);
/// The most runs one request may ask for (the compare page's limit).
pub const MAX_RUNS: usize = 1_000;
/// The most points one answer holds in all: with many runs, each series gets fewer buckets.
const MAX_POINTS: usize = 400_000;

#[derive(Serialize)]
struct SeriesOut<'a> {
    run_id: &'a str,
    /// Points in the range before reduction.
    total: usize,
    #[serde(serialize_with = "whole_numbers")]
    x: Vec<f64>,
    y: Vec<f64>,
}

/// Writes x values that are whole numbers (steps and milliseconds always are) without a trailing `.0`: a
/// fifth of a large answer.
fn whole_numbers<S: serde::Serializer>(xs: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(xs.len()))?;
    for x in xs {
        // Below 2^53 a whole f64 is exactly an integer.
        if x.fract() == 0.0 && x.abs() < 9.0e15 {
            seq.serialize_element(&(*x as i64))?;
        } else {
            seq.serialize_element(x)?;
        }
    }
    seq.end()
}

#[derive(Serialize)]
struct Answer<'a> {
    series: Vec<SeriesOut<'a>>,
}

/// What `/charts/series` was asked, read from its query string.
#[derive(Debug, PartialEq)]
struct Ask {
    runs: Vec<String>,
    key: String,
    axis: XAxis,
    width: usize,
    range: Option<(f64, f64)>,
}

fn read_ask(raw: &str) -> Result<Ask, TrackingError> {
    let (mut runs, mut key, mut axis, mut width, mut from, mut to) = (Vec::new(), None, XAxis::Step, 800, None, None);
    let number = |name: &str, v: &str| -> Result<f64, TrackingError> {
        v.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| TrackingError::invalid_value(name, v, ". It must be a finite number"))
    };
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        match &*k {
            "run" => runs.push(v.into_owned()),
            "key" => key = Some(v.into_owned()),
            "x" => axis = XAxis::parse(&v).ok_or_else(|| TrackingError::invalid_value("x", &*v, ". It must be step, time or relative"))?,
            "width" => {
                width = v
                    .parse::<usize>()
                    .map_err(|_| TrackingError::invalid_value("width", &*v, ". It must be a number of pixels"))?
                    .clamp(WIDTHS.0, WIDTHS.1)
            }
            "from" => from = Some(number("from", &v)?),
            "to" => to = Some(number("to", &v)?),
            _ => {}
        }
    }
    let key = key.filter(|k| !k.is_empty()).ok_or_else(|| TrackingError::missing("key"))?;
    if runs.is_empty() {
        return Err(TrackingError::missing("run"));
    }
    if runs.len() > MAX_RUNS {
        return Err(TrackingError::invalid(format!("A chart draws at most {MAX_RUNS} runs, got {}", runs.len())));
    }
    let range = match (from, to) {
        (None, None) => None,
        (lo, hi) => Some((lo.unwrap_or(f64::MIN), hi.unwrap_or(f64::MAX))),
    };
    Ok(Ask { runs, key, axis, width, range })
}

/// `GET /charts/series?run=<id>&run=…&key=<metric>&x=step|time|relative&width=<px>[&from=&to=]`: per run, the
/// points to draw, as columns (`x`, `y`) ready for the chart.
pub async fn series(State(ui): State<Ui>, RawQuery(raw): RawQuery) -> Response {
    let answer = match read_ask(raw.as_deref().unwrap_or("")) {
        Ok(ask) => {
            let width = ask.width.min(MAX_POINTS / (4 * ask.runs.len())).max(WIDTHS.0);
            ui.tracking.metric_series(&ask.runs, &ask.key, ask.axis, ask.range, width).await
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok(series) => {
            // Written straight from the points (a JSON tree first would copy hundreds of thousands of numbers).
            let body = Answer { series: series.iter().map(columns).collect() };
            ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
        }
        Err(e) => {
            let status = status_of(&e);
            let body = serde_json::json!({ "error_code": e.code().as_str(), "message": e.to_string() });
            (status, axum::Json(body)).into_response()
        }
    }
}

fn columns(s: &Series) -> SeriesOut<'_> {
    SeriesOut { run_id: &s.run_id, total: s.total, x: s.points.iter().map(|p| p.0).collect(), y: s.points.iter().map(|p| p.1).collect() }
}

/// The chart settings a page keeps in its URL: the x axis, a log y scale, smoothing (0 = none, up to 0.99).
#[derive(Debug, Clone, PartialEq)]
pub struct ChartView {
    pub axis: &'static str,
    pub log: bool,
    pub smooth: f64,
}

impl ChartView {
    pub fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> ChartView {
        let mut view = ChartView { axis: "step", log: false, smooth: 0.0 };
        for (k, v) in pairs {
            match k {
                "x" => view.axis = ["step", "time", "relative"].into_iter().find(|a| *a == v).unwrap_or("step"),
                "log" => view.log = v == "1",
                "smooth" => view.smooth = v.parse::<f64>().ok().filter(|s| s.is_finite()).unwrap_or(0.0).clamp(0.0, 0.99),
                _ => {}
            }
        }
        view
    }
}

/// The settings form shared by a page's charts (a GET form: it works without the script, which applies a
/// change at once and keeps it in the URL).
pub fn controls(view: &ChartView, keep: &[(&str, &str)]) -> Markup {
    html! {
        form.chart-controls method="get" {
            @for (k, v) in keep { input type="hidden" name=(k) value=(v); }
            label { "x axis " select name="x" {
                option value="step" selected[view.axis == "step"] { "Step" }
                option value="time" selected[view.axis == "time"] { "Wall time" }
                option value="relative" selected[view.axis == "relative"] { "Relative time" }
            } }
            label { input type="checkbox" name="log" value="1" checked[view.log]; " Log scale" }
            label { "Smoothing " input type="range" name="smooth" min="0" max="0.99" step="0.01" value=(view.smooth); }
            noscript { button type="submit" { "Apply" } }
        }
    }
}

/// One chart: a metric of some runs (`(run id, label)`), drawn when it scrolls into view. Below it, the points
/// drawn, as a table a person can read or copy (and a test can check).
pub fn chart(key: &str, runs: &[(&str, &str)]) -> Markup {
    let ids: Vec<&str> = runs.iter().map(|r| r.0).collect();
    let labels: Vec<&str> = runs.iter().map(|r| r.1).collect();
    html! {
        figure.chart data-key=(key) data-runs=(ids.join(" ")) data-labels=(serde_json::to_string(&labels).unwrap_or_default()) {
            figcaption { (key) }
            div.plot { p.muted { "Drawing…" } }
            details.points { summary.muted { "Points drawn" } div.table {} }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_request_is_read_or_refused_with_the_field_named() {
        let ask = read_ask("run=a&run=b&key=loss&x=relative&width=99999&from=10&to=20.5").unwrap();
        assert_eq!(ask, Ask { runs: vec!["a".into(), "b".into()], key: "loss".into(), axis: XAxis::Relative, width: 8_000, range: Some((10.0, 20.5)) });
        assert_eq!(read_ask("run=a&key=k").unwrap().range, None);
        assert_eq!(read_ask("run=a&key=k&to=5").unwrap().range, Some((f64::MIN, 5.0)));
        for (bad, field) in [("key=k", "run"), ("run=a", "key"), ("run=a&key=k&x=epoch", "x"), ("run=a&key=k&width=-1", "width"), ("run=a&key=k&from=NaN", "from")] {
            let e = read_ask(bad).unwrap_err().to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
        let many = (0..=MAX_RUNS).map(|i| format!("run={i}")).collect::<Vec<_>>().join("&") + "&key=k";
        assert!(read_ask(&many).unwrap_err().to_string().contains("at most 1000"));
    }

    #[test]
    fn the_view_is_read_from_the_url_within_bounds() {
        let view = ChartView::from_pairs([("x", "time"), ("log", "1"), ("smooth", "7")].into_iter());
        assert_eq!(view, ChartView { axis: "time", log: true, smooth: 0.99 });
        let view = ChartView::from_pairs([("x", "<script>"), ("smooth", "NaN")].into_iter());
        assert_eq!(view, ChartView { axis: "step", log: false, smooth: 0.0 });
    }
}
