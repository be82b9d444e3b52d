//! The prediction log: every request's id, model version, inputs, outputs and latency, appended as JSON lines
//! to files in the artifact store (`<prefix>/<model>/<yyyy-mm-dd>/<epoch ms>-<seq>.jsonl`), so monitoring and
//! evaluation against late ground truth can read them later.
//!
//! The request path only does a `try_send` into a bounded channel: when the writer falls behind, records are
//! dropped and counted (`orchard_prediction_log_dropped_total`) rather than slowing requests down. A writer task
//! batches records and writes each file with one atomic put, so a file is either whole or absent; it rotates to
//! a new file every `max_records` records or `max_age`, whichever comes first.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use orchard_blob::BlobStore;
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// One logged request. The request and response bodies are kept as the bytes that were received and sent
/// (reference-counted, not copied), so logging costs the request path a few pointer copies; the writer
/// splices them into the JSON line.
#[derive(Debug, Clone)]
pub struct Record {
    pub request_id: String,
    pub timestamp_ms: i64,
    pub model: Arc<str>,
    pub version: Arc<str>,
    pub route: &'static str,
    pub rows: usize,
    /// The request body; JSON unless `inputs_are_json` is false (CSV), then logged as a JSON string.
    pub inputs: Bytes,
    pub inputs_are_json: bool,
    /// The response body (JSON).
    pub outputs: Bytes,
    pub latency_us: u64,
}

impl Record {
    /// The record as one JSON line: `{"request_id", "timestamp_ms", "model", "version", "route", "rows",
    /// "latency_us", "inputs", "outputs"}`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        let s = |v: &str| serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into());
        out.extend_from_slice(
            format!(
                "{{\"request_id\":{},\"timestamp_ms\":{},\"model\":{},\"version\":{},\"route\":{},\"rows\":{},\"latency_us\":{},\"inputs\":",
                s(&self.request_id),
                self.timestamp_ms,
                s(&self.model),
                s(&self.version),
                s(self.route),
                self.rows,
                self.latency_us
            )
            .as_bytes(),
        );
        if self.inputs_are_json {
            out.extend_from_slice(self.inputs.trim_ascii());
        } else {
            out.extend_from_slice(s(&String::from_utf8_lossy(&self.inputs)).as_bytes());
        }
        out.extend_from_slice(b",\"outputs\":");
        out.extend_from_slice(self.outputs.trim_ascii());
        out.extend_from_slice(b"}\n");
    }
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Folder inside the store.
    pub prefix: String,
    /// Records waiting to be written before new ones are dropped.
    pub capacity: usize,
    pub max_records: usize,
    pub max_age: Duration,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            prefix: "predictions".into(),
            // Enough for a burst of a second or so at full speed, small enough to stay a few MB.
            capacity: 8_192,
            max_records: 10_000,
            max_age: Duration::from_secs(10),
        }
    }
}

/// The sending side, cheap to clone.
#[derive(Debug, Clone)]
pub struct PredictionLog {
    tx: mpsc::Sender<Record>,
    metrics: Arc<Metrics>,
}

/// Waits for the writer to flush what it holds (on shutdown).
#[derive(Debug)]
pub struct LogWriter(tokio::task::JoinHandle<()>);

impl LogWriter {
    pub async fn finish(self) {
        let _ = self.0.await;
    }
}

impl PredictionLog {
    pub fn start(store: BlobStore, settings: LogSettings, metrics: Arc<Metrics>) -> (PredictionLog, LogWriter) {
        let (tx, rx) = mpsc::channel(settings.capacity.max(1));
        let handle = tokio::spawn(write_loop(store, settings, rx, metrics.clone()));
        (PredictionLog { tx, metrics }, LogWriter(handle))
    }

    /// Never waits: a full queue drops the record and counts it.
    pub fn send(&self, record: Record) {
        if self.tx.try_send(record).is_err() {
            self.metrics.log_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write_loop(store: BlobStore, s: LogSettings, mut rx: mpsc::Receiver<Record>, metrics: Arc<Metrics>) {
    let mut seq = 0u64;
    loop {
        // Wait for the first record of a file, then gather until the file is full or old enough.
        let Some(first) = rx.recv().await else { return };
        let started = std::time::Instant::now();
        let mut batch = vec![first];
        while batch.len() < s.max_records {
            let left = s.max_age.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        seq += 1;
        flush(&store, &s.prefix, &batch, seq, &metrics).await;
        if rx.is_closed() && rx.is_empty() {
            return;
        }
    }
}

async fn flush(store: &BlobStore, prefix: &str, batch: &[Record], seq: u64, metrics: &Metrics) {
    // One file per model of the batch (the gateway serves several).
    let mut models: Vec<&str> = batch.iter().map(|r| &*r.model).collect();
    models.sort();
    models.dedup();
    for model in models {
        let mut text = Vec::new();
        let mut n = 0u64;
        for r in batch.iter().filter(|r| &*r.model == model) {
            r.write_line(&mut text);
            n += 1;
        }
        let ts = batch[0].timestamp_ms;
        let safe_model: String = model
            .chars()
            .map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' })
            .collect();
        let path = format!("{prefix}/{safe_model}/{}/{ts}-{seq:06}.jsonl", civil_date(ts));
        match store.put(&path, Bytes::from(text)).await {
            Ok(()) => {
                metrics.log_written.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                metrics.log_dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(error = %e, path, "could not write the prediction log");
            }
        }
    }
}

/// `yyyy-mm-dd` (UTC) of a time in ms since the epoch: the proleptic Gregorian calendar from a day count.
pub fn civil_date(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a 400-year era's years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(951_782_400_000), "2000-02-29");
        assert_eq!(civil_date(1_796_150_568_304), "2026-12-01");
        assert_eq!(civil_date(-86_400_000), "1969-12-31");
    }

    fn record(i: usize) -> Record {
        Record {
            request_id: format!("r{i}"),
            timestamp_ms: 1_796_150_568_304,
            model: "iris".into(),
            version: "1".into(),
            route: "/predict",
            rows: 1,
            inputs: Bytes::from(format!("{{\"x\": {i}}}\n")),
            inputs_are_json: true,
            outputs: Bytes::from(format!("[{i}]")),
            latency_us: 5,
        }
    }

    #[test]
    fn lines_are_json_with_the_bodies_spliced_in() {
        let mut out = Vec::new();
        record(7).write_line(&mut out);
        let mut csv = record(8);
        csv.inputs = Bytes::from("x,y\n1,\"a\"\n");
        csv.inputs_are_json = false;
        csv.write_line(&mut out);
        let lines: Vec<serde_json::Value> =
            out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        assert_eq!(lines[0]["inputs"]["x"], 7);
        assert_eq!(lines[0]["outputs"][0], 7);
        assert_eq!(lines[1]["inputs"], "x,y\n1,\"a\"\n");
    }

    #[tokio::test]
    async fn records_are_written_in_rotated_files_and_overflow_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().to_str().unwrap()).unwrap();
        let metrics = Arc::new(Metrics::default());
        let settings = LogSettings { capacity: 8, max_records: 3, max_age: Duration::from_secs(60), ..LogSettings::default() };
        let (log, writer) = PredictionLog::start(store.clone(), settings, metrics.clone());
        // Far more than the queue holds, sent without waiting: some are dropped, none blocks.
        for i in 0..1000 {
            log.send(record(i));
        }
        drop(log);
        writer.finish().await;
        let written = metrics.log_written.load(Ordering::Relaxed);
        let dropped = metrics.log_dropped.load(Ordering::Relaxed);
        assert_eq!(written + dropped, 1000);
        assert!(dropped > 0 && written >= 3);
        let files = store.list_recursive("predictions/iris/2026-12-01").await.unwrap();
        assert_eq!(files.len() as u64, written.div_ceil(3));
        let mut lines = 0;
        for f in files {
            let text = String::from_utf8(store.get_bytes(&f).await.unwrap().to_vec()).unwrap();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["model"], "iris");
                assert_eq!(v["inputs"]["x"], v["outputs"][0]);
                lines += 1;
            }
        }
        assert_eq!(lines, written);
    }
}
