//! Group commit for the hot path: logging metrics, params and tags.
//!
//! Every `log_batch` (and so every log-metric, log-param and set-tag) is queued to one writer task. The task
//! takes whatever is queued at that moment — one request when the server is quiet, dozens under load — and
//! writes the whole group in one transaction with a handful of multi-row statements: one look-up of the runs,
//! one of the params already logged, then one INSERT per table. Each request keeps its own outcome: a request
//! for a missing or deleted run, or one that changes a logged param, is refused on its own before anything is
//! written, and the others go ahead. If the group's transaction fails anyway, each request is retried alone so
//! that one bad request cannot sink the rest.
//!
//! On SQLite this turns one commit (and several statements) per request into one commit per group; on
//! PostgreSQL it also saves round trips and WAL flushes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use sqlx::{Acquire, AnyPool};
use tokio::sync::{mpsc, oneshot};

use crate::values::stored_value;
use crate::model::RUN_NAME_TAG;
use crate::sql::{exec, Arg, Sql, Tx};
use crate::values::get;
use crate::model::{Metric, Tag, ACTIVE};
use crate::error::{Result, StoreError};
use crate::backend::Backend;
use crate::metric_tiles;

/// Rows per multi-row statement: keeps each under SQLite's bound-variable limit.
const CHUNK: usize = 100;
/// Requests per group at most; bounds the size of one transaction.
const MAX_GROUP: usize = 256;
/// How often the points queued for the metric tiles are folded into them while points arrive.
const SETTLE_EVERY: Duration = Duration::from_millis(250);
/// The longest wait between settles that keep failing (a warning each time, not four a second).
const SETTLE_AT_MOST: Duration = Duration::from_secs(30);

/// One request's writes to one run.
#[derive(Debug, Clone)]
pub(crate) struct LogOp {
    pub run_id: String,
    pub metrics: Vec<Metric>,
    pub params: Vec<Tag>,
    pub tags: Vec<Tag>,
}

type Reply = oneshot::Sender<Result<()>>;

#[derive(Debug, Clone)]
pub(crate) struct LogWriter {
    queue: mpsc::Sender<(LogOp, Reply)>,
}

impl LogWriter {
    pub fn spawn(pool: AnyPool, backend: Backend) -> LogWriter {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(pool, backend, rx));
        LogWriter { queue: tx }
    }

    pub async fn submit(&self, op: LogOp) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((op, reply))
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?
    }
}

async fn run(pool: AnyPool, backend: Backend, mut rx: mpsc::Receiver<(LogOp, Reply)>) {
    // Points may be queued for the tiles from before a restart: settle at the first quiet moment.
    let mut unsettled = true;
    let mut settled_at = Instant::now();
    // The time between settles: SETTLE_EVERY, doubled after each failure up to SETTLE_AT_MOST.
    let mut pause = SETTLE_EVERY;
    loop {
        let next = if unsettled {
            // Wait for work no longer than the next settle is due.
            match tokio::time::timeout(pause.saturating_sub(settled_at.elapsed()), rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    unsettled = !settle(&pool, backend, &mut pause).await;
                    settled_at = Instant::now();
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        let Some(first) = next else { break };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (ops, replies): (Vec<LogOp>, Vec<Reply>) = group.into_iter().unzip();
        let results = write_group(&pool, backend, &ops).await;
        unsettled |= ops.iter().any(|o| !o.metrics.is_empty());
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
        // Under a steady stream the queue never goes quiet: settle on the clock too.
        if unsettled && settled_at.elapsed() >= pause {
            unsettled = !settle(&pool, backend, &mut pause).await;
            settled_at = Instant::now();
        }
    }
}

/// Folds the queued points into the metric tiles; false (and a warning) when that failed, to be tried again
/// after `pause`, which doubles while it keeps failing. Nothing is lost meanwhile: charts read the queue too.
async fn settle(pool: &AnyPool, backend: Backend, pause: &mut Duration) -> bool {
    if pool.is_closed() {
        return true;
    }
    match metric_tiles::settle(pool, backend).await {
        Ok(_) => {
            *pause = SETTLE_EVERY;
            true
        }
        Err(e) => {
            *pause = (*pause * 2).min(SETTLE_AT_MOST);
            tracing::warn!(error = %e, retry_in = ?*pause, "could not fold the logged metric points into the chart tiles");
            false
        }
    }
}

/// Writes a group; returns one result per op.
async fn write_group(pool: &AnyPool, backend: Backend, ops: &[LogOp]) -> Vec<Result<()>> {
    match try_group(pool, backend, ops).await {
        Ok(results) => results,
        Err(e) if ops.len() == 1 => vec![Err(e)],
        Err(_) => {
            // Something failed for the group as a whole: isolate it by writing each op alone.
            let mut out = Vec::with_capacity(ops.len());
            for op in ops {
                out.push(match try_group(pool, backend, std::slice::from_ref(op)).await {
                    Ok(mut r) => r.pop().unwrap_or(Ok(())),
                    Err(e) => Err(e),
                });
            }
            out
        }
    }
}

async fn try_group(pool: &AnyPool, backend: Backend, ops: &[LogOp]) -> Result<Vec<Result<()>>> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;

    // Which runs exist, and are they active?
    let run_ids: Vec<&str> = ops
        .iter()
        .map(|o| o.run_id.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut sql = Sql::new("SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid IN ");
    sql.list(run_ids.iter().map(|r| Arg::Str(r.to_string())));
    let stages: HashMap<String, String> = sql
        .query()
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((get(r, "run_uuid")?, get(r, "lifecycle_stage")?)))
        .collect::<Result<_>>()?;

    // Params already logged, for the write-once check.
    let mut known: HashMap<(String, String), String> = HashMap::new();
    let param_keys: HashSet<&str> = ops
        .iter()
        .flat_map(|o| o.params.iter().map(|p| p.key.as_str()))
        .collect();
    if !param_keys.is_empty() {
        let mut sql = Sql::new("SELECT run_uuid, key, value FROM params WHERE run_uuid IN ");
        sql.list(run_ids.iter().map(|r| Arg::Str(r.to_string())));
        sql.push(" AND key IN ")
            .list(param_keys.iter().map(|k| Arg::Str(k.to_string())));
        for row in sql.query().fetch_all(&mut *tx).await? {
            known.insert(
                (get(&row, "run_uuid")?, get(&row, "key")?),
                get(&row, "value")?,
            );
        }
    }

    // Decide each op on its own; accepted ops' rows are merged in op order.
    let mut results = Vec::with_capacity(ops.len());
    let mut new_params: Vec<(&str, &Tag)> = Vec::new();
    let mut metrics: Vec<(&str, &Metric)> = Vec::new();
    let mut tags: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for op in ops {
        match stages.get(&op.run_id) {
            None => {
                results.push(Err(StoreError::NotFound(format!(
                    "Run with id={}",
                    op.run_id
                ))));
                continue;
            }
            Some(stage) if stage != ACTIVE => {
                results.push(Err(StoreError::InactiveRun {
                    run_id: op.run_id.clone(),
                    lifecycle_stage: stage.clone(),
                }));
                continue;
            }
            Some(_) => {}
        }
        let conflict =
            op.params
                .iter()
                .find_map(|p| match known.get(&(op.run_id.clone(), p.key.clone())) {
                    Some(old) if *old != p.value => Some(StoreError::ParamConflict {
                        run_id: op.run_id.clone(),
                        key: p.key.clone(),
                        old: old.clone(),
                        new: p.value.clone(),
                    }),
                    _ => None,
                });
        if let Some(e) = conflict {
            results.push(Err(e));
            continue;
        }
        for p in &op.params {
            if known
                .insert((op.run_id.clone(), p.key.clone()), p.value.clone())
                .is_none()
            {
                new_params.push((&op.run_id, p));
            }
        }
        metrics.extend(op.metrics.iter().map(|m| (op.run_id.as_str(), m)));
        for t in &op.tags {
            tags.insert((&op.run_id, &t.key), &t.value);
        }
        results.push(Ok(()));
    }

    insert_params(&mut tx, &new_params).await?;
    if backend == Backend::Postgres && !metrics.is_empty() {
        exec(&mut *tx, metric_tiles::PG_LOCK, &[]).await?;
    }
    insert_metrics(&mut tx, &metrics).await?;
    let tag_rows: Vec<(&str, &str, &str)> = tags.into_iter().map(|((r, k), v)| (r, k, v)).collect();
    upsert_tags(&mut tx, &tag_rows).await?;
    tx.commit().await?;
    Ok(results)
}

async fn insert_params(tx: &mut Tx<'_>, rows: &[(&str, &Tag)]) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut sql = Sql::new("INSERT INTO params (run_uuid, key, value) VALUES ");
        sql.values(
            chunk
                .iter()
                .map(|(run_id, p)| [text(run_id), text(&p.key), text(&p.value)]),
        );
        sql.push(" ON CONFLICT DO NOTHING");
        sql.query().execute(&mut **tx).await?;
    }
    Ok(())
}

fn text(s: &str) -> Option<Arg> {
    Some(Arg::Str(s.to_string()))
}

fn int(v: i64) -> Option<Arg> {
    Some(Arg::I64(v))
}

fn real(v: f64) -> Option<Arg> {
    Some(Arg::F64(v))
}

/// Upserts tags (one row per (run, key); the caller resolves duplicates) and keeps `runs.name` in step with
/// the `mlflow.runName` tag.
pub(crate) async fn upsert_tags(
    tx: &mut Tx<'_>,
    rows: &[(&str, &str, &str)],
) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut sql = Sql::new("INSERT INTO tags (run_uuid, key, value) VALUES ");
        sql.values(
            chunk
                .iter()
                .map(|(run_id, k, v)| [text(run_id), text(k), text(v)]),
        );
        sql.push(" ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value");
        sql.query().execute(&mut **tx).await?;
    }
    for (run_id, _, name) in rows.iter().filter(|(_, k, _)| *k == RUN_NAME_TAG) {
        let rename = "UPDATE runs SET name = $1 WHERE run_uuid = $2";
        exec(&mut **tx, rename, &[(*name).into(), (*run_id).into()]).await?;
    }
    Ok(())
}

/// Orders points the way "latest" is decided: by step, then timestamp, then value (NaN above all numbers).
fn later(a: &Metric, b: &Metric) -> bool {
    let va = if a.value.is_nan() {
        f64::INFINITY
    } else {
        a.value
    };
    let vb = if b.value.is_nan() {
        f64::INFINITY
    } else {
        b.value
    };
    (a.step, a.timestamp)
        .cmp(&(b.step, b.timestamp))
        .then(va.total_cmp(&vb))
        .is_gt()
}

async fn insert_metrics(tx: &mut Tx<'_>, rows: &[(&str, &Metric)]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    for chunk in rows.chunks(CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest) VALUES ",
        );
        sql.values(chunk.iter().map(|(run_id, m)| {
            let (value, is_nan) = stored_value(m.value);
            [
                text(run_id),
                text(&m.key),
                int(m.step),
                int(m.timestamp),
                real(value),
                int(is_nan),
                m.model_id.as_deref().and_then(text),
                m.dataset_name.as_deref().and_then(text),
                m.dataset_digest.as_deref().and_then(text),
            ]
        }));
        sql.push(" ON CONFLICT DO NOTHING");
        sql.query().execute(&mut **tx).await?;
    }
    // One candidate per (run, key): PostgreSQL refuses to update a row twice in one statement.
    let mut latest: BTreeMap<(&str, &str), &Metric> = BTreeMap::new();
    for (run_id, m) in rows {
        match latest.get(&(*run_id, m.key.as_str())) {
            Some(cur) if !later(m, cur) => {}
            _ => {
                latest.insert((run_id, &m.key), m);
            }
        }
    }
    let latest: Vec<(&(&str, &str), &&Metric)> = latest.iter().collect();
    for chunk in latest.chunks(CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES ",
        );
        sql.values(chunk.iter().map(|((run_id, key), m)| {
            let (value, is_nan) = stored_value(m.value);
            [
                text(run_id),
                text(key),
                int(m.step),
                int(m.timestamp),
                real(value),
                int(is_nan),
            ]
        }));
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
    metric_tiles::queue(tx, rows).await?;
    // Points logged against a model also belong to that model (when it exists here).
    for (run_id, m) in rows.iter().filter(|(_, m)| m.model_id.is_some()) {
        let (value, is_nan) = stored_value(m.value);
        exec(
            &mut **tx,
            "INSERT INTO logged_model_metrics (model_id, key, step, timestamp, value, is_nan, run_uuid, dataset_name, dataset_digest) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM logged_models WHERE model_id = $1) \
             ON CONFLICT DO NOTHING",
            &[
                m.model_id.as_deref().into(),
                (&m.key).into(),
                m.step.into(),
                m.timestamp.into(),
                value.into(),
                is_nan.into(),
                (*run_id).into(),
                m.dataset_name.as_deref().into(),
                m.dataset_digest.as_deref().into(),
            ],
        )
        .await?;
    }
    Ok(())
}
