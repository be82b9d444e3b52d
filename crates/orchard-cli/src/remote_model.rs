//! Fetching a model from a remote tracking server over MLflow's REST API (`MLFLOW_TRACKING_URI=http://…`), as
//! `mlflow models serve` does: resolve the `models:/` URI to a version and its download URI, then copy the
//! files through the server's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts`).

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use orchard_tracking::registry::{parse_models_uri, ModelUri};
use serde_json::Value;

/// (artifact URI, model name, version) of a `models:/` URI on the server at `base`.
pub async fn resolve(client: &reqwest::Client, base: &str, uri: &str) -> anyhow::Result<(String, String, String)> {
    let api = format!("{}/api/2.0/mlflow", base.trim_end_matches('/'));
    let get = |path: String, query: Vec<(&'static str, String)>| {
        let client = client.clone();
        let url = format!("{api}/{path}");
        async move {
            let r = client.get(&url).query(&query).send().await.with_context(|| format!("cannot reach {url}"))?;
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!("{url}: {} {}", status.as_u16(), body["message"].as_str().unwrap_or(""));
            }
            Ok::<Value, anyhow::Error>(body)
        }
    };
    let (name, version) = match parse_models_uri(uri).map_err(|e| anyhow!(e.message))? {
        ModelUri::LoggedModel { model_id } => {
            let m = get(format!("logged-models/{model_id}"), vec![]).await?;
            let artifact = m["model"]["info"]["artifact_uri"].as_str().ok_or_else(|| anyhow!("no artifact_uri for {model_id}"))?;
            return Ok((artifact.to_string(), model_id, "1".into()));
        }
        ModelUri::Version { name, version } => (name, version.to_string()),
        ModelUri::Alias { name, alias } => {
            let v = get("registered-models/alias".into(), vec![("name", name.clone()), ("alias", alias)]).await?;
            let version = v["model_version"]["version"].as_str().unwrap_or_default().to_string();
            (name, version)
        }
        ModelUri::Stage { name, stage } => {
            let mut query = vec![("name", name.clone())];
            if let Some(s) = stage {
                query.push(("stages", s));
            }
            let v = get("registered-models/get-latest-versions".into(), query).await?;
            let best = v["model_versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|mv| mv["version"].as_str()?.parse::<i64>().ok())
                .max()
                .ok_or_else(|| anyhow!("No versions of model with name '{name}' found"))?;
            (name, best.to_string())
        }
    };
    let d = get("model-versions/get-download-uri".into(), vec![("name", name.clone()), ("version", version.clone())]).await?;
    let mut artifact = d["artifact_uri"]
        .as_str()
        .ok_or_else(|| anyhow!("no artifact_uri for {name} version {version}"))?
        .to_string();
    // A version registered from `runs:/<run>/path` answers that URI verbatim: follow it to the run's folder.
    if let Some(rest) = artifact.strip_prefix("runs:/") {
        let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
        let run = get("runs/get".into(), vec![("run_id", run_id.to_string())]).await?;
        let root = run["run"]["info"]["artifact_uri"]
            .as_str()
            .ok_or_else(|| anyhow!("run {run_id} has no artifact_uri"))?;
        artifact = orchard_tracking::join_uri(root, path.trim_matches('/'));
    }
    Ok((artifact, name, version))
}

/// Copies every file below an `mlflow-artifacts:/` URI into `dest` through the server's artifact proxy.
pub async fn download(client: &reqwest::Client, base: &str, artifact_uri: &str, dest: &Path) -> anyhow::Result<usize> {
    let root = orchard_tracking::artifacts::proxied_path(artifact_uri).ok_or_else(|| {
        anyhow!("{artifact_uri} is not served by the tracking server's artifact proxy (mlflow-artifacts:/…)")
    })?;
    let api = format!("{}/api/2.0/mlflow-artifacts/artifacts", base.trim_end_matches('/'));
    let mut pending = vec![root.clone()];
    let mut files = 0;
    while let Some(dir) = pending.pop() {
        let listing: Value = client
            .get(&api)
            .query(&[("path", dir.as_str())])
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("cannot list {dir}"))?
            .json()
            .await?;
        for f in listing["files"].as_array().into_iter().flatten() {
            let name = f["path"].as_str().unwrap_or_default();
            let full = format!("{dir}/{name}");
            if f["is_dir"].as_bool().unwrap_or(false) {
                pending.push(full);
                continue;
            }
            let rel = orchard_blob::safe_path(full.strip_prefix(&root).unwrap_or(&full).trim_start_matches('/'))
                .map_err(|e| anyhow!("refusing artifact path {full}: {e}"))?;
            let bytes = client.get(format!("{api}/{full}")).send().await?.error_for_status()?.bytes().await?;
            let target = dest.join(rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, &bytes).with_context(|| format!("cannot write {}", target.display()))?;
            files += 1;
        }
    }
    if files == 0 {
        bail!("no files under {artifact_uri}");
    }
    Ok(files)
}
