//! Runs: creation, updates, logging (params, metrics, tags in one transaction), inputs/outputs and search.

use std::collections::{BTreeMap, HashMap};

use sqlx::any::AnyRow;
use sqlx::{Acquire, Any, Transaction};

use crate::query::Query;
use crate::search::{self, Target};
use crate::sql::{Arg, Sql};
use crate::{
    get, now_ms, DatasetInput, Metric, ModelOutput, NewRun, Result, Run, RunInfo, RunUpdate, Store, StoreError, Tag,
    ACTIVE, DELETED,
};

/// MLflow keeps the run name both as a column and as this tag.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

const INFO_COLUMNS: &str =
    "r.run_uuid, r.name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage";

/// Rows per multi-row INSERT: keeps the statement under SQLite's bound-variable limit.
const CHUNK: usize = 100;

fn info_from_row(row: &AnyRow) -> Result<RunInfo> {
    Ok(RunInfo {
        run_id: get(row, "run_uuid")?,
        run_name: get(row, "name")?,
        experiment_id: get::<i64>(row, "experiment_id")?.to_string(),
        user_id: get(row, "user_id")?,
        status: get(row, "status")?,
        start_time: get(row, "start_time")?,
        end_time: get(row, "end_time")?,
        artifact_uri: get(row, "artifact_uri")?,
        lifecycle_stage: get(row, "lifecycle_stage")?,
    })
}

pub(crate) fn metric_value(row: &AnyRow) -> Result<f64> {
    let is_nan: i64 = get(row, "is_nan")?;
    Ok(if is_nan != 0 { f64::NAN } else { get(row, "value")? })
}

/// NaN cannot be stored in a SQLite REAL: store (0, is_nan = 1) instead.
pub(crate) fn stored_value(v: f64) -> (f64, i64) {
    if v.is_nan() {
        (0.0, 1)
    } else {
        (v, 0)
    }
}

impl Store {
    pub async fn create_run(&self, run: &NewRun) -> Result<RunInfo> {
        let mut conn = self.writer().acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, 'active')",
        )
        .bind(&run.run_id)
        .bind(&run.run_name)
        .bind(run.experiment_id)
        .bind(&run.user_id)
        .bind(&run.status)
        .bind(run.start_time)
        .bind(&run.artifact_uri)
        .execute(&mut *tx)
        .await?;
        upsert_tags(&mut tx, &run.run_id, &run.tags).await?;
        tx.commit().await?;
        Ok(RunInfo {
            run_id: run.run_id.clone(),
            run_name: run.run_name.clone(),
            experiment_id: run.experiment_id.to_string(),
            user_id: run.user_id.clone(),
            status: run.status.clone(),
            start_time: run.start_time,
            end_time: None,
            artifact_uri: run.artifact_uri.clone(),
            lifecycle_stage: ACTIVE.into(),
        })
    }

    pub async fn get_run_info(&self, run_id: &str) -> Result<Option<RunInfo>> {
        let row = sqlx::query(&format!("SELECT {INFO_COLUMNS} FROM runs r WHERE r.run_uuid = $1"))
            .bind(run_id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(info_from_row).transpose()
    }

    /// A run with its latest metrics, params, tags, inputs and outputs.
    pub async fn get_run(&self, run_id: &str) -> Result<Option<Run>> {
        let Some(info) = self.get_run_info(run_id).await? else { return Ok(None) };
        Ok(self.load_runs(vec![info]).await?.pop())
    }

    pub async fn update_run(&self, run_id: &str, update: &RunUpdate) -> Result<RunInfo> {
        let mut conn = self.writer().acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(&format!("SELECT {INFO_COLUMNS} FROM runs r WHERE r.run_uuid = $1"))
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("Run with id={run_id}")))?;
        let mut info = info_from_row(&row)?;
        if let Some(status) = &update.status {
            info.status = status.clone();
        }
        if let Some(end) = update.end_time {
            info.end_time = Some(end);
        }
        if let Some(name) = &update.run_name {
            info.run_name = name.clone();
            upsert_tags(&mut tx, run_id, &[Tag::new(RUN_NAME_TAG, name.clone())]).await?;
        }
        sqlx::query("UPDATE runs SET status = $1, end_time = $2, name = $3 WHERE run_uuid = $4")
            .bind(&info.status)
            .bind(info.end_time)
            .bind(&info.run_name)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Marks a run deleted or active again.
    pub async fn set_run_deleted(&self, run_id: &str, deleted: bool) -> Result<()> {
        let (stage, time) = if deleted { (DELETED, Some(now_ms())) } else { (ACTIVE, None) };
        let done = sqlx::query("UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE run_uuid = $3")
            .bind(stage)
            .bind(time)
            .bind(run_id)
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("Run with id={run_id}")));
        }
        Ok(())
    }

    /// Logs metrics, params and tags to an active run in one transaction: all of them or none.
    pub async fn log_batch(&self, run_id: &str, metrics: &[Metric], params: &[Tag], tags: &[Tag]) -> Result<()> {
        let mut conn = self.writer().acquire().await?;
        let mut tx = conn.begin().await?;
        check_active(&mut tx, run_id).await?;
        insert_params(&mut tx, run_id, params).await?;
        insert_metrics(&mut tx, run_id, metrics).await?;
        upsert_tags(&mut tx, run_id, tags).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Returns whether the tag existed.
    pub async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<bool> {
        let mut conn = self.writer().acquire().await?;
        let mut tx = conn.begin().await?;
        check_active(&mut tx, run_id).await?;
        let done = sqlx::query("DELETE FROM tags WHERE run_uuid = $1 AND key = $2")
            .bind(run_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records datasets (deduplicated per experiment by name and digest) and models as inputs of a run.
    pub async fn log_inputs(&self, run_id: &str, datasets: &[DatasetInput], models: &[String]) -> Result<()> {
        let mut conn = self.writer().acquire().await?;
        let mut tx = conn.begin().await?;
        let experiment_id = check_active(&mut tx, run_id).await?;
        for input in datasets {
            let d = &input.dataset;
            let existing = sqlx::query(
                "SELECT dataset_uuid FROM datasets WHERE experiment_id = $1 AND name = $2 AND digest = $3",
            )
            .bind(experiment_id)
            .bind(&d.name)
            .bind(&d.digest)
            .fetch_optional(&mut *tx)
            .await?;
            let dataset_uuid = match existing {
                Some(row) => get::<String>(&row, "dataset_uuid")?,
                None => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    sqlx::query(
                        "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&id)
                    .bind(experiment_id)
                    .bind(&d.name)
                    .bind(&d.digest)
                    .bind(&d.source_type)
                    .bind(&d.source)
                    .bind(d.schema.as_deref())
                    .bind(d.profile.as_deref())
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            sqlx::query(
                "INSERT INTO run_inputs (run_uuid, dataset_uuid, position) \
                 VALUES ($1, $2, (SELECT COUNT(*) FROM run_inputs WHERE run_uuid = $1)) ON CONFLICT DO NOTHING",
            )
            .bind(run_id)
            .bind(&dataset_uuid)
            .execute(&mut *tx)
            .await?;
            for tag in &input.tags {
                sqlx::query(
                    "INSERT INTO run_input_tags (run_uuid, dataset_uuid, key, value) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (run_uuid, dataset_uuid, key) DO UPDATE SET value = excluded.value",
                )
                .bind(run_id)
                .bind(&dataset_uuid)
                .bind(&tag.key)
                .bind(&tag.value)
                .execute(&mut *tx)
                .await?;
            }
        }
        for model_id in models {
            sqlx::query("INSERT INTO run_model_inputs (run_uuid, model_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(run_id)
                .bind(model_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records models as outputs of a run.
    pub async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        let mut conn = self.writer().acquire().await?;
        let mut tx = conn.begin().await?;
        check_active(&mut tx, run_id).await?;
        for m in models {
            sqlx::query(
                "INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES ($1, $2, $3) \
                 ON CONFLICT (run_uuid, model_id) DO UPDATE SET step = excluded.step",
            )
            .bind(run_id)
            .bind(&m.model_id)
            .bind(m.step)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Searches runs in the database and returns one page of them, complete.
    pub async fn search_runs(&self, query: &Query) -> Result<Vec<Run>> {
        if query.experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let target = Target::RUNS;
        let mut sql = Sql::new(&format!("SELECT {INFO_COLUMNS} FROM runs r"));
        let order = search::order_joins(&target, &query.order_by, &mut sql)?;
        sql.push(" WHERE r.experiment_id IN ").list(query.experiment_ids.iter().map(|id| Arg::I64(*id)));
        sql.push(" AND ");
        search::lifecycle_clause(&target, query.view, &mut sql);
        for clause in &query.clauses {
            sql.push(" AND ");
            search::filter_clause(&target, clause, &mut sql)?;
        }
        sql.push(" ORDER BY ").push(&order).push(" LIMIT ").i64(query.limit).push(" OFFSET ").i64(query.offset);
        let rows = sql.query().fetch_all(self.reader()).await?;
        let infos = rows.iter().map(info_from_row).collect::<Result<Vec<_>>>()?;
        self.load_runs(infos).await
    }

    /// Fills in the data of the given runs with one query per kind of child row.
    async fn load_runs(&self, infos: Vec<RunInfo>) -> Result<Vec<Run>> {
        if infos.is_empty() {
            return Ok(Vec::new());
        }
        let index: HashMap<String, usize> = infos.iter().enumerate().map(|(i, r)| (r.run_id.clone(), i)).collect();
        let mut runs: Vec<Run> = infos
            .into_iter()
            .map(|info| Run {
                info,
                metrics: Vec::new(),
                params: Vec::new(),
                tags: Vec::new(),
                dataset_inputs: Vec::new(),
                model_inputs: Vec::new(),
                model_outputs: Vec::new(),
            })
            .collect();
        let ids = || runs_ids(&index);
        let select = |cols: &str, table: &str| {
            let mut sql = Sql::new(&format!("SELECT {cols} FROM {table} WHERE run_uuid IN "));
            sql.list(ids());
            sql
        };
        let mut sql = select("run_uuid, key, value", "params");
        sql.push(" ORDER BY key");
        for row in sql.query().fetch_all(self.reader()).await? {
            runs[index[&get::<String>(&row, "run_uuid")?]].params.push(Tag { key: get(&row, "key")?, value: get(&row, "value")? });
        }
        let mut sql = select("run_uuid, key, value", "tags");
        sql.push(" ORDER BY key");
        for row in sql.query().fetch_all(self.reader()).await? {
            runs[index[&get::<String>(&row, "run_uuid")?]].tags.push(Tag { key: get(&row, "key")?, value: get(&row, "value")? });
        }
        let mut sql = select("run_uuid, key, value, is_nan, timestamp, step", "latest_metrics");
        sql.push(" ORDER BY key");
        for row in sql.query().fetch_all(self.reader()).await? {
            let metric = Metric::new(get::<String>(&row, "key")?, metric_value(&row)?, get(&row, "timestamp")?, get(&row, "step")?);
            runs[index[&get::<String>(&row, "run_uuid")?]].metrics.push(metric);
        }
        let mut sql = Sql::new(
            "SELECT ri.run_uuid, ri.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema, d.profile \
             FROM run_inputs ri JOIN datasets d ON d.dataset_uuid = ri.dataset_uuid WHERE ri.run_uuid IN ",
        );
        sql.list(ids()).push(" ORDER BY ri.position");
        let input_rows = sql.query().fetch_all(self.reader()).await?;
        if !input_rows.is_empty() {
            let mut input_tags: BTreeMap<(String, String), Vec<Tag>> = BTreeMap::new();
            let mut sql = select("run_uuid, dataset_uuid, key, value", "run_input_tags");
            sql.push(" ORDER BY key");
            for row in sql.query().fetch_all(self.reader()).await? {
                input_tags
                    .entry((get(&row, "run_uuid")?, get(&row, "dataset_uuid")?))
                    .or_default()
                    .push(Tag { key: get(&row, "key")?, value: get(&row, "value")? });
            }
            for row in input_rows {
                let run_id: String = get(&row, "run_uuid")?;
                let dataset_uuid: String = get(&row, "dataset_uuid")?;
                let tags = input_tags.remove(&(run_id.clone(), dataset_uuid)).unwrap_or_default();
                runs[index[&run_id]].dataset_inputs.push(DatasetInput {
                    tags,
                    dataset: crate::Dataset {
                        name: get(&row, "name")?,
                        digest: get(&row, "digest")?,
                        source_type: get(&row, "source_type")?,
                        source: get(&row, "source")?,
                        schema: get(&row, "schema")?,
                        profile: get(&row, "profile")?,
                    },
                });
            }
        }
        for row in select("run_uuid, model_id", "run_model_inputs").query().fetch_all(self.reader()).await? {
            runs[index[&get::<String>(&row, "run_uuid")?]].model_inputs.push(get(&row, "model_id")?);
        }
        for row in select("run_uuid, model_id, step", "run_model_outputs").query().fetch_all(self.reader()).await? {
            runs[index[&get::<String>(&row, "run_uuid")?]]
                .model_outputs
                .push(ModelOutput { model_id: get(&row, "model_id")?, step: get(&row, "step")? });
        }
        Ok(runs)
    }
}

fn runs_ids(index: &HashMap<String, usize>) -> impl Iterator<Item = Arg> + '_ {
    index.keys().map(|k| Arg::Str(k.clone()))
}

/// Fails unless the run exists and is active; returns its experiment id.
pub(crate) async fn check_active(tx: &mut Transaction<'_, Any>, run_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT lifecycle_stage, experiment_id FROM runs WHERE run_uuid = $1")
        .bind(run_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("Run with id={run_id}")))?;
    let stage: String = get(&row, "lifecycle_stage")?;
    if stage != ACTIVE {
        return Err(StoreError::InactiveRun { run_id: run_id.to_string(), lifecycle_stage: stage });
    }
    get(&row, "experiment_id")
}

pub(crate) async fn upsert_tags(tx: &mut Transaction<'_, Any>, run_id: &str, tags: &[Tag]) -> Result<()> {
    // Last value wins within one batch, as when the tags are set one after another.
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for t in tags {
        last.insert(&t.key, &t.value);
    }
    let tags: Vec<(&str, &str)> = last.into_iter().collect();
    for chunk in tags.chunks(CHUNK) {
        let mut sql = Sql::new("INSERT INTO tags (run_uuid, key, value) VALUES ");
        for (i, (k, v)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" }).str(run_id).push(", ").str(*k).push(", ").str(*v).push(")");
        }
        sql.push(" ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value");
        sql.query().execute(&mut **tx).await?;
    }
    if let Some((_, name)) = tags.iter().find(|(k, _)| *k == RUN_NAME_TAG) {
        sqlx::query("UPDATE runs SET name = $1 WHERE run_uuid = $2").bind(*name).bind(run_id).execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_params(tx: &mut Transaction<'_, Any>, run_id: &str, params: &[Tag]) -> Result<()> {
    if params.is_empty() {
        return Ok(());
    }
    // Params are write-once: find the ones already logged and refuse any change of value.
    let mut sql = Sql::new("SELECT key, value FROM params WHERE run_uuid = ");
    sql.str(run_id).push(" AND key IN ").list(params.iter().map(|p| Arg::Str(p.key.clone())));
    let existing: HashMap<String, String> = sql
        .query()
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| Ok((get(r, "key")?, get(r, "value")?)))
        .collect::<Result<_>>()?;
    let mut fresh = Vec::new();
    for p in params {
        match existing.get(&p.key) {
            Some(old) if *old != p.value => {
                return Err(StoreError::ParamConflict {
                    run_id: run_id.to_string(),
                    key: p.key.clone(),
                    old: old.clone(),
                    new: p.value.clone(),
                })
            }
            Some(_) => {}
            None => fresh.push(p),
        }
    }
    for chunk in fresh.chunks(CHUNK) {
        let mut sql = Sql::new("INSERT INTO params (run_uuid, key, value) VALUES ");
        for (i, p) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" }).str(run_id).push(", ").str(&p.key).push(", ").str(&p.value).push(")");
        }
        sql.push(" ON CONFLICT DO NOTHING");
        sql.query().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Orders points the way "latest" is decided: by step, then timestamp, then value (NaN above all numbers).
fn later(a: &Metric, b: &Metric) -> bool {
    let va = if a.value.is_nan() { f64::INFINITY } else { a.value };
    let vb = if b.value.is_nan() { f64::INFINITY } else { b.value };
    (a.step, a.timestamp).cmp(&(b.step, b.timestamp)).then(va.total_cmp(&vb)).is_gt()
}

async fn insert_metrics(tx: &mut Transaction<'_, Any>, run_id: &str, metrics: &[Metric]) -> Result<()> {
    if metrics.is_empty() {
        return Ok(());
    }
    for chunk in metrics.chunks(CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest) VALUES ",
        );
        for (i, m) in chunk.iter().enumerate() {
            let (value, is_nan) = stored_value(m.value);
            sql.push(if i == 0 { "(" } else { ", (" }).str(run_id).push(", ").str(&m.key).push(", ").i64(m.step);
            sql.push(", ").i64(m.timestamp).push(", ").f64(value).push(", ").i64(is_nan).push(", ");
            opt_str(&mut sql, &m.model_id).push(", ");
            opt_str(&mut sql, &m.dataset_name).push(", ");
            opt_str(&mut sql, &m.dataset_digest).push(")");
        }
        sql.push(" ON CONFLICT DO NOTHING");
        sql.query().execute(&mut **tx).await?;
    }
    // One candidate per key (PostgreSQL refuses to update a row twice in one statement).
    let mut latest: BTreeMap<&str, &Metric> = BTreeMap::new();
    for m in metrics {
        match latest.get(m.key.as_str()) {
            Some(cur) if !later(m, cur) => {}
            _ => {
                latest.insert(&m.key, m);
            }
        }
    }
    let latest: Vec<&Metric> = latest.into_values().collect();
    for chunk in latest.chunks(CHUNK) {
        let mut sql = Sql::new("INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES ");
        for (i, m) in chunk.iter().enumerate() {
            let (value, is_nan) = stored_value(m.value);
            sql.push(if i == 0 { "(" } else { ", (" }).str(run_id).push(", ").str(&m.key).push(", ").i64(m.step);
            sql.push(", ").i64(m.timestamp).push(", ").f64(value).push(", ").i64(is_nan).push(")");
        }
        sql.push(
            " ON CONFLICT (run_uuid, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, \
             value = excluded.value, is_nan = excluded.is_nan \
             WHERE excluded.step > latest_metrics.step \
             OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp) \
             OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp \
                 AND (excluded.is_nan > latest_metrics.is_nan \
                      OR (excluded.is_nan = latest_metrics.is_nan AND excluded.value > latest_metrics.value)))",
        );
        sql.query().execute(&mut **tx).await?;
    }
    // Points logged against a model also belong to that model.
    for m in metrics.iter().filter(|m| m.model_id.is_some()) {
        let (value, is_nan) = stored_value(m.value);
        // Only for models that exist: a point must not fail because its model was never created here.
        sqlx::query(
            "INSERT INTO logged_model_metrics (model_id, key, step, timestamp, value, is_nan, run_uuid, dataset_name, dataset_digest) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM logged_models WHERE model_id = $1) \
             ON CONFLICT DO NOTHING",
        )
        .bind(m.model_id.as_deref())
        .bind(&m.key)
        .bind(m.step)
        .bind(m.timestamp)
        .bind(value)
        .bind(is_nan)
        .bind(run_id)
        .bind(m.dataset_name.as_deref())
        .bind(m.dataset_digest.as_deref())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A nullable string: `NULL` is written inline so the argument list only ever holds values.
fn opt_str<'a>(sql: &'a mut Sql, v: &Option<String>) -> &'a mut Sql {
    match v {
        Some(s) => sql.str(s.clone()),
        None => sql.push("NULL"),
    }
}
