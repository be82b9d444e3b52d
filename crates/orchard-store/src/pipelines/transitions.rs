//! What a stage run's result does to its pipeline run: the stages downstream of a failure are blocked, and
//! the run is settled once nothing is left waiting or running. Shared by the runs recorded here and the
//! results workers report.

use crate::error::Result;
use crate::sql::{exec, Tx};

use super::model::{StageResult, BLOCKED, FAILED};

/// Writes a stage run's result (with `worker`: only while that worker holds it) and blocks, transitively,
/// the waiting stages downstream of a failure. Returns whether the result was written.
pub(super) async fn apply_result(
    tx: &mut Tx<'_>,
    run_id: &str,
    stage: &str,
    worker: Option<&str>,
    r: &StageResult,
) -> Result<bool> {
    let updated = exec(
        &mut **tx,
        "UPDATE stage_runs SET status = $1, attempts = $2, exit_code = $3, error = $4, \
         start_ms = COALESCE($5, start_ms), end_ms = $6, stdout = $7, stderr = $8, \
         tracking_run_id = COALESCE($9, tracking_run_id), lease_until_ms = NULL \
         WHERE run_id = $10 AND stage = $11 AND ($12 = '' OR (worker = $12 AND status = 'RUNNING'))",
        &[
            (&r.status).into(),
            r.attempts.into(),
            r.exit_code.into(),
            r.error.as_deref().into(),
            r.start_ms.into(),
            r.end_ms.into(),
            (&r.stdout).into(),
            (&r.stderr).into(),
            r.tracking_run_id.as_deref().into(),
            run_id.into(),
            stage.into(),
            worker.unwrap_or("").into(),
        ],
    )
    .await?;
    if updated == 0 {
        return Ok(false);
    }
    // Blocking is transitive: repeat until no waiting stage has a failed or blocked upstream. Only a
    // failure can block anything (the scan is per waiting stage: not worth paying after every success).
    if r.status == FAILED || r.status == BLOCKED {
        loop {
            let blocked = exec(
                &mut **tx,
                "UPDATE stage_runs SET status = 'BLOCKED', end_ms = $1, error = 'an upstream stage failed' \
                 WHERE run_id = $2 AND status = 'PENDING' AND EXISTS (SELECT 1 FROM stage_run_deps d \
                 JOIN stage_runs u ON u.run_id = d.run_id AND u.stage = d.upstream \
                 WHERE d.run_id = stage_runs.run_id AND d.stage = stage_runs.stage AND u.status IN ('FAILED', 'BLOCKED'))",
                &[r.end_ms.into(), run_id.into()],
            )
            .await?;
            if blocked == 0 {
                break;
            }
        }
    }
    Ok(true)
}

/// Marks the pipeline run finished once none of its stage runs is waiting or running.
pub(super) async fn settle(tx: &mut Tx<'_>, run_id: &str, at_ms: i64) -> Result<()> {
    exec(
        &mut **tx,
        "UPDATE pipeline_runs SET end_ms = $1, status = CASE WHEN EXISTS (SELECT 1 FROM stage_runs x \
         WHERE x.run_id = $2 AND x.status IN ('FAILED', 'BLOCKED')) THEN 'FAILED' ELSE 'SUCCEEDED' END \
         WHERE run_id = $2 AND status IN ('QUEUED', 'RUNNING') AND NOT EXISTS (SELECT 1 FROM stage_runs y \
         WHERE y.run_id = $2 AND y.status IN ('PENDING', 'RUNNING'))",
        &[at_ms.into(), run_id.into()],
    )
    .await?;
    Ok(())
}
