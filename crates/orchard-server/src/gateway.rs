//! The serving gateway of `orchard server`: `POST /models/<name>/predict` (and `/invocations`, `/v2/…`) answer
//! with the version a registered model's alias (`@champion` by default) points at.
//!
//! The alias is looked up on every request — one indexed query — so moving it switches traffic at once, with
//! no restart. Each version is downloaded and loaded once, on first use, and kept (versions never change).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use orchard_serve::python::PythonSettings;
use orchard_serve::{Catalog, Engine, ServeError, ServedModel};
use orchard_tracking::artifacts::Artifacts;
use orchard_tracking::{ErrorCode, Tracking};
use tokio::sync::Mutex as AsyncMutex;

#[derive(Debug)]
pub struct RegistryCatalog {
    tracking: Tracking,
    artifacts: Artifacts,
    alias: String,
    /// Where downloaded versions are kept.
    cache_dir: PathBuf,
    /// The Python that serves versions Orchard does not run natively (one worker set per version loaded).
    python: PythonSettings,
    /// (name, version, creation time) → the loaded model. The creation time tells a re-created model's
    /// version 1 from an old one.
    loaded: Mutex<HashMap<(String, i64, i64), Arc<ServedModel>>>,
    /// One download at a time, so concurrent first requests load a version once.
    loading: AsyncMutex<()>,
}

impl RegistryCatalog {
    pub fn new(tracking: Tracking, artifacts: Artifacts, alias: &str, cache_dir: PathBuf, python: PythonSettings) -> RegistryCatalog {
        RegistryCatalog {
            tracking,
            artifacts,
            alias: alias.to_string(),
            cache_dir,
            python,
            loaded: Mutex::new(HashMap::new()),
            loading: AsyncMutex::new(()),
        }
    }

    fn cached(&self, key: &(String, i64, i64)) -> Option<Arc<ServedModel>> {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }
}

fn not_served(e: orchard_tracking::TrackingError) -> ServeError {
    match e.code() {
        ErrorCode::ResourceDoesNotExist | ErrorCode::InvalidParameterValue => ServeError::NotFound(e.to_string()),
        _ => ServeError::Unavailable(e.to_string()),
    }
}

#[async_trait::async_trait]
impl Catalog for RegistryCatalog {
    async fn get(&self, name: &str) -> Result<Arc<ServedModel>, ServeError> {
        let version = self
            .tracking
            .get_model_version_by_alias(name, &self.alias)
            .await
            .map_err(|e| {
                ServeError::NotFound(format!(
                    "model '{name}' has no version behind the alias '@{}' to serve ({})",
                    self.alias, e
                ))
            })?;
        let key = (name.to_string(), version.version, version.creation_timestamp_ms);
        if let Some(m) = self.cached(&key) {
            return Ok(m);
        }
        let _guard = self.loading.lock().await;
        if let Some(m) = self.cached(&key) {
            return Ok(m);
        }
        let uri = format!("models:/{name}/{}", version.version);
        let resolved = self.tracking.resolve_model_uri(&uri).await.map_err(not_served)?;
        let safe: String = name
            .chars()
            .map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' })
            .collect();
        let dir = self
            .cache_dir
            .join(format!("{safe}-v{}-{}", version.version, version.creation_timestamp_ms));
        if !dir.is_dir() {
            self.artifacts
                .download_dir(&resolved.artifact_uri, &dir)
                .await
                .map_err(not_served)?;
        }
        let engine = Engine::load(&dir, &self.python)
            .await
            .map_err(|e| ServeError::Unavailable(format!("cannot load {uri}: {e}")))?;
        tracing::info!(model = name, version = version.version, engine = %engine.describe(), "model loaded");
        let served = Arc::new(ServedModel {
            name: name.into(),
            version: version.version.to_string().into(),
            source: uri,
            engine,
        });
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, served.clone());
        Ok(served)
    }

    async fn default_model(&self) -> Result<Arc<ServedModel>, ServeError> {
        Err(ServeError::NotFound(
            "the gateway serves models by name: POST /models/<name>/predict".into(),
        ))
    }

    fn loaded(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|m| (m.name.to_string(), m.version.to_string()))
            .collect();
        out.sort();
        out
    }
}
