"""The iris model of the serving reference scenario, written by the serving suite (test_serving.py) and by the
serving benchmark (bench/serving/bench.py puts this folder on sys.path), so that both serve the same model
directory: a multiclass LightGBM booster with a derived column, MLflow's MLmodel and Orchard's feature spec."""

from __future__ import annotations

import json
import pathlib


def write_iris_model(dest: pathlib.Path, rounds: int):
    """Trains the booster with `rounds` boosting rounds and writes the model directory `dest` (made here: it
    must not exist yet). Returns the booster and its training frame, whose columns are the model's inputs."""
    # Imported on use, so that importing this module (through test_serving too) stays cheap.
    import lightgbm as lgb
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    x = data.data.copy()
    x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    x["sepal_mul"] = x["sepal_length"] * x["sepal_width"]
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "seed": 1},
                        lgb.Dataset(x, label=data.target), num_boost_round=rounds)
    dest.mkdir(parents=True)
    booster.save_model(str(dest / "model.lgb"))
    (dest / "MLmodel").write_text(
        "flavors:\n  lightgbm:\n    data: model.lgb\n    model_class: lightgbm.basic.Booster\n"
        "  python_function:\n    data: model.lgb\n    loader_module: mlflow.lightgbm\n")
    (dest / "feature_spec.json").write_text(json.dumps({
        "inputs": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        "derived": [{"name": "sepal_mul", "expr": "sepal_length * sepal_width"}],
        "columns": list(x.columns),
        "classes": ["setosa", "versicolor", "virginica"],
        "label": "flower",
    }))
    return booster, x
