//! The prediction log: every request's id, model version, inputs, outputs and latency, appended as JSON lines
//! to files in the artifact store (`<prefix>/<model>/<yyyy-mm-dd>/<epoch ms>-<seq>.jsonl`), so monitoring and
//! evaluation against late ground truth can read them later.
//!
//! The request path only does a `try_send` into a bounded channel: when the writer falls behind, records are
//! dropped and counted (`orchard_prediction_log_dropped_total`) rather than slowing requests down. A writer thread
//! batches records and writes each file with one atomic put, so a file is either whole or absent; it rotates to
//! a new file every `max_records` records or `max_age`, whichever comes first.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use orchard_blob::BlobStore;
use tokio::sync::oneshot;

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
        use std::io::Write;
        // Written straight into the buffer (no intermediate strings): this runs for every request.
        let string = |out: &mut Vec<u8>, v: &str| {
            let _ = serde_json::to_writer(&mut *out, v);
        };
        out.extend_from_slice(b"{\"request_id\":");
        string(out, &self.request_id);
        let _ = write!(out, ",\"timestamp_ms\":{},\"model\":", self.timestamp_ms);
        string(out, &self.model);
        out.extend_from_slice(b",\"version\":");
        string(out, &self.version);
        out.extend_from_slice(b",\"route\":");
        string(out, self.route);
        let _ = write!(out, ",\"rows\":{},\"latency_us\":{},\"inputs\":", self.rows, self.latency_us);
        if self.inputs_are_json {
            out.extend_from_slice(self.inputs.trim_ascii());
        } else {
            string(out, &String::from_utf8_lossy(&self.inputs));
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
    tx: mpsc::SyncSender<Record>,
    metrics: Arc<Metrics>,
}

/// Waits for the writer to flush what it holds (on shutdown).
#[derive(Debug)]
pub struct LogWriter(oneshot::Receiver<()>);

impl LogWriter {
    pub async fn finish(self) {
        let _ = self.0.await;
    }
}

/// How often the writer wakes to collect queued records. The request path never wakes it: a sleeping
/// writer costs a `try_send` nothing but a queue push, where a writer blocked on the queue would cost every
/// request a futex wake.
const POLL: Duration = Duration::from_millis(20);

impl PredictionLog {
    /// Starts the writer on its own OS thread, so that formatting and writing files never runs on the async
    /// workers that answer requests (a batch of 10,000 lines is milliseconds of work, which on a worker
    /// would stall the requests queued behind it). Must be called inside a tokio runtime: the writer puts
    /// files through it.
    pub fn start(store: BlobStore, settings: LogSettings, metrics: Arc<Metrics>) -> (PredictionLog, LogWriter) {
        let (tx, rx) = mpsc::sync_channel(settings.capacity.max(1));
        let (done_tx, done_rx) = oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        let m = metrics.clone();
        let spawned = std::thread::Builder::new().name("prediction-log".into()).spawn(move || {
            lower_priority();
            write_loop(&runtime, &store, &settings, &rx, &m);
            let _ = done_tx.send(());
        });
        if let Err(e) = spawned {
            // No writer: every record is counted as dropped (the receiver is gone, so try_send fails).
            tracing::warn!(error = %e, "could not start the prediction log writer");
        }
        (PredictionLog { tx, metrics }, LogWriter(done_rx))
    }

    /// Never waits: a full queue drops the record and counts it.
    pub fn send(&self, record: Record) {
        if self.tx.try_send(record).is_err() {
            self.metrics.log_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Makes the calling thread yield the CPU to request handling: on Linux the nice value is per thread, so
/// this writer gives way whenever the request workers are busy and catches up when they are not (and when it
/// cannot, the queue fills and records are dropped and counted, never waited for).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; no memory is shared with them.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICE);
    }
}

#[cfg(target_os = "linux")]
const NICE: libc::c_int = 19;

/// How much of a file is gathered before it is appended to its (hidden) local file: small writes, spread out,
/// instead of one copy of megabytes at rotation, which measurably slowed the requests around it.
const CHUNK: usize = 64 * 1024;

/// One model's part of the file being filled (the gateway serves several models).
struct Part {
    model: Arc<str>,
    buf: Vec<u8>,
    records: u64,
    /// Local stores: the final path, the hidden file being appended to, and the open file.
    local: Option<(std::path::PathBuf, std::path::PathBuf, std::fs::File)>,
    failed: Option<String>,
}

/// The files being filled, their lines formatted as records arrive.
struct Pending {
    parts: Vec<Part>,
    records: usize,
    first_ts: i64,
    /// The number of the file being filled.
    seq: u64,
}

impl Pending {
    fn path(&self, prefix: &str, model: &str) -> String {
        let safe_model = safe_name(model);
        let ts = self.first_ts;
        format!("{prefix}/{safe_model}/{}/{ts}-{:06}.jsonl", civil_date(ts), self.seq)
    }

    fn add(&mut self, r: &Record, store: &BlobStore, prefix: &str) {
        if self.records == 0 {
            self.first_ts = r.timestamp_ms;
        }
        self.records += 1;
        // Models whose names map to one file name share that file.
        let at = match self.parts.iter().position(|p| p.model == r.model || safe_name(&p.model) == safe_name(&r.model)) {
            Some(i) => i,
            None => {
                self.parts.push(Part { model: r.model.clone(), buf: Vec::new(), records: 0, local: None, failed: None });
                self.parts.len() - 1
            }
        };
        r.write_line(&mut self.parts[at].buf);
        self.parts[at].records += 1;
        if self.parts[at].buf.len() >= CHUNK {
            let path = self.path(prefix, &r.model);
            spill(&mut self.parts[at], store, &path);
        }
    }
}

fn safe_name(model: &str) -> String {
    model.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// Appends a part's gathered lines to its hidden local file (opened on first use). Remote stores keep
/// everything for one put at rotation.
fn spill(part: &mut Part, store: &BlobStore, path: &str) {
    use std::io::Write;
    if part.failed.is_some() || part.buf.is_empty() {
        return;
    }
    let Some(file) = store.local_file(path) else { return };
    if part.local.is_none() {
        let opened = (|| -> std::io::Result<_> {
            let dir = file.parent().ok_or_else(|| std::io::Error::other("no parent folder"))?;
            std::fs::create_dir_all(dir)?;
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            // `<name>#<digits>` is object_store's own in-progress naming: its listings skip such files, so
            // a file is seen whole or not at all.
            let tmp = dir.join(format!("{name}#{}", std::process::id()));
            let f = std::fs::File::create(&tmp)?;
            Ok((file.clone(), tmp, f))
        })();
        match opened {
            Ok(l) => part.local = Some(l),
            Err(e) => {
                part.failed = Some(e.to_string());
                return;
            }
        }
    }
    if let Some((_, _, f)) = &mut part.local {
        if let Err(e) = f.write_all(&part.buf) {
            part.failed = Some(e.to_string());
        }
    }
    part.buf.clear();
}

fn write_loop(
    runtime: &tokio::runtime::Handle,
    store: &BlobStore,
    s: &LogSettings,
    rx: &mpsc::Receiver<Record>,
    metrics: &Metrics,
) {
    let mut pending = Pending { parts: Vec::new(), records: 0, first_ts: 0, seq: 1 };
    let flush = |pending: &mut Pending| {
        write_files(runtime, store, &s.prefix, pending, metrics);
        pending.seq += 1;
    };
    loop {
        // Idle: wait for the first record of a file.
        match rx.recv() {
            Ok(r) => pending.add(&r, store, &s.prefix),
            Err(_) => return,
        }
        let mut started = std::time::Instant::now();
        loop {
            std::thread::sleep(POLL.min(s.max_age));
            let mut closed = false;
            loop {
                match rx.try_recv() {
                    Ok(r) => {
                        pending.add(&r, store, &s.prefix);
                        if pending.records >= s.max_records {
                            flush(&mut pending);
                            started = std::time::Instant::now();
                        }
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed || started.elapsed() >= s.max_age || pending.records == 0 {
                if pending.records > 0 {
                    flush(&mut pending);
                }
                if closed {
                    return;
                }
                break;
            }
        }
    }
}

/// Completes one file per model of the batch — a local file is renamed into place once whole (so a reader
/// sees it complete or not at all), a remote one is put in one request — then empties the batch.
fn write_files(runtime: &tokio::runtime::Handle, store: &BlobStore, prefix: &str, batch: &mut Pending, metrics: &Metrics) {
    let paths: Vec<String> = batch.parts.iter().map(|p| batch.path(prefix, &p.model)).collect();
    for (part, path) in batch.parts.iter_mut().zip(paths).filter(|(p, _)| p.records > 0) {
        let result = if store.local_file(&path).is_some() {
            spill(part, store, &path);
            match (part.failed.take(), part.local.take()) {
                (None, Some((file, tmp, f))) => {
                    drop(f);
                    std::fs::rename(&tmp, &file).map_err(|e| e.to_string())
                }
                (Some(e), local) => {
                    if let Some((_, tmp, _)) = local {
                        let _ = std::fs::remove_file(tmp);
                    }
                    Err(e)
                }
                (None, None) => Err("the log file was never opened".into()),
            }
        } else {
            let bytes = Bytes::from(std::mem::take(&mut part.buf));
            runtime.block_on(store.put(&path, bytes)).map_err(|e| e.to_string())
        };
        match result {
            Ok(()) => {
                metrics.log_written.fetch_add(part.records, Ordering::Relaxed);
            }
            Err(e) => {
                metrics.log_dropped.fetch_add(part.records, Ordering::Relaxed);
                tracing::warn!(error = %e, path, "could not write the prediction log");
            }
        }
        part.buf.clear();
        part.records = 0;
    }
    batch.records = 0;
}

/// `yyyy-mm-dd` (UTC) of a time in ms since the epoch.
pub fn civil_date(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d").to_string(),
        None => "0000-00-00".into(),
    }
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

    /// A prediction log writing to a fresh folder: `capacity` records queued at most, `max_records` per file.
    fn started_log(capacity: usize, max_records: usize) -> (tempfile::TempDir, BlobStore, Arc<Metrics>, PredictionLog, LogWriter) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().to_str().unwrap()).unwrap();
        let metrics = Arc::new(Metrics::default());
        let settings = LogSettings { capacity, max_records, max_age: Duration::from_secs(60), ..LogSettings::default() };
        let (log, writer) = PredictionLog::start(store.clone(), settings, metrics.clone());
        (dir, store, metrics, log, writer)
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
        let (_dir, store, metrics, log, writer) = started_log(8, 3);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_files_are_appended_in_pieces_and_appear_whole() {
        let (_dir, store, metrics, log, writer) = started_log(64, 7);
        // 20 KiB per record: each file of 7 records is written in several 64 KiB pieces.
        let big = "x".repeat(20 * 1024);
        for i in 0..14 {
            let mut r = record(i);
            r.inputs = Bytes::from(format!("{{\"x\": {i}, \"pad\": \"{big}\"}}"));
            log.send(r);
        }
        drop(log);
        writer.finish().await;
        assert_eq!(metrics.log_written.load(Ordering::Relaxed), 14);
        let files = store.list_recursive("predictions/iris/2026-12-01").await.unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        let mut seen = Vec::new();
        for f in files {
            assert!(!f.contains('#'), "{f}");
            let text = String::from_utf8(store.get_bytes(&f).await.unwrap().to_vec()).unwrap();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["inputs"]["pad"].as_str().unwrap().len(), big.len());
                seen.push(v["inputs"]["x"].as_u64().unwrap());
            }
        }
        seen.sort();
        assert_eq!(seen, (0..14).collect::<Vec<u64>>());
    }
}
