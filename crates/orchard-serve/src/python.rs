//! Models Orchard does not run natively (a scikit-learn pipeline, LightGBM's scikit-learn classes, a custom
//! `pyfunc`), served through MLflow's own `mlflow.pyfunc` in Python worker processes, as `mlflow models serve`
//! does: a request's body goes to MLflow's scoring code unchanged, so the predictions, the input formats and the
//! errors are MLflow's. The routes, the metrics and the prediction log in front of it stay Orchard's.
//!
//! Each worker is one process holding the model (`worker.py`); they take requests from one queue, one request
//! at a time each (the model's Python code is not run concurrently in a process). A worker that dies fails the
//! request it held with a 503 and is started again for the next one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, Mutex};

const WORKER: &str = include_str!("python/worker.py");

/// Which Python runs the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonSettings {
    /// The interpreter; it must have `mlflow` and what the model needs installed (`--env-manager local`).
    pub python: PathBuf,
    /// How many worker processes (each holds the model in memory).
    pub workers: usize,
    /// How long one request may take; a worker that takes longer is stopped (and replaced), and the request
    /// answered 504, as MLflow's scoring server does (`MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT`).
    pub timeout: Duration,
}

impl Default for PythonSettings {
    fn default() -> Self {
        PythonSettings { python: PathBuf::from("python3"), workers: 1, timeout: Duration::from_secs(60) }
    }
}

/// What a worker reports once the model is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkerInfo {
    pub mlflow: String,
    pub python: String,
    /// The model's pyfunc loader (`mlflow.sklearn`, `mlflow.pyfunc.model`, …).
    pub loader_module: String,
    /// The named inputs of its signature, with their OIP datatypes.
    #[serde(default)]
    pub inputs: Vec<NamedInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NamedInput {
    pub name: String,
    pub datatype: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PythonError {
    #[error("cannot start the Python worker with {python}: {reason}")]
    Spawn { python: String, reason: String },
    #[error("mlflow.pyfunc cannot load the model: {0}")]
    Load(String),
    #[error("the Python worker stopped while answering ({0}); it is started again for the next request")]
    Died(String),
    #[error("Request processing time exceeded limit")]
    Timeout,
    #[error("the Python workers have stopped")]
    Closed,
}

/// One request for MLflow's scoring code: the body of an `/invocations` request and its content type.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    pub content_type: String,
    pub body: String,
}

/// MLflow's answer to it, as its scoring server would send it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Reply {
    pub status: u16,
    pub mimetype: String,
    pub body: String,
}

struct Job {
    invocation: Invocation,
    reply: oneshot::Sender<Result<Reply, PythonError>>,
}

/// A model served by Python workers. Dropping it stops them (and removes the model's folder when it was
/// handed over with [`PyFunc::remove_folder_on_drop`]).
#[derive(Debug)]
pub struct PyFunc {
    jobs: mpsc::Sender<Job>,
    pub info: WorkerInfo,
    folder: Option<PathBuf>,
}

impl Drop for PyFunc {
    fn drop(&mut self) {
        if let Some(dir) = self.folder.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl PyFunc {
    /// Starts the workers on a model folder (which must stay in place while they run) and waits until each
    /// has loaded the model, so that a model that cannot load fails here, at start, with Python's reason.
    pub async fn start(model_dir: &Path, settings: &PythonSettings) -> Result<PyFunc, PythonError> {
        let (jobs, queue) = mpsc::channel::<Job>(256);
        let queue = Arc::new(Mutex::new(queue));
        let mut info = None;
        for _ in 0..settings.workers.max(1) {
            let worker = Worker::spawn(model_dir, &settings.python).await?;
            info = Some(worker.info.clone());
            tokio::spawn(worker.serve(queue.clone(), model_dir.to_path_buf(), settings.clone()));
        }
        Ok(PyFunc { jobs, info: info.ok_or(PythonError::Closed)?, folder: None })
    }

    /// The model's folder is a download of this process's own: it goes when the model is no longer served.
    pub fn remove_folder_on_drop(&mut self, dir: PathBuf) {
        self.folder = Some(dir);
    }

    /// Answers one request through MLflow's scoring code.
    pub async fn invoke(&self, invocation: Invocation) -> Result<Reply, PythonError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { invocation, reply }).await.map_err(|_| PythonError::Closed)?;
        answer.await.map_err(|_| PythonError::Closed)?
    }
}

struct Worker {
    // Held so that the process is killed when the worker is dropped.
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    info: WorkerInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Hello {
    Ready(WorkerInfo),
    Failed(String),
}

impl Worker {
    async fn spawn(model_dir: &Path, python: &Path) -> Result<Worker, PythonError> {
        let spawn_error = |reason: String| PythonError::Spawn { python: python.display().to_string(), reason };
        let mut child = Command::new(python)
            .arg("-c")
            .arg(WORKER)
            .arg(model_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The worker's own messages (and the model's prints) go where orchard's go.
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_error(e.to_string()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(spawn_error("no pipes to the process".into()));
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = stdout.read_line(&mut line).await.map_err(|e| spawn_error(e.to_string()))?;
        if read == 0 {
            let status = child.wait().await.map(|s| s.to_string()).unwrap_or_default();
            return Err(PythonError::Load(format!("the worker exited before loading it ({status}; its output is above)")));
        }
        match serde_json::from_str::<Hello>(&line) {
            Ok(Hello::Ready(info)) => Ok(Worker { _child: child, stdin, stdout, info }),
            Ok(Hello::Failed(reason)) => Err(PythonError::Load(reason)),
            Err(_) => Err(PythonError::Load(format!("the worker answered {:?} instead of starting", line.trim()))),
        }
    }

    async fn call(&mut self, invocation: &Invocation) -> Result<Reply, String> {
        let mut line = serde_json::to_string(invocation).map_err(|e| e.to_string())?;
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.map_err(|e| e.to_string())?;
        self.stdin.flush().await.map_err(|e| e.to_string())?;
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer).await {
            Ok(0) => Err("it exited".into()),
            Ok(_) => serde_json::from_str(&answer).map_err(|e| format!("unreadable answer: {e}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Takes requests from the queue until it closes; a worker that fails or overruns the timeout is stopped
    /// and replaced.
    async fn serve(self, queue: Arc<Mutex<mpsc::Receiver<Job>>>, model_dir: PathBuf, settings: PythonSettings) {
        let mut worker = Some(self);
        loop {
            let Some(job) = queue.lock().await.recv().await else { return };
            if job.reply.is_closed() {
                // The client went away while the request waited: nothing to answer.
                continue;
            }
            if worker.is_none() {
                match Worker::spawn(&model_dir, &settings.python).await {
                    Ok(w) => worker = Some(w),
                    Err(e) => {
                        let _ = job.reply.send(Err(e));
                        continue;
                    }
                }
            }
            let Some(w) = worker.as_mut() else { continue };
            match tokio::time::timeout(settings.timeout, w.call(&job.invocation)).await {
                Ok(Ok(reply)) => {
                    let _ = job.reply.send(Ok(reply));
                }
                Err(_) => {
                    tracing::warn!(timeout_s = settings.timeout.as_secs_f64(), "a request overran the timeout; the Python worker is stopped and replaced");
                    worker = None;
                    let _ = job.reply.send(Err(PythonError::Timeout));
                }
                Ok(Err(reason)) => {
                    tracing::warn!(%reason, "the Python worker failed; starting another for the next request");
                    worker = None;
                    let _ = job.reply.send(Err(PythonError::Died(reason)));
                }
            }
        }
    }
}
