"""The routes MLflow's web UI calls besides the REST API, at MLflow's paths: a run's, a model version's and a
logged model's files, the UI's upload, the whole history of a metric across runs, the datasets of experiments.
Data logged with the real `mlflow` client; each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def run(orchard, mlflow_client, tmp_path):
    exp = mlflow_client.create_experiment("ui-routes")
    run = mlflow_client.create_run(exp)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    mlflow_client.log_artifact(run.info.run_id, str(notes), "docs")
    return exp, run


def test_files_of_a_run_and_of_a_model_version(orchard, mlflow_client, run):
    exp, run = run
    rid = run.info.run_id
    r = requests.get(f"{orchard.url}/get-artifact", params={"run_id": rid, "path": "docs/notes.txt"})
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["content-disposition"] == 'attachment; filename="notes.txt"', "sent as a download, never displayed"
    r = requests.get(f"{orchard.url}/get-artifact", params={"run_uuid": rid, "path": "docs/missing.txt"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.get(f"{orchard.url}/get-artifact", params={"run_id": rid, "path": "../../etc/passwd"})
    assert r.status_code == 400 and r.json()["message"] == "Invalid path"

    mlflow_client.create_registered_model("notes")
    mlflow_client.create_model_version("notes", f"{run.info.artifact_uri}/docs", run_id=rid)
    r = requests.get(f"{orchard.url}/model-versions/get-artifact", params={"name": "notes", "version": "1", "path": "notes.txt"})
    assert r.status_code == 200 and r.content == b"hello"
    r = requests.get(f"{orchard.url}/model-versions/get-artifact", params={"name": "notes", "version": "7", "path": "notes.txt"})
    assert r.status_code == 404


def test_the_ui_upload(orchard, mlflow_client, run):
    _, run = run
    rid = run.info.run_id
    url = f"{orchard.url}/ajax-api/2.0/mlflow/upload-artifact"
    r = requests.post(url, params={"run_uuid": rid, "path": "tables/data.csv"}, data=b"a,b\n1,2\n")
    assert r.status_code == 200, r.text
    assert [f.path for f in mlflow_client.list_artifacts(rid, "tables")] == ["tables/data.csv"]
    assert requests.get(f"{orchard.url}/get-artifact", params={"run_id": rid, "path": "tables/data.csv"}).content == b"a,b\n1,2\n"
    for params, data, message in [
        ({"path": "x.txt"}, b"x", "Request must specify run_uuid."),
        ({"run_uuid": rid}, b"x", "Request must specify path."),
        ({"run_uuid": rid, "path": "x.txt"}, b"", "Request must specify data."),
        ({"run_uuid": rid, "path": "big.bin"}, b"0" * (10 * 1024 * 1024 + 1), "Artifact size is too large. Max size is 10MB."),
        ({"run_uuid": rid, "path": "../x.txt"}, b"x", "Invalid path"),
    ]:
        r = requests.post(url, params=params, data=data)
        assert r.status_code == 400 and r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": message}, r.text
    # Sent without a length (chunked): refused while reading, with the same answer.
    r = requests.post(url, params={"run_uuid": rid, "path": "big.bin"}, data=iter([b"0" * (11 * 1024 * 1024)]))
    assert r.status_code == 400 and r.json()["message"] == "Artifact size is too large. Max size is 10MB.", r.text


def test_metric_history_of_many_runs_and_datasets_of_experiments(orchard, mlflow_client, run):
    exp, first = run
    second = mlflow_client.create_run(exp)
    for r, values in [(first, [0.9, 0.5]), (second, [0.8, 0.4, 0.2])]:
        for step, v in enumerate(values):
            mlflow_client.log_metric(r.info.run_id, "loss", v, timestamp=1000 + step, step=step)
    url = f"{orchard.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    ids = [second.info.run_id, first.info.run_id]
    metrics = requests.get(url, params=[("run_id", i) for i in ids] + [("metric_key", "loss")]).json()["metrics"]
    run_order = [m["run_id"] for m in metrics]
    assert run_order == sorted(run_order) and set(run_order) == set(ids), "runs in id order, each point with its run"
    assert len(metrics) == 5 and {m["key"] for m in metrics} == {"loss"}
    assert [m["value"] for m in metrics if m["run_id"] == second.info.run_id] == [0.8, 0.4, 0.2]
    assert len(requests.get(url, params=[("run_id", i) for i in ids] + [("metric_key", "loss"), ("max_results", "2")]).json()["metrics"]) == 2
    r = requests.get(url, params={"run_id": first.info.run_id})
    assert r.status_code == 400 and r.json()["message"] == "GetMetricHistoryBulk request must specify a metric_key."
    r = requests.get(url, params={"metric_key": "loss"})
    assert r.status_code == 400 and r.json()["message"] == "GetMetricHistoryBulk request must specify at least one run_id."

    dataset = {"name": "iris", "digest": "d41d8cd9", "source_type": "local", "source": "{}"}
    tags = [{"key": "mlflow.data.context", "value": "training"}]
    assert requests.post(f"{orchard.url}/api/2.0/mlflow/runs/log-inputs",
                         json={"run_id": first.info.run_id, "datasets": [{"tags": tags, "dataset": dataset}]}).ok
    url = f"{orchard.url}/ajax-api/2.0/mlflow/experiments/search-datasets"
    assert requests.post(url, json={"experiment_ids": [exp]}).json() == {
        "dataset_summaries": [{"experiment_id": exp, "name": "iris", "digest": "d41d8cd9", "context": "training"}]
    }
    assert requests.post(url, json={"experiment_ids": ["0"]}).json() == {}
    r = requests.post(url, json={"experiment_ids": []})
    assert r.status_code == 400 and r.json()["message"] == "SearchDatasets request must specify at least one experiment_id."


def test_files_of_a_logged_model(orchard, run):
    exp, run = run
    api = f"{orchard.url}/api/2.0/mlflow"
    model = requests.post(f"{api}/logged-models", json={"experiment_id": exp, "name": "clf"}).json()["model"]["info"]
    stored = model["artifact_uri"].removeprefix("mlflow-artifacts:/")
    assert requests.put(f"{orchard.url}/api/2.0/mlflow-artifacts/artifacts/{stored}/MLmodel", data=b"flavors: {}\n").ok
    url = f"{orchard.url}/ajax-api/2.0/mlflow/logged-models/{model['model_id']}/artifacts/files"
    r = requests.get(url, params={"artifact_file_path": "MLmodel"})
    assert r.status_code == 200 and r.content == b"flavors: {}\n"
    r = requests.get(url)
    assert r.status_code == 400 and r.json() == {
        "error_code": "BAD_REQUEST", "message": 'Request must include the "artifact_file_path" query parameter.'}
