//! The one interface every model format implements, and what it answers.

use crate::error::ModelError;

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
