"""The real `mlflow` client against `orchard server`, on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
import pathlib
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException


def test_experiments(mlflow_client):
    exp = mlflow.set_experiment("iris")  # get-by-name 404 -> create -> get
    assert exp.name == "iris" and exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"
    assert mlflow.set_experiment("iris").experiment_id == exp.experiment_id
    assert mlflow_client.get_experiment("0").name == "Default"

    with pytest.raises(MlflowException) as e:
        mlflow_client.create_experiment("iris")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as e:
        mlflow_client.get_experiment("123456")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    other = mlflow_client.create_experiment("other", tags={"team": "ml"})
    mlflow_client.set_experiment_tag(other, "stage", "dev")
    assert mlflow_client.get_experiment(other).tags == {"team": "ml", "stage": "dev"}
    mlflow_client.delete_experiment_tag(other, "stage")
    mlflow_client.rename_experiment(other, "renamed")
    assert mlflow_client.get_experiment_by_name("renamed").experiment_id == other

    found = mlflow_client.search_experiments(filter_string="name LIKE 'ren%'")
    assert [x.name for x in found] == ["renamed"]
    found = mlflow_client.search_experiments(filter_string="tags.team = 'ml'")
    assert [x.experiment_id for x in found] == [other]
    ordered = mlflow_client.search_experiments(order_by=["name ASC"])
    assert [x.name for x in ordered] == ["Default", "iris", "renamed"]

    mlflow_client.delete_experiment(other)
    assert [x.name for x in mlflow_client.search_experiments(view_type=ViewType.DELETED_ONLY)] == ["renamed"]
    mlflow_client.restore_experiment(other)
    assert mlflow_client.get_experiment(other).lifecycle_stage == "active"
    page = mlflow_client.search_experiments(max_results=2)
    assert len(page) == 2 and page.token
    rest = mlflow_client.search_experiments(max_results=2, page_token=page.token)
    assert len(rest) == 1 and not rest.token


def test_run_logging_round_trip(mlflow_client):
    mlflow.set_experiment("logging")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "model": "gbt", "note": "ü ñ"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8})
        mlflow.log_metric("nan", float("nan"))
        mlflow.log_metric("inf", float("inf"))
        mlflow.log_metric("ninf", float("-inf"))
        mlflow.set_tag("team", "ml")
        mlflow.set_tags({"a": "1", "b": "2"})
        run_id = run.info.run_id
    got = mlflow_client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.info.run_name == "first"
    assert got.data.params == {"lr": "0.1", "depth": "3", "model": "gbt", "note": "ü ñ"}
    assert got.data.metrics["loss"] == pytest.approx(0.2)
    assert got.data.metrics["acc"] == 0.9
    assert math.isnan(got.data.metrics["nan"])
    assert got.data.metrics["inf"] == math.inf and got.data.metrics["ninf"] == -math.inf
    assert got.data.tags["team"] == "ml" and got.data.tags["mlflow.runName"] == "first"
    history = mlflow_client.get_metric_history(run_id, "loss")
    assert [(m.step, round(m.value, 6)) for m in history] == [(s, round(1.0 / (s + 1), 6)) for s in range(5)]

    # Params are write-once, as in MLflow.
    with pytest.raises(MlflowException) as e:
        mlflow_client.log_param(run_id, "lr", 0.2)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in str(e.value)
    mlflow_client.log_param(run_id, "lr", 0.1)  # the same value again is fine

    mlflow_client.delete_tag(run_id, "a")
    assert "a" not in mlflow_client.get_run(run_id).data.tags


def test_log_batch_and_limits(mlflow_client, orchard):
    from mlflow.entities import Metric, Param, RunTag

    exp = mlflow_client.create_experiment("batch")
    run = mlflow_client.create_run(exp)
    now = int(time.time() * 1000)
    mlflow_client.log_batch(
        run.info.run_id,
        metrics=[Metric("m", float(i), now, i) for i in range(1000)],
        params=[Param(f"p{i}", str(i)) for i in range(100)],
        tags=[],
    )
    assert mlflow_client.get_run(run.info.run_id).data.metrics["m"] == 999.0
    assert len(mlflow_client.get_metric_history(run.info.run_id, "m")) == 1000
    # The client splits big batches itself; a raw request over MLflow's per-request limits is refused whole.
    body = {"run_id": run.info.run_id, "params": [{"key": f"q{i}", "value": "x"} for i in range(101)]}
    r = requests.post(f"{orchard.url}/api/2.0/mlflow/runs/log-batch", json=body)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "at most 100 params" in r.json()["message"]
    assert "q0" not in mlflow_client.get_run(run.info.run_id).data.params
    with pytest.raises(MlflowException):
        mlflow_client.log_batch(run.info.run_id, tags=[RunTag("t", "v" * 8001)])


def test_log_input_dataset(mlflow_client):
    df = pd.DataFrame({"sepal_length": [5.1, 4.9], "target": [0, 1]})
    dataset = mlflow.data.from_pandas(df, name="iris", targets="target")
    mlflow.set_experiment("inputs")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    got = mlflow_client.get_run(run.info.run_id)
    (inp,) = got.inputs.dataset_inputs
    assert inp.dataset.name == "iris" and inp.dataset.digest == dataset.digest
    assert {t.key: t.value for t in inp.tags}["mlflow.data.context"] == "training"
    found = mlflow.search_runs(filter_string="datasets.name = 'iris'", output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_artifacts(mlflow_client, tmp_path):
    (tmp_path / "hello.txt").write_text("hello orchard")
    tree = tmp_path / "tree"
    (tree / "nested").mkdir(parents=True)
    (tree / "a.csv").write_text("x,y\n1,2\n")
    (tree / "nested" / "b.bin").write_bytes(bytes(range(256)) * 100)
    mlflow.set_experiment("artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "hello.txt"), artifact_path="sub")
        mlflow.log_artifacts(str(tree), artifact_path="tree")
        mlflow.log_text("some text", "notes/readme.txt")
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    root = sorted((f.path, f.is_dir) for f in mlflow_client.list_artifacts(run_id))
    assert root == [("notes", True), ("sub", True), ("tree", True)]
    sub = mlflow_client.list_artifacts(run_id, "tree")
    assert sorted((f.path, f.is_dir, f.file_size) for f in sub) == [
        ("tree/a.csv", False, 8),
        ("tree/nested", True, None),
    ]
    out = pathlib.Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="tree", dst_path=str(tmp_path / "dl")))
    assert (out / "a.csv").read_text() == "x,y\n1,2\n"
    assert (out / "nested" / "b.bin").read_bytes() == bytes(range(256)) * 100
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/sub/hello.txt") == "hello orchard"


def test_search_runs(mlflow_client):
    exp = mlflow.set_experiment("search")
    ids = {}
    for i, (model, acc) in enumerate([("gbt", 0.91), ("linear", 0.72), ("gbt", 0.85), ("forest", 0.88)]):
        with mlflow.start_run(run_name=f"r{i}") as run:
            mlflow.log_param("model", model)
            mlflow.log_metric("acc", acc)
            mlflow.set_tag("idx", str(i))
        ids[i] = run.info.run_id

    df = mlflow.search_runs(
        experiment_ids=[exp.experiment_id],
        filter_string="params.model = 'gbt' AND metrics.acc > 0.8",
        order_by=["metrics.acc DESC"],
    )
    assert list(df["run_id"]) == [ids[0], ids[2]]
    assert list(df["metrics.acc"]) == [0.91, 0.85]
    assert list(df["params.model"]) == ["gbt", "gbt"]

    runs = mlflow_client.search_runs([exp.experiment_id], "metrics.acc >= 0.85", order_by=["metrics.acc ASC"])
    assert [r.info.run_id for r in runs] == [ids[2], ids[3], ids[0]]
    runs = mlflow_client.search_runs([exp.experiment_id], "attributes.run_name = 'r1'")
    assert [r.info.run_id for r in runs] == [ids[1]]
    runs = mlflow_client.search_runs([exp.experiment_id], f"attributes.run_id IN ('{ids[1]}', '{ids[3]}')")
    assert {r.info.run_id for r in runs} == {ids[1], ids[3]}
    runs = mlflow_client.search_runs([exp.experiment_id], "params.model ILIKE 'GB%'", order_by=["tags.idx DESC"])
    assert [r.info.run_id for r in runs] == [ids[2], ids[0]]

    first = mlflow_client.search_runs([exp.experiment_id], max_results=3, order_by=["metrics.acc DESC"])
    assert len(first) == 3 and first.token
    second = mlflow_client.search_runs([exp.experiment_id], max_results=3, order_by=["metrics.acc DESC"], page_token=first.token)
    assert [r.info.run_id for r in second] == [ids[1]] and not second.token

    with pytest.raises(MlflowException) as e:
        mlflow_client.search_runs([exp.experiment_id], "metrics.acc > 1 OR params.model = 'gbt'")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "column" in str(e.value)


def test_delete_and_restore_runs(mlflow_client):
    exp = mlflow.set_experiment("lifecycle")
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1)
    mlflow_client.delete_run(run.info.run_id)
    assert mlflow_client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert mlflow_client.search_runs([exp.experiment_id]) == []
    deleted = mlflow_client.search_runs([exp.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run.info.run_id]
    with pytest.raises(MlflowException) as e:
        mlflow_client.log_metric(run.info.run_id, "x", 2)
    assert "must be in the 'active' state" in str(e.value)
    mlflow_client.restore_run(run.info.run_id)
    mlflow_client.log_metric(run.info.run_id, "x", 2)
    assert mlflow_client.get_run(run.info.run_id).data.metrics["x"] == 2


def iris():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    data = load_iris(as_frame=True)
    return train_test_split(data.data, data.target, test_size=0.3, random_state=42)


def test_lightgbm_autolog(mlflow_client):
    import lightgbm as lgb

    x_train, x_test, y_train, y_test = iris()
    mlflow.set_experiment("autolog")
    mlflow.lightgbm.autolog()
    try:
        with mlflow.start_run() as run:
            train = lgb.Dataset(x_train, label=y_train)
            valid = lgb.Dataset(x_test, label=y_test, reference=train)
            params = {"objective": "multiclass", "num_class": 3, "learning_rate": 0.1, "verbose": -1, "seed": 1}
            booster = lgb.train(params, train, num_boost_round=20, valid_sets=[valid], valid_names=["valid"])
    finally:
        mlflow.lightgbm.autolog(disable=True)
    got = mlflow_client.get_run(run.info.run_id)
    assert got.data.params["objective"] == "multiclass"
    assert got.data.params["num_boost_round"] == "20"
    assert "valid-multi_logloss" in got.data.metrics
    history = mlflow_client.get_metric_history(run.info.run_id, "valid-multi_logloss")
    assert len(history) == 20
    (output,) = got.outputs.model_outputs
    model = mlflow.lightgbm.load_model(f"models:/{output.model_id}")
    np.testing.assert_allclose(model.predict(x_test), booster.predict(x_test))


def test_sklearn_log_model_and_load(mlflow_client):
    from sklearn.linear_model import LogisticRegression

    x_train, x_test, y_train, _ = iris()
    clf = LogisticRegression(max_iter=500).fit(x_train, y_train)
    mlflow.set_experiment("sklearn")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(clf, name="model", input_example=x_train.head(2))
    assert info.model_uri.startswith("models:/m-")
    loaded = mlflow.sklearn.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(x_test), clf.predict(x_test))
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(pyfunc.predict(x_test), clf.predict(x_test))
    model = mlflow_client.get_logged_model(info.model_id)
    assert model.status.to_int() == 2  # READY
    assert model.source_run_id == run.info.run_id
