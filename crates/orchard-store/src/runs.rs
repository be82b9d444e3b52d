//! Runs: creation, updates, logging (params, metrics, tags in one transaction), inputs/outputs and search.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;

use crate::log_writer::LogOp;
use crate::query::Query;
use crate::search::{self, Target};
use crate::sql::{exec, statement, Arg, Sql, Tx};
use crate::values::{from_columns, get, now_ms};
use crate::model::{RUN_NAME_TAG, Dataset, DatasetInput, Metric, ModelOutput, NewRun, Run, RunInfo, RunUpdate, Tag, ACTIVE, DELETED};
use crate::error::{Result, StoreError};
use crate::{positions, Store};

const INFO_COLUMNS: &str =
    "r.run_uuid, r.name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage";

fn info_from_row(row: &AnyRow) -> Result<RunInfo> {
    Ok(from_columns!(row, RunInfo {
        user_id, status, start_time, end_time, artifact_uri, lifecycle_stage;
        run_id: get(row, "run_uuid")?,
        run_name: get(row, "name")?,
        experiment_id: get::<i64>(row, "experiment_id")?.to_string(),
    }))
}

fn run_not_found(run_id: &str) -> StoreError {
    StoreError::NotFound(format!("Run with id={run_id}"))
}

/// The info of the run whose id is `$1`.
fn info_of_run() -> String {
    format!("SELECT {INFO_COLUMNS} FROM runs r WHERE r.run_uuid = $1")
}

pub(crate) fn metric_value(row: &AnyRow) -> Result<f64> {
    let is_nan: i64 = get(row, "is_nan")?;
    Ok(if is_nan != 0 {
        f64::NAN
    } else {
        get(row, "value")?
    })
}


impl Store {
    pub async fn create_run(&self, run: &NewRun) -> Result<RunInfo> {
        self.write(async |tx| {
            exec(
                &mut **tx,
                "INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, 'active')",
                &[
                    (&run.run_id).into(),
                    (&run.run_name).into(),
                    run.experiment_id.into(),
                    (&run.user_id).into(),
                    (&run.status).into(),
                    run.start_time.into(),
                    (&run.artifact_uri).into(),
                ],
            )
            .await?;
            upsert_tags(tx, &run.run_id, &run.tags).await
        })
        .await?;
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
        let row = statement(&info_of_run(), &[run_id.into()]).fetch_optional(self.reader()).await?;
        row.as_ref().map(info_from_row).transpose()
    }

    /// A run with its latest metrics, params, tags, inputs and outputs.
    pub async fn get_run(&self, run_id: &str) -> Result<Option<Run>> {
        let mut sql = Sql::new(&format!(
            "WITH page AS (SELECT {INFO_COLUMNS} FROM runs r WHERE r.run_uuid = "
        ));
        sql.str(run_id).push(")");
        Ok(self.page_of_runs(sql, "page.run_uuid").await?.pop())
    }

    /// Several runs by id in one query (the compare page's thousand), in no particular order; ids that name no
    /// run are left out.
    pub async fn get_runs(&self, run_ids: &[String]) -> Result<Vec<Run>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(&format!("WITH page AS (SELECT {INFO_COLUMNS} FROM runs r WHERE r.run_uuid IN "));
        sql.list(run_ids.iter().map(Arg::from)).push(")");
        self.page_of_runs(sql, "page.run_uuid").await
    }

    pub async fn update_run(&self, run_id: &str, update: &RunUpdate) -> Result<RunInfo> {
        self.write(async |tx| {
            let row = statement(&info_of_run(), &[run_id.into()])
                .fetch_optional(&mut **tx)
                .await?
                .ok_or_else(|| run_not_found(run_id))?;
            let mut info = info_from_row(&row)?;
            if let Some(status) = &update.status {
                info.status = status.clone();
            }
            if let Some(end) = update.end_time {
                info.end_time = Some(end);
            }
            if let Some(name) = &update.run_name {
                info.run_name = name.clone();
                upsert_tags(tx, run_id, &[Tag::new(RUN_NAME_TAG, name.clone())]).await?;
            }
            exec(
                &mut **tx,
                "UPDATE runs SET status = $1, end_time = $2, name = $3 WHERE run_uuid = $4",
                &[(&info.status).into(), info.end_time.into(), (&info.run_name).into(), run_id.into()],
            )
            .await?;
            Ok(info)
        })
        .await
    }

    /// Marks a run deleted or active again.
    pub async fn set_run_deleted(&self, run_id: &str, deleted: bool) -> Result<()> {
        let (stage, time) = if deleted {
            (DELETED, Some(now_ms()))
        } else {
            (ACTIVE, None)
        };
        let text = "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE run_uuid = $3";
        if exec(self.writer(), text, &[stage.into(), time.into(), run_id.into()]).await? == 0 {
            return Err(run_not_found(run_id));
        }
        Ok(())
    }

    /// Logs metrics, params and tags to an active run: all of them or none. Concurrent calls are written
    /// together (see [`crate::log_writer`]), each keeping its own outcome.
    pub async fn log_batch(&self, run_id: &str, metrics: &[Metric], params: &[Tag], tags: &[Tag]) -> Result<()> {
        let op = LogOp {
            run_id: run_id.to_string(),
            metrics: metrics.to_vec(),
            params: params.to_vec(),
            tags: tags.to_vec(),
        };
        self.log_writer().submit(op).await
    }

    /// Returns whether the tag existed.
    pub async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<bool> {
        self.write(async |tx| {
            check_active(tx, run_id).await?;
            let text = "DELETE FROM tags WHERE run_uuid = $1 AND key = $2";
            Ok(exec(&mut **tx, text, &[run_id.into(), key.into()]).await? > 0)
        })
        .await
    }

    /// Records datasets (deduplicated per experiment by name and digest) and models as inputs of a run.
    pub async fn log_inputs(&self, run_id: &str, datasets: &[DatasetInput], models: &[String]) -> Result<()> {
        self.write(async |tx| {
            let experiment_id = check_active(tx, run_id).await?;
            for input in datasets {
                let d = &input.dataset;
                let existing = statement(
                    "SELECT dataset_uuid FROM datasets WHERE experiment_id = $1 AND name = $2 AND digest = $3",
                    &[experiment_id.into(), (&d.name).into(), (&d.digest).into()],
                )
                .fetch_optional(&mut **tx)
                .await?;
                let dataset_uuid = match existing {
                    Some(row) => get::<String>(&row, "dataset_uuid")?,
                    None => {
                        let id = uuid::Uuid::new_v4().simple().to_string();
                        exec(
                            &mut **tx,
                            "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            &[
                                (&id).into(),
                                experiment_id.into(),
                                (&d.name).into(),
                                (&d.digest).into(),
                                (&d.source_type).into(),
                                (&d.source).into(),
                                d.schema.as_deref().into(),
                                d.profile.as_deref().into(),
                            ],
                        )
                        .await?;
                        id
                    }
                };
                exec(
                    &mut **tx,
                    "INSERT INTO run_inputs (run_uuid, dataset_uuid, position) \
                     VALUES ($1, $2, (SELECT COUNT(*) FROM run_inputs WHERE run_uuid = $1)) ON CONFLICT DO NOTHING",
                    &[run_id.into(), (&dataset_uuid).into()],
                )
                .await?;
                for tag in &input.tags {
                    exec(
                        &mut **tx,
                        "INSERT INTO run_input_tags (run_uuid, dataset_uuid, key, value) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (run_uuid, dataset_uuid, key) DO UPDATE SET value = excluded.value",
                        &[run_id.into(), (&dataset_uuid).into(), (&tag.key).into(), (&tag.value).into()],
                    )
                    .await?;
                }
            }
            for model_id in models {
                let text =
                    "INSERT INTO run_model_inputs (run_uuid, model_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
                exec(&mut **tx, text, &[run_id.into(), model_id.into()]).await?;
            }
            Ok(())
        })
        .await
    }

    /// Records models as outputs of a run.
    pub async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        self.write(async |tx| {
            check_active(tx, run_id).await?;
            for m in models {
                exec(
                    &mut **tx,
                    "INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES ($1, $2, $3) \
                     ON CONFLICT (run_uuid, model_id) DO UPDATE SET step = excluded.step",
                    &[run_id.into(), (&m.model_id).into(), m.step.into()],
                )
                .await?;
            }
            Ok(())
        })
        .await
    }

    /// Searches runs in the database and returns one page of them, complete.
    pub async fn search_runs(&self, query: &Query) -> Result<Vec<Run>> {
        if query.experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let target = Target::RUNS;
        let mut joins = Sql::default();
        let order = search::order_joins(&target, &query.order_by, &mut joins)?;
        // The page is materialized first (the database stops scanning at LIMIT when an index gives the
        // order), then completed; its sort keys travel along as sk0, sk1, … to order the final rows.
        let aliases: Vec<String> = order
            .iter()
            .enumerate()
            .map(|(i, (e, _))| format!("{e} AS sk{i}"))
            .collect();
        let page_order = order
            .iter()
            .enumerate()
            .map(|(i, (_, d))| format!("page.sk{i} {d}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = Sql::new(&format!(
            "WITH page AS MATERIALIZED (SELECT {INFO_COLUMNS}, {} FROM runs r",
            aliases.join(", ")
        ));
        sql.append(joins);
        search::in_experiments(&target, query, &mut sql);
        search::clauses_and_page(&target, query, &order, &mut sql)?;
        sql.push(")");
        self.page_of_runs(sql, &page_order).await
    }

    /// Completes a `WITH page AS (…)` of run infos, ordered by `page_order`, into whole runs, in
    /// one query: params, tags and latest metrics come back as one JSON column each, so a page of 1,000 runs is
    /// 1,000 rows rather than tens of thousands. Inputs and outputs, which few runs have, are fetched only for
    /// the runs that have some.
    async fn page_of_runs(&self, mut sql: Sql, page_order: &str) -> Result<Vec<Run>> {
        let b = self.backend();
        let flag = |table: &str| {
            format!("CASE WHEN EXISTS (SELECT 1 FROM {table} x WHERE x.run_uuid = page.run_uuid) THEN 1 ELSE 0 END")
        };
        // The whole page comes back as one JSON document in one row: the driver hands rows over one by one
        // between threads, and that, not SQLite, was most of the time of a search. Each run is
        // `[info, params, tags, latest metrics, has inputs, has model inputs, has outputs]`, its info an array
        // in the order of [`RunInfo`]'s fields, as serde reads a struct from an array.
        let info = [
            "page.run_uuid",
            "page.name",
            // A string in the record.
            "CAST(page.experiment_id AS TEXT)",
            "page.user_id",
            "page.status",
            "page.start_time",
            "page.end_time",
            "page.artifact_uri",
            "page.lifecycle_stage",
        ];
        let fields = [
            b.json_array(&info.join(", ")),
            b.embed_json(&b.json_pairs("params", "run_uuid", "page.run_uuid")),
            b.embed_json(&b.json_pairs("tags", "run_uuid", "page.run_uuid")),
            b.embed_json(&b.json_metrics("latest_metrics", "run_uuid", "page.run_uuid")),
            flag("run_inputs"),
            flag("run_model_inputs"),
            flag("run_model_outputs"),
        ];
        sql.push(&format!(
            " SELECT {} AS runs_json FROM page",
            b.json_array_agg(&fields.join(", "), page_order)
        ));
        let row = sql.query().fetch_one(self.reader()).await?;
        type PageRow = (
            RunInfo,
            Vec<(String, String)>,
            Vec<(String, String)>,
            Vec<(String, String, i64, i64, i64)>,
            i64,
            i64,
            i64,
        );
        let page: Vec<PageRow> = serde_json::from_str(&get::<String>(&row, "runs_json")?)
            .map_err(|e| StoreError::InvalidQuery(format!("bad page from the database: {e}")))?;
        let mut runs = Vec::with_capacity(page.len());
        let (mut with_inputs, mut with_model_inputs, mut with_outputs) =
            (Vec::new(), Vec::new(), Vec::new());
        for (info, params, tags, metrics, has_inputs, has_model_inputs, has_outputs) in page {
            if has_inputs != 0 {
                with_inputs.push(info.run_id.clone());
            }
            if has_model_inputs != 0 {
                with_model_inputs.push(info.run_id.clone());
            }
            if has_outputs != 0 {
                with_outputs.push(info.run_id.clone());
            }
            runs.push(Run {
                info,
                metrics: metrics_from(metrics),
                params: pairs_from(params),
                tags: pairs_from(tags),
                dataset_inputs: Vec::new(),
                model_inputs: Vec::new(),
                model_outputs: Vec::new(),
            });
        }
        let index = positions(&runs, |r| r.info.run_id.clone());
        let ids = |v: &[String]| v.iter().map(|k| Arg::Str(k.clone())).collect::<Vec<_>>();
        if !with_inputs.is_empty() {
            let mut sql = Sql::new(
                "SELECT ri.run_uuid, ri.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema, d.profile \
                 FROM run_inputs ri JOIN datasets d ON d.dataset_uuid = ri.dataset_uuid WHERE ri.run_uuid IN ",
            );
            sql.list(ids(&with_inputs)).push(" ORDER BY ri.position");
            let input_rows = sql.query().fetch_all(self.reader()).await?;
            let mut input_tags: BTreeMap<(String, String), Vec<Tag>> = BTreeMap::new();
            let mut sql = Sql::new(
                "SELECT run_uuid, dataset_uuid, key, value FROM run_input_tags WHERE run_uuid IN ",
            );
            sql.list(ids(&with_inputs)).push(" ORDER BY key");
            for row in sql.query().fetch_all(self.reader()).await? {
                input_tags
                    .entry((get(&row, "run_uuid")?, get(&row, "dataset_uuid")?))
                    .or_default()
                    .push(Tag {
                        key: get(&row, "key")?,
                        value: get(&row, "value")?,
                    });
            }
            for row in input_rows {
                let run_id: String = get(&row, "run_uuid")?;
                let dataset_uuid: String = get(&row, "dataset_uuid")?;
                let tags = input_tags
                    .remove(&(run_id.clone(), dataset_uuid))
                    .unwrap_or_default();
                runs[index[&run_id]].dataset_inputs.push(DatasetInput {
                    tags,
                    dataset: from_columns!(&row, Dataset { name, digest, source_type, source, schema, profile }),
                });
            }
        }
        if !with_model_inputs.is_empty() {
            let mut sql =
                Sql::new("SELECT run_uuid, model_id FROM run_model_inputs WHERE run_uuid IN ");
            sql.list(ids(&with_model_inputs));
            for row in sql.query().fetch_all(self.reader()).await? {
                runs[index[&get::<String>(&row, "run_uuid")?]]
                    .model_inputs
                    .push(get(&row, "model_id")?);
            }
        }
        if !with_outputs.is_empty() {
            let mut sql = Sql::new(
                "SELECT run_uuid, model_id, step FROM run_model_outputs WHERE run_uuid IN ",
            );
            sql.list(ids(&with_outputs));
            for row in sql.query().fetch_all(self.reader()).await? {
                runs[index[&get::<String>(&row, "run_uuid")?]]
                    .model_outputs
                    .push(from_columns!(&row, ModelOutput { model_id, step }));
            }
        }
        Ok(runs)
    }
}

/// Pairs sorted by key.
fn pairs_from(pairs: Vec<(String, String)>) -> Vec<Tag> {
    let mut tags: Vec<Tag> = pairs
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect();
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    tags
}

/// `(key, value_text, timestamp, step, is_nan)` points as metrics, sorted by key.
fn metrics_from(points: Vec<(String, String, i64, i64, i64)>) -> Vec<Metric> {
    let mut metrics: Vec<Metric> = points
        .into_iter()
        .map(|(key, value, timestamp, step, is_nan)| {
            let value = if is_nan != 0 {
                f64::NAN
            } else {
                crate::values::parse_stored_double(&value)
            };
            Metric::new(key, value, timestamp, step)
        })
        .collect();
    metrics.sort_by(|a, b| a.key.cmp(&b.key));
    metrics
}

/// Fails unless the run exists and is active; returns its experiment id.
pub(crate) async fn check_active(tx: &mut Tx<'_>, run_id: &str) -> Result<i64> {
    let text = "SELECT lifecycle_stage, experiment_id FROM runs WHERE run_uuid = $1";
    let row = statement(text, &[run_id.into()])
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| run_not_found(run_id))?;
    let stage: String = get(&row, "lifecycle_stage")?;
    if stage != ACTIVE {
        return Err(StoreError::InactiveRun {
            run_id: run_id.to_string(),
            lifecycle_stage: stage,
        });
    }
    get(&row, "experiment_id")
}

/// Upserts a run's tags, last value winning within the list.
pub(crate) async fn upsert_tags(
    tx: &mut Tx<'_>,
    run_id: &str,
    tags: &[Tag],
) -> Result<()> {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for t in tags {
        last.insert(&t.key, &t.value);
    }
    let rows: Vec<(&str, &str, &str)> = last.into_iter().map(|(k, v)| (run_id, k, v)).collect();
    crate::log_writer::upsert_tags(tx, &rows).await
}
