//! Pipeline runs and their stage runs, the queue workers lease stage runs from, and cron schedules.
//!
//! A stage run is leased by one worker at a time: the lease is a deadline (`lease_until_ms`) the worker
//! pushes forward with heartbeats. A worker that dies stops renewing it, and once it has passed the stage run
//! can be leased again. Leasing is one statement: on PostgreSQL the candidate row is locked with
//! `FOR UPDATE SKIP LOCKED`, so concurrent workers pick different rows without waiting on each other; SQLite
//! has one writer at a time, so the same `UPDATE … RETURNING` is atomic there by construction.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use crate::values::get;
use crate::backend::Backend;
use crate::error::{Result, StoreError};
use crate::Store;

pub const QUEUED: &str = "QUEUED";
pub const PENDING: &str = "PENDING";
pub const RUNNING: &str = "RUNNING";
pub const SUCCEEDED: &str = "SUCCEEDED";
pub const FAILED: &str = "FAILED";
pub const BLOCKED: &str = "BLOCKED";
pub const RESTORED: &str = "RESTORED";
pub const UNCHANGED: &str = "UNCHANGED";

/// Stage outcomes that let the stages downstream go ahead.
const DONE_OK: &str = "('SUCCEEDED', 'RESTORED', 'UNCHANGED')";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineRun {
    pub run_id: String,
    /// The repository root the pipeline runs in.
    pub project: String,
    pub targets: Vec<String>,
    pub overrides: Vec<String>,
    /// The repro options as the domain layer encodes them (JSON).
    pub options: String,
    pub status: String,
    pub tracking_run_id: Option<String>,
    /// The schedule that queued it, if one did.
    pub schedule: Option<String>,
    pub created_ms: i64,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRun {
    pub run_id: String,
    pub stage: String,
    pub position: i64,
    pub status: String,
    pub attempts: i64,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub tracking_run_id: Option<String>,
    pub worker: Option<String>,
    pub lease_until_ms: Option<i64>,
}

/// A stage of a new pipeline run: its name and the stages of the same run it waits for.
#[derive(Clone, Debug)]
pub struct NewStageRun {
    pub stage: String,
    pub upstream: Vec<String>,
}

/// What became of a stage run.
#[derive(Clone, Debug, Default)]
pub struct StageResult {
    pub status: String,
    pub attempts: i64,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: i64,
    pub stdout: String,
    pub stderr: String,
    pub tracking_run_id: Option<String>,
}

/// Something that happened to a stage run of a pipeline run executed in this process.
#[derive(Clone, Debug)]
pub enum StageEvent {
    Started { stage: String, at_ms: i64 },
    Settled { stage: String, result: StageResult },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    pub project: String,
    pub targets: Vec<String>,
    pub overrides: Vec<String>,
    pub enabled: bool,
    /// When it fires next (ms since the epoch).
    pub next_ms: i64,
    pub created_ms: i64,
}

const RUN_COLUMNS: &str = "run_id, project, targets, overrides, options, status, tracking_run_id, schedule, \
    created_ms, start_ms, end_ms";
const STAGE_COLUMNS: &str = "run_id, stage, position, status, attempts, exit_code, error, start_ms, end_ms, \
    stdout, stderr, tracking_run_id, worker, lease_until_ms";

fn list_from_json(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn list_to_json(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn run_from_row(row: &AnyRow) -> Result<PipelineRun> {
    Ok(PipelineRun {
        run_id: get(row, "run_id")?,
        project: get(row, "project")?,
        targets: list_from_json(&get::<String>(row, "targets")?),
        overrides: list_from_json(&get::<String>(row, "overrides")?),
        options: get(row, "options")?,
        status: get(row, "status")?,
        tracking_run_id: get(row, "tracking_run_id")?,
        schedule: get(row, "schedule")?,
        created_ms: get(row, "created_ms")?,
        start_ms: get(row, "start_ms")?,
        end_ms: get(row, "end_ms")?,
    })
}

fn stage_from_row(row: &AnyRow) -> Result<StageRun> {
    Ok(StageRun {
        run_id: get(row, "run_id")?,
        stage: get(row, "stage")?,
        position: get::<i64>(row, "position").or_else(|_| get::<i32>(row, "position").map(i64::from))?,
        status: get(row, "status")?,
        attempts: get::<i64>(row, "attempts").or_else(|_| get::<i32>(row, "attempts").map(i64::from))?,
        exit_code: get::<Option<i64>>(row, "exit_code")
            .or_else(|_| get::<Option<i32>>(row, "exit_code").map(|c| c.map(i64::from)))?,
        error: get(row, "error")?,
        start_ms: get(row, "start_ms")?,
        end_ms: get(row, "end_ms")?,
        stdout: get(row, "stdout")?,
        stderr: get(row, "stderr")?,
        tracking_run_id: get(row, "tracking_run_id")?,
        worker: get(row, "worker")?,
        lease_until_ms: get(row, "lease_until_ms")?,
    })
}

fn schedule_from_row(row: &AnyRow) -> Result<Schedule> {
    Ok(Schedule {
        name: get(row, "name")?,
        cron: get(row, "cron")?,
        project: get(row, "project")?,
        targets: list_from_json(&get::<String>(row, "targets")?),
        overrides: list_from_json(&get::<String>(row, "overrides")?),
        enabled: get::<i64>(row, "enabled").or_else(|_| get::<i32>(row, "enabled").map(i64::from))? != 0,
        next_ms: get(row, "next_ms")?,
        created_ms: get(row, "created_ms")?,
    })
}

impl Store {
    /// Records a new pipeline run and its stage runs (all `PENDING`) in one transaction.
    pub async fn create_pipeline_run(&self, run: &PipelineRun, stages: &[NewStageRun]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        // Runs created QUEUED are for workers; the others run in the process that records them, and no
        // worker may lease their stages.
        let mode = if run.status == QUEUED { "queued" } else { "local" };
        let inserted = sqlx::query(&format!(
            "INSERT INTO pipeline_runs ({RUN_COLUMNS}, mode) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&run.run_id)
        .bind(&run.project)
        .bind(list_to_json(&run.targets))
        .bind(list_to_json(&run.overrides))
        .bind(&run.options)
        .bind(&run.status)
        .bind(&run.tracking_run_id)
        .bind(&run.schedule)
        .bind(run.created_ms)
        .bind(run.start_ms)
        .bind(run.end_ms)
        .bind(mode)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(crate::experiments::unique_to_exists(e, &format!("pipeline run {}", run.run_id)));
        }
        for (position, s) in stages.iter().enumerate() {
            sqlx::query("INSERT INTO stage_runs (run_id, stage, position, status) VALUES ($1, $2, $3, $4)")
                .bind(&run.run_id)
                .bind(&s.stage)
                .bind(position as i64)
                .bind(PENDING)
                .execute(&mut *tx)
                .await?;
        }
        for s in stages {
            for up in &s.upstream {
                sqlx::query("INSERT INTO stage_run_deps (run_id, stage, upstream) VALUES ($1, $2, $3)")
                    .bind(&run.run_id)
                    .bind(&s.stage)
                    .bind(up)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_pipeline_run(&self, run_id: &str) -> Result<Option<(PipelineRun, Vec<StageRun>)>> {
        let Some(row) = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE run_id = $1"))
            .bind(run_id)
            .fetch_optional(self.reader())
            .await?
        else {
            return Ok(None);
        };
        let run = run_from_row(&row)?;
        let stages = sqlx::query(&format!("SELECT {STAGE_COLUMNS} FROM stage_runs WHERE run_id = $1 ORDER BY position"))
            .bind(run_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(stage_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((run, stages)))
    }

    /// The newest pipeline runs first (a run id prefix, like git's, finds one run).
    pub async fn list_pipeline_runs(&self, max: i64, id_prefix: Option<&str>) -> Result<Vec<PipelineRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE $1 = '' OR run_id LIKE $2 \
             ORDER BY created_ms DESC, run_id LIMIT $3"
        ))
        .bind(id_prefix.unwrap_or(""))
        .bind(format!("{}%", id_prefix.unwrap_or("").replace(['%', '_'], "")))
        .bind(max)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    pub async fn set_pipeline_run_status(&self, run_id: &str, status: &str, at_ms: i64) -> Result<()> {
        let done = matches!(status, SUCCEEDED | FAILED);
        sqlx::query(
            "UPDATE pipeline_runs SET status = $1, start_ms = COALESCE(start_ms, $2), \
             end_ms = CASE WHEN $3 = 1 THEN $2 ELSE end_ms END WHERE run_id = $4",
        )
        .bind(status)
        .bind(at_ms)
        .bind(i64::from(done))
        .bind(run_id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn set_pipeline_tracking_run(&self, run_id: &str, tracking_run_id: &str) -> Result<()> {
        sqlx::query("UPDATE pipeline_runs SET tracking_run_id = $1 WHERE run_id = $2")
            .bind(tracking_run_id)
            .bind(run_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Records what became of a stage run. With `worker`, only if that worker still holds the lease (a worker
    /// that lost its lease must not overwrite the result of the one that took over). Stages waiting on a
    /// failed one are marked `BLOCKED`, and when nothing is left to run the pipeline run is settled. Returns
    /// the pipeline run's status afterwards, or None when the result was not recorded: exactly one caller
    /// sees the run turn `SUCCEEDED` or `FAILED` (the one whose stage was the last).
    pub async fn finish_stage_run(&self, run_id: &str, stage: &str, worker: Option<&str>, r: &StageResult) -> Result<Option<String>> {
        let mut tx = self.writer().begin().await?;
        if !apply_result(&mut tx, run_id, stage, worker, r).await? {
            return Ok(None);
        }
        settle(&mut tx, run_id, r.end_ms).await?;
        let status: String = sqlx::query("SELECT status FROM pipeline_runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| sqlx::Row::try_get(&row, "status"))?;
        tx.commit().await?;
        Ok(Some(status))
    }

    /// Records what happened to the stage runs of a pipeline run executed in this process, in order and in
    /// one transaction: a recorder that falls behind catches up with one commit, however many stages
    /// settled meanwhile. The run is settled when nothing is left to run.
    pub async fn record_stage_events(&self, run_id: &str, events: &[StageEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let mut last_end = None;
        for e in events {
            match e {
                // No lease: nobody else runs the stages of a run executed here.
                StageEvent::Started { stage, at_ms } => {
                    sqlx::query("UPDATE stage_runs SET status = $1, start_ms = $2 WHERE run_id = $3 AND stage = $4")
                        .bind(RUNNING)
                        .bind(at_ms)
                        .bind(run_id)
                        .bind(stage)
                        .execute(&mut *tx)
                        .await?;
                }
                StageEvent::Settled { stage, result } => {
                    apply_result(&mut tx, run_id, stage, None, result).await?;
                    last_end = Some(result.end_ms);
                }
            }
        }
        if let Some(at) = last_end {
            settle(&mut tx, run_id, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Leases the next stage run that is ready (every upstream stage of its run done) of a queued pipeline run,
    /// oldest first, and only once every older queued run of the same project has finished (they share its
    /// workspace: params.yaml, outputs): one that is `PENDING`, or `RUNNING` under a lease that has expired (its worker died). Returns
    /// the pipeline run and the leased stage run, now `RUNNING` under `worker` until `lease_until_ms`.
    pub async fn lease_stage_run(&self, worker: &str, now_ms: i64, lease_until_ms: i64) -> Result<Option<(PipelineRun, StageRun)>> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE OF s SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.writer().begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE stage_runs SET status = 'RUNNING', worker = $1, lease_until_ms = $2, start_ms = $3, \
             attempts = 0, error = NULL, exit_code = NULL \
             WHERE (run_id, stage) IN (SELECT s.run_id, s.stage FROM stage_runs s \
               JOIN pipeline_runs p ON p.run_id = s.run_id \
               WHERE p.mode = 'queued' \
               AND (s.status = 'PENDING' OR (s.status = 'RUNNING' AND s.lease_until_ms < $3)) \
               AND NOT EXISTS (SELECT 1 FROM pipeline_runs q WHERE q.project = p.project AND q.mode = 'queued' \
                 AND q.status IN ('QUEUED', 'RUNNING') \
                 AND (q.created_ms < p.created_ms OR (q.created_ms = p.created_ms AND q.run_id < p.run_id))) \
               AND NOT EXISTS (SELECT 1 FROM stage_run_deps d JOIN stage_runs u \
                 ON u.run_id = d.run_id AND u.stage = d.upstream \
                 WHERE d.run_id = s.run_id AND d.stage = s.stage AND u.status NOT IN {DONE_OK}) \
               ORDER BY p.created_ms, s.run_id, s.position LIMIT 1 {lock}) \
             RETURNING {STAGE_COLUMNS}"
        ))
        .bind(worker)
        .bind(lease_until_ms)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stage = stage_from_row(&row)?;
        sqlx::query(
            "UPDATE pipeline_runs SET status = 'RUNNING', start_ms = COALESCE(start_ms, $1) \
             WHERE run_id = $2 AND status = 'QUEUED'",
        )
        .bind(now_ms)
        .bind(&stage.run_id)
        .execute(&mut *tx)
        .await?;
        let run = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE run_id = $1"))
            .bind(&stage.run_id)
            .fetch_one(&mut *tx)
            .await?;
        let run = run_from_row(&run)?;
        tx.commit().await?;
        Ok(Some((run, stage)))
    }

    /// Pushes a lease forward; false when the worker no longer holds it.
    pub async fn renew_lease(&self, run_id: &str, stage: &str, worker: &str, lease_until_ms: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE stage_runs SET lease_until_ms = $1 WHERE run_id = $2 AND stage = $3 AND worker = $4 \
             AND status = 'RUNNING'",
        )
        .bind(lease_until_ms)
        .bind(run_id)
        .bind(stage)
        .bind(worker)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Creates or replaces a schedule.
    pub async fn put_schedule(&self, s: &Schedule) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM pipeline_schedules WHERE name = $1").bind(&s.name).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO pipeline_schedules (name, cron, project, targets, overrides, enabled, next_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.name)
        .bind(&s.cron)
        .bind(&s.project)
        .bind(list_to_json(&s.targets))
        .bind(list_to_json(&s.overrides))
        .bind(i64::from(s.enabled))
        .bind(s.next_ms)
        .bind(s.created_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_schedules(&self) -> Result<Vec<Schedule>> {
        sqlx::query("SELECT * FROM pipeline_schedules ORDER BY name")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(schedule_from_row)
            .collect()
    }

    pub async fn delete_schedule(&self, name: &str) -> Result<()> {
        let n = sqlx::query("DELETE FROM pipeline_schedules WHERE name = $1")
            .bind(name)
            .execute(self.writer())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("schedule '{name}'")));
        }
        Ok(())
    }

    /// Moves a schedule's next firing from `due_ms` to `next_ms`; false when another server already did (so
    /// that of several servers on one database, exactly one queues each firing).
    pub async fn advance_schedule(&self, name: &str, due_ms: i64, next_ms: i64) -> Result<bool> {
        let n = sqlx::query("UPDATE pipeline_schedules SET next_ms = $1 WHERE name = $2 AND next_ms = $3")
            .bind(next_ms)
            .bind(name)
            .bind(due_ms)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(n == 1)
    }
}

/// Writes a stage run's result (with `worker`: only while that worker holds it) and blocks, transitively,
/// the waiting stages downstream of a failure. Returns whether the result was written.
async fn apply_result(tx: &mut sqlx::Transaction<'_, sqlx::Any>, run_id: &str, stage: &str, worker: Option<&str>, r: &StageResult) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE stage_runs SET status = $1, attempts = $2, exit_code = $3, error = $4, \
         start_ms = COALESCE($5, start_ms), end_ms = $6, stdout = $7, stderr = $8, \
         tracking_run_id = COALESCE($9, tracking_run_id), lease_until_ms = NULL \
         WHERE run_id = $10 AND stage = $11 AND ($12 = '' OR (worker = $12 AND status = 'RUNNING'))",
    )
    .bind(&r.status)
    .bind(r.attempts)
    .bind(r.exit_code)
    .bind(&r.error)
    .bind(r.start_ms)
    .bind(r.end_ms)
    .bind(&r.stdout)
    .bind(&r.stderr)
    .bind(&r.tracking_run_id)
    .bind(run_id)
    .bind(stage)
    .bind(worker.unwrap_or(""))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    // Blocking is transitive: repeat until no waiting stage has a failed or blocked upstream. Only a
    // failure can block anything (the scan is per waiting stage: not worth paying after every success).
    if r.status == FAILED || r.status == BLOCKED {
        loop {
            let blocked = sqlx::query(
                "UPDATE stage_runs SET status = 'BLOCKED', end_ms = $1, error = 'an upstream stage failed' \
                 WHERE run_id = $2 AND status = 'PENDING' AND EXISTS (SELECT 1 FROM stage_run_deps d \
                 JOIN stage_runs u ON u.run_id = d.run_id AND u.stage = d.upstream \
                 WHERE d.run_id = stage_runs.run_id AND d.stage = stage_runs.stage AND u.status IN ('FAILED', 'BLOCKED'))",
            )
            .bind(r.end_ms)
            .bind(run_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if blocked == 0 {
                break;
            }
        }
    }
    Ok(true)
}

/// Marks the pipeline run finished once none of its stage runs is waiting or running.
async fn settle(tx: &mut sqlx::Transaction<'_, sqlx::Any>, run_id: &str, at_ms: i64) -> Result<()> {
    sqlx::query(
        "UPDATE pipeline_runs SET end_ms = $1, status = CASE WHEN EXISTS (SELECT 1 FROM stage_runs x \
         WHERE x.run_id = $2 AND x.status IN ('FAILED', 'BLOCKED')) THEN 'FAILED' ELSE 'SUCCEEDED' END \
         WHERE run_id = $2 AND status IN ('QUEUED', 'RUNNING') AND NOT EXISTS (SELECT 1 FROM stage_runs y \
         WHERE y.run_id = $2 AND y.status IN ('PENDING', 'RUNNING'))",
    )
    .bind(at_ms)
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
