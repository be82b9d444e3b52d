//! The artifact proxy's domain side: paths under the artifact store, as MLflow's `mlflow-artifacts` service
//! exposes them. Every path is checked by [`orchard_blob::safe_path`] before it reaches storage.

use bytes::Bytes;
use futures::stream::BoxStream;
use orchard_blob::{BlobError, BlobStore};

use crate::error::{Result, TrackingError};

/// The URI scheme of artifacts served through the tracking server.
pub const PROXY_SCHEME: &str = "mlflow-artifacts:";

/// One entry of a listing, named relative to the listed folder (as MLflow does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    pub file_size: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Artifacts {
    blob: BlobStore,
}

/// `mlflow-artifacts:/1/abc/artifacts` → `1/abc/artifacts`; `None` for other schemes.
pub fn proxied_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix(PROXY_SCHEME)?;
    // `mlflow-artifacts:/x`, `mlflow-artifacts:///x` and `mlflow-artifacts://host/x` all name `x`.
    let rest = if let Some(r) = rest.strip_prefix("//") {
        r.split_once('/').map(|(_, p)| p).unwrap_or("")
    } else {
        rest
    };
    Some(rest.trim_start_matches('/').to_string())
}

impl Artifacts {
    pub fn new(blob: BlobStore) -> Artifacts {
        Artifacts { blob }
    }

    pub fn blob(&self) -> &BlobStore {
        &self.blob
    }

    /// The direct children of `dir` ("" for the root).
    pub async fn list(&self, dir: &str) -> Result<Vec<FileInfo>> {
        let dir = if dir.is_empty() {
            String::new()
        } else {
            orchard_blob::safe_path(dir)?
        };
        let entries = self.blob.list(&dir).await?;
        Ok(entries
            .into_iter()
            .map(|e| FileInfo {
                path: e.path.rsplit('/').next().unwrap_or(&e.path).to_string(),
                is_dir: e.is_dir,
                file_size: e.size,
            })
            .filter(|f| !f.path.is_empty())
            .collect())
    }

    /// Stores an upload; the object appears whole or not at all.
    pub async fn upload<E>(
        &self,
        path: &str,
        body: BoxStream<'_, std::result::Result<Bytes, E>>,
    ) -> Result<u64>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if path.is_empty() || path.ends_with('/') {
            return Err(TrackingError::invalid("Invalid path"));
        }
        Ok(self.blob.put_stream(path, body).await?)
    }

    /// Opens an artifact for streaming. A folder is refused with a clear message rather than an empty file.
    pub async fn download(
        &self,
        path: &str,
    ) -> Result<(u64, BoxStream<'static, orchard_blob::Result<Bytes>>)> {
        match self.blob.get(path).await {
            Ok(found) => Ok(found),
            Err(BlobError::NotFound(_)) => {
                if !self
                    .blob
                    .list(&orchard_blob::safe_path(path)?)
                    .await?
                    .is_empty()
                {
                    return Err(TrackingError::invalid(format!(
                        "Artifact path refers to a directory, not a file: '{path}'"
                    )));
                }
                Err(TrackingError::not_found(format!(
                    "Artifact '{path}' does not exist"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Copies every file below an artifact URI (`mlflow-artifacts:/…` from this store, or any `file://` / `s3://`
    /// URI) into the local folder `dest`, which appears whole or not at all (filled aside, then renamed).
    /// Returns the number of files.
    pub async fn download_dir(&self, artifact_uri: &str, dest: &std::path::Path) -> Result<usize> {
        let (store, prefix) = match proxied_path(artifact_uri) {
            Some(p) => (self.blob.clone(), orchard_blob::safe_path(&p)?),
            None => (BlobStore::open(artifact_uri)?, String::new()),
        };
        let files = store.list_recursive(&prefix).await?;
        if files.is_empty() {
            return Err(TrackingError::not_found(format!(
                "No artifacts found under '{artifact_uri}'"
            )));
        }
        let parent = dest.parent().unwrap_or(std::path::Path::new("."));
        let io = |e: std::io::Error, p: &std::path::Path| {
            TrackingError::new(
                crate::ErrorCode::InternalError,
                format!("cannot write {}: {e}", p.display()),
            )
        };
        std::fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("download"),
            uuid::Uuid::new_v4().simple()
        ));
        let result = async {
            for path in &files {
                let rel = path
                    .strip_prefix(prefix.as_str())
                    .unwrap_or(path)
                    .trim_start_matches('/');
                let rel = orchard_blob::safe_path(rel)?;
                let target = tmp.join(&rel);
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
                }
                let bytes = store.get_bytes(path).await?;
                std::fs::write(&target, &bytes).map_err(|e| io(e, &target))?;
            }
            match std::fs::rename(&tmp, dest) {
                Ok(()) => Ok(files.len()),
                // Someone else downloaded it meanwhile: theirs is as good as ours.
                Err(_) if dest.is_dir() => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    Ok(files.len())
                }
                Err(e) => Err(io(e, dest)),
            }
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        match self.blob.delete(path).await {
            // Deleting what is not there is done already (MLflow answers {} too).
            Ok(()) | Err(BlobError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_paths() {
        assert_eq!(
            proxied_path("mlflow-artifacts:/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            proxied_path("mlflow-artifacts:///1/x").as_deref(),
            Some("1/x")
        );
        assert_eq!(
            proxied_path("mlflow-artifacts://host:5000/1/x").as_deref(),
            Some("1/x")
        );
        assert_eq!(proxied_path("s3://b/1"), None);
    }
}
