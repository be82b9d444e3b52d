//! The datasets runs of some experiments used, as the UI's dataset filter lists them.

use sqlx::any::AnyRow;

use crate::error::Result;
use crate::model::DatasetSummary;
use crate::sql::{Arg, Sql};
use crate::values::{get, int};
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
        if experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(
            "SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value AS context, CASE WHEN t.value IS NULL THEN 1 ELSE 0 END AS no_context FROM datasets d \
             JOIN run_inputs i ON i.dataset_uuid = d.dataset_uuid \
             LEFT JOIN run_input_tags t ON t.run_uuid = i.run_uuid AND t.dataset_uuid = i.dataset_uuid \
             AND t.key = 'mlflow.data.context' WHERE d.experiment_id IN ",
        );
        sql.list(experiment_ids.iter().map(|&id| Arg::I64(id)))
            // NULLs sort differently on the two engines: ordered by their place first, so both page alike.
            .push(" ORDER BY d.experiment_id, d.name, d.digest, no_context, context LIMIT ")
            .i64(MAX_SUMMARIES);
        self.read_all(&sql, summary_from_row).await
    }
}
