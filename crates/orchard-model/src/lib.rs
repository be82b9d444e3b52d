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

mod error;
pub mod features;
pub mod lightgbm;
pub mod mlmodel;
mod model;
pub mod onnx;
mod predictor;
pub mod tree;

pub use error::ModelError;
pub use features::{Expr, FeatureSpec};
pub use model::{Model, Prediction, Value};
pub use predictor::{Output, OutputKind, Predictor};

