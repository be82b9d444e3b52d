//! Experiments and their tags.

use sqlx::any::AnyRow;

use crate::query::Query;
use crate::search::{self, Target};
use crate::sql::{exec, statement, Arg, Sql, Tx};
use crate::values::{from_columns, get, now_ms};
use crate::model::{Experiment, Tag, ACTIVE, DELETED};
use crate::error::{Result, StoreError};
use crate::{upsert_key_value, Store};

const COLUMNS: &str = "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time";

fn experiment_from_row(row: &AnyRow) -> Result<Experiment> {
    Ok(from_columns!(row, Experiment {
        name, artifact_location, lifecycle_stage, creation_time, last_update_time;
        experiment_id: get::<i64>(row, "experiment_id")?.to_string(),
        tags: Vec::new(),
    }))
}

impl Store {
    /// Creates experiment `0`, "Default", unless it exists. MLflow clients assume it is there.
    pub async fn ensure_default_experiment(&self, artifact_location: &str) -> Result<()> {
        exec(
            self.writer(),
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES (0, 'Default', $1, 'active', $2, $2) ON CONFLICT DO NOTHING",
            &[artifact_location.into(), now_ms().into()],
        )
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
            let taken = "SELECT 1 FROM experiments WHERE name = $1";
            if statement(taken, &[name.into()]).fetch_optional(&mut **tx).await?.is_some() {
                return Err(StoreError::AlreadyExists(format!("Experiment '{name}'")));
            }
            // The location may depend on the id, which the database assigns: insert, then fill it in.
            let row = statement(
                "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
                 VALUES ($1, '', 'active', $2, $2) RETURNING experiment_id",
                &[name.into(), now.into()],
            )
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| unique_to_exists(e, name))?;
            let id: i64 = get(&row, "experiment_id")?;
            let locate = "UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2";
            exec(&mut **tx, locate, &[artifact_location(id).into(), id.into()]).await?;
            for tag in tags {
                upsert_tag(tx, id, tag).await?;
            }
            Ok(id.to_string())
        })
        .await
    }

    pub async fn get_experiment(&self, id: i64) -> Result<Option<Experiment>> {
        self.experiment_where("e.experiment_id", id.into()).await
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        self.experiment_where("e.name", name.into()).await
    }

    /// The experiment whose `column` is `value`, whatever its lifecycle stage.
    async fn experiment_where(&self, column: &str, value: Arg) -> Result<Option<Experiment>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM experiments e WHERE {column} = "));
        sql.arg(value);
        Ok(self.experiments(&sql).await?.pop())
    }

    /// Searches experiments; the database filters, orders and pages.
    pub async fn search_experiments(&self, query: &Query) -> Result<Vec<Experiment>> {
        let target = Target::EXPERIMENTS;
        let select = format!("SELECT {COLUMNS} FROM experiments e");
        let sql = search::page(&target, &select, query, |sql| {
            sql.push(" WHERE ");
            search::lifecycle_clause(&target, query.view, sql);
        })?;
        self.experiments(&sql).await
    }

    /// The experiments `sql` selects (the columns [`COLUMNS`]), with their tags.
    async fn experiments(&self, sql: &Sql) -> Result<Vec<Experiment>> {
        let mut experiments = self.read_all(sql, experiment_from_row).await?;
        // The ids are integers in the database, strings in the record.
        let id = |e: &Experiment| e.experiment_id.parse::<i64>().unwrap_or(-1);
        self.attach_key_values(&mut experiments, Target::EXPERIMENTS.tags, id, |e| &mut e.tags)
            .await?;
        Ok(experiments)
    }

    pub async fn rename_experiment(&self, id: i64, new_name: &str) -> Result<()> {
        self.write(async |tx| {
            let taken = "SELECT experiment_id FROM experiments WHERE name = $1";
            if let Some(row) = statement(taken, &[new_name.into()]).fetch_optional(&mut **tx).await? {
                if get::<i64>(&row, "experiment_id")? != id {
                    return Err(StoreError::AlreadyExists(format!(
                        "Experiment '{new_name}'"
                    )));
                }
            }
            let changed = exec(
                &mut **tx,
                "UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3",
                &[new_name.into(), now_ms().into(), id.into()],
            )
            .await
            .map_err(|e| unique_to_exists(e, new_name))?;
            if changed == 0 {
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
            let changed = exec(
                &mut **tx,
                "UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE experiment_id = $3",
                &[stage.into(), now.into(), id.into()],
            )
            .await?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("Experiment with id={id}")));
            }
            let deleted_time = if deleted { Some(now) } else { None };
            exec(
                &mut **tx,
                "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE experiment_id = $3 AND lifecycle_stage = $4",
                &[stage.into(), deleted_time.into(), id.into(), from.into()],
            )
            .await?;
            Ok(())
        })
        .await
    }

    pub async fn set_experiment_tag(&self, id: i64, tag: &Tag) -> Result<()> {
        self.write(async |tx| upsert_tag(tx, id, tag).await).await
    }

    /// Returns whether the tag existed.
    pub async fn delete_experiment_tag(&self, id: i64, key: &str) -> Result<bool> {
        let text = "DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2";
        Ok(exec(self.writer(), text, &[id.into(), key.into()]).await? > 0)
    }
}

async fn upsert_tag(tx: &mut Tx<'_>, id: i64, tag: &Tag) -> Result<()> {
    upsert_key_value(tx, Target::EXPERIMENTS.tags, id.into(), tag).await
}

/// A unique key refusing a row becomes "`what` already exists"; other errors pass through.
pub(crate) fn unique_to_exists(e: impl Into<StoreError>, what: &str) -> StoreError {
    let e = e.into();
    match &e {
        StoreError::Db(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            StoreError::AlreadyExists(format!("'{what}'"))
        }
        _ => e,
    }
}
