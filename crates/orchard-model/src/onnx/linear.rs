//! ONNX-ML's LinearClassifier and LinearRegressor: one dot product per class (or target) plus its intercept,
//! then the post-transform. tract has its own versions, but they cannot give string class labels (the
//! usual output of a scikit-learn classifier trained on named classes), so Orchard evaluates both.

use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::Attrs;
use super::classes::{answer, answer_facts, answer_rules, logistic, parse_post, transform, Labels, Post};
use super::ops::{f32_tensor, rows_cols, values_f64, Kernel};

#[derive(Debug)]
pub(crate) struct Linear {
    /// `models × features`, row-major.
    coefficients: Vec<f64>,
    intercepts: Vec<f64>,
    models: usize,
    post: Post,
    labels: Option<Labels>,
    /// Scores per row: `models`, or 2 for a binary classifier given as one model.
    width: usize,
}

impl Linear {
    pub(crate) fn parse(node: &NodeProto, classifier: bool) -> TractResult<Linear> {
        let a = Attrs::new(node);
        let coefficients = a.floats("coefficients")?.filter(|c| !c.is_empty()).ok_or_else(|| format_err!("no coefficients"))?;
        let intercepts = a.floats("intercepts")?.unwrap_or_default();
        let post = parse_post(a.string("post_transform")?)?;
        let labels = if classifier {
            match (a.ints("classlabels_ints")?, a.strings("classlabels_strings")?) {
                (Some(v), _) if !v.is_empty() => Some(Labels::Ints(v)),
                (_, Some(v)) if !v.is_empty() => Some(Labels::Strings(v)),
                _ => bail!("a classifier needs classlabels_ints or classlabels_strings"),
            }
        } else {
            None
        };
        let models = if !intercepts.is_empty() {
            intercepts.len()
        } else if let Some(t) = a.int("targets")?.filter(|_| !classifier) {
            usize::try_from(t).map_err(|_| format_err!("bad targets {t}"))?
        } else {
            match &labels {
                Some(l) if l.len() == 2 && coefficients.len() % 2 != 0 => 1,
                Some(l) => l.len(),
                None => 1,
            }
        };
        if models == 0 || coefficients.len() % models != 0 {
            bail!("{} coefficients for {models} models", coefficients.len());
        }
        let width = match &labels {
            Some(l) if models == 1 && l.len() == 2 => 2,
            Some(l) if l.len() != models => bail!("{} class labels for {models} models", l.len()),
            _ => models,
        };
        let intercepts = if intercepts.is_empty() { vec![0.0; models] } else { intercepts };
        Ok(Linear { coefficients, intercepts, models, post, labels, width })
    }

    fn features(&self) -> usize {
        self.coefficients.len() / self.models
    }
}

impl Kernel for Linear {
    fn name(&self) -> &'static str { if self.labels.is_some() { "LinearClassifier" } else { "LinearRegressor" } }

    fn n_outputs(&self) -> usize { 1 + usize::from(self.labels.is_some()) }

    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, i: &'p [TensorProxy], o: &'p [TensorProxy]) -> InferenceResult {
        answer_rules(s, i, o, self.labels.as_ref(), self.width)
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(answer_facts(inputs, self.labels.as_ref(), self.width))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (rows, cols) = rows_cols(inputs[0].shape())?;
        let f = self.features();
        if cols != f {
            bail!("the model has {f} coefficients per class, the input {cols} columns");
        }
        let x = values_f64(&inputs[0])?;
        let mut out = Vec::with_capacity(rows * self.width);
        let mut picks = Vec::with_capacity(rows);
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            let mut scores: Vec<f64> = (0..self.models)
                .map(|m| {
                    let w = &self.coefficients[m * f..(m + 1) * f];
                    row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() + self.intercepts[m]
                })
                .collect();
            if self.width == 2 && self.models == 1 {
                // One score for two classes: the positive class wins above 0; the pair is (1 - p, p) once
                // the score is a probability, else (-s, s).
                let s = scores[0];
                picks.push(usize::from(s > 0.0));
                scores = match self.post {
                    Post::Logistic => vec![1.0 - logistic(s), logistic(s)],
                    _ => vec![-s, s],
                };
            } else {
                let mut best = 0;
                for (k, v) in scores.iter().enumerate() {
                    if *v > scores[best] {
                        best = k;
                    }
                }
                picks.push(best);
                transform(self.post, &mut scores);
            }
            out.extend_from_slice(&scores);
        }
        Ok(answer(self.labels.as_ref(), &picks, f32_tensor(&[rows, self.width], &out)?))
    }
}
