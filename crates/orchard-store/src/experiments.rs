//! Experiments and their tags.

use sqlx::any::AnyRow;

use crate::query::Query;
use crate::search::{self, Target};
use crate::sql::Sql;
use crate::values::{get, now_ms};
use crate::model::{Experiment, Tag, ACTIVE, DELETED};
use crate::error::{Result, StoreError};
use crate::Store;

const COLUMNS: &str = "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time";

fn experiment_from_row(row: &AnyRow) -> Result<Experiment> {
    Ok(Experiment {
        experiment_id: get::<i64>(row, "experiment_id")?.to_string(),
        name: get(row, "name")?,
        artifact_location: get(row, "artifact_location")?,
        lifecycle_stage: get(row, "lifecycle_stage")?,
        creation_time: get(row, "creation_time")?,
        last_update_time: get(row, "last_update_time")?,
        tags: Vec::new(),
    })
}

impl Store {
    /// Creates experiment `0`, "Default", unless it exists. MLflow clients assume it is there.
    pub async fn ensure_default_experiment(&self, artifact_location: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES (0, 'Default', $1, 'active', $2, $2) ON CONFLICT DO NOTHING",
        )
        .bind(artifact_location)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Creates an experiment; `artifact_location` is given the new id, for locations derived from it.
    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: impl FnOnce(i64) -> String,
        tags: &[Tag],
    ) -> Result<String> {
        let now = now_ms();
        self.write(async |tx| {
            let exists = sqlx::query("SELECT 1 FROM experiments WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
            if exists.is_some() {
                return Err(StoreError::AlreadyExists(format!("Experiment '{name}'")));
            }
            // The location may depend on the id, which the database assigns: insert, then fill it in.
            let row = sqlx::query(
                "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
                 VALUES ($1, '', 'active', $2, $2) RETURNING experiment_id",
            )
            .bind(name)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| unique_to_exists(e, name))?;
            let id: i64 = get(&row, "experiment_id")?;
            sqlx::query("UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2")
                .bind(artifact_location(id))
                .bind(id)
                .execute(&mut **tx)
                .await?;
            for tag in tags {
                upsert_experiment_tag(tx, id, tag).await?;
            }
            Ok(id.to_string())
        })
        .await
    }

    pub async fn get_experiment(&self, id: i64) -> Result<Option<Experiment>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM experiments e WHERE e.experiment_id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        self.with_tags(row).await
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM experiments e WHERE e.name = $1"
        ))
        .bind(name)
        .fetch_optional(self.reader())
        .await?;
        self.with_tags(row).await
    }

    async fn with_tags(&self, row: Option<AnyRow>) -> Result<Option<Experiment>> {
        let Some(row) = row else { return Ok(None) };
        let mut exp = experiment_from_row(&row)?;
        let id: i64 = get(&row, "experiment_id")?;
        let rows = sqlx::query(
            "SELECT key, value FROM experiment_tags WHERE experiment_id = $1 ORDER BY key",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        exp.tags = rows
            .iter()
            .map(|r| {
                Ok(Tag {
                    key: get(r, "key")?,
                    value: get(r, "value")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some(exp))
    }

    /// Searches experiments; the database filters, orders and pages.
    pub async fn search_experiments(&self, query: &Query) -> Result<Vec<Experiment>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM experiments e"));
        let target = Target::EXPERIMENTS;
        let order = search::order_joins(&target, &query.order_by, &mut sql)?;
        sql.push(" WHERE ");
        search::lifecycle_clause(&target, query.view, &mut sql);
        search::clauses_and_page(&target, query, &order, &mut sql)?;
        let mut experiments = self.read_all(&sql, experiment_from_row).await?;
        if experiments.is_empty() {
            return Ok(experiments);
        }
        // All tags of the page in one query.
        let ids = experiments.iter().map(|e| crate::sql::Arg::I64(e.experiment_id.parse().unwrap_or(-1))).collect();
        for (id, tag) in self.key_values::<i64>("experiment_tags", "experiment_id", ids).await? {
            let id = id.to_string();
            if let Some(e) = experiments.iter_mut().find(|e| e.experiment_id == id) {
                e.tags.push(tag);
            }
        }
        Ok(experiments)
    }

    pub async fn rename_experiment(&self, id: i64, new_name: &str) -> Result<()> {
        self.write(async |tx| {
            let taken = sqlx::query("SELECT experiment_id FROM experiments WHERE name = $1")
                .bind(new_name)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(row) = taken {
                if get::<i64>(&row, "experiment_id")? != id {
                    return Err(StoreError::AlreadyExists(format!(
                        "Experiment '{new_name}'"
                    )));
                }
            }
            let done = sqlx::query(
                "UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3",
            )
            .bind(new_name)
            .bind(now_ms())
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(|e| unique_to_exists(e, new_name))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("Experiment with id={id}")));
            }
            Ok(())
        })
        .await
    }

    /// Deletes (`deleted = true`) or restores an experiment, and with it all of its runs, as MLflow does.
    pub async fn set_experiment_deleted(&self, id: i64, deleted: bool) -> Result<()> {
        let now = now_ms();
        let (stage, from) = if deleted {
            (DELETED, ACTIVE)
        } else {
            (ACTIVE, DELETED)
        };
        self.write(async |tx| {
            let done = sqlx::query("UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE experiment_id = $3")
                .bind(stage)
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("Experiment with id={id}")));
            }
            let deleted_time = if deleted { Some(now) } else { None };
            sqlx::query("UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE experiment_id = $3 AND lifecycle_stage = $4")
                .bind(stage)
                .bind(deleted_time)
                .bind(id)
                .bind(from)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
        .await
    }

    pub async fn set_experiment_tag(&self, id: i64, tag: &Tag) -> Result<()> {
        self.write(async |tx| {
            upsert_experiment_tag(tx, id, tag).await?;
            Ok(())
        })
        .await
    }

    /// Returns whether the tag existed.
    pub async fn delete_experiment_tag(&self, id: i64, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2")
            .bind(id)
            .bind(key)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

async fn upsert_experiment_tag(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    tag: &Tag,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(id)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) fn unique_to_exists(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::AlreadyExists(format!("'{what}'"))
        }
        _ => StoreError::Db(e),
    }
}
