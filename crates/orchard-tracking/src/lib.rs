//! Experiment tracking with MLflow's semantics: experiments, runs, params, metrics, tags, dataset inputs,
//! logged models, artifacts and the search grammar.
//!
//! [`Tracking`] is the one entry point. It validates input the way MLflow does, decides ids, names and
//! artifact locations, and leaves persistence to `orchard-store` and bytes to `orchard-blob`. It knows
//! nothing about HTTP.

pub mod artifacts;
pub mod error;
pub mod filter;
mod names;
pub mod registry;
pub mod series;
pub mod validation;

use std::collections::HashSet;
use std::future::Future;

pub use error::{ErrorCode, NotFound, Result, TrackingError};
use filter::{decode_page_token, encode_page_token, parse_filter, parse_order_by_list, Searched};
pub use orchard_store::query::ViewType;
pub use orchard_store::query::DatasetFilter;
use orchard_store::query::{Attribute, Clause, Field, OrderBy, Query};
pub use orchard_store::{
    Dataset, DatasetInput, DatasetSummary, Experiment, ExperimentActivity, LoggedModel, Metric, ModelOutput, Run,
    RunInfo, Store, StoreError, Tag,
};
use orchard_store::{NewLoggedModel, NewRun, RunUpdate, ACTIVE};
use validation as v;

/// The statuses a run can have, as MLflow names them.
pub const RUN_STATUSES: &[&str] = &["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];
pub const RUN_NAME_TAG: &str = "mlflow.runName";
pub const LOGGED_MODEL_STATUSES: &[&str] = &[
    "LOGGED_MODEL_STATUS_UNSPECIFIED",
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
];

/// A page of search results and the token for the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// The tracking service.
#[derive(Clone, Debug)]
pub struct Tracking {
    store: Store,
    /// Where new experiments put their artifacts: `mlflow-artifacts:/` when the server proxies artifacts,
    /// otherwise the artifact store's own URI.
    default_artifact_root: String,
}

/// `append_to_uri_path`: joins with exactly one `/`, keeping `scheme:/` roots intact.
pub fn join_uri(root: &str, part: &str) -> String {
    if root.ends_with('/') {
        format!("{root}{part}")
    } else {
        format!("{root}/{part}")
    }
}

fn parse_experiment_id(id: &str) -> Result<i64> {
    id.trim()
        .parse::<i64>()
        .map_err(|_| NotFound::Experiment(id.to_string()).into())
}

impl Tracking {
    /// Wraps an open store; creates the default experiment `0` if it is missing.
    pub async fn new(store: Store, default_artifact_root: &str) -> Result<Tracking> {
        store
            .ensure_default_experiment(&join_uri(default_artifact_root, "0"))
            .await?;
        Ok(Tracking {
            store,
            default_artifact_root: default_artifact_root.to_string(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    // ----------------------------------------------------------------------------------------- experiments

    pub async fn create_experiment(&self, name: &str, artifact_location: Option<&str>, tags: &[Tag]) -> Result<String> {
        v::check_experiment_name(name)?;
        for t in tags {
            v::check_experiment_tag(&t.key, &t.value)?;
        }
        if let Some(loc) = artifact_location.filter(|l| !l.is_empty()) {
            if loc.starts_with("runs:") {
                return Err(TrackingError::invalid(format!(
                    "Artifact location cannot be a runs:/ URI. Given: '{loc}'"
                )));
            }
            if loc.contains('#') || loc.split_once('?').is_some_and(|(_, q)| q.contains("..")) {
                return Err(TrackingError::invalid(
                    "'artifact_location' URL can't include fragments or params.",
                ));
            }
        }
        let root = self.default_artifact_root.clone();
        let explicit = artifact_location.filter(|l| !l.is_empty()).map(absolute_if_local);
        self.store
            .create_experiment(name, move |id| explicit.unwrap_or_else(|| join_uri(&root, &id.to_string())), tags)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => TrackingError::AlreadyExists {
                    what: format!("Experiment(name={name})"),
                    detail: ". Error: the name is taken (experiment names are unique, deleted ones included)".into(),
                },
                other => other.into(),
            })
    }

    pub async fn get_experiment(&self, id: &str) -> Result<Experiment> {
        let n = parse_experiment_id(id)?;
        self.store
            .get_experiment(n)
            .await?
            .ok_or_else(|| NotFound::Experiment(id.to_string()).into())
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        self.store
            .get_experiment_by_name(name)
            .await?
            .ok_or_else(|| {
                NotFound::ExperimentNamed(name.to_string()).into()
            })
    }

    async fn active_experiment(&self, id: &str) -> Result<Experiment> {
        let exp = self.get_experiment(id).await?;
        if exp.lifecycle_stage != ACTIVE {
            return Err(TrackingError::NotActive { kind: "experiment", id: id.to_string(), stage: exp.lifecycle_stage });
        }
        Ok(exp)
    }

    pub async fn search_experiments(
        &self,
        view: ViewType,
        max_results: Option<i64>,
        filter: &str,
        order_by: &[String],
        page_token: &str,
    ) -> Result<Page<Experiment>> {
        let (query, limit) = search_query(Searched::Experiments, max_results, filter, order_by, Some(Attribute::CreationTime), page_token)?;
        let query = Query { view, ..query };
        let items = self.store.search_experiments(&query).await?;
        Ok(page(items, query.offset, limit))
    }

    pub async fn rename_experiment(&self, id: &str, new_name: &str) -> Result<()> {
        v::check_experiment_name(new_name)?;
        let exp = self.get_experiment(id).await?;
        if exp.lifecycle_stage != ACTIVE {
            return Err(TrackingError::new(
                ErrorCode::InvalidState,
                "Cannot rename a non-active experiment.",
            ));
        }
        self.store
            .rename_experiment(parse_experiment_id(id)?, new_name)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => {
                    TrackingError::AlreadyExists { what: format!("Experiment(name={new_name})"), detail: ".".into() }
                }
                other => other.into(),
            })
    }

    pub async fn delete_experiment(&self, id: &str) -> Result<()> {
        self.set_experiment_deleted(id, true).await
    }

    pub async fn restore_experiment(&self, id: &str) -> Result<()> {
        self.set_experiment_deleted(id, false).await
    }

    /// Deletes an active experiment or restores a deleted one (with its runs); anything else is "not found",
    /// as in MLflow.
    async fn set_experiment_deleted(&self, id: &str, deleted: bool) -> Result<()> {
        let exp = self.get_experiment(id).await?;
        if (exp.lifecycle_stage == ACTIVE) != deleted {
            return Err(NotFound::Experiment(id.to_string()).into());
        }
        Ok(self
            .store
            .set_experiment_deleted(parse_experiment_id(id)?, deleted)
            .await?)
    }

    pub async fn set_experiment_tag(&self, id: &str, key: &str, value: &str) -> Result<()> {
        v::check_experiment_tag(key, value)?;
        self.active_experiment(id).await?;
        Ok(self
            .store
            .set_experiment_tag(parse_experiment_id(id)?, &Tag::new(key, value))
            .await?)
    }

    pub async fn delete_experiment_tag(&self, id: &str, key: &str) -> Result<()> {
        self.active_experiment(id).await?;
        if !self
            .store
            .delete_experiment_tag(parse_experiment_id(id)?, key)
            .await?
        {
            return Err(TrackingError::not_found(format!(
                "No tag with name: {key} in experiment with id {id}"
            )));
        }
        Ok(())
    }

    // ------------------------------------------------------------------------------------------------ runs

    pub async fn create_run(
        &self,
        experiment_id: &str,
        user_id: &str,
        run_name: Option<&str>,
        start_time: Option<i64>,
        tags: &[Tag],
    ) -> Result<Run> {
        let experiment_id = if experiment_id.is_empty() {
            "0"
        } else {
            experiment_id
        };
        let exp = self.active_experiment(experiment_id).await?;
        for (i, t) in tags.iter().enumerate() {
            v::check_tag(&format!("tags[{i}].key"), &t.key, &t.value)?;
        }
        let tag_name = tags
            .iter()
            .rev()
            .find(|t| t.key == RUN_NAME_TAG)
            .map(|t| t.value.as_str());
        let run_name = match (run_name.filter(|n| !n.is_empty()), tag_name) {
            (Some(a), Some(b)) if a != b => {
                return Err(TrackingError::invalid(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values \
                     (run_name='{a}', mlflow.runName='{b}')."
                )))
            }
            (Some(a), _) => a.to_string(),
            (None, Some(b)) if !b.is_empty() => b.to_string(),
            _ => names::random_run_name(),
        };
        let mut tags = tags.to_vec();
        if tag_name.is_none() {
            tags.push(Tag::new(RUN_NAME_TAG, run_name.clone()));
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let new = NewRun {
            artifact_uri: join_uri(&join_uri(&exp.artifact_location, &run_id), "artifacts"),
            run_id,
            experiment_id: parse_experiment_id(&exp.experiment_id)?,
            user_id: user_id.to_string(),
            run_name,
            status: "RUNNING".into(),
            start_time: Some(start_time.unwrap_or_else(orchard_store::now_ms)),
            tags,
        };
        let info = self.store.create_run(&new).await?;
        self.store
            .get_run(&info.run_id)
            .await?
            .ok_or_else(|| run_not_found(&info.run_id))
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        self.store
            .get_run(run_id)
            .await?
            .ok_or_else(|| run_not_found(run_id))
    }

    /// Several runs, in the order asked (an id asked twice comes once); the first id that names no run is an
    /// error, as [`Tracking::get_run`] would give for it.
    pub async fn get_runs(&self, run_ids: &[String]) -> Result<Vec<Run>> {
        for id in run_ids {
            v::check_run_id(id)?;
        }
        let mut found: std::collections::HashMap<String, Run> =
            self.store.get_runs(run_ids).await?.into_iter().map(|r| (r.info.run_id.clone(), r)).collect();
        let mut out = Vec::with_capacity(found.len());
        for id in run_ids {
            match found.remove(id) {
                Some(run) => out.push(run),
                None if out.iter().any(|r: &Run| &r.info.run_id == id) => {}
                None => return Err(run_not_found(id)),
            }
        }
        Ok(out)
    }

    async fn active_run(&self, run_id: &str) -> Result<RunInfo> {
        let info = self
            .store
            .get_run_info(run_id)
            .await?
            .ok_or_else(|| run_not_found(run_id))?;
        if info.lifecycle_stage != ACTIVE {
            return Err(TrackingError::NotActive { kind: "run", id: run_id.to_string(), stage: info.lifecycle_stage });
        }
        Ok(info)
    }

    pub async fn update_run(
        &self,
        run_id: &str,
        status: Option<&str>,
        end_time: Option<i64>,
        run_name: Option<&str>,
    ) -> Result<RunInfo> {
        if let Some(s) = status {
            if !RUN_STATUSES.contains(&s) {
                return Err(TrackingError::invalid_value(
                    "status",
                    format!("\"{s}\""),
                    format!(": expected one of {RUN_STATUSES:?}"),
                ));
            }
        }
        self.active_run(run_id).await?;
        let update = RunUpdate {
            status: status.map(str::to_string),
            end_time,
            run_name: run_name.filter(|n| !n.is_empty()).map(str::to_string),
        };
        about_run(run_id, self.store.update_run(run_id, &update)).await
    }

    pub async fn delete_run(&self, run_id: &str) -> Result<()> {
        about_run(run_id, self.store.set_run_deleted(run_id, true)).await
    }

    pub async fn restore_run(&self, run_id: &str) -> Result<()> {
        about_run(run_id, self.store.set_run_deleted(run_id, false)).await
    }

    pub async fn log_metric(&self, run_id: &str, metric: Metric) -> Result<()> {
        v::check_metric_key("key", &metric.key)?;
        if metric.timestamp < 0 {
            return Err(negative_timestamp("timestamp", &metric));
        }
        about_run(run_id, self.store.log_batch(run_id, &[metric], &[], &[])).await
    }

    pub async fn log_param(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        v::check_param("key", key, value)?;
        about_run(run_id, self.store.log_batch(run_id, &[], &[Tag::new(key, value)], &[])).await
    }

    pub async fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        v::check_tag("key", key, value)?;
        about_run(run_id, self.store.log_batch(run_id, &[], &[], &[Tag::new(key, value)])).await
    }

    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let existed = about_run(run_id, self.store.delete_run_tag(run_id, key)).await?;
        existed.then_some(()).ok_or_else(|| TrackingError::not_found(format!("No tag with name: {key} in run with id {run_id}")))
    }

    pub async fn log_batch(&self, run_id: &str, metrics: &[Metric], params: &[Tag], tags: &[Tag]) -> Result<()> {
        v::check_run_id(run_id)?;
        for (i, m) in metrics.iter().enumerate() {
            v::check_metric_key(&format!("metrics[{i}].name"), &m.key)?;
            if m.timestamp < 0 {
                return Err(negative_timestamp(&format!("metrics[{i}].timestamp"), m));
            }
        }
        for (i, p) in params.iter().enumerate() {
            v::check_param(&format!("params[{i}].key"), &p.key, &p.value)?;
        }
        for (i, t) in tags.iter().enumerate() {
            v::check_tag(&format!("tags[{i}].key"), &t.key, &t.value)?;
        }
        v::check_batch_limits(metrics.len(), params.len(), tags.len())?;
        let mut seen = HashSet::new();
        let mut dupes: Vec<&str> = params
            .iter()
            .filter(|p| !seen.insert(p.key.as_str()))
            .map(|p| p.key.as_str())
            .collect();
        dupes.dedup();
        if !dupes.is_empty() {
            // Two values for one key in the same request cannot both be right.
            let conflicting: Vec<&str> = dupes
                .into_iter()
                .filter(|k| {
                    params
                        .iter()
                        .filter(|p| p.key == *k)
                        .map(|p| &p.value)
                        .collect::<HashSet<_>>()
                        .len()
                        > 1
                })
                .collect();
            if !conflicting.is_empty() {
                return Err(TrackingError::invalid(format!(
                    "Duplicate parameter keys have been submitted: {conflicting:?}. Please ensure the request contains \
                     only one param value per param key."
                )));
            }
        }
        about_run(run_id, self.store.log_batch(run_id, metrics, params, tags)).await
    }

    pub async fn log_inputs(&self, run_id: &str, datasets: &[DatasetInput], models: &[String]) -> Result<()> {
        v::check_run_id(run_id)?;
        for input in datasets {
            let d = &input.dataset;
            for (field, value) in [
                ("name", &d.name),
                ("digest", &d.digest),
                ("source_type", &d.source_type),
                ("source", &d.source),
            ] {
                if value.is_empty() {
                    return Err(TrackingError::invalid(format!(
                        "Dataset {field} cannot be None"
                    )));
                }
            }
            v::check_len("name", &d.name, v::MAX_DATASET_NAME_SIZE)?;
            v::check_len("digest", &d.digest, v::MAX_DATASET_DIGEST_SIZE)?;
            v::check_len("source", &d.source, v::MAX_DATASET_SOURCE_SIZE)?;
            v::check_len(
                "schema",
                d.schema.as_deref().unwrap_or(""),
                v::MAX_DATASET_SCHEMA_SIZE,
            )?;
            v::check_len(
                "profile",
                d.profile.as_deref().unwrap_or(""),
                v::MAX_DATASET_PROFILE_SIZE,
            )?;
            for t in &input.tags {
                if t.key.is_empty() {
                    return Err(TrackingError::invalid("InputTag key cannot be None"));
                }
                v::check_len("key", &t.key, v::MAX_INPUT_TAG_KEY_SIZE)?;
                v::check_len("value", &t.value, v::MAX_INPUT_TAG_VALUE_SIZE)?;
            }
        }
        about_run(run_id, self.store.log_inputs(run_id, datasets, models)).await
    }

    pub async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        about_run(run_id, self.store.log_outputs(run_id, models)).await
    }

    /// A metric's history; `max_results` absent means all of it (as MLflow's API documents).
    pub async fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: &str,
    ) -> Result<Page<Metric>> {
        let offset = decode_page_token(page_token)?;
        let limit = match max_results {
            Some(n) if n > 0 => n,
            Some(n) if n < 0 => return Err(TrackingError::invalid_value("max_results", n.to_string(), ". It must be a positive integer")),
            _ => i64::MAX - 1,
        };
        let items = self
            .store
            .metric_history(run_id, key, offset, limit.saturating_add(1))
            .await?;
        Ok(page(items, offset, limit))
    }

    /// The whole history of one metric for up to 100 runs (MLflow's UI asks it at `metrics/get-history-bulk`):
    /// runs in id order, each run's points by time, step and value, each point with its run id; at most
    /// `max_results` points (25,000) in all.
    pub async fn get_metric_history_bulk(&self, run_ids: &[String], key: Option<&str>, max_results: Option<i64>) -> Result<Vec<Metric>> {
        const MAX_POINTS: i64 = 25_000;
        const MAX_RUNS: usize = 100;
        check_count("GetMetricHistoryBulk", "run_id", run_ids.len(), MAX_RUNS)?;
        let key = key.ok_or_else(|| TrackingError::invalid("GetMetricHistoryBulk request must specify a metric_key."))?;
        let limit = max_results.unwrap_or(MAX_POINTS).clamp(0, MAX_POINTS);
        let mut runs = run_ids.to_vec();
        runs.sort();
        let mut out = Vec::new();
        for run_id in runs {
            let mut points = self.store.metric_history(&run_id, key, 0, limit).await?;
            points.sort_by(|a, b| (a.timestamp, a.step).cmp(&(b.timestamp, b.step)).then(a.value.total_cmp(&b.value)));
            out.extend(points.into_iter().map(|mut m| {
                m.run_id = Some(run_id.clone());
                m
            }));
        }
        out.truncate(limit as usize);
        Ok(out)
    }

    /// The datasets the runs of some experiments used, with their context (MLflow's UI asks it at
    /// `experiments/search-datasets` for its dataset filter); at most 20 experiments per request.
    pub async fn search_datasets(&self, experiment_ids: &[String]) -> Result<Vec<DatasetSummary>> {
        const MAX_EXPERIMENTS: usize = 20;
        check_count("SearchDatasets", "experiment_id", experiment_ids.len(), MAX_EXPERIMENTS)?;
        Ok(self.store.dataset_summaries(&experiment_numbers(experiment_ids)).await?)
    }

    /// How many active runs each experiment has, and when one last started or ended (experiments without runs
    /// are left out).
    pub async fn experiment_activity(&self, experiment_ids: &[String]) -> Result<Vec<ExperimentActivity>> {
        Ok(self.store.experiment_activity(&experiment_numbers(experiment_ids)).await?)
    }

    /// Charts: metric `key` of each run, one series per run in the order given (empty where a run has none), on
    /// `axis`, within `range` when one is given, reduced to about `width` buckets, each keeping its first, lowest,
    /// highest and last point. By step the store reduces (from its tiles, [`orchard_store::Store::metric_chart`]);
    /// by time every point is read and reduced here ([`series::downsample`]).
    pub async fn metric_series(
        &self,
        run_ids: &[String],
        key: &str,
        axis: series::XAxis,
        range: Option<(f64, f64)>,
        width: usize,
    ) -> Result<Vec<series::Series>> {
        for id in run_ids {
            v::check_run_id(id)?;
        }
        // Steps are integers: the float bounds round inwards (and saturate at i64's ends).
        let (start, end) = match (axis, range) {
            (series::XAxis::Step, Some((lo, hi))) => (Some(lo.ceil() as i64), Some(hi.floor() as i64)),
            _ => (None, None),
        };
        if axis == series::XAxis::Step {
            // By step the store answers from its pre-reduced tiles: the cost follows the width, not the history.
            let charted = self.store.metric_chart(run_ids, key, start, end, width).await?;
            return Ok(charted
                .into_iter()
                .map(|c| series::Series {
                    run_id: c.run_id,
                    total: c.total as usize,
                    points: c.points.into_iter().map(|(x, y)| (x as f64, y)).collect(),
                })
                .collect());
        }
        let mut unique: Vec<String> = run_ids.to_vec();
        unique.sort();
        unique.dedup();
        // The points come ordered by run: each run's are one stretch.
        let mut points = self.store.metric_history_many(&unique, key, start, end).await?.into_iter().peekable();
        let mut by_run: std::collections::HashMap<String, Vec<Metric>> = std::collections::HashMap::new();
        while let Some(first) = points.next() {
            let run = first.run_id.clone().unwrap_or_default();
            let mut stretch = vec![first];
            while let Some(m) = points.next_if(|m| m.run_id.as_deref() == Some(run.as_str())) {
                stretch.push(m);
            }
            by_run.entry(run).or_default().extend(stretch);
        }
        Ok(run_ids
            .iter()
            .map(|id| {
                let placed = series::points_on(by_run.get(id.as_str()).map_or(&[][..], |v| v), axis, range);
                series::Series { run_id: id.clone(), total: placed.len(), points: series::downsample(&placed, width) }
            })
            .collect())
    }

    /// Metric points of several runs, sampled to at most `max_results` steps across the range, always keeping
    /// each run's first and last step — what the MLflow UI draws charts from.
    pub async fn get_metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: Option<i64>,
    ) -> Result<Vec<Metric>> {
        if run_ids.is_empty() {
            return Err(TrackingError::missing("run_ids"));
        }
        if run_ids.len() > 100 {
            return Err(TrackingError::invalid(format!(
                "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received {} run_ids.",
                run_ids.len()
            )));
        }
        let max_results = max_results.unwrap_or(2500);
        if !(1..=2500).contains(&max_results) {
            return Err(TrackingError::invalid(
                "max_results must be between 1 and 2500.",
            ));
        }
        match (start_step, end_step) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(TrackingError::invalid(
                    "If either start step or end step are specified, both must be specified.",
                ))
            }
            (Some(s), Some(e)) if s > e => {
                return Err(TrackingError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={s} and end_step={e}."
            )))
            }
            _ => {}
        }
        let points = self
            .store
            .metric_history_many(run_ids, key, None, None)
            .await?;
        let steps = sample_steps(&points, start_step, end_step, max_results as usize);
        let mut out: Vec<Metric> = Vec::new();
        // Grouped by run in request order.
        for run_id in run_ids {
            out.extend(
                points
                    .iter()
                    .filter(|p| p.run_id.as_deref() == Some(run_id) && steps.contains(&p.step))
                    .cloned(),
            );
        }
        Ok(out)
    }

    pub async fn search_runs(
        &self,
        experiment_ids: &[String],
        filter: &str,
        view: ViewType,
        max_results: Option<i64>,
        order_by: &[String],
        page_token: &str,
    ) -> Result<Page<Run>> {
        let (query, limit) = search_query(Searched::Runs, max_results, filter, order_by, None, page_token)?;
        let query = Query { experiment_ids: experiment_numbers(experiment_ids), view, ..query };
        let items = self.store.search_runs(&query).await?;
        Ok(page(items, query.offset, limit))
    }

    // --------------------------------------------------------------------------------------- logged models

    pub async fn create_logged_model(
        &self,
        experiment_id: &str,
        name: Option<&str>,
        model_type: Option<&str>,
        source_run_id: Option<&str>,
        params: &[Tag],
        tags: &[Tag],
    ) -> Result<LoggedModel> {
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            if n.chars()
                .any(|c| matches!(c, '/' | ':' | '.' | '%' | '"' | '\''))
            {
                return Err(TrackingError::invalid(format!(
                    "Invalid model name ('{n}') provided. Model name must be a non-empty string and cannot contain the \
                     following characters: ('/', ':', '.', '%', '\"', \"'\")"
                )));
            }
        }
        let exp = self.active_experiment(experiment_id).await?;
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let new = NewLoggedModel {
            artifact_uri: join_uri(
                &join_uri(&join_uri(&exp.artifact_location, "models"), &model_id),
                "artifacts",
            ),
            model_id,
            experiment_id: parse_experiment_id(&exp.experiment_id)?,
            name: name
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .unwrap_or_else(names::random_run_name),
            status: "LOGGED_MODEL_PENDING".into(),
            model_type: model_type.map(str::to_string),
            source_run_id: source_run_id.map(str::to_string),
            tags: tags.to_vec(),
            params: params.to_vec(),
        };
        Ok(self.store.create_logged_model(&new).await?)
    }

    pub async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        self.store
            .get_logged_model(model_id)
            .await?
            .ok_or_else(|| model_not_found(model_id))
    }

    pub async fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel> {
        let status = match status {
            "1" => "LOGGED_MODEL_PENDING",
            "2" => "LOGGED_MODEL_READY",
            "3" => "LOGGED_MODEL_UPLOAD_FAILED",
            s if LOGGED_MODEL_STATUSES.contains(&s) && s != "LOGGED_MODEL_STATUS_UNSPECIFIED" => s,
            other => {
                return Err(TrackingError::invalid(format!(
                    "Unknown model status: {other}"
                )))
            }
        };
        about_model(model_id, self.store.set_logged_model_status(model_id, status)).await?;
        self.get_logged_model(model_id).await
    }

    pub async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        about_model(model_id, self.store.delete_logged_model(model_id)).await
    }

    pub async fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()> {
        for t in tags {
            v::check_tag("key", &t.key, &t.value)?;
        }
        about_model(model_id, self.store.set_logged_model_tags(model_id, tags)).await
    }

    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        let existed = about_model(model_id, self.store.delete_logged_model_tag(model_id, key)).await?;
        let missing = || TrackingError::not_found(format!("No tag with key '{key}' found for model with ID '{model_id}'."));
        existed.then_some(()).ok_or_else(missing)
    }

    pub async fn log_logged_model_params(&self, model_id: &str, params: &[Tag]) -> Result<()> {
        for p in params {
            v::check_param("key", &p.key, &p.value)?;
        }
        about_model(model_id, self.store.log_logged_model_params(model_id, params)).await
    }

    /// `datasets` restricts the search to metrics logged on those datasets (see [`DatasetFilter`]).
    pub async fn search_logged_models(
        &self,
        experiment_ids: &[String],
        datasets: &[DatasetFilter],
        filter: &str,
        order_by: &[(String, bool)],
        max_results: Option<i64>,
        page_token: &str,
    ) -> Result<Page<LoggedModel>> {
        let limit = max_results.filter(|n| *n > 0).unwrap_or(50);
        v::check_max_results(limit)?;
        if datasets.iter().any(|d| d.name.is_empty()) {
            return Err(TrackingError::invalid("`dataset_name` in the `datasets` clause must be specified."));
        }
        let clauses = parse_filter(filter, Searched::LoggedModels)?;
        let mut order = Vec::new();
        for (field, ascending) in order_by {
            let mut ob = filter::parse_order_by(field, Searched::LoggedModels)?;
            ob.ascending = *ascending;
            order.push(ob);
        }
        let query = Query {
            experiment_ids: experiment_numbers(experiment_ids),
            view: ViewType::ActiveOnly,
            datasets: datasets.to_vec(),
            ..page_query(clauses, order, None, page_token, limit)?
        };
        let items = self.store.search_logged_models(&query).await?;
        Ok(page(items, query.offset, limit))
    }
}

/// A relative local artifact location made absolute against the server's working folder, as MLflow stores
/// it (`mlruns/x` → `/srv/mlruns/x`, `file:mlruns/x` → `file:///srv/mlruns/x`): the location must still name
/// the same folder when the server is started from elsewhere. URIs of other schemes are kept as given.
fn absolute_if_local(location: &str) -> String {
    let (file_scheme, path) = match location.strip_prefix("file:") {
        Some(rest) if !rest.starts_with('/') => (true, rest),
        Some(_) => return location.to_string(),
        None if orchard_blob::uri_scheme(location).is_some() || location.starts_with('/') => return location.to_string(),
        None => (false, location),
    };
    let absolute = std::env::current_dir().unwrap_or_default().join(path);
    match file_scheme {
        true => format!("file://{}", absolute.display()),
        false => absolute.display().to_string(),
    }
}

/// Between one and `max` ids in a request, in MLflow's words (`SearchDatasets request must specify at least one
/// experiment_id.`, `… cannot specify more than 20 experiment_ids. Received 21 experiment_ids.`).
fn check_count(request: &str, field: &str, n: usize, max: usize) -> Result<()> {
    if n == 0 {
        return Err(TrackingError::invalid(format!("{request} request must specify at least one {field}.")));
    }
    if n > max {
        return Err(TrackingError::invalid(format!(
            "{request} request cannot specify more than {max} {field}s. Received {n} {field}s."
        )));
    }
    Ok(())
}

/// Experiment ids as the store keys them; ids that are not numbers name no experiment here.
fn experiment_numbers(ids: &[String]) -> Vec<i64> {
    ids.iter()
        .filter_map(|id| id.trim().parse::<i64>().ok())
        .collect()
}

/// The query of one page of a search: `limit` results from the page token's offset, in the order asked or,
/// when none is, newest first by `newest_first_by`. One row more than asked is fetched: it tells whether
/// another page exists.
/// The store query of an experiment or run search, checked in MLflow's order (page size, filter, order, page
/// token), and the page size.
fn search_query(
    searched: Searched,
    max_results: Option<i64>,
    filter: &str,
    order_by: &[String],
    newest_first_by: Option<Attribute>,
    page_token: &str,
) -> Result<(Query, i64)> {
    let limit = max_results.unwrap_or(v::SEARCH_MAX_RESULTS_DEFAULT);
    v::check_max_results(limit)?;
    let clauses = parse_filter(filter, searched)?;
    let order = parse_order_by_list(order_by, searched)?;
    Ok((page_query(clauses, order, newest_first_by, page_token, limit)?, limit))
}

pub(crate) fn page_query(
    clauses: Vec<Clause>,
    mut order_by: Vec<OrderBy>,
    newest_first_by: Option<Attribute>,
    page_token: &str,
    limit: i64,
) -> Result<Query> {
    if let (true, Some(attribute)) = (order_by.is_empty(), newest_first_by) {
        order_by.push(OrderBy { field: Field::Attribute(attribute), ascending: false });
    }
    Ok(Query { clauses, order_by, offset: decode_page_token(page_token)?, limit: limit + 1, ..Query::default() })
}

/// Cuts the extra row fetched to detect a next page, and makes its token.
fn page<T>(mut items: Vec<T>, offset: i64, limit: i64) -> Page<T> {
    let more = items.len() as i64 > limit;
    if more {
        items.truncate(limit as usize);
    }
    Page {
        items,
        next_page_token: more.then(|| encode_page_token(offset + limit)),
    }
}

/// MLflow's refusal of a metric logged before 1970.
fn negative_timestamp(field: &str, m: &Metric) -> TrackingError {
    let rule = format!(
        ": metric '{}' (value={}). Timestamp must be a nonnegative long (64-bit integer) ",
        m.key, m.value
    );
    TrackingError::invalid_value(field, m.timestamp.to_string(), rule)
}

fn run_not_found(run_id: &str) -> TrackingError {
    NotFound::Run(run_id.to_string()).into()
}

fn model_not_found(model_id: &str) -> TrackingError {
    NotFound::LoggedModel(model_id.to_string()).into()
}

/// A store call about one thing: the store's "not found" becomes MLflow's answer for that thing missing.
async fn about<T>(missing: NotFound, call: impl Future<Output = Result<T, StoreError>>) -> Result<T> {
    call.await.map_err(|e| match e {
        StoreError::NotFound(_) => missing.into(),
        other => other.into(),
    })
}

/// [`about`] one run.
async fn about_run<T>(run_id: &str, call: impl Future<Output = Result<T, StoreError>>) -> Result<T> {
    about(NotFound::Run(run_id.to_string()), call).await
}

/// [`about`] one logged model.
async fn about_model<T>(model_id: &str, call: impl Future<Output = Result<T, StoreError>>) -> Result<T> {
    about(NotFound::LoggedModel(model_id.to_string()), call).await
}

/// The steps to return for a bulk interval request (MLflow's sampling): every step in range when they fit,
/// otherwise `max_results` evenly spaced ones plus the last; each run's min and max step are always kept.
fn sample_steps(
    points: &[Metric],
    start: Option<i64>,
    end: Option<i64>,
    max_results: usize,
) -> HashSet<i64> {
    let mut all: Vec<i64> = points.iter().map(|p| p.step).collect();
    all.sort_unstable();
    all.dedup();
    let start = start.unwrap_or(0);
    let end = end.unwrap_or_else(|| all.last().copied().unwrap_or(0));
    let mut keep: HashSet<i64> = HashSet::new();
    let mut per_run: std::collections::HashMap<&str, (i64, i64)> = std::collections::HashMap::new();
    for p in points {
        let e = per_run
            .entry(p.run_id.as_deref().unwrap_or(""))
            .or_insert((p.step, p.step));
        e.0 = e.0.min(p.step);
        e.1 = e.1.max(p.step);
    }
    for (lo, hi) in per_run.values() {
        for s in [*lo, *hi] {
            if s >= start && s <= end {
                keep.insert(s);
            }
        }
    }
    let i0 = all.partition_point(|s| *s < start);
    let i1 = all.partition_point(|s| *s <= end);
    if i1 <= i0 {
        return keep;
    }
    if i1 - i0 <= max_results {
        keep.extend(&all[i0..i1]);
    } else {
        let interval = (i1 - i0) as f64 / max_results as f64;
        for i in 0..max_results.saturating_sub(1) {
            let idx = i0 + (i as f64 * interval) as usize;
            if idx < i1 {
                keep.insert(all[idx]);
            }
        }
        keep.insert(all[i1 - 1]);
    }
    keep
}
