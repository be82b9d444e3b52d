//! MLflow's REST endpoints as types: each names its method and path once, with the request it takes and the
//! answer it gives. `orchard-server` mounts its routes at these paths; `orchard-client` calls them.
//!
//! Paths are relative to the API root (`/api/2.0/mlflow`, also served under `/ajax-api/2.0/mlflow`), except
//! the artifact proxy's, which live under `/api/2.0/mlflow-artifacts` ([`Root::Artifacts`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::read::{Experiment, FileInfo, LoggedModel, ModelVersion, Run, RunInfo};
pub use crate::requests::{
    AliasRequest, CreateExperimentRequest, CreateRunRequest, GetExperimentByNameRequest, GetLatestVersionsRequest,
    ListArtifactsRequest, LogBatchRequest, MetricIn, ModelVersionRequest, RunIdRequest, UpdateRunRequest,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

/// Which API an endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `/api/2.0/mlflow`: tracking and the model registry.
    Mlflow,
    /// `/api/2.0/mlflow-artifacts`: the artifact proxy.
    Artifacts,
}

impl Root {
    pub fn prefix(self) -> &'static str {
        match self {
            Root::Mlflow => "/api/2.0/mlflow",
            Root::Artifacts => "/api/2.0/mlflow-artifacts",
        }
    }
}

/// One endpoint: where it is, what it takes, what it answers. GET requests carry their fields in the query
/// string (a list as a repeated key); the others as a JSON body.
pub trait Endpoint {
    const METHOD: Method;
    const ROOT: Root = Root::Mlflow;
    /// The route as the server mounts it; `{name}` parts are filled from the request by [`Endpoint::path`].
    const PATH: &'static str;
    type Request: Serialize;
    type Response: DeserializeOwned;

    /// The path of one call (for routes with a part taken from the request).
    fn path(_request: &Self::Request) -> String {
        Self::PATH.to_string()
    }
}

/// An answer with no fields (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

macro_rules! endpoint {
    ($(#[$doc:meta])* $name:ident: $method:ident $path:literal, $req:ty => $resp:ty) => {
        $(#[$doc])*
        pub struct $name;
        impl Endpoint for $name {
            const METHOD: Method = Method::$method;
            const PATH: &'static str = $path;
            type Request = $req;
            type Response = $resp;
        }
    };
}

// ------------------------------------------------------------------------------------------------ experiments

#[derive(Debug, Clone, Deserialize)]
pub struct ExperimentResponse {
    pub experiment: Experiment,
}

endpoint!(GetExperimentByName: Get "/experiments/get-by-name", GetExperimentByNameRequest => ExperimentResponse);

#[derive(Debug, Clone, Deserialize)]
pub struct CreateExperimentResponse {
    pub experiment_id: String,
}

endpoint!(CreateExperiment: Post "/experiments/create", CreateExperimentRequest => CreateExperimentResponse);

// ------------------------------------------------------------------------------------------------------- runs

#[derive(Debug, Clone, Deserialize)]
pub struct RunResponse {
    pub run: Run,
}

endpoint!(CreateRun: Post "/runs/create", CreateRunRequest => RunResponse);

endpoint!(GetRun: Get "/runs/get", RunIdRequest => RunResponse);

#[derive(Debug, Clone, Deserialize)]
pub struct UpdateRunResponse {
    pub run_info: RunInfo,
}

endpoint!(UpdateRun: Post "/runs/update", UpdateRunRequest => UpdateRunResponse);

endpoint!(LogBatch: Post "/runs/log-batch", LogBatchRequest => Empty);

// ---------------------------------------------------------------------------------------------- logged models

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetLoggedModelRequest {
    #[serde(skip)]
    pub model_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoggedModelResponse {
    pub model: LoggedModel,
}

/// `GET /logged-models/{model_id}`: the id is part of the path.
pub struct GetLoggedModel;

impl Endpoint for GetLoggedModel {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/logged-models/{model_id}";
    type Request = GetLoggedModelRequest;
    type Response = LoggedModelResponse;

    fn path(request: &GetLoggedModelRequest) -> String {
        Self::PATH.replace("{model_id}", &request.model_id)
    }
}

// ---------------------------------------------------------------------------------------------- the registry

#[derive(Debug, Clone, Deserialize)]
pub struct ModelVersionResponse {
    pub model_version: ModelVersion,
}

endpoint!(GetModelVersionByAlias: Get "/registered-models/alias", AliasRequest => ModelVersionResponse);

#[derive(Debug, Clone, Deserialize)]
pub struct ModelVersionsResponse {
    #[serde(default)]
    pub model_versions: Vec<ModelVersion>,
}

endpoint!(GetLatestVersions: Get "/registered-models/get-latest-versions", GetLatestVersionsRequest => ModelVersionsResponse);

#[derive(Debug, Clone, Deserialize)]
pub struct GetDownloadUriResponse {
    pub artifact_uri: String,
}

endpoint!(GetModelVersionDownloadUri: Get "/model-versions/get-download-uri", ModelVersionRequest => GetDownloadUriResponse);

// ------------------------------------------------------------------------------------------ the artifact proxy

#[derive(Debug, Clone, Deserialize)]
pub struct ListArtifactsResponse {
    #[serde(default)]
    pub files: Vec<FileInfo>,
}

/// `GET /artifacts?path=…`: the files of one folder behind the artifact proxy.
pub struct ListArtifacts;

impl Endpoint for ListArtifacts {
    const METHOD: Method = Method::Get;
    const ROOT: Root = Root::Artifacts;
    const PATH: &'static str = "/artifacts";
    type Request = ListArtifactsRequest;
    type Response = ListArtifactsResponse;
}
