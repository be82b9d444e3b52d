//! The queue `orchard worker`s lease stage runs from: a lease, its heartbeats, and the result its holder reports.

use std::future::Future;

use crate::backend::Backend;
use crate::error::Result;
use crate::sql::{exec, statement};
use crate::values::get;
use crate::Store;

use super::model::*;
use super::transitions::{apply_result, settle};

/// The queue `orchard worker`s lease stage runs from: a lease, its heartbeats, and the result its holder reports.
pub trait StageQueue {
    fn lease_stage_run(&self, worker: &str, now_ms: i64, lease_until_ms: i64) -> impl Future<Output = Result<Option<(PipelineRun, StageRun)>>> + Send;
    fn renew_lease(&self, run_id: &str, stage: &str, worker: &str, lease_until_ms: i64) -> impl Future<Output = Result<bool>> + Send;
    fn finish_stage_run(&self, run_id: &str, stage: &str, worker: Option<&str>, r: &StageResult) -> impl Future<Output = Result<Option<String>>> + Send;
}

impl StageQueue for Store {
    async fn lease_stage_run(&self, worker: &str, now_ms: i64, lease_until_ms: i64) -> Result<Option<(PipelineRun, StageRun)>> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE OF s SKIP LOCKED",
            Backend::Sqlite => "",
        };
        self.write(async |tx| {
            let lease = format!(
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
            );
            let args = [worker.into(), lease_until_ms.into(), now_ms.into()];
            let Some(row) = statement(&lease, &args).fetch_optional(&mut **tx).await? else {
                return Ok(None);
            };
            let stage = stage_from_row(&row)?;
            exec(
                &mut **tx,
                "UPDATE pipeline_runs SET status = 'RUNNING', start_ms = COALESCE(start_ms, $1) \
                 WHERE run_id = $2 AND status = 'QUEUED'",
                &[now_ms.into(), (&stage.run_id).into()],
            )
            .await?;
            let run = statement(&run_by_id(), &[(&stage.run_id).into()]).fetch_one(&mut **tx).await?;
            Ok(Some((run_from_row(&run)?, stage)))
        })
        .await
    }

    async fn renew_lease(&self, run_id: &str, stage: &str, worker: &str, lease_until_ms: i64) -> Result<bool> {
        let n = exec(
            self.writer(),
            "UPDATE stage_runs SET lease_until_ms = $1 WHERE run_id = $2 AND stage = $3 AND worker = $4 \
             AND status = 'RUNNING'",
            &[lease_until_ms.into(), run_id.into(), stage.into(), worker.into()],
        )
        .await?;
        Ok(n == 1)
    }

    async fn finish_stage_run(&self, run_id: &str, stage: &str, worker: Option<&str>, r: &StageResult) -> Result<Option<String>> {
        self.write(async |tx| {
            if !apply_result(tx, run_id, stage, worker, r).await? {
                return Ok(None);
            }
            settle(tx, run_id, r.end_ms).await?;
            let status = "SELECT status FROM pipeline_runs WHERE run_id = $1";
            let row = statement(status, &[run_id.into()]).fetch_one(&mut **tx).await?;
            Ok(Some(get(&row, "status")?))
        })
        .await
    }
}
