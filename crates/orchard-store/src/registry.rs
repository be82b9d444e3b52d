//! The model registry: registered models, their numbered versions, tags and aliases.
//!
//! Versions are never removed one by one: a deleted version keeps its row with the stage
//! [`crate::model::DELETED_STAGE`], so its number is never handed out again (MLflow's rule). Deleting a registered model
//! removes everything of it.

use std::collections::{BTreeSet, HashMap};

use sqlx::any::AnyRow;

use crate::experiments::unique_to_exists;
use crate::query::Query;
use crate::search::{self, Target};
use crate::sql::{exec, statement, Arg, Sql, Tx};
use crate::values::{from_columns, get, now_ms};
use crate::error::{Result, StoreError};
use crate::{positions, upsert_key_value, Store};
use crate::model::{ModelVersion, NewModelVersion, RegisteredModel, Tag, DELETED_STAGE, PROMPT_TAG};

const RM_COLUMNS: &str = "m.name, m.creation_timestamp_ms, m.last_updated_timestamp_ms, m.description";

const MV_COLUMNS: &str = "v.id, v.name, v.version, v.creation_timestamp_ms, v.last_updated_timestamp_ms, \
    v.description, v.current_stage, v.source, v.storage_location, v.run_id, v.run_link, v.status, \
    v.status_message, v.model_id";

fn model_from_row(row: &AnyRow) -> Result<RegisteredModel> {
    Ok(from_columns!(row, RegisteredModel {
        name, creation_timestamp_ms, last_updated_timestamp_ms, description;
        tags: Vec::new(),
        aliases: Vec::new(),
        latest_versions: Vec::new(),
    }))
}

/// A version row and its surrogate id (the key of its tags).
fn version_from_row(row: &AnyRow) -> Result<(i64, ModelVersion)> {
    let version = from_columns!(row, ModelVersion {
        name, version, creation_timestamp_ms, last_updated_timestamp_ms, description, current_stage,
        source, storage_location, run_id, run_link, status, status_message, model_id;
        tags: Vec::new(),
        aliases: Vec::new(),
    });
    Ok((get(row, "id")?, version))
}

fn model_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("Registered Model with name={name}"))
}

fn version_not_found(name: &str, version: i64) -> StoreError {
    StoreError::NotFound(format!("Model Version (name={name}, version={version})"))
}

/// An empty description (or run id, link, model id) is stored as NULL: not set, as MLflow has it.
fn non_empty(text: Option<&str>) -> Arg {
    text.filter(|t| !t.is_empty()).into()
}

async fn model_exists(tx: &mut Tx<'_>, name: &str) -> Result<bool> {
    let text = "SELECT 1 FROM registered_models WHERE name = $1";
    Ok(statement(text, &[name.into()]).fetch_optional(&mut **tx).await?.is_some())
}

/// Fails with "not found" unless the model exists.
async fn check_model(tx: &mut Tx<'_>, name: &str) -> Result<()> {
    if !model_exists(tx, name).await? {
        return Err(model_not_found(name));
    }
    Ok(())
}

/// The surrogate id of a live version.
async fn live_version_id(tx: &mut Tx<'_>, name: &str, version: i64) -> Result<i64> {
    let row = statement(
        "SELECT id FROM model_versions WHERE name = $1 AND version = $2 AND current_stage != $3",
        &[name.into(), version.into(), DELETED_STAGE.into()],
    )
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(r) => get(&r, "id"),
        None => Err(version_not_found(name, version)),
    }
}

impl Store {
    // ------------------------------------------------------------------------------------- registered models

    pub async fn create_registered_model(&self, name: &str, description: Option<&str>, tags: &[Tag]) -> Result<RegisteredModel> {
        let now = now_ms();
        self.write(async |tx| {
            if model_exists(tx, name).await? {
                return Err(StoreError::AlreadyExists(format!("Registered Model (name={name})")));
            }
            exec(
                &mut **tx,
                "INSERT INTO registered_models (name, creation_timestamp_ms, last_updated_timestamp_ms, description) \
                 VALUES ($1, $2, $2, $3)",
                &[name.into(), now.into(), non_empty(description)],
            )
            .await
            .map_err(|e| unique_to_exists(e, name))?;
            for t in tags {
                upsert_key_value(tx, Target::REGISTERED_MODELS.tags, name.into(), t).await?;
            }
            Ok(())
        })
        .await?;
        self.get_registered_model(name)
            .await?
            .ok_or_else(|| model_not_found(name))
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<Option<RegisteredModel>> {
        let mut sql = Sql::new(&format!("SELECT {RM_COLUMNS} FROM registered_models m WHERE m.name = "));
        sql.str(name);
        Ok(self.registered_models(&sql).await?.pop())
    }

    /// Renames a model; its versions, tags and aliases follow (the foreign keys cascade).
    pub async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<()> {
        let now = now_ms();
        self.write(async |tx| {
            check_model(tx, name).await?;
            if name != new_name && model_exists(tx, new_name).await? {
                return Err(StoreError::AlreadyExists(format!(
                    "Registered Model (name={new_name})"
                )));
            }
            exec(
                &mut **tx,
                "UPDATE registered_models SET name = $1, last_updated_timestamp_ms = $2 WHERE name = $3",
                &[new_name.into(), now.into(), name.into()],
            )
            .await
            .map_err(|e| unique_to_exists(e, new_name))?;
            let touch_versions = "UPDATE model_versions SET last_updated_timestamp_ms = $1 WHERE name = $2";
            exec(&mut **tx, touch_versions, &[now.into(), new_name.into()]).await?;
            Ok(())
        })
        .await
    }

    /// Sets (or with `None` clears) the description.
    pub async fn update_registered_model(&self, name: &str, description: Option<&str>) -> Result<()> {
        let changed = exec(
            self.writer(),
            "UPDATE registered_models SET description = $1, last_updated_timestamp_ms = $2 WHERE name = $3",
            &[non_empty(description), now_ms().into(), name.into()],
        )
        .await?;
        if changed == 0 {
            return Err(model_not_found(name));
        }
        Ok(())
    }

    /// Removes the model with all its versions (deleted ones too), tags and aliases.
    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.write(async |tx| {
            check_model(tx, name).await?;
            // Explicit deletes rather than relying on ON DELETE CASCADE alone: the order is the same on both
            // engines and nothing depends on a connection's foreign-key pragma.
            let version_tags =
                "DELETE FROM model_version_tags WHERE version_id IN (SELECT id FROM model_versions WHERE name = $1)";
            exec(&mut **tx, version_tags, &[name.into()]).await?;
            for table in [
                "model_versions",
                "registered_model_aliases",
                "registered_model_tags",
                "registered_models",
            ] {
                exec(&mut **tx, &format!("DELETE FROM {table} WHERE name = $1"), &[name.into()]).await?;
            }
            Ok(())
        })
        .await
    }

    pub async fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<()> {
        self.write(async |tx| {
            check_model(tx, name).await?;
            upsert_key_value(tx, Target::REGISTERED_MODELS.tags, name.into(), tag).await
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
            check_model(tx, name).await?;
            exec(&mut **tx, sql, &[name.into(), second.into()]).await?;
            Ok(())
        })
        .await
    }

    /// One page of registered models. `hide_prompts` leaves out models tagged as prompts.
    pub async fn search_registered_models(&self, query: &Query, hide_prompts: bool) -> Result<Vec<RegisteredModel>> {
        let select = format!("SELECT {RM_COLUMNS} FROM registered_models m");
        let sql = search::page(&Target::REGISTERED_MODELS, &select, query, |sql| live_rows(sql, "1 = 1", hide_prompts, "m.name"))?;
        self.registered_models(&sql).await
    }

    /// The registered models `sql` selects (the columns [`RM_COLUMNS`]), with their tags, aliases and latest
    /// versions.
    async fn registered_models(&self, sql: &Sql) -> Result<Vec<RegisteredModel>> {
        let name = |m: &RegisteredModel| m.name.clone();
        let mut models = self.read_tagged(sql, model_from_row, Target::REGISTERED_MODELS.tags, name, |m| &mut m.tags).await?;
        // (An empty page reads on: its look-ups are by an empty list, which matches no row.)
        let index = positions(&models, name);
        for (name, alias, version) in self.aliases_of(index.keys().cloned()).await? {
            models[index[&name]].aliases.push((alias, version));
        }
        // Latest version per stage: walk the live versions in number order, keeping the highest per stage in
        // the order the stages are first met.
        let mut sql = Sql::new(&format!(
            "SELECT {MV_COLUMNS} FROM model_versions v WHERE v.current_stage != "
        ));
        sql.str(DELETED_STAGE)
            .push(" AND v.name IN ")
            .list(index.keys().map(|k| Arg::Str(k.clone())))
            .push(" ORDER BY v.name, v.version");
        let mut latest: Vec<Vec<(i64, ModelVersion)>> = vec![Vec::new(); models.len()];
        for (id, v) in self.read_all(&sql, version_from_row).await? {
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
            if statement(lock, &[(&new.name).into()]).fetch_optional(&mut **tx).await?.is_none() {
                return Err(model_not_found(&new.name));
            }
            let highest = "SELECT COALESCE(MAX(version), 0) AS n FROM model_versions WHERE name = $1";
            let row = statement(highest, &[(&new.name).into()]).fetch_one(&mut **tx).await?;
            let version = get::<i64>(&row, "n")? + 1;
            let row = statement(
                "INSERT INTO model_versions (name, version, creation_timestamp_ms, last_updated_timestamp_ms, \
                 description, current_stage, source, storage_location, run_id, run_link, status, model_id) \
                 VALUES ($1, $2, $3, $3, $4, 'None', $5, $6, $7, $8, 'READY', $9) RETURNING id",
                &[
                    (&new.name).into(),
                    version.into(),
                    now.into(),
                    non_empty(new.description.as_deref()),
                    (&new.source).into(),
                    (&new.storage_location).into(),
                    non_empty(new.run_id.as_deref()),
                    non_empty(new.run_link.as_deref()),
                    non_empty(new.model_id.as_deref()),
                ],
            )
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| unique_to_exists(e, &format!("{} version {version}", new.name)))?;
            let id: i64 = get(&row, "id")?;
            for t in &new.tags {
                upsert_key_value(tx, Target::MODEL_VERSIONS.tags, id.into(), t).await?;
            }
            touch_model(tx, &new.name, now).await?;
            Ok(version)
        })
        .await
    }

    /// A live (not deleted) version, with its tags and aliases.
    pub async fn get_model_version(&self, name: &str, version: i64) -> Result<Option<ModelVersion>> {
        let mut sql = Sql::new(&format!("SELECT {MV_COLUMNS} FROM model_versions v WHERE v.name = "));
        sql.str(name)
            .push(" AND v.version = ")
            .i64(version)
            .push(" AND v.current_stage != ")
            .str(DELETED_STAGE);
        Ok(self.model_versions(&sql).await?.pop())
    }

    /// Sets (or with `None` clears) a version's description.
    pub async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> Result<()> {
        let changed = exec(
            self.writer(),
            "UPDATE model_versions SET description = $1, last_updated_timestamp_ms = $2 \
             WHERE name = $3 AND version = $4 AND current_stage != $5",
            &[non_empty(description), now_ms().into(), name.into(), version.into(), DELETED_STAGE.into()],
        )
        .await?;
        if changed == 0 {
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
                exec(
                    &mut **tx,
                    "UPDATE model_versions SET current_stage = 'Archived', last_updated_timestamp_ms = $1 \
                     WHERE name = $2 AND version != $3 AND current_stage = $4",
                    &[now.into(), name.into(), version.into(), stage.into()],
                )
                .await?;
            }
            exec(
                &mut **tx,
                "UPDATE model_versions SET current_stage = $1, last_updated_timestamp_ms = $2 WHERE name = $3 AND version = $4",
                &[stage.into(), now.into(), name.into(), version.into()],
            )
            .await?;
            touch_model(tx, name, now).await
        })
        .await
    }

    /// Soft-deletes a version: its number stays taken, its source and run are redacted, and the aliases that
    /// pointed at it are removed.
    pub async fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        let now = now_ms();
        self.write(async |tx| {
            live_version_id(tx, name, version).await?;
            exec(
                &mut **tx,
                "UPDATE model_versions SET current_stage = $1, description = NULL, status_message = NULL, \
                 source = 'REDACTED-SOURCE-PATH', storage_location = 'REDACTED-SOURCE-PATH', \
                 run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', last_updated_timestamp_ms = $2 \
                 WHERE name = $3 AND version = $4",
                &[DELETED_STAGE.into(), now.into(), name.into(), version.into()],
            )
            .await?;
            let aliases = "DELETE FROM registered_model_aliases WHERE name = $1 AND version = $2";
            exec(&mut **tx, aliases, &[name.into(), version.into()]).await?;
            touch_model(tx, name, now).await
        })
        .await
    }

    pub async fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<()> {
        self.write(async |tx| {
            let id = live_version_id(tx, name, version).await?;
            upsert_key_value(tx, Target::MODEL_VERSIONS.tags, id.into(), tag).await
        })
        .await
    }

    pub async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        self.write(async |tx| {
            let id = live_version_id(tx, name, version).await?;
            let text = "DELETE FROM model_version_tags WHERE version_id = $1 AND key = $2";
            exec(&mut **tx, text, &[id.into(), key.into()]).await?;
            Ok(())
        })
        .await
    }

    /// One page of live versions.
    pub async fn search_model_versions(&self, query: &Query, hide_prompts: bool) -> Result<Vec<ModelVersion>> {
        let select = format!("SELECT {MV_COLUMNS} FROM model_versions v");
        let live = format!("v.current_stage != '{DELETED_STAGE}'");
        let sql = search::page(&Target::MODEL_VERSIONS, &select, query, |sql| live_rows(sql, &live, hide_prompts, "v.name"))?;
        self.model_versions(&sql).await
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

    /// The versions `sql` selects (the columns [`MV_COLUMNS`]), with their tags and aliases.
    async fn model_versions(&self, sql: &Sql) -> Result<Vec<ModelVersion>> {
        let versions = self.read_all(sql, version_from_row).await?;
        self.load_versions(versions, true).await
    }

    /// Fills in tags and, if asked, aliases.
    async fn load_versions(
        &self,
        mut versions: Vec<(i64, ModelVersion)>,
        with_aliases: bool,
    ) -> Result<Vec<ModelVersion>> {
        let tags = Target::MODEL_VERSIONS.tags;
        self.attach_key_values(&mut versions, tags, |(id, _)| *id, |(_, v)| &mut v.tags).await?;
        let mut out: Vec<ModelVersion> = versions.into_iter().map(|(_, v)| v).collect();
        if with_aliases && !out.is_empty() {
            let by_key = positions(&out, |v| (v.name.clone(), v.version));
            for (name, alias, version) in self.aliases_of(out.iter().map(|v| v.name.clone())).await? {
                if let Some(&i) = by_key.get(&(name, version)) {
                    out[i].aliases.push(alias);
                }
            }
        }
        Ok(out)
    }

    /// The aliases of the models named (at least one), as (model, alias, version number), ordered by alias.
    async fn aliases_of(&self, names: impl Iterator<Item = String>) -> Result<Vec<(String, String, i64)>> {
        let names: BTreeSet<String> = names.collect();
        let mut sql = Sql::new("SELECT name, alias, version FROM registered_model_aliases WHERE name IN ");
        sql.list(names.into_iter().map(Arg::Str)).push(" ORDER BY alias");
        let rows = sql.query().fetch_all(self.reader()).await?;
        rows.iter()
            .map(|r| Ok((get(r, "name")?, get(r, "alias")?, get(r, "version")?)))
            .collect()
    }

    // ----------------------------------------------------------------------------------------------- aliases

    /// Points `alias` at a live version (moving it if it pointed elsewhere).
    pub async fn set_registered_model_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        self.write(async |tx| {
            live_version_id(tx, name, version).await?;
            exec(
                &mut **tx,
                "INSERT INTO registered_model_aliases (name, alias, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
                &[name.into(), alias.into(), version.into()],
            )
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
        let text = "SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2";
        let row = statement(text, &[name.into(), alias.into()]).fetch_optional(self.reader()).await?;
        row.map(|r| get(&r, "version")).transpose()
    }
}

/// ` WHERE live` for a registry search, and the models tagged as prompts left out when `hide_prompts`.
fn live_rows(sql: &mut Sql, live: &str, hide_prompts: bool, name_column: &str) {
    sql.push(" WHERE ").push(live);
    if hide_prompts {
        leave_out_prompts(name_column, sql);
    }
}

/// ` AND NOT EXISTS (…)`: leaves out the models tagged as prompts, `name_column` naming the model.
fn leave_out_prompts(name_column: &str, sql: &mut Sql) {
    sql.push(&format!(
        " AND NOT EXISTS (SELECT 1 FROM registered_model_tags p WHERE p.name = {name_column} AND p.key = "
    ))
    .str(PROMPT_TAG)
    .push(" AND LOWER(p.value) = 'true')");
}

/// A change to one of a model's versions is a change to the model: its last-updated time moves too.
async fn touch_model(tx: &mut Tx<'_>, name: &str, now: i64) -> Result<()> {
    let text = "UPDATE registered_models SET last_updated_timestamp_ms = $1 WHERE name = $2";
    exec(&mut **tx, text, &[now.into(), name.into()]).await?;
    Ok(())
}
