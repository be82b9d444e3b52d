//! A typed client of MLflow's REST API: the endpoints of `orchard-api`, called over HTTP.
//!
//! It talks to `orchard server` or to MLflow's own server alike (it reads their answers leniently, as
//! `orchard_api::read` does). Orchard uses it where one Orchard process talks to a tracking server: the
//! pipeline's tracking runs (`orchard repro` with `MLFLOW_TRACKING_URI=http://…`), `orchard serve` resolving a
//! `models:/` URI through a remote server and fetching the files through its artifact proxy.

pub mod models;

use std::time::Duration;

use orchard_api::endpoints::{Endpoint, Method};
use serde::Deserialize;

/// What a call can end in, besides its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach {url}")]
    Unreachable { url: String, source: reqwest::Error },
    /// The server answered with an error: MLflow's `{error_code, message}` when it sent one.
    #[error("{url}: {} {message}", status_text(*status))]
    Api { url: String, status: u16, error_code: String, message: String },
    /// The answer was not the JSON the endpoint gives.
    #[error("{url}: unexpected answer: {message}")]
    Decode { url: String, message: String },
    /// A URI or path this client refuses to follow.
    #[error("{0}")]
    Refused(String),
    #[error("cannot write {path}")]
    Io { path: String, source: std::io::Error },
}

fn status_text(status: u16) -> String {
    reqwest::StatusCode::from_u16(status).map(|s| s.to_string()).unwrap_or_else(|_| status.to_string())
}

/// An error and every cause beneath it, `: `-separated (`cannot reach http://…: error sending request…:
/// Connection refused`), for messages that go out as one line.
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl ClientError {
    /// MLflow's error code, when the server answered with one (`RESOURCE_DOES_NOT_EXIST`, …).
    pub fn error_code(&self) -> Option<&str> {
        match self {
            ClientError::Api { error_code, .. } if !error_code.is_empty() => Some(error_code),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// How long one API call may take (a download of artifacts has no limit).
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// A tracking server at one base URL (`http://host:port`).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Client { base: base.trim_end_matches('/').to_string(), http }
    }

    /// The server's base URL, as given (without a trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Calls one endpoint: GET with the request's fields in the query string (a list as a repeated key), the
    /// other methods with a JSON body.
    pub async fn call<E: Endpoint>(&self, request: &E::Request) -> Result<E::Response> {
        let url = format!("{}{}{}", self.base, E::ROOT.prefix(), E::path(request));
        let builder = match E::METHOD {
            Method::Get => self.http.get(&url).query(&query_pairs(request)),
            Method::Post => self.http.post(&url).json(request),
            Method::Patch => self.http.patch(&url).json(request),
            Method::Delete => self.http.delete(&url).json(request),
        };
        // An API call that hangs must not hold a pipeline stage (whose observer makes it) forever.
        let response = builder.timeout(API_TIMEOUT).send().await.map_err(|source| ClientError::Unreachable { url: url.clone(), source })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|source| ClientError::Unreachable { url: url.clone(), source })?;
        if !status.is_success() {
            let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            let (error_code, message) = body.map(|b| (b.error_code, b.message)).unwrap_or_default();
            return Err(ClientError::Api { url, status: status.as_u16(), error_code, message });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { url, message: e.to_string() })
    }

    /// The bytes of one file behind the artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/<path>`).
    pub async fn download_artifact(&self, path: &str) -> Result<bytes::Bytes> {
        let url = format!("{}{}/artifacts/{path}", self.base, orchard_api::endpoints::Root::Artifacts.prefix());
        let response = self.http.get(&url).send().await.map_err(|source| ClientError::Unreachable { url: url.clone(), source })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ClientError::Api { url, status: status.as_u16(), error_code: String::new(), message: String::new() });
        }
        response.bytes().await.map_err(|source| ClientError::Unreachable { url, source })
    }
}

/// A request's fields as query pairs: scalars as text, lists as repeated keys, nulls left out.
fn query_pairs<T: serde::Serialize>(request: &T) -> Vec<(String, String)> {
    use serde_json::Value;
    let mut pairs = Vec::new();
    let Ok(Value::Object(fields)) = serde_json::to_value(request) else {
        return pairs;
    };
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    for (key, value) in fields {
        match value {
            Value::Array(items) => pairs.extend(items.iter().filter_map(text).map(|v| (key.clone(), v))),
            other => pairs.extend(text(&other).map(|v| (key.clone(), v))),
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchard_api::endpoints::GetLatestVersionsRequest;

    #[test]
    fn a_cause_is_told_once() {
        let e = ClientError::Io { path: "m/model.txt".into(), source: std::io::Error::other("disk full") };
        assert_eq!(e.to_string(), "cannot write m/model.txt");
        assert_eq!(describe(&e), "cannot write m/model.txt: disk full");
        let api = ClientError::Api { url: "u".into(), status: 404, error_code: String::new(), message: "gone".into() };
        assert_eq!(api.to_string(), "u: 404 Not Found gone");
    }

    #[test]
    fn lists_become_repeated_query_keys() {
        let pairs = query_pairs(&GetLatestVersionsRequest { name: "iris".into(), stages: vec!["Staging".into(), "Production".into()] });
        let expected = [("name", "iris"), ("stages", "Staging"), ("stages", "Production")];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    }
}
