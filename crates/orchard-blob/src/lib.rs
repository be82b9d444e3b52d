//! Orchard's byte storage: artifacts (and later data caches and remotes) on a local folder or any
//! S3-compatible object store, through the `object_store` crate.
//!
//! Paths given to a [`BlobStore`] are always relative and are checked by [`safe_path`] first: nothing a client
//! sends can name a file outside the store's root.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, PutPayload, WriteMultipart};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("unsupported artifact location '{0}': expected file:///path, a local path, or s3://bucket/prefix")]
    UnsupportedUri(String),
    #[error("invalid path '{path}': {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("cannot create the artifact folder {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("storage error: {0}")]
    Store(#[from] object_store::Error),
}

pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// One entry of a folder listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the store root.
    pub path: String,
    pub is_dir: bool,
    pub size: Option<u64>,
}

/// S3 settings given explicitly (each overrides the matching environment variable).
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

/// A byte store rooted at a URI.
#[derive(Clone, Debug)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    uri: String,
    /// For a local folder: its path, to tidy away folders left empty by a delete.
    local_root: Option<std::path::PathBuf>,
}

impl BlobStore {
    /// Opens `file:///abs/path`, a plain local path, or `s3://bucket[/prefix]`.
    ///
    /// For S3 the endpoint, region and credentials come from the usual environment: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`/`AWS_DEFAULT_REGION`, and `AWS_ENDPOINT_URL` or
    /// `MLFLOW_S3_ENDPOINT_URL` (MLflow's name) for S3-compatible servers.
    pub fn open(uri: &str) -> Result<BlobStore> {
        BlobStore::open_with(uri, &S3Options::default())
    }

    /// Like [`BlobStore::open`], with S3 settings that take precedence over the environment (DVC keeps
    /// them per remote in `.dvc/config`: `endpointurl`, `region`, `access_key_id`, …).
    pub fn open_with(uri: &str, s3: &S3Options) -> Result<BlobStore> {
        let mut local_root = None;
        let inner: Arc<dyn ObjectStore> = if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BlobError::UnsupportedUri(uri.to_string()));
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            let endpoint = std::env::var("MLFLOW_S3_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok();
            if let Some(endpoint) = endpoint {
                builder = builder
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_endpoint(endpoint);
                // S3-compatible servers are usually addressed by path, not by virtual host.
                builder = builder.with_virtual_hosted_style_request(false);
            }
            if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err()
            {
                builder = builder.with_region("us-east-1");
            }
            if let Some(endpoint) = &s3.endpoint {
                builder = builder
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            if let Some(region) = &s3.region {
                builder = builder.with_region(region);
            }
            if let Some(key) = &s3.access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = &s3.secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
            if let Some(token) = &s3.session_token {
                builder = builder.with_token(token);
            }
            let s3: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                s3
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            }
        } else {
            let path = local_path(uri)?;
            std::fs::create_dir_all(&path).map_err(|source| BlobError::Directory {
                path: path.clone(),
                source,
            })?;
            // The root as the kernel resolves it: what a path resolves to must stay below it (see
            // `contained`), so links inside the folder cannot lead a request out of it.
            let root = std::fs::canonicalize(&path).map_err(|source| BlobError::Directory { path: path.clone(), source })?;
            let fs = LocalFileSystem::new_with_prefix(&root)?;
            local_root = Some(root);
            Arc::new(fs)
        };
        Ok(BlobStore {
            inner,
            uri: uri.to_string(),
            local_root,
        })
    }

    /// A path of this store as the object store names it, refused when it leaves the store.
    fn object_path(&self, path: &str) -> Result<Path> {
        let p = object_path(path)?;
        self.contained(&on_disk(p.as_ref()))?;
        Ok(p)
    }

    /// The listing prefix of a folder: none for the store's root.
    fn dir_prefix(&self, dir: &str) -> Result<Option<Path>> {
        if dir.is_empty() {
            return Ok(None);
        }
        self.object_path(dir).map(Some)
    }

    /// For a local folder: refuses a path that resolves outside the folder — a symbolic link inside it (a
    /// shared volume, a user with a shell) must not let a request read, list, write or delete elsewhere. The
    /// deepest part of the path that exists is resolved (a file to be written need not exist yet). Remote
    /// object stores have no links. `rel` is the path as it is on disk (see [`on_disk`]).
    fn contained(&self, rel: &str) -> Result<()> {
        let Some(root) = &self.local_root else { return Ok(()) };
        let mut at = root.join(rel);
        loop {
            match std::fs::canonicalize(&at) {
                Ok(real) if real.starts_with(root) => return Ok(()),
                Ok(_) => {
                    return Err(BlobError::UnsafePath { path: rel.to_string(), reason: "it leads out of the store through a link" })
                }
                // Not there (yet), or a dangling link: look at the folder that holds it.
                Err(_) => match at.parent() {
                    Some(parent) if parent.starts_with(root) && parent != at => at = parent.to_path_buf(),
                    _ => return Ok(()),
                },
            }
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether this is a local folder (not a remote object store).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// For a local folder store: the file that holds an object, so that callers can copy it with the
    /// operating system directly (large buffers, in-kernel copies) instead of through the async stream API.
    /// `None` for remote stores and for unsafe paths.
    pub fn local_file(&self, path: &str) -> Option<std::path::PathBuf> {
        let root = self.local_root.as_ref()?;
        let safe = safe_path(path).ok()?;
        self.contained(&safe).ok()?;
        Some(root.join(safe))
    }

    /// Writes a whole object. On a local folder the file appears atomically (written aside, then renamed).
    pub async fn put(&self, path: &str, bytes: Bytes) -> Result<()> {
        let path = self.object_path(path)?;
        self.inner.put(&path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Writes an object from a stream of chunks without holding it in memory. If the stream fails the
    /// upload is aborted and nothing is left at `path`.
    pub async fn put_stream<E>(
        &self,
        path: &str,
        mut chunks: BoxStream<'_, Result<Bytes, E>>,
    ) -> Result<u64>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let path = self.object_path(path)?;
        let upload = self.inner.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new(upload);
        let mut total = 0u64;
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => {
                    total += bytes.len() as u64;
                    writer.wait_for_capacity(8).await?;
                    writer.write(&bytes);
                }
                Err(e) => {
                    writer.abort().await?;
                    return Err(BlobError::Store(object_store::Error::Generic {
                        store: "upload",
                        source: Box::new(e),
                    }));
                }
            }
        }
        writer.finish().await?;
        Ok(total)
    }

    /// Reads an object as a stream of chunks, with its size.
    pub async fn get(&self, path: &str) -> Result<(u64, BoxStream<'static, Result<Bytes>>)> {
        let p = self.object_path(path)?;
        match self.inner.get(&p).await {
            Ok(res) => {
                let size = res.meta.size;
                Ok((size, res.into_stream().map_err(BlobError::from).boxed()))
            }
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound(path.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_bytes(&self, path: &str) -> Result<Bytes> {
        let p = self.object_path(path)?;
        match self.inner.get(&p).await {
            Ok(res) => Ok(res.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound(path.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// The direct children of a folder (files with sizes, sub-folders), sorted by path.
    pub async fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let prefix = self.dir_prefix(dir)?;
        let listing = self.inner.list_with_delimiter(prefix.as_ref()).await?;
        let mut entries: Vec<Entry> = listing
            .common_prefixes
            .into_iter()
            .map(|p| Entry {
                path: p.to_string(),
                is_dir: true,
                size: None,
            })
            .chain(listing.objects.into_iter().map(|o| Entry {
                path: o.location.to_string(),
                is_dir: false,
                size: Some(o.size),
            }))
            .filter(|e: &Entry| self.contained(&on_disk(&e.path)).is_ok())
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// The size of an object, or `None` if there is none at `path`.
    pub async fn head(&self, path: &str) -> Result<Option<u64>> {
        let p = self.object_path(path)?;
        match self.inner.head(&p).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object below `dir`, at any depth (paths relative to the store root), in one paginated listing.
    /// A local folder is walked here, without following links into folders (a link to `/` must not make a
    /// listing walk the disk); a link to a file inside the store is listed.
    pub async fn list_recursive(&self, dir: &str) -> Result<Vec<String>> {
        let prefix = self.dir_prefix(dir)?;
        if let Some(root) = &self.local_root {
            let start = root.join(on_disk(prefix.as_ref().map_or("", |p| p.as_ref())));
            let mut found = Vec::new();
            walk_files(root, &start, &mut found);
            found.sort();
            return Ok(found);
        }
        let paths: Vec<String> = self
            .inner
            .list(prefix.as_ref())
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await?;
        Ok(paths)
    }

    /// Deletes one object; a missing one is not an error.
    pub async fn delete_object(&self, path: &str) -> Result<()> {
        let p = self.object_path(path)?;
        match self.inner.delete(&p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an object, or everything below a folder.
    pub async fn delete(&self, path: &str) -> Result<()> {
        let p = self.object_path(path)?;
        if let Some(root) = &self.local_root {
            // A local folder goes whole; links in it are removed as links, never followed.
            let folder = root.join(on_disk(p.as_ref()));
            if std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
                return std::fs::remove_dir_all(&folder).map_err(|e| {
                    BlobError::Store(object_store::Error::Generic { store: "local", source: Box::new(e) })
                });
            }
        } else {
            let below: Vec<_> = self.inner.list(Some(&p)).map_ok(|m| m.location).try_collect().await?;
            if !below.is_empty() {
                // A folder: remove what is in it (a folder itself is not an object).
                for loc in below {
                    self.inner.delete(&loc).await?;
                }
                return Ok(());
            }
        }
        match self.inner.head(&p).await {
            Ok(_) => Ok(self.inner.delete(&p).await?),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound(path.to_string())),
            Err(e) => Err(e.into()),
        }
    }
}

/// The folder a local artifact location names (`file:///…` or a path), `None` for a remote store.
pub fn local_folder(uri: &str) -> Option<std::path::PathBuf> {
    // `s3://…`, `mlflow-artifacts:/…`: a scheme other than `file` names no local folder.
    if uri_scheme(uri).is_some_and(|s| !s.eq_ignore_ascii_case("file")) {
        return None;
    }
    local_path(uri).ok().map(std::path::PathBuf::from)
}

/// A store path as its file is named on disk: object_store percent-encodes some characters of a segment
/// (`[`, `#`, `%`, …) and decodes them when it touches the file, so a check of the file must decode them too.
fn on_disk(rel: &str) -> String {
    rel.split('/')
        .map(|segment| percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The files below `dir`, named relative to `root` as on disk: folders entered, links to folders not, links to
/// files inside `root` kept; object_store's unfinished uploads (`name#<n>`) left out.
fn walk_files(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let (Ok(kind), path) = (entry.file_type(), entry.path()) else { continue };
        let staged = entry.file_name().to_string_lossy().rsplit_once('#').is_some_and(|(_, n)| n.parse::<u64>().is_ok());
        let linked_file = || kind.is_symlink() && std::fs::canonicalize(&path).is_ok_and(|real| real.starts_with(root) && real.is_file());
        if kind.is_dir() {
            walk_files(root, &path, out);
        } else if (kind.is_file() || linked_file()) && !staged {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
}

/// The scheme a location starts with (`s3`, `file`, `mlflow-artifacts`), if any; a one-letter one is a Windows
/// drive, not a scheme.
pub fn uri_scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let valid = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn local_path(uri: &str) -> Result<String> {
    // `file:/abs/path` (one slash) names the same folder as `file:///abs/path`.
    if let Some(rest) = uri.strip_prefix("file:").filter(|r| r.starts_with('/') && !r.starts_with("//")) {
        return Ok(percent_encoding::percent_decode_str(rest).decode_utf8_lossy().into_owned());
    }
    if let Some(rest) = uri.strip_prefix("file://") {
        // file:///abs/path → /abs/path; file://localhost/abs too.
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        if !rest.starts_with('/') {
            return Err(BlobError::UnsupportedUri(uri.to_string()));
        }
        let decoded = percent_encoding::percent_decode_str(rest)
            .decode_utf8_lossy()
            .into_owned();
        return Ok(decoded);
    }
    if uri.contains("://") || uri.is_empty() {
        return Err(BlobError::UnsupportedUri(uri.to_string()));
    }
    let p = std::path::Path::new(uri);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    Ok(abs.to_string_lossy().into_owned())
}

fn object_path(path: &str) -> Result<Path> {
    let clean = safe_path(path)?;
    Ok(Path::from_iter(clean.split('/').filter(|s| !s.is_empty())))
}

/// Checks a client-supplied relative path and returns it normalised (`/`-separated, no `.` or empty parts).
///
/// Rejected: absolute paths (`/x`, `\x`, `C:\x`), any `..` part, NUL bytes, and the same hidden behind
/// percent-encoding (`%2e%2e`, `%252e%252e`, `%2f`), which have each been the cause of path-traversal bugs in
/// artifact servers.
pub fn safe_path(path: &str) -> Result<String> {
    let unsafe_path = |reason| {
        Err(BlobError::UnsafePath {
            path: path.to_string(),
            reason,
        })
    };
    // Decode until stable, so that an encoding nested in another cannot smuggle a `..` through.
    let mut decoded = path.to_string();
    for _ in 0..4 {
        let next = percent_encoding::percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .into_owned();
        if next == decoded {
            break;
        }
        decoded = next;
    }
    if decoded.contains('\0') {
        return unsafe_path("contains a NUL byte");
    }
    if decoded.starts_with('/') || decoded.starts_with('\\') {
        return unsafe_path("absolute paths are not allowed");
    }
    let bytes = decoded.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return unsafe_path("absolute paths are not allowed");
    }
    if decoded.split(['/', '\\']).any(|part| part == "..") {
        return unsafe_path("'..' is not allowed");
    }
    // The original (not the decoded) text is what names the object: a file may legitimately contain '%'.
    let original: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    Ok(original.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn links_inside_a_local_store_never_lead_out_of_it() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "keep out").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("shared")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("alias")).unwrap();
        // Names object_store percent-encodes in its paths (and decodes on disk) must be checked as on disk.
        std::os::unix::fs::symlink(outside.path(), root.path().join("lnk[")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("a#b")).unwrap();
        let store = BlobStore::open(root.path().to_str().unwrap()).unwrap();
        store.put("runs/model.txt", Bytes::from_static(b"ok")).await.unwrap();

        for path in ["shared/secret", "alias", "lnk[/secret", "a#b/secret"] {
            assert!(matches!(store.get_bytes(path).await, Err(BlobError::UnsafePath { .. })), "read {path}");
            assert!(matches!(store.delete(path).await, Err(BlobError::UnsafePath { .. })), "delete {path}");
            assert!(store.local_file(path).is_none(), "local file {path}");
        }
        assert!(matches!(store.put("shared/planted", Bytes::from_static(b"x")).await, Err(BlobError::UnsafePath { .. })));
        assert!(matches!(store.put("lnk[/planted", Bytes::from_static(b"x")).await, Err(BlobError::UnsafePath { .. })));
        assert!(matches!(store.list("shared").await, Err(BlobError::UnsafePath { .. })));
        let listed: Vec<String> = store.list("").await.unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(listed, ["runs"], "links out are not listed");
        assert_eq!(store.list_recursive("").await.unwrap(), ["runs/model.txt"]);
        assert_eq!(&store.get_bytes("runs/model.txt").await.unwrap()[..], b"ok", "inside still works");
        // A link loop or a link to `/` does not send a recursive listing around the disk.
        std::os::unix::fs::symlink(root.path(), root.path().join("runs/loop")).unwrap();
        assert_eq!(store.list_recursive("").await.unwrap(), ["runs/model.txt"]);
        assert_eq!(std::fs::read_to_string(outside.path().join("secret")).unwrap(), "keep out");
        assert!(!outside.path().join("planted").exists());
    }

    #[test]
    fn rejects_traversal_in_every_disguise() {
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "/etc/passwd",
            "\\windows\\system32",
            "C:\\x",
            "c:/x",
            "%2e%2e/secret",
            "a/%2E%2E/%2e%2e/b",
            "%252e%252e/secret",
            "..%2fsecret",
            "%2fetc/passwd",
            "a\\..\\..\\b",
            "a/\0/b",
        ] {
            assert!(safe_path(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn accepts_ordinary_names() {
        assert_eq!(safe_path("a/b/c.txt").unwrap(), "a/b/c.txt");
        assert_eq!(safe_path("./a//b/").unwrap(), "a/b");
        assert_eq!(safe_path("100% real.txt").unwrap(), "100% real.txt");
        assert_eq!(safe_path("..hidden/x").unwrap(), "..hidden/x");
    }

    proptest! {
        /// Whatever is accepted stays inside the root: no part of it, decoded, is `..`, and it is relative.
        #[test]
        fn accepted_paths_stay_inside(parts in proptest::collection::vec("[a-zA-Z0-9._%/\\\\-]{0,8}", 0..6)) {
            let p = parts.join("/");
            if let Ok(clean) = safe_path(&p) {
                let decoded = percent_encoding::percent_decode_str(&clean).decode_utf8_lossy().into_owned();
                prop_assert!(!decoded.starts_with('/'));
                prop_assert!(decoded.split(['/', '\\']).all(|s| s != ".."));
            }
        }
    }

    #[tokio::test]
    async fn local_round_trip_list_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&format!("file://{}", dir.path().display())).unwrap();
        store
            .put("1/run/artifacts/a.txt", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        store
            .put("1/run/artifacts/sub/b.txt", Bytes::from_static(b"bye!"))
            .await
            .unwrap();
        assert_eq!(
            &store.get_bytes("1/run/artifacts/a.txt").await.unwrap()[..],
            b"hello"
        );
        let listing = store.list("1/run/artifacts").await.unwrap();
        assert_eq!(
            listing,
            vec![
                Entry {
                    path: "1/run/artifacts/a.txt".into(),
                    is_dir: false,
                    size: Some(5)
                },
                Entry {
                    path: "1/run/artifacts/sub".into(),
                    is_dir: true,
                    size: None
                },
            ]
        );
        store.delete("1/run/artifacts/sub").await.unwrap();
        assert_eq!(store.list("1/run/artifacts").await.unwrap().len(), 1);
        assert!(matches!(
            store.get_bytes("nope").await,
            Err(BlobError::NotFound(_))
        ));
    }
}
