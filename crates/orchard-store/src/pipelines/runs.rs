//! The record of pipeline runs and their stage runs, as the process that runs them (or a reader) sees it.

use std::future::Future;

use crate::error::Result;
use crate::Store;

use super::model::*;
use super::transitions::{apply_result, settle};

/// The record of pipeline runs and their stage runs, as the process that runs them (or a reader) sees it.
pub trait PipelineRuns {
    fn create_pipeline_run(&self, run: &PipelineRun, stages: &[NewStageRun]) -> impl Future<Output = Result<()>> + Send;
    fn get_pipeline_run(&self, run_id: &str) -> impl Future<Output = Result<Option<(PipelineRun, Vec<StageRun>)>>> + Send;
    fn list_pipeline_runs(&self, max: i64, id_prefix: Option<&str>) -> impl Future<Output = Result<Vec<PipelineRun>>> + Send;
    fn set_pipeline_run_status(&self, run_id: &str, status: &str, at_ms: i64) -> impl Future<Output = Result<()>> + Send;
    fn set_pipeline_tracking_run(&self, run_id: &str, tracking_run_id: &str) -> impl Future<Output = Result<()>> + Send;
    fn record_stage_events(&self, run_id: &str, events: &[StageEvent]) -> impl Future<Output = Result<()>> + Send;
}

impl PipelineRuns for Store {
    async fn create_pipeline_run(&self, run: &PipelineRun, stages: &[NewStageRun]) -> Result<()> {
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

    async fn get_pipeline_run(&self, run_id: &str) -> Result<Option<(PipelineRun, Vec<StageRun>)>> {
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

    async fn list_pipeline_runs(&self, max: i64, id_prefix: Option<&str>) -> Result<Vec<PipelineRun>> {
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

    async fn set_pipeline_run_status(&self, run_id: &str, status: &str, at_ms: i64) -> Result<()> {
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

    async fn set_pipeline_tracking_run(&self, run_id: &str, tracking_run_id: &str) -> Result<()> {
        sqlx::query("UPDATE pipeline_runs SET tracking_run_id = $1 WHERE run_id = $2")
            .bind(tracking_run_id)
            .bind(run_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn record_stage_events(&self, run_id: &str, events: &[StageEvent]) -> Result<()> {
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
}
