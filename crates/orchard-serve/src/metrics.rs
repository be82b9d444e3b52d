//! Serving metrics in Prometheus' text format: requests by route and status, a latency histogram, the model
//! version served, and the prediction-log records dropped. Plain atomics: recording costs a few nanoseconds
//! and never takes a lock on the request path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds (an integer, so it can be an atomic).
    sum_us: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, status) → count. Few distinct keys, so a small locked list is enough and it is only locked to
    /// find a counter the first time; the counters themselves are atomics.
    requests: Mutex<Vec<(String, u16, &'static AtomicU64)>>,
    latency: Histogram,
    pub predictions: AtomicU64,
    pub log_dropped: AtomicU64,
    pub log_written: AtomicU64,
}

impl Metrics {
    fn counter(&self, route: &str, status: u16) -> &'static AtomicU64 {
        let mut list = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, c)) = list.iter().find(|(r, s, _)| r == route && *s == status) {
            return c;
        }
        // Leaked on purpose: one counter per (route, status) pair, a bounded set, alive as long as the process.
        let c: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        list.push((route.to_string(), status, c));
        c
    }

    pub fn record(&self, route: &str, status: u16, seconds: f64) {
        self.counter(route, status).fetch_add(1, Ordering::Relaxed);
        let h = &self.latency;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_us.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The text exposition; `models` is (name, version) of what is served.
    pub fn render(&self, models: &[(String, String)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP orchard_requests_total Requests served, by route and HTTP status.\n");
        out.push_str("# TYPE orchard_requests_total counter\n");
        let list = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for (route, status, c) in list.iter() {
            let _ = writeln!(
                out,
                "orchard_requests_total{{route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                c.load(Ordering::Relaxed)
            );
        }
        drop(list);
        out.push_str("# HELP orchard_request_duration_seconds Time from request to response.\n");
        out.push_str("# TYPE orchard_request_duration_seconds histogram\n");
        let h = &self.latency;
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "orchard_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                h.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "orchard_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "orchard_request_duration_seconds_sum {}",
            h.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "orchard_request_duration_seconds_count {count}");
        out.push_str("# HELP orchard_model_info The model served (value 1).\n# TYPE orchard_model_info gauge\n");
        for (name, version) in models {
            let _ = writeln!(
                out,
                "orchard_model_info{{model=\"{}\",version=\"{}\"}} 1",
                escape(name),
                escape(version)
            );
        }
        for (name, help, v) in [
            ("orchard_predictions_total", "Rows predicted.", &self.predictions),
            ("orchard_prediction_log_written_total", "Prediction records written to the log.", &self.log_written),
            (
                "orchard_prediction_log_dropped_total",
                "Prediction records dropped because the log could not keep up.",
                &self.log_dropped,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.record("/predict", 200, 0.0003);
        m.record("/predict", 200, 0.002);
        m.record("/predict", 400, 0.0001);
        let text = m.render(&[("iris".into(), "3".into())]);
        assert!(text.contains("orchard_requests_total{route=\"/predict\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("orchard_requests_total{route=\"/predict\",status=\"400\"} 1"));
        assert!(text.contains("orchard_request_duration_seconds_bucket{le=\"0.0005\"} 2"));
        assert!(text.contains("orchard_request_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("orchard_model_info{model=\"iris\",version=\"3\"} 1"));
    }
}
