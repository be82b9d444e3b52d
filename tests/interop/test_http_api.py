"""The REST API at the wire: status codes, error bodies, path safety, paging — what any client (not only
mlflow's) sees."""

from __future__ import annotations

import pathlib

import pytest
import requests


def post(orchard, path, body, **kw):
    return requests.post(f"{orchard.url}/api/2.0/mlflow/{path}", json=body, **kw)


def get(orchard, path, **params):
    return requests.get(f"{orchard.url}/api/2.0/mlflow/{path}", params=params)


def new_run(orchard, exp_name="wire"):
    exp = post(orchard, "experiments/create", {"name": exp_name}).json()["experiment_id"]
    run = post(orchard, "runs/create", {"experiment_id": exp, "start_time": 1}).json()["run"]
    return exp, run["info"]["run_id"]


def test_error_shapes(orchard):
    r = requests.get(f"{orchard.url}/api/2.0/mlflow/no-such-endpoint")
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    r = requests.get(f"{orchard.url}/api/2.0/mlflow/traces/abc/info")
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    r = get(orchard, "runs/get", run_id="0123456789abcdef")
    assert r.status_code == 404 and r.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Run with id=0123456789abcdef not found",
    }
    r = post(orchard, "experiments/create", {})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Missing value for required parameter 'name'" in r.json()["message"]
    r = requests.post(f"{orchard.url}/api/2.0/mlflow/experiments/create", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    post(orchard, "experiments/create", {"name": "dup"})
    r = post(orchard, "experiments/create", {"name": "dup"})
    assert r.status_code == 400 and r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    r = get(orchard, "experiments/get", experiment_id="not-a-number")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.delete(f"{orchard.url}/api/2.0/mlflow/runs/create")
    assert r.status_code == 405 and "error_code" in r.json()


def test_validation(orchard):
    _, run_id = new_run(orchard)
    for body in [
        {"run_id": run_id, "key": "a//b", "value": 1, "timestamp": 0},
        {"run_id": run_id, "key": "../x", "value": 1, "timestamp": 0},
        {"run_id": run_id, "key": "k" * 251, "value": 1, "timestamp": 0},
        {"run_id": run_id, "key": "ok", "value": "abc", "timestamp": 0},
        {"run_id": run_id, "key": "ok", "value": 1, "timestamp": -5},
        {"run_id": run_id, "key": "ok", "value": 1},
    ]:
        r = post(orchard, "runs/log-metric", body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", body
    r = post(orchard, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "v" * 6001})
    assert r.status_code == 400 and "exceeds the maximum length of 6000" in r.json()["message"]
    r = post(orchard, "runs/set-tag", {"run_id": run_id, "key": "t", "value": "v" * 8000})
    assert r.status_code == 200
    got = get(orchard, "runs/get", run_id=run_id).json()["run"]
    assert {t["key"]: t["value"] for t in got["data"]["tags"]}["t"] == "v" * 8000  # stored whole
    assert "metrics" not in got["data"]  # nothing of the refused metrics was kept


def test_special_floats_on_the_wire(orchard):
    _, run_id = new_run(orchard)
    for key, value in [("nan", "NaN"), ("inf", "Infinity"), ("ninf", "-Infinity"), ("big", 1.7976931348623157e308)]:
        assert post(orchard, "runs/log-metric", {"run_id": run_id, "key": key, "value": value, "timestamp": 1}).ok
    metrics = {m["key"]: m["value"] for m in get(orchard, "runs/get", run_id=run_id).json()["run"]["data"]["metrics"]}
    assert metrics == {"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity", "big": 1.7976931348623157e308}


def test_metric_history_paging_and_bulk_interval(orchard):
    _, run_id = new_run(orchard)
    metrics = [{"key": "loss", "value": 1.0 / (i + 1), "timestamp": 100 + i, "step": i} for i in range(25)]
    assert post(orchard, "runs/log-batch", {"run_id": run_id, "metrics": metrics}).ok
    page = get(orchard, "metrics/get-history", run_id=run_id, metric_key="loss", max_results=10).json()
    assert [m["step"] for m in page["metrics"]] == list(range(10)) and page["next_page_token"]
    page2 = get(orchard, "metrics/get-history", run_id=run_id, metric_key="loss", max_results=10, page_token=page["next_page_token"]).json()
    assert [m["step"] for m in page2["metrics"]] == list(range(10, 20))
    everything = get(orchard, "metrics/get-history", run_id=run_id, metric_key="loss").json()
    assert len(everything["metrics"]) == 25 and "next_page_token" not in everything
    bulk = requests.get(
        f"{orchard.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
        params=[("run_ids", run_id), ("metric_key", "loss"), ("max_results", "5")],
    ).json()["metrics"]
    steps = [m["step"] for m in bulk]
    assert steps[0] == 0 and steps[-1] == 24 and len(steps) <= 6
    assert all(m["run_id"] == run_id for m in bulk)
    r = requests.get(f"{orchard.url}/api/2.0/mlflow/metrics/get-history-bulk-interval", params={"metric_key": "loss"})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "1/..%2f..%2f..%2fescape.txt",
        "%252e%252e/%252e%252e/escape.txt",
        "/etc/passwd",
        "..\\..\\escape.txt",
        "C:/escape.txt",
    ],
)
def test_artifact_paths_cannot_escape(orchard, path):
    base = f"{orchard.url}/api/2.0/mlflow-artifacts/artifacts"
    # requests would normalise `..` away; send the raw path.
    s = requests.Session()
    for method in ["PUT", "GET", "DELETE"]:
        req = requests.Request(method, f"{base}/{path}", data=b"pwned" if method == "PUT" else None).prepare()
        req.url = f"{base}/{path}"
        r = s.send(req)
        assert r.status_code in (400, 404), (method, path, r.status_code, r.text)
        if r.status_code == 400:
            assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.get(base, params={"path": path})
    assert r.status_code == 400, (path, r.text)
    escaped = [p for p in pathlib.Path(orchard.workdir).rglob("escape.txt")] + [p for p in pathlib.Path("/").glob("escape.txt")]
    assert escaped == []


def test_artifact_proxy_does_not_follow_links_out_of_its_root(orchard, tmp_path_factory):
    """A link inside the artifact folder (a shared volume, a user with a shell) must not let the proxy read,
    list, write or delete outside it."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text("keep out")
    root = pathlib.Path(orchard.workdir) / "artifacts"
    root.mkdir(exist_ok=True)
    (root / "shared").symlink_to(outside, target_is_directory=True)
    (root / "alias.txt").symlink_to(outside / "secret.txt")
    base = f"{orchard.url}/api/2.0/mlflow-artifacts/artifacts"
    assert requests.put(f"{base}/1/inside.txt", data=b"in").ok

    for r in [
        requests.get(f"{base}/shared/secret.txt"),
        requests.get(f"{base}/alias.txt"),
        requests.get(base, params={"path": "shared"}),
        requests.put(f"{base}/shared/planted.txt", data=b"x"),
        requests.delete(f"{base}/shared/secret.txt"),
        requests.delete(f"{base}/alias.txt"),
    ]:
        assert r.status_code == 400, (r.request.method, r.request.url, r.status_code, r.text)
        assert r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"}
    assert requests.get(base).json() == {"files": [{"path": "1", "is_dir": True}]}, "links out are not listed"
    assert (outside / "secret.txt").read_text() == "keep out"
    assert not (outside / "planted.txt").exists()
    assert requests.get(f"{base}/1/inside.txt").content == b"in"


def test_relative_artifact_locations_are_made_absolute(orchard):
    workdir = pathlib.Path(orchard.workdir)
    for given, stored in [
        ("rel/arts", str(workdir / "rel" / "arts")),
        ("file:rel2", f"file://{workdir / 'rel2'}"),
        ("/abs/arts", "/abs/arts"),
        ("file:///abs/uri", "file:///abs/uri"),
        ("s3://bucket/arts", "s3://bucket/arts"),
    ]:
        exp = post(orchard, "experiments/create", {"name": f"loc {given}", "artifact_location": given}).json()["experiment_id"]
        assert get(orchard, "experiments/get", experiment_id=exp).json()["experiment"]["artifact_location"] == stored


def test_listing_a_local_root_without_the_proxy(backend_uri, tmp_path):
    """With --no-serve-artifacts the server still lists a file:// root where it is (as MLflow's does), and a
    path leaving it is invalid there too."""
    from conftest import OrchardServer

    server = OrchardServer(tmp_path, backend_uri, extra_args=["--no-serve-artifacts"]).start()
    try:
        root = tmp_path / "direct"
        exp = post(server, "experiments/create", {"name": "direct", "artifact_location": f"file://{root}"}).json()["experiment_id"]
        run = post(server, "runs/create", {"experiment_id": exp}).json()["run"]["info"]
        folder = pathlib.Path(run["artifact_uri"].removeprefix("file://"))
        (folder / "plots").mkdir(parents=True)
        (folder / "plots" / "loss.png").write_bytes(b"png")
        list_url = f"{server.url}/api/2.0/mlflow/artifacts/list"
        listing = requests.get(list_url, params={"run_id": run["run_id"], "path": "plots"}).json()
        assert listing["files"] == [{"path": "plots/loss.png", "is_dir": False, "file_size": 3}]
        r = requests.get(list_url, params={"run_id": run["run_id"], "path": "../escape"})
        assert r.status_code == 400 and r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"}

        model = requests.post(f"{server.url}/api/2.0/mlflow/logged-models", json={"experiment_id": exp, "name": "m"}).json()["model"]["info"]
        model_dir = pathlib.Path(model["artifact_uri"].removeprefix("file://"))
        model_dir.mkdir(parents=True)
        (model_dir / "MLmodel").write_text("flavors: {}\n")
        listed = requests.get(f"{server.url}/api/2.0/mlflow/logged-models/{model['model_id']}/artifacts/directories").json()
        assert [f["path"] for f in listed["files"]] == ["MLmodel"]
    finally:
        server.stop()


def test_artifact_proxy_round_trip(orchard):
    base = f"{orchard.url}/api/2.0/mlflow-artifacts/artifacts"
    payload = bytes(range(256)) * 4096  # 1 MiB
    assert requests.put(f"{base}/1/run/artifacts/data/blob.bin", data=payload).ok
    assert requests.put(f"{base}/1/run/artifacts/data/b.txt", data=b"b").ok
    r = requests.get(f"{base}/1/run/artifacts/data/blob.bin")
    assert r.content == payload and r.headers["content-length"] == str(len(payload))
    listing = requests.get(base, params={"path": "1/run/artifacts/data"}).json()
    assert listing == {"files": [{"path": "b.txt", "is_dir": False, "file_size": 1}, {"path": "blob.bin", "is_dir": False, "file_size": len(payload)}]}
    assert requests.get(base, params={"path": "1/run/artifacts/nothing"}).json() == {}
    r = requests.get(f"{base}/1/run/artifacts/data")
    assert r.status_code == 400 and "directory" in r.json()["message"]
    assert requests.get(f"{base}/1/run/artifacts/data/missing.txt").status_code == 404
    assert requests.delete(f"{base}/1/run/artifacts/data").ok
    assert requests.get(base, params={"path": "1/run/artifacts"}).json() == {}


def test_a_logged_models_metrics_and_versions_read_as_mlflow_writes_them(orchard):
    exp, run_id = new_run(orchard)
    model_id = requests.post(f"{orchard.url}/api/2.0/mlflow/logged-models",
                             json={"experiment_id": exp, "name": "clf", "source_run_id": run_id}).json()["model"]["info"]["model_id"]
    metric = {"key": "acc", "value": 0.9, "timestamp": 1, "step": 0, "model_id": model_id}
    assert post(orchard, "runs/log-batch", {"run_id": run_id, "metrics": [metric]}).ok
    model = requests.get(f"{orchard.url}/api/2.0/mlflow/logged-models/{model_id}").json()["model"]
    assert model["data"]["metrics"][0]["model_id"] == model_id, "a model's metrics name the model"

    post(orchard, "registered-models/create", {"name": "clf"})
    assert post(orchard, "model-versions/create", {"name": "clf", "source": f"models:/{model_id}", "model_id": model_id}).ok
    tags = requests.get(f"{orchard.url}/api/2.0/mlflow/logged-models/{model_id}").json()["model"]["info"]["tags"]
    # The version as a number, in json.dumps' spacing: the text MLflow's server stores.
    assert {"key": "mlflow.modelVersions", "value": '[{"name": "clf", "version": 1}]'} in tags


def test_ajax_routes_server_info_and_health(orchard):
    r = requests.get(f"{orchard.url}/ajax-api/2.0/mlflow/experiments/search", params={"max_results": 10})
    assert r.ok and r.json()["experiments"][0]["name"] == "Default"
    assert requests.get(f"{orchard.url}/api/3.0/mlflow/server-info").json()["store_type"] == "SqlStore"
    assert requests.get(f"{orchard.url}/health").text == "OK"


def test_logged_models_api(orchard):
    exp, run_id = new_run(orchard)
    model = requests.post(
        f"{orchard.url}/api/2.0/mlflow/logged-models",
        json={"experiment_id": exp, "name": "clf", "source_run_id": run_id, "params": [{"key": "alpha", "value": "1"}]},
    ).json()["model"]
    model_id = model["info"]["model_id"]
    assert model_id.startswith("m-") and len(model_id) == 34
    assert model["info"]["status"] == "LOGGED_MODEL_PENDING"
    assert model["info"]["artifact_uri"] == f"mlflow-artifacts:/{exp}/models/{model_id}/artifacts"
    base = f"{orchard.url}/api/2.0/mlflow/logged-models/{model_id}"
    assert requests.patch(base, json={"model_id": model_id, "status": "LOGGED_MODEL_READY"}).json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    assert requests.patch(f"{base}/tags", json={"tags": [{"key": "k", "value": "v"}]}).ok
    found = requests.post(
        f"{orchard.url}/api/2.0/mlflow/logged-models/search",
        json={"experiment_ids": [exp], "filter": f"source_run_id = '{run_id}'"},
    ).json()["models"]
    assert [m["info"]["model_id"] for m in found] == [model_id]
    assert found[0]["info"]["tags"] == [{"key": "k", "value": "v"}]
    assert requests.delete(f"{base}/tags/k").ok
    assert requests.delete(f"{base}/tags/k").status_code == 404
    assert requests.delete(base).ok
    r = requests.get(base)
    assert r.status_code == 404 and r.json()["message"] == f"Logged model with ID '{model_id}' not found."


def test_logged_model_search_restricted_to_datasets(orchard):
    exp, run_id = new_run(orchard)
    api = f"{orchard.url}/api/2.0/mlflow"

    def model(name):
        return requests.post(f"{api}/logged-models", json={"experiment_id": exp, "name": name, "source_run_id": run_id}).json()["model"]["info"]["model_id"]

    on_eval, on_train, none = model("on-eval"), model("on-train"), model("no-metrics")
    metrics = [
        {"key": "acc", "value": 0.9, "timestamp": 1, "step": 0, "model_id": on_eval, "dataset_name": "eval", "dataset_digest": "e1"},
        {"key": "acc", "value": 0.4, "timestamp": 1, "step": 0, "model_id": on_train, "dataset_name": "eval", "dataset_digest": "e1"},
        {"key": "acc", "value": 0.99, "timestamp": 1, "step": 0, "model_id": on_train, "dataset_name": "train", "dataset_digest": "t1"},
    ]
    assert post(orchard, "runs/log-batch", {"run_id": run_id, "metrics": metrics}).ok

    def search(**body):
        r = requests.post(f"{api}/logged-models/search", json={"experiment_ids": [exp], **body})
        assert r.ok, r.text
        return sorted(m["info"]["name"] for m in r.json().get("models", []))

    assert search() == ["no-metrics", "on-eval", "on-train"]
    assert search(datasets=[{"dataset_name": "train"}]) == ["on-train"], "a model needs a metric on the dataset"
    assert search(datasets=[{"dataset_name": "eval", "dataset_digest": "e1"}]) == ["on-eval", "on-train"]
    assert search(datasets=[{"dataset_name": "eval", "dataset_digest": "other"}]) == []
    # Metric clauses compare the metrics on the datasets: on-train's 0.99 is on train, its eval acc is 0.4.
    assert search(filter="metrics.acc > 0.5") == ["on-eval", "on-train"]
    assert search(filter="metrics.acc > 0.5", datasets=[{"dataset_name": "eval"}]) == ["on-eval"]
    r = requests.post(f"{api}/logged-models/search", json={"experiment_ids": [exp], "datasets": [{"dataset_digest": "e1"}]})
    assert r.status_code == 400 and r.json()["message"] == "`dataset_name` in the `datasets` clause must be specified."
