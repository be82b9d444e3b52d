//! The model registry: registered models, their numbered versions, tags and aliases.
//!
//! Versions are never removed one by one: a deleted version keeps its row with the stage
//! [`crate::model::DELETED_STAGE`], so its number is never handed out again (MLflow's rule). Deleting a registered model
//! removes everything of it.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Acquire;

use crate::experiments::unique_to_exists;
use crate::query::Query;
use crate::search::{self, Target};
use crate::sql::{Arg, Sql, Tx};
use crate::values::{get, now_ms};
use crate::error::{Result, StoreError};
use crate::Store;
use crate::model::{ModelVersion, NewModelVersion, RegisteredModel, Tag, DELETED_STAGE, PROMPT_TAG};

const RM_COLUMNS: &str = "m.name, m.creation_timestamp_ms, m.last_updated_timestamp_ms, m.description";

const MV_COLUMNS: &str = "v.id, v.name, v.version, v.creation_timestamp_ms, v.last_updated_timestamp_ms, \
    v.description, v.current_stage, v.source, v.storage_location, v.run_id, v.run_link, v.status, \
    v.status_message, v.model_id";

fn model_from_row(row: &AnyRow) -> Result<RegisteredModel> {
    Ok(RegisteredModel {
        name: get(row, "name")?,
        creation_timestamp_ms: get(row, "creation_timestamp_ms")?,
        last_updated_timestamp_ms: get(row, "last_updated_timestamp_ms")?,
        description: get(row, "description")?,
        tags: Vec::new(),
        aliases: Vec::new(),
        latest_versions: Vec::new(),
    })
}

/// A version row and its surrogate id (the key of its tags).
fn version_from_row(row: &AnyRow) -> Result<(i64, ModelVersion)> {
    Ok((
        get(row, "id")?,
        ModelVersion {
            name: get(row, "name")?,
            version: get(row, "version")?,
            creation_timestamp_ms: get(row, "creation_timestamp_ms")?,
            last_updated_timestamp_ms: get(row, "last_updated_timestamp_ms")?,
            description: get(row, "description")?,
            current_stage: get(row, "current_stage")?,
            source: get(row, "source")?,
            storage_location: get(row, "storage_location")?,
            run_id: get(row, "run_id")?,
            run_link: get(row, "run_link")?,
            status: get(row, "status")?,
            status_message: get(row, "status_message")?,
            model_id: get(row, "model_id")?,
            tags: Vec::new(),
            aliases: Vec::new(),
        },
    ))
}

fn model_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("Registered Model with name={name}"))
}

fn version_not_found(name: &str, version: i64) -> StoreError {
    StoreError::NotFound(format!("Model Version (name={name}, version={version})"))
}


async fn model_exists(tx: &mut Tx<'_>, name: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM registered_models WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}

/// The surrogate id of a live version.
async fn live_version_id(tx: &mut Tx<'_>, name: &str, version: i64) -> Result<i64> {
    let row = sqlx::query(
        "SELECT id FROM model_versions WHERE name = $1 AND version = $2 AND current_stage != $3",
    )
    .bind(name)
    .bind(version)
    .bind(DELETED_STAGE)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(r) => get(&r, "id"),
        None => Err(version_not_found(name, version)),
    }
}

impl Store {
    // ------------------------------------------------------------------------------------- registered models

    pub async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<RegisteredModel> {
        let now = now_ms();
        let mut conn = self.writer().acquire().await?;
        let mut tx = conn.begin().await?;
        if model_exists(&mut tx, name).await? {
            return Err(StoreError::AlreadyExists(format!(
                "Registered Model (name={name})"
            )));
        }
        sqlx::query(
            "INSERT INTO registered_models (name, creation_timestamp_ms, last_updated_timestamp_ms, description) \
             VALUES ($1, $2, $2, $3)",
        )
        .bind(name)
        .bind(now)
        .bind(description.filter(|d| !d.is_empty()))
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_to_exists(e, name))?;
        for t in tags {
            upsert_model_tag(&mut tx, name, t).await?;
        }
        tx.commit().await?;
        self.get_registered_model(name)
            .await?
            .ok_or_else(|| model_not_found(name))
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<Option<RegisteredModel>> {
        let row = sqlx::query(&format!(
            "SELECT {RM_COLUMNS} FROM registered_models m WHERE m.name = $1"
        ))
        .bind(name)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.load_registered_models(vec![model_from_row(&row)?]).await?.pop())
    }

    /// Renames a model; its versions, tags and aliases follow (the foreign keys cascade).
    pub async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<()> {
        let now = now_ms();
        self.write(async |tx| {
            if !model_exists(tx, name).await? {
                return Err(model_not_found(name));
            }
            if name != new_name && model_exists(tx, new_name).await? {
                return Err(StoreError::AlreadyExists(format!(
                    "Registered Model (name={new_name})"
                )));
            }
            sqlx::query(
                "UPDATE registered_models SET name = $1, last_updated_timestamp_ms = $2 WHERE name = $3",
            )
            .bind(new_name)
            .bind(now)
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(|e| unique_to_exists(e, new_name))?;
            sqlx::query("UPDATE model_versions SET last_updated_timestamp_ms = $1 WHERE name = $2")
                .bind(now)
                .bind(new_name)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
        .await
    }

    /// Sets (or with `None` clears) the description.
    pub async fn update_registered_model(&self, name: &str, description: Option<&str>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE registered_models SET description = $1, last_updated_timestamp_ms = $2 WHERE name = $3",
        )
        .bind(description.filter(|d| !d.is_empty()))
        .bind(now_ms())
        .bind(name)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(model_not_found(name));
        }
        Ok(())
    }

    /// Removes the model with all its versions (deleted ones too), tags and aliases.
    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.write(async |tx| {
            if !model_exists(tx, name).await? {
                return Err(model_not_found(name));
            }
            // Explicit deletes rather than relying on ON DELETE CASCADE alone: the order is the same on both
            // engines and nothing depends on a connection's foreign-key pragma.
            sqlx::query(
                "DELETE FROM model_version_tags WHERE version_id IN (SELECT id FROM model_versions WHERE name = $1)",
            )
            .bind(name)
            .execute(&mut **tx)
            .await?;
            for table in [
                "model_versions",
                "registered_model_aliases",
                "registered_model_tags",
                "registered_models",
            ] {
                sqlx::query(&format!("DELETE FROM {table} WHERE name = $1"))
                    .bind(name)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    pub async fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<()> {
        self.write(async |tx| {
            if !model_exists(tx, name).await? {
                return Err(model_not_found(name));
            }
            upsert_model_tag(tx, name, tag).await?;
            Ok(())
        })
        .await
    }

    /// Deleting a tag that is not there is not an error (MLflow's behaviour); a missing model is.
    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        self.delete_model_row("DELETE FROM registered_model_tags WHERE name = $1 AND key = $2", name, key)
            .await
    }

    /// Deletes one row keyed by (model name, `second`) — a tag or an alias. The model must exist; the row need
    /// not (MLflow answers both deletes with success).
    async fn delete_model_row(&self, sql: &str, name: &str, second: &str) -> Result<()> {
        self.write(async |tx| {
            if !model_exists(tx, name).await? {
                return Err(model_not_found(name));
            }
            sqlx::query(sql).bind(name).bind(second).execute(&mut **tx).await?;
            Ok(())
        })
        .await
    }

    /// One page of registered models. `hide_prompts` leaves out models tagged as prompts.
    pub async fn search_registered_models(
        &self,
        query: &Query,
        hide_prompts: bool,
    ) -> Result<Vec<RegisteredModel>> {
        let target = Target::REGISTERED_MODELS;
        let mut sql = Sql::new(&format!("SELECT {RM_COLUMNS} FROM registered_models m"));
        let order = search::order_joins(&target, &query.order_by, &mut sql)?;
        sql.push(" WHERE 1 = 1");
        filter_page(&target, query, hide_prompts.then_some("m.name"), &order, &mut sql)?;
        let models = self.read_all(&sql, model_from_row).await?;
        self.load_registered_models(models).await
    }

    /// Fills in tags, aliases and latest versions.
    async fn load_registered_models(&self, mut models: Vec<RegisteredModel>) -> Result<Vec<RegisteredModel>> {
        if models.is_empty() {
            return Ok(models);
        }
        let index: HashMap<String, usize> = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
        let names = || index.keys().map(|k| Arg::Str(k.clone()));
        for (name, tag) in self.key_values::<String>("registered_model_tags", "name", names().collect()).await? {
            models[index[&name]].tags.push(tag);
        }
        let mut sql = Sql::new("SELECT name, alias, version FROM registered_model_aliases WHERE name IN ");
        sql.list(names()).push(" ORDER BY alias");
        for row in sql.query().fetch_all(self.reader()).await? {
            models[index[&get::<String>(&row, "name")?]]
                .aliases
                .push((get(&row, "alias")?, get(&row, "version")?));
        }
        // Latest version per stage: walk the live versions in number order, keeping the highest per stage in
        // the order the stages are first met.
        let mut sql = Sql::new(&format!(
            "SELECT {MV_COLUMNS} FROM model_versions v WHERE v.current_stage != "
        ));
        sql.str(DELETED_STAGE)
            .push(" AND v.name IN ")
            .list(names())
            .push(" ORDER BY v.name, v.version");
        let rows = sql.query().fetch_all(self.reader()).await?;
        let mut latest: Vec<Vec<(i64, ModelVersion)>> = vec![Vec::new(); models.len()];
        for row in &rows {
            let (id, v) = version_from_row(row)?;
            let slot = &mut latest[index[&v.name]];
            match slot.iter_mut().find(|(_, l)| l.current_stage == v.current_stage) {
                Some(existing) => *existing = (id, v),
                None => slot.push((id, v)),
            }
        }
        let all: Vec<(i64, ModelVersion)> = latest.iter().flatten().cloned().collect();
        // Entries of latest_versions carry tags but no aliases, as MLflow's do.
        let loaded = self.load_versions(all, false).await?;
        let mut by_key: HashMap<(String, i64), ModelVersion> = loaded
            .into_iter()
            .map(|v| ((v.name.clone(), v.version), v))
            .collect();
        for (i, slot) in latest.into_iter().enumerate() {
            models[i].latest_versions = slot
                .into_iter()
                .filter_map(|(_, v)| by_key.remove(&(v.name, v.version)))
                .collect();
        }
        Ok(models)
    }

    // ---------------------------------------------------------------------------------------- model versions

    /// Creates the next version of a model: one more than the highest number it ever had.
    pub async fn create_model_version(&self, new: &NewModelVersion) -> Result<ModelVersion> {
        let mut last_error = None;
        // On PostgreSQL two servers may pick the same number at once; the unique key refuses the second,
        // which then tries again with the next number.
        for _ in 0..3 {
            match self.try_create_model_version(new).await {
                Ok(version) => {
                    return self
                        .get_model_version(&new.name, version)
                        .await?
                        .ok_or_else(|| version_not_found(&new.name, version))
                }
                Err(StoreError::AlreadyExists(what)) => last_error = Some(what),
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::AlreadyExists(last_error.unwrap_or_default()))
    }

    async fn try_create_model_version(&self, new: &NewModelVersion) -> Result<i64> {
        let now = now_ms();
        self.write(async |tx| {
            // Lock the model's row so that concurrent creations on PostgreSQL take numbers one after the other
            // (SQLite already has one writer at a time).
            let lock = match self.backend() {
                crate::backend::Backend::Postgres => "SELECT 1 FROM registered_models WHERE name = $1 FOR UPDATE",
                crate::backend::Backend::Sqlite => "SELECT 1 FROM registered_models WHERE name = $1",
            };
            let exists = sqlx::query(lock)
                .bind(&new.name)
                .fetch_optional(&mut **tx)
                .await?
                .is_some();
            if !exists {
                return Err(model_not_found(&new.name));
            }
            let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS n FROM model_versions WHERE name = $1")
                .bind(&new.name)
                .fetch_one(&mut **tx)
                .await?;
            let version = get::<i64>(&row, "n")? + 1;
            let row = sqlx::query(
                "INSERT INTO model_versions (name, version, creation_timestamp_ms, last_updated_timestamp_ms, \
                 description, current_stage, source, storage_location, run_id, run_link, status, model_id) \
                 VALUES ($1, $2, $3, $3, $4, 'None', $5, $6, $7, $8, 'READY', $9) RETURNING id",
            )
            .bind(&new.name)
            .bind(version)
            .bind(now)
            .bind(new.description.as_deref().filter(|d| !d.is_empty()))
            .bind(&new.source)
            .bind(&new.storage_location)
            .bind(new.run_id.as_deref().filter(|r| !r.is_empty()))
            .bind(new.run_link.as_deref().filter(|r| !r.is_empty()))
            .bind(new.model_id.as_deref().filter(|m| !m.is_empty()))
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| unique_to_exists(e, &format!("{} version {version}", new.name)))?;
            let id: i64 = get(&row, "id")?;
            for t in &new.tags {
                upsert_version_tag(tx, id, t).await?;
            }
            touch_model(tx, &new.name, now).await?;
            Ok(version)
        })
        .await
    }

    /// A live (not deleted) version, with its tags and aliases.
    pub async fn get_model_version(&self, name: &str, version: i64) -> Result<Option<ModelVersion>> {
        let row = sqlx::query(&format!(
            "SELECT {MV_COLUMNS} FROM model_versions v WHERE v.name = $1 AND v.version = $2 AND v.current_stage != $3"
        ))
        .bind(name)
        .bind(version)
        .bind(DELETED_STAGE)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(self
            .load_versions(vec![version_from_row(&row)?], true)
            .await?
            .pop())
    }

    /// Sets (or with `None` clears) a version's description.
    pub async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE model_versions SET description = $1, last_updated_timestamp_ms = $2 \
             WHERE name = $3 AND version = $4 AND current_stage != $5",
        )
        .bind(description.filter(|d| !d.is_empty()))
        .bind(now_ms())
        .bind(name)
        .bind(version)
        .bind(DELETED_STAGE)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(version_not_found(name, version));
        }
        Ok(())
    }

    /// Moves a version to `stage` (already canonical); with `archive_others`, the model's other versions in
    /// that stage move to `Archived`.
    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_others: bool,
    ) -> Result<()> {
        let now = now_ms();
        self.write(async |tx| {
            live_version_id(tx, name, version).await?;
            if archive_others {
                sqlx::query(
                    "UPDATE model_versions SET current_stage = 'Archived', last_updated_timestamp_ms = $1 \
                     WHERE name = $2 AND version != $3 AND current_stage = $4",
                )
                .bind(now)
                .bind(name)
                .bind(version)
                .bind(stage)
                .execute(&mut **tx)
                .await?;
            }
            sqlx::query(
                "UPDATE model_versions SET current_stage = $1, last_updated_timestamp_ms = $2 WHERE name = $3 AND version = $4",
            )
            .bind(stage)
            .bind(now)
            .bind(name)
            .bind(version)
            .execute(&mut **tx)
            .await?;
            touch_model(tx, name, now).await?;
            Ok(())
        })
        .await
    }

    /// Soft-deletes a version: its number stays taken, its source and run are redacted, and the aliases that
    /// pointed at it are removed.
    pub async fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        let now = now_ms();
        self.write(async |tx| {
            live_version_id(tx, name, version).await?;
            sqlx::query(
                "UPDATE model_versions SET current_stage = $1, description = NULL, status_message = NULL, \
                 source = 'REDACTED-SOURCE-PATH', storage_location = 'REDACTED-SOURCE-PATH', \
                 run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', last_updated_timestamp_ms = $2 \
                 WHERE name = $3 AND version = $4",
            )
            .bind(DELETED_STAGE)
            .bind(now)
            .bind(name)
            .bind(version)
            .execute(&mut **tx)
            .await?;
            sqlx::query("DELETE FROM registered_model_aliases WHERE name = $1 AND version = $2")
                .bind(name)
                .bind(version)
                .execute(&mut **tx)
                .await?;
            touch_model(tx, name, now).await?;
            Ok(())
        })
        .await
    }

    pub async fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<()> {
        self.write(async |tx| {
            let id = live_version_id(tx, name, version).await?;
            upsert_version_tag(tx, id, tag).await?;
            Ok(())
        })
        .await
    }

    pub async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        self.write(async |tx| {
            let id = live_version_id(tx, name, version).await?;
            sqlx::query("DELETE FROM model_version_tags WHERE version_id = $1 AND key = $2")
                .bind(id)
                .bind(key)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
        .await
    }

    /// One page of live versions.
    pub async fn search_model_versions(
        &self,
        query: &Query,
        hide_prompts: bool,
    ) -> Result<Vec<ModelVersion>> {
        let target = Target::MODEL_VERSIONS;
        let mut sql = Sql::new(&format!("SELECT {MV_COLUMNS} FROM model_versions v"));
        let order = search::order_joins(&target, &query.order_by, &mut sql)?;
        sql.push(" WHERE v.current_stage != ").str(DELETED_STAGE);
        filter_page(&target, query, hide_prompts.then_some("v.name"), &order, &mut sql)?;
        let versions = self.read_all(&sql, version_from_row).await?;
        self.load_versions(versions, true).await
    }

    /// The live version with the highest number in each of `stages` (every stage when empty), in the order
    /// the stages are first met walking the versions by number.
    pub async fn latest_model_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>> {
        let model = self
            .get_registered_model(name)
            .await?
            .ok_or_else(|| model_not_found(name))?;
        let mut out = Vec::new();
        for v in model.latest_versions {
            if stages.is_empty() || stages.iter().any(|s| s == &v.current_stage) {
                // Reload with aliases (latest_versions entries have none).
                if let Some(full) = self.get_model_version(name, v.version).await? {
                    out.push(full);
                }
            }
        }
        Ok(out)
    }

    /// Fills in tags and, if asked, aliases.
    async fn load_versions(
        &self,
        versions: Vec<(i64, ModelVersion)>,
        with_aliases: bool,
    ) -> Result<Vec<ModelVersion>> {
        if versions.is_empty() {
            return Ok(Vec::new());
        }
        let index: HashMap<i64, usize> = versions
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        let mut out: Vec<ModelVersion> = versions.into_iter().map(|(_, v)| v).collect();
        let ids = index.keys().map(|id| Arg::I64(*id)).collect();
        for (id, tag) in self.key_values::<i64>("model_version_tags", "version_id", ids).await? {
            out[index[&id]].tags.push(tag);
        }
        if with_aliases {
            let mut names: Vec<String> = out.iter().map(|v| v.name.clone()).collect();
            names.sort();
            names.dedup();
            let mut sql = Sql::new("SELECT name, alias, version FROM registered_model_aliases WHERE name IN ");
            sql.list(names.into_iter().map(Arg::Str)).push(" ORDER BY alias");
            let by_key: HashMap<(String, i64), usize> = out
                .iter()
                .enumerate()
                .map(|(i, v)| ((v.name.clone(), v.version), i))
                .collect();
            for row in sql.query().fetch_all(self.reader()).await? {
                let key = (get::<String>(&row, "name")?, get::<i64>(&row, "version")?);
                if let Some(&i) = by_key.get(&key) {
                    out[i].aliases.push(get(&row, "alias")?);
                }
            }
        }
        Ok(out)
    }

    // ----------------------------------------------------------------------------------------------- aliases

    /// Points `alias` at a live version (moving it if it pointed elsewhere).
    pub async fn set_registered_model_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        self.write(async |tx| {
            live_version_id(tx, name, version).await?;
            sqlx::query(
                "INSERT INTO registered_model_aliases (name, alias, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
            )
            .bind(name)
            .bind(alias)
            .bind(version)
            .execute(&mut **tx)
            .await?;
            Ok(())
        })
        .await
    }

    /// Removing an alias that is not set is not an error; a missing model is.
    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.delete_model_row("DELETE FROM registered_model_aliases WHERE name = $1 AND alias = $2", name, alias)
            .await
    }

    /// The version number an alias points at.
    pub async fn get_registered_model_alias(&self, name: &str, alias: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2")
            .bind(name)
            .bind(alias)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| get(&r, "version")).transpose()
    }
}

/// The rest of a registry search after its first WHERE condition: prompts left out (when `hide_prompts_of`
/// names the model-name column), the filter clauses, the order and the page.
fn filter_page(
    target: &Target,
    query: &Query,
    hide_prompts_of: Option<&str>,
    order: &[search::SortKey],
    sql: &mut Sql,
) -> Result<()> {
    if let Some(name_column) = hide_prompts_of {
        sql.push(&format!(
            " AND NOT EXISTS (SELECT 1 FROM registered_model_tags p WHERE p.name = {name_column} AND p.key = "
        ))
        .str(PROMPT_TAG)
        .push(" AND LOWER(p.value) = 'true')");
    }
    search::clauses_and_page(target, query, order, sql)
}

/// A change to one of a model's versions is a change to the model: its last-updated time moves too.
async fn touch_model(tx: &mut Tx<'_>, name: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE registered_models SET last_updated_timestamp_ms = $1 WHERE name = $2")
        .bind(now)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn upsert_model_tag(tx: &mut Tx<'_>, name: &str, t: &Tag) -> Result<()> {
    sqlx::query(
        "INSERT INTO registered_model_tags (name, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(&t.key)
    .bind(&t.value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn upsert_version_tag(tx: &mut Tx<'_>, id: i64, t: &Tag) -> Result<()> {
    sqlx::query(
        "INSERT INTO model_version_tags (version_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (version_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(id)
    .bind(&t.key)
    .bind(&t.value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
