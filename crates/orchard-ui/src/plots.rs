//! The compare page's plots, drawn on the server as SVG (no script; every label is escaped text): a scatter of
//! one param or metric against another, and parallel coordinates over the params and metrics that differ.
//!
//! A column is numeric when every value it has reads as a finite number; otherwise its values are categories,
//! placed evenly in sorted order.

use maud::{html, Markup};

/// The plots' size in SVG units (they scale to the page's width).
const W: f64 = 960.0;
const H: f64 = 380.0;
/// Room for labels around the plotting area.
const PAD: (f64, f64, f64, f64) = (96.0, 24.0, 20.0, 56.0); // left, right, top, bottom
/// A scatter keeps its extremes off the axes: positions 0..=1 map into this part of each axis.
fn inset(p: f64) -> f64 {
    0.04 + 0.92 * p
}

/// One column of values (a param or a metric), one per run (`None` where a run has none).
pub struct Column<'a> {
    pub name: &'a str,
    pub values: Vec<Option<String>>,
}

/// How a column's values map to 0..=1 along an axis.
enum Scale {
    Numeric { lo: f64, hi: f64 },
    Categories(Vec<String>),
}

impl Scale {
    fn of(values: &[Option<String>]) -> Scale {
        let present: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
        let numbers: Option<Vec<f64>> = present.iter().map(|v| v.parse::<f64>().ok().filter(|n| n.is_finite())).collect();
        match numbers {
            Some(ns) if !ns.is_empty() => {
                let lo = ns.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = ns.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                Scale::Numeric { lo, hi }
            }
            _ => {
                let mut cats: Vec<String> = present.iter().map(|s| s.to_string()).collect();
                cats.sort();
                cats.dedup();
                Scale::Categories(cats)
            }
        }
    }

    /// Where a value sits, 0 (low) to 1 (high); a lone value or category sits in the middle.
    fn place(&self, value: &str) -> Option<f64> {
        match self {
            Scale::Numeric { lo, hi } => {
                let v = value.parse::<f64>().ok().filter(|n| n.is_finite())?;
                Some(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
            }
            Scale::Categories(cats) => {
                let i = cats.iter().position(|c| c == value)?;
                Some(if cats.len() > 1 { i as f64 / (cats.len() - 1) as f64 } else { 0.5 })
            }
        }
    }

    /// Labels along the axis: (position 0..=1, text). Numbers at both ends and the middle; a few categories.
    fn ticks(&self) -> Vec<(f64, String)> {
        match self {
            Scale::Numeric { lo, hi } if hi > lo => {
                [0.0, 0.5, 1.0].iter().map(|t| (*t, crate::layout::number(lo + (hi - lo) * t))).collect()
            }
            Scale::Numeric { lo, .. } => vec![(0.5, crate::layout::number(*lo))],
            Scale::Categories(cats) => {
                let step = (cats.len() / 8).max(1);
                cats.iter()
                    .enumerate()
                    .filter(|(i, _)| i % step == 0)
                    .map(|(i, c)| (if cats.len() > 1 { i as f64 / (cats.len() - 1) as f64 } else { 0.5 }, short(c)))
                    .collect()
            }
        }
    }
}

/// A label cut to fit beside an axis.
fn short(text: &str) -> String {
    if text.chars().count() > 18 { format!("{}…", text.chars().take(17).collect::<String>()) } else { text.to_string() }
}

/// The colour of the `i`th run, the same as in the charts' legends.
pub fn color(i: usize) -> &'static str {
    const COLORS: [&str; 10] = ["#2f7d4f", "#d9822b", "#3d6fd1", "#b8336a", "#7a5cc7", "#2a9d8f", "#c44536", "#8a6d3b", "#5c7080", "#e0a800"];
    COLORS[i % COLORS.len()]
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// A scatter of `y` against `x`, one dot per run that has both (labelled with the run's name on hover).
pub fn scatter(x: &Column, y: &Column, labels: &[&str]) -> Markup {
    let (sx, sy) = (Scale::of(&x.values), Scale::of(&y.values));
    let (left, right, top, bottom) = PAD;
    let (pw, ph) = (W - left - right, H - top - bottom);
    let dots: Vec<(f64, f64, usize)> = x
        .values
        .iter()
        .zip(&y.values)
        .enumerate()
        .filter_map(|(i, (vx, vy))| Some((inset(sx.place(vx.as_deref()?)?), inset(sy.place(vy.as_deref()?)?), i)))
        .collect();
    html! {
        svg.plot.scatter viewBox={ "0 0 " (W) " " (H) } role="img" aria-label={ (y.name) " against " (x.name) } data-dots=(dots.len()) {
            line.axis x1=(fmt(left)) y1=(fmt(top + ph)) x2=(fmt(left + pw)) y2=(fmt(top + ph)) {}
            line.axis x1=(fmt(left)) y1=(fmt(top)) x2=(fmt(left)) y2=(fmt(top + ph)) {}
            @for (t, label) in sx.ticks() { text.tick x=(fmt(left + inset(t) * pw)) y=(fmt(top + ph + 18.0)) text-anchor="middle" { (label) } }
            @for (t, label) in sy.ticks() { text.tick x=(fmt(left - 8.0)) y=(fmt(top + ph - inset(t) * ph + 4.0)) text-anchor="end" { (label) } }
            text.name x=(fmt(left + pw / 2.0)) y=(fmt(H - 8.0)) text-anchor="middle" { (x.name) }
            text.name x="14" y=(fmt(top + ph / 2.0)) text-anchor="middle" transform={ "rotate(-90 14 " (fmt(top + ph / 2.0)) ")" } { (y.name) }
            @for (px, py, i) in &dots {
                circle cx=(fmt(left + px * pw)) cy=(fmt(top + ph - py * ph)) r="5" fill=(color(*i)) {
                    title { (labels.get(*i).copied().unwrap_or("")) ": " (x.values[*i].as_deref().unwrap_or("")) ", " (y.values[*i].as_deref().unwrap_or("")) }
                }
            }
        }
    }
}

/// Parallel coordinates: one vertical axis per column, one line per run through its values (a run without a
/// value on an axis breaks its line there).
pub fn parallel(columns: &[Column], labels: &[&str]) -> Markup {
    let scales: Vec<Scale> = columns.iter().map(|c| Scale::of(&c.values)).collect();
    let (left, right, top, bottom) = (PAD.0, PAD.1 + 40.0, PAD.2 + 16.0, PAD.3);
    let (pw, ph) = (W - left - right, H - top - bottom);
    let x_of = |k: usize| if columns.len() > 1 { left + pw * k as f64 / (columns.len() - 1) as f64 } else { left + pw / 2.0 };
    // Each run's line as SVG path data: `M` starts a stretch, `L` continues it.
    let paths: Vec<String> = (0..labels.len())
        .map(|i| {
            let mut d = String::new();
            let mut drawing = false;
            for (k, (c, s)) in columns.iter().zip(&scales).enumerate() {
                match c.values.get(i).and_then(|v| v.as_deref()).and_then(|v| s.place(v)) {
                    Some(p) => {
                        d.push_str(&format!("{}{},{} ", if drawing { "L" } else { "M" }, fmt(x_of(k)), fmt(top + ph - p * ph)));
                        drawing = true;
                    }
                    None => drawing = false,
                }
            }
            d
        })
        .collect();
    html! {
        svg.plot.parallel viewBox={ "0 0 " (W) " " (H) } role="img" aria-label="Parallel coordinates" data-lines=(paths.iter().filter(|p| !p.is_empty()).count()) {
            @for (i, d) in paths.iter().enumerate() {
                @if !d.is_empty() { path d=(d) stroke=(color(i)) { title { (labels[i]) } } }
            }
            @for (k, (c, s)) in columns.iter().zip(&scales).enumerate() {
                line.axis x1=(fmt(x_of(k))) y1=(fmt(top)) x2=(fmt(x_of(k))) y2=(fmt(top + ph)) {}
                text.name x=(fmt(x_of(k))) y=(fmt(top - 12.0)) text-anchor="middle" { (short(c.name)) title { (c.name) } }
                @for (t, label) in s.ticks() { text.tick x=(fmt(x_of(k) + 5.0)) y=(fmt(top + ph - t * ph + 4.0)) { (label) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col<'a>(name: &'a str, values: &[Option<&str>]) -> Column<'a> {
        Column { name, values: values.iter().map(|v| v.map(str::to_string)).collect() }
    }

    #[test]
    fn numbers_and_categories_are_placed_along_their_axis() {
        let s = Scale::of(&[Some("0.1".into()), Some("0.3".into()), None]);
        assert_eq!(s.place("0.2").map(|p| (p * 100.0).round()), Some(50.0));
        assert_eq!(s.place("nope"), None);
        let c = Scale::of(&[Some("gbdt".into()), Some("dart".into()), Some("goss".into())]);
        assert_eq!((c.place("dart"), c.place("gbdt"), c.place("goss")), (Some(0.0), Some(0.5), Some(1.0)));
        assert_eq!(Scale::of(&[Some("7".into())]).place("7"), Some(0.5), "a lone value sits in the middle");
    }

    #[test]
    fn a_scatter_has_a_dot_per_run_with_both_values_and_escapes_names() {
        let x = col("params.lr<script>", &[Some("0.1"), Some("0.3"), None]);
        let y = col("metrics.acc", &[Some("0.9"), Some("0.8"), Some("0.7")]);
        let svg = scatter(&x, &y, &["a", "b<i>", "c"]).into_string();
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("data-dots=\"2\"") && svg.contains("params.lr&lt;script&gt;") && svg.contains("b&lt;i&gt;"));
        assert!(!svg.contains("<script>"));
    }

    #[test]
    fn parallel_lines_break_where_a_run_has_no_value() {
        let cols = [col("p", &[Some("1"), Some("2")]), col("q", &[None, Some("x")]), col("m", &[Some("0.5"), Some("0.6")])];
        let svg = parallel(&cols, &["a", "b"]).into_string();
        assert!(svg.contains("data-lines=\"2\""));
        // Run a: two separate stretches (M … M …); run b: one line through three axes (M … L … L …).
        assert!(svg.contains("d=\"M96.0,") && svg.matches(" L").count() == 2, "{svg}");
    }
}
