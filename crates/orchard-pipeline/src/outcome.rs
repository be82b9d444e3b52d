//! What became of each stage of a `repro`, and the output its commands printed (kept for the record).

use std::sync::Mutex;

use crate::project::Change;

/// What happened to one stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Unchanged,
    Ran { attempts: u32 },
    Restored,
    /// Would run (`--dry`).
    Due(Vec<Change>),
    Failed(String),
    /// Not run because an upstream stage failed.
    Blocked(String),
}

#[derive(Clone, Debug)]
pub struct StageReport {
    pub name: String,
    pub outcome: Outcome,
    pub seconds: f64,
    /// The exit code of the command that ended the stage's run, when one ran and exited (not when it was
    /// killed by a signal or a timeout).
    pub exit_code: Option<i32>,
    /// How many times the command was started (retries included); 0 when it never ran.
    pub attempts: u32,
    /// What the commands printed (every attempt), as passed through to the terminal.
    pub stdout: String,
    pub stderr: String,
}

impl StageReport {
    pub(crate) fn new(name: &str, outcome: Outcome) -> StageReport {
        StageReport { name: name.to_string(), outcome, seconds: 0.0, exit_code: None, attempts: 0, stdout: String::new(), stderr: String::new() }
    }
}

/// How much of each output stream a stage run keeps for its record; beyond it, the count of bytes left out
/// is written in its place (the terminal still gets everything).
pub(crate) const KEEP: usize = 4 << 20;

#[derive(Default)]
pub(crate) struct Kept {
    pub(crate) bytes: Vec<u8>,
    pub(crate) omitted: u64,
}

impl Kept {
    pub(crate) fn push(&mut self, b: &[u8]) {
        let n = KEEP.saturating_sub(self.bytes.len()).min(b.len());
        self.bytes.extend_from_slice(&b[..n]);
        self.omitted += (b.len() - n) as u64;
    }

    pub(crate) fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.omitted > 0 {
            s.push_str(&format!("\n[orchard: {} more bytes of output were not kept]\n", self.omitted));
        }
        s
    }
}

/// What a stage's commands print, kept while it is passed through.
#[derive(Default)]
pub(crate) struct Capture {
    pub(crate) stdout: std::sync::Arc<Mutex<Kept>>,
    pub(crate) stderr: std::sync::Arc<Mutex<Kept>>,
    pub(crate) exit_code: Mutex<Option<i32>>,
    pub(crate) attempts: std::sync::atomic::AtomicU32,
}

impl Capture {
    pub(crate) fn note(&self, line: &str) {
        self.stderr.lock().expect("capture poisoned").push(format!("{line}\n").as_bytes());
    }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub stages: Vec<StageReport>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.stages.iter().any(|s| matches!(s.outcome, Outcome::Failed(_) | Outcome::Blocked(_)))
    }
}
