//! `repro`: runs the stages whose command, dependencies, tracked params or outputs changed, upstream first,
//! independent stages side by side (up to `jobs`), restoring outputs from the run cache when a stage was
//! already run with the same inputs. A failed stage stops the stages that depend on it; the others go on,
//! and the next `repro` resumes from it (every success is in `dvc.lock` as soon as it is done).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use orchard_data::fsutil;

use crate::lock::{HashEntry, Lock};
use crate::project::{Change, Project};
use crate::runcache;
use crate::spec::Stage;
use crate::error::{PipelineError, Result};

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
    fn new(name: &str, outcome: Outcome) -> StageReport {
        StageReport { name: name.to_string(), outcome, seconds: 0.0, exit_code: None, attempts: 0, stdout: String::new(), stderr: String::new() }
    }
}

/// How much of each output stream a stage run keeps for its record; beyond it, the count of bytes left out
/// is written in its place (the terminal still gets everything).
const KEEP: usize = 4 << 20;

#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    omitted: u64,
}

impl Kept {
    fn push(&mut self, b: &[u8]) {
        let n = KEEP.saturating_sub(self.bytes.len()).min(b.len());
        self.bytes.extend_from_slice(&b[..n]);
        self.omitted += (b.len() - n) as u64;
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.omitted > 0 {
            s.push_str(&format!("\n[orchard: {} more bytes of output were not kept]\n", self.omitted));
        }
        s
    }
}

/// What a stage's commands print, kept while it is passed through.
#[derive(Default)]
struct Capture {
    stdout: std::sync::Arc<Mutex<Kept>>,
    stderr: std::sync::Arc<Mutex<Kept>>,
    exit_code: Mutex<Option<i32>>,
    attempts: std::sync::atomic::AtomicU32,
}

impl Capture {
    fn note(&self, line: &str) {
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

/// Why a stage that never started did not run.
const NOT_RUN: &str = "not run: repro was interrupted";

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

    fn enter(&self, group: libc::pid_t) {
        self.0.groups.lock().expect("groups poisoned").push(group);
    }

    fn leave(&self, group: libc::pid_t) {
        self.0.groups.lock().expect("groups poisoned").retain(|&g| g != group);
    }
}

fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: sends a signal to a process group this process started; no memory is involved.
    unsafe {
        libc::killpg(group, signal);
    }
}

/// Prints a line of progress (to stderr when stdout carries a report); stages running side by side share the
/// stream, so each line goes out whole.
fn say(to_stderr: bool, text: &str) {
    if to_stderr {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    } else {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// Told about each stage that runs: tracking links a run per stage this way (the pipeline crate knows
/// nothing of tracking servers).
pub trait Observer: Sync {
    /// A stage's command is about to run: extra environment for it.
    fn started(&self, _stage: &Stage) -> Vec<(String, String)> {
        Vec::new()
    }
    /// It finished (ran, or failed), with the numbers of its metrics files.
    fn finished(&self, _stage: &Stage, _outcome: &Outcome, _metrics: Vec<(String, f64)>) {}
    /// Whatever became of a stage (run, restored, unchanged, failed, blocked), with its output: the record
    /// of the stage run. Called for every stage of the plan.
    fn settled(&self, _report: &StageReport) {}
}

struct Unobserved;
impl Observer for Unobserved {}

pub fn repro(project: &Project, opts: &Options) -> Result<Report> {
    repro_observed(project, opts, &Unobserved)
}

pub fn repro_observed(project: &Project, opts: &Options, observer: &dyn Observer) -> Result<Report> {
    let order = project.plan(&opts.targets, opts.single_item)?;
    let up = project.upstream()?;
    let mut shared = Shared::read(project, Some(LOCK_WRITE_EVERY))?;
    shared.rank = order.iter().enumerate().map(|(k, &i)| (project.pipeline.stages[i].name.clone(), k)).collect();
    let lock = Mutex::new(shared);
    let jobs = opts.jobs.max(1);
    let n = project.pipeline.stages.len();
    // 0 waiting, 1 running, 2 succeeded, 3 failed or blocked.
    let selected: Vec<bool> = (0..n).map(|i| order.contains(&i)).collect();
    let mut reports: Vec<StageReport> = Vec::new();
    let (tx, rx) = mpsc::channel::<(usize, StageReport)>();
    // A fixed pool of threads takes the stages as they become ready (a thread per stage cost more than the
    // bookkeeping of a trivial stage). `jobs` bounds the commands running at once, not the stages: once a
    // stage's command has ended, its own thread hands the next ready stage to an idle one (no round trip
    // through this thread) and goes on to hash, cache and lock the outputs — so twice as many threads.
    let plan = Plan { order: &order, up: &up, selected: &selected, jobs, stop: &opts.stop };
    let sched = Mutex::new(Sched::new(n));
    let pool = (2 * jobs).min(order.len());
    let (work_tx, work_rx) = mpsc::channel::<usize>();
    let work_rx = Mutex::new(work_rx);
    std::thread::scope(|scope| {
        let (entries, to_write) = mpsc::channel::<(std::path::PathBuf, String)>();
        lock.lock().expect("lock poisoned").run_cache = Some(entries);
        // The writer ends when its channel closes: at the end of this scope, even one left by a panic.
        let _close = CloseRunCache(&lock);
        scope.spawn(move || {
            // A run-cache entry that cannot be written costs a future run its shortcut, not this run.
            for (path, text) in to_write {
                if let Err(e) = runcache::write(&path, &text) {
                    eprintln!("WARNING: could not save the run cache entry {}: {e}", path.display());
                }
            }
        });
        for _ in 0..pool {
            let (tx, work_tx, work_rx, lock, sched, plan) = (tx.clone(), work_tx.clone(), &work_rx, &lock, &sched, &plan);
            scope.spawn(move || loop {
                let next = work_rx.lock().expect("work queue poisoned").recv();
                let Ok(i) = next else { break };
                if i == STOP {
                    break;
                }
                let ended = || {
                    let start = sched.lock().expect("scheduler poisoned").command_ended(i, plan);
                    for j in start {
                        let _ = work_tx.send(j);
                    }
                };
                // A panic outside the stage itself (an observer's) must still settle it, or the scheduler would
                // wait for it for ever.
                let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_reported(project, i, opts, lock, observer, &ended)))
                    .unwrap_or_else(|_| StageReport::new(&project.pipeline.stages[i].name, Outcome::Failed("internal error while recording the stage".into())));
                if tx.send((i, report)).is_err() {
                    break;
                }
            });
        }
        // The pool's threads end at a stop each (they hold senders of the queue themselves), sent when this
        // scope ends, even by a panic.
        let _stop = StopPool(&work_tx, pool);
        loop {
            {
                let mut s = sched.lock().expect("scheduler poisoned");
                // Block the stages whose upstream failed.
                for &i in &order {
                    if s.state[i] == WAITING {
                        if let Some(&bad) = up[i].iter().find(|&&j| selected[j] && s.state[j] == FAILED) {
                            s.state[i] = FAILED;
                            let why = format!("upstream stage '{}' failed", project.pipeline.stages[bad].name);
                            let report = StageReport::new(&project.pipeline.stages[i].name, Outcome::Blocked(why));
                            observer.settled(&report);
                            reports.push(report);
                        }
                    }
                }
                for j in s.ready(&plan) {
                    let _ = work_tx.send(j);
                }
                if s.in_flight == 0 {
                    break;
                }
            }
            // Wait for a stage; entries held back by the write throttle go out when it expires.
            let received = loop {
                let due = {
                    let s = lock.lock().expect("lock poisoned");
                    if s.unwritten.is_empty() { None } else { s.next_write }
                };
                let Some(due) = due else { break rx.recv().ok() };
                match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(x) => break Some(x),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Err(e) = write_lock(project, &mut lock.lock().expect("lock poisoned")) {
                            eprintln!("WARNING: could not update {}: {e}", crate::lock::FILE_NAME);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                }
            };
            let Some((i, report)) = received else { break };
            let failed = matches!(report.outcome, Outcome::Failed(_) | Outcome::Blocked(_));
            sched.lock().expect("scheduler poisoned").settled(i, failed);
            reports.push(report);
        }
    });
    let state = std::mem::take(&mut sched.lock().unwrap_or_else(|p| p.into_inner()).state);
    // Interrupted: what never started is reported (and recorded) as not run.
    for &i in &order {
        if state[i] == WAITING {
            let report = StageReport::new(&project.pipeline.stages[i].name, Outcome::Blocked(NOT_RUN.into()));
            observer.settled(&report);
            reports.push(report);
        }
    }
    // Saved once per run: rewriting the whole index after every stage made long pipelines quadratic.
    project.repo.state.save();
    write_lock(project, &mut lock.lock().expect("lock poisoned"))?;
    Ok(Report { stages: reports })
}

/// Tells the pool's threads to end.
const STOP: usize = usize::MAX;

struct StopPool<'a>(&'a mpsc::Sender<usize>, usize);

impl Drop for StopPool<'_> {
    fn drop(&mut self) {
        for _ in 0..self.1 {
            let _ = self.0.send(STOP);
        }
    }
}

/// A stage's state in the scheduler.
const WAITING: u8 = 0;
const STARTED: u8 = 1;
const DONE: u8 = 2;
/// Failed, blocked by an upstream failure, or not run.
const FAILED: u8 = 3;

/// What the scheduler needs to know of the plan.
struct Plan<'a> {
    /// The planned stages, upstream first.
    order: &'a [usize],
    up: &'a [Vec<usize>],
    selected: &'a [bool],
    jobs: usize,
    stop: &'a Stop,
}

/// Which stages are waiting, started, done; how many commands run (at most `jobs`) and how many stages are
/// started but not settled. Shared by the scheduling thread and the pool (a stage whose command ends starts
/// the next one itself).
struct Sched {
    state: Vec<u8>,
    holds_slot: Vec<bool>,
    running: usize,
    in_flight: usize,
    /// Positions in the plan before this one hold no waiting stage (the scan for ready stages starts here).
    first_waiting: usize,
}

impl Sched {
    fn new(n: usize) -> Sched {
        Sched { state: vec![WAITING; n], holds_slot: vec![false; n], running: 0, in_flight: 0, first_waiting: 0 }
    }

    /// The stages to start now, in plan order (marked started): ready ones while a command slot is free,
    /// none once interrupted.
    fn ready(&mut self, plan: &Plan) -> Vec<usize> {
        let mut start = Vec::new();
        while self.first_waiting < plan.order.len() && self.state[plan.order[self.first_waiting]] != WAITING {
            self.first_waiting += 1;
        }
        for &i in &plan.order[self.first_waiting..] {
            if self.running >= plan.jobs || plan.stop.interrupted() {
                break;
            }
            if self.state[i] == WAITING && plan.up[i].iter().all(|&j| !plan.selected[j] || self.state[j] == DONE) {
                self.state[i] = STARTED;
                self.running += 1;
                self.in_flight += 1;
                self.holds_slot[i] = true;
                start.push(i);
            }
        }
        start
    }

    /// A stage's command ended: its slot goes to the next ready stage (returned, to be started).
    fn command_ended(&mut self, i: usize, plan: &Plan) -> Vec<usize> {
        self.free_slot(i);
        self.ready(plan)
    }

    fn settled(&mut self, i: usize, failed: bool) {
        self.free_slot(i);
        self.in_flight -= 1;
        self.state[i] = if failed { FAILED } else { DONE };
    }

    fn free_slot(&mut self, i: usize) {
        if std::mem::take(&mut self.holds_slot[i]) {
            self.running -= 1;
        }
    }
}

struct CloseRunCache<'a>(&'a Mutex<Shared>);

impl Drop for CloseRunCache<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).run_cache = None;
    }
}

/// Runs one stage of the project and nothing upstream of it: a worker is handed stages whose upstream stages
/// are done. `dvc.lock` is read now and updated under a file lock, so workers side by side keep each other's
/// entries.
pub fn run_one(project: &Project, name: &str, opts: &Options, observer: &dyn Observer) -> Result<StageReport> {
    let i = project
        .pipeline
        .stages
        .iter()
        .position(|s| s.name == name)
        .ok_or_else(|| PipelineError::Invalid(format!("'{name}' does not exist in dvc.yaml")))?;
    let lock = Mutex::new(Shared::read(project, None)?);
    let report = run_reported(project, i, opts, &lock, observer, &|| {});
    // What was hashed is kept for next time (the state index; losing it only costs speed).
    project.repo.state.save();
    // .gitignore entries of outputs whose lock entry did not change.
    write_lock(project, &mut lock.lock().expect("lock poisoned"))?;
    Ok(report)
}

/// `dvc.lock` as this process last read or wrote it, and the file's size and mtime then: when they differ,
/// another process (a worker) wrote it since, and its entries are read back before ours is added.
struct Shared {
    lock: Lock,
    stamp: Option<(u64, std::time::SystemTime)>,
    /// Entries' text as last written (see [`Lock::to_yaml_reusing`]).
    rendered: std::collections::HashMap<String, (crate::lock::LockEntry, String)>,
    /// Stages whose entries are not in the file yet.
    unwritten: Vec<String>,
    /// Each planned stage's place in the plan, and the stages whose entries this run added to the lock (with
    /// their places): new entries are kept in plan order.
    rank: std::collections::HashMap<String, usize>,
    added: std::collections::HashMap<String, usize>,
    /// Run-cache entries to write (path, text) on a thread of their own, off the stages' path: each one is a
    /// new folder and file, which cost a quick stage as much as all its other bookkeeping on ext4. None:
    /// written at once.
    run_cache: Option<mpsc::Sender<(std::path::PathBuf, String)>>,
    /// Outputs to add to their folder's .gitignore, written just before the entries that name them (each
    /// .gitignore rewritten once per batch rather than once per stage).
    ignore: Vec<std::path::PathBuf>,
    /// At most one write per this long (the rest at the end of the run); None: every entry at once.
    throttle: Option<Duration>,
    next_write: Option<Instant>,
}

/// How often a long `repro` rewrites dvc.lock: rewriting the whole file after each of 1,000 quick stages
/// was a measurable part of the per-stage cost. Should the process die in between, the stages not yet in
/// the file are found changed next time and run again (or come back from the run cache, for those whose
/// entries the run-cache writer had saved).
const LOCK_WRITE_EVERY: Duration = Duration::from_millis(100);

impl Shared {
    fn read(project: &Project, throttle: Option<Duration>) -> Result<Shared> {
        Ok(Shared {
            lock: project.lock()?,
            stamp: lock_stamp(project),
            rendered: Default::default(),
            unwritten: Vec::new(),
            ignore: Vec::new(),
            rank: Default::default(),
            added: Default::default(),
            run_cache: None,
            throttle,
            next_write: None,
        })
    }
}

impl Shared {
    /// Puts a stage's entry in the lock: in its place when it has one; otherwise after the others, in plan
    /// order among the ones this run adds (the order `dvc`, which runs one stage at a time, writes them in),
    /// though stages may settle in another order.
    fn insert(&mut self, name: &str, entry: crate::lock::LockEntry) {
        if let Some(e) = self.lock.stages.get_mut(name) {
            *e = entry;
            return;
        }
        let mut at = self.lock.stages.len();
        let mine = self.rank.get(name).copied();
        while let (Some(mine), Some((prev, _))) = (mine, at.checked_sub(1).and_then(|k| self.lock.stages.get_index(k))) {
            match self.added.get(prev) {
                Some(&theirs) if theirs > mine => at -= 1,
                _ => break,
            }
        }
        self.lock.stages.shift_insert(at, name.to_string(), entry);
        if let Some(mine) = mine {
            self.added.insert(name.to_string(), mine);
        }
    }
}

fn lock_stamp(project: &Project) -> Option<(u64, std::time::SystemTime)> {
    let m = std::fs::metadata(project.root.join(crate::lock::FILE_NAME)).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// One stage, start to end, as a report (a panic becomes a failure: it must not leave a scheduler waiting
/// for a report that never comes).
fn run_reported(project: &Project, i: usize, opts: &Options, lock: &Mutex<Shared>, observer: &dyn Observer, ended: &dyn Fn()) -> StageReport {
    let stage = &project.pipeline.stages[i];
    let started = Instant::now();
    let capture = Capture::default();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_stage(project, stage, opts, lock, observer, &capture, ended)));
    let outcome = match ran {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
        Err(_) => Outcome::Failed("internal error while running the stage".into()),
    };
    if let Outcome::Failed(why) = &outcome {
        eprintln!("ERROR: failed to reproduce '{}': {why}", stage.name);
    }
    let report = StageReport {
        name: stage.name.clone(),
        outcome,
        seconds: started.elapsed().as_secs_f64(),
        exit_code: *capture.exit_code.lock().expect("capture poisoned"),
        attempts: capture.attempts.load(std::sync::atomic::Ordering::Relaxed),
        stdout: capture.stdout.lock().expect("capture poisoned").text(),
        stderr: capture.stderr.lock().expect("capture poisoned").text(),
    };
    observer.settled(&report);
    report
}

fn run_stage(project: &Project, stage: &Stage, opts: &Options, lock: &Mutex<Shared>, observer: &dyn Observer, capture: &Capture, ended: &dyn Fn()) -> Result<Outcome> {
    let locked = lock.lock().expect("lock poisoned").lock.stages.get(&stage.name).cloned();
    if stage.frozen {
        eprintln!("WARNING: stage: '{}' is frozen. Its dependencies are not going to be reproduced.", stage.name);
        say(opts.progress_to_stderr, &format!("Verifying outputs in frozen stage: '{}'", stage.name));
        for o in &stage.outs {
            if !project.abs(stage, &o.path).exists() {
                return Err(PipelineError::Invalid(format!("missing data '{}'", o.path)));
            }
        }
        return Ok(Outcome::Unchanged);
    }
    if opts.stop.interrupted() {
        return Ok(Outcome::Blocked(NOT_RUN.into()));
    }
    let changes = project.changes(stage, locked.as_ref())?;
    if changes.is_empty() && !opts.force {
        say(opts.progress_to_stderr, &format!("Stage '{}' didn't change, skipping", stage.name));
        return Ok(Outcome::Unchanged);
    }
    if opts.dry {
        say(opts.progress_to_stderr, &format!("Running stage '{}':", stage.name));
        for line in stage.cmd.lines() {
            say(opts.progress_to_stderr, &format!("> {line}"));
        }
        return Ok(Outcome::Due(changes));
    }
    for d in &stage.deps {
        if !project.abs(stage, d).exists() {
            return Err(PipelineError::Invalid(format!("dependency '{d}' does not exist")));
        }
    }
    // Inputs as they are now: the run cache's key.
    let inputs = project.entry_now(stage, stage.outs.iter().map(|o| HashEntry { path: o.path.clone(), md5: None, size: None, nfiles: None, isexec: false }).collect())?;
    let cacheable = !opts.no_run_cache && !opts.force && runcache::cacheable(stage);
    if cacheable {
        if let Some(entry) = runcache::lookup(project, &inputs)? {
            say(opts.progress_to_stderr, &format!("Stage '{}' is cached - skipping run, checking out outputs", stage.name));
            runcache::restore(project, stage, &entry)?;
            save_entry(project, lock, stage, entry, opts.progress_to_stderr)?;
            return Ok(Outcome::Restored);
        }
    }
    // Outputs are removed before the command runs (unless persisted), so a stage cannot pass by leaving
    // last run's files in place.
    for o in stage.outs.iter().filter(|o| !o.persist) {
        let abs = project.abs(stage, &o.path);
        if abs.exists() {
            fsutil::remove_path(&abs).map_err(|e| PipelineError::io(&abs, e))?;
        }
    }
    say(opts.progress_to_stderr, &format!("Running stage '{}':", stage.name));
    let env = observer.started(stage);
    match execute(project, stage, opts, lock, &env, capture, ended) {
        Ok(attempts) => {
            let outcome = Outcome::Ran { attempts };
            observer.finished(stage, &outcome, metrics_of(project, stage));
            Ok(outcome)
        }
        Err(e) => {
            observer.finished(stage, &Outcome::Failed(e.to_string()), Vec::new());
            Err(e)
        }
    }
}

/// Runs the command (with retries), then records the outputs, the run cache and the lock entry.
fn execute(project: &Project, stage: &Stage, opts: &Options, lock: &Mutex<Shared>, env: &[(String, String)], capture: &Capture, ended: &dyn Fn()) -> Result<u32> {
    let attempts = run_with_retries(project, stage, opts, env, capture)?;
    ended();
    let mut outs = Vec::new();
    let mut ignore = Vec::new();
    let run_cached = runcache::cacheable(stage) && !opts.no_run_cache;
    for o in &stage.outs {
        let abs = project.abs(stage, &o.path);
        if !abs.exists() {
            return Err(PipelineError::Invalid(format!("output '{}' does not exist", o.path)));
        }
        let rel = project.repo.rel(&abs);
        if o.cache {
            // Cached outputs stay out of git, as DVC arranges it: added to .gitignore with the lock entry.
            ignore.push(abs.clone());
        }
        // Uncached metrics and plots still go to the cache when the run is recorded, as DVC does, so that
        // the run cache can give them back.
        let (md5, size, nfiles, isexec) = if o.cache || run_cached {
            let built = orchard_data::add::build(&project.repo, &abs, &rel, false)?;
            (built.oid.value, built.size, built.nfiles, built.isexec)
        } else {
            let (oid, size, nfiles) = crate::project::hash_path(&project.repo, &abs)?
                .ok_or_else(|| PipelineError::Invalid(format!("output '{}' does not exist", o.path)))?;
            let exec = std::fs::metadata(&abs).map(|m| m.is_file() && fsutil::is_exec(&m)).unwrap_or(false);
            (oid.value, size, nfiles, exec)
        };
        outs.push(HashEntry { path: o.path.clone(), md5: Some(md5), size: Some(size), nfiles, isexec });
    }
    let entry = project.entry_now(stage, outs)?;
    if run_cached {
        if let Some((path, text)) = runcache::entry_file(project, &entry) {
            match &lock.lock().expect("lock poisoned").run_cache {
                Some(writer) => {
                    let _ = writer.send((path, text));
                }
                None => runcache::write(&path, &text)?,
            }
        }
    }
    lock.lock().expect("lock poisoned").ignore.extend(ignore);
    save_entry(project, lock, stage, entry, opts.progress_to_stderr)?;
    Ok(attempts)
}

/// The numbers in a stage's metrics files (JSON or YAML), flattened to dotted keys (`eval.acc`).
pub fn metrics_of(project: &Project, stage: &Stage) -> Vec<(String, f64)> {
    fn walk(prefix: &str, node: &orchard_yaml::Node, out: &mut Vec<(String, f64)>) {
        use orchard_yaml::Node;
        match node {
            Node::Int(i) => out.push((prefix.to_string(), *i as f64)),
            Node::Float(f) => out.push((prefix.to_string(), *f)),
            Node::Map(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for o in stage.outs.iter().filter(|o| o.kind == crate::spec::OutKind::Metric) {
        if let Ok(tree) = crate::spec::load_params_file(&project.abs(stage, &o.path)) {
            walk("", &tree, &mut out);
        }
    }
    out
}

fn save_entry(project: &Project, shared: &Mutex<Shared>, stage: &Stage, entry: crate::lock::LockEntry, to_stderr: bool) -> Result<()> {
    let mut guard = shared.lock().expect("lock poisoned");
    let s = &mut *guard;
    if s.lock.stages.get(&stage.name) == Some(&entry) {
        return Ok(());
    }
    if !project.root.join(crate::lock::FILE_NAME).exists() && s.unwritten.is_empty() {
        say(to_stderr, &format!("Generating lock file '{}'", crate::lock::FILE_NAME));
    }
    s.insert(&stage.name, entry);
    if !s.unwritten.contains(&stage.name) {
        s.unwritten.push(stage.name.clone());
    }
    say(to_stderr, &format!("Updating lock file '{}'\n", crate::lock::FILE_NAME));
    if s.next_write.is_some_and(|t| Instant::now() < t) {
        return Ok(());
    }
    write_lock(project, s)
}

/// Writes dvc.lock with the entries not yet written. Other processes (workers) update it too: one at a time,
/// under a file lock, each adding its entries to what is there.
fn write_lock(project: &Project, s: &mut Shared) -> Result<()> {
    if s.unwritten.is_empty() && s.ignore.is_empty() {
        return Ok(());
    }
    // The same lock covers the .gitignore files, which workers side by side may share.
    let _exclusive = FileLock::acquire(&project.root.join(".dvc").join("tmp").join("orchard-dvc-lock"))?;
    if !s.ignore.is_empty() {
        // An unreadable .gitignore leaves outputs visible to git; it must not keep dvc.lock from being written.
        if let Err(e) = project.repo.gitignore_all(&s.ignore) {
            eprintln!("WARNING: could not add outputs to .gitignore: {e}");
        }
        s.ignore.clear();
    }
    if s.unwritten.is_empty() {
        return Ok(());
    }
    // Workers (no throttle) always read it back: size and mtime can miss a same-size rewrite on a
    // filesystem with coarse timestamps.
    if s.throttle.is_none() || lock_stamp(project) != s.stamp {
        let mut mine = std::mem::replace(&mut s.lock, project.lock()?);
        for name in std::mem::take(&mut s.unwritten) {
            if let Some(e) = mine.stages.shift_remove(&name) {
                s.insert(&name, e);
            }
            s.unwritten.push(name);
        }
    }
    let text = s.lock.to_yaml_reusing(&mut s.rendered);
    fsutil::write_atomic(&project.root.join(crate::lock::FILE_NAME), text.as_bytes())?;
    s.stamp = lock_stamp(project);
    s.unwritten.clear();
    s.next_write = s.throttle.map(|d| Instant::now() + d);
    Ok(())
}

/// An exclusive `flock` on a file, released when dropped (or when the process dies, so a killed worker
/// never leaves it held).
struct FileLock {
    _held: std::fs::File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock> {
        use std::os::fd::AsRawFd;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
        }
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(|e| PipelineError::io(path, e))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared with the call.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(PipelineError::io(path, std::io::Error::last_os_error()));
        }
        Ok(FileLock { _held: f })
    }
}

fn run_with_retries(project: &Project, stage: &Stage, opts: &Options, env: &[(String, String)], capture: &Capture) -> Result<u32> {
    let total = stage.policy.retries + 1;
    let mut attempt = 1;
    loop {
        capture.attempts.store(attempt, std::sync::atomic::Ordering::Relaxed);
        match run_once(project, stage, opts, env, capture) {
            Ok(()) => return Ok(attempt),
            Err(e) if attempt < total && !opts.stop.interrupted() => {
                let warning = format!(
                    "WARNING: stage '{}' failed ({e}); retrying in {:.1}s (attempt {} of {total})",
                    stage.name,
                    stage.policy.retry_delay.as_secs_f64(),
                    attempt + 1
                );
                eprintln!("{warning}");
                capture.note(&warning);
                // In short naps, so that Ctrl-C during a long delay stops the stage at once.
                let until = Instant::now() + stage.policy.retry_delay;
                while !opts.stop.interrupted() && Instant::now() < until {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)));
                }
                if opts.stop.interrupted() {
                    return Err(PipelineError::Invalid("repro was interrupted".into()));
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn run_once(project: &Project, stage: &Stage, opts: &Options, env: &[(String, String)], capture: &Capture) -> Result<()> {
    let started = Instant::now();
    for line in stage.cmd.lines() {
        if opts.stop.interrupted() {
            return Err(PipelineError::Invalid(format!("interrupted before: {line}")));
        }
        say(opts.progress_to_stderr, &format!("> {line}"));
        *capture.exit_code.lock().expect("capture poisoned") = None;
        let mut cmd = Command::new(shell());
        cmd.arg("-c")
            .arg(&line)
            .current_dir(project.wdir(stage))
            .env("DVC_ROOT", &project.root)
            .env("DVC_STAGE", &stage.name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in opts.env.iter().chain(env) {
            cmd.env(k, v);
        }
        // Its own process group, so that a timeout stops everything the command started, not only the shell.
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            if opts.die_with_parent {
                // SAFETY: prctl is async-signal-safe; nothing is allocated between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        #[cfg(target_os = "linux")]
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
            }
        }
        let mut child = cmd.spawn().map_err(|e| PipelineError::Invalid(format!("failed to run: {e}")))?;
        let group = child.id() as libc::pid_t;
        opts.stop.enter(group);
        if opts.stop.interrupted() {
            // Interrupted between the look before the stage and now: this command stops too.
            signal_group(group, libc::SIGINT);
        }
        let status = supervise(&mut child, stage.policy.timeout, started, capture, opts.progress_to_stderr);
        opts.stop.leave(group);
        let status = status?;
        if opts.stop.interrupted() && !status.success() {
            return Err(PipelineError::Invalid(format!("interrupted: {line}")));
        }
        *capture.exit_code.lock().expect("capture poisoned") = status.code();
        if !status.success() {
            let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
            return Err(PipelineError::Invalid(format!("failed to run: {line}, exited with {code}")));
        }
    }
    Ok(())
}

/// How long a command's output is still read after it exits: a process it left behind (`daemon &`) may
/// hold the pipes open for ever.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Waits for a command while its output goes to the terminal as it comes and into the stage run's record,
/// all on the stage's own thread: one `poll` on the two pipes and a pidfd (readable when the child exits)
/// instead of a thread per stream, which cost more than a trivial command's own bookkeeping. Kills the
/// command's process group when `limit` passes.
fn supervise(child: &mut Child, limit: Option<Duration>, started: Instant, capture: &Capture, to_stderr: bool) -> Result<ExitStatus> {
    let failed = |e: std::io::Error| PipelineError::Invalid(format!("failed to run: {e}"));
    /// One of the command's output pipes: where what it reads is kept, and whether it is passed on to stdout.
    struct Stream<'a> {
        pipe: std::fs::File,
        keep: &'a Mutex<Kept>,
        to_stdout: bool,
    }
    let mut streams: Vec<Stream> = Vec::with_capacity(2);
    if let Some(p) = child.stdout.take() {
        streams.push(Stream { pipe: OwnedFd::from(p).into(), keep: &capture.stdout, to_stdout: !to_stderr });
    }
    if let Some(p) = child.stderr.take() {
        streams.push(Stream { pipe: OwnedFd::from(p).into(), keep: &capture.stderr, to_stdout: false });
    }
    let pidfd = pidfd_open(child.id());
    let mut status: Option<ExitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if status.is_none() {
            if let Some(s) = child.try_wait().map_err(failed)? {
                status = Some(s);
                exited_at = Some(Instant::now());
            }
        }
        if let Some(s) = status {
            if streams.is_empty() || exited_at.is_some_and(|t| t.elapsed() >= DRAIN_AFTER_EXIT) {
                return Ok(s);
            }
        }
        // How long to sleep in poll: until the time limit, the end of the drain, or (without a pidfd, on an
        // old kernel) a short look at the child again; without any of those, until something happens.
        let mut wait: Option<Duration> = None;
        let mut at_most = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        match (status, limit) {
            (Some(_), _) => at_most(DRAIN_AFTER_EXIT.saturating_sub(exited_at.map_or(Duration::ZERO, |t| t.elapsed()))),
            (None, Some(limit)) => {
                let left = limit.saturating_sub(started.elapsed());
                if left.is_zero() {
                    signal_group(child.id() as libc::pid_t, libc::SIGKILL);
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(PipelineError::Invalid(format!("timed out after {}s", limit.as_secs_f64())));
                }
                at_most(left);
            }
            (None, None) => {}
        }
        if status.is_none() && pidfd.is_none() {
            at_most(Duration::from_millis(10));
        }
        let mut fds: Vec<libc::pollfd> = streams.iter().map(|s| libc::pollfd { fd: s.pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
        if let (None, Some(p)) = (status, &pidfd) {
            fds.push(libc::pollfd { fd: p.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let timeout = wait.map_or(-1, |d| d.as_millis().clamp(1, i32::MAX as u128) as libc::c_int);
        // SAFETY: `fds` is a live, correctly sized array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(failed(e));
        }
        // Read what is ready; a stream at its end is closed. Back to front, so removing keeps the indices.
        for k in (0..streams.len()).rev() {
            if fds[k].revents == 0 {
                continue;
            }
            let ended = match streams[k].pipe.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    let Stream { keep, to_stdout, .. } = &streams[k];
                    if *to_stdout {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(&buf[..n]);
                        let _ = out.flush();
                    } else {
                        let _ = std::io::stderr().lock().write_all(&buf[..n]);
                    }
                    keep.lock().expect("capture poisoned").push(&buf[..n]);
                    false
                }
                Err(e) => e.kind() != std::io::ErrorKind::Interrupted,
            };
            if ended {
                streams.remove(k);
            }
        }
    }
}

/// A descriptor that becomes readable when the process exits (Linux 5.3 and later; None elsewhere, and
/// then the child is looked at every few milliseconds instead).
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a plain system call taking two integers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd >= 0 {
            // SAFETY: `fd` was just returned by the kernel and is owned by nothing else.
            return Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
    }
    let _ = pid;
    None
}

fn shell() -> &'static str {
    // DVC runs commands with $SHELL; sh when unset. Looked up once per process.
    static SHELL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SHELL.get_or_init(|| std::env::var("SHELL").ok().filter(|s| Path::new(s).is_file()).unwrap_or_else(|| "/bin/sh".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_frees_when_the_command_ends_but_dependants_wait_for_the_stage() {
        // a; b after a; c independent. One command at a time.
        let (order, up, selected) = (vec![0, 1, 2], vec![vec![], vec![0], vec![]], vec![true; 3]);
        let stop = Stop::new();
        let plan = Plan { order: &order, up: &up, selected: &selected, jobs: 1, stop: &stop };
        let mut s = Sched::new(3);
        assert_eq!(s.ready(&plan), vec![0]);
        assert_eq!(s.ready(&plan), Vec::<usize>::new(), "one command at a time");
        // a's command ended: its outputs are still being recorded, so b waits and c takes the slot.
        assert_eq!(s.command_ended(0, &plan), vec![2]);
        s.settled(0, false);
        assert_eq!(s.ready(&plan), Vec::<usize>::new(), "c holds the slot");
        // c settles without a separate end of command (restored from the run cache, say): the slot frees too.
        s.settled(2, false);
        assert_eq!(s.ready(&plan), vec![1]);
        s.settled(1, false);
        assert_eq!((s.running, s.in_flight), (0, 0));
    }

    #[test]
    fn a_failed_stage_starts_nothing_downstream() {
        let (order, up, selected) = (vec![0, 1], vec![vec![], vec![0]], vec![true; 2]);
        let stop = Stop::new();
        let plan = Plan { order: &order, up: &up, selected: &selected, jobs: 2, stop: &stop };
        let mut s = Sched::new(2);
        assert_eq!(s.ready(&plan), vec![0]);
        s.settled(0, true);
        assert_eq!(s.ready(&plan), Vec::<usize>::new());
        assert_eq!(s.in_flight, 0);
    }
}
