//! LightGBM's text model format (`model.txt`, MLflow's `model.lgb`), predicted natively.
//!
//! The parser reads what prediction needs — the header (classes, trees per iteration, features, objective),
//! each `Tree=` block (splits, thresholds, decision types, children, leaf values, category bitsets) and the
//! Python package's `pandas_categorical` line — and builds a validated [`Ensemble`]. Prediction follows
//! `Booster.predict`: per row, tiny values read as zero, trees summed in file order per class, the random-forest
//! average if the model has one, then the objective's output transform. The sums are made in LightGBM's order,
//! so results match Python's to the last bit in practice (tests require 1e-9).

use crate::tree::{Child, Ensemble, Missing, Node, Rule, Tree, ZERO_THRESHOLD};
use crate::error::ModelError;
use crate::predictor::Output;
use crate::predictor::OutputKind;
use crate::predictor::Predictor;

/// How raw scores become predictions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Objective {
    /// No transform (custom objectives, ranking, and the identity regressions).
    Identity,
    /// `binary sigmoid:S`: the positive class's probability.
    Binary { sigmoid: f64 },
    /// `multiclass`: softmax over the classes.
    Softmax,
    /// `multiclassova`: an independent sigmoid per class (not normalised).
    OneVsAll { sigmoid: f64 },
    /// `cross_entropy`: logistic.
    CrossEntropy,
    /// `cross_entropy_lambda`: log(1 + e^r).
    CrossEntropyLambda,
    /// A regression trained on sqrt(label) (`reg_sqrt`): sign(r)·r².
    SquaredBack,
    /// `poisson`, `gamma`, `tweedie`: e^r.
    Exp,
}

impl Objective {
    /// Reads the header's `objective=` value, e.g. `binary sigmoid:1`, `multiclass num_class:3`, `regression sqrt`.
    pub fn parse(value: &str) -> Result<Objective, String> {
        let mut tokens = value.split_whitespace();
        let name = tokens.next().unwrap_or("");
        let rest: Vec<&str> = tokens.collect();
        let sigmoid = || -> Result<f64, String> {
            match rest.iter().find_map(|t| t.strip_prefix("sigmoid:")) {
                None => Ok(1.0),
                Some(s) => s
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("bad sigmoid '{s}'")),
            }
        };
        let sqrt = rest.contains(&"sqrt");
        Ok(match name {
            "binary" => Objective::Binary { sigmoid: sigmoid()? },
            "multiclass" | "softmax" => Objective::Softmax,
            "multiclassova" | "multiclass_ova" | "ova" | "ovr" => Objective::OneVsAll { sigmoid: sigmoid()? },
            "cross_entropy" | "xentropy" => Objective::CrossEntropy,
            "cross_entropy_lambda" | "xentlambda" => Objective::CrossEntropyLambda,
            "poisson" | "gamma" | "tweedie" => Objective::Exp,
            "huber" => Objective::Identity,
            "regression" | "regression_l2" | "l2" | "mean_squared_error" | "mse" | "l2_root"
            | "root_mean_squared_error" | "rmse" | "regression_l1" | "l1" | "mean_absolute_error" | "mae"
            | "quantile" | "mape" | "mean_absolute_percentage_error" | "fair" => {
                if sqrt {
                    Objective::SquaredBack
                } else {
                    Objective::Identity
                }
            }
            "lambdarank" | "rank_xendcg" | "xendcg" | "xe_ndcg" | "xe_ndcg_mart" | "xendcg_mart" | "none"
            | "null" | "custom" | "na" => Objective::Identity,
            other => return Err(format!("unknown objective '{other}'")),
        })
    }

    fn is_classification(self) -> bool {
        matches!(
            self,
            Objective::Binary { .. } | Objective::Softmax | Objective::OneVsAll { .. }
        )
    }

    /// Transforms one row's raw scores in place.
    fn apply(self, scores: &mut [f64]) {
        let logistic = |s: f64, r: f64| 1.0 / (1.0 + (-s * r).exp());
        match self {
            Objective::Identity => {}
            Objective::Binary { sigmoid } | Objective::OneVsAll { sigmoid } => {
                scores.iter_mut().for_each(|r| *r = logistic(sigmoid, *r))
            }
            Objective::CrossEntropy => scores.iter_mut().for_each(|r| *r = logistic(1.0, *r)),
            Objective::CrossEntropyLambda => scores.iter_mut().for_each(|r| *r = r.exp().ln_1p()),
            Objective::SquaredBack => scores.iter_mut().for_each(|r| *r = r.signum() * *r * *r),
            Objective::Exp => scores.iter_mut().for_each(|r| *r = r.exp()),
            Objective::Softmax => crate::predictor::softmax(scores),
        }
    }
}

/// A parsed LightGBM model.
#[derive(Clone, Debug)]
pub struct LightGbm {
    ensemble: Ensemble,
    /// Trees per boosting round: one per class for multiclass models, else 1.
    per_iteration: usize,
    objective: Objective,
    /// Random forests average their trees (`average_output`).
    average_output: bool,
    feature_names: Vec<String>,
    /// For each feature trained from a pandas `category` column: its categories, a value's code being its
    /// position (the Python package's `pandas_categorical` line).
    pandas_categories: Vec<Option<Vec<serde_json::Value>>>,
}

fn err(line: usize, reason: impl Into<String>) -> ModelError {
    ModelError::Format {
        format: "LightGBM",
        reason: format!("line {line}: {}", reason.into()),
    }
}

/// The `key=value` lines of one block, with the line each came from.
struct Block<'a> {
    start: usize,
    entries: Vec<(&'a str, &'a str, usize)>,
}

impl<'a> Block<'a> {
    fn get(&self, key: &str) -> Option<(&'a str, usize)> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, v, l)| (*v, *l))
    }

    fn required(&self, key: &str) -> Result<(&'a str, usize), ModelError> {
        self.get(key)
            .ok_or_else(|| err(self.start, format!("missing '{key}'")))
    }

    fn int(&self, key: &str) -> Result<i64, ModelError> {
        let (v, line) = self.required(key)?;
        v.trim()
            .parse()
            .map_err(|_| err(line, format!("'{key}' is not an integer: '{v}'")))
    }

    /// A space-separated array (runs of spaces allowed); absent means empty.
    fn array<T: std::str::FromStr>(&self, key: &str) -> Result<Vec<T>, ModelError> {
        let Some((v, line)) = self.get(key) else {
            return Ok(Vec::new());
        };
        v.split_whitespace()
            .map(|t| {
                t.parse::<T>()
                    .map_err(|_| err(line, format!("bad value '{t}' in '{key}'")))
            })
            .collect()
    }

    fn array_of_len<T: std::str::FromStr>(&self, key: &str, len: usize) -> Result<Vec<T>, ModelError> {
        let values = self.array::<T>(key)?;
        if values.len() != len {
            let line = self.get(key).map(|(_, l)| l).unwrap_or(self.start);
            return Err(err(
                line,
                format!("'{key}' has {} values, expected {len}", values.len()),
            ));
        }
        Ok(values)
    }
}

fn child(v: i64, line: usize) -> Result<Child, ModelError> {
    let c = if v >= 0 {
        u32::try_from(v).map(Child::Node)
    } else {
        u32::try_from(-(v + 1)).map(Child::Leaf)
    };
    c.map_err(|_| err(line, format!("child index {v} out of range")))
}

impl LightGbm {
    pub fn parse(text: &str) -> Result<LightGbm, ModelError> {
        let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
        // Header: `key=value` lines up to the first tree.
        let mut header = Block { start: 1, entries: Vec::new() };
        let mut i = 0;
        while i < lines.len() && !lines[i].starts_with("Tree=") && lines[i] != "end of trees" {
            let line = lines[i];
            if !line.is_empty() {
                let (k, v) = line.split_once('=').unwrap_or((line, ""));
                header.entries.push((k, v, i + 1));
            }
            i += 1;
        }
        if header.get("tree").is_none() && header.entries.first().map(|e| e.0) != Some("tree") {
            return Err(err(1, "not a LightGBM text model (expected 'tree' on the first line)"));
        }
        let num_class = header.int("num_class")?;
        let per_iteration = match header.get("num_tree_per_iteration") {
            Some(_) => header.int("num_tree_per_iteration")?,
            None => num_class,
        };
        if !(1..=100_000).contains(&num_class) || !(1..=100_000).contains(&per_iteration) {
            return Err(err(1, format!("bad class count {num_class} / {per_iteration} trees per iteration")));
        }
        let n_features = header.int("max_feature_idx")? + 1;
        if !(1..=10_000_000).contains(&n_features) {
            return Err(err(1, format!("bad max_feature_idx {}", n_features - 1)));
        }
        let n_features = n_features as usize;
        let (names, names_line) = header.required("feature_names")?;
        let feature_names: Vec<String> = names.split_whitespace().map(str::to_string).collect();
        if feature_names.len() != n_features {
            return Err(err(
                names_line,
                format!("{} feature names for {n_features} features", feature_names.len()),
            ));
        }
        let objective = match header.get("objective") {
            None => Objective::Identity,
            Some((v, line)) => Objective::parse(v).map_err(|e| err(line, e))?,
        };
        let average_output = header.get("average_output").is_some();
        // feature_infos: `[min:max]` or `none` for numerical features, the category list for categorical ones.
        let categorical: Vec<bool> = header
            .get("feature_infos")
            .map(|(v, _)| {
                v.split_whitespace()
                    .map(|f| f != "none" && !f.starts_with('['))
                    .collect()
            })
            .unwrap_or_default();

        // Trees.
        let mut trees = Vec::new();
        let mut bits: Vec<u32> = Vec::new();
        while i < lines.len() && lines[i] != "end of trees" {
            if !lines[i].starts_with("Tree=") {
                if lines[i].is_empty() {
                    i += 1;
                    continue;
                }
                return Err(err(i + 1, format!("expected 'Tree=' or 'end of trees', found '{}'", lines[i])));
            }
            let mut block = Block { start: i + 1, entries: Vec::new() };
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let (k, v) = lines[i].split_once('=').ok_or_else(|| err(i + 1, "expected key=value"))?;
                block.entries.push((k, v, i + 1));
                i += 1;
            }
            let output = (trees.len() % per_iteration as usize) as u32;
            trees.push(parse_tree(&block, output, &mut bits)?);
        }
        if i >= lines.len() {
            return Err(err(lines.len(), "missing 'end of trees'"));
        }
        if trees.is_empty() {
            return Err(err(i + 1, "the model has no trees"));
        }
        if trees.len() % per_iteration as usize != 0 {
            return Err(err(
                i + 1,
                format!("{} trees is not a whole number of iterations of {per_iteration}", trees.len()),
            ));
        }
        let ensemble = Ensemble::new(trees, bits, n_features, per_iteration as usize).map_err(|e| ModelError::Format {
            format: "LightGBM",
            reason: e.to_string(),
        })?;

        // The Python package appends the pandas categories of the training frame as the last line.
        let pandas: Option<Vec<Vec<serde_json::Value>>> = lines
            .iter()
            .rev()
            .take(3)
            .find_map(|l| l.strip_prefix("pandas_categorical:"))
            .and_then(|json| serde_json::from_str(json).ok());
        let mut pandas_categories = vec![None; n_features];
        if let Some(lists) = pandas.filter(|l| !l.is_empty()) {
            let cat_features: Vec<usize> = (0..n_features)
                .filter(|f| categorical.get(*f).copied().unwrap_or(false))
                .collect();
            for (f, list) in cat_features.into_iter().zip(lists) {
                pandas_categories[f] = Some(list);
            }
        }
        Ok(LightGbm {
            ensemble,
            per_iteration: per_iteration as usize,
            objective,
            average_output,
            feature_names,
            pandas_categories,
        })
    }

    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// The category list of a feature trained from a pandas `category` column.
    pub fn pandas_categories(&self, feature: usize) -> Option<&[serde_json::Value]> {
        self.pandas_categories.get(feature)?.as_deref()
    }

    /// `Booster.predict(row, raw_score=True)`: the summed tree outputs, one per class.
    pub fn predict_raw(&self, row: &[f64], out: &mut [f64]) {
        let mut clean = [0.0f64; 64];
        let mut heap;
        let x: &mut [f64] = if row.len() <= clean.len() {
            &mut clean[..row.len()]
        } else {
            heap = vec![0.0; row.len()];
            &mut heap
        };
        // LightGBM's C API drops values within ±1e-35 (they read as +0.0).
        for (dst, &v) in x.iter_mut().zip(row) {
            *dst = if v.is_nan() || v.abs() > ZERO_THRESHOLD { v } else { 0.0 };
        }
        out.iter_mut().for_each(|o| *o = 0.0);
        self.ensemble.accumulate(x, out);
    }

    /// `Booster.predict(row)`: raw scores, averaged for random forests, through the objective's transform.
    pub fn predict_transformed(&self, row: &[f64], out: &mut [f64]) {
        self.predict_raw(row, out);
        if self.average_output {
            let iterations = (self.ensemble.n_trees() / self.per_iteration) as f64;
            out.iter_mut().for_each(|o| *o /= iterations);
        }
        self.objective.apply(out);
    }
}

fn parse_tree(block: &Block, output: u32, bits: &mut Vec<u32>) -> Result<Tree, ModelError> {
    let n_leaves = block.int("num_leaves")?;
    if !(1..=1_000_000).contains(&n_leaves) {
        return Err(err(block.start, format!("bad num_leaves {n_leaves}")));
    }
    let n_leaves = n_leaves as usize;
    if block.get("is_linear").is_some_and(|(v, _)| v.trim() == "1") {
        return Err(err(
            block.start,
            "linear trees (linear_tree=true) are not supported; retrain without linear_tree",
        ));
    }
    let leaf_values: Vec<f64> = block.array_of_len("leaf_value", n_leaves)?;
    let leaves = leaf_values.into_iter().map(|v| vec![(output, v)]).collect();
    if n_leaves == 1 {
        return Ok(Tree { nodes: Vec::new(), leaves });
    }
    let n = n_leaves - 1;
    let features: Vec<u32> = block.array_of_len("split_feature", n)?;
    let thresholds: Vec<f64> = block.array_of_len("threshold", n)?;
    let decision: Vec<i16> = match block.get("decision_type") {
        None => vec![0; n],
        Some(_) => block.array_of_len("decision_type", n)?,
    };
    let left: Vec<i64> = block.array_of_len("left_child", n)?;
    let right: Vec<i64> = block.array_of_len("right_child", n)?;
    let num_cat = block.int("num_cat")?;
    let (boundaries, words): (Vec<u32>, Vec<u32>) = if num_cat > 0 {
        let b: Vec<u32> = block.array_of_len("cat_boundaries", num_cat as usize + 1)?;
        let w: Vec<u32> = block.array("cat_threshold")?;
        if b.windows(2).any(|p| p[0] > p[1]) || b.last().copied().unwrap_or(0) as usize != w.len() {
            let line = block.get("cat_boundaries").map(|(_, l)| l).unwrap_or(block.start);
            return Err(err(line, "cat_boundaries do not match cat_threshold"));
        }
        (b, w)
    } else {
        (Vec::new(), Vec::new())
    };
    let offset = bits.len() as u32;
    bits.extend_from_slice(&words);
    let line_of = |key: &str| block.get(key).map(|(_, l)| l).unwrap_or(block.start);
    let mut nodes = Vec::with_capacity(n);
    for k in 0..n {
        let dt = decision[k];
        let rule = if dt & 1 == 1 {
            let t = thresholds[k];
            let set = t as usize;
            if t < 0.0 || t.fract() != 0.0 || set + 1 >= boundaries.len() {
                return Err(err(line_of("threshold"), format!("node {k}: no category set {t}")));
            }
            Rule::InBitset {
                start: offset + boundaries[set],
                len: boundaries[set + 1] - boundaries[set],
            }
        } else {
            let missing = match (dt >> 2) & 3 {
                0 => Missing::None,
                1 => Missing::Zero,
                2 => Missing::NaN,
                other => return Err(err(line_of("decision_type"), format!("node {k}: missing type {other}"))),
            };
            Rule::LessOrEqual {
                missing,
                default_left: dt & 2 == 2,
            }
        };
        nodes.push(Node {
            feature: features[k],
            threshold: thresholds[k],
            rule,
            left: child(left[k], line_of("left_child"))?,
            right: child(right[k], line_of("right_child"))?,
        });
    }
    Ok(Tree { nodes, leaves })
}

impl Predictor for LightGbm {
    fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    fn output_kind(&self) -> OutputKind {
        match self.objective {
            Objective::Binary { .. } => OutputKind::Classes(2),
            o if o.is_classification() => OutputKind::Classes(self.per_iteration),
            _ => OutputKind::Values(self.per_iteration),
        }
    }

    fn category_code(&self, feature: usize, value: &str) -> Option<f64> {
        let cats = self.pandas_categories(feature)?;
        Some(
            cats.iter()
                .position(|c| c.as_str() == Some(value) || (c.is_number() && c.as_f64() == value.parse::<f64>().ok()))
                .map(|p| p as f64)
                .unwrap_or(f64::NAN),
        )
    }

    fn predict(&self, rows: &[f64], n_rows: usize) -> Result<Output, ModelError> {
        let width = self.ensemble.n_features();
        if rows.len() != n_rows * width {
            return Err(ModelError::Shape(format!(
                "expected {n_rows} rows of {width} features, got {} values",
                rows.len()
            )));
        }
        let k = self.per_iteration;
        let binary = matches!(self.objective, Objective::Binary { .. });
        let per_row = if binary { 2 } else { k };
        let mut values = vec![0.0; n_rows * per_row];
        let mut scores = vec![0.0; k];
        for (r, row) in rows.chunks_exact(width).enumerate() {
            self.predict_transformed(row, &mut scores);
            let dst = &mut values[r * per_row..(r + 1) * per_row];
            if binary {
                // Both classes' probabilities: P(0) = 1 - P(1).
                dst[0] = 1.0 - scores[0];
                dst[1] = scores[0];
            } else {
                dst.copy_from_slice(&scores);
            }
        }
        Ok(Output {
            n_rows,
            per_row,
            values,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// A hand-written binary model: one categorical split (categories {2, 3} left) then a numerical split with
    /// NaN going left.
    pub const SMALL: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
max_feature_idx=1\nobjective=binary sigmoid:1\nfeature_names=color size\nfeature_infos=0:1:2:3 [0:10]\n\
tree_sizes=1\n\nTree=0\nnum_leaves=3\nnum_cat=1\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=0 5.5\n\
decision_type=1 10\nleft_child=-1 -2\nright_child=1 -3\nleaf_value=1.5 -0.5 0.25\nleaf_weight=1 1 1\n\
leaf_count=1 1 1\ninternal_value=0 0\ninternal_weight=0 0\ninternal_count=3 2\ncat_boundaries=0 1\n\
cat_threshold=12\nis_linear=0\nshrinkage=1\n\n\nend of trees\n\nfeature_importances:\n\n\
parameters:\nend of parameters\n\npandas_categorical:[[\"blue\", \"green\", \"red\", \"zz\"]]\n";
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::tests_support::SMALL;

    fn raw(m: &LightGbm, row: &[f64]) -> f64 {
        let mut out = [0.0];
        m.predict_raw(row, &mut out);
        out[0]
    }

    #[test]
    fn small_model_follows_lightgbm_rules() {
        let m = LightGbm::parse(SMALL).unwrap();
        assert_eq!(raw(&m, &[2.0, 100.0]), 1.5); // red: in {2, 3}
        assert_eq!(raw(&m, &[0.0, 3.0]), -0.5); // blue, size <= 5.5
        assert_eq!(raw(&m, &[0.0, f64::NAN]), -0.5); // NaN takes the default (left)
        assert_eq!(raw(&m, &[f64::NAN, 9.0]), 0.25); // NaN category goes right
        assert_eq!(m.category_code(0, "zz"), Some(3.0));
        assert!(m.category_code(0, "purple").unwrap().is_nan());
        let out = m.predict(&[2.0, 0.0], 1).unwrap();
        let p = 1.0 / (1.0 + (-1.5f64).exp());
        assert_eq!(out.values, vec![1.0 - p, p]);
    }

    #[test]
    fn malformed_models_name_the_line() {
        let cases = [
            ("", "expected 'tree'"),
            (&SMALL.replace("num_class=1\n", ""), "missing 'num_class'"),
            (&SMALL.replace("left_child=-1 -2", "left_child=-1"), "'left_child' has 1 values"),
            (&SMALL.replace("right_child=1 -3", "right_child=0 -3"), "invalid child"),
            (&SMALL.replace("split_feature=0 1", "split_feature=0 7"), "tests feature 7"),
            (&SMALL.replace("objective=binary", "objective=magic"), "unknown objective"),
            (&SMALL.replace("end of trees", "the end"), "expected 'Tree='"),
            (&SMALL.replace("threshold=0 5.5", "threshold=3 5.5"), "no category set"),
            (&SMALL.replace("is_linear=0", "is_linear=1"), "linear trees"),
        ];
        for (text, needle) in cases {
            let e = LightGbm::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
