//! The ONNX-ML operators tract does not register (or, for the tree ensembles, that Orchard evaluates with its
//! own evaluator, or whose tract version cannot answer string labels), plugged into tract's ONNX op register so a whole scikit-learn pipeline runs as one tract
//! plan.
//!
//! Every operator here is one [`Kernel`]: its shape rules for tract's inference pass, its typed output facts
//! and an `eval` over whole tensors. [`MlOp`] adapts any kernel to tract's three op traits, so adding an
//! operator is writing its kernel and one line in [`register`].

use std::fmt;
use std::sync::Arc;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::Attrs;
use super::{linear, trees};

/// One ONNX-ML operator, evaluated by Orchard.
pub(crate) trait Kernel: fmt::Debug + Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn n_outputs(&self) -> usize {
        1
    }
    /// Most kernels here work element by element or row by row: one output of the input's shape, of this
    /// type (`None`: the input's type). Kernels of another shape override `rules` and `output_facts`.
    fn output_type(&self) -> Option<DatumType> {
        None
    }
    /// Shape and type rules for tract's inference pass.
    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        same_shape(s, inputs, outputs, self.output_type())
    }
    /// The typed facts of the outputs.
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(match self.output_type() {
            Some(dt) => dt.fact(inputs[0].shape.clone()),
            None => inputs[0].without_value(),
        }))
    }
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>>;
}

/// A kernel as a tract op. Two ops are equal only when they share the kernel: the kernels hold floats, and
/// tract only uses equality to merge identical nodes, which these graphs do not need.
#[derive(Debug, Clone)]
pub(crate) struct MlOp(pub Arc<dyn Kernel>);

impl PartialEq for MlOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for MlOp {}

impl Expansion for MlOp {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.0.n_outputs())
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        self.0.rules(s, inputs, outputs)
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.clone(), inputs)
    }
}

impl Op for MlOp {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    op_as_typed_op!();
}

impl EvalOp for MlOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        self.0.eval(inputs)
    }
}

impl TypedOp for MlOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.0.output_facts(inputs)
    }

    as_op!();
}

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

fn op(kernel: impl Kernel) -> Built {
    Ok((expand(MlOp(Arc::new(kernel))), vec![]))
}

/// Adds Orchard's operators to tract's ONNX register (replacing tract's own TreeEnsembleClassifier, so that
/// both tree operators and the LightGBM format run on one evaluator).
pub(crate) fn register(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleClassifier", |ctx, node| op(trees::TreeOp::parse(ctx, node, true)?));
    reg.insert("TreeEnsembleRegressor", |ctx, node| op(trees::TreeOp::parse(ctx, node, false)?));
    reg.insert("LinearClassifier", |_, node| op(linear::Linear::parse(node, true)?));
    reg.insert("LinearRegressor", |_, node| op(linear::Linear::parse(node, false)?));
    reg.insert("Scaler", scaler);
    reg.insert("ZipMap", zipmap);
    reg.insert("Binarizer", binarizer);
    reg.insert("Imputer", imputer);
    reg.insert("ArrayFeatureExtractor", array_feature_extractor);
    reg.insert("FeatureVectorizer", feature_vectorizer);
    reg.insert("OneHotEncoder", one_hot_encoder);
    reg.insert("LabelEncoder", label_encoder);
}

// ---- helpers shared by the kernels ----

/// The tensor's values as f64, row-major.
pub(crate) fn values_f64(t: &Tensor) -> TractResult<Vec<f64>> {
    let t = t.cast_to::<f64>()?;
    Ok(t.try_as_plain_ram()?.as_slice::<f64>()?.to_vec())
}

/// A float tensor of `shape` from f64 values (ONNX-ML operators answer in float).
pub(crate) fn f32_tensor(shape: &[usize], values: &[f64]) -> TractResult<TValue> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Ok(Tensor::from_shape(shape, &v)?.into_tvalue())
}

/// Rows × columns of a 1-D (one row) or 2-D input, as ONNX-ML's operators read it.
pub(crate) fn rows_cols(shape: &[usize]) -> TractResult<(usize, usize)> {
    match shape {
        [c] => Ok((1, *c)),
        [n, c] => Ok((*n, *c)),
        other => bail!("expected a 1-D or 2-D input, got shape {other:?}"),
    }
}

fn same_shape<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
    dt: Option<DatumType>,
) -> InferenceResult {
    s.equals(&inputs[0].shape, &outputs[0].shape)?;
    match dt {
        Some(dt) => s.equals(&outputs[0].datum_type, dt),
        None => s.equals(&inputs[0].datum_type, &outputs[0].datum_type),
    }
}

/// `[N, k]` of type `dt`, N taken from the input's first axis.
fn batch_by<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
    output: usize,
    k: usize,
    dt: DatumType,
) -> InferenceResult {
    s.equals(&outputs[output].datum_type, dt)?;
    s.equals(&outputs[output].rank, 2)?;
    s.equals(&outputs[output].shape[0], &inputs[0].shape[0])?;
    s.equals(&outputs[output].shape[1], k.to_dim())
}

fn batch_fact(inputs: &[&TypedFact], k: usize, dt: DatumType) -> TypedFact {
    let n = if inputs[0].rank() >= 2 { inputs[0].shape[0].clone() } else { 1.to_dim() };
    dt.fact([n, k.to_dim()])
}

/// A per-column parameter (offset, scale, imputed value): one value for every column, or one per column.
fn per_column(values: &[f64], cols: usize, what: &str) -> TractResult<Vec<f64>> {
    match values.len() {
        1 => Ok(vec![values[0]; cols]),
        n if n == cols => Ok(values.to_vec()),
        n => bail!("{what} has {n} values for {cols} columns"),
    }
}

// ---- Scaler: y = (x - offset) * scale ----

#[derive(Debug)]
struct Scaler {
    offset: Vec<f64>,
    scale: Vec<f64>,
}

fn scaler(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let a = Attrs::new(node);
    let offset = a.floats("offset")?.unwrap_or_default();
    let scale = a.floats("scale")?.unwrap_or_default();
    op(Scaler { offset, scale })
}

impl Kernel for Scaler {
    fn name(&self) -> &'static str { "Scaler" }
    fn output_type(&self) -> Option<DatumType> { Some(DatumType::F32) }
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (_, cols) = rows_cols(inputs[0].shape())?;
        let offset = if self.offset.is_empty() { vec![0.0; cols] } else { per_column(&self.offset, cols, "offset")? };
        let scale = if self.scale.is_empty() { vec![1.0; cols] } else { per_column(&self.scale, cols, "scale")? };
        let mut v = values_f64(&inputs[0])?;
        for (i, x) in v.iter_mut().enumerate() {
            let c = i % cols;
            *x = (*x - offset[c]) * scale[c];
        }
        Ok(tvec!(f32_tensor(inputs[0].shape(), &v)?))
    }
}

// ---- ZipMap: a classifier's probabilities as one map per row ----

/// Orchard keeps the probabilities as a tensor (the class labels are read off the node when the model is
/// loaded), so in the plan ZipMap passes its input through.
#[derive(Debug)]
struct ZipMap;

fn zipmap(_ctx: &ParsingContext, _node: &NodeProto) -> Built {
    op(ZipMap)
}

impl Kernel for ZipMap {
    fn name(&self) -> &'static str { "ZipMap" }
    fn output_type(&self) -> Option<DatumType> { Some(DatumType::F32) }
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let t = inputs[0].cast_to::<f32>()?.into_owned();
        Ok(tvec!(t.into_tvalue()))
    }
}

// ---- Binarizer: 1 above the threshold, else 0, in the input's type ----

#[derive(Debug)]
struct Binarizer {
    threshold: f64,
}

fn binarizer(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    op(Binarizer { threshold: Attrs::new(node).float("threshold")?.unwrap_or(0.0) })
}

impl Kernel for Binarizer {
    fn name(&self) -> &'static str { "Binarizer" }
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let v: Vec<f64> = values_f64(&inputs[0])?
            .into_iter()
            .map(|x| if x > self.threshold { 1.0 } else { 0.0 })
            .collect();
        let out = Tensor::from_shape(inputs[0].shape(), &v)?.cast_to_dt(inputs[0].datum_type())?.into_owned();
        Ok(tvec!(out.into_tvalue()))
    }
}

// ---- Imputer: replaces a marker value (NaN by default for floats) with a per-column value ----

#[derive(Debug)]
struct Imputer {
    imputed: Vec<f64>,
    replaced: f64,
}

fn imputer(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let a = Attrs::new(node);
    let imputed = match (a.floats("imputed_value_floats")?, a.ints("imputed_value_int64s")?) {
        (Some(f), _) if !f.is_empty() => f,
        (_, Some(i)) if !i.is_empty() => i.iter().map(|&x| x as f64).collect(),
        _ => bail!("Imputer needs imputed_value_floats or imputed_value_int64s"),
    };
    let replaced = match a.float("replaced_value_float")? {
        Some(f) => f,
        None => a.int("replaced_value_int64")?.map(|i| i as f64).unwrap_or(0.0),
    };
    op(Imputer { imputed, replaced })
}

impl Kernel for Imputer {
    fn name(&self) -> &'static str { "Imputer" }
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (_, cols) = rows_cols(inputs[0].shape())?;
        let imputed = per_column(&self.imputed, cols, "imputed values")?;
        let mut v = values_f64(&inputs[0])?;
        for (i, x) in v.iter_mut().enumerate() {
            let hit = if self.replaced.is_nan() { x.is_nan() } else { *x == self.replaced };
            if hit {
                *x = imputed[i % cols];
            }
        }
        let out = Tensor::from_shape(inputs[0].shape(), &v)?.cast_to_dt(inputs[0].datum_type())?.into_owned();
        Ok(tvec!(out.into_tvalue()))
    }
}

// ---- ArrayFeatureExtractor: picks columns (the indices are a constant of the model) ----

#[derive(Debug)]
struct ArrayFeatureExtractor {
    indices: Vec<usize>,
}

fn array_feature_extractor(ctx: &ParsingContext, node: &NodeProto) -> Built {
    let name = node.input.get(1).ok_or_else(|| format_err!("ArrayFeatureExtractor needs two inputs"))?;
    let init = ctx
        .model
        .graph
        .as_ref()
        .and_then(|g| g.initializer.iter().find(|t| &t.name == name))
        .ok_or_else(|| format_err!("ArrayFeatureExtractor indices '{name}' must be a constant of the model"))?;
    let t = ctx.load_tensor(init)?;
    let indices = values_f64(&t)?
        .into_iter()
        .map(|i| if i >= 0.0 && i.fract() == 0.0 { Ok(i as usize) } else { Err(format_err!("bad column index {i}")) })
        .collect::<TractResult<Vec<_>>>()?;
    op(ArrayFeatureExtractor { indices })
}

impl Kernel for ArrayFeatureExtractor {
    fn name(&self) -> &'static str { "ArrayFeatureExtractor" }
    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, i: &'p [TensorProxy], o: &'p [TensorProxy]) -> InferenceResult {
        s.equals(&i[0].datum_type, &o[0].datum_type)?;
        s.equals(&o[0].rank, 2)?;
        s.equals(&o[0].shape[0], &i[0].shape[0])?;
        s.equals(&o[0].shape[1], self.indices.len().to_dim())
    }
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(batch_fact(inputs, self.indices.len(), inputs[0].datum_type)))
    }
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (rows, cols) = rows_cols(inputs[0].shape())?;
        if let Some(bad) = self.indices.iter().find(|&&i| i >= cols) {
            bail!("column index {bad} out of {cols} columns");
        }
        let v = values_f64(&inputs[0])?;
        let mut out = Vec::with_capacity(rows * self.indices.len());
        for r in 0..rows {
            out.extend(self.indices.iter().map(|&c| v[r * cols + c]));
        }
        let t = Tensor::from_shape(&[rows, self.indices.len()], &out)?.cast_to_dt(inputs[0].datum_type())?.into_owned();
        Ok(tvec!(t.into_tvalue()))
    }
}

// ---- FeatureVectorizer: concatenates its inputs' columns into one float matrix ----

#[derive(Debug)]
struct FeatureVectorizer {
    dims: Vec<usize>,
}

fn feature_vectorizer(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let dims = Attrs::new(node)
        .ints("inputdimensions")?
        .unwrap_or_default()
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| format_err!("bad input dimension {d}")))
        .collect::<TractResult<Vec<_>>>()?;
    if dims.iter().sum::<usize>() > super::attrs::MAX_WIDTH {
        bail!("FeatureVectorizer output wider than {} columns", super::attrs::MAX_WIDTH);
    }
    if dims.len() != node.input.len() {
        bail!("FeatureVectorizer has {} inputs but {} input dimensions", node.input.len(), dims.len());
    }
    op(FeatureVectorizer { dims })
}

impl Kernel for FeatureVectorizer {
    fn name(&self) -> &'static str { "FeatureVectorizer" }
    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, i: &'p [TensorProxy], o: &'p [TensorProxy]) -> InferenceResult {
        batch_by(s, i, o, 0, self.dims.iter().sum(), DatumType::F32)
    }
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(batch_fact(inputs, self.dims.iter().sum(), DatumType::F32)))
    }
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let rows = rows_cols(inputs[0].shape())?.0;
        let width: usize = self.dims.iter().sum();
        let mut out = vec![0.0; rows * width];
        let mut at = 0;
        for (input, &dim) in inputs.iter().zip(&self.dims) {
            let (r, c) = rows_cols(input.shape())?;
            if r != rows {
                bail!("FeatureVectorizer inputs have {r} and {rows} rows");
            }
            let v = values_f64(input)?;
            // Narrower inputs are padded with zeros, wider ones cut, as the operator defines.
            for row in 0..rows {
                for col in 0..dim.min(c) {
                    out[row * width + at + col] = v[row * c + col];
                }
            }
            at += dim;
        }
        Ok(tvec!(f32_tensor(&[rows, width], &out)?))
    }
}

// ---- OneHotEncoder: integer categories → one column per category ----

#[derive(Debug)]
struct OneHotEncoder {
    categories: Vec<i64>,
    /// `zeros=1`: an unknown category is all zeros; `zeros=0`: it is an error.
    zeros: bool,
}

fn one_hot_encoder(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let a = Attrs::new(node);
    if a.strings("cats_strings")?.is_some_and(|s| !s.is_empty()) {
        bail!("OneHotEncoder over strings is not supported (Orchard feeds ONNX models numbers)");
    }
    let categories = a.ints("cats_int64s")?.unwrap_or_default();
    if categories.len() > super::attrs::MAX_WIDTH {
        bail!("OneHotEncoder has more than {} categories", super::attrs::MAX_WIDTH);
    }
    if categories.is_empty() {
        bail!("OneHotEncoder has no categories");
    }
    op(OneHotEncoder { categories, zeros: a.int("zeros")?.unwrap_or(1) != 0 })
}

impl Kernel for OneHotEncoder {
    fn name(&self) -> &'static str { "OneHotEncoder" }
    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, i: &'p [TensorProxy], o: &'p [TensorProxy]) -> InferenceResult {
        s.equals(&o[0].datum_type, DatumType::F32)?;
        s.equals(&o[0].rank, i[0].rank.bex() + 1)?;
        let k = self.categories.len();
        s.given(&i[0].rank, move |s, rank| {
            let rank = rank as usize;
            for axis in 0..rank {
                s.equals(&o[0].shape[axis], &i[0].shape[axis])?;
            }
            s.equals(&o[0].shape[rank], k.to_dim())
        })
    }
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        shape.push(self.categories.len().to_dim());
        Ok(tvec!(f32::fact(shape)))
    }
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let k = self.categories.len();
        let v = values_f64(&inputs[0])?;
        let mut out = vec![0.0; v.len() * k];
        for (i, x) in v.iter().enumerate() {
            // Numbers are read as integers (truncated), as the operator casts them.
            match self.categories.iter().position(|&c| x.is_finite() && c == *x as i64) {
                Some(j) => out[i * k + j] = 1.0,
                None if self.zeros => {}
                None => bail!("value {x} is not one of the encoder's categories"),
            }
        }
        let mut shape = inputs[0].shape().to_vec();
        shape.push(k);
        Ok(tvec!(f32_tensor(&shape, &out)?))
    }
}

// ---- LabelEncoder: a lookup table between numbers ----

#[derive(Debug)]
struct LabelEncoder {
    keys: Vec<f64>,
    values: Vec<f64>,
    default: f64,
    out: DatumType,
}

fn label_encoder(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let a = Attrs::new(node);
    if a.strings("keys_strings")?.is_some() || a.strings("values_strings")?.is_some() {
        bail!("LabelEncoder over strings is not supported (Orchard feeds ONNX models numbers)");
    }
    let keys = match (a.floats("keys_floats")?, a.ints("keys_int64s")?) {
        (Some(f), _) => f,
        (_, Some(i)) => i.iter().map(|&x| x as f64).collect(),
        _ => bail!("LabelEncoder has no keys"),
    };
    let (values, default, out) = match (a.floats("values_floats")?, a.ints("values_int64s")?) {
        (Some(f), _) => (f, a.float("default_float")?.unwrap_or(-0.0), DatumType::F32),
        (_, Some(i)) => (
            i.iter().map(|&x| x as f64).collect(),
            a.int("default_int64")?.unwrap_or(-1) as f64,
            DatumType::I64,
        ),
        _ => bail!("LabelEncoder has no values"),
    };
    if keys.len() != values.len() {
        bail!("LabelEncoder has {} keys and {} values", keys.len(), values.len());
    }
    op(LabelEncoder { keys, values, default, out })
}

impl Kernel for LabelEncoder {
    fn name(&self) -> &'static str { "LabelEncoder" }
    fn output_type(&self) -> Option<DatumType> { Some(self.out) }
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let v: Vec<f64> = values_f64(&inputs[0])?
            .into_iter()
            .map(|x| match self.keys.iter().position(|&k| k == x || (k.is_nan() && x.is_nan())) {
                Some(j) => self.values[j],
                None => self.default,
            })
            .collect();
        let t = Tensor::from_shape(inputs[0].shape(), &v)?.cast_to_dt(self.out)?.into_owned();
        Ok(tvec!(t.into_tvalue()))
    }
}
