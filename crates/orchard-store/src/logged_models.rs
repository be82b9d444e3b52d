//! Logged models (MLflow 3): a model as a first-class record with its own params, tags, metrics and artifacts.

use sqlx::any::AnyRow;

use crate::query::{Field, Query};
use crate::runs::metric_value;
use crate::search::{self, Target};
use crate::sql::{exec, statement, Arg, Sql, Tx};
use crate::values::{from_columns, get, now_ms};
use crate::model::{LoggedModel, Metric, NewLoggedModel, Tag, DELETED};
use crate::error::{Result, StoreError};
use crate::{positions, upsert_key_value, Store};

const COLUMNS: &str = "m.model_id, m.experiment_id, m.name, m.artifact_location, m.creation_timestamp_ms, \
    m.last_updated_timestamp_ms, m.status, m.lifecycle_stage, m.model_type, m.source_run_id, m.status_message";

/// (table, owner column) of a logged model's tags, and of its params.
const TAGS: (&str, &str) = ("logged_model_tags", "model_id");
const PARAMS: (&str, &str) = ("logged_model_params", "model_id");

fn not_found(model_id: &str) -> StoreError {
    StoreError::NotFound(format!("Logged model with id={model_id}"))
}

fn model_from_row(row: &AnyRow) -> Result<LoggedModel> {
    Ok(from_columns!(row, LoggedModel {
        model_id, name, creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage,
        model_type, source_run_id, status_message;
        experiment_id: get::<i64>(row, "experiment_id")?.to_string(),
        artifact_uri: get(row, "artifact_location")?,
        tags: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
    }))
}

impl Store {
    pub async fn create_logged_model(&self, m: &NewLoggedModel) -> Result<LoggedModel> {
        let now = now_ms();
        self.write(async |tx| {
            exec(
                &mut **tx,
                "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, \
                 last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6, 'active', $7, $8)",
                &[
                    (&m.model_id).into(),
                    m.experiment_id.into(),
                    (&m.name).into(),
                    (&m.artifact_uri).into(),
                    now.into(),
                    (&m.status).into(),
                    m.model_type.as_deref().into(),
                    m.source_run_id.as_deref().into(),
                ],
            )
            .await?;
            upsert_key_values(tx, &m.model_id, &m.tags, &m.params).await
        })
        .await?;
        self.get_logged_model(&m.model_id)
            .await?
            .ok_or_else(|| not_found(&m.model_id))
    }

    /// A logged model, unless it does not exist or was deleted.
    pub async fn get_logged_model(&self, model_id: &str) -> Result<Option<LoggedModel>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM logged_models m WHERE m.model_id = "));
        sql.str(model_id).push(" AND m.lifecycle_stage = 'active'");
        Ok(self.logged_models(&sql).await?.pop())
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
        let text = format!(
            "UPDATE logged_models SET {column} = $1, last_updated_timestamp_ms = $2 \
             WHERE model_id = $3 AND lifecycle_stage = 'active'"
        );
        if exec(self.writer(), &text, &[value.into(), now_ms().into(), model_id.into()]).await? == 0 {
            return Err(not_found(model_id));
        }
        Ok(())
    }

    pub async fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()> {
        self.upsert_model_kv(model_id, tags, &[]).await
    }

    pub async fn log_logged_model_params(&self, model_id: &str, params: &[Tag]) -> Result<()> {
        self.upsert_model_kv(model_id, &[], params).await
    }

    async fn upsert_model_kv(&self, model_id: &str, tags: &[Tag], params: &[Tag]) -> Result<()> {
        self.write(async |tx| {
            let live = "SELECT 1 FROM logged_models WHERE model_id = $1 AND lifecycle_stage = 'active'";
            if statement(live, &[model_id.into()]).fetch_optional(&mut **tx).await?.is_none() {
                return Err(not_found(model_id));
            }
            upsert_key_values(tx, model_id, tags, params).await?;
            let touch = "UPDATE logged_models SET last_updated_timestamp_ms = $1 WHERE model_id = $2";
            exec(&mut **tx, touch, &[now_ms().into(), model_id.into()]).await?;
            Ok(())
        })
        .await
    }

    /// Returns whether the tag existed.
    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<bool> {
        if self.get_logged_model(model_id).await?.is_none() {
            return Err(not_found(model_id));
        }
        let text = "DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2";
        Ok(exec(self.writer(), text, &[model_id.into(), key.into()]).await? > 0)
    }

    pub async fn search_logged_models(&self, query: &Query) -> Result<Vec<LoggedModel>> {
        if query.experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        if query.datasets.is_empty() {
            let target = Target::LOGGED_MODELS;
            let select = format!("SELECT {COLUMNS} FROM logged_models m");
            let sql = search::page(&target, &select, query, |sql| search::in_experiments(&target, query, sql))?;
            return self.logged_models(&sql).await;
        }
        // Restricted to datasets: metric clauses and ordering look at `dm`, each model's metrics logged on those
        // datasets (the highest value per key, as without datasets), and without metric clauses a model needs
        // some metric there.
        let target = Target { metrics: Some(("dm", "model_id")), ..Target::LOGGED_MODELS };
        let mut sql = Sql::new(
            "WITH dm AS (SELECT model_id, key, MAX(value) AS value, MAX(is_nan) AS is_nan FROM logged_model_metrics WHERE ",
        );
        for (i, d) in query.datasets.iter().enumerate() {
            sql.push(if i == 0 { "(dataset_name = " } else { " OR (dataset_name = " }).str(&d.name);
            if let Some(digest) = &d.digest {
                sql.push(" AND dataset_digest = ").str(digest);
            }
            sql.push(")");
        }
        sql.push(&format!(" GROUP BY model_id, key) SELECT {COLUMNS} FROM logged_models m"));
        let compares_metrics = query.clauses.iter().any(|c| matches!(c.field, Field::Metric(_)));
        let sql = search::page_after(&target, sql, query, |sql| {
            search::in_experiments(&target, query, sql);
            if !compares_metrics {
                sql.push(" AND EXISTS (SELECT 1 FROM dm WHERE dm.model_id = m.model_id)");
            }
        })?;
        self.logged_models(&sql).await
    }

    /// The logged models `sql` selects (the columns [`COLUMNS`]), with their tags, params and metrics.
    async fn logged_models(&self, sql: &Sql) -> Result<Vec<LoggedModel>> {
        let id = |m: &LoggedModel| m.model_id.clone();
        let mut models = self.read_tagged(sql, model_from_row, TAGS, id, |m| &mut m.tags).await?;
        if models.is_empty() {
            return Ok(models);
        }
        self.attach_key_values(&mut models, PARAMS, id, |m| &mut m.params).await?;
        let index = positions(&models, id);
        let mut sql = Sql::new(
            "SELECT model_id, key, value, is_nan, timestamp, step, run_uuid, dataset_name, dataset_digest \
             FROM logged_model_metrics WHERE model_id IN ",
        );
        sql.list(index.keys().map(|k| Arg::Str(k.clone()))).push(" ORDER BY key, step, timestamp");
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
            // A model's metrics name the model, as MLflow returns them.
            let model_id: String = get(&row, "model_id")?;
            let at = index[&model_id];
            metric.model_id = Some(model_id);
            models[at].metrics.push(metric);
        }
        Ok(models)
    }
}

/// Sets a logged model's tags and params.
async fn upsert_key_values(tx: &mut Tx<'_>, model_id: &str, tags: &[Tag], params: &[Tag]) -> Result<()> {
    for (table, items) in [(TAGS, tags), (PARAMS, params)] {
        for t in items {
            upsert_key_value(tx, table, model_id.into(), t).await?;
        }
    }
    Ok(())
}
