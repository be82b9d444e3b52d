"""scikit-learn pipelines converted by the real `skl2onnx`, served by `orchard serve` (tract plus Orchard's
ONNX-ML operators), compared with the real `onnxruntime` on held-out rows to 1e-5.

The pipelines cover the operators skl2onnx emits for common tabular models: Scaler, Imputer, Normalizer,
Binarizer, OneHotEncoder/ArrayFeatureExtractor/FeatureVectorizer (ColumnTransformer), LinearClassifier,
LinearRegressor, TreeEnsembleClassifier, TreeEnsembleRegressor and ZipMap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import requests

from test_serving import ModelServer

TOL = 1e-5


def data(kind: str, n=400, seed=0, nan=False):
    rng = np.random.default_rng(seed)
    x = np.column_stack([
        rng.normal(size=n),
        rng.normal(size=n) * 3 + 1,
        rng.integers(0, 4, size=n).astype(float),
        rng.uniform(-1, 1, size=n),
    ]).astype(np.float32)
    score = x[:, 0] * 1.5 - x[:, 1] * 0.4 + (x[:, 2] == 2) * 1.2 + x[:, 3]
    if kind == "binary":
        y = (score + rng.normal(size=n) * 0.3 > 0).astype(np.int64)
    elif kind == "multiclass":
        y = np.array(["low", "mid", "high"])[np.digitize(score, [-1.0, 1.0])]
    else:
        y = score * 10 + rng.normal(size=n)
    if nan:
        x[rng.random(n) < 0.1, 0] = np.nan
        x[rng.random(n) < 0.1, 3] = np.nan
    return x, y


def pipelines():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier,
                                  RandomForestRegressor, ExtraTreesRegressor)
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Binarizer, Normalizer, OneHotEncoder, StandardScaler, MinMaxScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    def onehot():
        return ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), [2]),
                                  ("num", StandardScaler(), [0, 1, 3])])

    return {
        "scaler+logreg multiclass": ("multiclass", False, lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))),
        "scaler+logreg binary": ("binary", False, lambda: make_pipeline(StandardScaler(), LogisticRegression())),
        "scaler+forest multiclass": ("multiclass", False, lambda: make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0))),
        "tree binary": ("binary", False, lambda: DecisionTreeClassifier(max_depth=5, random_state=0)),
        "forest binary": ("binary", False, lambda: RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0)),
        "gbm binary": ("binary", False, lambda: GradientBoostingClassifier(n_estimators=30, random_state=0)),
        "gbm multiclass": ("multiclass", False, lambda: make_pipeline(MinMaxScaler(), GradientBoostingClassifier(n_estimators=20, random_state=0))),
        # (skl2onnx 1.20 cannot convert scikit-learn 1.9's HistGradientBoosting*: its missing-value flags are
        # written as booleans where ONNX wants integers.)
        "imputer+gbm binary": ("binary", True, lambda: make_pipeline(SimpleImputer(), GradientBoostingClassifier(n_estimators=20, random_state=0))),
        "scaler+linear regression": ("regression", False, lambda: make_pipeline(StandardScaler(), LinearRegression())),
        "normalizer+ridge": ("regression", False, lambda: make_pipeline(Normalizer(), Ridge())),
        "imputer+forest regression": ("regression", True, lambda: make_pipeline(SimpleImputer(strategy="median"), RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0))),
        "gbm regression": ("regression", False, lambda: GradientBoostingRegressor(n_estimators=40, random_state=0)),
        "extra trees + tree regression": ("regression", False, lambda: ExtraTreesRegressor(n_estimators=5, max_depth=4, random_state=0)),
        "tree regression": ("regression", False, lambda: DecisionTreeRegressor(max_depth=6, random_state=0)),
        "binarizer+logreg": ("binary", False, lambda: make_pipeline(Binarizer(threshold=0.2), LogisticRegression())),
        "onehot+logreg multiclass": ("multiclass", False, lambda: make_pipeline(onehot(), LogisticRegression(max_iter=500))),
    }


def convert(model, options=None):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    return to_onnx(model, initial_types=[("features", FloatTensorType([None, 4]))], options=options,
                   target_opset={"": 17, "ai.onnx.ml": 3})


def ort_run(onx, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"features": x})
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, outs))


def jsonable(values):
    return [None if isinstance(v, float) and np.isnan(v) else v for v in values]


def infer(server, x):
    r = server.post("/v2/models/model/infer", json={"inputs": [
        {"name": "features", "shape": list(x.shape), "datatype": "FP32",
         "data": jsonable(x.astype(np.float64).ravel().tolist())}]})
    assert r.status_code == 200, r.text
    return {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in r.json()["outputs"]}


PIPELINES = pipelines()


@pytest.mark.parametrize("name", list(PIPELINES))
def test_sklearn_pipeline_matches_onnxruntime(tmp_path, name):
    kind, nan, make = PIPELINES[name]
    x, y = data(kind, nan=nan)
    held, _ = data(kind, n=120, seed=1, nan=nan)
    model = make().fit(x, y)
    onx = convert(model)
    ops = {n.op_type for n in onx.graph.node}
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    want = ort_run(onx, held)

    server = ModelServer(tmp_path, str(tmp_path / "model.onnx"))
    try:
        got = infer(server, held)
        if kind == "regression":
            np.testing.assert_allclose(got["predict"].ravel(), want["variable"].ravel(), rtol=TOL, atol=TOL,
                                       err_msg=f"{name}: {sorted(ops)}")
        else:
            labels = list(model.classes_)
            probs = np.array([[row[c] for c in labels] for row in want["output_probability"]])
            np.testing.assert_allclose(got["probabilities"], probs, rtol=0, atol=TOL, err_msg=f"{name}: {sorted(ops)}")
            # The answer's class is onnxruntime's label, by name, through /predict.
            rows = [dict(zip([f"features_{i}" for i in range(4)], jsonable(r))) for r in held[:20].astype(float).tolist()]
            r = server.post("/predict", json=rows)
            assert r.status_code == 200, r.text
            assert [p["prediction"] for p in r.json()["predictions"]] == [str(v) for v in want["output_label"][:20]]
    finally:
        server.stop()


def test_mlflow_onnx_flavor_with_signature(tmp_path):
    """A model saved with `mlflow.onnx.save_model` and a DataFrame signature is served by column name."""
    import mlflow.onnx
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = data("multiclass")
    frame = pd.DataFrame(x, columns=["alpha", "beta", "gamma", "delta"])
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=8, random_state=0)).fit(x, y)
    onx = convert(model)
    mlflow.onnx.save_model(onx, tmp_path / "m", signature=infer_signature(frame, y))
    held, _ = data("multiclass", n=30, seed=2)
    want = ort_run(onx, held)

    server = ModelServer(tmp_path, str(tmp_path / "m"))
    try:
        meta = requests.get(server.url + "/v2/models/m", timeout=5).json()
        assert [i["name"] for i in meta["inputs"]] == ["alpha", "beta", "gamma", "delta"]
        rows = pd.DataFrame(held.astype(float), columns=frame.columns).to_dict(orient="records")
        r = server.post("/predict", json=rows)
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert [p["prediction"] for p in preds] == list(want["output_label"])
        for p, w in zip(preds, want["output_probability"]):
            for label, prob in w.items():
                assert abs(p["probabilities"][label] - prob) <= TOL

        r = server.post("/predict", json={**rows[0], "alpha": "x"})
        assert r.status_code == 400 and "'alpha' must be a number" in r.json()["message"]
        r = server.post("/predict", json={k: v for k, v in rows[0].items() if k != "delta"})
        assert r.status_code == 400 and "missing field 'delta'" in r.json()["message"]
    finally:
        server.stop()


def test_broken_onnx_files_are_refused_clearly(tmp_path):
    import subprocess
    from conftest import BIN

    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07this is not a model")
    r = subprocess.run([BIN, "serve", "-m", str(tmp_path / "bad.onnx"), "--port", "0"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "invalid ONNX model" in r.stderr, r.stderr
