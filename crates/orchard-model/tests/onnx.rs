//! ONNX graphs built here, node by node, run through `OnnxModel`: each ONNX-ML operator's semantics, the
//! choice of answer (ZipMap's labels), and malformed files refused without a panic.
//! (The same operators against the real onnxruntime on skl2onnx output: tests/interop/test_onnx.py.)

use orchard_model::onnx::OnnxModel;
use orchard_model::{OutputKind, Predictor};
use prost::Message;
use proptest::prelude::*;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

enum A {
    F(f32),
    I(i64),
    S(&'static str),
    Fs(Vec<f32>),
    Is(Vec<i64>),
    Ss(Vec<&'static str>),
}

fn attr(name: &str, v: A) -> AttributeProto {
    let mut a = AttributeProto { name: name.into(), ..Default::default() };
    match v {
        A::F(f) => (a.f, a.r#type) = (f, AttributeType::Float as i32),
        A::I(i) => (a.i, a.r#type) = (i, AttributeType::Int as i32),
        A::S(s) => (a.s, a.r#type) = (s.as_bytes().to_vec(), AttributeType::String as i32),
        A::Fs(f) => (a.floats, a.r#type) = (f, AttributeType::Floats as i32),
        A::Is(i) => (a.ints, a.r#type) = (i, AttributeType::Ints as i32),
        A::Ss(s) => {
            a.strings = s.iter().map(|s| s.as_bytes().to_vec()).collect();
            a.r#type = AttributeType::Strings as i32;
        }
    }
    a
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        domain: if ["Add", "Cast"].contains(&op) { String::new() } else { "ai.onnx.ml".into() },
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn value(name: &str, dt: DataType, cols: Option<i64>) -> ValueInfoProto {
    use tensor_shape_proto::{dimension::Value, Dimension};
    let mut dim = vec![Dimension { value: Some(Value::DimParam("N".into())), ..Default::default() }];
    if let Some(c) = cols {
        dim.push(Dimension { value: Some(Value::DimValue(c)), ..Default::default() });
    }
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: dt as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn model(inputs: Vec<ValueInfoProto>, nodes: Vec<NodeProto>, outputs: Vec<ValueInfoProto>) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![
            OperatorSetIdProto { domain: String::new(), version: 17 },
            OperatorSetIdProto { domain: "ai.onnx.ml".into(), version: 3 },
        ],
        graph: Some(GraphProto { node: nodes, input: inputs, output: outputs, name: "g".into(), ..Default::default() }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// One tree over two features: `x0 <= 0` (NaN goes to the true branch) → leaf 1, else `x1 < 1` → leaves 3 / 4.
fn tree_attrs(prefix: &str, leaves: Vec<(i64, i64, f32)>) -> Vec<AttributeProto> {
    let mut v = vec![
        attr("nodes_treeids", A::Is(vec![0; 5])),
        attr("nodes_nodeids", A::Is(vec![0, 1, 2, 3, 4])),
        attr("nodes_featureids", A::Is(vec![0, 0, 1, 0, 0])),
        attr("nodes_modes", A::Ss(vec!["BRANCH_LEQ", "LEAF", "BRANCH_LT", "LEAF", "LEAF"])),
        attr("nodes_values", A::Fs(vec![0.0, 0.0, 1.0, 0.0, 0.0])),
        attr("nodes_truenodeids", A::Is(vec![1, 0, 3, 0, 0])),
        attr("nodes_falsenodeids", A::Is(vec![2, 0, 4, 0, 0])),
        attr("nodes_missing_value_tracks_true", A::Is(vec![1, 0, 0, 0, 0])),
    ];
    let (nodes, (ids, weights)): (Vec<i64>, (Vec<i64>, Vec<f32>)) =
        leaves.iter().map(|&(n, i, w)| (n, (i, w))).unzip();
    v.push(attr(&format!("{prefix}_treeids"), A::Is(vec![0; nodes.len()])));
    v.push(attr(&format!("{prefix}_nodeids"), A::Is(nodes)));
    v.push(attr(&format!("{prefix}_ids"), A::Is(ids)));
    v.push(attr(&format!("{prefix}_weights"), A::Fs(weights)));
    v
}

fn regressor() -> Vec<u8> {
    let mut attrs = tree_attrs("target", vec![(1, 0, 10.0), (3, 0, 2.0), (4, 0, -1.0)]);
    attrs.push(attr("n_targets", A::I(1)));
    attrs.push(attr("base_values", A::Fs(vec![0.5])));
    model(
        vec![value("x", DataType::Float, Some(2))],
        vec![
            node("Scaler", &["x"], &["s"], vec![attr("offset", A::Fs(vec![1.0, 0.0])), attr("scale", A::Fs(vec![2.0, 1.0]))]),
            node("TreeEnsembleRegressor", &["s"], &["y"], attrs),
        ],
        vec![value("y", DataType::Float, Some(1))],
    )
}

fn predict(m: &OnnxModel, rows: &[[f64; 2]]) -> Vec<f64> {
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    m.predict(&flat, rows.len()).unwrap().values
}

#[test]
fn scaler_then_tree_regressor() {
    let m = OnnxModel::from_bytes(&regressor()).unwrap();
    assert_eq!(m.feature_names(), ["x_0", "x_1"]);
    assert_eq!(m.output_kind(), OutputKind::Values(1));
    // (x0 - 1) * 2 <= 0 → 10 + 0.5; else x1 < 1 → 2.5, else -0.5; NaN follows the true branch.
    let got = predict(&m, &[[1.0, 5.0], [0.5, 5.0], [2.0, 0.0], [2.0, 1.0], [f64::NAN, 9.0]]);
    assert_eq!(got, vec![10.5, 10.5, 2.5, -0.5, 10.5]);
}

#[test]
fn classifier_softmax_with_zipmap_labels() {
    let mut attrs = tree_attrs("class", vec![(1, 0, 2.0), (3, 1, 2.0), (4, 2, 2.0), (4, 0, 1.0)]);
    attrs.push(attr("classlabels_strings", A::Ss(vec!["a", "b", "c"])));
    attrs.push(attr("post_transform", A::S("SOFTMAX")));
    let bytes = model(
        vec![value("x", DataType::Float, Some(2))],
        vec![
            node("TreeEnsembleClassifier", &["x"], &["label", "scores"], attrs),
            node("ZipMap", &["scores"], &["probabilities"], vec![attr("classlabels_strings", A::Ss(vec!["a", "b", "c"]))]),
        ],
        vec![value("label", DataType::String, None), value("probabilities", DataType::Float, Some(3))],
    );
    let m = OnnxModel::from_bytes(&bytes).unwrap();
    assert_eq!(m.output_kind(), OutputKind::Classes(3));
    assert_eq!(m.class_labels().unwrap(), ["a", "b", "c"]);
    let got = predict(&m, &[[-1.0, 0.0], [1.0, 0.0], [1.0, 2.0]]);
    let softmax = |s: [f64; 3]| {
        let e: Vec<f64> = s.iter().map(|v| v.exp()).collect();
        let sum: f64 = e.iter().sum();
        e.into_iter().map(move |v| v / sum)
    };
    let want: Vec<f64> = [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 0.0, 2.0]].into_iter().flat_map(softmax).collect();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn binary_classifier_with_one_score_column() {
    // Gradient boosting's shape: every weight on class 0, a base value, LOGISTIC → [σ(-s), σ(s)].
    let mut attrs = tree_attrs("class", vec![(1, 0, 1.5), (3, 0, -0.5), (4, 0, -2.0)]);
    attrs.push(attr("classlabels_int64s", A::Is(vec![0, 1])));
    attrs.push(attr("base_values", A::Fs(vec![0.25])));
    attrs.push(attr("post_transform", A::S("LOGISTIC")));
    let bytes = model(
        vec![value("x", DataType::Float, Some(2))],
        vec![node("TreeEnsembleClassifier", &["x"], &["label", "probabilities"], attrs)],
        vec![value("label", DataType::Int64, None), value("probabilities", DataType::Float, Some(2))],
    );
    let m = OnnxModel::from_bytes(&bytes).unwrap();
    assert_eq!(m.output_kind(), OutputKind::Classes(2));
    let got = predict(&m, &[[-1.0, 0.0], [1.0, 3.0]]);
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let want = [sig(-1.75), sig(1.75), sig(1.75), sig(-1.75)];
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn imputer_binarizer_and_one_hot_encoder() {
    let bytes = model(
        vec![value("x", DataType::Float, Some(2))],
        vec![
            node("Imputer", &["x"], &["i"], vec![attr("imputed_value_floats", A::Fs(vec![7.0, 3.0])), attr("replaced_value_float", A::F(f32::NAN))]),
            node("Binarizer", &["i"], &["b"], vec![attr("threshold", A::F(2.5))]),
            node("FeatureVectorizer", &["b", "i"], &["y"], vec![attr("inputdimensions", A::Is(vec![2, 2]))]),
        ],
        vec![value("y", DataType::Float, Some(4))],
    );
    let m = OnnxModel::from_bytes(&bytes).unwrap();
    assert_eq!(m.output_kind(), OutputKind::Values(4));
    let got = predict(&m, &[[f64::NAN, 1.0], [2.0, f64::NAN]]);
    assert_eq!(got, vec![1.0, 0.0, 7.0, 1.0, 0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn integer_inputs_refuse_fractions() {
    let bytes = model(
        vec![value("code", DataType::Int64, None)],
        vec![node(
            "LabelEncoder",
            &["code"],
            &["y"],
            vec![attr("keys_int64s", A::Is(vec![1, 2])), attr("values_floats", A::Fs(vec![0.5, 1.5])), attr("default_float", A::F(-1.0))],
        )],
        vec![value("y", DataType::Float, None)],
    );
    let m = OnnxModel::from_bytes(&bytes).unwrap();
    assert_eq!(m.feature_names(), ["code"]);
    assert_eq!(m.predict(&[1.0, 2.0, 5.0], 3).unwrap().values, vec![0.5, 1.5, -1.0]);
    let e = m.predict(&[1.5], 1).unwrap_err().to_string();
    assert!(e.contains("'code' must be an integer"), "{e}");

    let one_hot = |zeros: i64| {
        model(
            vec![value("code", DataType::Int64, None)],
            vec![node("OneHotEncoder", &["code"], &["y"], vec![attr("cats_int64s", A::Is(vec![1, 3, 7])), attr("zeros", A::I(zeros))])],
            vec![value("y", DataType::Float, Some(3))],
        )
    };
    let m = OnnxModel::from_bytes(&one_hot(1)).unwrap();
    assert_eq!(m.predict(&[3.0, 7.0, 4.0], 3).unwrap().values, vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    let m = OnnxModel::from_bytes(&one_hot(0)).unwrap();
    let e = m.predict(&[4.0], 1).unwrap_err().to_string();
    assert!(e.contains("not one of the encoder's categories"), "{e}");
}

#[test]
fn malformed_trees_and_files_are_errors() {
    // A split pointing back at the root.
    let mut attrs = tree_attrs("target", vec![(1, 0, 1.0)]);
    attrs[5] = attr("nodes_truenodeids", A::Is(vec![0, 0, 3, 0, 0]));
    attrs.push(attr("n_targets", A::I(1)));
    let bytes = model(
        vec![value("x", DataType::Float, Some(2))],
        vec![node("TreeEnsembleRegressor", &["x"], &["y"], attrs)],
        vec![value("y", DataType::Float, Some(1))],
    );
    let e = OnnxModel::from_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("invalid ONNX model") && e.contains("root"), "{e}");

    let e = OnnxModel::from_bytes(b"\x08\x07not a model").unwrap_err().to_string();
    assert!(e.contains("invalid ONNX model"), "{e}");

    let strings = model(
        vec![value("s", DataType::String, None)],
        vec![node("Cast", &["s"], &["y"], vec![attr("to", A::I(1))])],
        vec![value("y", DataType::Float, None)],
    );
    let e = OnnxModel::from_bytes(&strings).unwrap_err().to_string();
    assert!(e.contains("input 's'") && e.contains("STRING"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any bytes, and any corruption of a valid model, give a model or an error — never a panic.
    #[test]
    fn corrupted_models_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let mut bytes = regressor();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(1));
        if let Ok(m) = OnnxModel::from_bytes(&bytes) {
            let width = m.feature_names().len();
            let _ = m.predict(&vec![0.5; width * 2], 2);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = OnnxModel::from_bytes(&bytes);
    }
}
