"""Models Orchard does not run natively, served through `mlflow.pyfunc` in Python workers: LightGBM's
scikit-learn class (`LGBMClassifier`), a scikit-learn `Pipeline` and a custom `pyfunc` model, each logged with the
real `mlflow` client. Predictions must equal `mlflow.pyfunc.load_model(...).predict` exactly, through `/invocations`
(MLflow's own request formats and errors), `/predict` and the Open Inference Protocol v2; `orchard serve` says
which path a model takes; the gateway of `orchard server` serves the same way; the prediction log records them."""

from __future__ import annotations

import json
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from conftest import OrchardServer
from test_serving import ModelServer

PYTHON = sys.executable  # the test virtualenv: mlflow, scikit-learn and lightgbm are installed there


class Doubler(mlflow.pyfunc.PythonModel):
    """A custom model: prints (which must not disturb the worker) and answers a DataFrame."""

    def predict(self, context, model_input, params=None):
        print("predicting", len(model_input))
        return pd.DataFrame({"double": model_input["x"] * 2, "label": ["big" if v > 1 else "small" for v in model_input["x"]]})


def iris_like(n=150, seed=1):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"sepal_length": rng.normal(5.8, 0.8, n), "sepal_width": rng.normal(3.0, 0.4, n),
                      "petal_length": rng.normal(3.7, 1.7, n), "petal_width": rng.normal(1.2, 0.7, n)})
    y = np.digitize(x["petal_length"] + rng.normal(0, 0.3, n), [2.5, 4.8])
    return x, y


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Three models saved as MLflow model folders (with signatures), and the rows to ask them about."""
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("pyfunc-models")
    x, y = iris_like()
    held_out = x.iloc[:12].copy()
    lgbm = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, random_state=3).fit(x, y)
    mlflow.lightgbm.save_model(lgbm, root / "lgbm", input_example=held_out.iloc[:2])
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(x, y)
    mlflow.sklearn.save_model(pipe, root / "pipeline", input_example=held_out.iloc[:2])
    custom_in = pd.DataFrame({"x": [0.5, 1.5, 3.0]})
    # The class is pickled by value, as a user's notebook class is: the worker does not import this test module.
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    mlflow.pyfunc.save_model(root / "custom", python_model=Doubler(), input_example=custom_in)
    return {"lgbm": (root / "lgbm", held_out), "pipeline": (root / "pipeline", held_out), "custom": (root / "custom", custom_in)}


def expected(path, rows):
    return mlflow.pyfunc.load_model(str(path)).predict(rows)


@pytest.mark.parametrize("name", ["lgbm", "pipeline"])
def test_classifiers_answer_exactly_as_pyfunc(models, tmp_path, name):
    path, rows = models[name]
    want = [int(v) for v in expected(path, rows)]
    server = ModelServer(tmp_path, str(path), "--python", PYTHON)
    try:
        log = (tmp_path / "serve.log").read_text()
        assert "mlflow.pyfunc" in log and "native" not in log, f"the start-up line names the Python path: {log}"
        split = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
        r = server.post("/invocations", json=split)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": want}
        r = server.post("/invocations", data=rows.to_csv(index=False), headers={"Content-Type": "text/csv"})
        assert r.json() == {"predictions": want}
        records = rows.to_dict(orient="records")
        r = server.post("/predict", json=records)
        assert [p["prediction"] for p in r.json()["predictions"]] == want and r.json()["request_id"]
        assert {k for k in server.post("/predict", json=records[0]).json()} == {"request_id", "prediction"}
        v2 = {"inputs": [{"name": c, "datatype": "FP64", "shape": [len(rows)], "data": rows[c].tolist()} for c in rows.columns]}
        r = server.post(f"/v2/models/{path.name}/infer", json=v2)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [len(rows)], "data": want}]
        matrix = {"inputs": [{"name": "x", "datatype": "FP64", "shape": list(rows.shape), "data": rows.values.tolist()}]}
        r = server.post(f"/v2/models/{path.name}/infer", json=matrix)
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == want, "a matrix's columns are the signature's"
        meta = requests.get(f"{server.url}/v2/models/{path.name}").json()
        assert [i["name"] for i in meta["inputs"]] == list(rows.columns) and {i["datatype"] for i in meta["inputs"]} == {"FP64"}

        # MLflow's own errors, with its status codes.
        r = server.post("/invocations", json={"dataframe_split": {"columns": ["sepal_length"], "data": [[1.0]]}})
        assert r.status_code == 400 and r.json()["error_code"] in {"BAD_REQUEST", "INVALID_PARAMETER_VALUE"}, r.text
        r = server.post("/invocations", json={"rows": []})
        assert r.status_code == 400 and "dataframe_split" in r.json()["message"], r.text
        r = server.post("/predict", json=[1, 2])
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        metrics = requests.get(f"{server.url}/metrics").text
        assert 'orchard_predictions_total' in metrics
    finally:
        server.stop()


def test_a_custom_pyfunc_model_with_a_dataframe_answer(models, tmp_path):
    path, rows = models["custom"]
    want = expected(path, rows).to_dict(orient="records")
    server = ModelServer(tmp_path, str(path), "--python", PYTHON)
    try:
        r = server.post("/invocations", json={"dataframe_records": rows.to_dict(orient="records")})
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": want}, "the model's print went to the log, not into the answer"
        r = server.post("/predict", json={"x": 3.0})
        assert {k: v for k, v in r.json().items() if k != "request_id"} == {"double": 6.0, "label": "big"}
        r = server.post("/v2/models/custom/infer", json={"inputs": [{"name": "x", "datatype": "FP64", "shape": [3], "data": [0.5, 1.5, 3.0]}]})
        assert r.status_code == 200, r.text
        out = r.json()["outputs"][0]
        assert out["datatype"] == "BYTES" and [json.loads(v) for v in out["data"]] == want, "each row's JSON"
        assert "predicting 1" in (tmp_path / "serve.log").read_text()
    finally:
        server.stop()
    # Answered requests are in the prediction log, as for native models.
    logs = list((tmp_path / "orchard-data" / "artifacts" / "predictions" / "custom").rglob("*.jsonl"))
    records = [json.loads(line) for f in logs for line in f.read_text().splitlines()]
    assert sorted(r["route"] for r in records) == ["/invocations", "/predict", "/v2/infer"]
    single = next(r for r in records if r["route"] == "/predict")
    assert single["rows"] == 1 and single["outputs"]["double"] == 6.0 and single["inputs"] == {"x": 3.0}


def test_a_model_python_cannot_load_fails_at_start_with_the_reason(models, tmp_path):
    path, _ = models["pipeline"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text((path / "MLmodel").read_text())
    (broken / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(RuntimeError) as e:
        ModelServer(tmp_path, str(broken), "--python", PYTHON)
    assert "mlflow.pyfunc cannot load the model" in str(e.value)
    with pytest.raises(RuntimeError) as e:
        ModelServer(tmp_path, str(path), "--python", str(tmp_path / "no-such-python"))
    assert "cannot start the Python worker" in str(e.value)


def test_the_gateway_serves_a_registered_sklearn_pipeline(models, backend_uri, tmp_path, monkeypatch):
    path, rows = models["pipeline"]
    want = [int(v) for v in expected(path, rows)]
    server = OrchardServer(tmp_path, backend_uri, extra_args=["--python", PYTHON]).start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        mlflow.set_tracking_uri(server.url)
        # The fluent API remembers the experiment of an earlier test (on another server): choose one here.
        mlflow.set_experiment("pyfunc-gateway")
        with mlflow.start_run():
            from sklearn.pipeline import Pipeline  # noqa: F401 - the logged model is the saved one, reloaded

            model = mlflow.sklearn.load_model(str(path))
            mlflow.sklearn.log_model(model, name="model", registered_model_name="flowers", input_example=rows.iloc[:2])
        mlflow.MlflowClient(server.url).set_registered_model_alias("flowers", "champion", "1")
        r = requests.post(f"{server.url}/models/flowers/invocations", json={"dataframe_records": rows.to_dict(orient="records")})
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": want}
        r = requests.post(f"{server.url}/models/flowers/predict", json=rows.to_dict(orient="records"))
        assert [p["prediction"] for p in r.json()["predictions"]] == want
    finally:
        server.stop()
