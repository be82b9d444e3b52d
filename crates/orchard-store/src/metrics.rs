//! Metric histories.

use sqlx::any::AnyRow;

use crate::runs::metric_value;
use crate::sql::{statement, Arg, Sql};
use crate::values::get;
use crate::model::Metric;
use crate::error::Result;
use crate::Store;

/// A metric point's key, value, timestamp and step from a row of `metrics`.
fn point_from_row(row: &AnyRow) -> Result<Metric> {
    Ok(Metric::new(get::<String>(row, "key")?, metric_value(row)?, get(row, "timestamp")?, get(row, "step")?))
}

impl Store {
    /// Every point of one metric of one run, ordered by step then timestamp; `offset`/`limit` page it.
    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Metric>> {
        let rows = statement(
            "SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics \
             WHERE run_uuid = $1 AND key = $2 ORDER BY step, timestamp, is_nan, value LIMIT $3 OFFSET $4",
            &[run_id.into(), key.into(), limit.into(), offset.into()],
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                let mut m = point_from_row(row)?;
                m.model_id = get(row, "model_id")?;
                m.dataset_name = get(row, "dataset_name")?;
                m.dataset_digest = get(row, "dataset_digest")?;
                Ok(m)
            })
            .collect()
    }

    /// The points of one metric across several runs within a step range, for charts; each point carries
    /// its run id. Ordered by run, step, timestamp.
    pub async fn metric_history_many(
        &self,
        run_ids: &[String],
        key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
    ) -> Result<Vec<Metric>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(
            "SELECT run_uuid, key, value, is_nan, timestamp, step FROM metrics WHERE run_uuid IN ",
        );
        sql.list(run_ids.iter().map(|r| Arg::Str(r.clone())))
            .push(" AND key = ")
            .str(key);
        if let Some(s) = start_step {
            sql.push(" AND step >= ").i64(s);
        }
        if let Some(e) = end_step {
            sql.push(" AND step <= ").i64(e);
        }
        sql.push(" ORDER BY run_uuid, step, timestamp");
        let rows = sql.query().fetch_all(self.reader()).await?;
        rows.iter()
            .map(|row| {
                let mut m = point_from_row(row)?;
                m.run_id = Some(get(row, "run_uuid")?);
                Ok(m)
            })
            .collect()
    }
}
