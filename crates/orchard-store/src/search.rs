//! Turns typed [`Query`](crate::query::Query) clauses into SQL for runs, experiments and logged models.
//!
//! Every filter is an `EXISTS` sub-query on an indexed (owner, key) primary key, so a search touches only the
//! rows it needs; ordering by a metric, param or tag is a `LEFT JOIN` on that same key.

use crate::query::{Attribute, Clause, Comparator, DatasetField, Field, OrderBy, Query, Value, ViewType};
use crate::sql::{Arg, Sql};
use crate::error::{Result, StoreError};

/// How one searchable entity is laid out in the schema.
pub(crate) struct Target {
    /// Alias of the main table in the query.
    pub alias: &'static str,
    /// The main table's key column, qualified.
    pub id: &'static str,
    /// (table, foreign key column) of its tags.
    pub tags: (&'static str, &'static str),
    pub params: Option<(&'static str, &'static str)>,
    /// Where a metric's comparable value lives.
    pub metrics: Option<(&'static str, &'static str)>,
    pub has_datasets: bool,
    pub attribute: fn(Attribute) -> Option<&'static str>,
    /// Appended to every ORDER BY so that paging is stable: (expression, direction).
    pub tie_break: &'static [(&'static str, &'static str)],
}

impl Target {
    pub const RUNS: Target = Target {
        alias: "r",
        id: "r.run_uuid",
        tags: ("tags", "run_uuid"),
        params: Some(("params", "run_uuid")),
        metrics: Some(("latest_metrics", "run_uuid")),
        has_datasets: true,
        attribute: |a| {
            Some(match a {
                Attribute::RunId => "r.run_uuid",
                Attribute::RunName => "r.name",
                Attribute::Status => "r.status",
                Attribute::StartTime => "r.start_time",
                Attribute::EndTime => "r.end_time",
                Attribute::ArtifactUri => "r.artifact_uri",
                Attribute::UserId => "r.user_id",
                Attribute::LifecycleStage => "r.lifecycle_stage",
                Attribute::ExperimentId => "r.experiment_id",
                _ => return None,
            })
        },
        tie_break: &[("r.start_time", "DESC"), ("r.run_uuid", "ASC")],
    };

    pub const EXPERIMENTS: Target = Target {
        alias: "e",
        id: "e.experiment_id",
        tags: ("experiment_tags", "experiment_id"),
        params: None,
        metrics: None,
        has_datasets: false,
        attribute: |a| {
            Some(match a {
                Attribute::ExperimentId => "e.experiment_id",
                Attribute::Name => "e.name",
                Attribute::CreationTime => "e.creation_time",
                Attribute::LastUpdateTime => "e.last_update_time",
                Attribute::LifecycleStage => "e.lifecycle_stage",
                _ => return None,
            })
        },
        tie_break: &[("e.experiment_id", "ASC")],
    };

    pub const LOGGED_MODELS: Target = Target {
        alias: "m",
        id: "m.model_id",
        tags: ("logged_model_tags", "model_id"),
        params: Some(("logged_model_params", "model_id")),
        // A logged model keeps every point of a metric; search compares the highest.
        metrics: Some((
            "(SELECT model_id, key, MAX(value) AS value, MAX(is_nan) AS is_nan FROM logged_model_metrics GROUP BY model_id, key)",
            "model_id",
        )),
        has_datasets: false,
        attribute: |a| {
            Some(match a {
                Attribute::ModelId => "m.model_id",
                Attribute::Name => "m.name",
                Attribute::Status => "m.status",
                Attribute::CreationTime => "m.creation_timestamp_ms",
                Attribute::LastUpdateTime => "m.last_updated_timestamp_ms",
                Attribute::SourceRunId => "m.source_run_id",
                Attribute::ModelType => "m.model_type",
                Attribute::ExperimentId => "m.experiment_id",
                _ => return None,
            })
        },
        tie_break: &[("m.creation_timestamp_ms", "DESC"), ("m.model_id", "ASC")],
    };

    pub const REGISTERED_MODELS: Target = Target {
        alias: "m",
        id: "m.name",
        tags: ("registered_model_tags", "name"),
        params: None,
        metrics: None,
        has_datasets: false,
        attribute: |a| {
            Some(match a {
                Attribute::Name => "m.name",
                Attribute::CreationTime => "m.creation_timestamp_ms",
                Attribute::LastUpdateTime => "m.last_updated_timestamp_ms",
                _ => return None,
            })
        },
        tie_break: &[("m.name", "ASC")],
    };

    pub const MODEL_VERSIONS: Target = Target {
        alias: "v",
        id: "v.id",
        tags: ("model_version_tags", "version_id"),
        params: None,
        metrics: None,
        has_datasets: false,
        attribute: |a| {
            Some(match a {
                Attribute::Name => "v.name",
                Attribute::RunId => "v.run_id",
                Attribute::SourcePath => "v.source",
                Attribute::VersionNumber => "v.version",
                Attribute::CreationTime => "v.creation_timestamp_ms",
                Attribute::LastUpdateTime => "v.last_updated_timestamp_ms",
                _ => return None,
            })
        },
        tie_break: &[("v.name", "ASC"), ("v.version", "DESC")],
    };

    fn attr(&self, a: Attribute) -> Result<&'static str> {
        (self.attribute)(a).ok_or_else(|| {
            StoreError::InvalidQuery(format!("attribute {a:?} is not searchable here"))
        })
    }
}

/// The SQL of one page of a search: `select` (`SELECT … FROM <table> <alias>`), the joins its order needs,
/// then `conditions` (the `WHERE` and the search's own conditions), the query's clauses, its order and its page.
pub(crate) fn page(
    target: &Target,
    select: &str,
    query: &Query,
    conditions: impl FnOnce(&mut Sql),
) -> Result<Sql> {
    page_after(target, Sql::new(select), query, conditions)
}

/// [`page`] for a statement that starts before its `SELECT` (a `WITH` clause with arguments of its own).
pub(crate) fn page_after(
    target: &Target,
    mut sql: Sql,
    query: &Query,
    conditions: impl FnOnce(&mut Sql),
) -> Result<Sql> {
    let order = order_joins(target, &query.order_by, &mut sql)?;
    conditions(&mut sql);
    clauses_and_page(target, query, &order, &mut sql)?;
    Ok(sql)
}

/// What every search writes after its `WHERE` and its own conditions: the query's clauses (each after
/// `AND`), then its order and page.
pub(crate) fn clauses_and_page(target: &Target, query: &Query, order: &[SortKey], sql: &mut Sql) -> Result<()> {
    for clause in &query.clauses {
        sql.push(" AND ");
        filter_clause(target, clause, sql)?;
    }
    sql.order_limit(&order_list(order), query.limit, query.offset);
    Ok(())
}

/// `WHERE <alias>.experiment_id IN (…) AND <lifecycle>`: the start of a search within experiments.
pub(crate) fn in_experiments(target: &Target, query: &Query, sql: &mut Sql) {
    sql.push(&format!(" WHERE {}.experiment_id IN ", target.alias))
        .list(query.experiment_ids.iter().map(|id| Arg::I64(*id)));
    sql.push(" AND ");
    lifecycle_clause(target, query.view, sql);
}

pub(crate) fn lifecycle_clause(target: &Target, view: ViewType, sql: &mut Sql) {
    let a = target.alias;
    match view {
        ViewType::ActiveOnly => sql.push(&format!("{a}.lifecycle_stage = 'active'")),
        ViewType::DeletedOnly => sql.push(&format!("{a}.lifecycle_stage = 'deleted'")),
        ViewType::All => sql.push("1 = 1"),
    };
}

fn str_arg(value: &Value) -> Result<Arg> {
    match value {
        Value::Str(s) => Ok(Arg::Str(s.clone())),
        Value::Num(n) => Ok(Arg::Str(n.to_string())),
        other => Err(StoreError::InvalidQuery(format!(
            "expected a string, got {other:?}"
        ))),
    }
}

fn num_arg(value: &Value) -> Result<Arg> {
    match value {
        // Integral values bind as integers so that BIGINT columns compare exactly on PostgreSQL.
        Value::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(Arg::I64(*n as i64)),
        Value::Num(n) => Ok(Arg::F64(*n)),
        other => Err(StoreError::InvalidQuery(format!(
            "expected a number, got {other:?}"
        ))),
    }
}

/// `<column> <op> <value>` for a string column; handles LIKE/ILIKE and IN lists.
fn string_comparison(column: &str, cmp: Comparator, value: &Value, sql: &mut Sql) -> Result<()> {
    match cmp {
        Comparator::ILike => {
            sql.push(&format!("LOWER({column}) LIKE LOWER("))
                .arg(str_arg(value)?)
                .push(")");
        }
        Comparator::In | Comparator::NotIn => {
            let Value::List(items) = value else {
                return Err(StoreError::InvalidQuery("IN needs a list".into()));
            };
            if items.is_empty() {
                // `x IN ()` is not valid SQL; an empty list matches nothing (and NOT IN everything).
                sql.push(if cmp == Comparator::In {
                    "1 = 0"
                } else {
                    "1 = 1"
                });
            } else {
                sql.push(&format!("{column} {} ", cmp.sql()));
                sql.list(items.iter().map(|s| Arg::Str(s.clone())));
            }
        }
        Comparator::IsNull | Comparator::IsNotNull => {
            sql.push(&format!("{column} {}", cmp.sql()));
        }
        _ => {
            sql.push(&format!("{column} {} ", cmp.sql()))
                .arg(str_arg(value)?);
        }
    }
    Ok(())
}

/// `[NOT] EXISTS (SELECT 1 FROM <table> x WHERE x.<fk> = <owner> AND x.key = <key>` — left open for more
/// conditions; `IS NULL` turns it into NOT EXISTS.
fn open_exists(sql: &mut Sql, cmp: Comparator, table: &str, fk: &str, owner: &str, key: &str) {
    let exists = if cmp == Comparator::IsNull {
        "NOT EXISTS"
    } else {
        "EXISTS"
    };
    sql.push(&format!(
        "{exists} (SELECT 1 FROM {table} x WHERE x.{fk} = {owner} AND x.key = "
    ))
    .str(key);
}

/// Appends one filter clause (no leading AND).
pub(crate) fn filter_clause(target: &Target, clause: &Clause, sql: &mut Sql) -> Result<()> {
    let Clause {
        field,
        comparator: cmp,
        value,
    } = clause;
    let (id, cmp) = (target.id, *cmp);
    match field {
        Field::Attribute(attr) => {
            let column = target.attr(*attr)?;
            if attr.is_numeric() && !matches!(cmp, Comparator::IsNull | Comparator::IsNotNull) {
                sql.push(&format!("{column} {} ", cmp.sql()))
                    .arg(num_arg(value)?);
            } else if *attr == Attribute::ExperimentId {
                // Stored as an integer, spoken as a string.
                let as_num = |v: &str| v.parse::<i64>().unwrap_or(i64::MIN);
                match value {
                    Value::List(items) => {
                        sql.push(&format!("{column} {} ", cmp.sql()));
                        sql.list(items.iter().map(|s| Arg::I64(as_num(s))));
                    }
                    Value::Str(s) => {
                        sql.push(&format!("{column} {} ", cmp.sql())).i64(as_num(s));
                    }
                    _ => {
                        return Err(StoreError::InvalidQuery(
                            "experiment_id needs a string".into(),
                        ))
                    }
                }
            } else {
                string_comparison(column, cmp, value, sql)?;
            }
        }
        Field::Metric(key) => {
            let (table, fk) = target
                .metrics
                .ok_or_else(|| StoreError::InvalidQuery("no metrics here".into()))?;
            open_exists(sql, cmp, table, fk, id, key);
            match cmp {
                Comparator::IsNull | Comparator::IsNotNull => {}
                // NaN equals nothing, and differs from everything.
                Comparator::Ne => {
                    sql.push(" AND (x.is_nan = 1 OR x.value != ")
                        .arg(num_arg(value)?)
                        .push(")");
                }
                _ => {
                    sql.push(&format!(" AND x.is_nan = 0 AND x.value {} ", cmp.sql()))
                        .arg(num_arg(value)?);
                }
            }
            sql.push(")");
        }
        Field::Param(key) | Field::Tag(key) => {
            let (table, fk) = if matches!(field, Field::Param(_)) {
                target
                    .params
                    .ok_or_else(|| StoreError::InvalidQuery("no params here".into()))?
            } else {
                target.tags
            };
            open_exists(sql, cmp, table, fk, id, key);
            if !matches!(cmp, Comparator::IsNull | Comparator::IsNotNull) {
                sql.push(" AND ");
                string_comparison("x.value", cmp, value, sql)?;
            }
            sql.push(")");
        }
        Field::Dataset(df) => {
            if !target.has_datasets {
                return Err(StoreError::InvalidQuery("no datasets here".into()));
            }
            match df {
                DatasetField::Name | DatasetField::Digest => {
                    let column = if *df == DatasetField::Name {
                        "d.name"
                    } else {
                        "d.digest"
                    };
                    sql.push(&format!(
                        "EXISTS (SELECT 1 FROM run_inputs ri JOIN datasets d ON d.dataset_uuid = ri.dataset_uuid \
                         WHERE ri.run_uuid = {id} AND "
                    ));
                    string_comparison(column, cmp, value, sql)?;
                }
                DatasetField::Context => {
                    sql.push(&format!(
                        "EXISTS (SELECT 1 FROM run_input_tags t WHERE t.run_uuid = {id} \
                         AND t.key = 'mlflow.data.context' AND "
                    ));
                    string_comparison("t.value", cmp, value, sql)?;
                }
            }
            sql.push(")");
        }
    }
    Ok(())
}

/// One ORDER BY term: an expression and its direction.
pub(crate) type SortKey = (String, &'static str);

/// Appends the LEFT JOINs that ordering needs and returns the sort keys (expressions without arguments, so
/// they may be placed anywhere without disturbing the placeholder numbering), tie-breakers included.
pub(crate) fn order_joins(
    target: &Target,
    order_by: &[OrderBy],
    sql: &mut Sql,
) -> Result<Vec<SortKey>> {
    let mut keys: Vec<SortKey> = Vec::new();
    for (i, ob) in order_by.iter().enumerate() {
        let dir = if ob.ascending { "ASC" } else { "DESC" };
        let join = |table: &str, fk: &str, sql: &mut Sql, key: &str| {
            sql.push(&format!(
                " LEFT JOIN {table} o{i} ON o{i}.{fk} = {} AND o{i}.key = ",
                target.id
            ))
            .str(key);
        };
        match &ob.field {
            Field::Attribute(attr) => {
                let column = target.attr(*attr)?;
                if attr.is_nullable() {
                    // Missing values last in both directions (SQLite and PostgreSQL disagree by default).
                    keys.push((
                        format!("CASE WHEN {column} IS NULL THEN 1 ELSE 0 END"),
                        "ASC",
                    ));
                }
                keys.push((column.to_string(), dir));
            }
            Field::Metric(key) => {
                let (table, fk) = target
                    .metrics
                    .ok_or_else(|| StoreError::InvalidQuery("no metrics here".into()))?;
                join(table, fk, sql, key);
                // Real numbers first, then NaN, then runs without the metric — MLflow's order.
                keys.push((format!("CASE WHEN o{i}.is_nan = 1 THEN 1 WHEN o{i}.value IS NULL THEN 2 ELSE 0 END"), "ASC"));
                keys.push((format!("o{i}.value"), dir));
            }
            Field::Param(key) | Field::Tag(key) => {
                let (table, fk) = if matches!(ob.field, Field::Param(_)) {
                    target
                        .params
                        .ok_or_else(|| StoreError::InvalidQuery("no params here".into()))?
                } else {
                    target.tags
                };
                join(table, fk, sql, key);
                keys.push((
                    format!("CASE WHEN o{i}.value IS NULL THEN 1 ELSE 0 END"),
                    "ASC",
                ));
                keys.push((format!("o{i}.value"), dir));
            }
            Field::Dataset(_) => {
                return Err(StoreError::InvalidQuery(
                    "cannot order by a dataset field".into(),
                ))
            }
        }
    }
    keys.extend(target.tie_break.iter().map(|(e, d)| (e.to_string(), *d)));
    Ok(keys)
}

/// `a ASC, b DESC, …`
pub(crate) fn order_list(keys: &[SortKey]) -> String {
    keys.iter()
        .map(|(e, d)| format!("{e} {d}"))
        .collect::<Vec<_>>()
        .join(", ")
}
