//! MLflow's limits on names and values, with its error wording.
//!
//! One deliberate difference: MLflow silently truncates over-long param and tag values by default; Orchard
//! rejects them with MLflow's "exceeds the maximum length" message instead, so nothing logged is ever cut.

use crate::error::{Result, TrackingError};

pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 5000;
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
pub const MAX_DATASET_NAME_SIZE: usize = 500;
pub const MAX_DATASET_DIGEST_SIZE: usize = 36;
pub const MAX_DATASET_SOURCE_SIZE: usize = 65535;
pub const MAX_DATASET_SCHEMA_SIZE: usize = 1_048_575;
pub const MAX_DATASET_PROFILE_SIZE: usize = 16_777_215;
pub const MAX_INPUT_TAG_KEY_SIZE: usize = 255;
pub const MAX_INPUT_TAG_VALUE_SIZE: usize = 500;
pub const SEARCH_MAX_RESULTS_DEFAULT: i64 = 1000;
pub const SEARCH_MAX_RESULTS_THRESHOLD: i64 = 50000;

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

pub fn exceeds(path: &str, limit: usize) -> TrackingError {
    TrackingError::TooLong { field: path.to_string(), limit }
}

pub fn check_len(path: &str, value: &str, limit: usize) -> Result<()> {
    // Python counts characters, not bytes.
    if value.len() > limit && value.chars().count() > limit {
        return Err(exceeds(path, limit));
    }
    Ok(())
}

/// Metric, param and tag keys: MLflow's character set, no path tricks, at most 250 characters.
pub fn check_key(path: &str, key: &str, length_name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':');
    if !key.chars().all(ok_char) {
        return Err(TrackingError::invalid_value(
            path,
            json_str(key),
            ": Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) \
             and slashes (/).",
        ));
    }
    let normalized = normpath(key);
    if normalized != key || key == "." || key.starts_with("..") || key.starts_with('/') {
        return Err(TrackingError::invalid_value(
            path,
            json_str(key),
            format!(
                ": Names may be treated as files in certain cases, and must not resolve to other names when treated \
                 as such. This name would resolve to '{normalized}'"
            ),
        ));
    }
    check_len(length_name, key, MAX_ENTITY_KEY_LENGTH)
}

/// Python's `posixpath.normpath`, enough of it to detect names that would resolve to other names.
fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let body = parts.join("/");
    match (absolute, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

pub fn check_metric_key(path: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(TrackingError::invalid_value(
            path,
            "null",
            ": Metric name cannot be None. A key name must be provided.",
        ));
    }
    check_key(path, key, "Metric name")
}

pub fn check_param(path: &str, key: &str, value: &str) -> Result<()> {
    if key.is_empty() {
        return Err(TrackingError::invalid_value(path, "\"\"", ": A key name must be provided."));
    }
    check_key(path, key, "Param key")?;
    check_len("Param value", value, MAX_PARAM_VAL_LENGTH)
}

pub fn check_tag(path: &str, key: &str, value: &str) -> Result<()> {
    if key.is_empty() {
        return Err(TrackingError::missing(path));
    }
    check_key(path, key, "key")?;
    check_len("value", value, MAX_TAG_VAL_LENGTH)
}

pub fn check_experiment_tag(key: &str, value: &str) -> Result<()> {
    if key.is_empty() {
        return Err(TrackingError::missing("key"));
    }
    check_key("key", key, "key")?;
    check_len("value", value, MAX_EXPERIMENT_TAG_VAL_LENGTH)
}

pub fn check_experiment_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(TrackingError::invalid(format!(
            "Invalid experiment name: '{name}'"
        )));
    }
    check_len("name", name, MAX_EXPERIMENT_NAME_LENGTH)
}

pub fn check_max_results(n: i64) -> Result<()> {
    if n < 1 {
        return Err(TrackingError::invalid_value("max_results", n.to_string(), ". It must be a positive integer"));
    }
    if n > SEARCH_MAX_RESULTS_THRESHOLD {
        return Err(TrackingError::invalid_value(
            "max_results",
            n.to_string(),
            format!(". It must be at most {SEARCH_MAX_RESULTS_THRESHOLD}"),
        ));
    }
    Ok(())
}

pub fn check_batch_limits(metrics: usize, params: usize, tags: usize) -> Result<()> {
    let msg = |limit: usize, what: &'static str, got: usize| Err(TrackingError::BatchTooLarge { what, limit, got });
    if metrics > MAX_METRICS_PER_BATCH {
        return msg(MAX_METRICS_PER_BATCH, "metrics", metrics);
    }
    if params > MAX_PARAMS_TAGS_PER_BATCH {
        return msg(MAX_PARAMS_TAGS_PER_BATCH, "params", params);
    }
    if tags > MAX_PARAMS_TAGS_PER_BATCH {
        return msg(MAX_PARAMS_TAGS_PER_BATCH, "tags", tags);
    }
    let total = metrics + params + tags;
    if total > MAX_ENTITIES_PER_BATCH {
        return msg(MAX_ENTITIES_PER_BATCH, "metrics, params, and tags", total);
    }
    Ok(())
}

pub fn check_run_id(run_id: &str) -> Result<()> {
    let mut chars = run_id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && run_id.len() <= 256
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(TrackingError::invalid_value("run_id", json_str(run_id), "."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_mlflow_rules() {
        for good in ["acc", "train/loss", "a.b-c d:e", "ü_ñ"] {
            assert!(check_metric_key("key", good).is_ok(), "{good}");
        }
        for bad in ["a//b", "./a", "../a", "/a", "a/", "a$b", "a\nb", "."] {
            assert!(check_metric_key("key", bad).is_err(), "{bad}");
        }
        let e = check_param("key", "a//b", "1").unwrap_err().to_string();
        assert!(e.contains("would resolve to 'a/b'"), "{e}");
        assert!(check_metric_key("key", &"k".repeat(251)).is_err());
    }

    #[test]
    fn values_are_rejected_not_truncated() {
        assert!(check_param("key", "p", &"v".repeat(6000)).is_ok());
        let e = check_param("key", "p", &"v".repeat(6001))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "'Param value' exceeds the maximum length of 6000 characters"
        );
        assert!(check_tag("key", "t", &"é".repeat(8000)).is_ok());
        assert!(check_tag("key", "t", &"v".repeat(8001)).is_err());
    }

    #[test]
    fn batch_limits() {
        assert!(check_batch_limits(1000, 0, 0).is_ok());
        for ((metrics, params, tags), says) in [
            ((1001, 0, 0), "at most 1000 metrics"),
            ((0, 101, 0), "at most 100 params"),
            ((0, 0, 101), "at most 100 tags"),
            ((900, 100, 100), "metrics, params, and tags"),
        ] {
            let e = check_batch_limits(metrics, params, tags).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
