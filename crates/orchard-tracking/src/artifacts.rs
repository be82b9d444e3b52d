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

/// The entries below `sub` of an artifact root, named relative to the root. A `mlflow-artifacts:/` root is
/// listed through this server's proxy store (`proxy`), a local folder where it is (as MLflow's server lists a
/// `file://` root when it does not proxy), anything else as empty. `sub` is checked in every case: `../x` is
/// an invalid path even where nothing is listed.
pub async fn list_root(proxy: Option<&Artifacts>, root_uri: &str, sub: &str) -> Result<Vec<FileInfo>> {
    let sub = if sub.is_empty() { String::new() } else { orchard_blob::safe_path(sub)? };
    let listed = match (proxy, proxied_path(root_uri)) {
        (Some(store), Some(root)) if sub.is_empty() => store.list(&root).await?,
        (Some(store), Some(root)) => store.list(&format!("{root}/{sub}")).await?,
        (_, None) if orchard_blob::local_folder(root_uri).is_some_and(|dir| dir.is_dir()) => {
            Artifacts::new(BlobStore::open(root_uri)?).list(&sub).await?
        }
        _ => Vec::new(),
    };
    Ok(listed
        .into_iter()
        .map(|mut f| {
            if !sub.is_empty() {
                f.path = format!("{sub}/{}", f.path);
            }
            f
        })
        .collect())
}

/// The store that holds what lies below an artifact root, and `path`'s name in it: this server's proxy store
/// for a `mlflow-artifacts:/` root, the root's own store (a local folder, S3) otherwise — how MLflow's UI
/// routes (`get-artifact`, `upload-artifact`, …) reach a run's or a model's files.
fn store_under(proxy: Option<&Artifacts>, root_uri: &str, path: &str) -> Result<(Artifacts, String)> {
    let path = orchard_blob::safe_path(path)?;
    if path.is_empty() {
        return Err(TrackingError::invalid("Invalid path"));
    }
    match (proxy, proxied_path(root_uri)) {
        (Some(store), Some(root)) if root.is_empty() => Ok((store.clone(), path)),
        (Some(store), Some(root)) => Ok((store.clone(), format!("{root}/{path}"))),
        (None, Some(_)) => Err(TrackingError::new(
            crate::ErrorCode::NotImplemented,
            "Artifact serving is disabled: this server was started with --no-serve-artifacts",
        )),
        (_, None) => Ok((Artifacts::new(BlobStore::open(root_uri)?), path)),
    }
}

/// Opens the file `path` below an artifact root for reading.
pub async fn open_under(
    proxy: Option<&Artifacts>,
    root_uri: &str,
    path: &str,
) -> Result<(u64, BoxStream<'static, orchard_blob::Result<Bytes>>)> {
    // A local root that is not there holds nothing (and is not created by looking).
    if orchard_blob::local_folder(root_uri).is_some_and(|dir| !dir.is_dir()) {
        return Err(TrackingError::not_found(format!("Artifact '{path}' does not exist")));
    }
    let (store, path) = store_under(proxy, root_uri, path)?;
    store.download(&path).await
}

/// Writes the file `path` below an artifact root; it appears whole or not at all.
pub async fn write_under(proxy: Option<&Artifacts>, root_uri: &str, path: &str, bytes: Bytes) -> Result<()> {
    let (store, path) = store_under(proxy, root_uri, path)?;
    Ok(store.blob.put(&path, bytes).await?)
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
