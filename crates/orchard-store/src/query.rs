//! Typed search queries. The domain layer parses MLflow's filter strings into these; the store turns them
//! into SQL so the database does the filtering, ordering and paging.

/// What a clause or an ordering looks at.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// A column of the searched entity (`attributes.status`, `attributes.name`, …).
    Attribute(Attribute),
    /// The latest value of a metric.
    Metric(String),
    Param(String),
    Tag(String),
    /// A field of a dataset logged as a run input (`datasets.name`, `datasets.digest`, `datasets.context`).
    Dataset(DatasetField),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribute {
    // runs
    RunId,
    RunName,
    Status,
    StartTime,
    EndTime,
    ArtifactUri,
    UserId,
    LifecycleStage,
    // experiments
    ExperimentId,
    Name,
    CreationTime,
    LastUpdateTime,
    // logged models
    ModelId,
    SourceRunId,
    ModelType,
    // model versions
    /// The registered `source` URI (MLflow's filter key `source_path`).
    SourcePath,
    VersionNumber,
}

impl Attribute {
    /// Whether the attribute may be missing (NULL) on some rows.
    pub fn is_nullable(self) -> bool {
        matches!(
            self,
            Attribute::EndTime | Attribute::ModelType | Attribute::SourceRunId
        )
    }

    /// Whether the attribute holds a number (compared numerically) rather than a string.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Attribute::StartTime
                | Attribute::EndTime
                | Attribute::CreationTime
                | Attribute::LastUpdateTime
                | Attribute::VersionNumber
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetField {
    Name,
    Digest,
    Context,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Comparator {
    pub fn sql(self) -> &'static str {
        match self {
            Comparator::Eq => "=",
            Comparator::Ne => "!=",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
            Comparator::Like => "LIKE",
            Comparator::ILike => "LIKE",
            Comparator::In => "IN",
            Comparator::NotIn => "NOT IN",
            Comparator::IsNull => "IS NULL",
            Comparator::IsNotNull => "IS NOT NULL",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    List(Vec<String>),
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    pub field: Field,
    pub comparator: Comparator,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderBy {
    pub field: Field,
    pub ascending: bool,
}

/// Which lifecycle stages a search sees; on the wire as MLflow names them (`ACTIVE_ONLY`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

/// A dataset a logged-model search is restricted to (`datasets` of `logged-models/search`): its metric clauses
/// compare the metrics logged on these datasets, and without metric clauses a model needs some metric on them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DatasetFilter {
    pub name: String,
    /// Any digest when absent.
    pub digest: Option<String>,
}

/// A page of a search: `offset` rows skipped, at most `limit` returned.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Query {
    /// For runs and logged models: the experiments to search in.
    pub experiment_ids: Vec<i64>,
    pub clauses: Vec<Clause>,
    pub order_by: Vec<OrderBy>,
    pub view: ViewType,
    pub offset: i64,
    pub limit: i64,
    /// For logged models: the datasets their metrics are looked at on (all when empty).
    pub datasets: Vec<DatasetFilter>,
}
