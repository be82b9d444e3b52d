//! Summaries over the runs of some experiments, as UIs list them: the datasets they used (MLflow's dataset
//! filter), and how many runs each experiment has and when one last started or ended (Orchard's experiments page).

use sqlx::any::AnyRow;

use crate::error::Result;
use crate::model::{DatasetSummary, ExperimentActivity};
use crate::sql::{Arg, Sql};
use crate::values::{get, int, optional_int};
use crate::Store;

/// MLflow answers at most this many summaries.
const MAX_SUMMARIES: i64 = 1000;

fn summary_from_row(row: &AnyRow) -> Result<DatasetSummary> {
    Ok(DatasetSummary {
        experiment_id: int(row, "experiment_id")?.to_string(),
        name: get(row, "name")?,
        digest: get(row, "digest")?,
        context: get(row, "context")?,
    })
}

impl Store {
    /// Each distinct (experiment, dataset, context) that runs of `experiment_ids` logged as inputs.
    pub async fn dataset_summaries(&self, experiment_ids: &[i64]) -> Result<Vec<DatasetSummary>> {
        let head = "SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value AS context, CASE WHEN t.value IS NULL THEN 1 ELSE 0 END AS no_context FROM datasets d \
             JOIN run_inputs i ON i.dataset_uuid = d.dataset_uuid \
             LEFT JOIN run_input_tags t ON t.run_uuid = i.run_uuid AND t.dataset_uuid = i.dataset_uuid \
             AND t.key = 'mlflow.data.context' WHERE d.experiment_id IN ";
        // NULLs sort differently on the two engines: ordered by their place first, so both page alike.
        let tail = format!(" ORDER BY d.experiment_id, d.name, d.digest, no_context, context LIMIT {MAX_SUMMARIES}");
        self.over_experiments(head, experiment_ids, &tail, summary_from_row).await
    }

    /// The rows of `head (experiment_ids) tail`, each read by `from_row`; none for no experiments.
    async fn over_experiments<T>(&self, head: &str, experiment_ids: &[i64], tail: &str, from_row: fn(&AnyRow) -> Result<T>) -> Result<Vec<T>> {
        if experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(head);
        sql.list(experiment_ids.iter().map(|&id| Arg::I64(id))).push(tail);
        self.read_all(&sql, from_row).await
    }
}

fn activity_from_row(row: &AnyRow) -> Result<ExperimentActivity> {
    Ok(ExperimentActivity {
        experiment_id: int(row, "experiment_id")?.to_string(),
        runs: int(row, "runs")?,
        last_activity_ms: optional_int(row, "last_activity")?,
    })
}

impl Store {
    /// For each of `experiment_ids` that has active runs: how many, and the latest time one started or ended.
    /// One aggregate over the experiments' rows of `runs` (found through `runs_by_experiment`).
    pub async fn experiment_activity(&self, experiment_ids: &[i64]) -> Result<Vec<ExperimentActivity>> {
        let head = "SELECT experiment_id, COUNT(*) AS runs, MAX(COALESCE(end_time, start_time)) AS last_activity FROM runs \
             WHERE lifecycle_stage = 'active' AND experiment_id IN ";
        self.over_experiments(head, experiment_ids, " GROUP BY experiment_id ORDER BY experiment_id", activity_from_row).await
    }
}
