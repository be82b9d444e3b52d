//! MLflow model directories: the `MLmodel` YAML file (flavors, signature, metadata) and the files it names.
//!
//! The signature is MLflow's: `inputs` and `outputs` are JSON texts inside the YAML, each a list of column
//! specs (`{"type": "double", "name": "sepal_length", "required": true}`) or tensor specs.

use std::path::Path;

use indexmap::IndexMap;
use orchard_yaml::Node;

use crate::error::ModelError;

pub const FILE_NAME: &str = "MLmodel";

/// One column of a signature.
#[derive(Clone, Debug, PartialEq)]
pub struct ColSpec {
    pub name: Option<String>,
    /// MLflow's type name: `double`, `float`, `long`, `integer`, `boolean`, `string`, … or `tensor`.
    pub ty: String,
    pub required: bool,
}

impl ColSpec {
    /// Whether values of this column are numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(self.ty.as_str(), "double" | "float" | "long" | "integer" | "tensor")
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Signature {
    pub inputs: Vec<ColSpec>,
    pub outputs: Vec<ColSpec>,
}

/// A parsed `MLmodel` file.
#[derive(Clone, Debug, PartialEq)]
pub struct MlModel {
    /// Flavor name → its settings (`lightgbm: {data: model.lgb, model_class: …}`).
    pub flavors: IndexMap<String, Node>,
    pub signature: Option<Signature>,
    /// Free-form metadata (`metadata:` in the file).
    pub metadata: IndexMap<String, Node>,
    /// The whole document, so that writing back keeps what is not interpreted.
    pub doc: IndexMap<String, Node>,
}

fn bad(reason: impl Into<String>) -> ModelError {
    ModelError::Format {
        format: "MLmodel",
        reason: reason.into(),
    }
}

fn parse_cols(json: &str, which: &str) -> Result<Vec<ColSpec>, ModelError> {
    let items: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| bad(format!("signature {which}: {e}")))?;
    items
        .iter()
        .map(|item| {
            let ty = item
                .get("type")
                .and_then(|t| t.as_str())
                .ok_or_else(|| bad(format!("signature {which}: a column has no type")))?;
            Ok(ColSpec {
                name: item.get("name").and_then(|n| n.as_str()).map(str::to_string),
                ty: ty.to_string(),
                required: item.get("required").and_then(|r| r.as_bool()).unwrap_or(true),
            })
        })
        .collect()
}

impl MlModel {
    pub fn parse(text: &str) -> Result<MlModel, ModelError> {
        let doc = match orchard_yaml::parse(text).map_err(|e| bad(e.to_string()))? {
            Node::Map(m) => m,
            other => return Err(bad(format!("expected a mapping, found {}", other.kind()))),
        };
        let flavors = match doc.get("flavors") {
            Some(Node::Map(m)) => m.clone(),
            Some(_) => return Err(bad("'flavors' must be a mapping")),
            None => return Err(bad("no 'flavors'")),
        };
        let signature = match doc.get("signature") {
            Some(Node::Map(sig)) => {
                let text_of = |key: &str| match sig.get(key) {
                    Some(Node::Str(s)) => Some(s.clone()),
                    _ => None,
                };
                Some(Signature {
                    inputs: text_of("inputs").map(|s| parse_cols(&s, "inputs")).transpose()?.unwrap_or_default(),
                    outputs: text_of("outputs").map(|s| parse_cols(&s, "outputs")).transpose()?.unwrap_or_default(),
                })
            }
            _ => None,
        };
        let metadata = match doc.get("metadata") {
            Some(Node::Map(m)) => m.clone(),
            _ => IndexMap::new(),
        };
        Ok(MlModel {
            flavors,
            signature,
            metadata,
            doc,
        })
    }

    pub fn load(dir: &Path) -> Result<MlModel, ModelError> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        MlModel::parse(&text)
    }

    /// A string setting of a flavor (`flavor("lightgbm", "data")`).
    pub fn flavor_str(&self, flavor: &str, key: &str) -> Option<&str> {
        match self.flavors.get(flavor)?.as_map()?.get(key)? {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A new `MLmodel` for a LightGBM Booster saved as `data` (its file name in the directory), loadable by
    /// MLflow's `lightgbm` and `python_function` flavors.
    pub fn for_lightgbm(data: &str, signature: Option<&Signature>, metadata: IndexMap<String, Node>) -> MlModel {
        let s = |v: &str| Node::Str(v.to_string());
        let map = |pairs: Vec<(&str, Node)>| {
            Node::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        let mut flavors = IndexMap::new();
        flavors.insert(
            "lightgbm".to_string(),
            map(vec![
                ("code", Node::Null),
                ("data", s(data)),
                ("model_class", s("lightgbm.basic.Booster")),
            ]),
        );
        flavors.insert(
            "python_function".to_string(),
            map(vec![("data", s(data)), ("loader_module", s("mlflow.lightgbm"))]),
        );
        let mut doc = IndexMap::new();
        doc.insert("flavors".to_string(), Node::Map(flavors.clone()));
        if !metadata.is_empty() {
            doc.insert("metadata".to_string(), Node::Map(metadata.clone()));
        }
        if let Some(sig) = signature {
            let cols = |cols: &[ColSpec]| {
                let items: Vec<serde_json::Value> = cols
                    .iter()
                    .map(|c| {
                        let mut o = serde_json::Map::new();
                        o.insert("type".into(), c.ty.clone().into());
                        if let Some(n) = &c.name {
                            o.insert("name".into(), n.clone().into());
                        }
                        o.insert("required".into(), c.required.into());
                        serde_json::Value::Object(o)
                    })
                    .collect();
                serde_json::to_string(&items).unwrap_or_default()
            };
            let mut m = vec![("inputs", s(&cols(&sig.inputs)))];
            if !sig.outputs.is_empty() {
                m.push(("outputs", s(&cols(&sig.outputs))));
            }
            doc.insert("signature".to_string(), map(m));
        }
        MlModel {
            flavors,
            signature: signature.cloned(),
            metadata,
            doc,
        }
    }

    pub fn to_yaml(&self) -> String {
        orchard_yaml::to_yaml(&Node::Map(self.doc.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape `mlflow.lightgbm.log_model` writes (MLflow 3.17), signature included.
    const LOGGED: &str = "artifact_path: null\nflavors:\n  lightgbm:\n    code: null\n    data: model.lgb\n    \
lgb_version: 4.7.0\n    model_class: lightgbm.basic.Booster\n  python_function:\n    data: model.lgb\n    \
env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n    loader_module: mlflow.lightgbm\n\
mlflow_version: 3.17.2\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"sepal length (cm)\", \"required\": true}]'\n  \
outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float64\", \"shape\": [-1, 3]}}]'\n  params: null\n";

    #[test]
    fn reads_what_mlflow_writes() {
        let m = MlModel::parse(LOGGED).unwrap();
        assert_eq!(m.flavor_str("lightgbm", "data"), Some("model.lgb"));
        let sig = m.signature.unwrap();
        assert_eq!(sig.inputs[0].name.as_deref(), Some("sepal length (cm)"));
        assert!(sig.inputs[0].is_numeric() && sig.inputs[0].required);
        assert_eq!(sig.outputs[0].ty, "tensor");
    }

    #[test]
    fn written_files_read_back() {
        let sig = Signature {
            inputs: vec![ColSpec { name: Some("x".into()), ty: "double".into(), required: true }],
            outputs: vec![],
        };
        let mut meta = IndexMap::new();
        meta.insert("orchard_feature_spec".to_string(), Node::Str("feature_spec.json".into()));
        let m = MlModel::for_lightgbm("model.txt", Some(&sig), meta);
        let back = MlModel::parse(&m.to_yaml()).unwrap();
        assert_eq!(back.signature.as_ref(), Some(&sig));
        assert_eq!(back.flavor_str("lightgbm", "data"), Some("model.txt"));
        assert_eq!(back.metadata.get("orchard_feature_spec"), Some(&Node::Str("feature_spec.json".into())));
    }

    #[test]
    fn malformed_files_are_refused() {
        for text in ["flavors: 3\n", "a: 1\n", "- x\n", "flavors: {}\nsignature:\n  inputs: '[{\"name\": 1}]'\n"] {
            assert!(MlModel::parse(text).is_err(), "{text}");
        }
    }
}
