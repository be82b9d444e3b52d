//! Metric series for charts, reduced to what a chart of a given width can show without losing a spike.
//!
//! MLflow's charts sample a fixed number of points from each history (320), so a spike that falls between two
//! samples disappears (mlflow#11444, #11660). Here the x range is cut into one bucket per pixel column and each
//! bucket keeps its first, lowest, highest and last points (in x order): a line drawn through them covers exactly
//! the pixels the full series would, whatever its length, and every extreme is still there.

use orchard_store::Metric;

/// Which x a chart plots a metric against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// The step the point was logged at.
    Step,
    /// The wall-clock time it was logged at (milliseconds since the Unix epoch).
    Time,
    /// Milliseconds since the series' first point.
    Relative,
}

impl XAxis {
    /// Reads the axis by the names the UI uses in its URLs (`step`, `time`, `relative`).
    pub fn parse(name: &str) -> Option<XAxis> {
        match name {
            "step" => Some(XAxis::Step),
            "time" => Some(XAxis::Time),
            "relative" => Some(XAxis::Relative),
            _ => None,
        }
    }
}

/// The points of one run's metric as a chart draws them.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub run_id: String,
    /// `(x, y)` in x order, at most four per bucket.
    pub points: Vec<(f64, f64)>,
    /// How many points the run has in the range asked for, before reduction.
    pub total: usize,
}

/// The points of a metric history on `axis`, in x order, those outside `range` left out. Values that are not
/// finite (NaN, infinities) cannot be drawn and are left out too; the chart shows a gap there.
pub fn points_on(history: &[Metric], axis: XAxis, range: Option<(f64, f64)>) -> Vec<(f64, f64)> {
    let origin = history.iter().map(|m| m.timestamp).min().unwrap_or(0);
    let mut points: Vec<(f64, f64)> = history
        .iter()
        .filter(|m| m.value.is_finite())
        .map(|m| {
            let x = match axis {
                XAxis::Step => m.step as f64,
                XAxis::Time => m.timestamp as f64,
                // Timestamps are whatever a client sent: the difference may not fit in an i64.
                XAxis::Relative => (i128::from(m.timestamp) - i128::from(origin)) as f64,
            };
            (x, m.value)
        })
        .filter(|(x, _)| range.is_none_or(|(lo, hi)| *x >= lo && *x <= hi))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// Reduces points sorted by x to at most four per bucket, `buckets` buckets of equal width spanning the points'
/// x range: each bucket's first, lowest, highest and last point, in x order. Fewer points than that come back as
/// they are.
pub fn downsample(points: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    let buckets = buckets.max(1);
    if points.len() <= 4 * buckets {
        return points.to_vec();
    }
    let (lo, hi) = (points[0].0, points[points.len() - 1].0);
    let span = hi - lo;
    let bucket_of = |x: f64| -> usize {
        if span <= 0.0 {
            0
        } else {
            (((x - lo) / span * buckets as f64) as usize).min(buckets - 1)
        }
    };
    let mut out = Vec::with_capacity(4 * buckets);
    let mut start = 0;
    while start < points.len() {
        let b = bucket_of(points[start].0);
        let mut end = start + 1;
        while end < points.len() && bucket_of(points[end].0) == b {
            end += 1;
        }
        let bucket = &points[start..end];
        let (mut min, mut max) = (0, 0);
        for (i, p) in bucket.iter().enumerate() {
            if p.1 < bucket[min].1 {
                min = i;
            }
            if p.1 > bucket[max].1 {
                max = i;
            }
        }
        let mut keep = [0, min, max, bucket.len() - 1];
        keep.sort_unstable();
        let mut last = None;
        for i in keep {
            if last != Some(i) {
                out.push(bucket[i]);
                last = Some(i);
            }
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series() -> impl Strategy<Value = Vec<(f64, f64)>> {
        proptest::collection::vec((0u32..5_000, -1e6f64..1e6), 0..3_000).prop_map(|mut v| {
            v.sort_by_key(|p| p.0);
            v.into_iter().map(|(x, y)| (f64::from(x), y)).collect()
        })
    }

    proptest! {
        #[test]
        fn every_buckets_extremes_survive(points in series(), buckets in 1usize..400) {
            let out = downsample(&points, buckets);
            prop_assert!(out.len() <= 4 * buckets.max(1) || out == points);
            // What is kept is a subsequence of the input: nothing invented, order kept.
            let mut rest = points.iter();
            for p in &out {
                prop_assert!(rest.any(|q| q == p), "{:?} is not from the input, in order", p);
            }
            if let (Some(first), Some(last)) = (points.first(), points.last()) {
                prop_assert_eq!(out.first(), Some(first));
                prop_assert_eq!(out.last(), Some(last));
            }
            // The lowest and highest value of each bucket (over the kept points' buckets) are kept.
            if out != points {
                let (lo, hi) = (points[0].0, points[points.len() - 1].0);
                let bucket = |x: f64| if hi > lo { (((x - lo) / (hi - lo) * buckets as f64) as usize).min(buckets - 1) } else { 0 };
                for b in 0..buckets {
                    let ys: Vec<f64> = points.iter().filter(|p| bucket(p.0) == b).map(|p| p.1).collect();
                    let kept: Vec<f64> = out.iter().filter(|p| bucket(p.0) == b).map(|p| p.1).collect();
                    if let Some(max) = ys.iter().copied().reduce(f64::max) {
                        prop_assert!(kept.contains(&max), "bucket {} lost its max {}", b, max);
                        prop_assert!(kept.contains(&ys.iter().copied().reduce(f64::min).unwrap()));
                    }
                }
            }
        }
    }

    #[test]
    fn a_spike_between_samples_is_kept() {
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (f64::from(i), 1.0)).collect();
        points[54_321].1 = 1_000.0;
        let out = downsample(&points, 300);
        assert!(out.len() <= 1_200);
        assert!(out.contains(&(54_321.0, 1_000.0)));
    }

    #[test]
    fn points_are_placed_on_the_axis_asked_for() {
        let m = |v: f64, ts: i64, step: i64| Metric::new("loss", v, ts, step);
        let history = [m(3.0, 5_000, 2), m(f64::NAN, 6_000, 3), m(1.0, 1_000, 0), m(2.0, 3_000, 1)];
        assert_eq!(points_on(&history, XAxis::Step, None), vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]);
        assert_eq!(points_on(&history, XAxis::Relative, None), vec![(0.0, 1.0), (2_000.0, 2.0), (4_000.0, 3.0)]);
        assert_eq!(points_on(&history, XAxis::Time, Some((2_000.0, 5_000.0))), vec![(3_000.0, 2.0), (5_000.0, 3.0)]);
        let extremes = [m(1.0, i64::MIN, 0), m(2.0, i64::MAX, 1)];
        assert_eq!(points_on(&extremes, XAxis::Relative, None)[1].0, 2f64.powi(64) - 1.0);
        assert_eq!(XAxis::parse("relative"), Some(XAxis::Relative));
        assert_eq!(XAxis::parse("epoch"), None);
    }
}
