//! What the caller of `repro` controls: its [`Options`], the [`Stop`] handle of Ctrl-C, and where progress
//! lines go.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub targets: Vec<String>,
    pub jobs: usize,
    pub force: bool,
    pub dry: bool,
    /// Only the targets, not their upstream stages (`-s`).
    pub single_item: bool,
    /// Skip the run cache (`--no-run-cache`).
    pub no_run_cache: bool,
    /// Extra environment for every command (tracking links, …).
    pub env: Vec<(String, String)>,
    /// Progress (and the commands' output) to stderr, leaving stdout to a machine-readable report.
    pub progress_to_stderr: bool,
    /// Commands die with this process (the parent-death signal): a worker killed mid-stage must not leave its
    /// command running beside the worker that takes the stage over. Costs a fork per command instead of
    /// posix_spawn, so it is for workers only.
    pub die_with_parent: bool,
    /// The caller's handle to stop the run (Ctrl-C).
    pub stop: Stop,
}

/// Why a stage that never started did not run.
pub(crate) const NOT_RUN: &str = "not run: repro was interrupted";

/// How the caller stops a `repro` in progress, as Ctrl-C stops `dvc repro`: a handle shared by the caller's
/// signal watcher and the stages of the run it was given to (in [`Options::stop`]). Clones are one handle.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<StopState>);

#[derive(Debug, Default)]
struct StopState {
    interrupted: AtomicBool,
    /// The process groups of the commands running now (each command leads its own group).
    groups: Mutex<Vec<libc::pid_t>>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Whether [`Stop::interrupt`] was called.
    pub fn interrupted(&self) -> bool {
        self.0.interrupted.load(Ordering::SeqCst)
    }

    /// Every running command's process group gets SIGINT (they run in groups of their own, so the
    /// terminal's Ctrl-C does not reach them), no stage starts after it, no retry is made, and the stages
    /// left are reported as not run. For a signal watcher to call (not from inside a signal handler: it takes
    /// a lock).
    pub fn interrupt(&self) {
        self.0.interrupted.store(true, Ordering::SeqCst);
        self.signal_all(libc::SIGINT);
    }

    /// Kills every running command's process group at once (a second Ctrl-C).
    pub fn kill_commands(&self) {
        self.signal_all(libc::SIGKILL);
    }

    fn signal_all(&self, signal: libc::c_int) {
        for &g in self.0.groups.lock().expect("groups poisoned").iter() {
            signal_group(g, signal);
        }
    }

    pub(crate) fn enter(&self, group: libc::pid_t) {
        self.0.groups.lock().expect("groups poisoned").push(group);
    }

    pub(crate) fn leave(&self, group: libc::pid_t) {
        self.0.groups.lock().expect("groups poisoned").retain(|&g| g != group);
    }
}

pub(crate) fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: sends a signal to a process group this process started; no memory is involved.
    unsafe {
        libc::killpg(group, signal);
    }
}

/// Prints a line of progress (to stderr when stdout carries a report); stages running side by side share the
/// stream, so each line goes out whole.
pub(crate) fn say(to_stderr: bool, text: &str) {
    if to_stderr {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    } else {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}
