//! The record of pipeline runs and their stage runs, as the process that runs them (or a reader) sees it.

use std::future::Future;

use crate::error::Result;
use crate::experiments::unique_to_exists;
use crate::sql::{exec, statement};
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
        // Runs created QUEUED are for workers; the others run in the process that records them, and no
        // worker may lease their stages.
        let mode = if run.status == QUEUED { "queued" } else { "local" };
        self.write(async |tx| {
            exec(
                &mut **tx,
                &format!(
                    "INSERT INTO pipeline_runs ({RUN_COLUMNS}, mode) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ),
                &[
                    (&run.run_id).into(),
                    (&run.project).into(),
                    list_to_json(&run.targets).into(),
                    list_to_json(&run.overrides).into(),
                    (&run.options).into(),
                    (&run.status).into(),
                    run.tracking_run_id.as_deref().into(),
                    run.schedule.as_deref().into(),
                    run.created_ms.into(),
                    run.start_ms.into(),
                    run.end_ms.into(),
                    mode.into(),
                ],
            )
            .await
            .map_err(|e| unique_to_exists(e, &format!("pipeline run {}", run.run_id)))?;
            let stage_run = "INSERT INTO stage_runs (run_id, stage, position, status) VALUES ($1, $2, $3, $4)";
            let dependency = "INSERT INTO stage_run_deps (run_id, stage, upstream) VALUES ($1, $2, $3)";
            for (position, s) in stages.iter().enumerate() {
                let args = [(&run.run_id).into(), (&s.stage).into(), (position as i64).into(), PENDING.into()];
                exec(&mut **tx, stage_run, &args).await?;
            }
            for s in stages {
                for up in &s.upstream {
                    exec(&mut **tx, dependency, &[(&run.run_id).into(), (&s.stage).into(), up.into()]).await?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn get_pipeline_run(&self, run_id: &str) -> Result<Option<(PipelineRun, Vec<StageRun>)>> {
        let Some(row) = statement(&run_by_id(), &[run_id.into()]).fetch_optional(self.reader()).await? else {
            return Ok(None);
        };
        let run = run_from_row(&row)?;
        let stages = format!("SELECT {STAGE_COLUMNS} FROM stage_runs WHERE run_id = $1 ORDER BY position");
        let stages = statement(&stages, &[run_id.into()]).fetch_all(self.reader()).await?;
        Ok(Some((run, stages.iter().map(stage_from_row).collect::<Result<_>>()?)))
    }

    async fn list_pipeline_runs(&self, max: i64, id_prefix: Option<&str>) -> Result<Vec<PipelineRun>> {
        let prefix = id_prefix.unwrap_or("");
        let rows = statement(
            &format!(
                "SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE $1 = '' OR run_id LIKE $2 \
                 ORDER BY created_ms DESC, run_id LIMIT $3"
            ),
            &[prefix.into(), format!("{}%", prefix.replace(['%', '_'], "")).into(), max.into()],
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn set_pipeline_run_status(&self, run_id: &str, status: &str, at_ms: i64) -> Result<()> {
        let done = matches!(status, SUCCEEDED | FAILED);
        exec(
            self.writer(),
            "UPDATE pipeline_runs SET status = $1, start_ms = COALESCE(start_ms, $2), \
             end_ms = CASE WHEN $3 = 1 THEN $2 ELSE end_ms END WHERE run_id = $4",
            &[status.into(), at_ms.into(), done.into(), run_id.into()],
        )
        .await?;
        Ok(())
    }

    async fn set_pipeline_tracking_run(&self, run_id: &str, tracking_run_id: &str) -> Result<()> {
        let text = "UPDATE pipeline_runs SET tracking_run_id = $1 WHERE run_id = $2";
        exec(self.writer(), text, &[tracking_run_id.into(), run_id.into()]).await?;
        Ok(())
    }

    async fn record_stage_events(&self, run_id: &str, events: &[StageEvent]) -> Result<()> {
        self.write(async |tx| {
            let mut last_end = None;
            for e in events {
                match e {
                    // No lease: nobody else runs the stages of a run executed here.
                    StageEvent::Started { stage, at_ms } => {
                        exec(
                            &mut **tx,
                            "UPDATE stage_runs SET status = $1, start_ms = $2 WHERE run_id = $3 AND stage = $4",
                            &[RUNNING.into(), (*at_ms).into(), run_id.into(), stage.into()],
                        )
                        .await?;
                    }
                    StageEvent::Settled { stage, result } => {
                        apply_result(tx, run_id, stage, None, result).await?;
                        last_end = Some(result.end_ms);
                    }
                }
            }
            if let Some(at) = last_end {
                settle(tx, run_id, at).await?;
            }
            Ok(())
        })
        .await
    }
}
