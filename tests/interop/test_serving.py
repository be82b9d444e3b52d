"""Models trained by the real `lightgbm`, served by `orchard serve` and by the gateway of `orchard server`.

Predictions must equal `Booster.predict` to 1e-9 on held-out rows (binary, multiclass, regression; numerical
and categorical splits; missing values), through every protocol: `/predict`, MLflow's `/invocations`
(dataframe_split, dataframe_records, instances, inputs, CSV) and the Open Inference Protocol v2 — the latter
also through a real OIP client (`tritonclient[http]`). Bad input gets a 4xx naming what was wrong."""

from __future__ import annotations

import json
import pathlib
import socket
import subprocess

import numpy as np
import pandas as pd
import pytest
import requests

from conftest import BIN, OrchardServer
from iris_model import write_iris_model

TOL = 1e-9


class ModelServer:
    """One `orchard serve` process on a free port."""

    def __init__(self, workdir: pathlib.Path, model_uri: str, *args: str, env=None):
        import os

        self.proc = subprocess.Popen(
            [BIN, "serve", "-m", model_uri, "--port", "0", *args],
            cwd=workdir, stdout=subprocess.PIPE, stderr=open(workdir / "serve.log", "ab"), text=True,
            env={**os.environ, **(env or {})},
        )
        line = self.proc.stdout.readline()
        if not line.startswith("Orchard model server listening on "):
            self.proc.kill()
            raise RuntimeError(f"orchard serve did not start: {line!r}\n{(workdir / 'serve.log').read_text()}")
        self.url = line.rsplit(" ", 1)[-1].strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=30, **kw)


def make_data(kind: str, n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(size=n) * 3,
        "c": rng.integers(0, 6, size=n).astype(float),  # used as an integer-coded categorical feature
        "d": rng.uniform(-1, 1, size=n),
    })
    # Missing values in training and in the held-out rows.
    x.loc[rng.random(n) < 0.1, "a"] = np.nan
    x.loc[rng.random(n) < 0.05, "d"] = np.nan
    score = x["a"].fillna(0) * 1.5 - x["b"] * 0.4 + (x["c"] % 2) * 1.2 + x["d"].fillna(0.5)
    if kind == "binary":
        y = (score + rng.normal(size=n) * 0.3 > 0).astype(int)
    elif kind == "multiclass":
        y = np.digitize(score, [-1.0, 1.0])
    else:
        y = score + rng.normal(size=n) * 0.1
    return x, y


def train(kind: str, path: pathlib.Path):
    import lightgbm as lgb

    x, y = make_data(kind)
    params = {"verbose": -1, "seed": 7, "num_leaves": 15, "min_data_in_leaf": 5}
    if kind == "binary":
        params["objective"] = "binary"
    elif kind == "multiclass":
        params.update(objective="multiclass", num_class=3)
    else:
        params["objective"] = "regression"
    train_set = lgb.Dataset(x.iloc[:450], label=y[:450], categorical_feature=["c"])
    booster = lgb.train(params, train_set, num_boost_round=30)
    booster.save_model(str(path))
    held_out = x.iloc[450:].reset_index(drop=True)
    return booster, held_out


def as_records(df: pd.DataFrame):
    """JSON rows, NaN written as null (a missing value, as pandas reads it back)."""
    return json.loads(df.to_json(orient="records"))


def jsonable(values):
    """Nested lists with NaN replaced by None (JSON has no NaN)."""
    if isinstance(values, list):
        return [jsonable(v) for v in values]
    return None if isinstance(values, float) and np.isnan(values) else values


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_lightgbm_predictions_match_python(tmp_path, kind):
    booster, held = train(kind, tmp_path / "model.txt")
    want = booster.predict(held)
    assert held.isna().any(axis=1).sum() > 10  # missing values take LightGBM's default directions
    server = ModelServer(tmp_path, str(tmp_path / "model.txt"))
    try:
        columns, data = list(held.columns), jsonable(held.values.tolist())
        for body in [
            {"dataframe_split": {"columns": columns, "data": data}},
            {"dataframe_records": as_records(held)},
            {"instances": data},
            {"inputs": {c: jsonable(held[c].tolist()) for c in columns}},
        ]:
            r = server.post("/invocations", json=body)
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(np.array(r.json()["predictions"]), want, rtol=0, atol=TOL, err_msg=str(list(body)))

        # CSV as pandas writes it: NaN as an empty cell.
        r = server.post("/invocations", data=held.to_csv(index=False), headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(np.array(r.json()["predictions"]), want, rtol=0, atol=TOL)

        r = server.post("/v2/models/model/infer", json={"inputs": [
            {"name": "x", "shape": list(held.shape), "datatype": "FP64", "data": jsonable(held.values.ravel().tolist())}]})
        assert r.status_code == 200, r.text
        out = {o["name"]: o for o in r.json()["outputs"]}
        if kind == "regression":
            np.testing.assert_allclose(out["predict"]["data"], want, rtol=0, atol=TOL)
        else:
            probs = np.array(out["probabilities"]["data"]).reshape(out["probabilities"]["shape"])
            np.testing.assert_allclose(probs[:, 1] if kind == "binary" else probs, want, rtol=0, atol=TOL)

        r = server.post("/predict", json=as_records(held.head(3)))
        body = r.json()
        assert r.status_code == 200 and len(body["request_id"]) == 36
        for p, w in zip(body["predictions"], want[:3]):
            if kind == "regression":
                assert abs(p["prediction"] - w) <= TOL
            else:
                assert abs(p["probabilities"]["1"] - (w if kind == "binary" else w[1])) <= TOL
    finally:
        server.stop()


def test_pandas_categorical_strings(tmp_path):
    import lightgbm as lgb

    rng = np.random.default_rng(3)
    n = 500
    x = pd.DataFrame({
        "size": rng.normal(size=n),
        "color": pd.Categorical(rng.choice(["blue", "green", "red", "zz"], size=n)),
    })
    y = (x["size"] + (x["color"] == "red") * 1.5 > 0.3).astype(int)
    booster = lgb.train({"objective": "binary", "verbose": -1, "seed": 1, "min_data_per_group": 5,
                         "cat_smooth": 1}, lgb.Dataset(x, label=y), num_boost_round=20)
    booster.save_model(str(tmp_path / "cat.txt"))
    probe = pd.DataFrame({"size": [0.1, -0.2, 0.5, 0.0], "color": pd.Categorical(["red", "blue", "zz", "green"],
                                                                                  categories=["blue", "green", "red", "zz"])})
    want = booster.predict(probe)
    server = ModelServer(tmp_path, str(tmp_path / "cat.txt"))
    try:
        r = server.post("/invocations", json={"dataframe_records": [
            {"size": float(s), "color": str(c)} for s, c in zip(probe["size"], probe["color"])]})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["predictions"], want, rtol=0, atol=TOL)
        # An unseen category is missing (NaN), as pandas' codes make it.
        unseen = booster.predict(pd.DataFrame({"size": [0.1], "color": pd.Categorical([None], categories=["blue", "green", "red", "zz"])}))
        r = server.post("/invocations", json={"dataframe_records": [{"size": 0.1, "color": "purple"}]})
        np.testing.assert_allclose(r.json()["predictions"], unseen, rtol=0, atol=TOL)
    finally:
        server.stop()


def iris_model_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """An MLflow-style model directory with a feature spec: nested request fields, a derived column, labels."""
    d = tmp_path / "iris-model"
    booster, x = write_iris_model(d, rounds=20)
    return d, booster, x


def test_predict_with_feature_spec_nested_fields_and_bad_input(tmp_path):
    d, booster, x = iris_model_dir(tmp_path)
    server = ModelServer(tmp_path, str(d), "--max-request-bytes", "4096")
    try:
        r = server.post("/predict", json={"sepal": {"length": 5.1, "width": 3.5}, "petal": {"length": 1.4, "width": 0.2}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["flower"] == "setosa"
        want = booster.predict(pd.DataFrame([[5.1, 3.5, 1.4, 0.2, 5.1 * 3.5]], columns=x.columns))[0]
        np.testing.assert_allclose([body["probabilities"][k] for k in ["setosa", "versicolor", "virginica"]], want, atol=TOL)
        assert r.headers["x-request-id"] == body["request_id"]

        many = [{"sepal": {"length": 6.7, "width": 3.0}, "petal": {"length": 5.2, "width": 2.3}}] * 3
        r = server.post("/predict", json=many)
        assert [p["flower"] for p in r.json()["predictions"]] == ["virginica"] * 3

        ok = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
        cases = [
            ({k: v for k, v in ok.items() if k != "petal_width"}, 400, "missing field 'petal_width'"),
            ({**ok, "colour": 1}, 400, "unknown field 'colour'"),
            ({**ok, "petal_width": "wide"}, 400, "field 'petal_width' must be a number, got string"),
            ({**ok, "petal_width": True}, 400, "must be a number, got boolean"),
            ({**ok, "petal_width": [1]}, 400, "must be a single value"),
            ([], 400, "at least one row"),
            ("text", 400, "expected a JSON object"),
        ]
        for payload, status, needle in cases:
            r = server.post("/predict", json=payload)
            assert r.status_code == status and needle in r.json()["message"], (payload, r.text)
        for raw in [b"{not json", b'{"sepal_length": NaN}', b'{"sepal_length": 1e999}']:
            r = server.post("/predict", data=raw, headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and r.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE"), raw
        r = server.post("/predict", data=b"[" + b"1," * 5000 + b"1]", headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text
        r = server.post("/invocations", data="x", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        r = server.post("/invocations", json={"dataframe_split": {"columns": ["sepal_length"], "data": [[1.0]]}})
        assert r.status_code == 400 and "missing field" in r.json()["message"]
        r = server.post("/v2/models/other/infer", json={"inputs": []})
        assert r.status_code == 404 and "error" in r.json()

        assert requests.get(server.url + "/ping", timeout=5).status_code == 200
        assert requests.get(server.url + "/v2/health/ready", timeout=5).status_code == 200
        meta = requests.get(server.url + "/v2/models/iris-model", timeout=5).json()
        assert [i["name"] for i in meta["inputs"]] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        metrics = requests.get(server.url + "/metrics", timeout=5).text
        assert 'orchard_requests_total{route="/predict",status="200"} 2' in metrics
        assert 'orchard_requests_total{route="/predict",status="400"}' in metrics
        assert "orchard_request_duration_seconds_bucket" in metrics
        assert 'orchard_model_info{model="iris-model",version="1"} 1' in metrics
    finally:
        server.stop()
    # The prediction log holds every successful request, with its id, inputs and outputs.
    logs = list((tmp_path / "orchard-data" / "artifacts" / "predictions" / "iris-model").rglob("*.jsonl"))
    records = [json.loads(line) for f in logs for line in f.read_text().splitlines()]
    assert len([r for r in records if r["route"] == "/predict"]) == 2
    # Each record holds the request and the answer as they were sent, with the request id and the version.
    single = next(r for r in records if r["route"] == "/predict" and r["rows"] == 1)
    assert single["inputs"]["sepal"]["length"] == 5.1 and single["outputs"]["flower"] == "setosa"
    assert single["outputs"]["request_id"] == single["request_id"] and single["version"] == "1"
    assert all(r["latency_us"] > 0 for r in records)


def announce(url: str, path: str, length: int) -> str:
    """Sends only the headers of a POST announcing `length` bytes with `Expect: 100-continue`; the answer's head."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        return conn.recv(65536).decode(errors="replace")


def test_oversized_bodies_are_refused_from_their_headers_and_oip_values_fit_their_type(tmp_path):
    d, booster, x = iris_model_dir(tmp_path)
    server = ModelServer(tmp_path, str(d), "--max-request-bytes", "4096")
    try:
        for path in ["/predict", "/invocations", "/v2/models/iris-model/infer"]:
            head = announce(server.url, path, 10_000_000)
            assert head.startswith("HTTP/1.1 413"), (path, head[:200])
            assert "100 Continue" not in head, "the client must not be asked to upload it"
        assert announce(server.url, "/v2/models/iris-model/infer", 10_000_000).rstrip().endswith('"error":"the request body is larger than the limit of 4096 bytes"}')

        def infer(datatype, data):
            body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": datatype, "data": data}]}
            return server.post("/v2/models/iris-model/infer", json=body)

        assert infer("INT8", [5, 3, 1, 0]).status_code == 200
        for datatype, data in [("INT8", [1000, 3, 1, 0]), ("UINT8", [-1, 3, 1, 0]), ("INT32", [5.5, 3, 1, 0]), ("FP16", [1e6, 3, 1, 0])]:
            r = infer(datatype, data)
            assert r.status_code == 400 and f"out of range for {datatype}" in r.json()["error"], (datatype, r.text)
        r = requests.get(server.url + "/predict", timeout=5)
        assert r.status_code == 405 and r.json()["message"] == "Method GET is not allowed for /predict"
        r = requests.get(server.url + "/v2/models/iris-model/infer", timeout=5)
        assert r.status_code == 405 and "error" in r.json()
    finally:
        server.stop()


def test_open_inference_protocol_client(tmp_path):
    import tritonclient.http as httpclient

    d, booster, x = iris_model_dir(tmp_path)
    server = ModelServer(tmp_path, str(d))
    try:
        client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("iris-model")
        assert client.get_model_metadata("iris-model")["platform"] == "orchard-lightgbm"
        rows = x.iloc[[0, 60, 120], :4].to_numpy(dtype=np.float64)
        inp = httpclient.InferInput("x", list(rows.shape), "FP64")
        inp.set_data_from_numpy(rows, binary_data=False)
        result = client.infer("iris-model", [inp], outputs=[httpclient.InferRequestedOutput("probabilities", binary_data=False)])
        probs = result.as_numpy("probabilities")
        np.testing.assert_allclose(probs, booster.predict(x.iloc[[0, 60, 120]]), rtol=0, atol=TOL)
    finally:
        server.stop()


def test_gateway_serves_the_champion_and_follows_the_alias(backend_uri, tmp_path, monkeypatch):
    import mlflow

    server = OrchardServer(tmp_path, backend_uri).start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        mlflow.set_tracking_uri(server.url)
        # The fluent API remembers the experiment of an earlier test (on another server): choose one here.
        mlflow.set_experiment("gateway")
        d, booster, x = iris_model_dir(tmp_path)
        client = mlflow.MlflowClient(server.url)
        client.create_registered_model("iris")
        versions = []
        for i, rounds in enumerate([2, 20]):
            # Two versions that disagree on a borderline flower.
            import lightgbm as lgb
            from sklearn.datasets import load_iris

            b = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "seed": 1},
                          lgb.Dataset(x, label=load_iris().target), num_boost_round=rounds)
            b.save_model(str(d / "model.lgb"))
            with mlflow.start_run():
                mlflow.log_artifacts(str(d), artifact_path="model")
                run_id = mlflow.active_run().info.run_id
            versions.append((client.create_model_version("iris", f"runs:/{run_id}/model", run_id=run_id), b))
        row = {"sepal": {"length": 6.0, "width": 2.9}, "petal": {"length": 4.5, "width": 1.5}}
        frame = pd.DataFrame([[6.0, 2.9, 4.5, 1.5, 6.0 * 2.9]], columns=x.columns)

        r = requests.post(f"{server.url}/models/iris/predict", json=row, timeout=30)
        assert r.status_code == 404 and "@champion" in r.json()["message"]

        for mv, b in versions:
            client.set_registered_model_alias("iris", "champion", mv.version)
            r = requests.post(f"{server.url}/models/iris/predict", json=row, timeout=30)
            assert r.status_code == 200, r.text
            got = [r.json()["probabilities"][k] for k in ["setosa", "versicolor", "virginica"]]
            np.testing.assert_allclose(got, b.predict(frame)[0], rtol=0, atol=TOL)
        r = requests.post(f"{server.url}/models/iris/invocations", json={"instances": [[6.0, 2.9, 4.5, 1.5]]}, timeout=30)
        np.testing.assert_allclose(r.json()["predictions"][0], versions[1][1].predict(frame)[0], rtol=0, atol=TOL)
        r = requests.post(f"{server.url}/models/unknown/predict", json=row, timeout=30)
        assert r.status_code == 404
        r = requests.get(f"{server.url}/models/iris/predict", timeout=30)
        assert r.status_code == 405 and r.json()["message"] == "Method GET is not allowed for /models/iris/predict"
        metrics = requests.get(f"{server.url}/models/metrics", timeout=30).text
        assert 'orchard_model_info{model="iris",version="2"} 1' in metrics

        # `orchard serve` elsewhere, resolving the alias and fetching the files through the server's REST API.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        client.set_registered_model_alias("iris", "champion", versions[0][0].version)
        remote = ModelServer(elsewhere, "models:/iris@champion", env={"MLFLOW_TRACKING_URI": server.url})
        try:
            r = remote.post("/predict", json=row)
            got = [r.json()["probabilities"][k] for k in ["setosa", "versicolor", "virginica"]]
            np.testing.assert_allclose(got, versions[0][1].predict(frame)[0], rtol=0, atol=TOL)
            meta = requests.get(remote.url + "/v2/models/iris", timeout=10).json()
            assert meta["versions"] == [versions[0][0].version]
        finally:
            remote.stop()
        assert not (elsewhere / "orchard-data" / "orchard.db").exists()
    finally:
        server.stop()
