//! The one model `orchard serve` answers with, found from what the user named: a local folder or file, an
//! artifact URI, or a `models:/` / `runs:/` URI resolved through the metadata store — or, as
//! `mlflow models serve` does, through a remote tracking server's REST API and artifact proxy.

use std::path::{Path, PathBuf};

use orchard_serve::python::PythonSettings;
use orchard_serve::{Engine, LoadError, ServedModel};
use orchard_store::Store;
use orchard_tracking::artifacts::Artifacts;
use orchard_tracking::registry::{parse_models_uri, ModelUri};
use orchard_tracking::Tracking;

/// Where to look for the model's files.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// What the user named (`models:/iris@champion`, `runs:/<id>/model`, `s3://…`, a path).
    pub uri: String,
    /// The metadata store that resolves `models:/` and `runs:/` URIs.
    pub backend_store_uri: String,
    /// Whether the backend store was named (it then wins over a tracking server).
    pub backend_named: bool,
    /// A tracking server (`http://…`) to resolve `models:/` URIs through instead.
    pub tracking_uri: Option<String>,
    /// Where downloads are unpacked before loading (removed once a native model is loaded; kept while Python
    /// workers serve from them, and removed when they stop).
    pub cache_dir: PathBuf,
    /// The Python that serves models Orchard does not run natively.
    pub python: PythonSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot load the model at {path}")]
    LoadLocal { path: String, source: LoadError },
    #[error("cannot load {uri}")]
    Load { uri: String, source: LoadError },
    #[error("cannot resolve {uri}")]
    Resolve { uri: String, source: orchard_tracking::TrackingError },
    #[error("cannot download {uri}")]
    Download { uri: String, source: orchard_tracking::TrackingError },
    #[error("cannot open the backend store to resolve {uri}")]
    Store { uri: String, source: orchard_store::StoreError },
    #[error(transparent)]
    Remote(#[from] orchard_client::ClientError),
    #[error(
        "runs:/ URIs are resolved through the store: pass --backend-store-uri, or register the model and serve \
         models:/NAME/VERSION"
    )]
    RunsNeedStore,
}

impl ModelSource {
    fn remote(&self) -> Option<&str> {
        self.tracking_uri
            .as_deref()
            .filter(|t| !self.backend_named && (t.starts_with("http://") || t.starts_with("https://")))
    }

    /// A fresh folder for one download.
    fn scratch(&self) -> PathBuf {
        self.cache_dir.join(format!("serve-{}", uuid::Uuid::new_v4().simple()))
    }

    /// Finds and loads the model. Downloaded files are removed once the model is in memory.
    pub async fn load(&self, artifacts: &Artifacts) -> Result<ServedModel, SourceError> {
        let uri = self.uri.as_str();
        let local = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
        if !uri.contains(":/") || (uri.starts_with("file://") && local.exists()) {
            let model = Engine::load(local, &self.python)
                .await
                .map_err(|source| SourceError::LoadLocal { path: local.display().to_string(), source })?;
            let name = local.file_stem().and_then(|n| n.to_str()).filter(|n| !n.is_empty()).unwrap_or("model");
            return Ok(served(name, "1", uri, model));
        }
        if let (Some(base), true) = (self.remote(), uri.starts_with("models:")) {
            let client = orchard_client::Client::new(base);
            let found = client.resolve_model(uri).await?;
            let dir = self.scratch();
            let fetched = client.download_dir(&found.artifact_uri, &dir).await;
            let model = match fetched {
                Ok(_) => self.load_downloaded(&dir, uri).await,
                Err(e) => Err(e.into()),
            };
            return Ok(served(&found.name, &found.version, uri, model?));
        }
        if self.remote().is_some() && uri.starts_with("runs:") {
            return Err(SourceError::RunsNeedStore);
        }
        let (artifact_uri, name, version) = if uri.starts_with("models:") || uri.starts_with("runs:") {
            self.resolve_in_store(uri).await?
        } else {
            (uri.to_string(), "model".to_string(), "1".to_string())
        };
        let dir = self.scratch();
        artifacts
            .download_dir(&artifact_uri, &dir)
            .await
            .map_err(|source| SourceError::Download { uri: artifact_uri.clone(), source })?;
        let model = self.load_downloaded(&dir, uri).await?;
        Ok(served(&name, &version, uri, model))
    }

    /// Loads a downloaded model folder. A native model is in memory once loaded, so its folder goes; a Python
    /// worker reads from its folder while it runs, so that one stays (in the cache folder).
    async fn load_downloaded(&self, dir: &Path, uri: &str) -> Result<Engine, SourceError> {
        match Engine::load(dir, &self.python).await {
            Ok(Engine::Python(mut py)) => {
                py.remove_folder_on_drop(dir.to_path_buf());
                Ok(Engine::Python(py))
            }
            loaded => {
                let _ = std::fs::remove_dir_all(dir);
                loaded.map_err(|source| SourceError::Load { uri: uri.to_string(), source })
            }
        }
    }

    /// (artifact URI, name, version) of a `models:/` or `runs:/` URI, from the metadata store.
    async fn resolve_in_store(&self, uri: &str) -> Result<(String, String, String), SourceError> {
        let store = Store::open(&self.backend_store_uri)
            .await
            .map_err(|source| SourceError::Store { uri: uri.to_string(), source })?;
        let resolve = |source| SourceError::Resolve { uri: uri.to_string(), source };
        let tracking = Tracking::new(store, "mlflow-artifacts:/").await.map_err(resolve)?;
        let resolved = tracking.resolve_model_uri(uri).await.map_err(resolve)?;
        let name = match (&resolved.name, parse_models_uri(uri)) {
            (Some(n), _) => n.clone(),
            (None, Ok(ModelUri::LoggedModel { model_id })) => model_id,
            _ => "model".to_string(),
        };
        let version = resolved.version.map(|v| v.to_string()).unwrap_or_else(|| "1".into());
        Ok((resolved.artifact_uri, name, version))
    }
}

fn served(name: &str, version: &str, source: &str, engine: Engine) -> ServedModel {
    ServedModel { name: name.into(), version: version.into(), source: source.to_string(), engine }
}
