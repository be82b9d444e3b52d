//! The schema's entry points. Each reads its input as the REST endpoint of the same name reads its body (the
//! input becomes the request's fields, so validation and its messages are the REST API's), makes the same
//! domain call, and answers MLflow's response type. `mlflowSearchRuns` is both a query and a mutation, as in
//! MLflow (its UI sends it as a mutation), and so is nothing else.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use orchard_api::fields::{Fields, FromFields};
use orchard_api::requests as rq;
use orchard_tracking::artifacts::list_root;
use orchard_tracking::TrackingError;
use serde::Serialize;
use serde_json::Value;

use crate::objects::*;
use crate::run_list::RunList;
use crate::services::Services;

type Answer<T> = async_graphql::Result<Option<T>>;

/// Reads an input as the REST request `T`: its fields, named as in the REST API, through the same parser.
fn request<T: FromFields>(input: Option<impl Serialize>) -> Result<T, TrackingError> {
    let fields = match input.map(serde_json::to_value) {
        Some(Ok(Value::Object(map))) => map,
        _ => Default::default(),
    };
    T::from_fields(&Fields(fields))
}

// ------------------------------------------------------------------------------------------------------ inputs

#[derive(InputObject, Serialize, Default)]
#[graphql(name = "MlflowGetExperimentInput")]
pub struct GetExperimentInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment_id: Option<String>,
}

#[derive(InputObject, Serialize, Default)]
#[graphql(name = "MlflowGetRunInput")]
pub struct GetRunInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_uuid: Option<String>,
}

#[derive(InputObject, Serialize, Default)]
#[graphql(name = "MlflowGetMetricHistoryBulkIntervalInput")]
pub struct MetricHistoryBulkIntervalInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    run_ids: Option<Vec<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_step: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_step: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_results: Option<i32>,
}

#[derive(InputObject, Serialize, Default)]
#[graphql(name = "MlflowListArtifactsInput")]
pub struct ListArtifactsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_token: Option<String>,
}

#[derive(InputObject, Serialize, Default)]
#[graphql(name = "MlflowSearchModelVersionsInput")]
pub struct SearchModelVersionsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_results: Option<LongString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_by: Option<Vec<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_token: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Serialize)]
#[graphql(name = "MlflowViewType")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViewType {
    ActiveOnly,
    DeletedOnly,
    All,
}

#[derive(InputObject, Serialize, Default)]
#[graphql(name = "MlflowSearchRunsInput")]
pub struct SearchRunsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment_ids: Option<Vec<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_view_type: Option<ViewType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_results: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_by: Option<Vec<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_token: Option<String>,
}

#[derive(InputObject, Serialize, Default)]
#[graphql(name = "MlflowSearchDatasetsInput")]
pub struct SearchDatasetsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment_ids: Option<Vec<Option<String>>>,
}

// --------------------------------------------------------------------------------------------------- responses

#[derive(SimpleObject)]
#[graphql(name = "MlflowGetExperimentResponse")]
pub struct GetExperimentResponse {
    experiment: Option<ExperimentOut>,
    api_error: Option<ApiError>,
}

#[derive(SimpleObject)]
#[graphql(name = "MlflowGetRunResponse")]
pub struct GetRunResponse {
    run: Option<RunOut>,
    api_error: Option<ApiError>,
}

#[derive(SimpleObject)]
#[graphql(name = "MlflowSearchRunsResponse")]
pub struct SearchRunsResponse {
    runs: Option<RunList>,
    next_page_token: Option<String>,
    api_error: Option<ApiError>,
}

pub struct MetricHistoryBulkIntervalResponse(Vec<orchard_tracking::Metric>);

#[Object(name = "MlflowGetMetricHistoryBulkIntervalResponse")]
impl MetricHistoryBulkIntervalResponse {
    async fn metrics(&self) -> Option<Vec<MetricWithRunId<'_>>> {
        Some(self.0.iter().map(MetricWithRunId).collect())
    }
    async fn api_error(&self) -> Option<ApiError> {
        None
    }
}

#[derive(SimpleObject)]
#[graphql(name = "MlflowListArtifactsResponse")]
pub struct ListArtifactsResponse {
    root_uri: Option<String>,
    files: Option<Vec<FileInfoOut>>,
    next_page_token: Option<String>,
    api_error: Option<ApiError>,
}

#[derive(SimpleObject)]
#[graphql(name = "MlflowSearchModelVersionsResponse")]
pub struct SearchModelVersionsResponse {
    model_versions: Option<Vec<ModelVersionOut>>,
    next_page_token: Option<String>,
    api_error: Option<ApiError>,
}

#[derive(SimpleObject)]
#[graphql(name = "MlflowSearchDatasetsResponse")]
pub struct SearchDatasetsResponse {
    dataset_summaries: Option<Vec<DatasetSummaryOut>>,
    api_error: Option<ApiError>,
}

/// What MLflow's `test` field answers: the string it was given (a way to check the endpoint is alive).
#[derive(SimpleObject)]
pub struct Test {
    /// Echoes the input string
    output: Option<String>,
}

#[derive(SimpleObject)]
pub struct TestMutation {
    /// Echoes the input string
    output: Option<String>,
}

// ------------------------------------------------------------------------------------------------ the roots

async fn search_runs(ctx: &Context<'_>, input: Option<SearchRunsInput>) -> Answer<SearchRunsResponse> {
    let r: rq::SearchRunsRequest = request(input)?;
    let page = ctx
        .data::<Services>()?
        .tracking
        .search_runs(&r.experiment_ids, &r.filter, r.run_view_type, r.max_results, &r.order_by, &r.page_token)
        .await?;
    Ok(Some(SearchRunsResponse {
        runs: Some(RunList(page.items.into_iter().map(RunOut).collect())),
        next_page_token: page.next_page_token,
        api_error: None,
    }))
}

pub struct Query;

#[Object]
impl Query {
    async fn mlflow_get_experiment(&self, ctx: &Context<'_>, input: Option<GetExperimentInput>) -> Answer<GetExperimentResponse> {
        let r: rq::ExperimentIdRequest = request(input)?;
        let experiment = ctx.data::<Services>()?.tracking.get_experiment(&r.experiment_id).await?;
        Ok(Some(GetExperimentResponse { experiment: Some(ExperimentOut(experiment)), api_error: None }))
    }

    async fn mlflow_get_metric_history_bulk_interval(&self, ctx: &Context<'_>, input: Option<MetricHistoryBulkIntervalInput>) -> Answer<MetricHistoryBulkIntervalResponse> {
        let r: rq::GetMetricHistoryBulkIntervalRequest = request(input)?;
        let points = ctx.data::<Services>()?.tracking.get_metric_history_bulk_interval(&r.run_ids, &r.metric_key, r.start_step, r.end_step, r.max_results).await?;
        Ok(Some(MetricHistoryBulkIntervalResponse(points)))
    }

    async fn mlflow_get_run(&self, ctx: &Context<'_>, input: Option<GetRunInput>) -> Answer<GetRunResponse> {
        let r: rq::RunIdRequest = request(input)?;
        let run = ctx.data::<Services>()?.tracking.get_run(&r.run_id).await?;
        Ok(Some(GetRunResponse { run: Some(RunOut(run)), api_error: None }))
    }

    async fn mlflow_list_artifacts(&self, ctx: &Context<'_>, input: Option<ListArtifactsInput>) -> Answer<ListArtifactsResponse> {
        let r: rq::ListRunArtifactsRequest = request(input)?;
        let services = ctx.data::<Services>()?;
        let run = services.tracking.get_run(&r.run_id).await?;
        let files = list_root(services.artifacts.as_ref(), &run.info.artifact_uri, &r.path).await?;
        Ok(Some(ListArtifactsResponse {
            root_uri: Some(run.info.artifact_uri),
            files: Some(files.into_iter().map(FileInfoOut::from).collect()),
            next_page_token: None,
            api_error: None,
        }))
    }

    async fn mlflow_search_model_versions(&self, ctx: &Context<'_>, input: Option<SearchModelVersionsInput>) -> Answer<SearchModelVersionsResponse> {
        let r: rq::SearchRegistryRequest = request(input)?;
        let tracking = &ctx.data::<Services>()?.tracking;
        let page = tracking.search_model_versions(&r.filter, r.max_results, &r.order_by, &r.page_token).await?;
        Ok(Some(SearchModelVersionsResponse {
            model_versions: Some(page.items.into_iter().map(ModelVersionOut).collect()),
            next_page_token: page.next_page_token,
            api_error: None,
        }))
    }

    /// Simple echoing field
    async fn test(&self, input_string: Option<String>) -> Option<Test> {
        Some(Test { output: input_string })
    }

    async fn mlflow_search_runs(&self, ctx: &Context<'_>, input: Option<SearchRunsInput>) -> Answer<SearchRunsResponse> {
        search_runs(ctx, input).await
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    async fn mlflow_search_datasets(&self, ctx: &Context<'_>, input: Option<SearchDatasetsInput>) -> Answer<SearchDatasetsResponse> {
        let fields: Fields = request(input)?;
        let summaries = ctx.data::<Services>()?.tracking.search_datasets(&fields.str_list("experiment_ids")?).await?;
        Ok(Some(SearchDatasetsResponse {
            dataset_summaries: Some(summaries.into_iter().map(DatasetSummaryOut).collect()),
            api_error: None,
        }))
    }

    async fn mlflow_search_runs(&self, ctx: &Context<'_>, input: Option<SearchRunsInput>) -> Answer<SearchRunsResponse> {
        search_runs(ctx, input).await
    }

    /// Simple echoing field
    #[graphql(name = "testMutation")]
    async fn test_mutation(&self, input_string: Option<String>) -> Option<TestMutation> {
        Some(TestMutation { output: input_string })
    }
}
