//! MLflow's JSON shapes for the tracking entities (protobuf JSON as MLflow emits it): int64 as numbers,
//! non-finite doubles as the strings "NaN"/"Infinity"/"-Infinity", empty lists left out.
//!
//! Each shape is a borrowing wrapper that serializes straight into the response body: a page of 1,000 runs is
//! written without building an intermediate JSON tree.

pub mod registry;

use orchard_tracking::artifacts::FileInfo;
use orchard_tracking::{
    DatasetInput, Experiment, LoggedModel, Metric, ModelOutput, Run, RunInfo, Tag,
};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

/// A double as protobuf JSON writes it.
pub struct Double(pub f64);

impl Serialize for Double {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v == f64::INFINITY {
            s.serialize_str("Infinity")
        } else if v == f64::NEG_INFINITY {
            s.serialize_str("-Infinity")
        } else {
            s.serialize_f64(v)
        }
    }
}

/// A list of wrapped items.
pub struct List<'a, T, W>(pub &'a [T], pub fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for List<'a, T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&(self.1)(item))?;
        }
        seq.end()
    }
}

/// `{key, value}` pairs (params, tags).
pub struct Pairs<'a>(pub &'a [Tag]);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for t in self.0 {
            seq.serialize_element(&KeyValue(t))?;
        }
        seq.end()
    }
}

struct KeyValue<'a>(&'a Tag);

impl Serialize for KeyValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("key", &self.0.key)?;
        m.serialize_entry("value", &self.0.value)?;
        m.end()
    }
}

/// Writes `key: list` only when the list is not empty (protobuf JSON omits empty repeated fields).
fn entry_if_any<M: SerializeMap, T: Serialize>(
    m: &mut M,
    key: &str,
    len: usize,
    value: &T,
) -> Result<(), M::Error> {
    if len > 0 {
        m.serialize_entry(key, value)?;
    }
    Ok(())
}

pub struct ExperimentOut<'a>(pub &'a Experiment);

impl Serialize for ExperimentOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("experiment_id", &e.experiment_id)?;
        m.serialize_entry("name", &e.name)?;
        m.serialize_entry("artifact_location", &e.artifact_location)?;
        m.serialize_entry("lifecycle_stage", &e.lifecycle_stage)?;
        m.serialize_entry("last_update_time", &e.last_update_time)?;
        m.serialize_entry("creation_time", &e.creation_time)?;
        entry_if_any(&mut m, "tags", e.tags.len(), &Pairs(&e.tags))?;
        m.end()
    }
}

pub struct MetricOut<'a>(pub &'a Metric);

impl Serialize for MetricOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("key", &x.key)?;
        m.serialize_entry("value", &Double(x.value))?;
        m.serialize_entry("timestamp", &x.timestamp)?;
        m.serialize_entry("step", &x.step)?;
        for (k, v) in [
            ("run_id", &x.run_id),
            ("model_id", &x.model_id),
            ("dataset_name", &x.dataset_name),
            ("dataset_digest", &x.dataset_digest),
        ] {
            if let Some(v) = v {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

pub struct RunInfoOut<'a>(pub &'a RunInfo);

impl Serialize for RunInfoOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("run_uuid", &i.run_id)?;
        m.serialize_entry("run_id", &i.run_id)?;
        m.serialize_entry("run_name", &i.run_name)?;
        m.serialize_entry("experiment_id", &i.experiment_id)?;
        m.serialize_entry("user_id", &i.user_id)?;
        m.serialize_entry("status", &i.status)?;
        m.serialize_entry("start_time", &i.start_time.unwrap_or(0))?;
        if let Some(end) = i.end_time.filter(|t| *t != 0) {
            m.serialize_entry("end_time", &end)?;
        }
        m.serialize_entry("artifact_uri", &i.artifact_uri)?;
        m.serialize_entry("lifecycle_stage", &i.lifecycle_stage)?;
        m.end()
    }
}

struct DatasetInputOut<'a>(&'a DatasetInput);

impl Serialize for DatasetInputOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Ds<'a>(&'a orchard_tracking::Dataset);
        impl Serialize for Ds<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let d = self.0;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("name", &d.name)?;
                m.serialize_entry("digest", &d.digest)?;
                m.serialize_entry("source_type", &d.source_type)?;
                m.serialize_entry("source", &d.source)?;
                if let Some(x) = &d.schema {
                    m.serialize_entry("schema", x)?;
                }
                if let Some(x) = &d.profile {
                    m.serialize_entry("profile", x)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        entry_if_any(&mut m, "tags", self.0.tags.len(), &Pairs(&self.0.tags))?;
        m.serialize_entry("dataset", &Ds(&self.0.dataset))?;
        m.end()
    }
}

struct ModelId<'a>(&'a String);

impl Serialize for ModelId<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("model_id", self.0)?;
        m.end()
    }
}

struct ModelOutputOut<'a>(&'a ModelOutput);

impl Serialize for ModelOutputOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("model_id", &self.0.model_id)?;
        m.serialize_entry("step", &self.0.step)?;
        m.end()
    }
}

pub struct RunOut<'a>(pub &'a Run);

impl Serialize for RunOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Data<'a>(&'a Run);
        impl Serialize for Data<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let r = self.0;
                let mut m = s.serialize_map(None)?;
                entry_if_any(
                    &mut m,
                    "metrics",
                    r.metrics.len(),
                    &List(&r.metrics, MetricOut),
                )?;
                entry_if_any(&mut m, "params", r.params.len(), &Pairs(&r.params))?;
                entry_if_any(&mut m, "tags", r.tags.len(), &Pairs(&r.tags))?;
                m.end()
            }
        }
        struct Inputs<'a>(&'a Run);
        impl Serialize for Inputs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let r = self.0;
                let mut m = s.serialize_map(None)?;
                entry_if_any(
                    &mut m,
                    "dataset_inputs",
                    r.dataset_inputs.len(),
                    &List(&r.dataset_inputs, DatasetInputOut),
                )?;
                entry_if_any(
                    &mut m,
                    "model_inputs",
                    r.model_inputs.len(),
                    &List(&r.model_inputs, ModelId),
                )?;
                m.end()
            }
        }
        struct Outputs<'a>(&'a Run);
        impl Serialize for Outputs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let r = self.0;
                let mut m = s.serialize_map(None)?;
                entry_if_any(
                    &mut m,
                    "model_outputs",
                    r.model_outputs.len(),
                    &List(&r.model_outputs, ModelOutputOut),
                )?;
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("info", &RunInfoOut(&self.0.info))?;
        m.serialize_entry("data", &Data(self.0))?;
        m.serialize_entry("inputs", &Inputs(self.0))?;
        m.serialize_entry("outputs", &Outputs(self.0))?;
        m.end()
    }
}

pub struct LoggedModelOut<'a>(pub &'a LoggedModel);

impl Serialize for LoggedModelOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Info<'a>(&'a LoggedModel);
        impl Serialize for Info<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let x = self.0;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("model_id", &x.model_id)?;
                m.serialize_entry("experiment_id", &x.experiment_id)?;
                m.serialize_entry("name", &x.name)?;
                m.serialize_entry("artifact_uri", &x.artifact_uri)?;
                m.serialize_entry("creation_timestamp_ms", &x.creation_timestamp_ms)?;
                m.serialize_entry("last_updated_timestamp_ms", &x.last_updated_timestamp_ms)?;
                if let Some(t) = &x.model_type {
                    m.serialize_entry("model_type", t)?;
                }
                if let Some(r) = &x.source_run_id {
                    m.serialize_entry("source_run_id", r)?;
                }
                m.serialize_entry("status", &x.status)?;
                if let Some(msg) = &x.status_message {
                    m.serialize_entry("status_message", msg)?;
                }
                entry_if_any(&mut m, "tags", x.tags.len(), &Pairs(&x.tags))?;
                m.end()
            }
        }
        struct Data<'a>(&'a LoggedModel);
        impl Serialize for Data<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let x = self.0;
                let mut m = s.serialize_map(None)?;
                entry_if_any(&mut m, "params", x.params.len(), &Pairs(&x.params))?;
                entry_if_any(
                    &mut m,
                    "metrics",
                    x.metrics.len(),
                    &List(&x.metrics, MetricOut),
                )?;
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("info", &Info(self.0))?;
        m.serialize_entry("data", &Data(self.0))?;
        m.end()
    }
}

pub struct FileInfoOut<'a>(pub &'a FileInfo);

impl Serialize for FileInfoOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("path", &f.path)?;
        m.serialize_entry("is_dir", &f.is_dir)?;
        if let Some(size) = f.file_size {
            m.serialize_entry("file_size", &size)?;
        }
        m.end()
    }
}

/// A page of results: `{"<key>": [...], "next_page_token": "..."}`, each part left out when empty.
pub struct PageOut<'a, T, W> {
    pub key: &'static str,
    pub items: List<'a, T, W>,
    pub next_page_token: Option<String>,
}

impl<T, W: Serialize> Serialize for PageOut<'_, T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        entry_if_any(&mut m, self.key, self.items.0.len(), &self.items)?;
        if let Some(t) = &self.next_page_token {
            m.serialize_entry("next_page_token", t)?;
        }
        m.end()
    }
}
