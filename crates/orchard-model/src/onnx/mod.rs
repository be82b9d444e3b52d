//! ONNX models, run by tract (pure Rust) with Orchard's ONNX-ML operators registered into it (see [`ops`]),
//! so a scikit-learn pipeline converted by skl2onnx — scaler, imputer, encoders, linear or tree model,
//! ZipMap — runs as one optimised tract plan.
//!
//! The graph is read once at load to decide what the model answers: a classifier's probabilities (the input
//! of its ZipMap, or its classifier node's second output) with the class labels from the node's attributes,
//! or else its first numeric output as values. Only that output is kept in the plan.

mod attrs;
mod classes;
mod linear;
mod ops;
mod trees;

use std::path::Path;
use std::sync::Arc;

use tract_onnx::pb::{self, tensor_proto::DataType, type_proto, ModelProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;

use crate::error::ModelError;
use crate::predictor::Output;
use crate::predictor::OutputKind;
use crate::predictor::Predictor;

fn bad(reason: impl std::fmt::Display) -> ModelError {
    ModelError::Format {
        format: "ONNX",
        reason: reason.to_string(),
    }
}


/// One graph input: its element type and how many of the row's columns it takes.
#[derive(Clone, Debug)]
struct Input {
    name: String,
    dt: DatumType,
    width: usize,
    /// Whether the input is a matrix `[N, width]` (else a vector `[N]`, one value per row).
    matrix: bool,
}

/// A loaded ONNX model.
#[derive(Debug)]
pub struct OnnxModel {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<Input>,
    names: Vec<String>,
    kind: OutputKind,
    labels: Option<Vec<String>>,
}

fn elem_type(code: i32) -> Option<DatumType> {
    Some(match DataType::try_from(code).ok()? {
        DataType::Float => DatumType::F32,
        DataType::Double => DatumType::F64,
        DataType::Int64 => DatumType::I64,
        DataType::Int32 => DatumType::I32,
        _ => return None,
    })
}

fn tensor_type(v: &pb::ValueInfoProto) -> Option<&type_proto::Tensor> {
    match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(t),
    }
}

/// The fixed sizes of a value's dimensions (`None` for symbolic or unknown ones).
fn dims(t: &type_proto::Tensor) -> Vec<Option<usize>> {
    use pb::tensor_shape_proto::dimension::Value;
    t.shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Value::DimValue(v)) if v > 0 => Some(v as usize),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the model answers, read off the graph.
struct Answer {
    output: String,
    labels: Option<Vec<String>>,
}

fn choose_output(graph: &pb::GraphProto) -> Result<Answer, ModelError> {
    let producer = |name: &str| {
        graph.node.iter().find_map(|n| n.output.iter().position(|o| o == name).map(|i| (n, i)))
    };
    const CLASSIFIERS: [&str; 3] = ["TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier"];
    for out in &graph.output {
        let Some((node, index)) = producer(&out.name) else { continue };
        if node.op_type == "ZipMap" {
            let labels = classes::class_labels(node).map_err(bad)?;
            return Ok(Answer { output: out.name.clone(), labels });
        }
        if CLASSIFIERS.contains(&node.op_type.as_str()) && index == 1 {
            let labels = classes::class_labels(node).map_err(bad)?;
            return Ok(Answer { output: out.name.clone(), labels });
        }
    }
    // No classifier answer: the first output of a numeric type.
    for out in &graph.output {
        if tensor_type(out).and_then(|t| elem_type(t.elem_type)).is_some_and(|dt| dt.is_float()) {
            return Ok(Answer { output: out.name.clone(), labels: None });
        }
    }
    Err(ModelError::Unsupported(
        "the ONNX model has no float output (nor a classifier's probabilities) to answer with".into(),
    ))
}

impl OnnxModel {
    pub fn load(path: &Path) -> Result<OnnxModel, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        OnnxModel::from_bytes(&bytes)
    }

    /// Reads and prepares a model. tract is third-party code running on an uploaded file: a panic inside
    /// it is caught and reported as an invalid model rather than taking the server down.
    pub fn from_bytes(bytes: &[u8]) -> Result<OnnxModel, ModelError> {
        match std::panic::catch_unwind(|| OnnxModel::build(bytes)) {
            Ok(r) => r,
            Err(_) => Err(bad("the model could not be read (the ONNX reader failed on it)")),
        }
    }

    fn build(bytes: &[u8]) -> Result<OnnxModel, ModelError> {
        let mut framework = tract_onnx::onnx();
        ops::register(&mut framework.op_register);
        let proto: ModelProto = framework.proto_model_for_read(&mut &bytes[..]).map_err(|e| bad(format!("{e:#}")))?;
        let graph = proto.graph.as_ref().ok_or_else(|| bad("the file holds no graph"))?;
        let constants: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();

        let mut inputs = Vec::new();
        for v in graph.input.iter().filter(|v| !constants.contains(v.name.as_str())) {
            let t = tensor_type(v).ok_or_else(|| bad(format!("input '{}' is not a tensor", v.name)))?;
            let dt = elem_type(t.elem_type).ok_or_else(|| {
                ModelError::Unsupported(format!(
                    "input '{}' has element type {:?}: Orchard feeds ONNX models numbers (float, double, int64, int32)",
                    v.name,
                    DataType::try_from(t.elem_type).map(|d| d.as_str_name()).unwrap_or("unknown")
                ))
            })?;
            let (width, matrix) = match dims(t).as_slice() {
                [_] => (1, false),
                [_, Some(w)] if *w <= attrs::MAX_WIDTH => (*w, true),
                [_, Some(w)] => {
                    return Err(bad(format!("input '{}' declares {w} columns (at most {})", v.name, attrs::MAX_WIDTH)))
                }
                [_, None] => {
                    return Err(ModelError::Unsupported(format!(
                        "input '{}' has no fixed number of columns",
                        v.name
                    )))
                }
                other => {
                    return Err(ModelError::Unsupported(format!(
                        "input '{}' has {} dimensions; Orchard serves models of rows ([N, columns] or [N])",
                        v.name,
                        other.len()
                    )))
                }
            };
            if inputs.iter().map(|i: &Input| i.width).sum::<usize>() + width > attrs::MAX_WIDTH {
                return Err(bad(format!("the inputs declare more than {} columns", attrs::MAX_WIDTH)));
            }
            inputs.push(Input { name: v.name.clone(), dt, width, matrix });
        }
        if inputs.is_empty() {
            return Err(bad("the model has no inputs"));
        }
        let answer = choose_output(graph)?;

        let mut model = framework.model_for_proto_model(&proto).map_err(|e| bad(format!("{e:#}")))?;
        let batch = model.sym("N");
        for (i, input) in inputs.iter().enumerate() {
            let shape: TVec<TDim> = if input.matrix {
                tvec![batch.clone().into(), input.width.to_dim()]
            } else {
                tvec![batch.clone().into()]
            };
            model
                .set_input_fact(i, InferenceFact::dt_shape(input.dt, shape))
                .map_err(|e| bad(format!("{e:#}")))?;
        }
        model
            .select_outputs_by_name([answer.output.as_str()])
            .map_err(|e| bad(format!("{e:#}")))?;
        let typed = model.into_optimized().map_err(|e| bad(format!("{e:#}")))?;
        let fact = typed.output_fact(0).map_err(|e| bad(format!("{e:#}")))?.clone();
        if !fact.datum_type.is_float() {
            return Err(ModelError::Unsupported(format!(
                "output '{}' is {:?}, not numbers",
                answer.output, fact.datum_type
            )));
        }
        let width = if fact.rank() == 1 {
            1
        } else {
            fact.shape.get(1).and_then(|d| d.to_usize().ok()).filter(|&w| w <= attrs::MAX_WIDTH).ok_or_else(|| {
                ModelError::Unsupported(format!("output '{}' has no fixed width ({:?})", answer.output, fact.shape))
            })?
        };
        let kind = match &answer.labels {
            Some(labels) if labels.len() == width => OutputKind::Classes(width),
            Some(labels) => {
                return Err(bad(format!("{} class labels for {width} probabilities", labels.len())))
            }
            None => OutputKind::Values(width),
        };
        let plan = typed.into_runnable().map_err(|e| bad(format!("{e:#}")))?;
        let names = inputs
            .iter()
            .flat_map(|i| {
                if i.width == 1 {
                    vec![i.name.clone()]
                } else {
                    (0..i.width).map(|c| format!("{}_{c}", i.name)).collect()
                }
            })
            .collect();
        Ok(OnnxModel { plan, inputs, names, kind, labels: answer.labels })
    }
}

impl Predictor for OnnxModel {
    fn feature_names(&self) -> &[String] {
        &self.names
    }

    fn output_kind(&self) -> OutputKind {
        self.kind
    }

    fn class_labels(&self) -> Option<Vec<String>> {
        self.labels.clone()
    }

    fn predict(&self, rows: &[f64], n_rows: usize) -> Result<Output, ModelError> {
        let width = self.names.len();
        if rows.len() != n_rows * width {
            return Err(ModelError::Shape(format!("{} values for {n_rows} rows of {width}", rows.len())));
        }
        let mut tensors = TVec::new();
        let mut at = 0;
        for input in &self.inputs {
            let mut v = Vec::with_capacity(n_rows * input.width);
            for r in 0..n_rows {
                v.extend_from_slice(&rows[r * width + at..r * width + at + input.width]);
            }
            if !input.dt.is_float() {
                if let Some(i) = v.iter().position(|x| x.fract() != 0.0 || !x.is_finite()) {
                    let column = &self.names[at + i % input.width];
                    return Err(ModelError::Input(format!("field '{column}' must be an integer, got {}", v[i])));
                }
            }
            let shape: &[usize] = if input.matrix { &[n_rows, input.width] } else { &[n_rows] };
            let t = Tensor::from_shape(shape, &v)
                .and_then(|t| Ok(t.cast_to_dt(input.dt)?.into_owned()))
                .map_err(|e| ModelError::Shape(format!("{e:#}")))?;
            tensors.push(t.into_tvalue());
            at += input.width;
        }
        let out = self
            .plan
            .run(tensors)
            .map_err(|e| ModelError::Input(format!("the model refused the input: {e:#}")))?;
        let values = ops::values_f64(&out[0]).map_err(|e| ModelError::Shape(format!("{e:#}")))?;
        let per_row = match self.kind {
            OutputKind::Classes(k) | OutputKind::Values(k) => k,
        };
        if values.len() != n_rows * per_row {
            return Err(ModelError::Shape(format!("the model answered {} values for {n_rows} rows", values.len())));
        }
        Ok(Output { n_rows, per_row, values })
    }
}
