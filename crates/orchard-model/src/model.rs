//! A loaded model: the predictor, the feature spec and the signature, turning named input values into
//! predictions with every field checked first.

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::features::{self, Compiled, FeatureSpec};
use crate::lightgbm::LightGbm;
use crate::mlmodel::{self, MlModel, Signature};
use crate::onnx::OnnxModel;
use crate::error::ModelError;
use crate::predictor::OutputKind;
use crate::predictor::Predictor;

/// One input value as a request carries it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Num(_) => "number",
            Value::Str(_) => "string",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
        }
    }
}

/// What one input field takes, from the model (string-coded categories) and its signature's column type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InputKind {
    /// `double` / `float` (or no signature): any finite number.
    Number,
    /// `long` / `integer`: a whole number.
    Integer,
    /// `boolean`: true or false, given to the model as 1 / 0.
    Boolean,
    /// A categorical feature trained from pandas categories: its category's name.
    Category,
}

impl InputKind {
    fn wanted(self) -> &'static str {
        match self {
            InputKind::Number => "a number",
            InputKind::Integer => "an integer",
            InputKind::Boolean => "a boolean",
            InputKind::Category => "a string category",
        }
    }
}

/// The prediction for one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// For classifiers: the most probable class (its label when the spec names classes).
    pub class: Option<String>,
    /// For classifiers the probability of each class, by label; for regressions the value(s).
    pub values: Vec<f64>,
}

/// A model ready to serve. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Model {
    predictor: Arc<dyn Predictor>,
    features: Option<Arc<Compiled>>,
    signature: Option<Signature>,
    /// The fields a request must carry, in order.
    inputs: Vec<String>,
    /// For each input: what a request must give for it.
    kinds: Vec<InputKind>,
    classes: Vec<String>,
    label: String,
    flavor: String,
}

impl Model {
    /// Loads a model directory (an `MLmodel` file and what it names, or a bare LightGBM `model.txt`), or a
    /// LightGBM text file itself.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        if !path.exists() {
            return Err(ModelError::Io {
                path: path.display().to_string(),
                reason: "no such file or folder".into(),
            });
        }
        if path.is_file() {
            if path.extension().is_some_and(|e| e == "onnx") {
                return Model::assemble(Arc::new(OnnxModel::load(path)?), None, None, "onnx");
            }
            let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
            return Model::assemble(Arc::new(LightGbm::parse(&text)?), None, None, "lightgbm");
        }
        let spec_path = path.join(features::FILE_NAME);
        let spec = if spec_path.is_file() {
            let text = std::fs::read_to_string(&spec_path).map_err(|e| ModelError::io(&spec_path, e))?;
            Some(FeatureSpec::from_json(&text)?)
        } else {
            None
        };
        if !path.join(mlmodel::FILE_NAME).is_file() {
            let onnx = path.join("model.onnx");
            if onnx.is_file() {
                return Model::assemble(Arc::new(OnnxModel::load(&onnx)?), spec, None, "onnx");
            }
            let txt = path.join("model.txt");
            if txt.is_file() {
                let text = std::fs::read_to_string(&txt).map_err(|e| ModelError::io(&txt, e))?;
                return Model::assemble(Arc::new(LightGbm::parse(&text)?), spec, None, "lightgbm");
            }
            return Err(ModelError::Io {
                path: path.display().to_string(),
                reason: "no MLmodel file (nor model.txt or model.onnx) in this directory".into(),
            });
        }
        let ml = MlModel::load(path)?;
        if ml.flavors.contains_key("lightgbm") {
            let class = ml.flavor_str("lightgbm", "model_class").unwrap_or("lightgbm.basic.Booster");
            if class != "lightgbm.basic.Booster" {
                return Err(ModelError::Unsupported(format!(
                    "a {class} saved with {}: Orchard reads LightGBM Boosters (log `model.booster_` instead)",
                    ml.flavor_str("lightgbm", "serialization_format").unwrap_or("pickle"),
                )));
            }
            let data = ml
                .flavor_str("lightgbm", "data")
                .or_else(|| ml.flavor_str("python_function", "data"))
                .unwrap_or("model.lgb");
            let file = path.join(data);
            let text = std::fs::read_to_string(&file).map_err(|e| ModelError::io(&file, e))?;
            return Model::assemble(Arc::new(LightGbm::parse(&text)?), spec, ml.signature, "lightgbm");
        }
        if ml.flavors.contains_key("onnx") {
            let data = ml.flavor_str("onnx", "data").unwrap_or("model.onnx");
            let file = path.join(data);
            return Model::assemble(Arc::new(OnnxModel::load(&file)?), spec, ml.signature, "onnx");
        }
        let flavors: Vec<&str> = ml.flavors.keys().map(String::as_str).collect();
        Err(ModelError::Unsupported(format!(
            "no flavor Orchard can serve natively (flavors: {}); supported: lightgbm, onnx",
            flavors.join(", ")
        )))
    }

    fn assemble(
        predictor: Arc<dyn Predictor>,
        spec: Option<FeatureSpec>,
        signature: Option<Signature>,
        flavor: &str,
    ) -> Result<Model, ModelError> {
        let features = spec.as_ref().map(FeatureSpec::compile).transpose()?;
        let model_columns = predictor.feature_names().to_vec();
        let inputs: Vec<String> = match (&spec, &signature) {
            (Some(s), _) => {
                if s.columns.len() != model_columns.len() {
                    return Err(ModelError::Format {
                        format: "feature spec",
                        reason: format!(
                            "{} columns for a model of {} features",
                            s.columns.len(),
                            model_columns.len()
                        ),
                    });
                }
                s.inputs.clone()
            }
            (None, Some(sig)) if sig.inputs.len() == model_columns.len() && sig.inputs.iter().all(|c| c.name.is_some()) => {
                sig.inputs.iter().filter_map(|c| c.name.clone()).collect()
            }
            _ => model_columns.clone(),
        };
        // Without a spec, inputs are the model's own columns, so string-coded categories map straight through.
        let column_types: IndexMap<&str, &str> = signature
            .iter()
            .flat_map(|sig| sig.inputs.iter())
            .filter_map(|c| Some((c.name.as_deref()?, c.ty.as_str())))
            .collect();
        let kinds = inputs
            .iter()
            .enumerate()
            .map(|(i, name)| {
                if features.is_none() && predictor.category_code(i, "").is_some() {
                    return InputKind::Category;
                }
                match column_types.get(name.as_str()).copied() {
                    Some("long" | "integer") => InputKind::Integer,
                    Some("boolean") => InputKind::Boolean,
                    _ => InputKind::Number,
                }
            })
            .collect();
        let classes = spec
            .as_ref()
            .map(|s| s.classes.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| predictor.class_labels())
            .unwrap_or_default();
        let label = spec
            .as_ref()
            .map(|s| s.label.clone())
            .unwrap_or_else(|| "prediction".into());
        Ok(Model {
            predictor,
            features: features.map(Arc::new),
            signature,
            inputs,
            kinds,
            classes,
            label,
            flavor: flavor.to_string(),
        })
    }

    /// The input fields, in order.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    pub fn signature(&self) -> Option<&Signature> {
        self.signature.as_ref()
    }

    pub fn flavor(&self) -> &str {
        &self.flavor
    }

    /// The answer field's name for `/predict` (`prediction` unless the feature spec says otherwise).
    pub fn label_field(&self) -> &str {
        &self.label
    }

    pub fn output_kind(&self) -> OutputKind {
        self.predictor.output_kind()
    }

    /// Class labels by index (from the feature spec; class numbers when it names none).
    pub fn class_labels(&self) -> Vec<String> {
        match self.predictor.output_kind() {
            OutputKind::Classes(n) => (0..n)
                .map(|i| self.classes.get(i).cloned().unwrap_or_else(|| i.to_string()))
                .collect(),
            OutputKind::Values(_) => Vec::new(),
        }
    }

    /// Checks and converts one row given by field name. A missing, unknown or mistyped field is an error
    /// naming it.
    pub fn row_from_fields(&self, fields: &IndexMap<String, Value>, out: &mut Vec<f64>) -> Result<(), ModelError> {
        for name in fields.keys() {
            if !self.inputs.contains(name) {
                return Err(ModelError::Input(format!(
                    "unknown field '{name}' (the model takes: {})",
                    self.inputs.join(", ")
                )));
            }
        }
        let values: Vec<&Value> = self
            .inputs
            .iter()
            .map(|name| {
                fields
                    .get(name)
                    .ok_or_else(|| ModelError::Input(format!("missing field '{name}'")))
            })
            .collect::<Result<_, _>>()?;
        self.push_row(&values, out)
    }

    /// Checks and converts one row given in input order.
    pub fn push_row(&self, values: &[&Value], out: &mut Vec<f64>) -> Result<(), ModelError> {
        if values.len() != self.inputs.len() {
            return Err(ModelError::Input(format!(
                "expected {} values ({}), got {}",
                self.inputs.len(),
                self.inputs.join(", "),
                values.len()
            )));
        }
        let mut raw = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let name = &self.inputs[i];
            let kind = self.kinds[i];
            let x = match (kind, v) {
                (InputKind::Number | InputKind::Integer | InputKind::Category, Value::Num(x)) if !x.is_finite() => {
                    return Err(ModelError::Input(format!("field '{name}' must be a finite number")))
                }
                (InputKind::Integer, Value::Num(x)) if x.fract() != 0.0 => {
                    return Err(ModelError::Input(format!("field '{name}' must be an integer, got {x}")))
                }
                // A category may also be given by its code, as the model stores it.
                (InputKind::Number | InputKind::Integer | InputKind::Category, Value::Num(x)) => *x,
                (InputKind::Boolean, Value::Bool(b)) => f64::from(u8::from(*b)),
                // A missing value (JSON null, an empty CSV cell), as pandas reads it: NaN, which the model's
                // missing-value rules handle as they did in training.
                (_, Value::Null) => f64::NAN,
                (InputKind::Category, Value::Str(s)) => self.predictor.category_code(i, s).unwrap_or(f64::NAN),
                // A CSV cell `True` is read as a boolean; for a category it is the category's name.
                (InputKind::Category, Value::Bool(b)) => {
                    self.predictor.category_code(i, if *b { "True" } else { "False" }).unwrap_or(f64::NAN)
                }
                (_, other) => {
                    return Err(ModelError::Input(format!(
                        "field '{name}' must be {}, got {}",
                        kind.wanted(),
                        other.kind()
                    )));
                }
            };
            raw.push(x);
        }
        match &self.features {
            Some(f) => f.transform(&raw, out),
            None => out.extend_from_slice(&raw),
        }
        Ok(())
    }

    /// Predicts prepared rows (from [`Model::push_row`] / [`Model::row_from_fields`]).
    pub fn predict_rows(&self, rows: &[f64]) -> Result<Vec<Prediction>, ModelError> {
        let width = self.predictor.feature_names().len();
        let n = rows.len().checked_div(width).unwrap_or(0);
        let out = self.predictor.predict(rows, n)?;
        let labels = self.class_labels();
        Ok((0..out.n_rows)
            .map(|r| {
                let values = out.row(r).to_vec();
                let class = match self.predictor.output_kind() {
                    OutputKind::Classes(_) => {
                        // The first of equally probable classes, as numpy's argmax picks.
                        let mut best = 0;
                        for (i, p) in values.iter().enumerate() {
                            if *p > values[best] {
                                best = i;
                            }
                        }
                        labels.get(best).cloned()
                    }
                    OutputKind::Values(_) => None,
                };
                Prediction { class, values }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Derived;

    fn write_model(dir: &Path, with_spec: bool) {
        std::fs::write(dir.join("model.txt"), crate::lightgbm::tests_support::SMALL).unwrap();
        if with_spec {
            let spec = FeatureSpec {
                inputs: vec!["colour_code".into(), "length".into()],
                derived: vec![Derived { name: "size".into(), expr: "length * 2".into() }],
                columns: vec!["colour_code".into(), "size".into()],
                classes: vec!["no".into(), "yes".into()],
                label: "answer".into(),
            };
            std::fs::write(dir.join(features::FILE_NAME), spec.to_json()).unwrap();
        }
    }

    fn fields(pairs: &[(&str, Value)]) -> IndexMap<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    /// The model of [`write_model`], loaded (with the folder that holds it).
    fn loaded(with_spec: bool) -> (tempfile::TempDir, Model) {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), with_spec);
        let m = Model::load(dir.path()).unwrap();
        (dir, m)
    }

    /// Each row is refused with an error that says the words given with it.
    fn refused<const N: usize>(m: &Model, rows: [(IndexMap<String, Value>, &str); N]) {
        for (bad, needle) in rows {
            let e = m.row_from_fields(&bad, &mut Vec::new()).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn a_spec_names_inputs_derives_columns_and_labels_classes() {
        let (_dir, m) = loaded(true);
        assert_eq!(m.inputs(), ["colour_code", "length"]);
        assert_eq!(m.label_field(), "answer");
        let mut row = Vec::new();
        m.row_from_fields(&fields(&[("length", Value::Null), ("colour_code", Value::Num(2.0))]), &mut row)
            .unwrap();
        assert!(row[1].is_nan(), "null is a missing value");
        row.clear();
        m.row_from_fields(&fields(&[("length", Value::Num(2.0)), ("colour_code", Value::Num(2.0))]), &mut row)
            .unwrap();
        assert_eq!(row, vec![2.0, 4.0]);
        let p = m.predict_rows(&row).unwrap();
        assert_eq!(p[0].class.as_deref(), Some("yes"));

        refused(&m, [
            (fields(&[("length", Value::Num(1.0))]), "missing field 'colour_code'"),
            (fields(&[("length", Value::Num(1.0)), ("colour_code", Value::Num(1.0)), ("x", Value::Null)]), "unknown field 'x'"),
            (fields(&[("length", Value::Str("a".into())), ("colour_code", Value::Num(1.0))]), "field 'length' must be a number, got string"),
            (fields(&[("length", Value::Bool(true)), ("colour_code", Value::Num(1.0))]), "got boolean"),
            (fields(&[("length", Value::Num(f64::INFINITY)), ("colour_code", Value::Num(1.0))]), "finite"),
        ]);
    }

    #[test]
    fn signature_types_are_enforced_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), true);
        let col = |name: &str, ty: &str| mlmodel::ColSpec { name: Some(name.into()), ty: ty.into(), required: true };
        let sig = Signature { inputs: vec![col("colour_code", "long"), col("length", "boolean")], outputs: vec![] };
        let ml = MlModel::for_lightgbm("model.txt", Some(&sig), IndexMap::new());
        std::fs::write(dir.path().join(mlmodel::FILE_NAME), ml.to_yaml()).unwrap();
        let m = Model::load(dir.path()).unwrap();
        let mut row = Vec::new();
        m.row_from_fields(&fields(&[("colour_code", Value::Num(2.0)), ("length", Value::Bool(true))]), &mut row)
            .unwrap();
        assert_eq!(row, vec![2.0, 2.0], "true is 1, then doubled by the spec");
        refused(&m, [
            (fields(&[("colour_code", Value::Num(2.5)), ("length", Value::Bool(true))]), "'colour_code' must be an integer, got 2.5"),
            (fields(&[("colour_code", Value::Num(2.0)), ("length", Value::Num(1.0))]), "'length' must be a boolean, got number"),
            (fields(&[("colour_code", Value::Str("2".into())), ("length", Value::Bool(false))]), "'colour_code' must be an integer, got string"),
        ]);
    }

    #[test]
    fn without_a_spec_pandas_categories_take_strings() {
        let (_dir, m) = loaded(false);
        assert_eq!(m.inputs(), ["color", "size"]);
        let mut row = Vec::new();
        m.row_from_fields(&fields(&[("color", Value::Str("red".into())), ("size", Value::Num(1.0))]), &mut row)
            .unwrap();
        assert_eq!(row, vec![2.0, 1.0]);
        let e = m
            .row_from_fields(&fields(&[("color", Value::Num(1.0)), ("size", Value::Str("x".into()))]), &mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().contains("'size' must be a number"), "{e}");
        assert_eq!(m.class_labels(), ["0", "1"]);
    }

    #[test]
    fn unsupported_flavors_say_what_would_work() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("MLmodel"), "flavors:\n  sklearn:\n    pickled_model: model.pkl\n").unwrap();
        let e = Model::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("sklearn") && e.contains("supported: lightgbm, onnx"), "{e}");
        let e = Model::load(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("no such file"), "{e}");
        std::fs::remove_file(dir.path().join("MLmodel")).unwrap();
        let e = Model::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no MLmodel"), "{e}");
    }
}
