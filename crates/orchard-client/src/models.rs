//! A model on a remote tracking server, as `mlflow models serve` finds it: the `models:/` URI resolved to a
//! version and its download URI, the files copied through the server's artifact proxy.

use std::path::Path;

use orchard_api::endpoints::{
    AliasRequest, GetLatestVersions, GetLatestVersionsRequest, GetLoggedModel, GetLoggedModelRequest,
    GetModelVersionByAlias, GetModelVersionDownloadUri, GetRun, ListArtifacts, ListArtifactsRequest,
    ModelVersionRequest, RunIdRequest,
};
use orchard_tracking::registry::{parse_models_uri, ModelUri};

use crate::{Client, ClientError, Result};

/// Where a model's files are, and which registered version (or logged model) it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteModel {
    pub artifact_uri: String,
    pub name: String,
    pub version: String,
}

impl Client {
    /// Resolves `models:/NAME/VERSION`, `models:/NAME@ALIAS`, `models:/NAME/latest|STAGE` or
    /// `models:/<logged model id>` on this server.
    pub async fn resolve_model(&self, uri: &str) -> Result<RemoteModel> {
        let parsed = parse_models_uri(uri).map_err(|e| ClientError::Refused(e.to_string()))?;
        let (name, version) = match parsed {
            ModelUri::LoggedModel { model_id } => {
                let m = self.call::<GetLoggedModel>(&GetLoggedModelRequest { model_id: model_id.clone() }).await?;
                return Ok(RemoteModel { artifact_uri: m.model.info.artifact_uri, name: model_id, version: "1".into() });
            }
            ModelUri::Version { name, version } => (name, version.to_string()),
            ModelUri::Alias { name, alias } => {
                let v = self.call::<GetModelVersionByAlias>(&AliasRequest { name: name.clone(), alias }).await?;
                (name, v.model_version.version)
            }
            ModelUri::Stage { name, stage } => {
                let request = GetLatestVersionsRequest { name: name.clone(), stages: stage.into_iter().collect() };
                let versions = self.call::<GetLatestVersions>(&request).await?.model_versions;
                let best = versions
                    .iter()
                    .filter_map(|v| v.version.parse::<i64>().ok())
                    .max()
                    .ok_or_else(|| ClientError::Refused(format!("No versions of model with name '{name}' found")))?;
                (name, best.to_string())
            }
        };
        let request = ModelVersionRequest { name: name.clone(), version: version.clone() };
        let mut artifact_uri = self.call::<GetModelVersionDownloadUri>(&request).await?.artifact_uri;
        // A version registered from `runs:/<run>/path` answers that URI verbatim: follow it to the run's folder.
        if let Some(rest) = artifact_uri.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.call::<GetRun>(&RunIdRequest { run_id: run_id.to_string() }).await?.run;
            artifact_uri = orchard_tracking::join_uri(&run.info.artifact_uri, path.trim_matches('/'));
        }
        Ok(RemoteModel { artifact_uri, name, version })
    }

    /// Copies every file below an `mlflow-artifacts:/` URI into `dest` through the artifact proxy; the number
    /// of files. Paths the server lists are checked before anything is written (no `..`, no absolute paths).
    pub async fn download_dir(&self, artifact_uri: &str, dest: &Path) -> Result<usize> {
        let root = orchard_tracking::artifacts::proxied_path(artifact_uri).ok_or_else(|| {
            ClientError::Refused(format!(
                "{artifact_uri} is not served by the tracking server's artifact proxy (mlflow-artifacts:/…)"
            ))
        })?;
        let mut pending = vec![root.clone()];
        let mut files = 0;
        while let Some(dir) = pending.pop() {
            let listing = self.call::<ListArtifacts>(&ListArtifactsRequest { path: dir.clone() }).await?;
            for f in listing.files {
                let full = format!("{dir}/{}", f.path);
                if f.is_dir {
                    pending.push(full);
                    continue;
                }
                let rel = orchard_blob::safe_path(full.strip_prefix(&root).unwrap_or(&full).trim_start_matches('/'))
                    .map_err(|e| ClientError::Refused(format!("refusing artifact path {full}: {e}")))?;
                let bytes = self.download_artifact(&full).await?;
                let target = dest.join(rel);
                let io = |source| ClientError::Io { path: target.display().to_string(), source };
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                std::fs::write(&target, &bytes).map_err(io)?;
                files += 1;
            }
        }
        if files == 0 {
            return Err(ClientError::Refused(format!("no files under {artifact_uri}")));
        }
        Ok(files)
    }
}
