//! Model formats behind one [`Predictor`] interface.
//!
//! - [`lightgbm`]: LightGBM's text model, parsed and predicted natively (no Python, no C library);
//! - [`onnx`]: ONNX models through tract, with the ONNX-ML operators skl2onnx emits (scalers, encoders,
//!   linear and tree models, ZipMap) registered into it;
//! - [`tree`]: the tree-ensemble evaluator shared by LightGBM and ONNX's tree operators;
//! - [`mlmodel`]: MLflow model directories (`MLmodel` YAML: flavors, signature, metadata), read and written;
//! - [`features`]: the feature spec stored with a model — derived columns, column order, class labels — so
//!   the transform used in training is the one used in serving;
//! - [`Model`]: a loaded model directory, which turns named inputs into predictions.
//!
//! Nothing here knows about HTTP or the tracking store: callers hand in a local directory.

pub mod features;
pub mod lightgbm;
pub mod mlmodel;
mod model;
pub mod onnx;
pub mod tree;

pub use features::{Expr, FeatureSpec};
pub use model::{Model, Prediction, Value};

/// What can go wrong reading a model or predicting with it. Every variant names what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("invalid {format} model: {reason}")]
    Format { format: &'static str, reason: String },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// The input does not fit the model (a missing, extra or mistyped field).
    #[error("{0}")]
    Input(String),
    #[error("wrong input shape: {0}")]
    Shape(String),
}

/// Softmax in place, shifted by the maximum so that no `exp` overflows (LightGBM's and onnxruntime's way).
pub(crate) fn softmax(scores: &mut [f64]) {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    scores.iter_mut().for_each(|s| *s /= sum);
}

impl ModelError {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> ModelError {
        ModelError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}

/// What a predictor's outputs are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// One probability per class (for binary models, both classes').
    Classes(usize),
    /// Real values (a regression: one per row; more for multi-output models).
    Values(usize),
}

/// Predictions for a batch: `per_row` values for each of `n_rows` rows, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub n_rows: usize,
    pub per_row: usize,
    pub values: Vec<f64>,
}

impl Output {
    pub fn row(&self, r: usize) -> &[f64] {
        &self.values[r * self.per_row..(r + 1) * self.per_row]
    }
}

/// A model that maps rows of numbers (in [`Predictor::feature_names`] order) to outputs.
pub trait Predictor: Send + Sync + std::fmt::Debug {
    /// The model's input columns, in order.
    fn feature_names(&self) -> &[String];
    fn output_kind(&self) -> OutputKind;
    /// For a categorical feature trained from strings: the number a string stands for (NaN when unknown);
    /// `None` when the feature takes no strings.
    fn category_code(&self, _feature: usize, _value: &str) -> Option<f64> {
        None
    }
    /// The class labels the model itself carries (ONNX classifiers do), by class index.
    fn class_labels(&self) -> Option<Vec<String>> {
        None
    }
    /// Predicts `n_rows` rows given row-major in `rows`.
    fn predict(&self, rows: &[f64], n_rows: usize) -> Result<Output, ModelError>;
}
