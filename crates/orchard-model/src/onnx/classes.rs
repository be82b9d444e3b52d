//! What the ONNX-ML classifiers share: class labels and the post-transforms, computed as onnxruntime's
//! reference kernels compute them.

use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::Attrs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    pub(crate) fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    pub(crate) fn datum_type(&self) -> DatumType {
        match self {
            Labels::Ints(_) => DatumType::I64,
            Labels::Strings(_) => DatumType::String,
        }
    }

    /// The labels as text, for answers that name classes.
    pub(crate) fn names(&self) -> Vec<String> {
        match self {
            Labels::Ints(v) => v.iter().map(i64::to_string).collect(),
            Labels::Strings(v) => v.clone(),
        }
    }

    pub(crate) fn tensor(&self, picks: &[usize]) -> Tensor {
        match self {
            Labels::Ints(v) => tensor1(&picks.iter().map(|&i| v[i]).collect::<Vec<_>>()),
            Labels::Strings(v) => tensor1(&picks.iter().map(|&i| v[i].clone()).collect::<Vec<_>>()),
        }
    }
}

/// A classifier's labels from its `classlabels_*` attributes (`classlabels_ints` on LinearClassifier and
/// ZipMap's `classlabels_int64s` are read by the same function).
pub(crate) fn class_labels(node: &NodeProto) -> TractResult<Option<Vec<String>>> {
    let a = Attrs::new(node);
    for name in ["classlabels_int64s", "classlabels_ints"] {
        if let Some(v) = a.ints(name)? {
            if !v.is_empty() {
                return Ok(Some(Labels::Ints(v).names()));
            }
        }
    }
    Ok(a.strings("classlabels_strings")?.filter(|v| !v.is_empty()))
}

pub(crate) fn parse_post(s: Option<String>) -> TractResult<Post> {
    Ok(match s.as_deref().unwrap_or("NONE") {
        "NONE" => Post::None,
        "LOGISTIC" => Post::Logistic,
        "SOFTMAX" => Post::Softmax,
        "SOFTMAX_ZERO" => Post::SoftmaxZero,
        "PROBIT" => Post::Probit,
        other => bail!("unknown post_transform {other:?}"),
    })
}

pub(crate) fn logistic(v: f64) -> f64 {
    let e = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 {
        1.0 - e
    } else {
        e
    }
}

/// The inverse error function as onnxruntime approximates it (Winitzki's formula, a = 0.147).
fn erf_inv(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let ln = ((1.0 - x) * (1.0 + x)).ln();
    let v = 2.0 / (std::f64::consts::PI * 0.147) + 0.5 * ln;
    let v2 = ln / 0.147;
    sign * (-v + (v * v - v2).sqrt()).sqrt()
}

pub(crate) fn probit(v: f64) -> f64 {
    std::f64::consts::SQRT_2 * erf_inv(2.0 * v - 1.0)
}

pub(crate) fn transform(post: Post, scores: &mut [f64]) {
    match post {
        Post::None => {}
        Post::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
        Post::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
        Post::Softmax => crate::predictor::softmax(scores),
        Post::SoftmaxZero => {
            // Zeros stay (near) zero: they mean "no score", not "score 0".
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for s in scores.iter_mut() {
                if s.abs() > 1e-7 {
                    *s = (*s - max).exp();
                    sum += *s;
                } else {
                    *s *= (-max).exp();
                }
            }
            scores.iter_mut().for_each(|s| *s /= sum);
        }
    }
}


/// The outputs of a model node: for a classifier its labels `[N]` and scores `[N, width]`, for a regressor
/// its values `[N, width]`. Shared by the linear and the tree operators.
pub(crate) fn answer_rules<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    i: &'p [TensorProxy],
    o: &'p [TensorProxy],
    labels: Option<&Labels>,
    width: usize,
) -> InferenceResult {
    let scores = match labels {
        Some(labels) => {
            s.equals(&o[0].datum_type, labels.datum_type())?;
            s.equals(&o[0].rank, 1)?;
            s.equals(&o[0].shape[0], &i[0].shape[0])?;
            &o[1]
        }
        None => &o[0],
    };
    s.equals(&scores.datum_type, DatumType::F32)?;
    s.equals(&scores.rank, 2)?;
    s.equals(&scores.shape[0], &i[0].shape[0])?;
    s.equals(&scores.shape[1], width.to_dim())
}

pub(crate) fn answer_facts(inputs: &[&TypedFact], labels: Option<&Labels>, width: usize) -> TVec<TypedFact> {
    let n = if inputs[0].rank() >= 2 { inputs[0].shape[0].clone() } else { 1.to_dim() };
    let scores = f32::fact([n.clone(), width.to_dim()]);
    match labels {
        Some(labels) => tvec!(labels.datum_type().fact([n]), scores),
        None => tvec!(scores),
    }
}

/// The output tensors: the picked classes' labels (classifiers) and the scores.
pub(crate) fn answer(labels: Option<&Labels>, picks: &[usize], scores: TValue) -> TVec<TValue> {
    match labels {
        Some(labels) => tvec!(labels.tensor(picks).into_tvalue(), scores),
        None => tvec!(scores),
    }
}
