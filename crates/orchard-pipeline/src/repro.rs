//! `repro`: runs the stages whose command, dependencies, tracked params or outputs changed, upstream first,
//! independent stages side by side (up to `jobs`), restoring outputs from the run cache when a stage was
//! already run with the same inputs. A failed stage stops the stages that depend on it; the others go on,
//! and the next `repro` resumes from it (every success is in `dvc.lock` as soon as it is done).

use std::sync::{mpsc, Mutex};
use std::time::Instant;

use orchard_data::fsutil;

use crate::control::{say, Options, Stop, NOT_RUN};
use crate::error::{PipelineError, Result};
use crate::lock::HashEntry;
use crate::lockfile::{save_entry, write_lock, CloseRunCache, Shared, LOCK_WRITE_EVERY};
use crate::outcome::{Capture, Outcome, Report, StageReport};
use crate::project::Project;
use crate::runcache;
use crate::spec::Stage;
use crate::supervise::run_with_retries;

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
        if let Ok(tree) = project.params.load(&project.abs(stage, &o.path)) {
            walk("", &tree, &mut out);
        }
    }
    out
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
