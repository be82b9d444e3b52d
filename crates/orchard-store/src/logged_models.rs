//! Logged models (MLflow 3): a model as a first-class record with its own params, tags, metrics and artifacts.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Acquire;

use crate::query::Query;
use crate::runs::metric_value;
use crate::search::{self, Target};
use crate::sql::{Arg, Sql};
use crate::values::{get, now_ms};
use crate::model::{LoggedModel, Metric, NewLoggedModel, Tag, DELETED};
use crate::error::{Result, StoreError};
use crate::Store;

const COLUMNS: &str = "m.model_id, m.experiment_id, m.name, m.artifact_location, m.creation_timestamp_ms, \
    m.last_updated_timestamp_ms, m.status, m.lifecycle_stage, m.model_type, m.source_run_id, m.status_message";

fn model_from_row(row: &AnyRow) -> Result<LoggedModel> {
    Ok(LoggedModel {
        model_id: get(row, "model_id")?,
        experiment_id: get::<i64>(row, "experiment_id")?.to_string(),
        name: get(row, "name")?,
        artifact_uri: get(row, "artifact_location")?,
        creation_timestamp_ms: get(row, "creation_timestamp_ms")?,
        last_updated_timestamp_ms: get(row, "last_updated_timestamp_ms")?,
        status: get(row, "status")?,
        lifecycle_stage: get(row, "lifecycle_stage")?,
        model_type: get(row, "model_type")?,
        source_run_id: get(row, "source_run_id")?,
        status_message: get(row, "status_message")?,
        tags: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
    })
}

impl Store {
    pub async fn create_logged_model(&self, m: &NewLoggedModel) -> Result<LoggedModel> {
        let now = now_ms();
        let mut conn = self.writer().acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, \
             last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, 'active', $7, $8)",
        )
        .bind(&m.model_id)
        .bind(m.experiment_id)
        .bind(&m.name)
        .bind(&m.artifact_uri)
        .bind(now)
        .bind(&m.status)
        .bind(m.model_type.as_deref())
        .bind(m.source_run_id.as_deref())
        .execute(&mut *tx)
        .await?;
        for (table, items) in [
            ("logged_model_tags", &m.tags),
            ("logged_model_params", &m.params),
        ] {
            for t in items.iter() {
                upsert_kv(&mut tx, table, &m.model_id, t).await?;
            }
        }
        tx.commit().await?;
        self.get_logged_model(&m.model_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("Logged model with id={}", m.model_id)))
    }

    /// A logged model, unless it does not exist or was deleted.
    pub async fn get_logged_model(&self, model_id: &str) -> Result<Option<LoggedModel>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM logged_models m WHERE m.model_id = $1 AND m.lifecycle_stage = 'active'"
        ))
        .bind(model_id)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.load_models(vec![model_from_row(&row)?]).await?.pop())
    }

    pub async fn set_logged_model_status(&self, model_id: &str, status: &str) -> Result<()> {
        self.update_active_model(model_id, "status", status).await
    }

    pub async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        self.update_active_model(model_id, "lifecycle_stage", DELETED).await
    }

    /// Sets one column of a live logged model (and its last-updated time); a missing or deleted model is an
    /// error.
    async fn update_active_model(&self, model_id: &str, column: &'static str, value: &str) -> Result<()> {
        let done = sqlx::query(&format!(
            "UPDATE logged_models SET {column} = $1, last_updated_timestamp_ms = $2 \
             WHERE model_id = $3 AND lifecycle_stage = 'active'"
        ))
        .bind(value)
        .bind(now_ms())
        .bind(model_id)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("Logged model with id={model_id}")));
        }
        Ok(())
    }

    pub async fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()> {
        self.upsert_model_kv("logged_model_tags", model_id, tags)
            .await
    }

    pub async fn log_logged_model_params(&self, model_id: &str, params: &[Tag]) -> Result<()> {
        self.upsert_model_kv("logged_model_params", model_id, params)
            .await
    }

    async fn upsert_model_kv(&self, table: &str, model_id: &str, items: &[Tag]) -> Result<()> {
        self.write(async |tx| {
            let exists = sqlx::query(
                "SELECT 1 FROM logged_models WHERE model_id = $1 AND lifecycle_stage = 'active'",
            )
            .bind(model_id)
            .fetch_optional(&mut **tx)
            .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!(
                    "Logged model with id={model_id}"
                )));
            }
            for t in items {
                upsert_kv(tx, table, model_id, t).await?;
            }
            sqlx::query("UPDATE logged_models SET last_updated_timestamp_ms = $1 WHERE model_id = $2")
                .bind(now_ms())
                .bind(model_id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
        .await
    }

    /// Returns whether the tag existed.
    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<bool> {
        if self.get_logged_model(model_id).await?.is_none() {
            return Err(StoreError::NotFound(format!(
                "Logged model with id={model_id}"
            )));
        }
        let done = sqlx::query("DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2")
            .bind(model_id)
            .bind(key)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn search_logged_models(&self, query: &Query) -> Result<Vec<LoggedModel>> {
        if query.experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let target = Target::LOGGED_MODELS;
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM logged_models m"));
        let order = search::order_joins(&target, &query.order_by, &mut sql)?;
        search::in_experiments(&target, query, &mut sql);
        search::clauses_and_page(&target, query, &order, &mut sql)?;
        let models = self.read_all(&sql, model_from_row).await?;
        self.load_models(models).await
    }

    async fn load_models(&self, mut models: Vec<LoggedModel>) -> Result<Vec<LoggedModel>> {
        if models.is_empty() {
            return Ok(models);
        }
        let index: HashMap<String, usize> = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.model_id.clone(), i))
            .collect();
        let ids = || index.keys().map(|k| Arg::Str(k.clone())).collect();
        for table in ["logged_model_tags", "logged_model_params"] {
            for (id, kv) in self.key_values::<String>(table, "model_id", ids()).await? {
                let m = &mut models[index[&id]];
                if table == "logged_model_tags" {
                    m.tags.push(kv);
                } else {
                    m.params.push(kv);
                }
            }
        }
        let mut sql = Sql::new(
            "SELECT model_id, key, value, is_nan, timestamp, step, run_uuid, dataset_name, dataset_digest \
             FROM logged_model_metrics WHERE model_id IN ",
        );
        sql.list(ids()).push(" ORDER BY key, step, timestamp");
        for row in sql.query().fetch_all(self.reader()).await? {
            let mut metric = Metric::new(
                get::<String>(&row, "key")?,
                metric_value(&row)?,
                get(&row, "timestamp")?,
                get(&row, "step")?,
            );
            metric.run_id = get(&row, "run_uuid")?;
            metric.dataset_name = get(&row, "dataset_name")?;
            metric.dataset_digest = get(&row, "dataset_digest")?;
            models[index[&get::<String>(&row, "model_id")?]]
                .metrics
                .push(metric);
        }
        Ok(models)
    }
}

async fn upsert_kv(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    model_id: &str,
    t: &Tag,
) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO {table} (model_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value"
    ))
    .bind(model_id)
    .bind(&t.key)
    .bind(&t.value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
