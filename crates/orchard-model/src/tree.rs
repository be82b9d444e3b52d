//! One tree-ensemble evaluator for every format that stores decision trees (LightGBM's text model today, the
//! ONNX-ML tree operators next): nodes test one feature against a threshold, leaves add weights to outputs.
//!
//! Trees are validated when built — every child index in range and deeper than its parent, every feature
//! below the row width, every bitset inside the bitset table — so evaluation can neither panic nor loop.

/// How a LightGBM numerical node treats missing values (`decision_type` bits 2–3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// NaN is read as 0.0 and compared.
    None,
    /// NaN and values within ±1e-35 take the default direction.
    Zero,
    /// Only NaN takes the default direction.
    NaN,
}

/// The test a node applies to its feature's value; `true` sends the row to the left child.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// LightGBM numerical split: `v <= threshold`, with its missing-value handling.
    LessOrEqual { missing: Missing, default_left: bool },
    /// LightGBM categorical split: the category (the value truncated to an integer) is in a bitset of 32-bit
    /// words `bits[start .. start + len]`; NaN and negative values go right.
    InBitset { start: u32, len: u32 },
    /// A comparison as ONNX's TreeEnsemble operators define them; NaN goes left when `nan_left`.
    Compare { op: CompareOp, nan_left: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// A child: another node of the same tree, or a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    Node(u32),
    Leaf(u32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub feature: u32,
    pub threshold: f64,
    pub rule: Rule,
    pub left: Child,
    pub right: Child,
}

/// One tree: its nodes (node 0 is the root; a tree of one leaf has none) and, per leaf, the (output, weight)
/// pairs it adds.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub leaves: Vec<Vec<(u32, f64)>>,
}

/// Why a tree is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TreeError {
    #[error("tree {tree}: {reason}")]
    Invalid { tree: usize, reason: String },
}

/// The values LightGBM treats as zero (`kZeroThreshold`, a float literal widened to double).
pub const ZERO_THRESHOLD: f64 = 1e-35f32 as f64;

fn is_zero(v: f64) -> bool {
    (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&v)
}

/// A validated ensemble: evaluating a row adds every tree's leaf weights into the outputs, tree by tree, in
/// order — the order LightGBM sums in, so the sums are bit-identical.
#[derive(Clone, Debug, PartialEq)]
pub struct Ensemble {
    trees: Vec<Tree>,
    bits: Vec<u32>,
    n_features: usize,
    n_outputs: usize,
}

impl Ensemble {
    pub fn new(
        trees: Vec<Tree>,
        bits: Vec<u32>,
        n_features: usize,
        n_outputs: usize,
    ) -> Result<Ensemble, TreeError> {
        for (t, tree) in trees.iter().enumerate() {
            let bad = |reason: String| TreeError::Invalid { tree: t, reason };
            if tree.leaves.is_empty() {
                return Err(bad("has no leaves".into()));
            }
            if tree.nodes.is_empty() && tree.leaves.len() != 1 {
                return Err(bad(format!("has {} leaves but no split", tree.leaves.len())));
            }
            for (i, node) in tree.nodes.iter().enumerate() {
                if node.feature as usize >= n_features {
                    return Err(bad(format!(
                        "node {i} tests feature {} but rows have {n_features}",
                        node.feature
                    )));
                }
                for child in [node.left, node.right] {
                    match child {
                        // Children deeper than their parent: evaluation always terminates.
                        Child::Node(c) if (c as usize) <= i || c as usize >= tree.nodes.len() => {
                            return Err(bad(format!("node {i} has an invalid child node {c}")))
                        }
                        Child::Leaf(l) if l as usize >= tree.leaves.len() => {
                            return Err(bad(format!("node {i} has an invalid leaf {l}")))
                        }
                        _ => {}
                    }
                }
                if let Rule::InBitset { start, len } = node.rule {
                    if start as usize + len as usize > bits.len() {
                        return Err(bad(format!("node {i} has a category set outside the table")));
                    }
                }
            }
            for (l, leaf) in tree.leaves.iter().enumerate() {
                if let Some((o, _)) = leaf.iter().find(|(o, _)| *o as usize >= n_outputs) {
                    return Err(bad(format!("leaf {l} writes output {o} of {n_outputs}")));
                }
            }
        }
        Ok(Ensemble {
            trees,
            bits,
            n_features,
            n_outputs,
        })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    fn goes_left(&self, node: &Node, v: f64) -> bool {
        match node.rule {
            Rule::LessOrEqual {
                missing,
                default_left,
            } => {
                let v = if v.is_nan() && missing != Missing::NaN { 0.0 } else { v };
                if (missing == Missing::Zero && is_zero(v)) || (missing == Missing::NaN && v.is_nan()) {
                    default_left
                } else {
                    v <= node.threshold
                }
            }
            Rule::InBitset { start, len } => {
                if v.is_nan() {
                    return false;
                }
                // Truncation toward zero (C's cast); out-of-range values saturate and land outside the set.
                let category = v as i32;
                if category < 0 {
                    return false;
                }
                let word = (category / 32) as u32;
                word < len && (self.bits[(start + word) as usize] >> (category % 32)) & 1 == 1
            }
            Rule::Compare { op, nan_left } => {
                if v.is_nan() {
                    return nan_left;
                }
                let t = node.threshold;
                match op {
                    CompareOp::Lt => v < t,
                    CompareOp::Le => v <= t,
                    CompareOp::Gt => v > t,
                    CompareOp::Ge => v >= t,
                    CompareOp::Eq => v == t,
                    CompareOp::Ne => v != t,
                }
            }
        }
    }

    /// The leaf a row reaches in one tree. `row` must have `n_features` values.
    pub fn leaf(&self, tree: usize, row: &[f64]) -> usize {
        let t = &self.trees[tree];
        if t.nodes.is_empty() {
            return 0;
        }
        let mut i = 0usize;
        loop {
            let node = &t.nodes[i];
            let next = if self.goes_left(node, row[node.feature as usize]) {
                node.left
            } else {
                node.right
            };
            match next {
                Child::Node(c) => i = c as usize,
                Child::Leaf(l) => return l as usize,
            }
        }
    }

    /// The (output, weight) pairs of one leaf.
    pub fn leaf_weights(&self, tree: usize, leaf: usize) -> &[(u32, f64)] {
        &self.trees[tree].leaves[leaf]
    }

    /// Adds every tree's contribution for `row` into `out` (length `n_outputs`), in tree order.
    pub fn accumulate(&self, row: &[f64], out: &mut [f64]) {
        debug_assert_eq!(row.len(), self.n_features);
        for (t, tree) in self.trees.iter().enumerate() {
            for &(o, w) in &tree.leaves[self.leaf(t, row)] {
                out[o as usize] += w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stump(rule: Rule, threshold: f64) -> Ensemble {
        let node = Node {
            feature: 0,
            threshold,
            rule,
            left: Child::Leaf(0),
            right: Child::Leaf(1),
        };
        let tree = Tree {
            nodes: vec![node],
            leaves: vec![vec![(0, -1.0)], vec![(0, 1.0)]],
        };
        Ensemble::new(vec![tree], vec![0b1100, 256], 1, 1).unwrap()
    }

    fn side(e: &Ensemble, v: f64) -> &'static str {
        if e.leaf(0, &[v]) == 0 {
            "L"
        } else {
            "R"
        }
    }

    #[test]
    fn lightgbm_missing_value_rules() {
        let none = stump(Rule::LessOrEqual { missing: Missing::None, default_left: false }, -1.0);
        assert_eq!(side(&none, f64::NAN), "R"); // NaN read as 0.0 > -1
        let zero = stump(Rule::LessOrEqual { missing: Missing::Zero, default_left: true }, -1.0);
        assert_eq!(side(&zero, 0.0), "L");
        assert_eq!(side(&zero, 1e-36), "L");
        assert_eq!(side(&zero, 2e-35), "R");
        assert_eq!(side(&zero, f64::NAN), "L");
        let nan = stump(Rule::LessOrEqual { missing: Missing::NaN, default_left: true }, -1.0);
        assert_eq!(side(&nan, f64::NAN), "L");
        assert_eq!(side(&nan, 0.0), "R");
        assert_eq!(side(&nan, f64::NEG_INFINITY), "L");
    }

    #[test]
    fn categorical_bitsets() {
        // Words [0b1100] hold categories {2, 3}.
        let cat = stump(Rule::InBitset { start: 0, len: 1 }, 0.0);
        for (v, s) in [(2.0, "L"), (3.9, "L"), (1.0, "R"), (-0.5, "R"), (-1.0, "R"), (f64::NAN, "R"), (1e10, "R"), (40.0, "R")] {
            assert_eq!(side(&cat, v), s, "{v}");
        }
        // Words [0b1100, 256] starting at word 0, two long: 40 is word 1 bit 8.
        let wide = stump(Rule::InBitset { start: 0, len: 2 }, 0.0);
        assert_eq!(side(&wide, 40.7), "L");
        assert_eq!(side(&wide, 64.0), "R");
    }

    #[test]
    fn malformed_trees_are_refused() {
        let node = |feature: u32, left: Child, right: Child| Node {
            feature,
            threshold: 0.0,
            rule: Rule::Compare { op: CompareOp::Le, nan_left: false },
            left,
            right,
        };
        let cyclic = Tree { nodes: vec![node(0, Child::Node(0), Child::Leaf(0))], leaves: vec![vec![(0, 1.0)]] };
        assert!(Ensemble::new(vec![cyclic], vec![], 1, 1).is_err());
        let wide = Tree { nodes: vec![node(3, Child::Leaf(0), Child::Leaf(1))], leaves: vec![vec![(0, 1.0)], vec![(2, 1.0)]] };
        assert!(Ensemble::new(vec![wide.clone()], vec![], 2, 3).is_err());
        assert!(Ensemble::new(vec![wide], vec![], 4, 2).is_err());
    }
}
