//! The model registry with MLflow's semantics: registered models, numbered versions, stages, tags, aliases,
//! searches, and the resolution of model URIs (`models:/name/3`, `models:/name@alias`, `models:/name/latest`,
//! `models:/name/Production`, `models:/<logged model id>`, `runs:/<run>/path`) to the place the files are.

use orchard_store::query::{Attribute, Clause, Comparator, Field, Query, Value};
pub use orchard_store::{ModelVersion, RegisteredModel, DELETED_STAGE, PROMPT_TAG};
use orchard_store::{NewModelVersion, StoreError};

use crate::filter::{parse_filter, parse_order_by_list, Searched};
use crate::validation as v;
use crate::{join_uri, page, page_query, NotFound, Page, Result, Tag, Tracking, TrackingError};

/// The stages a version can be in, in MLflow's spelling.
pub const STAGES: &[&str] = &["None", "Staging", "Production", "Archived"];
/// The logged-model tag listing the registered versions made from it.
pub const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";
pub const MAX_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
pub const MAX_ALIAS_LENGTH: usize = 255;
/// MLflow's schema keeps model names in 256 characters; beyond some 2,700 bytes PostgreSQL could not index
/// them at all, so both engines refuse longer names the same way.
pub const MAX_REGISTERED_MODEL_NAME_LENGTH: usize = 256;
/// Registered-model search: default and maximum page size.
pub const RM_SEARCH_DEFAULT: i64 = 100;
pub const RM_SEARCH_MAX: i64 = 1000;
/// Model-version search: default and maximum page size.
pub const MV_SEARCH_DEFAULT: i64 = 200_000;
pub const MV_SEARCH_MAX: i64 = 200_000;

/// Where a model URI leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The URI of the model's directory (`mlflow-artifacts:/…`, `s3://…`, `runs:/…` resolved to the run's
    /// artifact location).
    pub artifact_uri: String,
    /// Set when the URI named a registered version.
    pub name: Option<String>,
    pub version: Option<i64>,
    pub run_id: Option<String>,
}

fn missing(field: &str) -> TrackingError {
    TrackingError::missing(field)
}

fn required(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(missing(field));
    }
    Ok(())
}

/// A version number as the API speaks it: a string holding an integer.
pub fn parse_version(version: &str) -> Result<i64> {
    version.trim().parse::<i64>().map_err(|_| {
        TrackingError::invalid(format!(
            "Parameter 'version' must be an integer, got '{version}'."
        ))
    })
}

/// `None`, `staging`, `PRODUCTION`… → the canonical spelling.
pub fn canonical_stage(stage: &str) -> Result<&'static str> {
    STAGES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(stage))
        .copied()
        .ok_or_else(|| {
            TrackingError::invalid(format!(
                "Invalid Model Version stage: {stage}. Value must be one of None, Staging, Production, Archived."
            ))
        })
}

fn check_tag(key: &str, value: &str) -> Result<()> {
    if key.is_empty() {
        return Err(missing("key"));
    }
    v::check_key("key", key, "key")?;
    v::check_len("value", value, MAX_REGISTRY_TAG_VALUE_LENGTH)
}

fn check_alias(alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(TrackingError::invalid(
            "Registered model alias name cannot be empty.",
        ));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(TrackingError::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    if alias.chars().count() > MAX_ALIAS_LENGTH {
        return Err(v::exceeds("Registered model alias name", MAX_ALIAS_LENGTH));
    }
    Ok(())
}

/// Names that `set` refuses because URIs already give them a meaning: `latest`, `v1`, `V12`, …
fn check_alias_not_reserved(alias: &str) -> Result<()> {
    if alias.eq_ignore_ascii_case("latest") {
        return Err(TrackingError::invalid(
            "'latest' alias name (case insensitive) is reserved.",
        ));
    }
    let mut chars = alias.chars();
    if matches!(chars.next(), Some('v' | 'V'))
        && alias.len() > 1
        && chars.all(|c| c.is_ascii_digit())
    {
        return Err(TrackingError::invalid(format!(
            "Version alias name '{alias}' is reserved."
        )));
    }
    Ok(())
}

fn percent_decode_fully(s: &str) -> String {
    let mut cur = s.to_string();
    for _ in 0..10 {
        let next = percent_decode(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a source is a local path (no scheme, or `file:`), which MLflow only accepts inside the artifact
/// directory of the run or logged model named with it.
fn is_local(source: &str) -> bool {
    match source.split_once(':') {
        None => true,
        Some((scheme, _)) => {
            scheme.eq_ignore_ascii_case("file")
                // A Windows drive letter, not a scheme.
                || (scheme.len() == 1 && scheme.chars().all(|c| c.is_ascii_alphabetic()))
        }
    }
}

/// The absolute, normalised path a local source names (`file:///a/b/../c` → `/a/c`, `file://localhost/a` →
/// `/a`, `rel/x` → `<server folder>/rel/x`): what MLflow compares with the artifact directory after resolving.
fn local_path(source: &str) -> String {
    let p = match source.strip_prefix("file://") {
        // `file://localhost/a`: the host part is not part of the path.
        Some(rest) if !rest.starts_with('/') => rest.find('/').map_or("", |i| &rest[i..]),
        Some(rest) => rest,
        None => source.strip_prefix("file:").unwrap_or(source),
    };
    let absolute = match p.starts_with('/') {
        true => p.to_string(),
        false => format!("{}/{p}", std::env::current_dir().unwrap_or_default().display()),
    };
    let mut parts: Vec<&str> = Vec::new();
    for segment in absolute.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A normalised absolute path with its links resolved as far as it exists (what Python's `Path.resolve()`
/// gives): a link inside the artifact directory must not make a source outside it look inside.
fn resolved(path: &str) -> String {
    let mut existing = std::path::PathBuf::from(path);
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent().map(|p| p.to_path_buf())) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return path.to_string(),
        }
    }
    let mut real = std::fs::canonicalize(&existing).unwrap_or(existing);
    real.extend(rest.iter().rev());
    real.display().to_string()
}

/// `file://host/…` names a file on another machine, which MLflow refuses with these words (as a 500; a user's
/// mistake is a 400 here).
fn check_file_host(source: &str) -> Result<()> {
    let Some(rest) = source.strip_prefix("file://") else { return Ok(()) };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host == "." || host.starts_with("localhost") || host.starts_with("127.0.0.1") {
        return Ok(());
    }
    Err(TrackingError::invalid(format!(
        "{source} is not a valid remote uri. For remote access on windows, please consider using a different scheme \
         such as SMB (e.g. smb://<hostname>/<path>)."
    )))
}

/// Refuses sources that climb out of where they point (`..` segments, also percent-encoded) or hold NUL.
fn check_remote_source(source: &str) -> Result<()> {
    let decoded = percent_decode_fully(source);
    if decoded.contains('\0') || decoded.split(['/', '\\']).any(|seg| seg == "..") {
        return Err(TrackingError::invalid(format!(
            "Invalid model version source: '{source}'. If supplying a source as an http, https, local file path, ftp, \
             objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references \
             present. Please provide an absolute path."
        )));
    }
    Ok(())
}


/// A parsed `models:/` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelUri {
    Version { name: String, version: i64 },
    /// `latest`, or a stage name.
    Stage { name: String, stage: Option<String> },
    Alias { name: String, alias: String },
    LoggedModel { model_id: String },
}

/// Parses `models:/…` as MLflow's client does (a trailing sub-path is not part of the model URI).
pub fn parse_models_uri(uri: &str) -> Result<ModelUri> {
    let bad = || {
        TrackingError::invalid(format!(
            "Not a proper models:/ URI: {uri}. Models URIs must be of the form 'models:/name/suffix' or \
             'models:/name@alias' where suffix is a version, stage, or the string 'latest' and where alias is a \
             registered model alias. Only one of suffix or alias can be defined at a time."
        ))
    };
    let path = uri.strip_prefix("models:").ok_or_else(bad)?;
    let path = path.strip_prefix('/').ok_or_else(bad)?;
    // `models:///name/1` is the same as `models:/name/1`.
    let path = path.trim_start_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    if parts.is_empty() || parts[0].trim().is_empty() || parts.len() > 2 {
        return Err(bad());
    }
    if parts.len() == 1 {
        return Ok(match parts[0].rsplit_once('@') {
            Some((name, alias)) if !name.is_empty() && !alias.is_empty() => ModelUri::Alias {
                name: name.to_string(),
                alias: alias.to_string(),
            },
            Some(_) => return Err(bad()),
            None => ModelUri::LoggedModel {
                model_id: parts[0].to_string(),
            },
        });
    }
    let (name, suffix) = (parts[0].to_string(), parts[1]);
    if suffix.is_empty() || name.contains('@') {
        return Err(bad());
    }
    if suffix.chars().all(|c| c.is_ascii_digit()) {
        let version = suffix.parse().map_err(|_| bad())?;
        return Ok(ModelUri::Version { name, version });
    }
    if suffix.eq_ignore_ascii_case("latest") {
        return Ok(ModelUri::Stage { name, stage: None });
    }
    Ok(ModelUri::Stage {
        name,
        stage: Some(suffix.to_string()),
    })
}

fn registry_error(e: StoreError) -> TrackingError {
    match e {
        StoreError::AlreadyExists(what) => {
            TrackingError::AlreadyExists { what, detail: ".".into() }
        }
        other => other.into(),
    }
}

impl Tracking {
    // ------------------------------------------------------------------------------------- registered models

    pub async fn create_registered_model(&self, name: &str, description: Option<&str>, tags: &[Tag]) -> Result<RegisteredModel> {
        required("name", name)?;
        v::check_len("name", name, MAX_REGISTERED_MODEL_NAME_LENGTH)?;
        for t in tags {
            check_tag(&t.key, &t.value)?;
        }
        self.store
            .create_registered_model(name, description, &last_of_each_key(tags))
            .await
            .map_err(registry_error)
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        required("name", name)?;
        self.store
            .get_registered_model(name)
            .await?
            .ok_or_else(|| NotFound::RegisteredModel(name.to_string()).into())
    }

    pub async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        required("name", name)?;
        required("new_name", new_name)?;
        v::check_len("new_name", new_name, MAX_REGISTERED_MODEL_NAME_LENGTH)?;
        self.store
            .rename_registered_model(name, new_name)
            .await
            .map_err(registry_error)?;
        self.get_registered_model(new_name).await
    }

    pub async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        required("name", name)?;
        self.store.update_registered_model(name, description).await?;
        self.get_registered_model(name).await
    }

    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        required("name", name)?;
        Ok(self.store.delete_registered_model(name).await?)
    }

    pub async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        required("name", name)?;
        check_tag(key, value)?;
        Ok(self
            .store
            .set_registered_model_tag(name, &Tag::new(key, value))
            .await?)
    }

    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        required("name", name)?;
        required("key", key)?;
        Ok(self.store.delete_registered_model_tag(name, key).await?)
    }

    pub async fn search_registered_models(
        &self, filter: &str, max_results: Option<i64>, order_by: &[String], page_token: &str,
    ) -> Result<Page<RegisteredModel>> {
        let limit = page_size(max_results, RM_SEARCH_DEFAULT, RM_SEARCH_MAX, "request parameter max_results")?;
        let (query, hide_prompts) = registry_query(Searched::RegisteredModels, filter, order_by, None, page_token, limit)?;
        let items = self.store.search_registered_models(&query, hide_prompts).await?;
        Ok(page(items, query.offset, limit))
    }

    /// For each asked stage (every stage when none), the live version with the highest number.
    pub async fn get_latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>> {
        required("name", name)?;
        let stages = stages
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| canonical_stage(s).map(str::to_string))
            .collect::<Result<Vec<_>>>()?;
        self.get_registered_model(name).await?;
        Ok(self.store.latest_model_versions(name, &stages).await?)
    }

    // ---------------------------------------------------------------------------------------- model versions

    #[allow(clippy::too_many_arguments)]
    pub async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
        tags: &[Tag],
        run_link: Option<&str>,
        description: Option<&str>,
        model_id: Option<&str>,
    ) -> Result<ModelVersion> {
        required("name", name)?;
        required("source", source)?;
        for t in tags {
            check_tag(&t.key, &t.value)?;
        }
        if tags.iter().any(|t| t.key == PROMPT_TAG) {
            return Err(TrackingError::invalid("Prompts cannot be registered as models."));
        }
        let run_id = run_id.filter(|r| !r.is_empty());
        let model_id = model_id.filter(|m| !m.is_empty());
        let mut run_id = run_id.map(str::to_string);

        // Where the files are: the source itself, unless it is another model URI, which is resolved now so
        // that the version keeps pointing at the same files whatever happens to aliases later.
        let storage_location = if source.starts_with("models:") {
            // MLflow answers 500 here whatever went wrong; the cause's own code (404, 400) is kept instead,
            // since an unknown model is the caller's mistake, not the server's.
            let resolved = self
                .resolve_model_uri(source)
                .await
                .map_err(|cause| TrackingError::Unresolvable { source_uri: source.to_string(), cause: Box::new(cause) })?;
            if run_id.is_none() {
                run_id = resolved.run_id.clone();
            }
            resolved.artifact_uri
        } else if is_local(source) {
            self.check_local_source(source, run_id.as_deref(), model_id).await?;
            source.to_string()
        } else {
            check_remote_source(source)?;
            source.to_string()
        };
        if run_id.is_none() {
            if let Some(id) = model_id {
                run_id = self.get_logged_model(id).await?.source_run_id;
            }
        }
        let new = NewModelVersion {
            name: name.to_string(),
            source: source.to_string(),
            storage_location,
            run_id,
            run_link: run_link.map(str::to_string),
            description: description.map(str::to_string),
            model_id: model_id.map(str::to_string),
            tags: last_of_each_key(tags),
        };
        let version = self.store.create_model_version(&new).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => {
                TrackingError::internal(format!("Model Version creation error (name={name}). Giving up after 3 attempts."))
            }
            other => other.into(),
        })?;
        if let Some(id) = model_id {
            self.record_version_on_logged_model(id, name, version.version)
                .await?;
        }
        Ok(version)
    }

    /// MLflow keeps, on a logged model, the list of registered versions made from it.
    async fn record_version_on_logged_model(&self, model_id: &str, name: &str, version: i64) -> Result<()> {
        let model = self.get_logged_model(model_id).await?;
        let mut list: Vec<serde_json::Value> = model
            .tags
            .iter()
            .find(|t| t.key == MODEL_VERSIONS_TAG)
            .and_then(|t| serde_json::from_str(&t.value).ok())
            .unwrap_or_default();
        let entry = serde_json::json!({"name": name, "version": version});
        if !list.contains(&entry) {
            list.push(entry);
        }
        // The text MLflow stores: `json.dumps` of the list.
        let value = orchard_yaml::python::json_dumps(&serde_json::Value::Array(list), false);
        self.set_logged_model_tags(model_id, &[Tag::new(MODEL_VERSIONS_TAG, value)])
            .await
    }

    /// A local path is accepted only inside the artifact directory of the run (or logged model) named with it.
    async fn check_local_source(&self, source: &str, run_id: Option<&str>, model_id: Option<&str>) -> Result<()> {
        let (what, root) = match (model_id, run_id) {
            (Some(id), _) => ("model_id", Some(self.get_logged_model(id).await?.artifact_uri)),
            (None, Some(id)) => ("run_id", Some(self.get_run(id).await?.info.artifact_uri)),
            (None, None) => ("run_id", None),
        };
        check_file_host(source)?;
        // Compared as MLflow compares them: both resolved (`…/model/..` is the artifact directory itself).
        let path = resolved(&local_path(&percent_decode_fully(source)));
        let inside = root.is_some_and(|root| {
            let local_root = resolved(&local_path(&root));
            is_local(&root) && (path == local_root || path.starts_with(&format!("{local_root}/")))
        });
        if !inside {
            return Err(TrackingError::invalid(format!(
                "Invalid model version source: '{path}'. To use a local path as a model version source, the {what} \
                 request parameter has to be specified and the local path has to be contained within the artifact \
                 directory of the run specified by the {what}."
            )));
        }
        Ok(())
    }

    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        required("name", name)?;
        let n = parse_version(version)?;
        self.store
            .get_model_version(name, n)
            .await?
            .ok_or_else(|| version_not_found(name, n))
    }

    pub async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: Option<&str>,
    ) -> Result<ModelVersion> {
        required("name", name)?;
        let n = parse_version(version)?;
        self.store.update_model_version(name, n, description).await?;
        self.get_model_version(name, version).await
    }

    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion> {
        required("name", name)?;
        let n = parse_version(version)?;
        required("stage", stage)?;
        let stage = canonical_stage(stage)?;
        if archive_existing_versions && !matches!(stage, "Staging" | "Production") {
            // A 400, where MLflow answers 500: the request is wrong, the server is fine.
            return Err(TrackingError::invalid(
                format!(
                    "Model version transition cannot archive existing model versions because '{stage}' is not an \
                     Active stage. Valid stages are ['Staging', 'Production']"
                ),
            ));
        }
        self.store
            .transition_model_version_stage(name, n, stage, archive_existing_versions)
            .await?;
        self.get_model_version(name, version).await
    }

    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        required("name", name)?;
        let n = parse_version(version)?;
        Ok(self.store.delete_model_version(name, n).await?)
    }

    pub async fn set_model_version_tag(&self, name: &str, version: &str, key: &str, value: &str) -> Result<()> {
        required("name", name)?;
        let n = parse_version(version)?;
        check_tag(key, value)?;
        Ok(self
            .store
            .set_model_version_tag(name, n, &Tag::new(key, value))
            .await?)
    }

    pub async fn delete_model_version_tag(&self, name: &str, version: &str, key: &str) -> Result<()> {
        required("name", name)?;
        let n = parse_version(version)?;
        required("key", key)?;
        Ok(self.store.delete_model_version_tag(name, n, key).await?)
    }

    pub async fn get_model_version_download_uri(&self, name: &str, version: &str) -> Result<String> {
        Ok(self.get_model_version(name, version).await?.storage_location)
    }

    pub async fn search_model_versions(
        &self, filter: &str, max_results: Option<i64>, order_by: &[String], page_token: &str,
    ) -> Result<Page<ModelVersion>> {
        let limit = page_size(max_results, MV_SEARCH_DEFAULT, MV_SEARCH_MAX, "max_results")?;
        let latest_first = Some(Attribute::LastUpdateTime);
        let (query, hide_prompts) = registry_query(Searched::ModelVersions, filter, order_by, latest_first, page_token, limit)?;
        let items = self.store.search_model_versions(&query, hide_prompts).await?;
        Ok(page(items, query.offset, limit))
    }

    // ----------------------------------------------------------------------------------------------- aliases

    pub async fn set_registered_model_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        required("name", name)?;
        check_alias(alias)?;
        check_alias_not_reserved(alias)?;
        let n = parse_version(version)?;
        Ok(self.store.set_registered_model_alias(name, alias, n).await?)
    }

    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        required("name", name)?;
        check_alias(alias)?;
        Ok(self.store.delete_registered_model_alias(name, alias).await?)
    }

    pub async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        required("name", name)?;
        check_alias(alias)?;
        if alias.eq_ignore_ascii_case("latest") {
            let latest = self.store.latest_model_versions(name, &[]).await.map_err(|e| match e {
                StoreError::NotFound(_) => {
                    TrackingError::not_found(format!("Latest version not found for model {name}."))
                }
                other => other.into(),
            })?;
            return latest.into_iter().next().ok_or_else(|| {
                TrackingError::not_found(format!("Latest version not found for model {name}."))
            });
        }
        let version = self
            .store
            .get_registered_model_alias(name, alias)
            .await?
            .ok_or_else(|| TrackingError::invalid(format!("Registered model alias {alias} not found.")))?;
        self.store
            .get_model_version(name, version)
            .await?
            .ok_or_else(|| version_not_found(name, version))
    }

    // ------------------------------------------------------------------------------------------- model URIs

    /// Resolves a model URI to the directory holding the model's files, as MLflow's client does.
    pub async fn resolve_model_uri(&self, uri: &str) -> Result<ResolvedModel> {
        if let Some(rest) = uri.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            if run_id.is_empty() {
                return Err(TrackingError::invalid(format!(
                    "Not a proper runs:/ URI: {uri}. Runs URIs must be of the form \
                     'runs:/<run_id>/run-relative/path/to/artifact'"
                )));
            }
            let run = self.get_run(run_id).await?;
            let path = path.trim_matches('/');
            // MLflow 3: a logged model of this run whose name is the path's first part holds the files.
            let first = path.split('/').next().unwrap_or("");
            if !first.is_empty() {
                let models = self
                    .search_logged_models(
                        std::slice::from_ref(&run.info.experiment_id),
                        &[],
                        &format!("name = '{}'", first.replace('\'', "")),
                        &[],
                        Some(100),
                        "",
                    )
                    .await?;
                if let Some(m) = models
                    .items
                    .into_iter()
                    .find(|m| m.source_run_id.as_deref() == Some(run_id))
                {
                    let rest = path[first.len()..].trim_matches('/');
                    let artifact_uri = if rest.is_empty() {
                        m.artifact_uri
                    } else {
                        join_uri(&m.artifact_uri, rest)
                    };
                    return Ok(ResolvedModel {
                        artifact_uri,
                        name: None,
                        version: None,
                        run_id: Some(run_id.to_string()),
                    });
                }
            }
            let artifact_uri = if path.is_empty() {
                run.info.artifact_uri.clone()
            } else {
                join_uri(&run.info.artifact_uri, path)
            };
            return Ok(ResolvedModel {
                artifact_uri,
                name: None,
                version: None,
                run_id: Some(run_id.to_string()),
            });
        }
        if !uri.starts_with("models:") {
            // Any other URI already names the files.
            return Ok(ResolvedModel {
                artifact_uri: uri.to_string(),
                name: None,
                version: None,
                run_id: None,
            });
        }
        let version = match parse_models_uri(uri)? {
            ModelUri::LoggedModel { model_id } => {
                let m = self.get_logged_model(&model_id).await?;
                return Ok(ResolvedModel {
                    artifact_uri: m.artifact_uri,
                    name: None,
                    version: None,
                    run_id: m.source_run_id,
                });
            }
            ModelUri::Version { name, version } => self.get_model_version(&name, &version.to_string()).await?,
            ModelUri::Alias { name, alias } => self.get_model_version_by_alias(&name, &alias).await?,
            ModelUri::Stage { name, stage } => {
                let stages: Vec<String> = stage.iter().cloned().collect();
                let latest = self.get_latest_versions(&name, &stages).await?;
                latest.into_iter().max_by_key(|v| v.version).ok_or_else(|| {
                    let stage_part = stage.map(|s| format!(" and stage '{s}'")).unwrap_or_default();
                    TrackingError::not_found(format!("No versions of model with name '{name}'{stage_part} found"))
                })?
            }
        };
        let artifact_uri = if version.storage_location.starts_with("runs:/") {
            // A version registered from a runs:/ URI: follow it to the run's files.
            Box::pin(self.resolve_model_uri(&version.storage_location))
                .await?
                .artifact_uri
        } else {
            version.storage_location.clone()
        };
        Ok(ResolvedModel {
            artifact_uri,
            name: Some(version.name),
            version: Some(version.version),
            run_id: version.run_id,
        })
    }
}

/// Repeated tag keys in one request: the last one wins (MLflow's rule).
fn last_of_each_key(tags: &[Tag]) -> Vec<Tag> {
    let mut unique: Vec<Tag> = Vec::new();
    for t in tags {
        unique.retain(|u| u.key != t.key);
        unique.push(t.clone());
    }
    unique
}

/// A search's page size: the default when absent, refused outside 1..=max with MLflow's wording.
fn page_size(max_results: Option<i64>, default: i64, max: i64, what: &str) -> Result<i64> {
    let limit = max_results.unwrap_or(default);
    if limit < 1 {
        return Err(TrackingError::invalid(format!(
            "Invalid value for {what}. It must be a positive integer, but got {limit}"
        )));
    }
    if limit > max {
        return Err(TrackingError::invalid(format!(
            "Invalid value for {what}. It must be at most {max}, but got value {limit}"
        )));
    }
    Ok(limit)
}

fn version_not_found(name: &str, version: i64) -> TrackingError {
    NotFound::ModelVersion { name: name.to_string(), version: version.to_string() }.into()
}

/// Prompts are hidden from searches unless the filter asks about the prompt tag. The client itself adds
/// ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every model search, meaning "not a prompt" — which includes
/// models without the tag, so that clause becomes the hiding rule instead of a tag comparison (which would need
/// the tag to exist). Returns the clauses left and whether to hide prompts.
/// The store query of a registry search (filter, then order, then page token: the order MLflow checks them
/// in), and whether prompts are to be left out.
fn registry_query(
    searched: Searched,
    filter: &str,
    order_by: &[String],
    newest_first_by: Option<Attribute>,
    page_token: &str,
    limit: i64,
) -> Result<(Query, bool)> {
    let (clauses, hide_prompts) = prompt_filter(parse_filter(filter, searched)?);
    let order_by = parse_order_by_list(order_by, searched)?;
    Ok((page_query(clauses, order_by, newest_first_by, page_token, limit)?, hide_prompts))
}

fn prompt_filter(clauses: Vec<Clause>) -> (Vec<Clause>, bool) {
    let not_prompt = |c: &Clause| {
        matches!(&c.field, Field::Tag(k) if k == PROMPT_TAG)
            && c.comparator == Comparator::Ne
            && matches!(&c.value, Value::Str(v) if v.eq_ignore_ascii_case("true"))
    };
    let rest: Vec<Clause> = clauses.into_iter().filter(|c| !not_prompt(c)).collect();
    let asks_about_prompts = rest
        .iter()
        .any(|c| matches!(&c.field, Field::Tag(k) if k == PROMPT_TAG));
    (rest, !asks_about_prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_uris_parse_as_mlflow_parses_them() {
        assert_eq!(
            parse_models_uri("models:/iris/3").unwrap(),
            ModelUri::Version { name: "iris".into(), version: 3 }
        );
        assert_eq!(
            parse_models_uri("models:/iris@champion").unwrap(),
            ModelUri::Alias { name: "iris".into(), alias: "champion".into() }
        );
        assert_eq!(
            parse_models_uri("models:/iris/latest").unwrap(),
            ModelUri::Stage { name: "iris".into(), stage: None }
        );
        assert_eq!(
            parse_models_uri("models:/iris/Production").unwrap(),
            ModelUri::Stage { name: "iris".into(), stage: Some("Production".into()) }
        );
        assert_eq!(
            parse_models_uri("models:/m-0123abcd").unwrap(),
            ModelUri::LoggedModel { model_id: "m-0123abcd".into() }
        );
        for bad in ["models:iris/1", "models:/", "models:/a/b/c", "models:/@x", "models:/a@", "runs:/x", "models:/a@b/1"] {
            assert!(parse_models_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aliases_and_stages_follow_mlflow_rules() {
        for (alias, accepted) in [("champion", true), ("", false), ("a b", false)] {
            assert_eq!(check_alias(alias).is_ok(), accepted, "{alias:?}");
        }
        // `latest` and `v<number>` name versions already.
        for (alias, accepted) in [("Latest", false), ("v12", false), ("v", true), ("version2", true)] {
            assert_eq!(check_alias_not_reserved(alias).is_ok(), accepted, "{alias:?}");
        }
        assert_eq!(canonical_stage("production").unwrap(), "Production");
        assert!(canonical_stage("prod").is_err());
        assert!(parse_version("x").is_err());
    }

    #[test]
    fn sources_that_climb_out_are_refused() {
        assert!(check_remote_source("s3://b/models/m").is_ok());
        assert!(check_remote_source("s3://b/../etc").is_err());
        assert!(check_remote_source("s3://b/%2e%2e/etc").is_err());
        assert!(check_remote_source("s3://b/%252e%252e/etc").is_err());
        assert!(is_local("/tmp/model"));
        assert!(is_local("file:///tmp/model"));
        assert!(is_local("C:/models"));
        assert!(!is_local("mlflow-artifacts:/1/abc"));
    }
}
