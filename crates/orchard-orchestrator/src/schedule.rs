//! Cron schedules: each names a project, targets and overrides; `orchard server` queues a pipeline run of it
//! whenever it falls due, for workers to run. Expressions are standard five-field cron (`0 3 * * *`), or six
//! with seconds first; times are UTC. Of several servers on one database, exactly one queues each firing
//! (the store moves `next_ms` forward with a compare-and-set).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use orchard_store::pipelines::{Schedule, Schedules};
use orchard_store::{now_ms, Store};
use tokio::runtime::Handle;

use crate::{OrchestratorError, Result, RunOptions};

fn parse(expr: &str) -> Result<croner::Cron> {
    croner::Cron::new(expr)
        .with_seconds_optional()
        .parse()
        .map_err(|e| OrchestratorError::Invalid(format!("invalid cron expression '{expr}': {e}")))
}

/// The first time after `after_ms` that the expression matches (ms since the epoch, UTC).
pub fn next_after(expr: &str, after_ms: i64) -> Result<i64> {
    let cron = parse(expr)?;
    let after = Utc
        .timestamp_millis_opt(after_ms)
        .single()
        .ok_or_else(|| OrchestratorError::Invalid(format!("time out of range: {after_ms}")))?;
    let next = cron
        .find_next_occurrence(&after, false)
        .map_err(|e| OrchestratorError::Invalid(format!("cron expression '{expr}' never fires: {e}")))?;
    Ok(next.timestamp_millis())
}

/// Creates or replaces a schedule, checking the expression and the project now rather than at 3 a.m.
pub fn add(rt: &Handle, store: &impl Schedules, name: &str, cron: &str, project: &Path, targets: &[String], overrides: &[String]) -> Result<Schedule> {
    if name.is_empty() {
        return Err(OrchestratorError::Invalid("a schedule needs a name".into()));
    }
    let root: PathBuf = orchard_data::Repo::find(project)?.root;
    let p = orchard_pipeline::Project::open(&root)?;
    p.plan(targets, false)?;
    let now = now_ms();
    let s = Schedule {
        name: name.to_string(),
        cron: cron.to_string(),
        project: root.display().to_string(),
        targets: targets.to_vec(),
        overrides: overrides.to_vec(),
        enabled: true,
        next_ms: next_after(cron, now)?,
        created_ms: now,
    };
    rt.block_on(store.put_schedule(&s))?;
    Ok(s)
}

/// Queues a run of every schedule that is due; returns the pipeline runs queued. Blocking: call it from a
/// thread that may block (the server runs it with `spawn_blocking`).
pub fn fire_due(rt: &Handle, store: &Store, now: i64) -> Result<Vec<String>> {
    let mut queued = Vec::new();
    for s in rt.block_on(store.list_schedules())? {
        if !s.enabled || s.next_ms > now {
            continue;
        }
        // A server that was down for a while queues one run, not one per missed firing.
        let next = match next_after(&s.cron, now) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(schedule = %s.name, error = %e, "schedule skipped");
                continue;
            }
        };
        if !rt.block_on(store.advance_schedule(&s.name, s.next_ms, next))? {
            continue; // another server queued this firing
        }
        match crate::queue::enqueue(rt, store, Path::new(&s.project), &s.targets, &s.overrides, &RunOptions::new(), Some(&s.name), None) {
            Ok((run, n)) => {
                tracing::info!(schedule = %s.name, run = %run.run_id, stages = n, "scheduled pipeline run queued");
                queued.push(run.run_id);
            }
            Err(e) => tracing::warn!(schedule = %s.name, error = %e, "could not queue the scheduled run"),
        }
    }
    Ok(queued)
}

/// The server's scheduler: looks for due schedules every second until the task is dropped.
pub async fn run(store: Store) {
    let rt = Handle::current();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let (rt, store) = (rt.clone(), store.clone());
        match tokio::task::spawn_blocking(move || fire_due(&rt, &store, now_ms())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "schedules could not be read"),
            Err(e) => tracing::warn!(error = %e, "the scheduler failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_firings() {
        // 2026-12-01T00:00:00Z
        let t = 1_796_083_200_000;
        assert_eq!(next_after("0 3 * * *", t).unwrap(), t + 3 * 3_600_000);
        assert_eq!(next_after("*/15 * * * *", t + 1).unwrap(), t + 15 * 60_000);
        // Six fields: seconds first.
        assert_eq!(next_after("*/10 * * * * *", t).unwrap(), t + 10_000);
        assert!(next_after("61 * * * *", t).is_err());
        assert!(next_after("not cron", t).is_err());
    }
}
