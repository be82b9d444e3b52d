//! ONNX-ML's TreeEnsembleClassifier and TreeEnsembleRegressor on Orchard's tree evaluator ([`crate::tree`]).
//!
//! The operators' attributes are parallel lists (`nodes_*` for the splits, `class_*` / `target_*` for the
//! leaf weights). They are turned into validated [`Ensemble`] trees once, at load; the aggregation and the
//! post-transforms follow onnxruntime's reference kernels, including their binary-classification conventions
//! (one score column turned into two), so that answers match what the model's author saw in Python.

use std::collections::{BTreeMap, HashMap};

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::Attrs;
use super::classes::{answer, answer_facts, answer_rules, logistic, parse_post, probit, transform, Labels, Post};
use super::ops::{f32_tensor, rows_cols, values_f64, Kernel};
use crate::tree::{Child, CompareOp, Ensemble, Node, Rule, Tree};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Debug)]
struct ClassifierInfo {
    labels: Labels,
    /// Two classes and every leaf weight on one of them: onnxruntime derives the second score.
    binary_case: bool,
    weights_all_positive: bool,
}

#[derive(Debug)]
pub(crate) struct TreeOp {
    ensemble: Ensemble,
    n_outputs: usize,
    base: Vec<f64>,
    post: Post,
    aggregate: Aggregate,
    classifier: Option<ClassifierInfo>,
}

fn parse_mode(s: &str) -> TractResult<Option<CompareOp>> {
    Ok(Some(match s {
        "BRANCH_LEQ" => CompareOp::Le,
        "BRANCH_LT" => CompareOp::Lt,
        "BRANCH_GTE" => CompareOp::Ge,
        "BRANCH_GT" => CompareOp::Gt,
        "BRANCH_EQ" => CompareOp::Eq,
        "BRANCH_NEQ" => CompareOp::Ne,
        "LEAF" => return Ok(None),
        other => bail!("unknown node mode {other:?}"),
    }))
}

/// Doubles from `<name>_as_tensor` when present (the double-precision form), else floats from `<name>`.
fn reals(ctx: &ParsingContext, a: &Attrs, name: &str) -> TractResult<Option<Vec<f64>>> {
    if let Some(t) = a.tensor(&format!("{name}_as_tensor")) {
        return Ok(Some(values_f64(&ctx.load_tensor(t)?)?));
    }
    a.floats(name)
}

fn required<T>(v: Option<T>, name: &str) -> TractResult<T> {
    v.ok_or_else(|| format_err!("missing attribute '{name}'"))
}

impl TreeOp {
    pub(crate) fn parse(ctx: &ParsingContext, node: &NodeProto, classifier: bool) -> TractResult<TreeOp> {
        let a = Attrs::new(node);
        let tree_ids = required(a.indices("nodes_treeids")?, "nodes_treeids")?;
        let node_ids = required(a.indices("nodes_nodeids")?, "nodes_nodeids")?;
        let features = required(a.indices("nodes_featureids")?, "nodes_featureids")?;
        let modes = required(a.strings("nodes_modes")?, "nodes_modes")?;
        let values = required(reals(ctx, &a, "nodes_values")?, "nodes_values")?;
        let trues = required(a.indices("nodes_truenodeids")?, "nodes_truenodeids")?;
        let falses = required(a.indices("nodes_falsenodeids")?, "nodes_falsenodeids")?;
        let n = tree_ids.len();
        let tracks = a.ints("nodes_missing_value_tracks_true")?.filter(|v| !v.is_empty()).unwrap_or(vec![0; n]);
        for (name, len) in [
            ("nodes_nodeids", node_ids.len()),
            ("nodes_featureids", features.len()),
            ("nodes_modes", modes.len()),
            ("nodes_values", values.len()),
            ("nodes_truenodeids", trues.len()),
            ("nodes_falsenodeids", falses.len()),
            ("nodes_missing_value_tracks_true", tracks.len()),
        ] {
            if len != n {
                bail!("'{name}' has {len} entries for {n} nodes");
            }
        }
        if n == 0 {
            bail!("the ensemble has no nodes");
        }
        let modes: Vec<Option<CompareOp>> = modes.iter().map(|m| parse_mode(m)).collect::<TractResult<_>>()?;

        let prefix = if classifier { "class" } else { "target" };
        let key = |s: &str| format!("{prefix}_{s}");
        let leaf_trees = required(a.indices(&key("treeids"))?, &key("treeids"))?;
        let leaf_nodes = required(a.indices(&key("nodeids"))?, &key("nodeids"))?;
        let leaf_ids = required(a.indices(&key("ids"))?, &key("ids"))?;
        let weights = required(reals(ctx, &a, &key("weights"))?, &key("weights"))?;
        let m = leaf_trees.len();
        if leaf_nodes.len() != m || leaf_ids.len() != m || weights.len() != m {
            bail!("the {prefix}_* attributes have different lengths");
        }

        let (n_outputs, info) = if classifier {
            let labels = match (a.ints("classlabels_int64s")?, a.strings("classlabels_strings")?) {
                (Some(v), _) if !v.is_empty() => Labels::Ints(v),
                (_, Some(v)) if !v.is_empty() => Labels::Strings(v),
                _ => bail!("a classifier needs classlabels_int64s or classlabels_strings"),
            };
            if labels.len() < 2 {
                bail!("a classifier needs at least two classes");
            }
            let mut classes: Vec<u32> = leaf_ids.clone();
            classes.sort_unstable();
            classes.dedup();
            let info = ClassifierInfo {
                binary_case: labels.len() == 2 && classes.len() == 1,
                weights_all_positive: weights.iter().all(|&w| w >= 0.0),
                labels,
            };
            (info.labels.len(), Some(info))
        } else {
            let targets = required(a.int("n_targets")?, "n_targets")?;
            let targets = usize::try_from(targets)
                .ok()
                .filter(|&t| (1..=super::attrs::MAX_WIDTH).contains(&t))
                .ok_or_else(|| format_err!("bad n_targets {targets}"))?;
            (targets, None)
        };
        let base = reals(ctx, &a, "base_values")?.unwrap_or_default();
        if !(base.is_empty() || base.len() == n_outputs || (info.is_some() && n_outputs == 2 && base.len() == 1)) {
            bail!("{} base values for {n_outputs} outputs", base.len());
        }
        let aggregate = match a.string("aggregate_function")?.as_deref().unwrap_or("SUM") {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => bail!("unknown aggregate_function {other:?}"),
        };
        let post = parse_post(a.string("post_transform")?)?;

        // Entries by tree, then by node id within it.
        let mut by_tree: BTreeMap<u32, HashMap<u32, usize>> = BTreeMap::new();
        for i in 0..n {
            if by_tree.entry(tree_ids[i]).or_default().insert(node_ids[i], i).is_some() {
                bail!("tree {} has node {} twice", tree_ids[i], node_ids[i]);
            }
        }
        let mut leaf_weights: HashMap<(u32, u32), Vec<(u32, f64)>> = HashMap::new();
        for j in 0..m {
            if leaf_ids[j] as usize >= n_outputs {
                bail!("a leaf weight is for output {} of {n_outputs}", leaf_ids[j]);
            }
            leaf_weights.entry((leaf_trees[j], leaf_nodes[j])).or_default().push((leaf_ids[j], weights[j]));
        }

        let mut trees = Vec::with_capacity(by_tree.len());
        let mut n_features = 0usize;
        for (&tree_id, entries) in &by_tree {
            let bad = |reason: String| format_err!("tree {tree_id}: {reason}");
            // The root is the one node no split points to.
            let mut pointed = std::collections::HashSet::new();
            for &i in entries.values() {
                if modes[i].is_some() {
                    pointed.insert(trues[i]);
                    pointed.insert(falses[i]);
                }
            }
            let roots: Vec<u32> = entries.keys().copied().filter(|id| !pointed.contains(id)).collect();
            let root = match roots.as_slice() {
                [r] => *r,
                _ => return Err(bad(format!("{} root nodes", roots.len()))),
            };
            let mut tree = Tree::default();
            let mut placed = 0usize;
            let mut stack: Vec<(usize, usize)> = Vec::new();
            let mut place = |id: u32, tree: &mut Tree, stack: &mut Vec<(usize, usize)>| -> TractResult<Child> {
                let &i = entries.get(&id).ok_or_else(|| bad(format!("a split points to missing node {id}")))?;
                placed += 1;
                if placed > entries.len() {
                    return Err(bad("a node is reached twice".into()));
                }
                Ok(match modes[i] {
                    None => {
                        tree.leaves.push(leaf_weights.get(&(tree_id, id)).cloned().unwrap_or_default());
                        Child::Leaf(tree.leaves.len() as u32 - 1)
                    }
                    Some(op) => {
                        tree.nodes.push(Node {
                            feature: features[i],
                            threshold: values[i],
                            // NaN fails every comparison but "not equal", unless it is sent to the true branch.
                            rule: Rule::Compare { op, nan_left: tracks[i] != 0 || op == CompareOp::Ne },
                            left: Child::Leaf(0),
                            right: Child::Leaf(0),
                        });
                        stack.push((tree.nodes.len() - 1, i));
                        Child::Node(tree.nodes.len() as u32 - 1)
                    }
                })
            };
            place(root, &mut tree, &mut stack)?;
            while let Some((at, i)) = stack.pop() {
                let left = place(trues[i], &mut tree, &mut stack)?;
                let right = place(falses[i], &mut tree, &mut stack)?;
                tree.nodes[at].left = left;
                tree.nodes[at].right = right;
                n_features = n_features.max(features[i] as usize + 1);
            }
            if placed != entries.len() {
                return Err(bad(format!(
                    "{} of its {} nodes cannot be reached from the root node {root}",
                    entries.len() - placed,
                    entries.len()
                )));
            }
            trees.push(tree);
        }
        let ensemble = Ensemble::new(trees, Vec::new(), n_features.max(1), n_outputs).map_err(|e| format_err!("{e}"))?;
        Ok(TreeOp { ensemble, n_outputs, base, post, aggregate, classifier: info })
    }

    /// One row's raw aggregate: per output, the score and whether any leaf wrote it.
    fn aggregate_row(&self, row: &[f64], scores: &mut [f64], has: &mut [bool]) {
        for t in 0..self.ensemble.n_trees() {
            let leaf = self.ensemble.leaf(t, row);
            for &(o, w) in self.ensemble.leaf_weights(t, leaf) {
                let (s, h) = (&mut scores[o as usize], &mut has[o as usize]);
                *s = match self.aggregate {
                    Aggregate::Sum | Aggregate::Average => *s + w,
                    Aggregate::Min if !*h || w < *s => w,
                    Aggregate::Max if !*h || w > *s => w,
                    _ => *s,
                };
                *h = true;
            }
        }
    }

    fn finish_regression(&self, scores: &mut [f64], has: &[bool]) {
        let n_trees = self.ensemble.n_trees() as f64;
        for (k, s) in scores.iter_mut().enumerate() {
            let base = self.base.get(k).copied().unwrap_or(0.0);
            let raw = if has[k] { *s } else { 0.0 };
            *s = match self.aggregate {
                Aggregate::Average => raw / n_trees + base,
                _ => raw + base,
            };
        }
        if scores.len() == 1 {
            // onnxruntime applies only PROBIT to a single target.
            if self.post == Post::Probit {
                scores[0] = probit(scores[0]);
            }
        } else {
            transform(self.post, scores);
        }
    }

    /// A classifier row: the class index and the scores (one per class).
    fn finish_classification(&self, info: &ClassifierInfo, scores: &mut Vec<f64>, has: &mut [bool]) -> usize {
        if self.n_outputs > 2 {
            for (k, b) in self.base.iter().enumerate() {
                scores[k] = if has[k] { scores[k] + b } else { *b };
                has[k] = true;
            }
            let mut best: Option<usize> = None;
            for k in 0..scores.len() {
                if has[k] && best.is_none_or(|b| scores[k] > scores[b]) {
                    best = Some(k);
                }
            }
            transform(self.post, scores);
            return best.unwrap_or(0);
        }
        // Two classes, after onnxruntime's binary conventions.
        let mut extra = -1;
        let mut single = false;
        match self.base.len() {
            2 => {
                if has[1] {
                    // onnxruntime's formula (base_values[0] unused, class 0's sum carried over).
                    scores[1] = self.base[1] + scores[0];
                    scores[0] = -scores[1];
                } else {
                    scores[1] += self.base[1];
                    scores[0] += self.base[0];
                }
            }
            1 => {
                scores[0] += self.base[0];
                single = !has[1];
            }
            _ => {
                extra = 3;
                single = !has[1];
            }
        }
        let positive = if !single && has[1] { scores[1] } else if has[0] { scores[0] } else { 0.0 };
        let class = if info.binary_case {
            let (cut, low, high) = if info.weights_all_positive { (0.5, 1, 0) } else { (0.0, 3, 2) };
            if positive > cut {
                extra = high;
                1
            } else {
                extra = low;
                0
            }
        } else {
            usize::from(positive > 0.0)
        };
        if single {
            let s = scores[0];
            *scores = match (self.post, extra) {
                (Post::Probit, _) => vec![probit(s), 0.0],
                (_, 0 | 1) => vec![1.0 - s, s],
                (Post::Logistic, 2 | 3) => vec![logistic(-s), logistic(s)],
                (_, 2) => vec![-s, s],
                (_, 3) => vec![s, -s],
                _ => vec![s, 0.0],
            };
        } else {
            transform(self.post, scores);
        }
        class
    }
}

impl Kernel for TreeOp {
    fn name(&self) -> &'static str { if self.classifier.is_some() { "TreeEnsembleClassifier" } else { "TreeEnsembleRegressor" } }

    fn n_outputs(&self) -> usize { 1 + usize::from(self.classifier.is_some()) }

    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, i: &'p [TensorProxy], o: &'p [TensorProxy]) -> InferenceResult {
        answer_rules(s, i, o, self.classifier.as_ref().map(|c| &c.labels), self.n_outputs)
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(answer_facts(inputs, self.classifier.as_ref().map(|c| &c.labels), self.n_outputs))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (rows, cols) = rows_cols(inputs[0].shape())?;
        if cols < self.ensemble.n_features() {
            bail!("the trees read {} features, the input has {cols}", self.ensemble.n_features());
        }
        let x = values_f64(&inputs[0])?;
        let k = self.n_outputs;
        let mut out = Vec::with_capacity(rows * k);
        let mut picks = Vec::with_capacity(rows);
        let mut has = vec![false; k];
        for r in 0..rows {
            let mut scores = vec![0.0; k];
            has.iter_mut().for_each(|h| *h = false);
            self.aggregate_row(&x[r * cols..(r + 1) * cols], &mut scores, &mut has);
            match &self.classifier {
                Some(info) => picks.push(self.finish_classification(info, &mut scores, &mut has)),
                None => self.finish_regression(&mut scores, &has),
            }
            out.extend_from_slice(&scores);
        }
        Ok(answer(self.classifier.as_ref().map(|c| &c.labels), &picks, f32_tensor(&[rows, k], &out)?))
    }
}
