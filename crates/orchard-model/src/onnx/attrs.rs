//! Reading a node's attributes by name, with the node named in every error.

use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Attrs<'a> {
        Attrs { node }
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    fn text(&self, bytes: &[u8], name: &str) -> TractResult<String> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format_err!("{} attribute '{name}' is not UTF-8", self.node.op_type))
    }

    pub fn float(&self, name: &str) -> TractResult<Option<f64>> {
        Ok(self.get(name).map(|a| a.f as f64))
    }

    pub fn int(&self, name: &str) -> TractResult<Option<i64>> {
        Ok(self.get(name).map(|a| a.i))
    }

    pub fn string(&self, name: &str) -> TractResult<Option<String>> {
        self.get(name).map(|a| self.text(&a.s, name)).transpose()
    }

    pub fn floats(&self, name: &str) -> TractResult<Option<Vec<f64>>> {
        Ok(self.get(name).map(|a| a.floats.iter().map(|&f| f as f64).collect()))
    }

    pub fn ints(&self, name: &str) -> TractResult<Option<Vec<i64>>> {
        Ok(self.get(name).map(|a| a.ints.clone()))
    }

    pub fn strings(&self, name: &str) -> TractResult<Option<Vec<String>>> {
        self.get(name)
            .map(|a| a.strings.iter().map(|s| self.text(s, name)).collect())
            .transpose()
    }

    pub fn tensor(&self, name: &str) -> Option<&'a TensorProto> {
        self.get(name).and_then(|a| a.t.as_ref())
    }

    /// A list of indices (node ids, feature ids, …): non-negative and below `u32::MAX`.
    pub fn indices(&self, name: &str) -> TractResult<Option<Vec<u32>>> {
        self.ints(name)?
            .map(|v| {
                v.into_iter()
                    .map(|i| {
                        u32::try_from(i)
                            .map_err(|_| format_err!("{} attribute '{name}' has a bad index {i}", self.node.op_type))
                    })
                    .collect()
            })
            .transpose()
    }
}

/// The widest row or answer a model may declare: a bound on what a crafted file can make Orchard allocate.
pub(crate) const MAX_WIDTH: usize = 1 << 20;
